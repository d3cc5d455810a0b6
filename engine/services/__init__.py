"""The runtime's services, one job each, sharing one :class:`~engine.services.core.Core`:

* :mod:`.directory` -- users, roles, organisations and their scopes;
* :mod:`.repository` -- the model repository: deploy, names, latest versions, what people may start;
* :mod:`.instances` -- start, cancel, retry, messages, connectors run by an operator;
* :mod:`.tasks` -- human tasks: permissions, claim, reassign, forms, complete;
* :mod:`.migration` -- moving running instances to another version of their process;
* :mod:`.timers` -- firing due timers across schedulers;
* :mod:`.reads` -- read models for pages and the CLI.

:class:`engine.runtime.Runtime` composes them behind the one API that the CLI, the scheduler, the web app
and the tests use.
"""
