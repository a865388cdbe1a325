"""The course around the service: paths and tracks, labs and their checks, tables, plots, and
one instruments module per lesson that needs one (`lessons/`)."""
