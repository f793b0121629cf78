"""The index of standing approvals, so a grant is found (and ended) without reading threads.

A grant is given and revoked by events in the thread it was given in (``HumanResponse.gives``,
``GrantRevoked``); that log is the truth. This index only finds grants: ``grant:{id}`` holds
a live grant (expiring with it), ``grants`` lists them by when they were given, and
``grants:thread:{id}`` and ``grants:tool:{agent}:{tool}`` find the ones that may cover a call.

The index is written after the giving event is stored, and a grant is applied only by an
append that requires its ``grant:{id}`` key in the same atomic step (``Store.append``'s
``requires``). So a grant the index lost (a crash between the two writes) is simply not
applied — approvals fail closed — and a revocation, which deletes the key first, wins every
race with an application.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import cast

import redis

from agent.approvals import grant_covers
from agent.events import Grant, HumanRequest
from agent.thread import Thread
from bot.state.store import key


class GrantNotFound(LookupError):
    def __init__(self, grant_id: str) -> None:
        super().__init__(f"no live standing approval with id {grant_id!r} (see outerloop grants)")


def live_key(grant_id: str) -> str:
    return key("grant", grant_id)


class Grants:
    def __init__(self, connection: redis.Redis) -> None:
        self.redis = connection

    def add(self, grant: Grant, now: datetime) -> None:
        """Index a grant just given (its giving event is stored)."""
        pipe = self.redis.pipeline()
        pipe.set(live_key(grant.grant_id), grant.model_dump_json())
        if grant.until is not None:
            pipe.expireat(
                live_key(grant.grant_id), max(int(grant.until.timestamp()) + 1, int(now.timestamp()) + 1)
            )
        pipe.zadd(key("grants"), {grant.grant_id: now.timestamp()})
        pipe.sadd(self._finder(grant), grant.grant_id)
        pipe.execute()

    def get(self, grant_id: str) -> Grant:
        raw = cast(bytes | None, self.redis.get(live_key(grant_id)))
        if raw is None:
            raise GrantNotFound(grant_id)
        return Grant.model_validate_json(raw)

    def end(self, grant: Grant) -> None:
        """Drop a grant from the index; its key first, so no application succeeds after this."""
        self.redis.delete(live_key(grant.grant_id))
        self.redis.zrem(key("grants"), grant.grant_id)
        self.redis.srem(self._finder(grant), grant.grant_id)

    def live(self) -> Iterator[Grant]:
        """The live grants, oldest first; entries whose grant ended by its time are dropped."""
        for raw_id in cast(list[bytes], self.redis.zrange(key("grants"), 0, -1)):
            grant_id = raw_id.decode()
            try:
                yield self.get(grant_id)
            except GrantNotFound:
                self.redis.zrem(key("grants"), grant_id)

    def covering(self, thread: Thread, request: HumanRequest, now: datetime) -> Grant | None:
        """A live grant that may stand in for approving ``request`` in ``thread`` at ``now``."""
        call = request.call
        if call is None or not request.standing:
            return None
        finders = [key("grants", "thread", thread.id), key("grants", "tool", thread.agent, call.tool)]
        for finder in finders:
            for raw_id in cast(set[bytes], self.redis.smembers(finder)):
                try:
                    grant = self.get(raw_id.decode())
                except GrantNotFound:
                    self.redis.srem(finder, raw_id)
                    continue
                local = grant.scope != "tool" or grant.thread == thread.id
                if grant_covers(grant, request, thread.agent, now) and (not local or grant in thread.grants):
                    return grant
        return None

    def _finder(self, grant: Grant) -> str:
        if grant.scope == "tool":
            return key("grants", "tool", grant.agent, grant.tool)
        return key("grants", "thread", grant.thread)
