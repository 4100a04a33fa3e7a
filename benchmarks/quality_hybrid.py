"""HybridRegressor against its parts (TwoStage, ZILN) on three tables (issue 21).

Run from the repository root (about 5 minutes on one quiet core, 12 on a busy one)::

    OMP_NUM_THREADS=1 python benchmarks/quality_hybrid.py
    OMP_NUM_THREADS=1 python benchmarks/quality_hybrid.py --models twostage ziln hybrid
    OMP_NUM_THREADS=1 python benchmarks/quality_hybrid.py --coverage --models twostage ziln hybrid

Protocol: for each seed in 0, 1, 2, ``train_test_split(X, y, test_size=0.3,
random_state=seed)`` (the same split for every model) and ``random_state=seed`` for every
model, default hyperparameters. Tables: ``CDNOW`` (``load_cdnow()``), ``Online Retail``
(``load_online_retail()``, skipped if absent) and ``CDNOW first purchase``
(``benchmarks/_tables.py``). Reported on the 30% test part: normalized Gini and decile
MAPE (``ltvkit.metrics``), and the fit time (wall seconds, one thread). Per-seed rows go
to ``--out`` (CSV); the summary (mean over seeds) is printed as Markdown, with the fit
time of each hybrid divided by TwoStage's + ZILN's on the same split. ``--coverage``
reports the held-out coverage ``P(y <= q_tau)`` of ``predict_quantiles`` at 0.5, 0.9 and
0.95 instead (``ltvkit.metrics.quantile_coverage``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from _common import load_dataset
from _tables import first_purchase_cdnow
from sklearn.model_selection import train_test_split

from ltvkit import HybridRegressor, TwoStageRegressor, ZILNRegressor
from ltvkit.metrics import decile_mape, normalized_gini, quantile_coverage

MODELS = {
    "twostage": lambda seed: TwoStageRegressor(random_state=seed),
    "ziln": lambda seed: ZILNRegressor(random_state=seed),
    # the default: an equal mixture of the booster's and one network's distributions
    "hybrid": lambda seed: HybridRegressor(random_state=seed),
    "mixture_learned": lambda seed: HybridRegressor(tree_share=None, random_state=seed),
    "mixture_learned_balance": lambda seed: HybridRegressor(
        tree_share=None, bias_correction="balance", random_state=seed
    ),
    "mixture_half_3nets": lambda seed: HybridRegressor(
        tree_share=0.5, n_networks=3, random_state=seed
    ),
    "nets_only_3nets": lambda seed: HybridRegressor(
        tree_share=0.0, n_networks=3, random_state=seed
    ),
    "stack": lambda seed: HybridRegressor(combine="stack", random_state=seed),
}
LEVELS = (0.5, 0.9, 0.95)
TABLES = ("CDNOW", "Online Retail", "CDNOW first purchase")


def load_table(name: str) -> tuple[pd.DataFrame, pd.Series] | None:
    """One of :data:`TABLES`; None if its data is absent."""
    return first_purchase_cdnow() if name == "CDNOW first purchase" else load_dataset(name)


def run(tables: list[str], models: list[str], seeds: list[int], out: Path) -> pd.DataFrame:
    rows = []
    for table in tables:
        data = load_table(table)
        if data is None:
            print(f"{table}: data not found, skipped")
            continue
        X, y = data
        for seed in seeds:
            X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=seed)
            y_te = np.asarray(y_te, dtype=float)
            for name in models:
                model = MODELS[name](seed)
                t0 = time.perf_counter()
                model.fit(X_tr, y_tr)
                fit_s = time.perf_counter() - t0
                pred = model.predict(X_te)
                row = {
                    "table": table,
                    "seed": seed,
                    "model": name,
                    "gini": float(normalized_gini(y_te, pred)),
                    "decile_mape": float(decile_mape(y_te, pred)),
                    "fit_s": fit_s,
                    "tree_share": getattr(model, "tree_share_", np.nan),
                }
                rows.append(row)
                print(row, flush=True)
                pd.DataFrame(rows).to_csv(out, index=False)
    return pd.DataFrame(rows)


def coverage(tables: list[str], models: list[str], seeds: list[int]) -> pd.DataFrame:
    """Held-out coverage ``P(y <= q_tau)`` of each model's quantiles (mean over seeds)."""
    rows = []
    for table in tables:
        data = load_table(table)
        if data is None:
            continue
        for seed in seeds:
            X_tr, X_te, y_tr, y_te = train_test_split(*data, test_size=0.3, random_state=seed)
            y_te = np.asarray(y_te, dtype=float)
            for name in models:
                Q = MODELS[name](seed).fit(X_tr, y_tr).predict_quantiles(X_te, list(LEVELS))
                row = {"table": table, "seed": seed, "model": name}
                for j, tau in enumerate(LEVELS):
                    row[f"coverage {tau}"] = float(quantile_coverage(y_te, Q[:, j]))
                rows.append(row)
                print(row, flush=True)
    out = pd.DataFrame(rows).drop(columns="seed")
    return out.groupby(["table", "model"], sort=False).mean().round(3)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per table and model; fit-time ratio to TwoStage + ZILN."""
    base = (
        df[df["model"].isin(["twostage", "ziln"])]
        .groupby(["table", "seed"])["fit_s"]
        .sum()
        .rename("parts_s")
    )
    df = df.join(base, on=["table", "seed"])
    df["fit_ratio"] = df["fit_s"] / df["parts_s"]
    agg = df.groupby(["table", "model"], sort=False).agg(
        gini=("gini", "mean"),
        gini_sd=("gini", "std"),
        decile_mape=("decile_mape", "mean"),
        fit_s=("fit_s", "mean"),
        fit_ratio=("fit_ratio", "mean"),
        tree_share=("tree_share", "mean"),
    )
    return agg.round(4)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tables", nargs="+", default=list(TABLES))
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("quality_hybrid.csv"))
    parser.add_argument("--summary-only", action="store_true", help="summarize --out")
    parser.add_argument(
        "--coverage", action="store_true", help="quantile coverage at 0.5, 0.9, 0.95 instead"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.coverage:
        print(coverage(args.tables, args.models, args.seeds).to_markdown())
        return
    df = (
        pd.read_csv(args.out)
        if args.summary_only
        else run(args.tables, args.models, args.seeds, args.out)
    )
    print(summary(df).to_markdown())


if __name__ == "__main__":
    main()
