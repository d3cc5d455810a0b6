"""The web app's command, added to ``samflyt`` through the ``samflyt.commands`` entry point: the engine's
command line composes, it does not import the web app."""

from __future__ import annotations

import click

from engine.cli import Context


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--debug", is_flag=True)
@click.option("--with-scheduler", is_flag=True,
              help="Also run the scheduler's jobs in this process (a one-process set-up for newcomers).")
@click.pass_obj
def serve(ctx: Context, host: str, port: int, debug: bool, with_scheduler: bool) -> None:
    """Run the web application (development server; use gunicorn in production)."""
    from . import create_app

    app = create_app({"DEV_SERVER": True, **({"DATABASE_URL": ctx.db_url} if ctx.db_url else {})})
    if with_scheduler:
        from engine.scheduler import start_background

        start_background(app.extensions["samflyt_runtime"])
    app.run(host=host, port=port, debug=debug, use_reloader=False)


def register(main: click.Group) -> None:
    main.add_command(serve)
