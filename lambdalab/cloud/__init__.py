"""The local cloud: moto's AWS services on 127.0.0.1 joined to the local Lambda runtime.

`LocalCloud` (in `local_cloud`) is the learner's API; the other modules are how it works:
moto patches, triggers and pollers, EventBridge, the HTTP endpoint, loop detection, and the
database stand-ins. This package may import the runtime and the events, never the course.
"""
