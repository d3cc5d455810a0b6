"""Generated BPMN DI (engine.bpmn_layout): structure, geometry, idempotence, deployability, the CLI.

Every diagram is built as XML with tests/bpmn_builder.py, laid out with add_di, and checked against what a
modeler needs: one shape per flow node in the right plane, edges with orthogonal waypoints that start and end
on their shapes, no overlapping shapes, nodes inside their lanes, subprocesses drilled down into their own
planes.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree
from SpiffWorkflow.util.task import TaskState

from engine.bpmn_layout import BPMN, BPMNDI, DC, DI, FLOW_NODES, LayoutError, add_di, condition_order_changes
from engine.cli import main
from tests.bpmn_builder import (
    boundary_event,
    call_activity,
    catch_event,
    chain,
    correlation,
    definitions,
    end,
    error,
    error_ref,
    event_start,
    flow,
    gateway,
    manual_task,
    message,
    message_ref,
    process,
    script_task,
    start,
    subprocess,
    throw_event,
    timer,
    user_task,
)

NS = {"bpmn": BPMN, "bpmndi": BPMNDI, "dc": DC, "di": DI}
Box = tuple[float, float, float, float]


# --------------------------------------------------------------------------- diagrams under test
def _application() -> str:
    """Lanes, a gateway with a loop back, a boundary timer leading to another lane, a subprocess, an event
    subprocess, nodes outside every lane, and a named flow into an end event."""
    return definitions(
        error("cancelled"),
        process(
            "application",
            start(),
            user_task("apply", "Søk om midler"),
            gateway("exclusive", "complete_check", default="to_review"),
            user_task("fix", "Rett opp søknaden"),
            user_task("review", "Vurder søknaden"),
            boundary_event("review_late", "review", timer("duration", "'P14D'"), interrupting=False),
            boundary_event("review_cancel", "review", error_ref("cancelled")),
            user_task("remind", "Purr"),
            end("reminded"),
            end("cancelled_end"),
            subprocess("decide", start("decide_start"), user_task("vote", "Stem"),
                       gateway("parallel", "decide_fork"), script_task("log", "logged = True"),
                       manual_task("inform", "Informer"), gateway("parallel", "decide_join"), end("decide_end"),
                       chain("decide_start", "vote", "decide_fork"), chain("decide_fork", "log", "decide_join"),
                       chain("decide_fork", "inform", "decide_join"), chain("decide_join", "decide_end"),
                       name="Beslutt"),
            subprocess("on_withdraw", event_start("withdraw_start", message_ref("withdraw"), interrupting=True),
                       script_task("withdrawn", "withdrawn = True"), end("withdraw_end"),
                       chain("withdraw_start", "withdrawn", "withdraw_end"), event=True, name="Trukket"),
            catch_event("wait", timer("duration", "'P1D'"), name="Vent en dag"),
            throw_event("notify", "", name="Varslet"),
            end(),
            chain("start", "apply", "complete_check"),
            flow("complete_check", "fix", "missing"),
            flow("complete_check", "review", id="to_review"),
            flow("fix", "apply"),
            chain("review", "decide", "wait", "notify", "end"),
            flow("review_late", "remind"), flow("remind", "reminded"),
            flow("review_cancel", "cancelled_end"),
            lanes={"Applicant": ["apply", "fix"], "Committee": ["review", "complete_check", "decide", "wait"],
                   "Secretariat": ["remind", "reminded", "on_withdraw"]},
            name="Søknad"),
        message("withdraw"),
    )


def _two_processes() -> str:
    """Two processes in one file, the first calling the second; no collaboration."""
    return definitions(
        process("caller", start(), call_activity("call", "callee", "Kall"), end(), chain("start", "call", "end"),
                name="Caller"),
        process("callee", start("c_start"), script_task("c_work", "done = True"), end("c_end"),
                chain("c_start", "c_work", "c_end")),
    )


def _nested() -> str:
    """A subprocess inside a subprocess, a self-loop-free cycle inside, no lanes."""
    return definitions(process(
        "nested", start(),
        subprocess("outer", start("o_start"),
                   subprocess("inner", start("i_start"), user_task("i_task"), gateway("exclusive", "i_again"),
                              end("i_end"), chain("i_start", "i_task", "i_again"),
                              flow("i_again", "i_task", "again"), flow("i_again", "i_end", "not again")),
                   end("o_end"), chain("o_start", "inner", "o_end")),
        end(), chain("start", "outer", "end")))


ALL = {"application": _application, "two_processes": _two_processes, "nested": _nested}


# --------------------------------------------------------------------------- reading the DI back
def _root(xml: str) -> etree._Element:
    return etree.fromstring(xml.encode("utf-8"))


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname


def _box(el: etree._Element) -> Box:
    b = el.find("dc:Bounds", NS)
    return float(b.get("x")), float(b.get("y")), float(b.get("width")), float(b.get("height"))


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _inside(inner: Box, outer: Box) -> bool:
    return (outer[0] <= inner[0] and inner[0] + inner[2] <= outer[0] + outer[2]
            and outer[1] <= inner[1] and inner[1] + inner[3] <= outer[1] + outer[3])


def _on_border(point: tuple[float, float], box: Box) -> bool:
    x, y = point
    left, top, right, bottom = box[0], box[1], box[0] + box[2], box[1] + box[3]
    return ((x in (left, right) and top <= y <= bottom) or (y in (top, bottom) and left <= x <= right))


def _planes(root: etree._Element) -> dict[str, etree._Element]:
    return {p.get("bpmnElement"): p for p in root.iterfind("bpmndi:BPMNDiagram/bpmndi:BPMNPlane", NS)}


def _shapes(plane: etree._Element) -> dict[str, Box]:
    return {s.get("bpmnElement"): _box(s) for s in plane.iterfind("bpmndi:BPMNShape", NS)}


def _waypoints(plane: etree._Element, flow_id: str) -> list[tuple[float, float]]:
    edge = plane.find(f"bpmndi:BPMNEdge[@bpmnElement='{flow_id}']", NS)
    return [(float(w.get("x")), float(w.get("y"))) for w in edge.iterfind("di:waypoint", NS)]


def _flow_nodes(container: etree._Element) -> list[etree._Element]:
    return [c for c in container if isinstance(c.tag, str) and _local(c) in FLOW_NODES]


def _plane_of(root: etree._Element, container: etree._Element) -> etree._Element:
    planes = _planes(root)
    if _local(container) == "process":
        participant = root.find(f"bpmn:collaboration/bpmn:participant[@processRef='{container.get('id')}']", NS)
        return planes[participant.getparent().get("id")]
    return planes[container.get("id")]


def _containers(root: etree._Element) -> list[etree._Element]:
    return list(root.iter(f"{{{BPMN}}}process", f"{{{BPMN}}}subProcess"))


def assert_well_formed_di(xml: str) -> None:
    """Everything a modeler needs from the DI, checked for every process and subprocess."""
    root = _root(xml)
    all_shapes = [s.get("bpmnElement") for s in root.iter(f"{{{BPMNDI}}}BPMNShape")]
    for container in _containers(root):
        plane = _plane_of(root, container)
        shapes = _shapes(plane)
        nodes = _flow_nodes(container)
        for node in nodes:
            assert all_shapes.count(node.get("id")) == 1, f"{node.get('id')} needs exactly one shape"
            assert node.get("id") in shapes, f"{node.get('id')} is not drawn in the plane of its container"
            shape = plane.find(f"bpmndi:BPMNShape[@bpmnElement='{node.get('id')}']", NS)
            labelled = bool(node.get("name")) and (_local(node).endswith(("Event", "Gateway")))
            assert (shape.find("bpmndi:BPMNLabel", NS) is not None) == labelled, node.get("id")
            if _local(node) == "subProcess":
                assert shape.get("isExpanded") == "false"
                assert node.get("id") in _planes(root), f"subprocess {node.get('id')} has no plane of its own"
        _assert_edges(container, plane, shapes)
        _assert_no_overlap(nodes, shapes)
    for participant in root.iterfind("bpmn:collaboration/bpmn:participant", NS):
        process_el = root.find(f"bpmn:process[@id='{participant.get('processRef')}']", NS)
        _assert_lanes(root, process_el, _shapes(_plane_of(root, process_el)), participant.get("id"))


def _assert_edges(container: etree._Element, plane: etree._Element, shapes: dict[str, Box]) -> None:
    for f in container.iterfind("bpmn:sequenceFlow", NS):
        assert len(plane.findall(f"bpmndi:BPMNEdge[@bpmnElement='{f.get('id')}']", NS)) == 1, f.get("id")
        points = _waypoints(plane, f.get("id"))
        assert len(points) >= 2
        for (x1, y1), (x2, y2) in itertools.pairwise(points):
            assert x1 == x2 or y1 == y2, f"{f.get('id')} has a diagonal segment"
        assert _on_border(points[0], shapes[f.get("sourceRef")]), f.get("id")
        assert _on_border(points[-1], shapes[f.get("targetRef")]), f.get("id")


def _assert_no_overlap(nodes: list[etree._Element], shapes: dict[str, Box]) -> None:
    host = {n.get("id"): n.get("attachedToRef") for n in nodes if _local(n) == "boundaryEvent"}
    for a, b in itertools.combinations([n.get("id") for n in nodes], 2):
        if host.get(a) == b or host.get(b) == a:
            continue
        assert not _overlap(shapes[a], shapes[b]), f"{a} and {b} overlap"


def _assert_lanes(root: etree._Element, process_el: etree._Element, shapes: dict[str, Box], pool: str) -> None:
    assert all(_inside(shapes[n.get("id")], shapes[pool]) for n in _flow_nodes(process_el))
    lanes = process_el.findall("bpmn:laneSet/bpmn:lane", NS)
    if not lanes:
        return
    lane_of = {ref.text: lane.get("id") for lane in reversed(lanes) for ref in lane.iterfind("bpmn:flowNodeRef", NS)}
    tops = [shapes[lane.get("id")][1] for lane in lanes]
    assert tops == sorted(tops), "lanes are drawn in laneSet order"
    for a, b in itertools.pairwise(lanes):
        assert not _overlap(shapes[a.get("id")], shapes[b.get("id")])
    for node in _flow_nodes(process_el):
        anchor = node.get("attachedToRef") or node.get("id")
        lane = lane_of.get(anchor, lanes[0].get("id"))
        assert _inside(shapes[node.get("id")], shapes[lane]), f"{node.get('id')} is outside lane {lane}"


# --------------------------------------------------------------------------- structure and geometry
@pytest.mark.parametrize("name", sorted(ALL))
def test_every_node_and_flow_is_drawn_without_overlaps_inside_its_lane(name):
    assert_well_formed_di(add_di(ALL[name]()))


def test_columns_follow_the_flow_with_sizes_by_element_type():
    root = _root(add_di(_application()))
    shapes = _shapes(_planes(root)["application_collaboration"])
    x = {n: shapes[n][0] + shapes[n][2] / 2 for n in shapes}  # centres
    assert x["start"] < x["apply"] < x["complete_check"] < x["review"] < x["decide"] < x["wait"] < x["notify"] \
        < x["end"]
    assert x["fix"] == x["review"], "both gateway branches are in the column after the gateway"
    assert x["remind"] > x["review"], "a boundary event's target is placed after the host's column"
    sizes = {n: shapes[n][2:] for n in ("apply", "decide", "start", "review_late", "complete_check")}
    assert sizes == {"apply": (100, 80), "decide": (100, 80), "start": (36, 36), "review_late": (36, 36),
                     "complete_check": (50, 50)}
    pool = shapes["application_participant"]
    lane = shapes["lane_application_0"]
    assert pool[0] < lane[0] and lane[0] + lane[2] == pool[0] + pool[2]
    assert root.find(".//bpmndi:BPMNShape[@bpmnElement='application_participant']", NS).get("isHorizontal") == "true"


def test_boundary_events_sit_on_the_bottom_edge_of_their_host_spread_apart():
    root = _root(add_di(_application()))
    shapes = _shapes(_planes(root)["application_collaboration"])
    hx, hy, hw, hh = shapes["review"]
    centres = []
    for b in ("review_late", "review_cancel"):
        bx, by, bw, bh = shapes[b]
        assert by + bh / 2 == hy + hh, f"{b} is centred on the host's bottom edge"
        assert hx <= bx and bx + bw <= hx + hw
        centres.append(bx + bw / 2)
    assert centres[0] != centres[1]
    assert not _overlap(shapes["review_late"], shapes["review_cancel"])


def test_loop_back_edges_run_below_the_nodes():
    root = _root(add_di(_application()))
    plane = _planes(root)["application_collaboration"]
    shapes = _shapes(plane)
    points = _waypoints(plane, next(f.get("id") for f in root.iterfind(".//bpmn:sequenceFlow", NS)
                                    if f.get("sourceRef") == "fix"))
    fix, apply_ = shapes["fix"], shapes["apply"]
    assert points[0][1] == fix[1] + fix[3] and points[-1][1] == apply_[1] + apply_[3], "bottom to bottom"
    assert max(y for _, y in points) > max(fix[1] + fix[3], apply_[1] + apply_[3])
    assert points[-1][0] < points[0][0]


def test_a_flow_to_itself_and_a_cycle_without_start_event_do_not_break_the_layout():
    xml = definitions(process("loops", user_task("a"), user_task("b"), gateway("exclusive", "g"),
                              chain("a", "b", "g"), flow("g", "a", "x"), flow("g", "g", "y"), flow("b", "b", "z")))
    out = add_di(xml)
    assert_well_formed_di(out)
    root = _root(out)
    plane = _planes(root)["loops_collaboration"]
    for f in root.iterfind(".//bpmn:sequenceFlow", NS):
        if f.get("sourceRef") == f.get("targetRef"):
            x, y, w, h = _shapes(plane)[f.get("sourceRef")]
            points = _waypoints(plane, f.get("id"))
            assert points[0][1] == points[-1][1] == y + h and points[0][0] != points[-1][0]


def test_subprocesses_are_collapsed_with_their_own_planes_and_event_subprocesses_come_last():
    root = _root(add_di(_application()))
    planes = _planes(root)
    assert list(planes) == ["application_collaboration", "decide", "on_withdraw"], "the main plane comes first"
    main_shapes = _shapes(planes["application_collaboration"])
    event_sub = main_shapes["on_withdraw"]
    assert event_sub[2:] == (100, 80)
    assert all(event_sub[0] > box[0] + box[2] for n, box in main_shapes.items()
               if n not in ("on_withdraw", "application_participant") and not n.startswith("lane_"))
    assert set(_shapes(planes["decide"])) == {"decide_start", "vote", "decide_fork", "log", "inform",
                                              "decide_join", "decide_end"}
    assert set(_shapes(planes["on_withdraw"])) == {"withdraw_start", "withdrawn", "withdraw_end"}
    assert "vote" not in main_shapes
    nested = _planes(_root(add_di(_nested())))
    assert set(nested) == {"nested_collaboration", "outer", "inner"}
    assert set(_shapes(nested["outer"])) == {"o_start", "inner", "o_end"}


def test_a_collaboration_is_created_per_file_with_one_pool_per_process():
    root = _root(add_di(_two_processes()))
    collaboration = root.find("bpmn:collaboration", NS)
    assert collaboration.get("id") == "caller_collaboration"
    participants = [(p.get("id"), p.get("name"), p.get("processRef")) for p in collaboration]
    assert participants == [("caller_participant", "Caller", "caller"), ("callee_participant", None, "callee")]
    assert root.index(collaboration) < root.index(root.find("bpmn:process", NS))
    shapes = _shapes(_planes(root)["caller_collaboration"])
    assert not _overlap(shapes["caller_participant"], shapes["callee_participant"])


def test_an_existing_collaboration_gets_participants_before_its_correlation_keys():
    xml = definitions(message("decision"), correlation("case", "case_id", {"decision": "case_id"}),
                      process("p", start(), user_task("t"), end(), chain("start", "t", "end")))
    root = _root(add_di(xml))
    collaboration = root.find("bpmn:collaboration", NS)
    assert [_local(c) for c in collaboration] == ["participant", "correlationKey"]
    assert _planes(root)["collab_case"] is not None
    assert_well_formed_di(etree.tostring(root, encoding="unicode"))


def test_existing_di_is_replaced_and_output_is_deterministic_and_idempotent():
    demo = (Path(__file__).parent.parent / "bpmn" / "demo" / "demo_request.bpmn").read_text(encoding="utf-8")
    for xml in (_application(), _two_processes(), _nested(), demo):
        once = add_di(xml)
        assert add_di(xml) == once
        assert add_di(once) == once
        assert add_di(once.encode("utf-8")) == once
        assert_well_formed_di(once)
    root = _root(add_di(demo))
    assert len(root.findall("bpmndi:BPMNDiagram", NS)) == 1
    assert root.nsmap["bpmndi"] == BPMNDI


def test_namespaces_are_declared_on_the_root_for_compact_and_default_namespace_input():
    xml = (f'<definitions xmlns="{BPMN}" id="d" targetNamespace="x"><process id="p" isExecutable="true">'
           '<startEvent id="s" name="Start"/><endEvent id="e"/><sequenceFlow id="f" sourceRef="s" targetRef="e"/>'
           "</process></definitions>")
    out = add_di(xml)
    root = _root(out)
    assert {root.nsmap[p] for p in ("bpmndi", "dc", "di")} == {BPMNDI, DC, DI}
    assert "xmlns:bpmndi" not in out.split("\n", 2)[2], "declared once, on the root"
    assert add_di(out) == out
    assert_well_formed_di(out)


def test_not_bpmn_is_a_layout_error():
    with pytest.raises(LayoutError, match="malformed XML"):
        add_di("<definitions")
    with pytest.raises(LayoutError, match="not BPMN 2.0 definitions"):
        add_di("<definitions/>")


# --------------------------------------------------------------------------- the engine reads the result
def test_laid_out_files_still_deploy_and_run(rt, deploy):
    results = deploy({"application.bpmn": add_di(_application()), "calls.bpmn": add_di(_two_processes()),
                      "nested.bpmn": add_di(_nested())})
    assert {r.process_id for r in results} == {"application", "caller", "callee", "nested"}
    iid = rt.start("application", actor="ada")
    assert [t.name for t in rt.tasks(iid)] == ["apply"]

    demo = Path(__file__).parent.parent / "bpmn" / "demo"
    bundle = {p.name: p.read_text(encoding="utf-8") for p in demo.iterdir() if p.suffix in (".bpmn", ".json")}
    bundle = {name: add_di(text) if name.endswith(".bpmn") else text for name, text in bundle.items()}
    assert [r.process_id for r in deploy(bundle)] == ["demo_request"]


def _overlapping_conditions(lanes: dict[str, list[str]] | None) -> str:
    return definitions(process(
        "route", start(), gateway("exclusive", "pick", default="to_fallback"),
        user_task("first"), user_task("second"), user_task("fallback"), end("e1"), end("e2"), end("e3"),
        chain("start", "pick"), flow("pick", "first", "True"), flow("pick", "second", "True"),
        flow("pick", "fallback", id="to_fallback"), chain("first", "e1"), chain("second", "e2"),
        chain("fallback", "e3"), lanes=lanes))


def test_the_first_listed_condition_still_wins_after_layout(rt, deploy):
    """SpiffWorkflow orders outgoing flows by the targets' y, so the layout keeps conditions top to bottom."""
    xml = add_di(_overlapping_conditions(None))
    assert condition_order_changes(xml) == []
    shapes = _shapes(_planes(_root(xml))["route_collaboration"])
    stacked = [shapes[n] for n in ("first", "second", "fallback")]
    assert len({x for x, _, _, _ in stacked}) == 1, "one column"
    assert [y for _, y, _, _ in stacked] == sorted({y for _, y, _, _ in stacked}), "stacked in flow order"
    deploy({"route.bpmn": xml})
    iid = rt.start("route", actor="ada")
    assert [t.name for t in rt.tasks(iid)] == ["first"]


def test_a_later_condition_target_is_not_drawn_above_an_earlier_one(rt, deploy):
    """The first condition leads to an event, the second to a task a column further right: drawn in one row,
    the task's top would be above the event's and SpiffWorkflow would try the second condition first."""
    xml = add_di(definitions(process(
        "route2", start(), gateway("exclusive", "pick", default="to_end"), throw_event("via_first", ""),
        user_task("work"), end("e1"), end("e2"),
        chain("start", "pick"), flow("pick", "via_first", "True"), flow("pick", "work", "True"),
        flow("pick", "e2", id="to_end"), chain("via_first", "work", "e1"))))
    assert condition_order_changes(xml) == []
    shapes = _shapes(_planes(_root(xml))["route2_collaboration"])
    assert shapes["work"][1] >= shapes["via_first"][1]
    deploy({"route2.bpmn": xml})
    iid = rt.start("route2", actor="ada")
    assert [t.name for t in rt.tasks(iid)] == ["work"]
    ran = {t.task_spec.bpmn_id for t in rt.load_workflow(iid).get_tasks(state=TaskState.COMPLETED)}
    assert "via_first" in ran, "the first condition won"


def test_condition_order_changes_reports_what_lanes_force():
    xml = add_di(_overlapping_conditions({"Upper": ["second"], "Lower": ["first"]}))
    changes = condition_order_changes(xml)
    assert len(changes) == 1 and changes[0].startswith("gateway pick:")


# --------------------------------------------------------------------------- the CLI
def test_cli_layout_check_lists_stale_files_then_layout_fixes_them(tmp_path: Path):
    stale, fresh = tmp_path / "stale.bpmn", tmp_path / "fresh.bpmn"
    app = _application()  # the builder numbers flows afresh on every call
    stale.write_text(app, encoding="utf-8")
    fresh.write_text(add_di(_two_processes()), encoding="utf-8")
    runner = CliRunner()

    result = runner.invoke(main, ["layout", "--check", str(stale), str(fresh)])
    assert result.exit_code == 1
    assert result.stdout.split() == [str(stale)]
    assert result.stderr.startswith("error:")
    assert stale.read_text(encoding="utf-8") == app, "--check writes nothing"

    result = runner.invoke(main, ["layout", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert stale.read_text(encoding="utf-8") == add_di(app)

    result = runner.invoke(main, ["layout", "--check", str(tmp_path)])
    assert result.exit_code == 0, result.output


def test_cli_layout_errors_are_one_line_on_stderr(tmp_path: Path):
    bad = tmp_path / "bad.bpmn"
    bad.write_text("<notbpmn/>", encoding="utf-8")
    runner = CliRunner()
    for args in (["layout", str(bad)], ["layout", str(tmp_path / "missing.bpmn")]):
        result = runner.invoke(main, args)
        assert result.exit_code == 1
        assert result.stderr.startswith("error:") and result.stderr.count("\n") == 1
    assert bad.read_text(encoding="utf-8") == "<notbpmn/>"
