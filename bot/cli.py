"""The ``outerloop`` command line: the processes, and one command per thread action."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import click

from bot.commands.agents import agents
from bot.commands.errors import connect, friendly_errors
from bot.commands.stats import stats
from bot.commands.thread_list import STATUSES

if TYPE_CHECKING:
    from agent.events import GrantScope, Origin
    from bot.approvals.audit import Decision
    from bot.runtime import Runtime


def _runtime() -> Runtime:
    from bot.settings import Settings

    return connect(Settings())


def _serve_metrics() -> None:
    """Serve the host's process metrics on ``OUTERLOOP_METRICS_PORT``, if set."""
    from bot.metrics.exporter import serve
    from bot.settings import Settings

    serve(Settings())


@click.group()
@click.version_option(package_name="outerloop")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Outerloop runs small LLM agents from Slack, email, schedules and webhooks,
    pausing for humans and resuming where they left off."""
    from bot import logs, tracing
    from bot.metrics.multiproc import join_local
    from bot.settings import STATE_DIR, Settings

    logs.configure(Settings().log_format, process=ctx.invoked_subcommand)
    join_local(STATE_DIR)
    try:
        tracing.configure(ctx.invoked_subcommand)
    except tracing.TracingConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
@click.option("--port", type=int, help="The web app's port (default: PORT, else 8000).")
@click.option("--smtp-port", type=int, help="The inbox's port (default: SMTP_LISTEN_PORT, else 2525).")
@click.option("--rotate", is_flag=True, help="Make a new API token and Redis port instead of reusing them.")
@friendly_errors
def dev(port: int | None, smtp_port: int | None, rotate: bool) -> None:
    """Run web, worker, scheduler and the email inbox together, each once it answers.

    Without REDIS_URL it starts a private Redis; without SMTP_HOST outbound mail goes to a
    maildir under .outerloop/. The API token and Redis port are kept in .outerloop/ and stay
    the same at every start here, unless --rotate."""
    from bot.commands.dev import run
    from bot.settings import Settings

    settings = Settings()
    chosen = {"port": port, "smtp_listen_port": smtp_port}
    run(settings.model_copy(update={name: value for name, value in chosen.items() if value}), rotate=rotate)


@main.command()
@friendly_errors
def web() -> None:
    """Serve the API, the Slack endpoint and /healthz (and Slack Socket Mode with SLACK_APP_TOKEN)."""
    import uvicorn

    from bot.doors.slack import SlackUnavailable, socket_mode
    from bot.runtime import Runtime
    from bot.settings import Settings
    from bot.web.app import create_app

    settings = Settings()
    rt = Runtime.from_settings(settings)
    try:
        with socket_mode(rt):
            uvicorn.run(create_app(rt), host=settings.host, port=settings.port, log_config=None)
    except SlackUnavailable as exc:
        raise click.ClickException(str(exc)) from exc


PROCESSES_HELP = "Worker processes; each runs one job at a time, a long tool holds one for its whole run."


@main.command()
@click.option("--burst", is_flag=True, help="Exit when the queue is empty.")
@click.option("--processes", default=2, show_default=True, type=click.IntRange(min=1), help=PROCESSES_HELP)
@friendly_errors
def worker(burst: bool, processes: int) -> None:
    """Run a supervised pool of worker processes that advance threads."""
    _serve_metrics()  # first: the pool's processes must share the directory it may choose
    from bot.work.recovery import recover_stalled
    from bot.work.worker import runtime, work

    rt = runtime()
    recover_stalled(rt)
    work(rt, processes=processes, burst=burst)


@main.command()
@click.option("--burst", is_flag=True, help="Answer the requests waiting now, then exit.")
@friendly_errors
def caller(burst: bool) -> None:
    """Answer the threads' model requests, many in flight at once."""
    _serve_metrics()
    from bot.model.caller import call

    call(_runtime(), burst=burst)


@main.command()
@click.option("--check", is_flag=True, help="Print each schedule's next three ticks and exit.")
@friendly_errors
def scheduler(check: bool) -> None:
    """Launch scheduled threads, expire overdue human requests, re-queue stalled threads."""
    if check:
        from bot.commands.schedule_check import next_ticks
        from bot.settings import Settings

        click.echo(next_ticks(Settings()))
        return
    _serve_metrics()
    from bot.work.scheduler import Scheduler

    Scheduler.from_runtime(_runtime()).run()


@main.command()
@friendly_errors
def smtp() -> None:
    """Run the email inbox: mail to SMTP_RECIPIENTS starts threads; replies answer requests."""
    _serve_metrics()
    from bot.doors.smtp import run
    from bot.settings import Settings
    from channels.email.server import InboxConfigError

    try:
        run(Settings())
    except (InboxConfigError, OSError) as exc:
        raise click.ClickException(f"the inbox cannot start: {exc}") from exc


@main.command()
@click.argument("text")
@click.option("--agent", default="deploy", show_default=True, help="Which agent handles it.")
@friendly_errors
def launch(text: str, agent: str) -> None:
    """Start a thread; prints its id."""
    click.echo(_runtime().launch(agent, text, origin=_cli_origin()).thread.id)


@main.command()
@click.option("--status", type=click.Choice(STATUSES), help="Only threads in this state.")
@click.option("--agent", help="Only threads of this agent.")
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=50, show_default=True, help="At most this many."
)
@click.option("--cursor", help="Where the previous listing stopped (it prints the option to use).")
@friendly_errors
def threads(status: str | None, agent: str | None, limit: int, cursor: str | None) -> None:
    """List threads, newest first: created, agent, channel, status, the request's first line."""
    from agent.thread import Status
    from bot.commands.thread_list import rows

    store = _runtime().store
    page = store.page(Status(status) if status else None, agent, cursor, limit)
    colour = sys.stdout.isatty()
    for row in rows(page.threads, store.triggers([summary.id for summary in page.threads]), colour):
        click.echo(row, color=colour)
    if page.cursor is not None:
        click.echo(f"(more: add --cursor {page.cursor})")


@main.command()
@click.argument("thread_id")
@click.option("--json", "as_json", is_flag=True, help="The thread as JSON, as the API returns it.")
@friendly_errors
def show(thread_id: str, as_json: bool) -> None:
    """Show a thread's timeline."""
    from bot.usage.prices import load_prices

    rt = _runtime()
    thread = rt.store.load(thread_id)
    prices = load_prices(rt.settings.prices_file)
    if as_json:
        from bot.web.app import thread_out  # the web app's model of a thread; FastAPI only when asked

        click.echo(thread_out(thread, prices).model_dump_json(indent=2))
    else:
        from bot.commands.timeline import timeline
        from bot.usage.tokens import spent

        click.echo(timeline(thread, spent(thread.events, prices)))


@main.command()
@click.argument("thread_id")
@click.option("--approve", is_flag=True, help="Approve the pending action.")
@click.option("--reject", metavar="REASON", help="Reject the pending action, saying why.")
@click.option("--answer", metavar="TEXT", help="Answer the pending question.")
@click.option("--as", "responder", default=None, help="Who answers (default: $USER); must be an approver.")
@click.option(
    "--set",
    "edits",
    multiple=True,
    metavar="KEY=VALUE",
    help="With --approve: change one argument first (VALUE as JSON, else text); repeatable.",
)
@click.option(
    "--scope",
    type=click.Choice(["thread", "call", "tool"]),
    help="With --approve: a standing approval for this thread, these exact arguments, or the tool.",
)
@click.option("--hours", type=click.FloatRange(min=0, min_open=True), help="How long --scope lasts.")
@friendly_errors
def respond(
    thread_id: str,
    approve: bool,
    reject: str | None,
    answer: str | None,
    responder: str | None,
    edits: tuple[str, ...],
    scope: str | None,
    hours: float | None,
) -> None:
    """Answer the thread's pending request (an approval binds the arguments shown by `show`)."""
    if sum((approve, reject is not None, answer is not None)) != 1:
        raise click.UsageError("give exactly one of --approve, --reject REASON, --answer TEXT")
    if (edits or scope or hours) and not approve:
        raise click.UsageError("--set, --scope and --hours go with --approve")
    rt = _runtime()
    pending = rt.store.load(thread_id).pending
    if pending is None:
        raise click.ClickException(f"thread {thread_id} is not waiting for anyone")
    if pending.kind == "approval" and answer is not None:
        raise click.UsageError(f"thread {thread_id} waits for an approval: use --approve or --reject REASON")
    if pending.kind == "question" and answer is None:
        raise click.UsageError(f"thread {thread_id} waits for an answer to a question: use --answer TEXT")
    from agent.approvals import Standing, call_digest

    call = pending.call
    approved = True if approve else (False if reject is not None else None)
    appended = rt.respond(
        thread_id,
        pending.request_id,
        responder or _cli_origin().sender,
        approved=approved,
        comment=reject,
        answer=answer,
        channel="cli",
        digest=call_digest(call) if call is not None else None,
        arguments=_edited(call.arguments if call else {}, edits) if edits else None,
        standing=Standing(cast("GrantScope", scope), hours) if scope else None,
    )
    click.echo(f"{thread_id} {appended.thread.status.value}")


def _edited(arguments: dict[str, Any], edits: tuple[str, ...]) -> dict[str, Any]:
    """``arguments`` with each ``KEY=VALUE`` of ``--set`` applied; VALUE is JSON, or else text."""
    changed = dict(arguments)
    for edit in edits:
        name, sep, raw = edit.partition("=")
        if not sep or not name:
            raise click.UsageError(f"--set wants KEY=VALUE, not {edit!r}")
        try:
            changed[name] = json.loads(raw)
        except ValueError:
            changed[name] = raw
    return changed


def _control(name: str, action: Callable[[Runtime, str, str, str | None], Any], with_reason: bool) -> None:
    def command(thread_id: str, reason: str | None = None) -> None:
        appended = action(_runtime(), thread_id, _cli_origin().sender, reason)
        click.echo(f"{thread_id} {appended.thread.status.value}")

    decorated = friendly_errors(command)
    if with_reason:
        decorated = click.option("--reason", help="Why, recorded in the thread.")(decorated)
    main.command(name=name, help=f"{name.capitalize()} a thread.")(click.argument("thread_id")(decorated))


_control("pause", lambda rt, thread_id, by, reason: rt.pause(thread_id, by, reason), with_reason=True)
_control("resume", lambda rt, thread_id, by, reason: rt.resume(thread_id, by), with_reason=False)
_control("cancel", lambda rt, thread_id, by, reason: rt.cancel(thread_id, by, reason), with_reason=True)


@main.command()
@click.argument("thread_id")
@click.option("--at", type=int, required=True, help="Keep the first N events (1 to the thread's count).")
@friendly_errors
def fork(thread_id: str, at: int) -> None:
    """Copy a thread's first N events into a new thread and run it from there; prints the new id."""
    click.echo(_runtime().fork(thread_id, at).thread.id)


@main.group(invoke_without_command=True)
@click.pass_context
def tokens(ctx: click.Context) -> None:
    """Per-person API tokens: list them (the default), create or revoke one."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_tokens)


@tokens.command("list")
@friendly_errors
def list_tokens() -> None:
    """List tokens: id, person, created, note (never the secret)."""
    from bot.web.api_tokens import ApiTokens

    for token in ApiTokens(_runtime().connection).live():
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(token.created_at))
        click.echo(f"{token.id}  {token.person:<30} {created}  {token.note or ''}".rstrip())


@tokens.command("create")
@click.option("--for", "person", required=True, help="A Slack user id (U0123ABCD) or an email address.")
@click.option("--note", help="What the token is for, shown in the list.")
@friendly_errors
def create_token(person: str, note: str | None) -> None:
    """Make a token that answers as PERSON on the HTTP API; prints it once."""
    from bot.web.api_tokens import ApiTokens

    token, secret = ApiTokens(_runtime().connection).create(person, note)
    click.echo(f"token {token.id} for {token.person}; it is shown only now, keep it secret:", err=True)
    click.echo(secret)


@tokens.command("revoke")
@click.argument("token_id")
@friendly_errors
def revoke_token(token_id: str) -> None:
    """Revoke a token by its id: requests carrying it are refused from now on."""
    from bot.web.api_tokens import ApiTokens

    token = ApiTokens(_runtime().connection).revoke(token_id)
    click.echo(f"revoked {token.id} ({token.person})")


@main.command()
@friendly_errors
def grants() -> None:
    """List live standing approvals: id, scope, tool, who gave it, until when, where."""
    for grant in _runtime().grants.live():
        until = f"until {grant.until:%Y-%m-%d %H:%M} UTC" if grant.until else "until revoked"
        click.echo(
            f"{grant.grant_id}  {grant.scope:<6} {grant.agent}/{grant.tool}  by {grant.by}  {until}  "
            f"thread {grant.thread}"
        )


@main.command()
@click.argument("grant_id")
@click.option("--as", "by", default=None, help="Who revokes (default: $USER).")
@friendly_errors
def revoke(grant_id: str, by: str | None) -> None:
    """End a standing approval now: calls it covered ask for approval again."""
    grant = _runtime().revoke(grant_id, by or _cli_origin().sender)
    click.echo(f"revoked {grant.grant_id} ({grant.scope} {grant.agent}/{grant.tool} by {grant.by})")


@main.command()
@click.option("--since", default="7d", show_default=True, help="How far back: 7d, 12h, 30m.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@friendly_errors
def audit(since: str, as_json: bool, limit: int) -> None:
    """Every decision: who, which call, its argument digest, edits, the door, the grant."""
    from bot.approvals.audit import parse_since
    from bot.approvals.audit import since as decisions_since

    for decision in decisions_since(_runtime().connection, parse_since(since), limit):
        click.echo(decision.model_dump_json(exclude_none=True) if as_json else _audit_line(decision))


def _audit_line(decision: Decision) -> str:
    at = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(decision.at))
    what = f"{decision.tool} {decision.digest}" if decision.tool else (decision.grant or decision.request_id)
    notes = [
        f"edited {json.dumps(decision.arguments, sort_keys=True)}" if decision.arguments else "",
        f"under {decision.under}" if decision.under else "",
        f"gives {decision.gives['scope']} {decision.gives['grant_id']}" if decision.gives else "",
        "" if decision.counted else "(did not count)",
    ]
    extra = " ".join(note for note in notes if note)
    who = f"{decision.by} via {decision.channel or '?'}"
    return f"{at}  {decision.decision:<8} {who}  {what}  thread {decision.thread} {extra}".rstrip()


main.add_command(agents)
main.add_command(stats)


def _cli_origin() -> Origin:
    import getpass

    from agent.events import Origin

    return Origin(channel="cli", sender=getpass.getuser())


if __name__ == "__main__":
    main()
