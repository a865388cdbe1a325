"""Finding and deleting everything a run created, service by service, by the run's name prefix.

The Resource Groups Tagging API does not list IAM roles, Scheduler schedules or API Gateway v2
APIs, so nothing here relies on tags: each service is listed by name and what carries a run's
prefix (`lw-<run id>-`, see `runs`) belongs to that run. Deleting goes dependants first (mappings
and permissions before functions, a bucket's every object version before the bucket, a role's
policies before the role) and ignores what is already gone, so a teardown interrupted half-way is
simply run again. `verify` lists every service once more and returns what is left.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from lambdalab.course.target.runs import PREFIX, Run, run_of

Clients = Callable[[str], Any]  # a boto3 client for a service name, pointed at the target

_GONE = {"ResourceNotFoundException", "NoSuchEntity", "ParameterNotFound", "NoSuchBucket", "NotFoundException",
         "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NoSuchKey", "NotFound",
         "StateMachineDoesNotExist"}


@dataclass(frozen=True)
class Resource:
    """One thing a run created: its service, kind, and the name or id to delete it by."""

    service: str
    kind: str
    name: str
    ident: str = ""  # an id where the API deletes by id (API Gateway v2, event source mappings)

    @property
    def run(self) -> Run | None:
        return run_of(self.name)


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> Iterator[Any]:
    for page in client.get_paginator(operation).paginate(**kwargs):
        yield from page.get(key, [])


def _mine(name: str, prefix: str) -> bool:
    return name.startswith(prefix)


# -- listing, one function per service ---------------------------------------------------------

def _mappings(clients: Clients, prefix: str) -> list[Resource]:
    # Listed on their own, not per function: a mapping outlives a deleted function on AWS.
    found = []
    for m in _pages(clients("lambda"), "list_event_source_mappings", "EventSourceMappings"):
        function = m.get("FunctionArn", "").rsplit(":function:", 1)[-1].split(":")[0]
        if _mine(function, prefix) and m.get("State") != "Deleting":  # AWS deletes a mapping asynchronously
            found.append(Resource("lambda", "event source mapping", function, m["UUID"]))
    return found


def _functions(clients: Clients, prefix: str) -> list[Resource]:
    return [Resource("lambda", "function", fn["FunctionName"])
            for fn in _pages(clients("lambda"), "list_functions", "Functions") if _mine(fn["FunctionName"], prefix)]


def _log_groups(clients: Clients, prefix: str) -> list[Resource]:
    logs = clients("logs")
    found = []
    for group_prefix in (f"/aws/lambda/{prefix}", prefix):
        for g in _pages(logs, "describe_log_groups", "logGroups", logGroupNamePrefix=group_prefix):
            found.append(Resource("logs", "log group", g["logGroupName"]))
    return found


def _roles(clients: Clients, prefix: str) -> list[Resource]:
    iam = clients("iam")
    found = [Resource("iam", "role", r["RoleName"]) for r in _pages(iam, "list_roles", "Roles")
             if _mine(r["RoleName"], prefix)]
    found += [Resource("iam", "policy", p["PolicyName"], p["Arn"])
              for p in _pages(iam, "list_policies", "Policies", Scope="Local") if _mine(p["PolicyName"], prefix)]
    return found


def _buckets(clients: Clients, prefix: str) -> list[Resource]:
    return [Resource("s3", "bucket", b["Name"]) for b in clients("s3").list_buckets().get("Buckets", [])
            if _mine(b["Name"], prefix)]


def _queues(clients: Clients, prefix: str) -> list[Resource]:
    urls = _pages(clients("sqs"), "list_queues", "QueueUrls", QueueNamePrefix=prefix)
    return [Resource("sqs", "queue", url.rsplit("/", 1)[-1], url) for url in urls]


def _tables(clients: Clients, prefix: str) -> list[Resource]:
    return [Resource("dynamodb", "table", t) for t in _pages(clients("dynamodb"), "list_tables", "TableNames")
            if _mine(t, prefix)]


def _topics(clients: Clients, prefix: str) -> list[Resource]:
    arns = [t["TopicArn"] for t in _pages(clients("sns"), "list_topics", "Topics")]
    return [Resource("sns", "topic", a.rsplit(":", 1)[-1], a) for a in arns if _mine(a.rsplit(":", 1)[-1], prefix)]


def _buses(clients: Clients, prefix: str) -> list[Resource]:
    # ListEventBuses has no paginator in botocore: NextToken by hand.
    events, found, token = clients("events"), [], None
    while True:
        page = events.list_event_buses(NamePrefix=prefix, **({"NextToken": token} if token else {}))
        found += [Resource("events", "event bus", b["Name"]) for b in page.get("EventBuses", [])]
        token = page.get("NextToken")
        if not token:
            return found


def _rules(clients: Clients, prefix: str) -> list[Resource]:
    # A run's rules on the default bus carry its prefix; on a run's own bus every rule is the run's.
    events = clients("events")
    found = [Resource("events", "rule", r["Name"], "default")
             for r in _pages(events, "list_rules", "Rules", NamePrefix=prefix)]
    for bus in _buses(clients, prefix):
        found += [Resource("events", "rule", r["Name"], bus.name)
                  for r in _pages(events, "list_rules", "Rules", EventBusName=bus.name)]
    return found


def _schedules(clients: Clients, prefix: str) -> list[Resource]:
    found = _pages(clients("scheduler"), "list_schedules", "Schedules", NamePrefix=prefix)
    return [Resource("scheduler", "schedule", s["Name"], s.get("GroupName", "default")) for s in found]


def _apis(clients: Clients, prefix: str) -> list[Resource]:
    items = _pages(clients("apigatewayv2"), "get_apis", "Items")
    return [Resource("apigatewayv2", "HTTP API", a["Name"], a["ApiId"]) for a in items if _mine(a["Name"], prefix)]


def _rest_apis(clients: Clients, prefix: str) -> list[Resource]:
    items = _pages(clients("apigateway"), "get_rest_apis", "items")
    return [Resource("apigateway", "REST API", a["name"], a["id"]) for a in items if _mine(a["name"], prefix)]


def _budgets(clients: Clients, prefix: str) -> list[Resource]:
    # Budgets belong to the account, not a Region; the API wants the account id on every call.
    account = clients("sts").get_caller_identity()["Account"]
    try:
        found = list(_pages(clients("budgets"), "describe_budgets", "Budgets", AccountId=account))
    except ClientError as e:
        if e.response["Error"]["Code"] != "NotFoundException":  # AWS's answer for an account with none
            raise
        found = []
    return [Resource("budgets", "budget", b["BudgetName"], account) for b in found if _mine(b["BudgetName"], prefix)]


def _state_machines(clients: Clients, prefix: str) -> list[Resource]:
    machines = _pages(clients("stepfunctions"), "list_state_machines", "stateMachines")
    return [Resource("stepfunctions", "state machine", m["name"], m["stateMachineArn"])
            for m in machines if _mine(m["name"], prefix)]


def _alarms(clients: Clients, prefix: str) -> list[Resource]:
    # Metric and composite alarms alike; DescribeAlarms takes a name prefix.
    found = []
    for page in clients("cloudwatch").get_paginator("describe_alarms").paginate(
            AlarmNamePrefix=prefix, AlarmTypes=["MetricAlarm", "CompositeAlarm"]):
        found += [Resource("cloudwatch", "alarm", a["AlarmName"])
                  for a in page.get("CompositeAlarms", []) + page.get("MetricAlarms", [])]
    return found


def _secrets(clients: Clients, prefix: str) -> list[Resource]:
    # ListSecrets leaves out secrets already scheduled for deletion: those are gone for a run.
    found = _pages(clients("secretsmanager"), "list_secrets", "SecretList")
    return [Resource("secretsmanager", "secret", s["Name"], s["ARN"]) for s in found if _mine(s["Name"], prefix)]


def _parameters(clients: Clients, prefix: str) -> list[Resource]:
    # A hierarchical parameter (`/lw-<run>-app/key`) carries the prefix after its leading slash.
    found = _pages(clients("ssm"), "describe_parameters", "Parameters")
    return [Resource("ssm", "parameter", p["Name"], p["Name"]) for p in found
            if _mine(p["Name"].lstrip("/"), prefix)]


# State machines go before the functions their tasks invoke (DeleteStateMachine stops its running
# executions: https://docs.aws.amazon.com/step-functions/latest/apireference/API_DeleteStateMachine.html).
LISTERS: tuple[Callable[[Clients, str], list[Resource]], ...] = (
    _schedules, _rules, _buses, _apis, _rest_apis, _alarms, _budgets, _state_machines, _mappings, _functions,
    _topics, _queues, _tables, _buckets, _secrets, _parameters, _log_groups, _roles)


def inventory(clients: Clients, prefix: str = PREFIX) -> list[Resource]:
    """Everything whose name carries `prefix` (default: every run's), in deletion order."""
    return [r for lister in LISTERS for r in lister(clients, prefix)]


# -- deleting ----------------------------------------------------------------------------------

def _empty_bucket(s3: Any, bucket: str) -> None:
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        doomed = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                  for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        if doomed:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed, "Quiet": True})


def _delete_role(iam: Any, role: str) -> None:
    for name in _pages(iam, "list_role_policies", "PolicyNames", RoleName=role):
        iam.delete_role_policy(RoleName=role, PolicyName=name)
    for attached in _pages(iam, "list_attached_role_policies", "AttachedPolicies", RoleName=role):
        iam.detach_role_policy(RoleName=role, PolicyArn=attached["PolicyArn"])
    iam.delete_role(RoleName=role)


def _delete_policy(iam: Any, arn: str) -> None:
    for entity in _pages(iam, "list_entities_for_policy", "PolicyRoles", PolicyArn=arn):
        iam.detach_role_policy(RoleName=entity["RoleName"], PolicyArn=arn)
    for version in iam.list_policy_versions(PolicyArn=arn)["Versions"]:
        if not version["IsDefaultVersion"]:
            iam.delete_policy_version(PolicyArn=arn, VersionId=version["VersionId"])
    iam.delete_policy(PolicyArn=arn)


def _delete_rule(events: Any, rule: str, bus: str) -> None:
    bus = bus or "default"
    ids = [t["Id"] for t in events.list_targets_by_rule(Rule=rule, EventBusName=bus).get("Targets", [])]
    if ids:
        events.remove_targets(Rule=rule, EventBusName=bus, Ids=ids, Force=True)
    events.delete_rule(Name=rule, EventBusName=bus, Force=True)


def delete(clients: Clients, resource: Resource) -> None:
    """Delete one resource and what only it holds; a resource already gone is no error."""
    r = resource
    actions: dict[tuple[str, str], Callable[[], Any]] = {
        ("lambda", "event source mapping"): lambda: clients("lambda").delete_event_source_mapping(UUID=r.ident),
        ("lambda", "function"): lambda: clients("lambda").delete_function(FunctionName=r.name),
        ("logs", "log group"): lambda: clients("logs").delete_log_group(logGroupName=r.name),
        ("iam", "role"): lambda: _delete_role(clients("iam"), r.name),
        ("iam", "policy"): lambda: _delete_policy(clients("iam"), r.ident),
        ("s3", "bucket"): lambda: (_empty_bucket(clients("s3"), r.name),
                                   clients("s3").delete_bucket(Bucket=r.name)),
        ("sqs", "queue"): lambda: clients("sqs").delete_queue(QueueUrl=r.ident),
        ("dynamodb", "table"): lambda: clients("dynamodb").delete_table(TableName=r.name),
        ("sns", "topic"): lambda: clients("sns").delete_topic(TopicArn=r.ident),
        ("events", "rule"): lambda: _delete_rule(clients("events"), r.name, r.ident),
        ("events", "event bus"): lambda: clients("events").delete_event_bus(Name=r.name),
        ("scheduler", "schedule"): lambda: clients("scheduler").delete_schedule(Name=r.name, GroupName=r.ident),
        ("apigatewayv2", "HTTP API"): lambda: clients("apigatewayv2").delete_api(ApiId=r.ident),
        ("apigateway", "REST API"): lambda: clients("apigateway").delete_rest_api(restApiId=r.ident),
        ("budgets", "budget"): lambda: clients("budgets").delete_budget(AccountId=r.ident, BudgetName=r.name),
        ("stepfunctions", "state machine"): lambda: clients("stepfunctions").delete_state_machine(
            stateMachineArn=r.ident),
        ("cloudwatch", "alarm"): lambda: clients("cloudwatch").delete_alarms(AlarmNames=[r.name]),
        # Without recovery: the default 7 to 30 day window would keep the name taken and the secret billed.
        ("secretsmanager", "secret"): lambda: clients("secretsmanager").delete_secret(
            SecretId=r.ident, ForceDeleteWithoutRecovery=True),
        ("ssm", "parameter"): lambda: clients("ssm").delete_parameter(Name=r.ident),
    }
    try:
        actions[(r.service, r.kind)]()
    except ClientError as e:
        if e.response["Error"]["Code"] not in _GONE:
            raise


def teardown(clients: Clients, prefix: str, report: Callable[[Resource], Any] | None = None, *,
             rounds: int = 3, pause_s: float = 2.0, sleep: Callable[[float], None] = time.sleep) -> list[Resource]:
    """Delete everything carrying `prefix`, then list every service again; returns what is left
    (empty when the run is gone). AWS's listings are eventually consistent (a bucket or role just
    deleted may still be listed), so what is still listed is deleted again, up to `rounds` times
    `pause_s` apart. `report(resource)` is told each deletion."""
    left = inventory(clients, prefix)
    for round_ in range(rounds):
        for resource in left:
            delete(clients, resource)
            if report is not None:
                report(resource)
        left = inventory(clients, prefix)
        if not left or round_ == rounds - 1:
            break
        sleep(pause_s)
    return left


def runs(clients: Clients) -> dict[str, list[Resource]]:
    """What exists per run (by run id), for `lambdalab status`."""
    found: dict[str, list[Resource]] = {}
    for resource in inventory(clients):
        run = resource.run
        if run is not None:
            found.setdefault(run.run_id, []).append(resource)
    return found
