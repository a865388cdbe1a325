"""Lab `hello`: your first Lambda handler.

Lambda imports this module once per execution environment, then calls `lambda_handler` for
every event that environment serves. Module-level state, like `invocations` below, survives
between the calls of one warm environment, and starts again from zero in a new (cold) one.
"""

invocations = 0  # calls served by this execution environment


def lambda_handler(event, context):
    global invocations
    # BEGIN SOLUTION greeting
    # Set `greeting` to "Hello, <name>!", taking the name from event["name"];
    # when the event has no "name", greet "world".
    name = str(event.get("name") or "").strip() or "world"  # the stretch goal: trimmed, blank greets "world"
    greeting = f"Hello, {name}!"
    # END SOLUTION
    # BEGIN SOLUTION counter
    # Add 1 to the module-level counter `invocations`.
    invocations += 1
    # END SOLUTION
    print(f"{greeting} (invocation {invocations} of this environment)")
    return {
        "greeting": greeting,
        "request_id": context.aws_request_id,
        "invocations": invocations,
    }
