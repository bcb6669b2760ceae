"""VisibilityKeeper against kombu's real Redis transport and a real redis-server.

The keeper relies on where kombu keeps a message delivered but not acknowledged: the `unacked`
hash (delivery tag → [message, exchange, routing key]) and the `unacked_index` sorted set
(delivery tag → delivery time). Should that layout change, a refresh finds nothing and every job
longer than the visibility timeout runs twice: the first test pins it, the second checks that
such a refresh does not go unnoticed.
"""

import json
import logging

import pytest
from celery import Celery
from kombu import Queue

from services.trainer.visibility import UNACKED, UNACKED_INDEX, VisibilityKeeper, find_delivery_tag
from shared import names
from tests.utils.waiting import wait_for


@pytest.fixture
def app(settings):
    app = Celery("visibility-test", broker=settings.redis_url)
    app.conf.update(task_acks_late=True, broker_transport_options={"visibility_timeout": 60})
    yield app
    app.close()


def test_kombu_keeps_an_unacked_task_where_the_keeper_refreshes_it(app, settings, redis_client):
    sent = app.send_task(names.TRAIN_TASK, args=["run-1", {}], queue=names.TRAINING_QUEUE)
    received = []
    with app.connection_for_read() as connection:
        # As a worker with acks_late takes a job: delivered, acknowledged only when the job ends.
        consumer = connection.Consumer(
            Queue(names.TRAINING_QUEUE), callbacks=[lambda _body, message: received.append(message)], accept=["json"]
        )
        consumer.qos(prefetch_count=1)
        with consumer:
            connection.drain_events(timeout=10)
            [message] = received
            tag = message.delivery_tag
            assert message.headers["id"] == sent.id

            payload, _exchange, routing_key = json.loads(redis_client.hget(UNACKED, tag))
            assert payload["headers"]["id"] == sent.id and routing_key == names.TRAINING_QUEUE
            delivered_at = redis_client.zscore(UNACKED_INDEX, tag)
            assert delivered_at is not None
            assert find_delivery_tag(redis_client, sent.id) == tag

            keeper = VisibilityKeeper(settings.redis_url, sent.id, refresh_s=60)
            assert keeper.refresh() is True
            assert redis_client.zscore(UNACKED_INDEX, tag) >= delivered_at

            message.ack()
            assert redis_client.hget(UNACKED, tag) is None
            assert keeper.refresh() is False  # acknowledged: nothing to refresh, and nothing re-added
            assert redis_client.zscore(UNACKED_INDEX, tag) is None


def test_refreshes_that_find_no_message_are_errors_and_counted_after_the_first(
    settings, redis_client, caplog, monkeypatch
):
    refreshes = []
    real_refresh = VisibilityKeeper.refresh

    def counted_refresh(keeper):
        refreshes.append(True)
        return real_refresh(keeper)

    monkeypatch.setattr(VisibilityKeeper, "refresh", counted_refresh)
    with caplog.at_level(logging.ERROR, logger="services.trainer.visibility"):
        with VisibilityKeeper(settings.redis_url, "no-such-task", refresh_s=0.01):
            wait_for(lambda: redis_client.get(names.VISIBILITY_MISSES_KEY), 10, "a missed refresh to be counted")
    misses = int(redis_client.get(names.VISIBILITY_MISSES_KEY))
    errors = [r for r in caplog.records if r.name == "services.trainer.visibility" and r.levelno == logging.ERROR]
    assert misses == len(errors) == len(refreshes) - 1  # the first refresh, as the job starts, is let go
    assert "no-such-task" in errors[0].getMessage()
