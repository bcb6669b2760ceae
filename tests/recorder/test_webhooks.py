"""Webhooks against a real tiny HTTP server: a completed run and a lost run are announced once."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from services.recorder.consumer import Recorder
from services.recorder.reaper import reap_lost_runs
from services.recorder.settings import RecorderSettings
from services.recorder.webhooks import WebhookNotifier
from tests.utils.documents import store_running
from tests.utils.events import drain, publish, run_events


class Received(list):
    url = ""


@pytest.fixture
def received():
    posts = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    posts.url = f"http://127.0.0.1:{server.server_port}/hook"
    yield posts
    server.shutdown()


def test_a_completed_run_is_announced_once_even_when_replayed(settings, db, redis_client, received):
    notifier = WebhookNotifier([received.url], timeout_s=2, backoff_s=0.05)
    recorder = Recorder(redis_client, db, RecorderSettings(consumer_name="t", block_ms=50), notifier)
    recorder.ensure_group()
    events = run_events("r1")
    publish(redis_client, events)
    drain(recorder)
    publish(redis_client, events)  # replayed: stores nothing new, announces nothing
    drain(recorder)
    notifier.close()
    [post] = received
    assert (post["run_id"], post["status"], post["model_name"], post["version"]) == (
        "r1",
        "completed",
        "custom_cnn",
        "v1",
    )
    assert post["text"] == post["content"] and "completed" in post["text"]
    assert post["metrics"]["test_accuracy"] == 0.7


def test_a_run_reaped_as_lost_is_announced(db, received):
    notifier = WebhookNotifier([received.url], timeout_s=2, backoff_s=0.05)
    store_running(db, "silent", heartbeat_age_s=300)
    assert reap_lost_runs(db, timeout_s=120, on_lost=notifier.notify) == ["silent"]
    assert reap_lost_runs(db, timeout_s=120, on_lost=notifier.notify) == []
    notifier.close()
    assert [(p["run_id"], p["status"]) for p in received] == [("silent", "lost")]


def test_an_unreachable_webhook_never_blocks_recording(db):
    notifier = WebhookNotifier(["http://127.0.0.1:9/hook"], timeout_s=0.2, attempts=2, backoff_s=0.01)
    store_running(db, "silent", heartbeat_age_s=300)
    assert reap_lost_runs(db, timeout_s=120, on_lost=notifier.notify) == ["silent"]
    notifier.close()
    assert (notifier.sent, notifier.failed) == (0, 1)
