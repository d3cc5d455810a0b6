"""Generated diagram layout (BPMN DI) for process models written as XML.

Processes here are often authored as BPMN XML -- by hand, from templates, or by test helpers -- rather than
drawn in a modeler. Such files carry no ``bpmndi`` section, so bpmn.io, Camunda Modeler and the bpmn-js
viewer in the web UI show nothing useful. :func:`add_di` computes a plain, readable layout and writes the
DI, so nobody has to hand-place coordinates and the diagram follows the XML whenever it changes:

* one pool per process (a collaboration with participants is created if the file has none), lanes as
  horizontal bands in ``laneSet`` order; nodes outside every lane go to the first lane;
* columns by longest-path layering of the sequence flows from the start events (loops ignored), nodes of
  one lane and column stacked in rows; boundary events on the bottom edge of their host;
* subprocesses drawn collapsed, each with its own diagram plane (bpmn-js drill-down), laid out the same way;
* orthogonal edges: right to left side, loops routed below the nodes.

The output is deterministic and :func:`add_di` is idempotent, so ``samflyt layout --check`` can tell in CI
whether a file's DI is up to date.

Note: SpiffWorkflow orders a node's outgoing flows by the target shapes' ``y`` coordinate, so the DI decides
in which order an exclusive gateway tries its conditions. The layout keeps conditional targets of an
exclusive gateway in flow order top to bottom within a lane; :func:`condition_order_changes` reports the
gateways where that was not possible (e.g. targets in lanes ordered differently from the flows).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from .errors import SamflytError

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI"
DC = "http://www.omg.org/spec/DD/20100524/DC"
DI = "http://www.omg.org/spec/DD/20100524/DI"
DI_NAMESPACES = {"bpmndi": BPMNDI, "dc": DC, "di": DI}

EVENTS = frozenset({"startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent"})
GATEWAYS = frozenset({"exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway",
                      "complexGateway"})
SUBPROCESSES = frozenset({"subProcess", "adHocSubProcess", "transaction"})
ACTIVITIES = frozenset({"task", "userTask", "manualTask", "scriptTask", "serviceTask", "businessRuleTask",
                        "sendTask", "receiveTask", "callActivity"}) | SUBPROCESSES
FLOW_NODES = EVENTS | GATEWAYS | ACTIVITIES

TASK_SIZE = (100, 80)
EVENT_SIZE = (36, 36)
GATEWAY_SIZE = (50, 50)
GAP_X = 50  # between columns
ROW_H = 80  # a row fits the tallest node
ROW_GAP = 50  # between rows: boundary events, labels and loop-back edges live here
LANE_PAD = 40  # above the first and below the last row of a lane
POOL_HEADER = 30  # the pool's name band on its left
POOL_PAD_X = 50  # between the pool's header / right edge and the first / last column
POOL_X, POOL_Y, POOL_GAP, MIN_POOL_W, EMPTY_POOL_H = 120, 60, 40, 600, 120
PLANE_X, PLANE_Y = 160, 60  # origin of a subprocess plane (no pool)
BACK_DROP = 25  # how far below the rows a loop-back edge runs
LABEL_W, LABEL_LINE_H, LABEL_CHARS, LABEL_GAP = 90, 14, 15, 7


class LayoutError(SamflytError):
    """A file that cannot be laid out: not XML, or not BPMN definitions."""


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int

    @property
    def cx(self) -> int:
        return self.x + self.w // 2

    @property
    def cy(self) -> int:
        return self.y + self.h // 2

    @property
    def right(self) -> int:
        return self.x + self.w

    @property
    def bottom(self) -> int:
        return self.y + self.h


Point = tuple[int, int]


@dataclass(frozen=True)
class Flow:
    id: str
    source: str
    target: str
    index: int  # document order


@dataclass
class Graph:
    """The flow nodes and sequence flows directly inside one process or subprocess."""

    elements: dict[str, etree._Element]  # every flow node, document order
    nodes: list[str]  # nodes placed in columns: not boundary events, not event subprocesses
    host_of: dict[str, str]  # boundary event -> the activity it is attached to
    event_subs: list[str]
    flows: list[Flow]

    def kind(self, node: str) -> str:
        return etree.QName(self.elements[node]).localname

    def anchor(self, node: str) -> str:
        """Where a node sits in the column graph: a boundary event counts as its host."""
        return self.host_of.get(node, node)


@dataclass
class Layout:
    graph: Graph
    boxes: dict[str, Box]
    waypoints: dict[str, list[Point]]
    lanes: list[tuple[str, int, int]]  # lane id, top, height
    width: int  # of the columns
    height: int  # of all lanes (rows)


@dataclass
class _Ids:
    """Makes DI ids that clash with no id in the document."""

    used: set[str] = field(default_factory=set)

    def make(self, base: str) -> str:
        candidate, n = base, 1
        while candidate in self.used:
            n += 1
            candidate = f"{base}_{n}"
        self.used.add(candidate)
        return candidate


# --------------------------------------------------------------------------- public API
def add_di(xml: str | bytes) -> str:
    """Return ``xml`` with generated BPMN DI; any ``bpmndi:BPMNDiagram`` it had is replaced."""
    tree = _parse(xml)
    root = tree.getroot()
    unit = _indent_unit(root)
    for diagram in root.findall(f"{{{BPMNDI}}}BPMNDiagram"):
        _remove(diagram)
    ids = _Ids(set(root.xpath("//@id")))
    collaboration = _ensure_collaboration(root, ids, unit)
    diagrams = [_main_diagram(root, collaboration, ids)] if collaboration is not None else []
    for process in root.findall(f"{{{BPMN}}}process"):
        subprocesses = process.iter(*(f"{{{BPMN}}}{tag}" for tag in sorted(SUBPROCESSES)))
        diagrams += [_subprocess_diagram(sub, ids) for sub in subprocesses if sub.get("id")]
    if diagrams:
        _declare_di_namespaces(tree)
    index = _diagram_index(root)
    for offset, diagram in enumerate(diagrams):
        if unit is not None:
            etree.indent(diagram, space=unit, level=1)
        _insert(root, index + offset, diagram, unit)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + etree.tostring(tree, encoding="unicode").rstrip() + "\n"


def condition_order_changes(xml: str | bytes) -> list[str]:
    """Exclusive gateways whose conditions SpiffWorkflow would try in another order than the XML lists them.

    SpiffWorkflow sorts outgoing flows by the target shape's ``y`` (stable), and an exclusive gateway takes
    the first flow whose condition holds; this matters only when conditions overlap.
    """
    root = _parse(xml).getroot()
    ys = {s.get("bpmnElement"): float(b.get("y", 0)) for s in root.iter(f"{{{BPMNDI}}}BPMNShape")
          if (b := s.find(f"{{{DC}}}Bounds")) is not None}
    changes = []
    for gateway in root.iter(f"{{{BPMN}}}exclusiveGateway"):
        flows = _conditional_flows(gateway)
        ordered = sorted(flows, key=lambda f: ys.get(f.get("targetRef"), 0.0))
        if ordered != flows:
            changes.append(f"gateway {gateway.get('id')}: conditions are tried in the order "
                           f"{', '.join(str(f.get('id')) for f in ordered)}, not "
                           f"{', '.join(str(f.get('id')) for f in flows)} as written")
    return changes


def bpmn_files(paths: Iterable[str | Path]) -> list[Path]:
    """The files named, with folders expanded to the ``.bpmn`` files under them (sorted)."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*.bpmn") if p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            raise LayoutError(f"no such file or folder: {path}")
    return files


def layout_file(path: Path, write: bool = True) -> bool:
    """Lay out one file in place (unless ``write`` is false); True when its DI was not already this layout."""
    before = path.read_bytes()
    try:
        after = add_di(before).encode("utf-8")
    except LayoutError as exc:
        raise LayoutError(f"file {path}: {exc}") from None
    if after == before:
        return False
    if write:
        path.write_bytes(after)
    return True


# --------------------------------------------------------------------------- document handling
def _parse(xml: str | bytes) -> etree._ElementTree:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    try:
        if isinstance(xml, str):  # lxml refuses str input with an encoding declaration
            root = etree.fromstring(re.sub(r"^\s*<\?xml[^>]*\?>", "", xml, count=1), parser)
        else:
            root = etree.fromstring(xml, parser)
    except etree.XMLSyntaxError as exc:
        raise LayoutError(f"malformed XML: {exc.msg}") from None
    if root.tag != f"{{{BPMN}}}definitions":
        raise LayoutError(f"not BPMN 2.0 definitions: the root element is {etree.QName(root).localname}")
    return root.getroottree()


def _indent_unit(root: etree._Element) -> str | None:
    """The indentation per level if the document is pretty-printed (``None`` when it is on one line)."""
    match = re.fullmatch(r"\n([ \t]*)", root.text or "")
    return match.group(1) if match else None


def _insert(parent: etree._Element, index: int, child: etree._Element, unit: str | None) -> None:
    """Insert ``child`` keeping the surrounding indentation; :func:`_remove` undoes it exactly."""
    depth = sum(1 for _ in parent.iterancestors()) + 1
    if len(parent) == 0:
        if unit is not None:
            parent.text, child.tail = "\n" + unit * depth, "\n" + unit * (depth - 1)
    elif index >= len(parent):
        last = parent[-1]
        child.tail = last.tail
        last.tail = "\n" + unit * depth if unit is not None else parent.text
    else:
        child.tail = parent[index - 1].tail if index > 0 else parent.text
    parent.insert(index, child)


def _remove(child: etree._Element) -> None:
    parent = child.getparent()
    previous = child.getprevious()
    if child.getnext() is None and previous is not None:
        previous.tail = child.tail
    parent.remove(child)


def _declare_di_namespaces(tree: etree._ElementTree) -> None:
    """Declare the bpmndi/dc/di prefixes on the root where the namespaces are not declared yet."""
    root = tree.getroot()
    declared = set(root.nsmap.values())
    missing = {p: uri for p, uri in DI_NAMESPACES.items() if uri not in declared and p not in root.nsmap}
    if missing:
        prefixes = {p for e in root.iter() if isinstance(e.tag, str) for p in e.nsmap if p}
        etree.cleanup_namespaces(tree, top_nsmap=missing, keep_ns_prefixes=sorted(prefixes | set(missing)))


def _diagram_index(root: etree._Element) -> int:
    """Diagrams come after the root elements and before any ``bpmn:relationship`` (the XSD's order)."""
    for i, child in enumerate(root):
        if child.tag == f"{{{BPMN}}}relationship":
            return i
    return len(root)


def _ensure_collaboration(root: etree._Element, ids: _Ids, unit: str | None) -> etree._Element | None:
    """The collaboration the main plane shows, with a participant for every process."""
    processes = root.findall(f"{{{BPMN}}}process")
    collaboration = root.find(f"{{{BPMN}}}collaboration")
    if collaboration is None:
        if not processes:
            return None
        collaboration = etree.Element(f"{{{BPMN}}}collaboration",
                                      id=ids.make(f"{processes[0].get('id')}_collaboration"))
        _insert(root, root.index(processes[0]), collaboration, unit)
    referenced = {p.get("processRef") for p in root.iter(f"{{{BPMN}}}participant")}
    for process in processes:
        if process.get("id") in referenced:
            continue
        participant = etree.Element(f"{{{BPMN}}}participant", id=ids.make(f"{process.get('id')}_participant"))
        if process.get("name"):
            participant.set("name", process.get("name"))
        participant.set("processRef", process.get("id"))
        _insert(collaboration, _participant_index(collaboration), participant, unit)
    return collaboration


def _participant_index(collaboration: etree._Element) -> int:
    """Participants come first in a collaboration, after documentation and extension elements."""
    index = 0
    for i, child in enumerate(collaboration):
        if child.tag in (f"{{{BPMN}}}participant", f"{{{BPMN}}}documentation", f"{{{BPMN}}}extensionElements"):
            index = i + 1
    return index


# --------------------------------------------------------------------------- the flow graph
def _graph(container: etree._Element) -> Graph:
    elements = {child.get("id"): child for child in container
                if isinstance(child.tag, str) and child.get("id")
                and etree.QName(child).namespace == BPMN and etree.QName(child).localname in FLOW_NODES}
    host_of = {}
    for node, el in elements.items():
        host = el.get("attachedToRef")
        if (etree.QName(el).localname == "boundaryEvent" and host in elements
                and etree.QName(elements[host]).localname != "boundaryEvent"):
            host_of[node] = host
    event_subs = [n for n, el in elements.items()
                  if etree.QName(el).localname in SUBPROCESSES and el.get("triggeredByEvent") == "true"]
    nodes = [n for n in elements if n not in host_of and n not in event_subs]
    flows = [Flow(f.get("id"), f.get("sourceRef"), f.get("targetRef"), i)
             for i, f in enumerate(container.findall(f"{{{BPMN}}}sequenceFlow"))
             if f.get("id") and f.get("sourceRef") in elements and f.get("targetRef") in elements]
    return Graph(elements, nodes, host_of, event_subs, flows)


def _column_edges(g: Graph) -> list[Flow]:
    """Flows between column-placed nodes, a boundary event's flows starting from its host."""
    placed = set(g.nodes)
    return [f for f in g.flows if g.anchor(f.source) in placed and f.target in placed]


def _back_edges(g: Graph, edges: list[Flow]) -> set[str]:
    """Flows that close a cycle in a depth-first search from the start events (then any other node)."""
    successors: dict[str, list[Flow]] = {n: [] for n in g.nodes}
    has_incoming = set()
    for f in edges:
        successors[g.anchor(f.source)].append(f)
        has_incoming.add(f.target)
    roots = ([n for n in g.nodes if g.kind(n) == "startEvent"] + [n for n in g.nodes if n not in has_incoming]
             + g.nodes)
    state: dict[str, int] = {}  # 1 on the DFS stack, 2 done
    back: set[str] = set()
    for root in roots:
        if root in state:
            continue
        state[root] = 1
        stack: list[tuple[str, Iterator[Flow]]] = [(root, iter(successors[root]))]
        while stack:
            node, pending = stack[-1]
            for f in pending:
                if state.get(f.target) == 1:
                    back.add(f.id)
                elif f.target not in state:
                    state[f.target] = 1
                    stack.append((f.target, iter(successors[f.target])))
                    break
            else:
                state[node] = 2
                stack.pop()
    return back


def _layers(g: Graph, forward: list[Flow]) -> dict[str, int]:
    """Longest-path layer of every node over the forward (acyclic) flows."""
    layer = dict.fromkeys(g.nodes, 0)
    indegree = dict.fromkeys(g.nodes, 0)
    successors: dict[str, list[str]] = {n: [] for n in g.nodes}
    for f in forward:
        successors[g.anchor(f.source)].append(f.target)
        indegree[f.target] += 1
    queue = [n for n in g.nodes if indegree[n] == 0]
    while queue:
        node = queue.pop(0)
        for target in successors[node]:
            layer[target] = max(layer[target], layer[node] + 1)
            indegree[target] -= 1
            if indegree[target] == 0:
                queue.append(target)
    return layer


def _conditional_flows(gateway: etree._Element) -> list[etree._Element]:
    """An exclusive gateway's outgoing flows that carry a condition (the default is tried last anyway)."""
    container = gateway.getparent()
    return [f for f in container.findall(f"{{{BPMN}}}sequenceFlow")
            if f.get("sourceRef") == gateway.get("id") and f.get("id") != gateway.get("default")
            and f.find(f"{{{BPMN}}}conditionExpression") is not None]


def _rows(g: Graph, layer: dict[str, int], forward: list[Flow], lane_of: dict[str, int]) -> dict[str, int]:
    """Row of every node within its lane: stacked per (lane, column), following the rows of predecessors."""
    incoming: dict[str, list[Flow]] = {n: [] for n in g.nodes}
    for f in forward:
        incoming[f.target].append(f)
    ordered_before = _condition_siblings(g)
    row: dict[str, int] = {}
    cells: dict[tuple[int, int], list[str]] = {}
    for n in g.nodes:
        cells.setdefault((layer[n], lane_of[n]), []).append(n)
    for key in sorted(cells):
        keyed = []
        for n in cells[key]:
            wanted = [row[g.anchor(f.source)] + (1 if f.source in g.host_of else 0)
                      for f in incoming[n] if lane_of[g.anchor(f.source)] == lane_of[n]]
            mean = sum(wanted) / len(wanted) if wanted else 0.0
            first_flow = min((f.index for f in incoming[n]), default=len(g.flows))
            keyed.append((math.floor(mean), mean, first_flow, g.nodes.index(n), n))
        next_free = 0
        for desired, _, _, _, n in sorted(keyed):
            siblings = [row[s] + (_top(g, n) < _top(g, s)) for s in ordered_before.get(n, ())
                        if s in row and lane_of[s] == lane_of[n]]
            row[n] = max([next_free, desired, *siblings])
            next_free = row[n] + 1
    return row


def _top(g: Graph, node: str) -> int:
    """How far below its row's top a node's shape starts (SpiffWorkflow compares these tops)."""
    return (ROW_H - _size(g.kind(node))[1]) // 2


def _condition_siblings(g: Graph) -> dict[str, list[str]]:
    """For each target of an exclusive gateway's conditions, the targets of the conditions listed before it:
    its shape's top must not be above theirs."""
    before: dict[str, list[str]] = {}
    for node in g.nodes:
        if g.kind(node) != "exclusiveGateway":
            continue
        targets = [f.get("targetRef") for f in _conditional_flows(g.elements[node])]
        for i, target in enumerate(targets):
            before.setdefault(target, []).extend(t for t in targets[:i] if t != target)
    return before


def _lane_of(g: Graph, lanes: list[etree._Element]) -> dict[str, int]:
    """Lane index of every node: the first lane listing it, else the first lane; boundary events: the host's."""
    listed: dict[str, int] = {}
    for i, lane in enumerate(lanes):
        for ref in lane.findall(f"{{{BPMN}}}flowNodeRef"):
            listed.setdefault((ref.text or "").strip(), i)
    return {n: listed.get(g.anchor(n), 0) for n in g.elements}


def _size(kind: str) -> tuple[int, int]:
    if kind in EVENTS:
        return EVENT_SIZE
    if kind in GATEWAYS:
        return GATEWAY_SIZE
    return TASK_SIZE


# --------------------------------------------------------------------------- geometry
def _layout(container: etree._Element, x0: int, y0: int, lanes: list[etree._Element]) -> Layout:
    """Place the nodes of ``container`` in columns starting at ``x0`` and lanes (rows) starting at ``y0``."""
    g = _graph(container)
    edges = _column_edges(g)
    back = _back_edges(g, edges)
    forward = [f for f in edges if f.id not in back]
    layer = _layers(g, forward)
    lane_of = _lane_of(g, lanes)
    row = _rows(g, layer, forward, lane_of)
    columns = max(layer.values(), default=-1) + 1
    for n in g.event_subs:  # event subprocesses: one more column, stacked in their lanes
        layer[n] = columns
        row[n] = sum(1 for m in g.event_subs[:g.event_subs.index(n)] if lane_of[m] == lane_of[n])
    columns += 1 if g.event_subs else 0
    placed = g.nodes + g.event_subs

    col_w = [0] * columns
    for n in placed:
        col_w[layer[n]] = max(col_w[layer[n]], _size(g.kind(n))[0])
    col_x = [x0 + sum(col_w[:i]) + GAP_X * i for i in range(columns)]
    lane_count = max(len(lanes), 1)
    rows_in = [max([row[n] + 1 for n in placed if lane_of[n] == i], default=1) for i in range(lane_count)]
    heights = [2 * LANE_PAD + r * ROW_H + (r - 1) * ROW_GAP for r in rows_in]
    tops = [y0 + sum(heights[:i]) for i in range(lane_count)]

    boxes: dict[str, Box] = {}
    for n in placed:
        w, h = _size(g.kind(n))
        cx = col_x[layer[n]] + col_w[layer[n]] // 2
        cy = tops[lane_of[n]] + LANE_PAD + row[n] * (ROW_H + ROW_GAP) + ROW_H // 2
        boxes[n] = Box(cx - w // 2, cy - h // 2, w, h)
    boxes.update(_boundary_boxes(g, boxes))
    bend_x = {n: col_x[layer[n]] - GAP_X // 2 for n in placed}
    in_columns = {f.id for f in edges}
    waypoints = {f.id: _route(f, g, boxes, bend_x, f.id in back or (f.id not in in_columns and _leftward(f, boxes)))
                 for f in g.flows}
    lane_rows = [(lane.get("id"), tops[i], heights[i]) for i, lane in enumerate(lanes)]
    width = sum(col_w) + GAP_X * (columns - 1) if columns else 0
    return Layout(g, boxes, waypoints, lane_rows, width, sum(heights))


def _boundary_boxes(g: Graph, boxes: dict[str, Box]) -> dict[str, Box]:
    """Boundary events centred on the bottom edge of their host, spread along it."""
    result = {}
    for host in g.nodes + g.event_subs:
        attached = [b for b, h in g.host_of.items() if h == host]
        hb = boxes[host]
        for b, offset in zip(attached, _boundary_offsets(len(attached), hb.w), strict=True):
            w, h = EVENT_SIZE
            result[b] = Box(hb.x + offset - w // 2, hb.bottom - h // 2, w, h)
    return result


def _boundary_offsets(k: int, width: int) -> list[int]:
    """Centres of ``k`` boundary events from the host's left edge: quarters for one or two, else evenly
    from corner to corner (only four or more on one task overlap)."""
    if k <= 2:
        return [width // 4, 3 * width // 4][:k]
    return [width * i // (k - 1) for i in range(k)]


def _free_x(g: Graph, node: str, box: Box) -> int:
    """Where a loop-back edge meets a node's bottom: a spot no boundary event sits on."""
    k = sum(1 for h in g.host_of.values() if h == node)
    if k == 1:
        return box.x + 3 * box.w // 4
    return box.x + (box.w // 2 if k <= 2 else box.w // (2 * (k - 1)))


def _leftward(f: Flow, boxes: dict[str, Box]) -> bool:
    return boxes[f.target].x < boxes[f.source].right


def _route(f: Flow, g: Graph, boxes: dict[str, Box], bend_x: dict[str, int], back: bool) -> list[Point]:
    s, t = boxes[f.source], boxes[f.target]
    from_boundary = f.source in g.host_of
    if back:
        return _route_back(f, g, boxes, from_boundary)
    if from_boundary:
        if t.cy > s.bottom:
            return [(s.cx, s.bottom), (s.cx, t.cy), (t.x, t.cy)]
        low, mid = s.bottom + BACK_DROP, bend_x.get(f.target, (s.cx + t.x) // 2)
        return [(s.cx, s.bottom), (s.cx, low), (mid, low), (mid, t.cy), (t.x, t.cy)]
    if s.cy == t.cy:
        return [(s.right, s.cy), (t.x, t.cy)]
    mid = bend_x.get(f.target, (s.right + t.x) // 2)
    if not s.right < mid < t.x:
        mid = (s.right + t.x) // 2
    return [(s.right, s.cy), (mid, s.cy), (mid, t.cy), (t.x, t.cy)]


def _route_back(f: Flow, g: Graph, boxes: dict[str, Box], from_boundary: bool) -> list[Point]:
    """Down from the source's bottom, left (or right) below the rows, up into the target's bottom."""
    s, t = boxes[f.source], boxes[f.target]
    if from_boundary:
        sx, s_low = s.cx, _row_bottom(boxes[g.host_of[f.source]])
    else:
        sx, s_low = _free_x(g, f.source, s), _row_bottom(s)
    tx = _free_x(g, f.target, t)
    if f.source == f.target:
        sx, tx = sx + 10, tx - 10
    low = max(s_low, _row_bottom(t)) + BACK_DROP
    return [(sx, s.bottom), (sx, low), (tx, low), (tx, t.bottom)]


def _row_bottom(box: Box) -> int:
    return box.cy + ROW_H // 2


def _label_box(box: Box, name: str) -> Box:
    lines = max(1, math.ceil(len(name) / LABEL_CHARS))
    return Box(box.cx - LABEL_W // 2, box.bottom + LABEL_GAP, LABEL_W, lines * LABEL_LINE_H)


# --------------------------------------------------------------------------- DI elements
def _diagram(ids: _Ids, element_id: str) -> tuple[etree._Element, etree._Element]:
    diagram = etree.Element(f"{{{BPMNDI}}}BPMNDiagram", id=ids.make(f"{element_id}_diagram"))
    plane = etree.SubElement(diagram, f"{{{BPMNDI}}}BPMNPlane", id=ids.make(f"{element_id}_plane"))
    plane.set("bpmnElement", element_id)
    return diagram, plane


def _shape(plane: etree._Element, ids: _Ids, element_id: str, box: Box, **flags: str) -> etree._Element:
    shape = etree.SubElement(plane, f"{{{BPMNDI}}}BPMNShape", id=ids.make(f"{element_id}_di"))
    shape.set("bpmnElement", element_id)
    for name, value in flags.items():
        shape.set(name, value)
    _bounds(shape, box)
    return shape


def _bounds(parent: etree._Element, box: Box) -> None:
    etree.SubElement(parent, f"{{{DC}}}Bounds", x=str(box.x), y=str(box.y), width=str(box.w), height=str(box.h))


def _node_shape(plane: etree._Element, ids: _Ids, g: Graph, node: str, box: Box) -> None:
    kind = g.kind(node)
    flags = {}
    if kind in SUBPROCESSES:
        flags["isExpanded"] = "false"
    elif kind == "exclusiveGateway":
        flags["isMarkerVisible"] = "true"
    shape = _shape(plane, ids, node, box, **flags)
    name = (g.elements[node].get("name") or "").strip()
    if name and (kind in EVENTS or kind in GATEWAYS):
        _bounds(etree.SubElement(shape, f"{{{BPMNDI}}}BPMNLabel"), _label_box(box, name))


def _draw(plane: etree._Element, ids: _Ids, layout: Layout) -> None:
    g = layout.graph
    for node in g.elements:
        if node in layout.boxes:
            _node_shape(plane, ids, g, node, layout.boxes[node])
    for f in g.flows:
        edge = etree.SubElement(plane, f"{{{BPMNDI}}}BPMNEdge", id=ids.make(f"{f.id}_di"))
        edge.set("bpmnElement", f.id)
        for x, y in layout.waypoints[f.id]:
            etree.SubElement(edge, f"{{{DI}}}waypoint", x=str(x), y=str(y))


def _lanes(process: etree._Element) -> list[etree._Element]:
    lane_set = process.find(f"{{{BPMN}}}laneSet")
    return lane_set.findall(f"{{{BPMN}}}lane") if lane_set is not None else []


def _main_diagram(root: etree._Element, collaboration: etree._Element, ids: _Ids) -> etree._Element:
    """The collaboration's plane: one pool per participant, lanes inside, the process's nodes in the lanes."""
    diagram, plane = _diagram(ids, collaboration.get("id"))
    processes = {p.get("id"): p for p in root.findall(f"{{{BPMN}}}process")}
    pools: list[tuple[etree._Element, int, Layout | None]] = []
    y = POOL_Y
    for participant in collaboration.findall(f"{{{BPMN}}}participant"):
        process = processes.pop(participant.get("processRef"), None)  # a process is drawn in one pool only
        layout = None
        if process is not None:
            layout = _layout(process, POOL_X + POOL_HEADER + POOL_PAD_X, y, _lanes(process))
        pools.append((participant, y, layout))
        y += (layout.height if layout else EMPTY_POOL_H) + POOL_GAP
    width = max([MIN_POOL_W, *(POOL_HEADER + 2 * POOL_PAD_X + lo.width for _, _, lo in pools if lo)])
    for participant, top, layout in pools:
        height = layout.height if layout else EMPTY_POOL_H
        _shape(plane, ids, participant.get("id"), Box(POOL_X, top, width, height), isHorizontal="true")
        if layout is None:
            continue
        for lane_id, lane_top, lane_height in layout.lanes:
            _shape(plane, ids, lane_id, Box(POOL_X + POOL_HEADER, lane_top, width - POOL_HEADER, lane_height),
                   isHorizontal="true")
        _draw(plane, ids, layout)
    return diagram


def _subprocess_diagram(subprocess: etree._Element, ids: _Ids) -> etree._Element:
    """A collapsed subprocess's own plane (bpmn-js drill-down), laid out like a process without lanes."""
    diagram, plane = _diagram(ids, subprocess.get("id"))
    _draw(plane, ids, _layout(subprocess, PLANE_X, PLANE_Y - LANE_PAD, []))
    return diagram
