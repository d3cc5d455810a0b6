"""The health community as the engine's scope.

A task or case bound to a health community (``samflyt.communityField``, the property the grant diagrams
use) is bound to the engine's scope of that name: only people of that community's organisations work it,
and its working committee (AU) supervises it -- one community's AU neither sees nor reassigns another's
cases. Registered through the ``samflyt.narrowing`` entry point.
"""

from __future__ import annotations

from engine import authz

#: the task property of the grant diagrams that names the data field holding the case's community
COMMUNITY_PROPERTY = "samflyt.communityField"
#: the working committee (arbeidsutvalget) oversees the work of its community
SUPERVISOR_ROLES = ("au",)


def register() -> None:
    authz.register_scope_property(COMMUNITY_PROPERTY)
    authz.register_supervisor_roles(*SUPERVISOR_ROLES)
