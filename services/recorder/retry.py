"""Waiting out an outage: call again with a doubling delay until the call succeeds."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

MONGO_BACKOFF_MAX_S = 30.0


def retry_with_backoff(
    action: Callable[[], T],
    errors: type[Exception] | tuple[type[Exception], ...],
    on_error: Callable[[Exception, float], None],
    first_delay_s: float,
    max_delay_s: float,
    should_stop: Callable[[], bool] = lambda: False,
) -> T | None:
    """action() until it returns; after each error in `errors`, on_error(error, delay) then sleep.

    The delay doubles up to max_delay_s. Returns None, without calling again, once should_stop()
    says so after a failed call.
    """
    delay = first_delay_s
    while True:
        try:
            return action()
        except errors as error:
            on_error(error, delay)
            time.sleep(delay)
            delay = min(delay * 2, max_delay_s)
            if should_stop():
                return None
