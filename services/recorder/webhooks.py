"""Tell chat channels (Slack, Discord, anything taking a JSON POST) when a run ends.

The recorder calls `notify_on_transition` after a status write succeeded; the reaper calls
`notify` after it marked a run lost. A replayed event stores nothing and so notifies nothing.

Sending never blocks recording: `notify` only puts the message on a bounded queue (a full
queue drops the message with a warning) and one background thread posts it to every URL with
a short timeout, retrying a few times with backoff; what still fails is logged and dropped.
"""

import logging
import queue
import threading
import time
from typing import Any

import httpx

from services.recorder.handlers import Document

log = logging.getLogger(__name__)
# The statuses someone wants to hear about; `cancelled` was asked for by a person already.
NOTIFY_STATUSES = frozenset({"completed", "failed", "lost"})
_STOP = object()


def webhook_payload(run: Document) -> dict[str, Any]:
    """{"text" (Slack), "content" (Discord), run_id, status, model_name, version, metrics}."""
    message = _message(run)
    return {
        "text": message,
        "content": message,
        "run_id": run["run_id"],
        "status": run["status"],
        "model_name": run.get("model_name"),
        "version": run.get("version"),
        "metrics": run.get("metrics") or {},
    }


def _message(run: Document) -> str:
    name = f"run {run['run_id']} ({run.get('model_name')} {run.get('version')})"
    status = run["status"]
    if status == "completed":
        metrics = run.get("metrics") or {}
        shown = ", ".join(
            f"{key} {metrics[key]:.4g}"
            for key in ("test_accuracy", "val_accuracy")
            if isinstance(metrics.get(key), int | float)
        )
        return f"Paddy: {name} completed" + (f": {shown}" if shown else "")
    if status == "failed":
        return f"Paddy: {name} failed: {run.get('error') or 'no error message'}"
    if status == "lost":
        return f"Paddy: {name} is lost: no event from its trainer since {run.get('heartbeat_at')}"
    return f"Paddy: {name} is {status}"


class WebhookNotifier:
    """POSTs run notifications to the configured URLs from a background thread."""

    def __init__(
        self, urls: list[str], timeout_s: float = 5.0, attempts: int = 3, backoff_s: float = 1.0, queue_size: int = 1000
    ):
        self.urls = list(urls)
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._client = httpx.Client(timeout=timeout_s)
        self._thread = threading.Thread(target=self._send_loop, name="webhooks", daemon=True)
        if self.urls:
            self._thread.start()

    def notify_on_transition(self, before: str | None, run: Document) -> None:
        """Notify when a stored write moved the run into a status worth telling."""
        if run["status"] != before and run["status"] in NOTIFY_STATUSES:
            self.notify(run)

    def notify(self, run: Document) -> None:
        if not self.urls:
            return
        try:
            self._queue.put_nowait(webhook_payload(run))
        except queue.Full:
            self.dropped += 1
            log.warning("webhook queue full; not sending the %s notice of run %s", run["status"], run["run_id"])

    def close(self, timeout_s: float = 10.0) -> None:
        """Send what is queued (waiting up to timeout_s), then stop the thread."""
        if self._thread.is_alive():
            try:
                self._queue.put(_STOP, timeout=timeout_s)
            except queue.Full:
                log.warning("webhook queue still full at shutdown; unsent notices are dropped")
            self._thread.join(timeout_s)
        self._client.close()

    def _send_loop(self) -> None:
        while (payload := self._queue.get()) is not _STOP:
            for url in self.urls:
                self._post(url, payload)

    def _post(self, url: str, payload: dict[str, Any]) -> None:
        backoff = self._backoff_s
        for attempt in range(1, self._attempts + 1):
            try:
                self._client.post(url, json=payload).raise_for_status()
                self.sent += 1
                return
            except httpx.HTTPError as error:
                if attempt == self._attempts:
                    self.failed += 1
                    log.warning(
                        "webhook %s failed %d times for run %s (%s); giving up",
                        _redacted(url),
                        attempt,
                        payload["run_id"],
                        error,
                    )
                    return
                time.sleep(backoff)
                backoff *= 2


def _redacted(url: str) -> str:
    """Webhook URLs carry their secret in the path: log the host only."""
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.host}/…"
