"""The console's standing approvals: the live ones, and ending one (as ``GET /grants`` and
``DELETE /grants/{id}`` do for the API). Ending a grant only takes authority away, so any
signed-in person may do it; it is recorded as theirs in the thread the grant was given in."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from bot.approvals.grants import GrantNotFound
from bot.console import access
from bot.console.app import checked_form, console_of, person_of
from bot.state.store import ThreadNotFound

router = APIRouter(prefix="/console/grants", include_in_schema=False)


@router.get("")
def grants(request: Request) -> Response:
    console, (session, person) = console_of(request), person_of(request)
    live = []
    for grant in console.rt.grants.live():
        try:
            visible = access.may_see(console.rt.settings, console.rt.store.load(grant.thread), person)
        except ThreadNotFound:
            visible = console.rt.settings.console_visibility == "all"
        if visible:
            live.append(grant)
    return console.render(request, session, "grants.html", grants=live)


@router.post("/{grant_id}/revoke")
async def revoke(request: Request, grant_id: str) -> Response:
    console, (session, person) = console_of(request), person_of(request)
    await checked_form(request, session)
    try:
        console.rt.revoke(grant_id[:100], person)
    except GrantNotFound as gone:
        return console.render(request, session, "problem.html", 404, title="Not found", message=str(gone))
    return console.redirect("/console/grants", session)
