"""The nynorsk and English names of the processes' flow elements (`bpmn/<bundle>/names.{nn,en}.json`, for the
grant and the meeting bundles).

Each file maps a process id to {"": process name, element id: element name} for every named flow element in
the process (tasks, events, gateways, subprocesses, call activities and sequence flows, at any depth).
Lanes, participants and technical items such as data items and extension properties are not translated.
"""

import json
from pathlib import Path

import pytest
from lxml import etree

BUNDLES = [Path(__file__).resolve().parent.parent / "bpmn" / name for name in ("grant", "meetings", "agreements")]
BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
NS = {"bpmn": BPMN}
LANGUAGES = ["nn", "en"]

# Flow elements whose local name is not one of the *Task, *Event or *Gateway kinds.
OTHER_FLOW_ELEMENTS = {"task", "subProcess", "transaction", "adHocSubProcess", "callActivity", "sequenceFlow"}
NOT_TRANSLATED = {"lane", "laneSet", "participant"}


def _is_flow_element(element) -> bool:
    name = etree.QName(element).localname
    if name in NOT_TRANSLATED:
        return False
    return name in OTHER_FLOW_ELEMENTS or name.endswith(("Task", "Event", "Gateway"))


def _processes(bundle: Path) -> dict[str, etree._Element]:
    processes = {}
    for path in sorted(bundle.glob("*.bpmn")):
        for process in etree.parse(str(path)).getroot().iterfind("bpmn:process", NS):
            processes[process.get("id")] = process
    return processes


def _named_elements(process) -> dict[str, str]:
    """id -> bokmål name of every named flow element inside the process, in document order."""
    named = {}
    for element in process.iter(f"{{{BPMN}}}*"):
        if element is process or not _is_flow_element(element):
            continue
        if (element.get("name") or "").strip():
            assert element.get("id"), f"named element without id in {process.get('id')}"
            named[element.get("id")] = element.get("name")
    return named


PROCESSES_OF = {bundle: _processes(bundle) for bundle in BUNDLES}
PROCESSES = {pid: process for processes in PROCESSES_OF.values() for pid, process in processes.items()}
BUNDLE_OF = {pid: bundle for bundle, processes in PROCESSES_OF.items() for pid in processes}


def _load(language: str) -> dict:
    """Every bundle's names in ``language``, as one map of process id -> names."""
    names = {}
    for bundle in BUNDLES:
        names.update(json.loads((bundle / f"names.{language}.json").read_text(encoding="utf-8")))
    return names


def test_processes_have_names():
    for bundle, processes in PROCESSES_OF.items():
        assert processes, f"no processes in {bundle}"
    for process_id, process in PROCESSES.items():
        assert (process.get("name") or "").strip(), process_id
        assert _named_elements(process), process_id


@pytest.mark.parametrize("language", LANGUAGES)
def test_file_covers_every_process(language):
    assert set(_load(language)) == set(PROCESSES)


@pytest.mark.parametrize("language", LANGUAGES)
def test_keys_are_the_named_elements(language):
    names = _load(language)
    for process_id, process in PROCESSES.items():
        expected = {""} | set(_named_elements(process))
        actual = set(names.get(process_id, {}))
        assert actual == expected, (
            f"{language} {process_id}: missing {sorted(expected - actual)}, extra {sorted(actual - expected)}"
        )


@pytest.mark.parametrize("language", LANGUAGES)
def test_values_are_non_empty_strings(language):
    for process_id, elements in _load(language).items():
        assert isinstance(elements, dict), process_id
        for element_id, value in elements.items():
            assert isinstance(value, str) and value.strip(), f"{language} {process_id}.{element_id!r}"


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda b: b.name)
def test_file_format(language, bundle):
    path = bundle / f"names.{language}.json"
    text = path.read_text(encoding="utf-8")
    assert text == json.dumps(json.loads(text), ensure_ascii=False, indent=2) + "\n"
    assert "\\u" not in text
    assert set(json.loads(text)) == set(PROCESSES_OF[bundle]), path


@pytest.mark.parametrize("language", LANGUAGES)
def test_keys_follow_document_order(language):
    names = _load(language)
    for process_id, process in PROCESSES.items():
        assert list(names[process_id]) == ["", *_named_elements(process)], process_id


def test_english_is_translated():
    english = _load("en")
    pairs = []
    for process_id, process in PROCESSES.items():
        bokmaal = {"": process.get("name"), **_named_elements(process)}
        pairs += [(bokmaal[key], english[process_id][key]) for key in bokmaal]
    same = [source for source, target in pairs if source.strip().casefold() == target.strip().casefold()]
    assert len(same) <= 0.1 * len(pairs), f"untranslated: {same}"
