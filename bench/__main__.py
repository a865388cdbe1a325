"""`python -m bench`: every benchmark of the project, one table each."""

from . import pipeline_bench, runtime_bench, thumbnail_bench

if __name__ == "__main__":
    runtime_bench.main()
    thumbnail_bench.main()
    pipeline_bench.main()
