"""Users, their roles and organisations, and the scopes organisations belong to."""

from __future__ import annotations

from sqlalchemy import select

from .. import authz, clock
from ..errors import (
    ConflictError,
    NotAuthorisedError,
    ValidationError,
)
from ..forms import message
from ..models import (
    Organisation,
    Role,
    User,
)
from ..texts import _
from .core import Core


class Directory:
    """Who is who: creating and changing users, placing organisations in scopes (audited)."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def add_user(self, username: str, roles: list[str] = (), organisations: list[str] = (),
                 display_name: str | None = None, email: str | None = None, actor: str | None = None) -> User:
        """Create or update a user; roles and organisations are created on first use."""
        with self.core.unit() as unit:
            s = unit.session
            user = s.scalar(select(User).where(User.username == username))
            if user is None:
                user = User(username=username, created_at=clock.now())
                s.add(user)
            user.display_name = display_name or user.display_name
            user.email = email or user.email
            for name in roles:
                role = s.scalar(select(Role).where(Role.name == name.lower())) or Role(name=name.lower())
                if role not in user.roles:
                    user.roles.append(role)
            for name in organisations:
                org = s.scalar(select(Organisation).where(Organisation.name == name)) or Organisation(name=name)
                if org not in user.organisations:
                    user.organisations.append(org)
            unit.audit("user_saved", actor, username=username, roles=sorted(user.role_names),
                       organisations=sorted(user.organisation_names))
        return user

    def set_scope(self, scope: str, organisations: list[str], actor: str | None = None,
                  action: str = "scope_saved") -> None:
        """Place ``organisations`` in the scope ``scope`` (created on first use), which tasks bound to a
        scope check (``samflyt.scopeField``); an organisation belongs to one scope, so placing it here moves
        it from any other. Audited as ``action`` (a package may keep the name its tools know)."""
        scope = scope.strip()
        organisations = [o.strip() for o in organisations if o.strip()]
        if not scope or not organisations:
            field = "scope" if not scope else "organisations"
            raise ValidationError({field: [message("required")]})
        if len(scope) > 200 or any(len(o) > 200 for o in organisations):
            raise ValidationError({"scope" if len(scope) > 200 else "organisations":
                                   [message("length", {"maxLength": 200})]})
        with self.core.unit() as unit:
            s = unit.session
            acting = s.scalar(select(User).where(User.username == actor)) if actor else None
            if acting is not None and not authz.is_admin(acting):  # a command-line operator is trusted
                raise NotAuthorisedError(_("%(user)s may not place organisations in scopes: %(reason)s", user=actor,
                                                       reason=_("admins only")))
            moved = []
            for name in organisations:
                org = s.scalar(select(Organisation).where(Organisation.name == name))
                if org is None:
                    org = Organisation(name=name)
                    s.add(org)
                if org.scope != scope:
                    moved.append({"organisation": name, "from": org.scope})
                    org.scope = scope
            unit.audit(action, actor, scope=scope, organisations=sorted(organisations), moved=moved)

    def set_user(self, username: str, roles: list[str], organisations: list[str], display_name: str | None,
                 email: str | None, active: bool, actor: str) -> None:
        """Create or change a user with exactly these roles and organisations (admins only; audited)."""
        with self.core.unit() as unit:
            s = unit.session
            if not authz.is_admin(self.core.user(s, actor)):
                raise NotAuthorisedError(_("%(user)s may not change users: %(reason)s", user=actor,
                                                       reason=_("admins only")))
            if username == actor and (not active or "admin" not in {r.lower() for r in roles}):
                raise ConflictError(_("you cannot take your own admin role or deactivate yourself"))
            user = s.scalar(select(User).where(User.username == username))
            if user is None:
                user = User(username=username, created_at=clock.now())
                s.add(user)
            user.display_name, user.email, user.active = display_name or None, email or None, active
            user.roles = [s.scalar(select(Role).where(Role.name == name.lower())) or Role(name=name.lower())
                          for name in dict.fromkeys(r.strip() for r in roles if r.strip())]
            user.organisations = [s.scalar(select(Organisation).where(Organisation.name == name))
                                  or Organisation(name=name)
                                  for name in dict.fromkeys(o.strip() for o in organisations if o.strip())]
            unit.audit("user_saved", actor, username=username, roles=sorted(user.role_names),
                       organisations=sorted(user.organisation_names), active=active)
