"""IAM policies for lesson 05 (least privilege): a linter, grants, and proof under moto's enforcement.

This module owns:

- `lint(policy)`: the course's policy linter. Each `Finding` names its rule, the statement's index
  in `Statement` (0-based; None for the document as a whole) and the reason. Rules: `malformed`
  (what IAM would reject, or a typo it would silently misread), `version`, `admin` (Allow `*` on
  `*`), `wildcard-action` (`*`, `s3:*`, `s3:Get*`), `wildcard-resource` (`*`, or an ARN that names
  no resource, where the actions could be limited to named resources), `not-action` and
  `not-resource` with Allow, `pass-role` (iam:PassRole on any role), `privilege-escalation`
  (IAM actions that rewrite permissions), `public-principal` (a trust or resource policy open
  to anyone). Deny statements only need to be well formed: denying broadly is safe.
- `lint_repository(root)`: every IAM policy document kept as a `*.json` file in the repository.
  Policies built in Python are not scanned statically: they are built from parameters (bucket
  and function names), so a scan would only see templates. Each builder is linted on its output
  where it is checked instead (the `leastpriv` lab check lints the learner's `policy(...)`).
- `grants(policy)` / `without(policy, grant)`: a policy as single (action, resource) grants, and
  the same policy minus one of them; `ablate` runs a workload once per missing grant.
- `allows(policy, action, resource)`: moto's own policy evaluator, for resources moto's request
  path cannot name (it authorizes CloudWatch Logs calls against "*").
- For the local cloud: `set_role_policy`, `role_policies`, `audit_role`, the probe calls that ask
  "what can code running with this role do?" (and `plot_probes`, their grid), `policy_builder`
  (a lab's `policy(...)`), and `ThumbnailStage`, the lesson's thumbnail service deployed under
  one role, used by notebook 05 and the `leastpriv` lab check.
- `lambdalab lint-policy [FILE...]` (`lambdalab.cli.lint_policy`).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence
from urllib.parse import unquote_plus

VERSIONS = ("2012-10-17", "2008-10-17")
STATEMENT_KEYS = ("Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource",
                  "NotResource", "Condition")
RULES = ("malformed", "version", "admin", "wildcard-action", "wildcard-resource", "not-action",
         "not-resource", "pass-role", "privilege-escalation", "public-principal")

# Actions that accept no resource but "*" (the Service Authorization Reference lists no resource
# type for them): "*" is the only thing such a statement can say. A subset: the ones Lambda
# functions commonly need. Any other action is assumed to take named resources.
STAR_ONLY_ACTIONS = frozenset(a.lower() for a in (
    "s3:ListAllMyBuckets", "sts:GetCallerIdentity",
    "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
    "xray:GetSamplingTargets", "xray:GetSamplingStatisticSummaries",
    "cloudwatch:PutMetricData", "cloudwatch:GetMetricData", "cloudwatch:GetMetricStatistics",
    "cloudwatch:ListMetrics", "sqs:ListQueues", "sns:ListTopics", "dynamodb:ListTables",
    "lambda:ListFunctions", "lambda:GetAccountSettings", "iam:ListRoles", "iam:ListPolicies",
    "iam:ListUsers", "kms:ListKeys", "kms:ListAliases", "secretsmanager:ListSecrets",
    "ssm:DescribeParameters", "states:ListStateMachines", "tag:GetResources",
    "ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
))
STAR_ONLY_PREFIXES = ("ec2:describe",)  # every EC2 Describe* action takes only "*"

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


def _strings(value: Any) -> list[str] | None:
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


def _star_only(action: str) -> bool:
    lowered = action.lower()
    return lowered in STAR_ONLY_ACTIONS or lowered.startswith(STAR_ONLY_PREFIXES)


def _names_nothing(resource: str) -> bool:
    """True when an ARN matches every resource of its kind: `arn:aws:s3:::*`, `...:table/*`."""
    parts = resource.split(":", 5)
    if len(parts) < 6:
        return False
    service, name = parts[2], parts[5]
    if service != "s3":  # S3 ARNs have no resource type in front of the bucket name
        name = _RESOURCE_TYPE.sub("", name, count=1)
    return set(name) <= set("*?/:")


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
        if key in st:
            actions = _strings(st[key])
            if actions is None:
                problems.append(f"{key} must be a string or a non-empty list of strings")
                continue
            for action in actions:
                if action != "*" and not _ACTION.match(action):
                    hint = " (actions are written service:Action, e.g. \"s3:GetObject\")" if ":" not in action else ""
                    problems.append(f"{key} {action!r} is not an action{hint}")
    if "Resource" in st and "NotResource" in st:
        problems.append("a statement has Resource or NotResource, not both")
    has_principal = "Principal" in st or "NotPrincipal" in st
    if not has_principal and "Resource" not in st and "NotResource" not in st:
        problems.append("a statement of an identity policy needs Resource (the ARNs it applies to)")
    for key in ("Resource", "NotResource"):
        if key in st:
            resources = _strings(st[key])
            if resources is None:
                problems.append(f"{key} must be a string or a non-empty list of strings")
                continue
            for resource in resources:
                if resource != "*" and not (resource.startswith("arn:") and resource.count(":") >= 5):
                    problems.append(f"{key} {resource!r} is not an ARN or \"*\" (e.g. \"arn:aws:s3:::my-bucket/*\")")
    if "Condition" in st and not isinstance(st["Condition"], Mapping):
        problems.append("Condition must be a JSON object")
    return [Finding("malformed", index, p, sid) for p in problems]


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

    actions = _strings(st.get("Action")) or []
    resources = _strings(st.get("Resource")) or []
    every_resource = "*" in resources or "NotResource" in st
    if "NotAction" in st:
        listed = ", ".join(_strings(st["NotAction"]) or [])
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


# --- grants -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """One action on one resource, allowed by statement `statement`. A statement that cannot be
    split (NotAction, NotResource, no Resource) is one grant with action and resource None."""

    statement: int
    action: str | None
    resource: str | None

    def __str__(self) -> str:
        if self.action is None:
            return f"Statement[{self.statement}] as a whole"
        return f"{self.action} on {self.resource}"


def grants(policy: Mapping[str, Any]) -> list[Grant]:
    """Every single grant of the policy's Allow statements, in order."""
    out: list[Grant] = []
    for index, st in enumerate(statements(policy)):
        if not isinstance(st, Mapping) or st.get("Effect") != "Allow":
            continue
        actions, resources = _strings(st.get("Action")), _strings(st.get("Resource"))
        if actions is None or resources is None or "NotResource" in st:
            out.append(Grant(index, None, None))
            continue
        out += [Grant(index, a, r) for a in actions for r in resources]
    return out


def without(policy: Mapping[str, Any], grant: Grant) -> dict[str, Any]:
    """A copy of `policy` that no longer makes `grant` (its statement split as needed)."""
    result = copy.deepcopy(dict(policy))
    original = statements(result)  # copies: the result shares nothing with `policy`
    if not 0 <= grant.statement < len(original):
        raise ValueError(f"the policy has no Statement[{grant.statement}]")
    st = original[grant.statement]
    replacement: list[dict[str, Any]] = []
    if grant.action is not None:
        remaining = {a: [r for r in _strings(st["Resource"]) or [] if not (a == grant.action and r == grant.resource)]
                     for a in _strings(st["Action"]) or []}
        if remaining == {a: _strings(st["Resource"]) for a in remaining}:
            raise ValueError(f"Statement[{grant.statement}] does not grant {grant}")
        groups: dict[tuple[str, ...], list[str]] = {}
        for action, resources in remaining.items():
            if resources:
                groups.setdefault(tuple(resources), []).append(action)
        for n, (resources, actions) in enumerate(groups.items()):
            piece = {k: copy.deepcopy(v) for k, v in st.items() if k not in ("Action", "Resource", "Sid")}
            if n == 0 and "Sid" in st:  # Sids must stay unique: only the first piece keeps it
                piece = {"Sid": st["Sid"], **piece}
            piece["Action"] = actions[0] if len(actions) == 1 else actions
            piece["Resource"] = resources[0] if len(resources) == 1 else list(resources)
            replacement.append(piece)
    rest = original[:grant.statement] + replacement + original[grant.statement + 1:]
    result["Statement"] = rest
    return result


def allows(policy: Mapping[str, Any], action: str, resource: str) -> bool:
    """Whether `policy` allows `action` on `resource`, by the evaluator moto's enforcement uses."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    return IAMPolicy(json.dumps(policy)).is_action_permitted(action, resource) == PermissionResult.PERMITTED


@dataclass(frozen=True)
class Ablation:
    """What happened when the workload ran without one grant."""

    grant: Grant
    ok: bool  # the workload still succeeded: the grant was not needed
    error: str  # why it failed, e.g. "AccessDenied: ... when calling the PutObject operation ..."


def ablate(policy: Mapping[str, Any], apply: Callable[[Mapping[str, Any]], None],
           run: Callable[[], tuple[bool, str]], only: Callable[[Grant], bool] = lambda g: True) -> list[Ablation]:
    """Run the workload once per grant of `policy` (those `only` selects) with that grant removed.

    `apply(policy)` installs a policy (e.g. as the role's inline policy); `run()` returns
    (succeeded, error). The full policy is installed again at the end, whatever happened."""
    results: list[Ablation] = []
    try:
        for grant in grants(policy):
            if only(grant):
                apply(without(policy, grant))
                ok, error = run()
                results.append(Ablation(grant, ok, error))
    finally:
        apply(policy)
    return results


# --- roles in the local cloud ----------------------------------------------------------------


def set_role_policy(iam: Any, role: str, policy: Mapping[str, Any] | None, name: str = "permissions") -> None:
    """Make `policy` the role's only permissions policy (inline, as `name`): every other inline
    policy is deleted and every managed policy detached. None or no statements: no permissions.

    `iam` is a boto3 IAM client (IAM validates the document: MalformedPolicyDocument)."""
    for existing in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        if existing != name:
            iam.delete_role_policy(RoleName=role, PolicyName=existing)
    for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
        iam.detach_role_policy(RoleName=role, PolicyArn=attached["PolicyArn"])
    if policy is None or not statements(policy):
        if name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
            iam.delete_role_policy(RoleName=role, PolicyName=name)
        return
    iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(policy))


def _document(value: Any) -> dict[str, Any]:
    """boto3 returns policy documents decoded; some clients leave them URL-encoded JSON."""
    return json.loads(unquote_plus(value)) if isinstance(value, str) else dict(value)


def role_policies(iam: Any, role: str) -> dict[str, dict[str, Any]]:
    """Every permissions policy of a role: `inline:<name>` and each attached policy's ARN."""
    found: dict[str, dict[str, Any]] = {}
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        found[f"inline:{name}"] = _document(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])
    for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
        arn = attached["PolicyArn"]
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        found[arn] = _document(iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"])
    return found


def audit_role(iam: Any, role: str) -> dict[str, list[Finding]]:
    """The linter's findings for each of a role's policies, as IAM holds them."""
    return {name: lint(document) for name, document in role_policies(iam, role).items()}


# --- probes: what can code running with a role do? ----------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One AWS call made from inside a function, to see whether its role allows it."""

    label: str
    service: str
    operation: str  # the boto3 method name
    parameters: dict[str, Any] = field(default_factory=dict)
    needed: bool = False  # the thumbnail function needs this to do its job

    def call(self) -> dict[str, Any]:
        return {"service": self.service, "operation": self.operation, "parameters": self.parameters}


def thumbnail_probes(source: str, thumbs: str, prefix: str, other_bucket: str) -> list[Probe]:
    """The calls the thumbnail function needs, then the ones a compromised function would like."""
    upload, thumb = f"{prefix}probe.jpg", f"thumb-{prefix}probe.jpg"
    return [
        Probe("read an upload", "s3", "get_object", {"Bucket": source, "Key": upload}, needed=True),
        Probe("write a thumbnail", "s3", "put_object", {"Bucket": thumbs, "Key": thumb, "Body": "x"}, needed=True),
        Probe("write into the source bucket", "s3", "put_object",
              {"Bucket": source, "Key": "probe/written-by-the-function.txt", "Body": "x"}),
        Probe("delete an upload", "s3", "delete_object", {"Bucket": source, "Key": f"{prefix}probe-deleted.jpg"}),
        Probe("read a thumbnail back", "s3", "get_object", {"Bucket": thumbs, "Key": thumb}),
        Probe("list the source bucket", "s3", "list_objects_v2", {"Bucket": source}),
        Probe("list every bucket", "s3", "list_buckets"),
        Probe(f"read another bucket ({other_bucket})", "s3", "get_object", {"Bucket": other_bucket, "Key": "salaries.csv"}),
        Probe("list DynamoDB tables", "dynamodb", "list_tables"),
        Probe("list IAM roles", "iam", "list_roles"),
        Probe("create an IAM user", "iam", "create_user", {"UserName": "probe-backdoor"}),
    ]


DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})


def probe_verdict(outcome: str) -> str:
    """"allowed" when the call got past authorization (even if it then failed, e.g. NoSuchKey)."""
    return "denied" if outcome in DENIED_CODES else "allowed"


def plot_probes(probes: Sequence[Probe], columns: Mapping[str, Mapping[str, str] | None], ax: Any = None,
                title: str = "What code running with each role may do") -> Any:
    """A grid: one row per probe, one column per role; green allowed, red denied, grey not run
    (a column of None). Calls the function needs are marked with a check mark. Returns the axes."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    codes = {"denied": 0, "allowed": 1, None: 2}
    grid = [[codes[probe_verdict(col[p.label]) if col is not None else None] for col in columns.values()]
            for p in probes]
    if ax is None:
        _, ax = plt.subplots(figsize=(2.2 + 1.7 * len(columns), 0.42 * len(probes) + 1.2))
    ax.imshow(grid, cmap=ListedColormap(["#d95f02", "#1b9e77", "#bbbbbb"]), vmin=0, vmax=2, aspect="auto")
    for row, probe in enumerate(probes):
        for col, column in enumerate(columns.values()):
            text = "not run" if column is None else probe_verdict(column[probe.label])
            ax.text(col, row, text, ha="center", va="center", color="white", fontsize=9)
    ax.set_xticks([x + 0.5 for x in range(len(columns) - 1)], minor=True)
    ax.set_yticks([y + 0.5 for y in range(len(probes) - 1)], minor=True)
    ax.grid(which="minor", color="white", linewidth=2)
    ax.tick_params(which="minor", length=0)
    ax.set_xticks(range(len(columns)), list(columns))
    ax.set_yticks(range(len(probes)), [("✓ " if p.needed else "") + p.label for p in probes])
    ax.tick_params(top=True, bottom=False, labeltop=True, labelbottom=False)
    ax.set_title(title)
    return ax


# --- the lesson's stage ------------------------------------------------------------------------


def policy_builder(code_dir: str | Path) -> Callable[..., dict]:
    """The `policy(...)` function of `<code_dir>/policy.py`, imported afresh (edits count)."""
    import importlib.util

    path = Path(code_dir) / "policy.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    spec = importlib.util.spec_from_file_location(f"policy_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    builder = getattr(module, "policy", None)
    if not callable(builder):
        raise AttributeError(f"{path} defines no function policy(...)")
    return builder


@dataclass(frozen=True)
class Upload:
    """One upload through the S3 trigger, and what the thumbnail function made of it."""

    key: str
    ok: bool  # the function succeeded and the thumbnail exists
    attempts: int  # invocations for this upload (Lambda retries a failed async event twice)
    error: str  # the last invocation's error, e.g. "AccessDenied: An error occurred ..."


class ThumbnailStage:
    """The thumbnail service of lesson 04, deployed in a `LocalCloud` under ONE execution role.

    Makes the source bucket (with the S3 trigger on `prefix`), the thumbnail bucket, an unrelated
    bucket, the function's log group (the deployment creates it, with a retention, so the role
    needs no logs:CreateLogGroup), the role (trusting Lambda, no permissions yet), the thumbnail
    function from `code_dir`, and a probe function from `probe_dir` under the same role.
    Switch the role's permissions with `use(policy)`."""

    def __init__(self, cloud: Any, code_dir: str | Path, probe_dir: str | Path, *, source: str = "photos",
                 thumbs: str = "photos-thumbnails", other_bucket: str = "payroll", prefix: str = "uploads/",
                 function: str = "thumbnails", role: str = "thumbnails-role", memory: int = 256,
                 probe_memory: int = 1024):
        self.cloud = cloud
        self.source, self.thumbs, self.other_bucket, self.prefix = source, thumbs, other_bucket, prefix
        self.function, self.role = function, role
        self.probe_function = f"{function}-probe"
        self.region, self.account = cloud.region, cloud.account_id
        self.s3 = cloud.client("s3")
        self.iam = cloud.client("iam")
        for bucket in (source, thumbs, other_bucket):
            self.s3.create_bucket(Bucket=bucket)
        self.s3.put_object(Bucket=other_bucket, Key="salaries.csv", Body=b"name,salary\n")
        logs = cloud.client("logs")
        logs.create_log_group(logGroupName=self.log_group)
        logs.put_retention_policy(logGroupName=self.log_group, retentionInDays=14)
        self.role_arn = cloud.create_role(role, basic_execution=False)
        fn = cloud.deploy(function, code_dir, "handler.lambda_handler", role=self.role_arn, memory=memory,
                          timeout=30, env={"THUMBNAIL_BUCKET": thumbs, "SOURCE_PREFIX": prefix})
        # The probe is tooling: a large CPU share keeps its cold start (importing boto3) short.
        cloud.deploy(self.probe_function, probe_dir, "probe.lambda_handler", role=self.role_arn,
                     memory=probe_memory, timeout=30)
        self.s3.put_bucket_notification_configuration(Bucket=source, NotificationConfiguration={
            "LambdaFunctionConfigurations": [{
                "Id": "make-thumbnails", "LambdaFunctionArn": fn["FunctionArn"], "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}}}]})
        self._uploads = 0

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.function}"

    @property
    def log_group_arn(self) -> str:
        return f"arn:aws:logs:{self.region}:{self.account}:log-group:{self.log_group}"

    def names(self) -> dict[str, str]:
        """The keyword arguments of a `policy(...)` builder for this stage."""
        return {"source_bucket": self.source, "thumbnail_bucket": self.thumbs, "function_name": self.function,
                "region": self.region, "account": self.account}

    def use(self, policy: Mapping[str, Any] | None) -> None:
        """Make `policy` the role's only permissions (takes effect on the next AWS call)."""
        set_role_policy(self.iam, self.role, policy)

    def upload(self, body: bytes, key: str | None = None, timeout: float = 60.0) -> Upload:
        """Upload `body` under the trigger's prefix and wait for the function (retries included)."""
        self._uploads += 1
        key = self.prefix + (key or f"photo-{self._uploads:03d}.jpg")
        self.s3.put_object(Bucket=self.source, Key=key, Body=body)
        if not self.cloud.settle(timeout):
            return Upload(key, False, 0, f"the function did not finish within {timeout:g} s")
        mine = self.invocations(key)
        if not mine:
            return Upload(key, False, 0, "the upload did not invoke the function")
        last = mine[-1]
        if not last.ok:
            return Upload(key, False, len(mine), f"{last.error_type}: {(last.error or {}).get('errorMessage', '')}")
        failures = last.result.get("failures") if isinstance(last.result, dict) else None
        if failures:
            return Upload(key, False, len(mine), f"{failures[0]['error']}: {failures[0]['reason']}")
        return Upload(key, self.thumbnail_exists(key), len(mine), "")

    def invocations(self, key: str) -> list[Any]:
        """The function's invocations for the upload at `key` (retries included), oldest first."""
        return [inv for inv in self.cloud.records(self.function)
                if isinstance(inv.event, dict) and inv.event.get("Records")
                and unquote_plus(inv.event["Records"][0]["s3"]["object"]["key"]) == key]

    def ablate(self, policy: Mapping[str, Any], body: bytes) -> list[Ablation]:
        """Upload `body` once per grant of `policy` with that grant removed from the role (log
        writes into the function's own group excepted: Lambda writes logs, not the handler)."""
        def attempt() -> tuple[bool, str]:
            upload = self.upload(body)
            return upload.ok, upload.error

        return ablate(policy, self.use, attempt, only=lambda grant: not self.is_log_write(grant))

    def thumbnail_exists(self, key: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.thumbs, Key=f"thumb-{key}")
            return True
        except self.s3.exceptions.ClientError:
            return False

    def probes(self) -> list[Probe]:
        return thumbnail_probes(self.source, self.thumbs, self.prefix, self.other_bucket)

    def probe(self, probes: Sequence[Probe] | None = None) -> dict[str, str]:
        """{probe label: the call's outcome ("allowed" or the error code)} from inside a function
        running with the role: moto's enforcement decides each call."""
        probes = list(probes or self.probes())
        self.s3.put_object(Bucket=self.source, Key=f"{self.prefix}probe.jpg", Body=b"not really a photo")
        inv = self.cloud.invoke(self.probe_function, {"calls": [p.call() for p in probes]})
        if not inv.ok:
            raise RuntimeError(f"the probe function failed: {inv.error_type}: {(inv.error or {}).get('errorMessage', '')}")
        return dict(zip((p.label for p in probes), inv.result))

    def is_log_write(self, grant: Grant) -> bool:
        """A grant for the function's own log group (the platform writes logs, not the handler)."""
        return bool(grant.action and grant.action.lower().startswith("logs:")
                    and (grant.resource or "").startswith(self.log_group_arn))

    def log_access(self, policy: Mapping[str, Any]) -> dict[str, dict[str, bool]]:
        """{action: {"own log group": allowed, "another function's": allowed}} by moto's evaluator."""
        other = f"arn:aws:logs:{self.region}:{self.account}:log-group:/aws/lambda/payroll-export"
        stream = ":log-stream:2024/01/01/[$LATEST]0123456789abcdef0123456789abcdef"
        return {action: {"own log group": allows(policy, action, self.log_group_arn + stream),
                         "another function's": allows(policy, action, other + stream)}
                for action in ("logs:CreateLogStream", "logs:PutLogEvents")}
