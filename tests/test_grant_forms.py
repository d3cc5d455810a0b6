"""Grant task forms (bpmn/grant/forms): every file builds, realistic input passes, bad input is refused."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from engine.errors import ValidationError
from engine.forms import build_form

FORMS_DIR = Path(__file__).resolve().parent.parent / "bpmn" / "grant" / "forms"

TASK_TITLES = {
    "draft_call": "Utarbeid utlysning",
    "approve_call": "Godkjenn utlysning",
    "application": "Søknad – prosjektplan",
    "cosign": "Signer søknad",
    "submit_application": "Send inn søknad",
    "completeness": "Kontroller at søknaden er komplett",
    "review": "Vurder søknad",
    "committee_assessment": "Komiteens vurdering av søknadene",
    "fsu_input": "Faglig innspill fra FSU",
    "au_recommendation": "Innstilling til SSU",
    "register_ssu_decision": "Registrer SSU-vedtak",
    "status_report": "Statusrapport",
    "report_approval": "Godkjenn rapport",
    "escalation": "Følg opp manglende statusrapport",
    "continuation": "Videreføring neste år",
    "final_report": "Sluttrapport",
    "deviation_review": "Behandle avviksmelding",
    "annual_report": "Sammenstill årsrapport",
    "deviation_report": "Meld avvik",
    "withdraw_application": "Trekk søknaden",
    "application_start": "Ny søknad",
}

SPENT = [{"party": "Sykehuset i Vestfold HF", "amount": 240000}, {"party": "Tønsberg kommune", "amount": 180000}]

APPLICATION = {
    "title": "Felles forløp for skrøpelige eldre i Tønsberg",
    "purpose": "Færre eldre som venter på sykehus på kommunal plass, gjennom felles utskrivningsteam.",
    "effect_goals": "Kortere liggetid og færre reinnleggelser for skrøpelige eldre.",
    "result_goals": "Felles utskrivningsteam etablert innen 1. juni 2026; 80 % av pasientene får felles plan.",
    "priority_groups": ["frail_elderly", "chronic_multiple"],
    "responsibility": "Tønsberg kommune har prosjektledelse og økonomiansvar.",
    "roles": "SiV stiller med geriater og sykepleier; kommunen med koordinator.",
    "applicant_organisation": "Tønsberg kommune",
    "partner_organisations": ["Sykehuset i Vestfold HF", "Færder kommune"],
    "budget": [
        {"party": "Tønsberg kommune", "year": 2026, "amount": 450000, "purpose": "Kombinert stilling koordinator"},
        {"party": "Sykehuset i Vestfold HF", "year": 2026, "amount": 300000},
        {"party": "Tønsberg kommune", "year": 2027, "amount": "400000"},
    ],
    "start_date": "2026-03-01",
    "end_date": "2027-12-31",
    "contact_name": "Kari Nordmann",
    "contact_email": "kari.nordmann@tonsberg.kommune.no",
    "contact_phone": "+47 33 34 80 00",
}

VALID: dict[str, dict[str, Any]] = {
    "draft_call": {
        "title": "Rekrutterings- og samhandlingstilskudd 2026",
        "year": 2026,
        "description": "Tilskudd til samarbeid mellom kommunene og sykehuset om tjenesteutvikling.",
        "criteria": ["Styrker sammenhengende pasientforløp", "Forankret hos både sykehus og kommune"],
        "priority_groups": ["children_young", "mental_substance", "frail_elderly"],
        "frame": 5100000,
        "sustainability_cut_percent": 20,
        "deadlines": ["2026-05-01", "2026-10-01"],
        "reviewers_per_application": 3,
        "community": "Helsefellesskapet i Vestfold",
    },
    "approve_call": {"call_approved": True, "approval_comment": "Godkjent i AU."},
    "application": APPLICATION,
    "cosign": {"signature": {"signed": False, "refusal_reason": "Budsjettet er ikke forankret i kommunen."}},
    "submit_application": {"confirm": True},
    "completeness": {"complete": False, "completeness_comments": "Signatur fra Færder kommune mangler."},
    "review": {"review": {
        "conflict_of_interest": False,
        "scores": [{"criterion": "Styrker sammenhengende pasientforløp", "score": 4, "comment": "Godt beskrevet"},
                   {"criterion": "Forankret hos både sykehus og kommune", "score": 5}],
        "comment": "Solid søknad med tydelige mål.",
    }},
    "committee_assessment": {"assessment_summary": "14 søknader vurdert; 7 anbefales.", "assessment_done": True},
    "fsu_input": {"fsu_input": "FSU støtter innstillingen, men ber om mer vekt på barn og unge."},
    "au_recommendation": {
        "recommendation": [{"application_id": 12, "proposed_amount": 750000, "rank": 1,
                            "justification": "Treffer prioriterte grupper."},
                           {"application_id": 7, "proposed_amount": 0, "rank": 2}],
        "proposed_conclusion": "SSU tildeler tilskudd i tråd med AUs innstilling.",
    },
    "register_ssu_decision": {
        "conclusion": "SSU vedtok innstillingen med én endring.",
        "decisions": [{"application_id": 12, "granted": True, "amount": 600000},
                      {"application_id": 7, "granted": False, "amount": 0, "reason": "Svak forankring."}],
    },
    "status_report": {
        "implementation": "Teamet er etablert og har hatt 40 felles utskrivninger.",
        "goal_attainment": "Liggetiden er redusert med 1,2 døgn.",
        "benefit_realisation": "Færre overliggerdøgn.",
        "spent": SPENT,
        "deviations": "Oppstart forsinket én måned.",
    },
    "report_approval": {"report_approved": True, "report_comment": "Takk for god rapport."},
    "escalation": {"follow_up_action": "Purret på e-post og ringt prosjektleder 3. desember."},
    "continuation": {"continue_project": True, "continuation_amount": 400000,
                     "continuation_comment": "Forutsatt videreført tilskudd."},
    "final_report": {
        "results": "Felles utskrivningsteam er i drift.",
        "goal_attainment": "Resultatmålene er nådd.",
        "benefit_realisation": "Gevinstene følges opp i ordinær drift.",
        "spent": SPENT,
        "further_operation": "Videreføres i ordinært budsjett fra 2028.",
    },
    "deviation_review": {"deviation_response": "Avviket er tatt til etterretning.", "deviation_accepted": True},
    "annual_report": {"annual_summary": "Sju prosjekter rapporterte innen 1. desember.",
                      "annual_report_approved": True},
    "withdraw_application": {"reason": "Prosjektet utsettes til neste år."},
    "application_start": {"call_id": 3},
    "deviation_report": {"description": "Koordinator har sluttet.", "consequences": "Tre måneders forsinkelse.",
                         "measures": "Ny utlysning av stillingen."},
}


def _load(name: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    schema = json.loads((FORMS_DIR / f"{name}.json").read_text(encoding="utf-8"))
    ui_path = FORMS_DIR / f"{name}.ui.json"
    ui = json.loads(ui_path.read_text(encoding="utf-8")) if ui_path.exists() else None
    return schema, ui


def _form(name: str):
    schema, ui = _load(name)
    return build_form(f"{name}.json", schema, ui)


def _properties(schema: dict[str, Any], pointer: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every property definition, nested objects and array items included, with a readable pointer."""
    found = []
    for name, prop in schema.get("properties", {}).items():
        here = f"{pointer}/{name}"
        found.append((here, prop))
        if prop.get("type") == "object":
            found.extend(_properties(prop, here))
        items = prop.get("items")
        if isinstance(items, dict):
            found.append((f"{here}/items", items))
            if items.get("type") == "object":
                found.extend(_properties(items, f"{here}/items"))
    return found


def test_every_form_file_is_expected():
    on_disk = {p.name.removesuffix(".json") for p in FORMS_DIR.glob("*.json")
               if not p.name.endswith((".ui.json", ".nn.json", ".en.json"))}
    assert on_disk == set(TASK_TITLES)
    ui_files = {p.name.removesuffix(".ui.json") for p in FORMS_DIR.glob("*.ui.json")}
    assert ui_files <= on_disk


@pytest.mark.parametrize("name", sorted(TASK_TITLES))
def test_form_builds_and_accepts_realistic_input(name):
    schema, ui = _load(name)
    assert schema["title"] == TASK_TITLES[name]
    assert schema["type"] == "object"
    form = build_form(f"{name}.json", schema, ui)
    data = form.validate(copy.deepcopy(VALID[name]))
    assert set(data) == set(schema["properties"])  # every field is in the answer, empty ones as None
    assert {k: v for k, v in data.items() if v is not None} == {k: data[k] for k in VALID[name]}


@pytest.mark.parametrize("name", sorted(TASK_TITLES))
def test_form_follows_conventions(name):
    schema, ui = _load(name)
    for pointer, prop in _properties(schema):
        assert "oneOf" not in prop, pointer
        if not pointer.endswith("/items"):
            assert prop.get("title"), f"{pointer} has no label"
        if prop.get("type") == "string" and "format" not in prop and "enum" not in prop:
            assert prop.get("maxLength"), f"{pointer} has no maxLength"
        if prop.get("type") == "number":
            pytest.fail(f"{pointer}: amounts are whole kroner (integer), not number")
    for path in (FORMS_DIR / f"{name}.json", FORMS_DIR / f"{name}.ui.json"):
        if path.exists():  # pretty-printed with a 2-space indent, labels kept readable (no \u escapes)
            text = path.read_text(encoding="utf-8")
            assert text == json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n", path.name
    if ui:
        order = ui.get("ui:order")
        if order:
            assert set(order) <= set(schema["properties"]), order
        for field, entry in ui.items():
            if field.startswith("ui:"):
                continue
            assert field in schema["properties"], f"UI schema names unknown field {field}"
            if "ui:enumNames" in entry:
                prop = schema["properties"][field]
                codes = prop.get("enum") or prop["items"]["enum"]
                assert len(entry["ui:enumNames"]) == len(codes), field


def test_application_coerces_to_plain_json():
    data = _form("application").validate(copy.deepcopy(APPLICATION))
    assert data["budget"][2] == {"party": "Tønsberg kommune", "year": 2027, "amount": 400000}
    assert data["start_date"] == "2026-03-01"


def _refused(name: str, data: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(ValidationError) as err:
        _form(name).validate(data)
    return err.value.messages


def test_application_refuses_negative_budget_amount():
    data = copy.deepcopy(APPLICATION)
    data["budget"][1]["amount"] = -5000
    messages = _refused("application", data)
    assert set(messages) == {"budget"}
    assert set(messages["budget"]) == {1}
    assert "amount" in messages["budget"][1]


def test_application_refuses_missing_required_field():
    data = copy.deepcopy(APPLICATION)
    del data["effect_goals"]
    messages = _refused("application", data)
    assert set(messages) == {"effect_goals"}


def test_application_refuses_unknown_field():
    data = copy.deepcopy(APPLICATION)
    data["secret_discount"] = 10
    messages = _refused("application", data)
    assert set(messages) == {"secret_discount"}


def test_application_refuses_invalid_date():
    data = copy.deepcopy(APPLICATION)
    data["start_date"] = "01.03.2026"
    messages = _refused("application", data)
    assert set(messages) == {"start_date"}


@pytest.mark.parametrize("field, value", [
    ("contact_email", "kari.nordmann"),
    ("contact_phone", "ring meg"),
    ("priority_groups", ["everyone"]),
    ("priority_groups", []),
    ("budget", []),
])
def test_application_refuses_other_bad_values(field, value):
    data = copy.deepcopy(APPLICATION)
    data[field] = value
    assert set(_refused("application", data)) == {field}


def test_review_without_scores_is_accepted_when_conflicted():
    assert _form("review").validate({"review": {"conflict_of_interest": True}}) == \
        {"review": {"conflict_of_interest": True}}


def test_review_refuses_score_out_of_range():
    messages = _refused("review", {"review": {"conflict_of_interest": False,
                                              "scores": [{"criterion": "Forankring", "score": 6}]}})
    assert "score" in messages["review"]["scores"][0]


def _texts(messages: Any) -> list[str]:
    return [str(m) for m in messages]


def test_the_confirmation_must_be_yes_to_submit():
    assert _texts(_refused("submit_application", {"confirm": False})["confirm"]) == ["You must answer Yes to go on."]
    assert _texts(_refused("submit_application", {})["confirm"]) == ["Missing data for required field."]


@pytest.mark.parametrize("name, data, where", [
    ("approve_call", {"approval_comment": "Ok"}, ["call_approved"]),
    ("review", {"review": {"comment": "Bra"}}, ["review", "conflict_of_interest"]),
    ("cosign", {"signature": {"refusal_reason": "Nei"}}, ["signature", "signed"]),
    ("completeness", {"completeness_comments": "Ok"}, ["complete"]),
])
def test_a_required_yes_no_must_be_answered(name, data, where):
    messages = _refused(name, data)
    for step in where:
        messages = messages[step]
    assert _texts(messages) == ["Missing data for required field."]


def test_a_co_signers_no_needs_a_reason():
    messages = _refused("cosign", {"signature": {"signed": False}})
    assert _texts(messages["signature"]["refusal_reason"]) == ["Missing data for required field."]
    assert _form("cosign").validate({"signature": {"signed": True}})["signature"] == {"signed": True}


def test_a_reviewer_without_conflict_gives_scores():
    messages = _refused("review", {"review": {"conflict_of_interest": False, "comment": "Fin"}})
    assert _texts(messages["review"]["scores"]) == ["Missing data for required field."]


def test_the_end_is_not_before_the_start_and_budget_years_lie_in_the_period():
    data = copy.deepcopy(APPLICATION)
    data["end_date"] = "2026-02-28"
    assert _texts(_refused("application", data)["end_date"]) == ["Must not be earlier than 2026-03-01."]
    data = copy.deepcopy(APPLICATION)
    data["budget"][0]["year"] = 2025
    data["budget"][2]["year"] = 2028
    messages = _refused("application", data)
    assert set(messages) == {"budget"} and set(messages["budget"]) == {0, 2}
    assert _texts(messages["budget"][0]["year"]) == ["Must not be earlier than 2026."]
    assert _texts(messages["budget"][2]["year"]) == ["Must not be later than 2027."]


@pytest.mark.parametrize("name, data, where", [
    ("application", {**APPLICATION, "budget": [{"party": "Tønsberg kommune", "year": 2026, "amount": 10**30}]},
     ["budget", 0, "amount"]),
    ("application", {**APPLICATION, "budget": [{"party": "Tønsberg kommune", "year": 2026, "amount": 10**9}]},
     ["budget", 0, "amount"]),
    ("continuation", {"continue_project": True, "continuation_amount": 10**12}, ["continuation_amount"]),
    ("draft_call", {**VALID["draft_call"], "frame": 10**15}, ["frame"]),
    ("register_ssu_decision", {"conclusion": "Vedtatt", "decisions": [
        {"application_id": 1, "granted": True, "amount": 10**10}]}, ["decisions", 0, "amount"]),
])
def test_amounts_have_sane_bounds(name, data, where):
    messages = _refused(name, copy.deepcopy(data))
    for step in where:
        messages = messages[step]
    assert any(str(m).startswith("Must be greater than or equal to 0 and less than or equal to") or
               str(m) == "The number is too large to be stored." for m in messages), messages
