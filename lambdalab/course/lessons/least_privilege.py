"""Lesson 05's instruments (least privilege): a policy as single grants, roles in the local cloud,
probes of what code running with a role may do, and the lesson's thumbnail stage.

- `grants(policy)` / `without(policy, grant)`: a policy as single (action, resource) grants, and
  the same policy minus one of them; `ablate` runs a workload once per missing grant.
- `allows(policy, action, resource)`: moto's own policy evaluator, for resources moto's request
  path cannot name (it authorizes CloudWatch Logs calls against "*").
- For a target (`lambdalab.course.target`): `set_role_policy`, `role_policies`, `audit_role` (the linter's findings
  for each), the probe calls that ask "what can code running with this role do?" (and
  `plot_probes`, their grid), `policy_builder` (a lab's `policy(...)`), and `ThumbnailStage`,
  the lesson's thumbnail service deployed under one role, used by notebook 05 and the
  `leastpriv` lab check.

The linter itself is `lambdalab.course.iampolicy`.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from lambdalab.course.iampolicy import Finding, lint, statements, string_list
from lambdalab.course.labs import load_module
from lambdalab.course.target.reports import SettleTimeout

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
        actions, resources = string_list(st.get("Action")), string_list(st.get("Resource"))
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
        remaining = {a: [r for r in string_list(st["Resource"]) or []
                         if not (a == grant.action and r == grant.resource)]
                     for a in string_list(st["Action"]) or []}
        if remaining == {a: string_list(st["Resource"]) for a in remaining}:
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
        Probe(f"read another bucket ({other_bucket})", "s3", "get_object",
              {"Bucket": other_bucket, "Key": "salaries.csv"}),
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
    path = Path(code_dir) / "policy.py"
    builder = getattr(load_module(path), "policy", None)
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
    """The thumbnail service of lesson 04, deployed on a target (`open_target`) under ONE execution role.

    Makes the source bucket (with the S3 trigger on `prefix`), the thumbnail bucket, an unrelated
    bucket, the role (trusting Lambda, no permissions yet), the thumbnail function from `code_dir`
    (the target creates its log group first, so the role needs no logs:CreateLogGroup), and a probe
    function from `probe_dir` under the same role. Every name carries the run's prefix. A failed
    event is not retried (Lambda would retry after 1 and 2 minutes): one upload, one attempt.
    What happened to an upload is read from the function's logs, as on AWS. Switch the role's
    permissions with `use(policy)`."""

    def __init__(self, target: Any, code_dir: str | Path, probe_dir: str | Path, *, source: str = "photos",
                 thumbs: str = "photos-thumbnails", other_bucket: str = "payroll", prefix: str = "uploads/",
                 function: str = "thumbnails", role: str = "thumbnails-role", memory: int = 256,
                 probe_memory: int = 1024):
        self.target = target
        self.source, self.thumbs, self.other_bucket = (target.name(b) for b in (source, thumbs, other_bucket))
        self.prefix = prefix
        self._function, self._probe = function, f"{function}-probe"
        self.function, self.probe_function = target.name(function), target.name(self._probe)
        self.role = target.name(role)
        self.region, self.account = target.region, target.account_id
        self.s3 = target.client("s3")
        self.iam = target.client("iam")
        for bucket in (self.source, self.thumbs, self.other_bucket):
            self.s3.create_bucket(Bucket=bucket)
            self.s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": target.tag_list()})
        self.s3.put_object(Bucket=self.other_bucket, Key="salaries.csv", Body=b"name,salary\n")
        self.role_arn = target.create_role(role, [])
        fn = target.create_function(function, code_dir, "handler.lambda_handler", role=self.role_arn, memory=memory,
                                    timeout=30, env={"THUMBNAIL_BUCKET": self.thumbs, "SOURCE_PREFIX": prefix})
        lam = target.client("lambda")
        lam.put_function_event_invoke_config(FunctionName=self.function, MaximumRetryAttempts=0)
        # The probe is tooling: a large CPU share keeps its cold start (importing boto3) short.
        target.create_function(self._probe, probe_dir, "probe.lambda_handler", role=self.role_arn,
                               memory=probe_memory, timeout=30)
        lam.add_permission(FunctionName=self.function, StatementId="s3-uploads", Action="lambda:InvokeFunction",
                           Principal="s3.amazonaws.com", SourceArn=f"arn:aws:s3:::{self.source}",
                           SourceAccount=self.account)
        self.s3.put_bucket_notification_configuration(Bucket=self.source, NotificationConfiguration={
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

    def as_written(self, policy: Mapping[str, Any]) -> dict[str, Any]:
        """`policy` as the lesson's files write it (buckets photos, photos-thumbnails and payroll,
        function thumbnails, account 123456789012 in us-east-1), naming this stage's resources."""
        buckets = {"photos-thumbnails": self.thumbs, "photos": self.source, "payroll": self.other_bucket}
        text = re.sub(r"arn:aws:s3:::(photos-thumbnails|photos|payroll)(?=[/\"])",
                      lambda m: f"arn:aws:s3:::{buckets[m.group(1)]}", json.dumps(policy))
        text = re.sub(r"arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/thumbnails(?=[:\"])",
                      lambda m: self.log_group_arn, text)
        return json.loads(text)

    def use(self, policy: Mapping[str, Any] | None) -> None:
        """Make `policy` the role's only permissions (takes effect on the next AWS call)."""
        set_role_policy(self.iam, self.role, policy)

    def upload(self, body: bytes, key: str | None = None, timeout: float = 60.0) -> Upload:
        """Upload `body` under the trigger's prefix, wait for the function's REPORT line, and read
        the outcome from its structured log line for the key."""
        self._uploads += 1
        key = self.prefix + (key or f"photo-{self._uploads:03d}.jpg")
        seen = len(self.target.records(self._function))
        self.s3.put_object(Bucket=self.source, Key=key, Body=body)
        try:
            self.target.settle(self._function, seen + 1, timeout=timeout)
        except SettleTimeout:
            return Upload(key, False, 0, f"the upload did not invoke the function within {timeout:g} s")
        lines = self.log_lines(key)
        if not lines:
            return Upload(key, False, 1, "the function logged nothing for this upload")
        last = lines[-1]
        if last.get("outcome") != "thumbnail":
            return Upload(key, False, 1, f"{last.get('error', last.get('outcome'))}: {last.get('reason', '')}")
        return Upload(key, self.thumbnail_exists(key), 1, "")

    def log_lines(self, key: str) -> list[dict[str, Any]]:
        """The handler's structured log lines (JSON after the runtime's prefix) about `key`, oldest first."""
        found = []
        for message in self.target.log_messages(self._function, f'"{key}"'):
            start = message.find("{")
            try:
                line = json.loads(message[start:]) if start >= 0 else None
            except json.JSONDecodeError:
                continue
            if isinstance(line, dict) and line.get("key") == key:
                found.append(line)
        return found

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
        answer = self.target.invoke(self._probe, {"calls": [p.call() for p in probes]})
        if answer["FunctionError"]:
            raise RuntimeError(f"the probe function failed: {answer['Payload']}")
        return dict(zip((p.label for p in probes), answer["Payload"]))

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


__all__ = ["DENIED_CODES", "Ablation", "Grant", "Probe", "ThumbnailStage", "Upload", "ablate", "allows", "audit_role",
           "grants", "plot_probes", "policy_builder", "probe_verdict", "role_policies", "set_role_policy",
           "thumbnail_probes", "without"]
