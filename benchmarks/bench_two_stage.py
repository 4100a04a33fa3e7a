"""Speed of TwoStageRegressor against the same two boosters fitted by hand.

The "raw" baseline is what a user would write without ltvkit, with exactly the same
booster settings (the unfitted clones of ``model.classifier_`` / ``model.regressor_``):

    clf.fit(X, y > 0); reg.fit(X[y > 0], log1p(y[y > 0]))
    pred = clf.predict_proba(X)[:, 1] * (exp(reg.predict(X)) * factor - 1)

ltvkit's overhead is everything else: input validation and the category schema, the
float64 frame, the positive-row subset and the bias-correction pass over the spenders.
The distributional second stage (``quantile_cv``, cross-fitted residuals for
``predict_quantiles``) is switched off here: it refits the second stage per fold, which
the raw side does not do (``benchmarks/two_stage_quantiles.py`` times it).
Repetitions are interleaved (ltvkit, raw, raw, ltvkit, ...) so that a noisy, shared
machine affects both sides alike; the table reports the median seconds and, as the
ratio, the median over repetitions of ltvkit / raw within a repetition (the two runs of
a pair are back to back, so a load change between repetitions cancels out).
Seconds are CPU seconds of the process (with ``n_jobs=1`` that is the work done, and it
is far less disturbed by other jobs on a shared machine than wall time); the wall-clock
ratios are reported too.

Run from the repository root::

    python benchmarks/bench_two_stage.py --repeats 5          # 100k and 1M rows, 1 thread
    python benchmarks/bench_two_stage.py --sizes 100000 --repeats 9 --n-jobs 2
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import time
from collections.abc import Callable

import lightgbm
import numpy as np
import pandas as pd
import sklearn
import xgboost
from sklearn.base import clone

from ltvkit.boosting import TwoStageRegressor
from ltvkit.datasets import make_ltv


def _timed(func: Callable[[], object]) -> tuple[tuple[float, float], object]:
    """(CPU seconds of this process, wall seconds), result."""
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    out = func()
    return (time.process_time() - cpu, time.perf_counter() - wall), out


def bench(n_samples: int, backend: str, repeats: int, n_jobs: int) -> dict[str, float]:
    X, y = make_ltv(n_samples=n_samples, random_state=0)
    y = np.asarray(y, dtype=np.float64)
    params = dict(backend=backend, n_jobs=n_jobs, random_state=0, quantile_cv=None)

    # The boosters ltvkit builds, as unfitted clones: the raw side uses identical settings.
    probe = TwoStageRegressor(**params).fit(X.iloc[:2000], y[:2000])
    clf_template, reg_template = clone(probe.classifier_), clone(probe.regressor_)

    def fit_ltvkit() -> TwoStageRegressor:
        return TwoStageRegressor(**params).fit(X, y)

    def fit_raw() -> tuple:
        positive = y > 0
        clf = clone(clf_template).fit(X, positive.astype(np.int8))
        reg = clone(reg_template).fit(X[positive], np.log1p(y[positive]))
        return clf, reg

    times: dict[str, list[tuple[float, float]]] = {
        k: [] for k in ("ltvkit fit", "raw fit", "ltvkit predict", "raw predict")
    }
    factor = 1.0  # set by the ltvkit fit, which runs first in repetition 0
    for rep in range(repeats):
        order = ("ltvkit", "raw") if rep % 2 == 0 else ("raw", "ltvkit")
        for side in order:
            if side == "ltvkit":
                seconds, model = _timed(fit_ltvkit)
                times["ltvkit fit"].append(seconds)
                seconds, pred_ltvkit = _timed(lambda m=model: m.predict(X))
                times["ltvkit predict"].append(seconds)
                factor = model.correction_factor_
            else:
                seconds, (clf, reg) = _timed(fit_raw)
                times["raw fit"].append(seconds)

                def predict_raw(
                    clf: object = clf, reg: object = reg, factor: float = factor
                ) -> np.ndarray:
                    value = np.exp(reg.predict(X)) * factor - 1.0
                    return clf.predict_proba(X)[:, 1] * np.maximum(value, 0.0)

                seconds, pred_raw = _timed(predict_raw)
                times["raw predict"].append(seconds)
    # Same boosters, same data: the two predictions agree (sanity check of the baseline).
    np.testing.assert_allclose(pred_ltvkit, pred_raw, rtol=1e-4, atol=1e-6)

    def median(key: str, clock: int) -> float:
        return float(np.median([t[clock] for t in times[key]]))

    def paired_ratio(step: str, clock: int) -> float:
        """Median over repetitions of ltvkit / raw, each pair run back to back."""
        pairs = zip(times[f"ltvkit {step}"], times[f"raw {step}"], strict=True)
        return float(np.median([a[clock] / b[clock] for a, b in pairs]))

    return {
        "ltvkit fit s": median("ltvkit fit", 0),
        "raw fit s": median("raw fit", 0),
        "fit ratio": paired_ratio("fit", 0),
        "ltvkit predict s": median("ltvkit predict", 0),
        "raw predict s": median("raw predict", 0),
        "predict ratio": paired_ratio("predict", 0),
        "wall fit ratio": paired_ratio("fit", 1),
        "wall predict ratio": paired_ratio("predict", 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument(
        "--backends", nargs="+", default=["xgboost", "lightgbm"], choices=["xgboost", "lightgbm"]
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n-jobs", type=int, default=1)
    args = parser.parse_args()

    rows = []
    for n in args.sizes:
        for backend in args.backends:
            result = bench(n, backend, args.repeats, args.n_jobs)
            rows.append({"rows": f"{n:,}", "backend": backend} | result)
            print(f"done: {n:,} rows, {backend}", flush=True)

    print(
        f"\nTwoStageRegressor defaults (200 trees/stage, depth 3), make_ltv(n, 20 features, "
        f"3 categorical), n_jobs={args.n_jobs}, median of {args.repeats} interleaved "
        f"repetitions; seconds are CPU seconds (median); ratio = median of the per-repetition "
        f"ltvkit / raw boosters.\n"
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"xgboost {xgboost.__version__}, lightgbm {lightgbm.__version__}, "
        f"scikit-learn {sklearn.__version__}, pandas {pd.__version__}\n"
    )
    frame = pd.DataFrame(rows)
    header = "| " + " | ".join(frame.columns) + " |"
    print(header)
    print("|" + "---|" * 2 + "---:|" * (len(frame.columns) - 2))
    for row in frame.itertuples(index=False):
        cells = [v if isinstance(v, str) else f"{v:.3f}" for v in row]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
