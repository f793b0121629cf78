"""Writes that ride along in another command's round trip to Redis.

With a durable Redis (``appendfsync always``) every round trip that writes waits for an
fsync, so a worker or caller that has two things to tell Redis in a row sends them
together: the first is queued into a pipeline (an ``Along``), the second sent with it.
The pipeline is not a transaction: each command stays as atomic as it was alone (the
scripts are), and the order is kept, so the result is what two calls in a row would do
minus one wait.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
from redis.client import Pipeline

Along = Callable[[Pipeline], object]
"""Queues commands into a pipeline; their answers come before the caller's own."""


def together(connection: redis.Redis, along: Along | None, last: Callable[[Pipeline], object]) -> Any:
    """Send ``along``'s commands, then ``last``'s one command, in one round trip; return the
    answer to ``last``'s. An error answer to any of them is raised, as it would be alone."""
    with connection.pipeline(transaction=False) as pipe:
        if along is not None:
            along(pipe)
        last(pipe)
        return pipe.execute()[-1]
