"""A pool's child holds threads under the name its supervisor gave it; nothing else does."""

from __future__ import annotations

import os
from collections.abc import Callable

from bot.state import liveness
from bot.state.liveness import Holder


def _in_a_fork(work: Callable[[], str]) -> str:
    """Run ``work()`` in a forked process; returns what it returned."""
    reading, writing = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(writing, work().encode())
        finally:
            os._exit(0)
    os.close(writing)
    with os.fdopen(reading) as answer:
        said = answer.read()
    os.waitpid(pid, 0)
    return said


def _named_child() -> str:
    liveness.name_this_process("host:1.2")
    return f"{Holder.here().worker} {_in_a_fork(lambda: Holder.here().worker)}"


def test_a_named_process_holds_under_its_name_and_a_process_it_forks_does_not() -> None:
    child, grandchild = _in_a_fork(_named_child).split()
    assert child == "host:1.2"
    assert grandchild != "host:1.2" and grandchild.endswith(tuple("0123456789")), grandchild
    assert Holder.here().vouches_for_itself, "this test process was named by nobody"
