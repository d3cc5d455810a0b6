"""The health community's commands, added to ``samflyt`` through the ``samflyt.commands`` entry point."""

from __future__ import annotations

import click

from community.connectors.agreements import list_agreements
from community.connectors.meetings import CASE_STATUSES, list_cases, list_meetings
from engine import clock
from engine.calendar import local_date
from engine.cli import Context
from engine.errors import ValidationError

#: the audit action of placing organisations, as the command has always recorded it
AUDIT_ACTION = "community_saved"


@click.command("community")
@click.argument("community")
@click.argument("organisations", nargs=-1, required=True)
@click.pass_obj
def users_community(ctx: Context, community: str, organisations: tuple[str, ...]) -> None:
    """Place ORGANISATIONS in the health community COMMUNITY (tasks bound to a community check it)."""
    try:
        ctx.runtime.set_scope(community, list(organisations), action=AUDIT_ACTION)
    except ValidationError as exc:  # the engine's scope is the community here: say so by its name
        raise ValidationError({"community" if field == "scope" else field: messages
                               for field, messages in exc.messages.items()}) from None
    ctx.emit({"community": community, "organisations": sorted(organisations)},
             f"{community}: {', '.join(organisations)}")


@click.command("cases")
@click.option("--committee", help="SSU, AU or FSU.")
@click.option("--status", type=click.Choice(CASE_STATUSES), help="Only cases in this status.")
@click.pass_obj
def cases(ctx: Context, committee: str | None, status: str | None) -> None:
    """List the committees' cases (saker), per community and committee in number order."""
    with ctx.runtime.Session() as session:
        rows = list_cases(session, committee, status)
    ctx.emit(rows, "\n".join(
        f"{r['number']}  {r['committee']}  {r['community'] or '-'}  {r['type']}  {r['status']}"
        f"{'  møte ' + str(r['meeting_id']) if r['meeting_id'] else ''}  {r['title']}" for r in rows) or "(none)")


@click.command("meetings")
@click.option("--committee", help="SSU, AU or FSU.")
@click.pass_obj
def meetings(ctx: Context, committee: str | None) -> None:
    """List the committees' meetings with the case numbers on their agendas."""
    with ctx.runtime.Session() as session:
        rows = list_meetings(session, committee)
    ctx.emit(rows, "\n".join(
        f"{r['id']}  {r['committee']}  {r['community'] or '-'}  {r['starts_at']}  {r['status']}  "
        f"{r['place'] or '-'}  saker: {', '.join(r['cases']) or '-'}" for r in rows) or "(none)")


@click.command("agreements")
@click.option("--community", help="Only this health community's agreements.")
@click.pass_obj
def agreements(ctx: Context, community: str | None) -> None:
    """List the register of agreements: the current version of each, its status, effective date and next
    planned evaluation."""
    with ctx.runtime.Session() as session:
        rows = list_agreements(session, community, local_date(clock.now()))
    ctx.emit(rows, "\n".join(
        f"{r['id']}  {r['community']}  {r['letter'] or '-'}  {r['title']}  v{r['version'] or '-'}  "
        f"{r['status'] or '-'}  fra {r['effective_from'] or '-'}  evaluering {r['next_evaluation'] or '-'}"
        for r in rows) or "(none)")


def register(main: click.Group) -> None:
    users = main.commands["users"]
    assert isinstance(users, click.Group)
    users.add_command(users_community)
    main.add_command(cases)
    main.add_command(meetings)
    main.add_command(agreements)
