"""The health community's processes: what a hospital trust and its municipalities run on the engine.

Everything the engine (:mod:`engine`) must not know lives here, and plugs in through the entry-point groups
of :mod:`engine.plugins` (declared in ``pyproject.toml``):

* ``records.py`` -- the domain's tables (grant calls, applications, reviews, reports, the funds ledger,
  meeting cases, documents), on the engine's metadata;
* ``migrations/versions/`` -- their Alembic branch (``community``), upgraded by ``samflyt init-db``;
* ``connectors/`` -- the service-task connectors ``grants.*``, ``ledger.*``, ``meetings.*``, ``documents.*``;
* ``documents.py`` and ``templates/`` -- letters and reports as archival PDFs, XLSX/CSV exports;
* ``scopes.py`` -- the health community as the engine's scope, and the working committee (AU) as its
  supervisors;
* ``pages/`` -- the web pages (open calls, grant overviews) and their menu entries;
* ``cli.py`` -- the domain's commands (``samflyt users community``);
* ``bundles.py`` -- the process bundles in ``bpmn/`` that ``samflyt demo`` deploys.

A new process family (meetings, agreements) adds its module to each of these, and nothing to the engine.
"""
