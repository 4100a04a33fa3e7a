"""Fused vs per-tensor ("foreach") Adam for every deep model: fit time per epoch.

The fused kernel updates all parameter tensors in one call. Whether every deep model
should use it is decided by this measurement (``docs/performance.md``).

    OMP_NUM_THREADS=1 python benchmarks/bench_fused_adam.py --rows 50000 --epochs 3 --reps 3

Each model is fitted with a fixed number of epochs (no early stopping) on ``make_ltv``
data, fused and foreach alternately, ``--reps`` times; the table reports the median
seconds per epoch of each and their ratio (measured in one run, so load on the machine
affects both alike).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
import torch

import ltvkit
from ltvkit.datasets import make_ltv
from ltvkit.nn import BaseDeepRegressor

MODELS = [
    "ZILNRegressor",
    "OptDistRegressor",
    "MDMERegressor",
    "ODMNRegressor",
    "MEANRegressor",
    "CCORNetRegressor",
]


def _fit_seconds(cls: type, X: pd.DataFrame, y: np.ndarray, epochs: int, fused: bool) -> float:
    original = BaseDeepRegressor._optimizer_kwargs

    def kwargs(self: BaseDeepRegressor) -> dict:
        out = original(self)
        out["optimizer__fused"] = fused
        return out

    est = cls(max_epochs=epochs, early_stopping=False, random_state=0)
    try:
        BaseDeepRegressor._optimizer_kwargs = kwargs  # type: ignore[method-assign]
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y)
        return (time.perf_counter() - t0) / epochs
    finally:
        BaseDeepRegressor._optimizer_kwargs = original  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    X, y = make_ltv(n_samples=args.rows, n_features=20, random_state=0)
    _, y_multi = make_ltv(n_samples=args.rows, n_features=20, n_horizons=3, random_state=0)
    rows = []
    for name in MODELS:
        cls = getattr(ltvkit, name)
        target = y_multi if getattr(cls, "_multi_horizon", False) else y
        times: dict[bool, list[float]] = {True: [], False: []}
        for rep in range(args.reps):
            for fused in (rep % 2 == 0, rep % 2 == 1):
                times[fused].append(_fit_seconds(cls, X, target, args.epochs, fused))
        foreach, fused = np.median(times[False]), np.median(times[True])
        rows.append(
            {
                "model": name,
                "foreach s/epoch": round(float(foreach), 3),
                "fused s/epoch": round(float(fused), 3),
                "fused / foreach": round(float(fused / foreach), 2),
            }
        )
        print(rows[-1], flush=True)
    print(pd.DataFrame(rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
