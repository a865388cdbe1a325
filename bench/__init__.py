"""Benchmarks for `make bench`: each prints a table with ratios against a baseline run in the same process."""
