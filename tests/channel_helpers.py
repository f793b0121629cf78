"""Test helpers for channels: a recording outbound side, and running queued deliveries in-process."""

from __future__ import annotations

from dataclasses import dataclass, field

from rq.job import Job

from agent.events import Event, HumanRequest, Origin, Trigger
from agent.thread import Thread
from bot.runtime import Runtime
from channels.gateway import Receipt, Receipts


def said(text: str, key: str | None = None) -> Trigger:
    return Trigger(text=text, origin=Origin(channel="test", sender="U1", address={"room": "r1"}), key=key)


@dataclass
class RecordingChannel:
    """A channel's outbound side that remembers what it was asked to show."""

    interests: frozenset[str] = frozenset({"human_request", "human_response", "done"})
    shown: list[tuple[str, Receipt | None]] = field(default_factory=list)

    def deliver(self, thread: Thread, event: Event, receipts: Receipts) -> Receipt | None:
        if isinstance(event, HumanRequest):
            self.shown.append((event.type, None))
            return {"message": f"msg-{len(self.shown)}", "route": f"test:reply-to-msg-{len(self.shown)}"}
        if isinstance(event, Trigger):
            self.shown.append((event.type, None))
            return None
        request = thread.pending or next(e for e in thread.events if isinstance(e, HumanRequest))
        self.shown.append((event.type, receipts.receipt(request.id)))
        return None


def run_deliveries(runtime: Runtime) -> None:
    for job_id in runtime.outbound_queue.get_job_ids():
        job = Job.fetch(job_id, connection=runtime.connection)
        runtime.deliver(*job.args)
        runtime.outbound_queue.remove(job_id)
