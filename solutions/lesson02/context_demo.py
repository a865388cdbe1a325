"""Lesson 02 demo: what the context object tells a handler, read live inside an invocation."""

import time


def lambda_handler(event, context):
    first = context.get_remaining_time_in_millis()
    time.sleep(event.get("work_ms", 100) / 1000)  # some work: the deadline gets closer
    second = context.get_remaining_time_in_millis()
    return {
        "aws_request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining_ms_at_start": first,
        "remaining_ms_after_work": second,
    }
