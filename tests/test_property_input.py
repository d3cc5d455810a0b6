"""Property-based: whatever JSON reaches ``complete`` and whatever text reaches a grant form's fields, the
answer is a clear refusal or a completed task -- never an HTTP 500, never a traceback, and nothing is kept
from a refused submission (issue "Failure paths", done when)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from engine.errors import SamflytError, ValidationError
from engine.forms import build_form
from engine.models import AuditEvent
from tests.test_web import _form, client_for, site  # noqa: F401 - the fixture

SETTINGS = settings(max_examples=40, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)  # surrogates cannot be sent as UTF-8
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4), max_leaves=12)


def _audit(rt, instance_id: int) -> int:
    with rt.Session() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.instance_id == instance_id))


def _fresh_application(y) -> tuple[int, str]:
    iid = y.rt.start("grant_application", {"call_id": y.data("round")["call_id"]}, actor="ada")
    return iid, next(t.id for t in y.rt.tasks(iid) if t.name == "fill_application")


@pytest.mark.filterwarnings("ignore")
def test_random_json_to_complete_is_refused_cleanly_or_completes(site):  # noqa: F811
    _, y = site

    @SETTINGS
    @given(data=st.dictionaries(TEXT, JSON, max_size=6) | JSON)
    def run(data):
        iid, task = _fresh_application(y)
        before, stored = _audit(y.rt, iid), json.dumps(y.rt.instance(iid).data, sort_keys=True)
        try:
            y.rt.complete(task, "ada", data)
        except SamflytError:
            assert _audit(y.rt, iid) == before  # nothing kept from a refused submission
            assert json.dumps(y.rt.instance(iid).data, sort_keys=True) == stored
            assert task in [t.id for t in y.rt.tasks(iid)]

    run()


def test_random_text_in_every_field_of_the_application_form_never_gives_a_500(site):  # noqa: F811
    app, y = site
    ada = client_for(app, "ada")
    names = sorted(_form())

    @SETTINGS
    @given(values=st.fixed_dictionaries({name: TEXT for name in names}))
    def run(values):
        iid, task = _fresh_application(y)
        before = _audit(y.rt, iid)
        response = ada.post(f"/tasks/{task}", data={**values, "_action": "complete"})
        html = response.get_data(as_text=True)
        assert response.status_code in (302, 400, 422), (response.status_code, html[:500])
        assert "Traceback" not in html
        if response.status_code != 302:
            assert _audit(y.rt, iid) == before
            assert task in [t.id for t in y.rt.tasks(iid)]

    run()


GRANT_FORMS = sorted(p for p in (Path(__file__).resolve().parent.parent / "bpmn" / "grant" / "forms").glob("*.json")
                     if p.name.count(".") == 1)


def _fields(schema: dict, depth: int = 0) -> st.SearchStrategy:
    """Random text (or a row of random text) for every property of a form, nested rows included."""
    strategies = {}
    for name, prop in (schema.get("properties") or {}).items():
        items = prop.get("items") if isinstance(prop, dict) else None
        if isinstance(items, dict) and items.get("type") == "object" and depth < 2:
            strategies[name] = st.lists(_fields(items, depth + 1), max_size=2)
        elif prop.get("type") == "array":
            strategies[name] = st.lists(TEXT, max_size=2)
        else:
            strategies[name] = TEXT
    return st.fixed_dictionaries(strategies)


@pytest.mark.parametrize("path", GRANT_FORMS, ids=lambda p: p.stem)
def test_random_text_in_every_field_of_every_grant_form_is_validated_cleanly(path):
    form = build_form(path.name, json.loads(path.read_text(encoding="utf-8")))

    @settings(max_examples=25, deadline=None, database=None, derandomize=True)
    @given(values=_fields(form.json_schema))
    def run(values):
        with contextlib.suppress(ValidationError):  # a field error; anything else would be a traceback
            form.for_data({}).validate(values)

    run()
