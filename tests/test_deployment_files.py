"""docker-compose.yml and the Dockerfile, checked by reading: Docker does not run on the project's machines.

Each service must run a command that exists, with configuration the code actually reads, so a typo
in the compose file is caught here rather than by the first user with Docker.
"""

from __future__ import annotations

import importlib
import re
import shlex
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from engine.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def _commands(service: dict) -> list[list[str]]:
    """The ``samflyt``/``gunicorn`` command lines a service runs (``sh -c "a && b"`` split into both)."""
    command = service.get("command") or []
    if command[:2] == ["sh", "-c"]:
        return [shlex.split(part) for part in command[2].split("&&")]
    return [command]


def test_compose_runs_database_migrations_web_and_scheduler(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "migrate", "web", "scheduler"}
    assert _commands(services["scheduler"]) == [["samflyt", "scheduler"]]
    assert services["scheduler"]["stop_signal"] == "SIGTERM"  # the scheduler's clean shutdown
    for name in ("web", "scheduler"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_every_samflyt_command_in_compose_exists_and_its_paths_are_in_the_image(compose, monkeypatch, tmp_path):
    monkeypatch.setenv("SAMFLYT_SECRET_KEY", "compose-test")  # as compose requires; the WSGI module needs it
    monkeypatch.setenv("SAMFLYT_DATABASE_URL", f"sqlite:///{tmp_path / 'wsgi.db'}")
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    runner = CliRunner()
    for service in compose["services"].values():
        if "build" not in service:
            continue
        for argv in _commands(service):
            if argv[0] == "samflyt":
                words = [a for a in argv[1:] if not a.startswith("-")]
                result = runner.invoke(main, [words[0], "--help"])
                assert result.exit_code == 0, f"samflyt {words[0]}: {result.output}"
                for path in words[1:]:  # e.g. deploy bpmn/grant: in the repository and copied into the image
                    assert (ROOT / path).exists(), path
                    assert re.search(rf"^COPY {path.split('/')[0]} ", dockerfile, re.M), path
            else:
                assert argv[0] == "gunicorn"
                module, _, attr = argv[-1].partition(":")
                sys.modules.pop(module, None)
                assert hasattr(importlib.import_module(module), attr)
                assert "gunicorn" in (ROOT / "pyproject.toml").read_text(encoding="utf-8")


def test_compose_sets_only_configuration_the_code_reads_and_requires_a_secret(compose):
    read = set()
    for folder in ("engine", "web"):
        for source in (ROOT / folder).rglob("*.py"):
            read |= set(re.findall(r"SAMFLYT_[A-Z_]+", source.read_text(encoding="utf-8")))
    env = compose["services"]["web"]["environment"]
    assert set(env) <= read, set(env) - read
    assert env["SAMFLYT_ENV"] == "production"
    assert ":?" in env["SAMFLYT_SECRET_KEY"]  # no default secret: compose refuses to start without one
    assert env["SAMFLYT_DATABASE_URL"].startswith("postgresql://")
    web = compose["services"]["web"]
    mounted = {v.split(":", 1)[1] for v in web["volumes"]}
    assert env["SAMFLYT_ATTACHMENTS_DIR"] in mounted  # uploads outlive the container


def test_the_image_holds_every_package_the_project_installs():
    """``pip install .`` in the image finds what pyproject.toml names: each package folder is copied in."""
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    include = re.search(r'include = \[([^\]]*)\]', (ROOT / "pyproject.toml").read_text(encoding="utf-8")).group(1)
    for package in re.findall(r'"(\w+)\*"', include):
        assert re.search(rf"^COPY {package} \./{package}$", dockerfile, re.M), package
