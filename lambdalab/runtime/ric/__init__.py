"""A pure-Python Lambda runtime interface client, for machines where awslambdaric has no wheel.

Everything in this package runs inside a worker process, so it imports only the standard
library and simplejson (as awslambdaric does), never `lambdalab`.
"""
