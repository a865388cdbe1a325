"""Small helpers every layer shares (ARNs, trace ids, time formats, statistics, processes).

Nothing here imports another part of `lambdalab`.
"""
