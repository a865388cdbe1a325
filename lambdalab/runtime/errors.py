"""Exceptions the local Lambda service raises to its callers, named as the Lambda API names them."""

from __future__ import annotations


class LambdaLabError(Exception):
    """Base class for every error the project raises on purpose."""


class InvalidParameterValueException(LambdaLabError, ValueError):
    """A function configuration or call argument is out of Lambda's documented range."""


class ResourceNotFoundException(LambdaLabError, LookupError):
    """No function with that name is deployed."""


class TooManyRequestsException(LambdaLabError):
    """A synchronous invoke found the function at its concurrency limit (Lambda's 429 Rate Exceeded)."""

    def __init__(self, function_name: str, limit: int,
                 reason: str = "ReservedFunctionConcurrentInvocationLimitExceeded"):
        self.function_name = function_name
        self.limit = limit
        self.reason = reason
        super().__init__(f"Rate Exceeded. {reason}: function {function_name!r} is at its concurrency limit of {limit}")


class RequestTooLargeException(LambdaLabError):
    """The invocation payload is over Lambda's documented request size limit."""

    def __init__(self, size: int, limit: int):
        self.size = size
        self.limit = limit
        super().__init__(f"Request must be smaller than {limit} bytes for the invoke operation (got {size} bytes)")
