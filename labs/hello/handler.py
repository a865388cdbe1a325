# Generated from solutions/hello/handler.py by `lambdalab labs build`. This copy is yours: edit it.
# Replace each `raise NotImplementedError` with your code, then run `lambdalab check hello`.
# `lambdalab labs build` never overwrites your edits (unless you pass --force).
"""Lab `hello`: your first Lambda handler.

Lambda imports this module once per execution environment, then calls `lambda_handler` for
every event that environment serves. Module-level state, like `invocations` below, survives
between the calls of one warm environment, and starts again from zero in a new (cold) one.
"""

invocations = 0  # calls served by this execution environment


def lambda_handler(event, context):
    global invocations
    # TODO(greeting): Set `greeting` to "Hello, <name>!", taking the name from event["name"];
    # when the event has no "name", greet "world".
    raise NotImplementedError("Exercise 'greeting' in labs/hello/handler.py: Set `greeting` to \"Hello, <name>!\", taking the name from event[\"name\"]; when the event has no \"name\", greet \"world\".")
    # TODO(counter): Add 1 to the module-level counter `invocations`.
    raise NotImplementedError("Exercise 'counter' in labs/hello/handler.py: Add 1 to the module-level counter `invocations`.")
    print(f"{greeting} (invocation {invocations} of this environment)")
    return {
        "greeting": greeting,
        "request_id": context.aws_request_id,
        "invocations": invocations,
    }
