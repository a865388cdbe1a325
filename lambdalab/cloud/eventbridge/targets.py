"""What an EventBridge target receives: the event in AWS's shape, and the target's input.

`aws_event` turns the event moto keeps into the one a rule's target sees (AWS's keys and order,
`time` as ISO text). `target_input` applies a target's `Input` (constant JSON), `InputPath` or
`InputTransformer` (`json_path`, EventBridge's JSONPath subset, and `render_template`, its
placeholder rules), and `lambda_function_name` says whether a target is a Lambda function.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from datetime import datetime, timezone
from typing import Any

from lambdalab._util.timefmt import iso_seconds

_PATH_TOKEN = re.compile(r"\.(\*|[^.\[\]]+)|\[(\d+|\*)\]")


def json_path(document: Any, path: str) -> tuple[bool, Any]:
    """EventBridge's JSONPath subset ($, .name, [index], * wildcards). (found, value); a path
    with a wildcard yields the list of everything it reached."""
    if not isinstance(path, str) or not path.startswith("$"):
        raise ValueError(f"JSON path {path!r} must start with '$'")
    rest, tokens = path[1:], []
    while rest:
        m = _PATH_TOKEN.match(rest)
        if not m:
            raise ValueError(f"JSON path {path!r}: cannot read {rest!r} (use dot notation, [index] or *)")
        tokens.append(m.group(1) if m.group(1) is not None else m.group(2))
        rest = rest[m.end():]
    nodes, wild = [document], False
    for token in tokens:
        reached = []
        for node in nodes:
            if token == "*":
                wild = True
                reached.extend(node.values() if isinstance(node, dict) else node if isinstance(node, list) else [])
            elif isinstance(node, dict) and token in node:
                reached.append(node[token])
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                reached.append(node[int(token)])
        nodes = reached
    if wild:
        return True, nodes
    return (True, nodes[0]) if nodes else (False, None)


_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")


def render_template(template: str, variables: dict[str, tuple[bool, Any]]) -> Any:
    """Fill an InputTransformer template. A placeholder inside a JSON string gets the value's text
    (a string without quotes); outside one it gets the value as JSON. An unresolved path gives
    null (or nothing inside a string). Returns the parsed JSON, or the text when it is not JSON."""
    out: list[str] = []
    in_string = escaped = False
    i = 0
    while i < len(template):
        c = template[i]
        m = _PLACEHOLDER.match(template, i) if c == "<" else None
        if m and m.group(1) in variables:
            found, value = variables[m.group(1)]
            if in_string:
                text = value if isinstance(value, str) else json.dumps(value) if found else ""
                out.append(json.dumps(text)[1:-1])
            else:
                out.append(json.dumps(value) if found else "null")
            i = m.end()
            continue
        out.append(c)
        if escaped:
            escaped = False
        elif c == "\\" and in_string:
            escaped = True
        elif c == '"':
            in_string = not in_string
        i += 1
    text = "".join(out)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def target_input(target: dict, event: dict, *, rule_arn: str, rule_name: str, ingestion_time: str) -> Any:
    """What a target receives: `Input` (constant JSON), `InputPath`, `InputTransformer`, or the event."""
    if target.get("Input") is not None:
        try:
            return json.loads(target["Input"])
        except json.JSONDecodeError as e:
            raise ValueError(f"target {target.get('Id')!r}: Input is not valid JSON ({e.msg})") from None
    if target.get("InputPath"):
        return json_path(event, target["InputPath"])[1]
    transformer = target.get("InputTransformer")
    if transformer:
        without_detail = {k: v for k, v in event.items() if k != "detail"}
        variables: dict[str, tuple[bool, Any]] = {
            "aws.events.rule-arn": (True, rule_arn),
            "aws.events.rule-name": (True, rule_name),
            "aws.events.event.ingestion-time": (True, ingestion_time),
            "aws.events.event": (True, without_detail),
            "aws.events.event.json": (True, event),
        }
        for name, path in (transformer.get("InputPathsMap") or {}).items():
            variables[name] = json_path(event, path)
        return render_template(transformer.get("InputTemplate", ""), variables)
    return event


def iso_time(value: Any) -> str:
    """EventBridge's `time`: ISO 8601 to the second, UTC (moto keeps epoch seconds)."""
    when: datetime | None = None  # now
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        when = datetime.fromtimestamp(value, timezone.utc)
    elif isinstance(value, str) and value:
        try:
            when = datetime.fromtimestamp(float(value), timezone.utc)
        except ValueError:
            return value  # already ISO text
    return iso_seconds(when)


_MOTO_PLACEHOLDER_ID = "17793124-05d4-b198-2fde-7ededc63b103"  # moto.events.utils._BASE_EVENT_MESSAGE
_AWS_KEYS = ("version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail")


def aws_event(moto_event: dict) -> dict:
    """The event as a rule's target sees it: AWS's keys and order, `time` as ISO text,
    `replay-name` kept for replays, moto's internal `ingestion-time` left out."""
    event = {key: copy.deepcopy(moto_event.get(key)) for key in _AWS_KEYS}
    event["version"] = event["version"] or "0"
    if not event["id"] or event["id"] == _MOTO_PLACEHOLDER_ID:
        # moto's S3 notifications reuse one fixed id; derive a stable one per event instead,
        # so every rule that receives the same event sees the same id, as on AWS.
        seed = json.dumps([moto_event.get("time"), moto_event.get("resources"), moto_event.get("detail")],
                          sort_keys=True, default=str)
        event["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, seed))
    event["time"] = iso_time(moto_event.get("time"))
    event["resources"] = list(event["resources"] or [])
    if event["detail"] is None:
        event["detail"] = {}
    if moto_event.get("replay-name"):
        event["replay-name"] = moto_event["replay-name"]
    return event


def lambda_function_name(arn: str) -> str | None:
    """`my-fn` for arn:aws:lambda:REGION:ACCOUNT:function:my-fn[:qualifier]; None if not Lambda."""
    from moto.utilities.arns import parse_arn

    try:
        parsed = parse_arn(arn)
    except ValueError:
        return None
    if parsed.service != "lambda" or parsed.resource_type != "function":
        return None
    return parsed.resource_id.split(":", 1)[0]
