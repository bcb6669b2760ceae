"""`python -m services.recorder`: store training events until SIGTERM or Ctrl-C."""

import logging
import signal

import redis

from services.recorder.consumer import Recorder
from services.recorder.settings import get_settings
from shared.store import connect, ensure_indexes


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    db = connect(settings)
    ensure_indexes(db)
    recorder = Recorder(redis.Redis.from_url(settings.redis_url), db, settings)
    stopping = False

    def stop(signum, _frame):
        nonlocal stopping
        logging.info("signal %d: stopping after the current batch", signum)
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logging.info("recorder %s reading %s", settings.consumer_name, settings.redis_url)
    recorder.run_forever(should_stop=lambda: stopping)
    logging.info("stopped: %s", recorder.stats)


if __name__ == "__main__":
    main()
