"""The ``samflyt`` command line: deploy, start, work and inspect processes.

Packages add their own commands through the ``samflyt.commands`` entry-point group: each entry is a
callable that receives the ``samflyt`` group (the web app adds ``serve``; a domain package its own), so
this module imports no package that builds on the engine.

Global options come before the command: ``samflyt [--db URL] [--json] COMMAND ...``. Every failure
exits non-zero with one line on stderr. ``--json`` prints stable machine output (see the README);
other tools script against these command names and fields, so they are extended, never renamed.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from sqlalchemy.exc import DBAPIError

from . import clock, payload
from .errors import SamflytError
from .worklist import VIEWS


class Context:
    def __init__(self, db_url: str | None, as_json: bool) -> None:
        self.db_url = db_url
        self.as_json = as_json
        self._runtime = None

    @property
    def runtime(self):
        if self._runtime is None:
            from .runtime import open_runtime

            self._runtime = open_runtime(self.db_url)
        return self._runtime

    def emit(self, value: Any, text: str | None = None) -> None:
        if self.as_json:
            click.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))
        else:
            click.echo(text if text is not None else _human(value))


def _human(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(_human(v) for v in value) if value else "(none)"
    if isinstance(value, dict):
        return "  ".join(f"{k}={json.dumps(v, ensure_ascii=False, default=str)}" for k, v in value.items())
    return str(value)


def _json_arg(text: str | None, what: str = "--data") -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = payload.loads(text)
    except json.JSONDecodeError as exc:
        raise click.UsageError(f"{what} is not valid JSON: {exc.msg}") from None
    except ValueError as exc:
        raise click.UsageError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise click.UsageError(f"{what} must be a JSON object")
    return value


pass_ctx = click.make_pass_decorator(Context)


class SamflytGroup(click.Group):
    """Turns engine errors into one line on stderr and a non-zero exit code, and offers the commands of
    installed packages (``samflyt.commands`` entry points: ``register(group)``), added when first asked
    for so that importing this module imports none of them. Their commands take the :class:`Context`
    with ``click.pass_obj``."""

    _installed_added = False

    def _add_installed(self) -> None:
        if not self._installed_added:
            self._installed_added = True
            from .plugins import load_group

            for register in load_group("samflyt.commands"):
                register(self)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._add_installed()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._add_installed()
        return super().list_commands(ctx)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SamflytError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code if exc.exit_code else 1)
        except DBAPIError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else exc.__class__.__name__
            if "locked" in reason:  # SQLite's one writer is busy: a long step, not a missing database
                hint = "another step is writing; try again"
            else:
                hint = "is the database reachable and initialised? run `samflyt init-db`"
            click.echo(f"error: database: {reason} ({hint})", err=True)
            sys.exit(2)


@click.group(cls=SamflytGroup)
@click.option("--db", "db_url", envvar="SAMFLYT_DATABASE_URL", metavar="URL",
              help="Database URL (default: SAMFLYT_DATABASE_URL, else sqlite:///instance/samflyt.db).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
@click.pass_context
def main(ctx: click.Context, db_url: str | None, as_json: bool) -> None:
    """Samflyt: a BPMN workflow engine (SpiffWorkflow) with its state in a database."""
    ctx.obj = Context(db_url, as_json)


@main.command("init-db")
@pass_ctx
def init_db(ctx: Context) -> None:
    """Create or upgrade the database schema (Alembic migrations)."""
    from .db import make_engine, migrate

    engine = make_engine(ctx.db_url)
    migrate(engine)
    ctx.emit({"database": engine.url.render_as_string(hide_password=True), "status": "ok"},
             f"database ready: {engine.url.render_as_string(hide_password=True)}")


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--as", "actor", metavar="USER", help="Deploy as this user (must be admin).")
@pass_ctx
def deploy(ctx: Context, paths: tuple[str, ...], actor: str | None) -> None:
    """Deploy a bundle: folders and files of .bpmn, .dmn and form .json."""
    results = ctx.runtime.deploy(list(paths), actor=actor)
    ctx.emit([{"process_id": r.process_id, "version": r.version, "created": r.created} for r in results],
             "\n".join(f"{r.process_id} v{r.version} {'deployed' if r.created else 'unchanged'}"
                       for r in results))


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 listing the files whose DI is not up to date.")
@pass_ctx
def layout(ctx: Context, paths: tuple[str, ...], check: bool) -> None:
    """Rewrite the diagram layout (BPMN DI) of .bpmn files (folders: every .bpmn in them) in place."""
    from .bpmn_layout import bpmn_files, condition_order_changes, layout_file

    files = bpmn_files(paths)
    changed = [str(f) for f in files if layout_file(f, write=not check)]
    for warning in ([] if check else [w for f in files for w in condition_order_changes(f.read_bytes())]):
        click.echo(f"warning: {warning}", err=True)
    ctx.emit({"files": [str(f) for f in files], "changed": changed, "check": check},
             ("\n".join(changed) or f"{len(files)} file(s) up to date") if check
             else f"laid out {len(files)} file(s), {len(changed)} changed")
    if check and changed:
        click.echo(f"error: {len(changed)} file(s) need `samflyt layout`", err=True)
        sys.exit(1)


@main.command()
@pass_ctx
def models(ctx: Context) -> None:
    """List deployed process models and their latest versions."""
    rows = ctx.runtime.models()
    ctx.emit(rows, "\n".join(f"{m['process_id']}  v{m['latest_version']}  {m['name'] or ''}" for m in rows)
             or "(no models deployed)")


@main.group()
def users() -> None:
    """Manage users, roles and organisations."""


@users.command("add")
@click.argument("name")
@click.option("--role", "roles", multiple=True, help="Role (repeatable); created on first use.")
@click.option("--org", "orgs", multiple=True, help="Organisation (repeatable); created on first use.")
@click.option("--email")
@click.option("--display-name")
@pass_ctx
def users_add(ctx: Context, name: str, roles: tuple[str, ...], orgs: tuple[str, ...], email: str | None,
              display_name: str | None) -> None:
    """Create or update user NAME."""
    user = ctx.runtime.add_user(name, list(roles), list(orgs), display_name=display_name, email=email)
    ctx.emit({"username": user.username, "roles": sorted(user.role_names),
              "organisations": sorted(user.organisation_names)})


@users.command("password")
@click.argument("name")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="The new password (asked for when not given).")
@pass_ctx
def users_password(ctx: Context, name: str, password: str) -> None:
    """Set the sign-in password of user NAME (at least 8 characters; stored as an argon2 hash)."""
    from .accounts import set_password

    with ctx.runtime.session() as s:
        set_password(s, name, password)
    ctx.emit({"username": name, "password_set": True}, f"password set for {name}")


@main.command()
@click.argument("process_id")
@click.option("--data", help="Start data as a JSON object.")
@click.option("--key", "business_key", help="Business key (e.g. a case number).")
@click.option("--title", help="A title shown in worklists.")
@click.option("--as", "actor", metavar="USER")
@pass_ctx
def start(ctx: Context, process_id: str, data: str | None, business_key: str | None, title: str | None,
          actor: str | None) -> None:
    """Start an instance of the latest version of PROCESS_ID; prints its id."""
    instance_id = ctx.runtime.start(process_id, _json_arg(data), business_key, actor, title)
    ctx.emit({"id": instance_id}, str(instance_id))


@main.command()
@click.argument("instance_id", type=int)
@pass_ctx
def instance(ctx: Context, instance_id: int) -> None:
    """Show an instance: status, data, ready tasks, waiting timers."""
    view = ctx.runtime.instance(instance_id).as_json()
    lines = [f"instance {view['id']}  {view['process_id']} v{view['version']}  {view['status']}"]
    if view["error"]:
        lines.append(f"error at {view['error']['element']}: {view['error']['message']}")
    lines.append("data: " + json.dumps(view["data"], ensure_ascii=False, default=str))
    lines += [f"task {t['id']}  {t['name']}  {t['title']}  lane={t['lane']}  claimed_by={t['claimed_by']}"
              for t in view["tasks"]]
    lines += [f"timer {t['task']}  due {t['due_at']}" for t in view["timers"]]
    ctx.emit(view, "\n".join(lines))


@main.command()
@click.option("--instance", "instance_id", type=int)
@click.option("--user", metavar="U", help="Only tasks U may work: claimed by U or open to U's roles.")
@click.option("--view", type=click.Choice(VIEWS), default="workable", show_default=True,
              help="With --user: which of U's worklists.")
@click.option("--page", "page_number", type=click.IntRange(1), default=1, show_default=True,
              help="With --user: the page to show.")
@click.option("--per-page", type=click.IntRange(1, 1000), default=50, show_default=True,
              help="With --user: tasks per page.")
@pass_ctx
def tasks(ctx: Context, instance_id: int | None, user: str | None, view: str, page_number: int,
          per_page: int) -> None:
    """List open human tasks, oldest first. With --user they are paged by the database, as the worklist
    pages are."""
    if user is None:
        views = [t.as_json() for t in ctx.runtime.tasks(instance_id=instance_id)]
        footer = ""
    else:
        found, page = ctx.runtime.task_page(user, view, page_number, per_page, instance_id=instance_id)
        views = [t.as_json() for t in found]
        count = f"more than {page.total}" if page.more else str(page.total)
        footer = (f"\npage {page.page} of {'more than ' if page.more else ''}{page.pages} ({count} tasks)"
                  if page.pages > 1 or page.more or page.page > 1 else "")
    ctx.emit(views, "\n".join(
        f"{t['id']}  {t['name']}  {t['title']}  instance={t['instance_id']}  lane={t['lane']}  "
        f"claimed_by={t['claimed_by']}" for t in views) + footer if views else "(no open tasks)" + footer)


@main.command()
@click.argument("task_id")
@click.option("--as", "actor", metavar="USER", required=True)
@pass_ctx
def claim(ctx: Context, task_id: str, actor: str) -> None:
    """Claim a task."""
    view = ctx.runtime.claim(task_id, actor)
    ctx.emit(view.as_json(), f"claimed {task_id} as {actor}")


@main.command()
@click.argument("task_id")
@click.option("--as", "actor", metavar="USER", required=True)
@pass_ctx
def unclaim(ctx: Context, task_id: str, actor: str) -> None:
    """Give a claimed task back to its group."""
    ctx.runtime.unclaim(task_id, actor)
    ctx.emit({"id": task_id, "claimed_by": None}, f"unclaimed {task_id}")


@main.command()
@click.argument("task_id")
@click.option("--to", "assignee", metavar="USER", required=True)
@click.option("--as", "actor", metavar="USER", required=True)
@click.option("--reason")
@pass_ctx
def assign(ctx: Context, task_id: str, assignee: str, actor: str, reason: str | None) -> None:
    """Assign a task to a user (admins)."""
    ctx.runtime.assign(task_id, assignee, actor, reason)
    ctx.emit({"id": task_id, "claimed_by": assignee}, f"assigned {task_id} to {assignee}")


@main.command()
@click.argument("task_id")
@click.option("--as", "actor", metavar="USER", required=True)
@click.option("--data", help="Form data as a JSON object.")
@pass_ctx
def complete(ctx: Context, task_id: str, actor: str, data: str | None) -> None:
    """Complete a task with form data; the instance runs on to its next wait."""
    view = ctx.runtime.complete(task_id, actor, _json_arg(data))
    ctx.emit(view.as_json(), f"completed {task_id}; instance {view.id} is {view.status}")


@main.command()
@click.argument("name")
@click.option("--data", help="Message payload as a JSON object.")
@click.option("--correlation", "correlations", multiple=True, metavar="K=V",
              help="Correlation value by correlation property id (repeatable). V is JSON if it parses.")
@click.option("--as", "actor", metavar="USER")
@pass_ctx
def message(ctx: Context, name: str, data: str | None, correlations: tuple[str, ...], actor: str | None) -> None:
    """Send message NAME to the instance waiting for it, or start one that catches it."""
    values: dict[str, Any] = {}
    for item in correlations:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.UsageError(f"--correlation needs K=V, got '{item}'")
        try:
            values[key] = payload.loads(raw)
        except json.JSONDecodeError:
            values[key] = raw
        except ValueError as exc:
            raise click.UsageError(f"--correlation {key}: {exc}") from None
    result = ctx.runtime.send_message(name, _json_arg(data), values or None, actor)
    ctx.emit(result.as_json(), f"message {name}: {result.status}"
             + (f" to instance {result.instance_id}" if result.instance_id else ""))
    if result.status == "held":
        click.echo(f"note: instance {result.instance_id} waits for it but is in error; message {result.id} is "
                   "kept for it and delivered when it is retried", err=True)
    elif result.status != "delivered":
        click.echo(f"error: nobody waits for message '{name}' with these correlations; kept as "
                   f"undeliverable message {result.id} (see `samflyt messages`)", err=True)
        sys.exit(3)


@main.command("connector")
@click.argument("name")
@click.option("--params", help="Parameters as a JSON object.")
@click.option("--as", "actor", metavar="ADMIN", help="An admin; without it, whoever may write the database.")
@pass_ctx
def run_connector(ctx: Context, name: str, params: str | None, actor: str | None) -> None:
    """Run connector NAME outside any process, audited (e.g. to record a figure that comes from outside)."""
    result = ctx.runtime.call_connector(name, _json_arg(params), actor)
    ctx.emit(result, json.dumps(result, ensure_ascii=False, default=str))


@main.command()
@click.option("--status", type=click.Choice(["delivered", "undeliverable", "held"]))
@pass_ctx
def messages(ctx: Context, status: str | None) -> None:
    """List messages sent, including undeliverable ones and those held for an instance in error."""
    ctx.emit(ctx.runtime.messages(status))


@main.command()
@click.option("--now", "now", metavar="ISO8601", help="Fire what is due at this moment (default: now).")
@pass_ctx
def tick(ctx: Context, now: str | None) -> None:
    """Fire the timers that are due."""
    moment = clock.now()
    if now:
        try:
            moment = clock.to_utc(now)
        except ValueError:
            raise click.UsageError(f"--now is not an ISO 8601 date-time: {now}") from None
    fired = ctx.runtime.fire_due_timers(moment)
    ctx.emit({"now": moment.isoformat(), "instances": fired},
             f"fired timers in {len(fired)} instance(s)" + (f": {fired}" if fired else ""))


@main.command()
@click.option("--status", type=click.Choice(["pending", "sent", "failed"]))
@pass_ctx
def outbox(ctx: Context, status: str | None) -> None:
    """List mail in the outbox: pending, sent and failed messages."""
    from .mail import outbox as list_outbox

    ctx.emit(list_outbox(ctx.runtime.Session, status))


@main.command()
@pass_ctx
def timers(ctx: Context) -> None:
    """List waiting timers with due times and lateness."""
    ctx.emit(ctx.runtime.timers())


@main.command()
@click.argument("instance_id", type=int)
@click.option("--as", "actor", metavar="USER")
@click.option("--reason")
@pass_ctx
def cancel(ctx: Context, instance_id: int, actor: str | None, reason: str | None) -> None:
    """Cancel an instance."""
    ctx.runtime.cancel(instance_id, actor, reason)
    ctx.emit({"id": instance_id, "status": "cancelled"}, f"instance {instance_id} cancelled")


@main.command()
@click.argument("instance_id", type=int)
@click.option("--as", "actor", metavar="USER")
@pass_ctx
def retry(ctx: Context, instance_id: int, actor: str | None) -> None:
    """Run an instance in error again from its failed step."""
    status = ctx.runtime.retry(instance_id, actor)
    ctx.emit({"id": instance_id, "status": status}, f"instance {instance_id} is {status}")


@main.command()
@click.argument("process_id")
@click.option("--from", "from_version", type=click.IntRange(min=1), required=True, metavar="V",
              help="The version the instances run on now.")
@click.option("--to", "to_version", type=click.IntRange(min=1), required=True, metavar="W",
              help="The version to move them to.")
@click.option("--dry-run", is_flag=True, help="Say what would move and what not; change nothing.")
@click.option("--instance", "instance_ids", type=click.IntRange(min=1), multiple=True, metavar="ID",
              help="Only this instance (repeatable); default: every active instance on version V.")
@click.option("--as", "actor", metavar="ADMIN", help="An admin; without it, whoever may write the database.")
@pass_ctx
def migrate(ctx: Context, process_id: str, from_version: int, to_version: int, dry_run: bool,
            instance_ids: tuple[int, ...], actor: str | None) -> None:
    """Move running instances of PROCESS_ID from version V to W; each one moves, or is refused with the reasons."""
    outcomes = ctx.runtime.migrate(process_id, from_version, to_version, actor, dry_run=dry_run,
                                   instance_ids=list(instance_ids) or None)
    rows = [o.as_json() for o in outcomes]
    lines = [f"instance {r['instance_id']}  {r['status']}" + (f": {'; '.join(r['reasons'])}" if r["reasons"] else "")
             for r in rows]
    counts = {status: sum(r["status"] == status for r in rows) for status in ("migrated", "would_migrate", "refused")}
    lines.append(", ".join(f"{n} {status.replace('_', ' ')}" for status, n in counts.items() if n)
                 or f"no active instances of {process_id} on version {from_version}")
    ctx.emit(rows, "\n".join(lines))


@main.command()
@click.option("--instance", "instance_id", type=int)
@pass_ctx
def audit(ctx: Context, instance_id: int | None) -> None:
    """Show the audit log."""
    ctx.emit(ctx.runtime.audit(instance_id))


@main.command()
@click.option("--once", is_flag=True, help="Run one pass and exit (cron-style use, tests).")
@click.option("--interval", default=1.0, show_default=True, type=float, help="Poll interval in seconds.")
@click.option("--workers", type=int, help="Threads firing timers (default: 4 on PostgreSQL, 1 on SQLite).")
@pass_ctx
def scheduler(ctx: Context, once: bool, interval: float, workers: int | None) -> None:
    """Fire due timers: once, or as a long-running process."""
    import logging

    from .scheduler import default_workers, run_forever, run_once

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("spiff").setLevel(logging.WARNING)  # SpiffWorkflow logs every task state change
    if once:
        fired = run_once(ctx.runtime, workers or default_workers(ctx.runtime))
        ctx.emit({"instances": fired}, f"fired timers in {len(fired)} instance(s)")
    else:
        run_forever(ctx.runtime, interval, workers)


@main.command()
@click.option("--bundle", "bundles", multiple=True,
              help="Bundle folder(s) to deploy; a demo.json in a folder names users, instances and scenario steps. "
                   "Default: the bundles installed packages offer (samflyt.bundles entry points).")
@click.option("--as-recorded", is_flag=True,
              help="Run the scenarios on the dates they were written for, instead of moving them by whole years so "
                   "that each ends no later than today.")
@pass_ctx
def demo(ctx: Context, bundles: tuple[str, ...], as_recorded: bool) -> None:
    """Set up a demo database: schema, bundles, the scopes and users their demo.json lists, and its instances or
    scenario steps (see engine/scenario.py), which move processes through a simulated year.

    A scenario written for an earlier year is moved by whole years so that its last step lies within the year
    before today: its tasks are then due as they would be now, not all a year overdue.

    Running it again changes nothing: users are updated, and instances whose business key exists are not
    started twice (a scenario whose first instance exists is not run again).
    """
    from pathlib import Path

    from . import clock
    from .calendar import local_date
    from .db import migrate
    from .plugins import installed_bundles
    from .scenario import Scenario, shift_years, years_behind

    bundles = bundles or tuple(str(path) for path in installed_bundles())
    if not bundles:
        raise click.UsageError("no bundle given and no installed package offers one: use --bundle PATH")
    rt = ctx.runtime
    migrate(rt.engine)
    fixtures = [json.loads(p.read_text(encoding="utf-8")) for b in bundles if (p := Path(b) / "demo.json").is_file()]
    for scope in (c for f in fixtures for c in f.get("scopes", [])):
        rt.set_scope(scope["name"], scope.get("organisations", []), actor="demo")
    users = [u for f in fixtures for u in f.get("users", [])]
    for user in users:
        rt.add_user(user["username"], user.get("roles", []), user.get("organisations", []),
                    user.get("display_name"), user.get("email"), actor="demo")
    passwords = _demo_passwords(rt, [u["username"] for u in users])
    deployer = next((u["username"] for u in users if "admin" in u.get("roles", [])), None)
    # each bundle on its own: two bundles may each have files of the same name (names.nn.json, say)
    results = [r for bundle in bundles for r in rt.deploy([bundle], actor=deployer)]
    existing = {i["business_key"] for i in rt.instances_summary()}
    started = [rt.start(i["process_id"], i.get("data"), i.get("business_key"), i.get("started_by"), i.get("title"))
               for f in fixtures for i in f.get("instances", []) if i.get("business_key") not in existing]
    for fixture in fixtures:
        steps = fixture.get("steps", [])
        years = 0 if as_recorded else years_behind(steps, local_date(clock.now()))
        # run before, on its recorded dates or moved by fewer years (an older demo database): not again
        first_keys = {next((step.get("key") for step in shift_years(steps, n) if "start" in step), None)
                      for n in range(years + 1)}
        if not steps or (first_keys - {None}) & existing:
            continue
        steps = shift_years(steps, years)  # dated so that it reads as current, not a year overdue
        scenario = Scenario(rt)
        try:
            scenario.run(steps)
        finally:
            clock.set_now(None)
        started.extend(scenario.refs.values())
    ctx.emit({"deployed": [r.process_id for r in results], "users": [u["username"] for u in users],
              "started": started, "passwords": passwords},
             f"demo ready: {len(results)} process(es), {len(users)} user(s), {len(started)} new instance(s)")
    if passwords and not ctx.as_json:
        roles = {u["username"]: ", ".join(u.get("roles", [])) for u in users}
        click.echo("\nSign in at http://127.0.0.1:5000/ as (new passwords, shown once):")
        for name, password in passwords.items():
            click.echo(f"  {name:<10} {password:<14} {roles.get(name, '')}")


def _demo_passwords(rt, usernames: list[str]) -> dict[str, str]:
    """A random password for each demo user who has none yet (printed once; run again, nothing changes)."""
    from sqlalchemy import select

    from .accounts import new_password, set_password
    from .models import User

    created = {}
    with rt.session() as s:
        without = set(s.scalars(select(User.username).where(User.username.in_(usernames),
                                                            User.password_hash.is_(None))))
        for name in usernames:
            if name in without:
                created[name] = new_password()
                set_password(s, name, created[name])
    return created


if __name__ == "__main__":  # pragma: no cover
    main()
