"""Small helpers that write BPMN 2.0 XML for engine tests, one construct per diagram.

Tests describe a process as elements plus a chain of sequence flows; the helpers add the namespaces,
ids and flows. The output is plain BPMN with SpiffWorkflow extensions, validated by the same XSD as
every deployment.
"""

from __future__ import annotations

import itertools
from xml.sax.saxutils import escape, quoteattr

NS = ('xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
      'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" '
      'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"')

_ids = itertools.count(1)


def definitions(*parts: str, id: str = "defs") -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions {NS} id="{id}" '
            f'targetNamespace="http://samflyt.test">\n' + "\n".join(parts) + "\n</bpmn:definitions>\n")


def process(pid: str, *body: str, lanes: dict[str, list[str]] | None = None, name: str | None = None) -> str:
    lane_xml = ""
    if lanes:
        lane_xml = f'<bpmn:laneSet id="ls_{pid}">' + "".join(
            f'<bpmn:lane id="lane_{pid}_{i}" name="{lane}">'
            + "".join(f"<bpmn:flowNodeRef>{ref}</bpmn:flowNodeRef>" for ref in refs) + "</bpmn:lane>"
            for i, (lane, refs) in enumerate(lanes.items())) + "</bpmn:laneSet>"
    name_attr = f" name={quoteattr(name)}" if name else ""
    return f'<bpmn:process id="{pid}"{name_attr} isExecutable="true">{lane_xml}\n' + "\n".join(body) + \
        "\n</bpmn:process>"


def flow(source: str, target: str, condition: str | None = None, id: str | None = None) -> str:
    fid = id or f"flow_{next(_ids)}"
    if condition is None:
        return f'<bpmn:sequenceFlow id="{fid}" sourceRef="{source}" targetRef="{target}"/>'
    return (f'<bpmn:sequenceFlow id="{fid}" sourceRef="{source}" targetRef="{target}">'
            f"<bpmn:conditionExpression>{escape(condition)}</bpmn:conditionExpression></bpmn:sequenceFlow>")


def chain(*ids: str) -> str:
    return "\n".join(flow(a, b) for a, b in itertools.pairwise(ids))


def start(id: str = "start", inner: str = "") -> str:
    return f'<bpmn:startEvent id="{id}">{inner}</bpmn:startEvent>'


def end(id: str = "end", inner: str = "") -> str:
    return f'<bpmn:endEvent id="{id}">{inner}</bpmn:endEvent>'


def props(**values: str) -> str:
    items = "".join(f'<spiffworkflow:property name={quoteattr(k)} value={quoteattr(v)}/>' for k, v in values.items())
    return f"<spiffworkflow:properties>{items}</spiffworkflow:properties>"


def user_task(id: str, name: str | None = None, form: str | None = None, inner: str = "",
              properties: dict[str, str] | None = None) -> str:
    p = dict(properties or {})
    if form:
        p["formJsonSchemaFilename"] = form
    ext = f"<bpmn:extensionElements>{props(**p)}</bpmn:extensionElements>" if p else ""
    return f'<bpmn:userTask id="{id}" name={quoteattr(name or id)}>{ext}{inner}</bpmn:userTask>'


def manual_task(id: str, name: str | None = None) -> str:
    return f'<bpmn:manualTask id="{id}" name={quoteattr(name or id)}/>'


def script_task(id: str, script: str) -> str:
    return f'<bpmn:scriptTask id="{id}"><bpmn:script>{escape(script)}</bpmn:script></bpmn:scriptTask>'


def service_task(id: str, operator: str, result: str = "result", **params: tuple[str, str]) -> str:
    p = "".join(f'<spiffworkflow:parameter id="{k}" type="{t}" value={quoteattr(v)}/>'
                for k, (t, v) in params.items())
    return (f'<bpmn:serviceTask id="{id}"><bpmn:extensionElements>'
            f'<spiffworkflow:serviceTaskOperator id="{operator}" resultVariable="{result}">'
            f"<spiffworkflow:parameters>{p}</spiffworkflow:parameters></spiffworkflow:serviceTaskOperator>"
            f"</bpmn:extensionElements></bpmn:serviceTask>")


def gateway(kind: str, id: str, default: str | None = None) -> str:
    d = f' default="{default}"' if default else ""
    return f'<bpmn:{kind}Gateway id="{id}"{d}/>'


def timer(kind: str, expression: str) -> str:
    tag = {"date": "timeDate", "duration": "timeDuration", "cycle": "timeCycle"}[kind]
    return (f"<bpmn:timerEventDefinition><bpmn:{tag}>{escape(expression)}</bpmn:{tag}>"
            f"</bpmn:timerEventDefinition>")


def message_ref(message_id: str, variable: str | None = None) -> str:
    """A message event definition; ``variable`` names the data field a caught payload lands in."""
    if variable is None:
        return f'<bpmn:messageEventDefinition messageRef="{message_id}"/>'
    return (f'<bpmn:messageEventDefinition messageRef="{message_id}"><bpmn:extensionElements>'
            f"<spiffworkflow:messageVariable>{variable}</spiffworkflow:messageVariable>"
            f"</bpmn:extensionElements></bpmn:messageEventDefinition>")


def message(id: str, name: str | None = None, correlation_property: str | None = None,
            expression: str | None = None) -> str:
    return f'<bpmn:message id="{id}" name="{name or id}"/>'


def correlation(key: str, prop: str, messages: dict[str, str]) -> str:
    """A correlation key with one property whose retrieval expression differs per message."""
    exprs = "".join(
        f'<bpmn:correlationPropertyRetrievalExpression messageRef="{m}">'
        f"<bpmn:formalExpression>{escape(e)}</bpmn:formalExpression>"
        f"</bpmn:correlationPropertyRetrievalExpression>" for m, e in messages.items())
    return (f'<bpmn:correlationProperty id="{prop}" name="{prop}">{exprs}</bpmn:correlationProperty>'
            f'<bpmn:collaboration id="collab_{key}"><bpmn:correlationKey id="{key}" name="{key}">'
            f"<bpmn:correlationPropertyRef>{prop}</bpmn:correlationPropertyRef></bpmn:correlationKey>"
            f"</bpmn:collaboration>")


def mi(parallel: bool, collection: str, element: str, output: str | None = None,
       output_element: str | None = None) -> str:
    out_ref = f"<bpmn:loopDataOutputRef>{output}</bpmn:loopDataOutputRef>" if output else ""
    out_item = f'<bpmn:outputDataItem id="{output_element}" name="{output_element}"/>' if output else ""
    return (f'<bpmn:multiInstanceLoopCharacteristics isSequential="{str(not parallel).lower()}">'
            f"<bpmn:loopDataInputRef>{collection}</bpmn:loopDataInputRef>{out_ref}"
            f'<bpmn:inputDataItem id="{element}" name="{element}"/>{out_item}'
            f"</bpmn:multiInstanceLoopCharacteristics>")


# --------------------------------------------------------------------------- events (appended for event tests)
def _ext(*parts: str) -> str:
    body = "".join(p for p in parts if p)
    return f"<bpmn:extensionElements>{body}</bpmn:extensionElements>" if body else ""


def catch_event(id: str, definition: str, name: str | None = None) -> str:
    """An intermediate catch event holding one event definition (timer, message_event, signal_ref...)."""
    return f'<bpmn:intermediateCatchEvent id="{id}" name={quoteattr(name or id)}>{definition}' \
        "</bpmn:intermediateCatchEvent>"


def throw_event(id: str, definition: str, name: str | None = None) -> str:
    return f'<bpmn:intermediateThrowEvent id="{id}" name={quoteattr(name or id)}>{definition}' \
        "</bpmn:intermediateThrowEvent>"


def boundary_event(id: str, attached_to: str, definition: str, interrupting: bool = True) -> str:
    return (f'<bpmn:boundaryEvent id="{id}" attachedToRef="{attached_to}" '
            f'cancelActivity="{str(interrupting).lower()}">{definition}</bpmn:boundaryEvent>')


def event_start(id: str, definition: str, interrupting: bool = True) -> str:
    """A start event with an event definition; ``interrupting`` matters in event subprocesses only."""
    return f'<bpmn:startEvent id="{id}" isInterrupting="{str(interrupting).lower()}">{definition}</bpmn:startEvent>'


def message_event(message_id: str, payload: str | None = None, variable: str | None = None) -> str:
    """A messageEventDefinition with SpiffWorkflow's payload expression (throw) / variable (catch)."""
    ext = _ext(f"<spiffworkflow:messagePayload>{escape(payload)}</spiffworkflow:messagePayload>" if payload else "",
               f"<spiffworkflow:messageVariable>{escape(variable)}</spiffworkflow:messageVariable>"
               if variable else "")
    return f'<bpmn:messageEventDefinition messageRef="{message_id}">{ext}</bpmn:messageEventDefinition>'


def signal(id: str, name: str | None = None) -> str:
    return f'<bpmn:signal id="{id}" name="{name or id}"/>'


def signal_ref(signal_id: str) -> str:
    return f'<bpmn:signalEventDefinition signalRef="{signal_id}"/>'


def _payload_ext(payload: str | None, variable: str | None) -> str:
    return _ext(f"<spiffworkflow:payloadExpression>{escape(payload)}</spiffworkflow:payloadExpression>"
                if payload else "",
                f"<spiffworkflow:variableName>{escape(variable)}</spiffworkflow:variableName>" if variable else "")


def error(id: str, name: str | None = None, code: str | None = None, payload: str | None = None,
          variable: str | None = None) -> str:
    """A bpmn:error; SpiffWorkflow reads the thrown payload and the catching variable from it."""
    code_attr = f' errorCode="{code}"' if code else ""
    return f'<bpmn:error id="{id}" name="{name or id}"{code_attr}>{_payload_ext(payload, variable)}</bpmn:error>'


def error_ref(error_id: str) -> str:
    return f'<bpmn:errorEventDefinition errorRef="{error_id}"/>'


def escalation(id: str, name: str | None = None, code: str | None = None, payload: str | None = None,
               variable: str | None = None) -> str:
    code_attr = f' escalationCode="{code}"' if code else ""
    return (f'<bpmn:escalation id="{id}" name="{name or id}"{code_attr}>{_payload_ext(payload, variable)}'
            "</bpmn:escalation>")


def escalation_ref(escalation_id: str) -> str:
    return f'<bpmn:escalationEventDefinition escalationRef="{escalation_id}"/>'


def subprocess(id: str, *body: str, event: bool = False, name: str | None = None) -> str:
    """An embedded subprocess; ``event=True`` makes it an event subprocess (triggeredByEvent)."""
    trig = ' triggeredByEvent="true"' if event else ""
    return f'<bpmn:subProcess id="{id}" name={quoteattr(name or id)}{trig}>\n' + "\n".join(body) + \
        "\n</bpmn:subProcess>"


def call_activity(id: str, called: str, name: str | None = None) -> str:
    return f'<bpmn:callActivity id="{id}" name={quoteattr(name or id)} calledElement="{called}"/>'


def business_rule_task(id: str, decision_id: str, name: str | None = None) -> str:
    return (f'<bpmn:businessRuleTask id="{id}" name={quoteattr(name or id)}><bpmn:extensionElements>'
            f"<spiffworkflow:calledDecisionId>{decision_id}</spiffworkflow:calledDecisionId>"
            f"</bpmn:extensionElements></bpmn:businessRuleTask>")


def dmn_table(decision_id: str, inputs: list[tuple[str, str]], outputs: list[tuple[str, str]],
              rules: list[tuple[list[str], list[str]]], hit_policy: str = "UNIQUE") -> str:
    """A DMN 1.3 document with one decision table.

    ``inputs`` and ``outputs`` are ``(expression or output name, typeRef)`` pairs; each rule gives its input
    entries (unary tests, "" or "-" for any) and output entries (expressions), in column order.
    """
    ins = "".join(f'<input id="{decision_id}_in{i}" label="{escape(expr)}">'
                  f'<inputExpression id="{decision_id}_ie{i}" typeRef="{type_}"><text>{escape(expr)}</text>'
                  f"</inputExpression></input>" for i, (expr, type_) in enumerate(inputs))
    outs = "".join(f'<output id="{decision_id}_out{i}" label="{name}" name="{name}" typeRef="{type_}"/>'
                   for i, (name, type_) in enumerate(outputs))
    rule_xml = "".join(
        f'<rule id="{decision_id}_r{r}">'
        + "".join(f'<inputEntry id="{decision_id}_r{r}_i{i}"><text>{escape("" if e == "-" else e)}</text>'
                  f"</inputEntry>" for i, e in enumerate(entries))
        + "".join(f'<outputEntry id="{decision_id}_r{r}_o{i}"><text>{escape(e)}</text></outputEntry>'
                  for i, e in enumerate(results))
        + "</rule>" for r, (entries, results) in enumerate(rules))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" '
            f'id="dmn_{decision_id}" name="{decision_id}" namespace="http://samflyt.test/dmn">'
            f'<decision id="{decision_id}" name="{decision_id}">'
            f'<decisionTable id="{decision_id}_table" hitPolicy="{hit_policy}">{ins}{outs}{rule_xml}'
            "</decisionTable></decision></definitions>\n")
