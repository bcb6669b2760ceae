"""`python -m services.recorder`: store training events until SIGTERM or Ctrl-C."""

import logging
import signal

import redis
from pymongo.database import Database
from pymongo.errors import PyMongoError

from services.recorder.consumer import Recorder
from services.recorder.reaper import Reaper
from services.recorder.retry import MONGO_BACKOFF_MAX_S, retry_with_backoff
from services.recorder.settings import RecorderSettings, get_settings
from services.recorder.webhooks import WebhookNotifier
from shared.settings import LivenessSettings
from shared.store import connect, ensure_indexes


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    db = connect(settings)
    _ensure_indexes_when_reachable(db, settings.retry_backoff_s)
    notifier = _webhook_notifier(settings)
    recorder = Recorder(redis.Redis.from_url(settings.redis_url), db, settings, notifier)
    stopping = False

    def stop(signum, _frame):
        nonlocal stopping
        logging.info("signal %d: stopping after the current batch", signum)
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logging.info("recorder %s reading %s", settings.consumer_name, settings.redis_url)
    reaper = Reaper(db, LivenessSettings(), on_lost=notifier.notify).start()
    recorder.run_forever(should_stop=lambda: stopping)
    reaper.stop()
    notifier.close()
    logging.info("stopped: %s", recorder.stats)


def _webhook_notifier(settings: RecorderSettings) -> WebhookNotifier:
    if settings.webhook_urls:
        logging.info("notifying %d webhook URL(s) when runs end", len(settings.webhook_urls))
    return WebhookNotifier(
        settings.webhook_urls,
        timeout_s=settings.webhook_timeout_s,
        attempts=settings.webhook_attempts,
        backoff_s=settings.webhook_backoff_s,
        queue_size=settings.webhook_queue_size,
    )


def _ensure_indexes_when_reachable(db: Database, backoff_s: float) -> None:
    """A recorder started while MongoDB is down waits for it instead of exiting."""

    def mongodb_down(error: Exception, delay: float) -> None:
        logging.warning("MongoDB unreachable at start (%s); retrying in %.1f s", error, delay)

    retry_with_backoff(lambda: ensure_indexes(db), PyMongoError, mongodb_down, backoff_s, MONGO_BACKOFF_MAX_S)


if __name__ == "__main__":
    main()
