"""Time ``ltvkit.datasets.make_ltv`` at scale (target: 10M rows in under 30 s).

Run: ``python benchmarks/bench_make_ltv.py [n_samples ...]`` (default 10_000_000).
Prints wall time, peak RSS and the memory held by X and y.
"""

from __future__ import annotations

import resource
import sys
import time

import numpy as np

from ltvkit.datasets import make_ltv


def bench(n_samples: int, **kwargs: object) -> float:
    start = time.perf_counter()
    X, y = make_ltv(n_samples=n_samples, random_state=0, **kwargs)
    elapsed = time.perf_counter() - start
    x_mb = X.memory_usage(deep=False).sum() / 2**20
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # KiB on Linux
    print(
        f"make_ltv(n_samples={n_samples:,}, {kwargs or 'defaults'}): {elapsed:.2f} s | "
        f"X {x_mb:,.0f} MiB, y {y.nbytes / 2**20:,.0f} MiB, peak RSS {peak_mb:,.0f} MiB | "
        f"zero share {np.mean(y.reshape(len(y), -1)[:, -1] == 0):.3f}"
    )
    return elapsed


if __name__ == "__main__":
    sizes = [int(float(a)) for a in sys.argv[1:]] or [10_000_000]
    for n in sizes:
        bench(n)
