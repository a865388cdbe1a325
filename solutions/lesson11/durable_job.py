"""The whole job as one durable function: each chunk a checkpointed step, a pause between chunks.

With Lambda durable functions (https://docs.aws.amazon.com/lambda/latest/dg/durable-functions.html)
one execution may last up to a year, although each invocation still ends within the function's
timeout. The SDK (aws-durable-execution-sdk-python, Python 3.11 or newer) checkpoints the result
of every `context.step`; `context.wait` suspends the execution without running (or billing) the
function, and Lambda invokes the handler again when the wait is over. That new invocation runs the
handler from the top: steps already checkpointed return their stored result without running again
(replay), so only new work is done. The event: {"chunks": [[item, ...], ...], "pause_s": 60}.
Deployed, it needs this folder's requirements.txt and `DurableConfig` on CreateFunction.
"""

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution, durable_step
from aws_durable_execution_sdk_python.config import Duration
from work import process_all


@durable_step
def run_chunk(step_context: StepContext, items):
    return process_all(items)


@durable_execution
def lambda_handler(event, context: DurableContext):
    results = []
    for n, items in enumerate(event["chunks"]):
        results.append(context.step(run_chunk(items), name=f"chunk-{n}"))
        if n + 1 < len(event["chunks"]):  # e.g. a downstream API's rate limit between chunks
            context.wait(Duration.from_seconds(event.get("pause_s", 60)), name=f"pause-{n}")
    return {"chunks": len(results), "ids": [i for r in results for i in r["ids"]]}
