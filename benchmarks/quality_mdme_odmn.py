"""Quality of MDMERegressor and ODMNRegressor: the paper's ablations, on CDNOW and synthetic data.

Run from the repository root (about 20 minutes on one core)::

    OMP_NUM_THREADS=1 python benchmarks/quality_mdme_odmn.py            # 3 seeds
    OMP_NUM_THREADS=1 python benchmarks/quality_mdme_odmn.py --seeds 1  # quick look

Protocol (ltvkit convention): ``train_test_split(X, y, test_size=0.3, random_state=0)``,
default hyperparameters unless a variant says otherwise, one fit per ``random_state``
(0, 1, 2; the split is fixed, the seed changes initialisation, shuffling and the
validation split). Metrics on the 30% test split are the paper's: normalized Gini
(``normalized_gini``, the paper's "Gini*"), Mutual Gini, NMAE, NRMSE and AMBE
(``ltvkit.metrics``), as mean ± standard deviation over seeds. "mean ŷ / mean y_train" is
the mean test prediction over the mean training label: AMBE on these whale-driven data
moves with the few largest customers that land in the test split, this ratio shows
whether the model itself is calibrated.

Datasets:

- CDNOW (``load_cdnow``): MDME on the default target (39 weeks after a 39-week
  calibration), ODMN on ``load_cdnow(horizons_weeks=(13, 26, 39))`` (whose last column is
  that same target).
- Synthetic: ``make_ltv(n_samples=20_000, n_horizons=4, random_state=0)``; MDME on the last
  horizon, ODMN on all four.
- UCI Online Retail (``load_online_retail``): MDME vs ranking by calibration spend, and
  ODMN on cumulative spend 1, 2 and 3.3 months after 2011-09-01 (``transactions_to_ltv``
  with three holdout ends); skipped when the file is absent.

Sections printed (Markdown):

1. MDME ablation (paper Table 2): NM, NMB, NMO, MDME, each with ``prediction="hard"``
   (the paper's eqs. 7-8) and ``prediction="expected"`` (ltvkit's default, E[y | x]).
2. ODMN ablation (paper Table 3): S, SM, SC, ODMN per horizon, plus the share of test
   customers whose raw predictions decrease along the horizons (before ltvkit's
   ``enforce_monotonic``) and after it (must be 0).
3. MDME vs ranking by calibration spend (``X_test["monetary_total"]``) on CDNOW and Online
   Retail. For the error metrics the spend baseline predicts ``monetary_total *
   mean(y_train) / mean(monetary_total_train)`` (calibrated on average), as in
   ``benchmarks/quality_ziln.py``.
4. The paper's learning rate (0.05) against ltvkit's default (1e-3) for MDME on CDNOW.
"""

from __future__ import annotations

import argparse
import datetime
import time
import warnings

import numpy as np
import pandas as pd
import torch
from _common import fixed_split, load_dataset, mean_sd, online_retail_horizons, spend_baseline

from ltvkit.datasets import load_cdnow, make_ltv
from ltvkit.metrics import ambe, mutual_gini, nmae, normalized_gini, nrmse, spearman
from ltvkit.nn import MDMERegressor, ODMNRegressor
from ltvkit.preprocessing import BucketMergeWarning

METRICS = {
    "Gini* ↑": normalized_gini,
    "Mutual Gini ↓": mutual_gini,
    "NMAE ↓": nmae,
    "NRMSE ↓": nrmse,
    "AMBE ↓": ambe,
}
MDME_VARIANTS = {
    "NM": dict(bucket_bias=False, ordinal_distillation=False),
    "NMB": dict(bucket_bias=True, ordinal_distillation=False),
    "NMO": dict(bucket_bias=False, ordinal_distillation=True),
    "MDME": dict(bucket_bias=True, ordinal_distillation=True),
}
ODMN_VARIANTS = {
    "S": dict(mono_unit=False, calibration_weight=0.0),
    "SM": dict(mono_unit=True, calibration_weight=0.0),
    "SC": dict(mono_unit=False, calibration_weight=1.0),
    "ODMN": dict(mono_unit=True, calibration_weight=1.0),
}


def _scores(y_true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {name: float(fn(y_true, pred)) for name, fn in METRICS.items()}


def _summary(rows: list[dict[str, object]], keys: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    cols = [c for c in frame.columns if c not in (*keys, "seed")]
    out = frame.groupby(keys, sort=False)[cols].agg(
        lambda s: mean_sd(s, skipna=False) if s.name in METRICS else f"{np.mean(s):.4g}"
    )
    return out


def _datasets() -> dict[str, tuple[pd.DataFrame, np.ndarray]]:
    X_c, Y_c = load_cdnow(horizons_weeks=(13, 26, 39))
    X_s, Y_s = make_ltv(n_samples=20_000, n_horizons=4, random_state=0)
    return {
        "CDNOW (13/26/39 weeks)": (X_c, np.asarray(Y_c, dtype=float)),
        "make_ltv(n_samples=20_000, n_horizons=4)": (X_s, np.asarray(Y_s, dtype=float)),
    }


def _online_retail_horizons() -> tuple[pd.DataFrame, np.ndarray] | None:
    """Online Retail with cumulative spend 1, 2 and 3.3 months after 2011-09-01."""
    try:
        X, Y = online_retail_horizons()
    except FileNotFoundError:
        return None
    return X, np.asarray(Y, dtype=float)


def mdme_ablation(name: str, X: pd.DataFrame, Y: np.ndarray, seeds: int) -> pd.DataFrame:
    X_tr, X_te, y_tr, y_te = fixed_split(X, Y[:, -1])
    rows = []
    for variant, params in MDME_VARIANTS.items():
        for seed in range(seeds):
            t0 = time.perf_counter()
            model = MDMERegressor(random_state=seed, **params).fit(X_tr, y_tr)
            fit_s = time.perf_counter() - t0
            for prediction in ("hard", "expected"):
                pred = model.set_params(prediction=prediction).predict(X_te)
                rows.append(
                    {
                        "prediction": prediction,
                        "variant": variant,
                        "seed": seed,
                        **_scores(y_te, pred),
                        "mean ŷ / mean y_train": pred.mean() / y_tr.mean(),
                        "epochs": model.n_iter_,
                        "fit s": fit_s,
                    }
                )
    out = _summary(rows, ["prediction", "variant"])
    out.index = [f"{v} ({p})" for p, v in out.index]
    out.index.name = f"MDME, {name}, last horizon"
    return out


def odmn_ablation(name: str, X: pd.DataFrame, Y: np.ndarray, seeds: int) -> pd.DataFrame:
    X_tr, X_te, Y_tr, Y_te = fixed_split(X, Y)
    rows = []
    for variant, params in ODMN_VARIANTS.items():
        for seed in range(seeds):
            t0 = time.perf_counter()
            model = ODMNRegressor(random_state=seed, **params).fit(X_tr, Y_tr)
            fit_s = time.perf_counter() - t0
            pred = model.predict(X_te)
            after = float((np.diff(pred, axis=1) < 0).any(axis=1).mean())
            raw_rate = model.monotonic_violation_rate(X_te)
            for t in range(Y.shape[1]):
                rows.append(
                    {
                        "horizon": t + 1,
                        "variant": variant,
                        "seed": seed,
                        **_scores(Y_te[:, t], pred[:, t]),
                        "mean ŷ / mean y_train": pred[:, t].mean() / Y_tr[:, t].mean(),
                        "raw violations": raw_rate,
                        "violations": after,
                        "epochs": model.n_iter_,
                        "fit s": fit_s,
                    }
                )
    out = _summary(rows, ["horizon", "variant"])
    out.index = [f"{v}_{h}" for h, v in out.index]
    out.index.name = f"ODMN, {name}"
    return out


def versus_spend(seeds: int) -> list[pd.DataFrame]:
    tables = []
    data = {name: load_dataset(name) for name in ("CDNOW", "Online Retail")}
    for name, pair in data.items():
        if pair is None:
            print(f"{name}: data not found, skipped")
            continue
        X, y = pair
        X_tr, X_te, y_tr, y_te = fixed_split(X, y, float_train=True)
        metrics = {**METRICS, "Spearman ↑": spearman}
        runs: dict[str, list[dict[str, float]]] = {"expected": [], "hard": []}
        for seed in range(seeds):
            model = MDMERegressor(random_state=seed).fit(X_tr, y_tr)
            for prediction in runs:
                pred = model.set_params(prediction=prediction).predict(X_te)
                runs[prediction].append({m: float(fn(y_te, pred)) for m, fn in metrics.items()})
        base_pred = spend_baseline(X_tr, X_te, y_tr)
        base = {m: float(fn(y_te, base_pred)) for m, fn in metrics.items()}
        out = pd.DataFrame(
            {
                "MDME expected (mean ± sd)": [
                    mean_sd((r[m] for r in runs["expected"]), skipna=False) for m in metrics
                ],
                "MDME hard (mean ± sd)": [
                    mean_sd((r[m] for r in runs["hard"]), skipna=False) for m in metrics
                ],
                "calibration spend": [f"{base[m]:.4f}" for m in metrics],
            },
            index=list(metrics),
        )
        out.index.name = f"{name} ({len(X_tr):,} train / {len(X_te):,} test)"
        tables.append(out)
    return tables


def lr_check(seeds: int) -> pd.DataFrame:
    X_tr, X_te, y_tr, y_te = fixed_split(*load_cdnow())
    rows = []
    for lr in (1e-3, 0.05):
        for seed in range(seeds):
            model = MDMERegressor(learning_rate=lr, random_state=seed).fit(X_tr, y_tr)
            rows.append(
                {
                    "learning_rate": lr,
                    "seed": seed,
                    **_scores(y_te, model.predict(X_te)),
                    "epochs": model.n_iter_,
                }
            )
    out = _summary(rows, ["learning_rate"])
    out.index = [f"MDME learning_rate={lr:g}" for lr in out.index]
    out.index.name = "CDNOW, expected prediction"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", BucketMergeWarning)
    print(f"# quality_mdme_odmn.py, {datetime.date.today()}, seeds 0..{args.seeds - 1}\n")
    datasets = _datasets()
    print("## 1. MDME ablation (paper Table 2)\n")
    for name, (X, Y) in datasets.items():
        print(mdme_ablation(name, X, Y, args.seeds).to_markdown(), "\n", flush=True)
    print("## 2. ODMN ablation (paper Table 3)\n")
    retail = _online_retail_horizons()
    if retail is None:
        print("Online Retail: data not found, skipped\n")
    else:
        datasets["Online Retail (1/2/3.3 months after 2011-09-01)"] = retail
    for name, (X, Y) in datasets.items():
        print(odmn_ablation(name, X, Y, args.seeds).to_markdown(), "\n", flush=True)
    print("## 3. MDME vs ranking by calibration spend\n")
    for table in versus_spend(args.seeds):
        print(table.to_markdown(), "\n", flush=True)
    print("## 4. Learning rate: the paper's 0.05 vs ltvkit's 1e-3\n")
    print(lr_check(args.seeds).to_markdown(), flush=True)


if __name__ == "__main__":
    main()
