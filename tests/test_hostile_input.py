"""Input an attacker or an accident sends: NUL bytes, absurd numbers, deep JSON, NaN, tricky redirects.

Each gets a 400/422 or a one-line ``error:`` and changes nothing (issue "Failure paths", point 7, 2, 11);
on PostgreSQL too, where a NUL in text and an integer beyond 64 bits used to be an HTTP 500.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine import payload
from engine.errors import ValidationError
from engine.models import AuditEvent, SignInAttempt
from tests.test_web import _form, client_for, site  # noqa: F401 - the fixture


def _audit_rows(rt) -> int:
    with rt.Session() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent))


@pytest.mark.parametrize("path", [
    "/tasks?q=%00", "/tasks?q=a%00b", "/tasks?view=mine%00", "/instances/1%00",
])
def test_a_nul_in_the_url_is_a_400_that_says_why(site, path):  # noqa: F811
    app, _ = site
    response = client_for(app, "ada").get(path)
    assert response.status_code == 400
    assert "NUL" in response.get_data(as_text=True)


def test_a_nul_in_a_form_field_a_user_name_or_a_file_name_changes_nothing(site, tmp_path, monkeypatch):  # noqa: F811
    app, y = site
    monkeypatch.setenv("SAMFLYT_ATTACHMENTS_DIR", str(tmp_path / "files"))
    rt = y.rt
    before = _audit_rows(rt)
    with rt.Session() as s:
        attempts = s.scalar(select(func.count()).select_from(SignInAttempt))
    signin = app.test_client().post("/sign-in", data={"username": "ada\x00", "password": "x"})
    assert signin.status_code == 400
    with rt.Session() as s:
        assert s.scalar(select(func.count()).select_from(SignInAttempt)) == attempts  # not even counted
    ada = client_for(app, "ada")
    task = y.task("app", "fill_application")
    title = ada.post(f"/tasks/{task}", data={**_form("Trygg\x00hjemkomst"), "_action": "complete"})
    assert title.status_code == 400
    upload = ada.post(f"/tasks/{task}", data={**_form(), "_action": "complete",
                                              "attachment": (io.BytesIO(b"%PDF-1.7 plan"), "plan\x00.pdf")},
                      content_type="multipart/form-data")
    assert upload.status_code == 400
    assert not (tmp_path / "files").exists() or not any((tmp_path / "files").iterdir())  # no file left behind
    assert y.task("app", "fill_application") == task  # still open
    assert _audit_rows(rt) == before


def test_an_absurd_page_number_is_the_last_page_not_a_500(site):  # noqa: F811
    app, _ = site
    ada = client_for(app, "ada")
    for page in ("99999999999999999999", "-5", "abc", "9" * 400):
        response = ada.get(f"/tasks?page={page}")
        assert response.status_code == 200, page


def test_an_absurd_id_in_a_url_is_a_404(site):  # noqa: F811
    app, _ = site
    ada = client_for(app, "ada")
    for path in ("/instances/99999999999999999999", "/instances/" + "9" * 400, "/instances/2147483648"):
        assert ada.get(path).status_code == 404, path


def test_an_integer_beyond_64_bits_is_a_field_error_on_the_page_and_in_the_engine(site):  # noqa: F811
    app, y = site
    ada = client_for(app, "ada")
    task = y.task("app", "fill_application")
    before = _audit_rows(y.rt)
    form = {**_form(), "_action": "complete", "budget.0.amount": "1" + "0" * 30}
    response = ada.post(f"/tasks/{task}", data=form)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "for stort til å lagres" in html  # the field's own message, in bokmål
    data = y.data("app")
    data_form = {k: v for k, v in data.items() if k in ("title",)}
    with pytest.raises(ValidationError) as refused:
        y.rt.complete(task, "ada", {**data_form, "budget": [{"party": "Horten kommune", "year": 2025,
                                                              "amount": 10**30}]})
    assert "budget.0.amount" in str(refused.value)
    assert y.task("app", "fill_application") == task
    assert _audit_rows(y.rt) == before


@pytest.mark.parametrize("value, where", [
    ({"title": "a\x00b"}, "title"),
    ({"x": float("nan")}, "x"),
    ({"x": float("inf")}, "x"),
    ({"rows": [{"n": 2**64}]}, "rows.0.n"),
    ({"deep": json.loads("[" * 70 + "]" * 70)}, "deep"),
])
def test_the_engine_refuses_what_cannot_be_stored_before_writing(site, value, where):  # noqa: F811
    _, y = site
    task = y.task("app", "fill_application")
    before = _audit_rows(y.rt)
    with pytest.raises(ValidationError) as refused:
        y.rt.complete(task, "ada", value)
    assert where in str(refused.value)
    with pytest.raises(ValidationError):
        y.rt.send_message("ssu_decision", value, {"case_id": "2025.01"})
    assert _audit_rows(y.rt) == before


def test_strict_json_refuses_nan_and_absurd_nesting_with_a_value_error():
    with pytest.raises(ValueError, match="NaN"):
        payload.loads('{"a": NaN}')
    with pytest.raises(ValueError, match="nested"):
        payload.loads("[" * 50_000 + "]" * 50_000)
    assert payload.loads('{"a": [1, 2.5, "x"]}') == {"a": [1, 2.5, "x"]}


@pytest.mark.parametrize("target", ["/\\evil.example", "/\\/evil.example", "//evil.example",
                                    "https://evil.example/", "/\tevil", "/%0d%0aSet-Cookie:x"])
def test_sign_in_never_redirects_off_site(site, target):  # noqa: F811
    app, _ = site
    from tests.test_web import PASSWORDS

    response = app.test_client().post("/sign-in?next=" + target.replace("\\", "%5C").replace("\t", "%09"),
                                      data={"username": "ada", "password": PASSWORDS["ada"]})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert "evil" not in location or location.startswith("/%0d"), location
    assert not location.startswith("//") and "\\" not in location


def test_the_cli_gives_one_line_for_hostile_json(tmp_path: Path):
    db = f"sqlite:///{tmp_path / 'cli.db'}"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "engine.cli", "--db", db, *args], capture_output=True,
                              text=True, cwd=tmp_path, timeout=60)

    assert run("init-db").returncode == 0
    for data in ("[" * 50_000 + "]" * 50_000, '{"a": NaN}', '{"a": "x\\u0000"}', '{"a": 1' + "0" * 30 + "}"):
        proc = run("--json", "message", "anything", "--data", data)
        assert proc.returncode != 0
        assert "Traceback" not in proc.stderr and proc.stdout == ""
        last = proc.stderr.strip().splitlines()[-1]
        assert last.lower().startswith("error:") and ("JSON" in last or "invalid data" in last), proc.stderr
