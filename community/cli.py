"""The health community's commands, added to ``samflyt`` through the ``samflyt.commands`` entry point."""

from __future__ import annotations

import click

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


def register(main: click.Group) -> None:
    users = main.commands["users"]
    assert isinstance(users, click.Group)
    users.add_command(users_community)
