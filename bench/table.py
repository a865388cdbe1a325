"""Plain-text tables with a ratio column against a baseline row."""

from __future__ import annotations

import statistics

from lambdalab._util.stats import median, percentile


def print_table(title: str, rows: list[tuple[str, list[float]]], baseline: str, unit: str = "ms") -> None:
    """rows: (label, samples). Prints n, p50, p99, mean and p50 ratio to the baseline row."""
    base = median(dict(rows)[baseline])
    width = max(len(label) for label, _ in rows)
    print(f"\n{title}")
    header = f"{'':{width}} {'n':>6} {'p50 ' + unit:>12} {'p99 ' + unit:>12} {'mean ' + unit:>12} {'p50 ratio':>10}"
    print(header)
    print("-" * len(header))
    for label, samples in rows:
        p50 = median(samples)
        print(f"{label:{width}} {len(samples):>6} {p50:>12.3f} {percentile(samples, 99):>12.3f} "
              f"{statistics.fmean(samples):>12.3f} {p50 / base:>9.2f}x")
    print(f"(ratio: p50 / p50 of '{baseline}')")
