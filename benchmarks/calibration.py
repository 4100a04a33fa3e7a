"""Calibration of every model's quantiles on CDNOW and Online Retail (docs/uncertainty.md).

Run from the repository root (about 25 minutes on one core for 3 seeds)::

    OMP_NUM_THREADS=1 python benchmarks/calibration.py                  # 3 seeds
    OMP_NUM_THREADS=1 python benchmarks/calibration.py --models ZILNRegressor --seeds 1
    OMP_NUM_THREADS=1 python benchmarks/calibration.py --models none --newcomer  # only it

Protocol (ltvkit convention): ``train_test_split(X, y, test_size=0.3, random_state=0)``;
every registered model with its default hyperparameters and ``random_state=seed`` (the
split is fixed; for the deep models the seed changes initialisation, shuffling and the
validation split; ``TwoStageRegressor`` is deterministic except for the folds of
``quantile_cv``), ``n_jobs=1`` and one torch thread. Each model is fitted twice:

- **none**: the model alone, fitted on the 70% training part;
- **conformal**: ``ConformalQuantileRegressor(model, random_state=seed)``: the model is
  fitted on 90% of the training part and its quantiles recalibrated on the other 10%.

Reported on the 30% held-out customers: coverage ``P(y <= q_tau)`` at tau = 0.5, 0.9 and
0.95 (``ltvkit.metrics.quantile_coverage``), the 0.9 pinball loss
(``ltvkit.metrics.pinball_loss``) and its gain over the constant baseline, the training
set's 0.9-quantile of ``y`` for everyone (``1 - pinball / pinball_constant``; the
target is at least 10%). "ok" marks a row whose mean coverage at 0.9 and 0.95 is within
0.05 of tau and whose pinball gain is at least 10%. Mean ± sd over seeds.

The features are the loaders' defaults (``load_cdnow()``, ``load_online_retail()``: the
nine RFM columns). The targets carry three cumulative horizons so that ODMN is fitted as
a multi-horizon model (CDNOW: 13, 26 and 39 weeks; Online Retail: to 2011-10-01,
2011-11-01 and 2011-12-10, from ``transactions_to_ltv``); every model is scored on the
last horizon, which is what the single-horizon models learn (the loaders' default
target, so the split is the fixed one). Online Retail is skipped
when its file is absent. Writes a Markdown table to stdout and the per-seed rows to
``--csv`` (default ``calibration.csv``).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from _common import mean_sd, online_retail, online_retail_horizons
from sklearn.base import clone
from sklearn.model_selection import train_test_split

from ltvkit import all_estimators
from ltvkit.base import ConformalQuantileRegressor
from ltvkit.datasets import load_cdnow
from ltvkit.metrics import pinball_loss, quantile_coverage

LEVELS = (0.5, 0.9, 0.95)


def _online_retail() -> tuple[pd.DataFrame, pd.DataFrame]:
    """``load_online_retail()``'s features with the three cumulative horizons as ``y``."""
    X, _ = online_retail()
    _, Y = online_retail_horizons()
    return X, Y.loc[X.index]


DATASETS = {
    "CDNOW": lambda: load_cdnow(horizons_weeks=(13, 26, 39)),
    "Online Retail": _online_retail,
}


def _model(cls: type, seed: int) -> object:
    params = cls().get_params()
    kw = {"random_state": seed}
    if "n_jobs" in params:
        kw["n_jobs"] = 1
    return cls(**kw)


def _last(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return a[:, -1] if a.ndim == 2 else a


def evaluate(model: object, X_tr, y_tr, X_te, y_te: np.ndarray, constant: float) -> dict:
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X_tr, y_tr)
    fit_s = time.perf_counter() - t0
    q = np.asarray(model.predict_quantiles(X_te, list(LEVELS)))
    if q.ndim == 3:
        q = q[:, -1, :]
    row = {f"cov {tau}": quantile_coverage(y_te, q[:, i]) for i, tau in enumerate(LEVELS)}
    pin = pinball_loss(y_te, q[:, LEVELS.index(0.9)], quantile=0.9)
    base = pinball_loss(y_te, np.full_like(y_te, constant), quantile=0.9)
    row["pinball 0.9"] = pin
    row["gain vs constant"] = 1.0 - pin / base
    row["fit s"] = fit_s
    return row


def _newcomer() -> tuple[str, type]:
    """The test suite's newcomer model (``tests/newcomer_model.py``), not registered."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from newcomer_model import LogMSERegressor

    return "LogMSERegressor", LogMSERegressor


def run(
    names: list[str] | None, seeds: int, datasets: list[str], newcomer: bool = False
) -> pd.DataFrame:
    models = [(n, c) for n, c in all_estimators("regressor") if names is None or n in names]
    if newcomer:
        models.append(_newcomer())
    rows = []
    for data_name in datasets:
        try:
            X, Y = DATASETS[data_name]()
        except FileNotFoundError:
            print(f"{data_name}: data not found, skipped")
            continue
        Y = np.asarray(Y, dtype=np.float64)
        X_tr, X_te, Y_tr, Y_te = train_test_split(X, Y, test_size=0.3, random_state=0)
        y_te = _last(Y_te)
        constant = float(np.quantile(_last(Y_tr), 0.9))
        for name, cls in models:
            multi = bool(getattr(cls, "_multi_horizon", False))
            y_fit = Y_tr if multi else _last(Y_tr)
            for seed in range(seeds):
                for mode in ("none", "conformal"):
                    model = _model(cls, seed)
                    if mode == "conformal":
                        model = ConformalQuantileRegressor(clone(model), random_state=seed)
                    try:
                        row = evaluate(model, X_tr, y_fit, X_te, y_te, constant)
                    except Exception as exc:  # a model without quantiles: say so, go on
                        row = {"error": f"{type(exc).__name__}: {exc}"[:120]}
                    rows.append(
                        dict(data=data_name, model=name, recalibration=mode, seed=seed, **row)
                    )
                    print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def table(df: pd.DataFrame) -> str:
    out = []
    metrics = [f"cov {t}" for t in LEVELS] + ["pinball 0.9", "gain vs constant"]
    for data_name, part in df.groupby("data", sort=False):
        out.append(f"\n### {data_name}\n")
        out.append(
            "| model | recalibration | P(y ≤ q0.5) | P(y ≤ q0.9) | P(y ≤ q0.95) | pinball 0.9 "
            "| gain vs constant | fit s | meets target |"
        )
        out.append("|---|---|---:|---:|---:|---:|---:|---:|---|")
        for (model, mode), g in part.groupby(["model", "recalibration"], sort=False):
            if "error" in g and g["error"].notna().all():
                out.append(f"| {model} | {mode} | {g['error'].iloc[0]} |||||||")
                continue
            cells = [mean_sd(g[m], 3) for m in metrics[:3]]
            cells.append(mean_sd(g["pinball 0.9"], 2))
            cells.append(mean_sd(100 * g["gain vs constant"], 1) + "%")
            cells.append(f"{g['fit s'].mean():.1f}")
            ok = (
                abs(g["cov 0.9"].mean() - 0.9) <= 0.05
                and abs(g["cov 0.95"].mean() - 0.95) <= 0.05
                and g["gain vs constant"].mean() >= 0.10
            )
            out.append(
                f"| {model} | {mode} | " + " | ".join(cells) + f" | {'ok' if ok else 'no'} |"
            )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--models", nargs="*", default=None, help="class names (default: all)")
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--csv", default="calibration.csv")
    parser.add_argument(
        "--newcomer",
        action="store_true",
        help="also the test suite's newcomer model (generic quantiles), tests/newcomer_model.py",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    df = run(args.models, args.seeds, args.datasets, args.newcomer)
    df.to_csv(args.csv, index=False)
    print(table(df))


if __name__ == "__main__":
    main()
