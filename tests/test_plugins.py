"""A package other than ``community`` plugs in through the entry points alone (engine/plugins.py): its
connector runs in a service task, its Alembic branch is upgraded with the others by ``init-db``, and its
bundle is offered for ``samflyt demo``. The package lives in a temporary folder with a ``.dist-info`` of its
own, found on ``PYTHONPATH`` by a fresh ``samflyt`` process (``load_group`` caches per process)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

import engine
from tests.bpmn_builder import chain, definitions, end, process, service_task, start

RECORDS = '''
from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from engine.models import Base


class Toy(Base):
    __tablename__ = "toyplugin_toys"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    instance_id: Mapped[int | None] = mapped_column(Integer)
'''

REVISION = '''
"""Toy records.

Revision ID: toy_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "toy_0001"
down_revision = None
branch_labels = ("toy",)
depends_on = "0014"


def upgrade() -> None:
    op.create_table(
        "toyplugin_toys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("toyplugin_toys")
'''

CONNECTORS = '''
from engine.connectors import StepContext
from toyplugin.records import Toy


def record(ctx: StepContext, name: str) -> int:
    row = Toy(name=name, instance_id=ctx.instance_id)
    ctx.session.add(row)
    ctx.session.flush()
    return row.id


def register(registry) -> None:
    registry.register("toy.record", record)
'''

BUNDLE = '''
from pathlib import Path


def toy() -> Path:
    return Path(__file__).parent / "bundle"
'''

#: the bundle's entry has the name of community's (``grant``) on purpose: a name two packages chose alike must
#: not hide one of them
ENTRY_POINTS = """[samflyt.connectors]
toy = toyplugin.connectors:register

[samflyt.migrations]
toy = toyplugin.migrations

[samflyt.bundles]
grant = toyplugin.bundles:toy
"""


def _write_plugin(root: Path) -> Path:
    package = root / "toyplugin"
    (package / "migrations" / "versions").mkdir(parents=True)
    (package / "bundle").mkdir()
    (package / "__init__.py").write_text("")
    (package / "records.py").write_text(RECORDS)
    (package / "migrations" / "__init__.py").write_text("from toyplugin import records  # noqa: F401\n")
    (package / "migrations" / "versions" / "toy_0001_records.py").write_text(REVISION)
    (package / "connectors.py").write_text(CONNECTORS)
    (package / "bundles.py").write_text(BUNDLE)
    (package / "bundle" / "toy_request.bpmn").write_text(definitions(process(
        "toy_request",
        start(),
        service_task("record", "toy.record", result="toy_id", name=("str", "name")),
        end(),
        chain("start", "record", "end"),
    )))
    dist = root / "toyplugin-0.0.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toyplugin\nVersion: 0.0.0\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    return package / "bundle"


def test_a_separate_package_plugs_in_through_entry_points(tmp_path):
    plugin_root = tmp_path / "site"
    bundle = _write_plugin(plugin_root)
    empty = tmp_path / "empty"
    empty.mkdir()
    db_file = tmp_path / "x.db"
    env = {**os.environ, "PYTHONPATH": str(plugin_root)}
    env.pop("SAMFLYT_DATABASE_URL", None)

    def run(*args: str) -> str:
        proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=empty, env=env,
                              timeout=120)
        assert proc.returncode == 0, f"{args}: {proc.stderr[-3000:]}"
        return proc.stdout

    def samflyt(*args: str) -> str:
        return run("-m", "engine.cli", "--db", f"sqlite:///{db_file}", "--json", *args)

    samflyt("init-db")
    deployed = json.loads(samflyt("deploy", str(bundle)))
    assert [d["process_id"] for d in deployed] == ["toy_request"]
    instance_id = json.loads(samflyt("start", "toy_request", "--data", '{"name": "teddy"}'))["id"]
    instance = json.loads(samflyt("instance", str(instance_id)))
    assert instance["status"] == "completed", instance

    with sqlite3.connect(db_file) as conn:
        rows = conn.execute("SELECT id, name, instance_id FROM toyplugin_toys").fetchall()
        stored = {row[0] for row in conn.execute("SELECT version_num FROM alembic_version")}
    assert rows == [(instance["data"]["toy_id"], "teddy", instance_id)]

    # the branches the fresh process found (the engine's, community's, the toy's) are all at their heads
    found = json.loads(run("-c", "import json; from engine.plugins import installed_bundles, migration_locations; "
                                 "print(json.dumps({'migrations': migration_locations(), "
                                 "'bundles': [str(b) for b in installed_bundles()]}))"))
    assert str(bundle) in found["bundles"]
    assert len(found["bundles"]) == len(set(found["bundles"])) > 1, found["bundles"]  # community's too
    toy_versions = str(plugin_root / "toyplugin" / "migrations" / "versions")
    assert toy_versions in found["migrations"]
    cfg = Config()
    here = Path(engine.__file__).parent / "migrations"
    cfg.set_main_option("script_location", str(here))
    cfg.set_main_option("path_separator", "space")
    cfg.set_main_option("version_locations", " ".join([str(here / "versions"), *found["migrations"]]))
    script = ScriptDirectory.from_config(cfg)
    assert "toy_0001" in stored, stored
    assert len(stored) > 1, f"the toy branch's head replaced the others: {stored}"
    reached = {rev.revision for rev in script.iterate_revisions(tuple(stored), "base")}
    assert set(script.get_heads()) <= reached, (script.get_heads(), stored)
    assert "0014" in reached
