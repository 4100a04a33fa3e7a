"""MEANRegressor on cumulative multi-horizon targets (the paper's MTL setting).

Run from the repository root::

    OMP_NUM_THREADS=1 python benchmarks/quality_mean_horizons.py
    OMP_NUM_THREADS=1 python benchmarks/quality_mean_horizons.py --size small --seeds 3
    OMP_NUM_THREADS=1 python benchmarks/quality_mean_horizons.py --datasets CDNOW \
        --set expert_batch_norm=True

Data: ``CDNOW``: ``load_cdnow(horizons_weeks=(13, 26, 39))``, cumulative spend 13, 26
and 39 weeks after the 39-week calibration window; ``Online Retail``:
``_common.online_retail_horizons()``, cumulative spend 1, 2 and 3.3 months after
2011-09-01 (skipped when the file is absent). Protocol: ltvkit's fixed split
``train_test_split(X, Y, test_size=0.3, random_state=0)``, ``random_state`` 0 ..
seeds-1 of the model, mean ± sd on the 30% test split.

Rows:

- ``MEAN, T horizons``: one ``MEANRegressor`` fitted on the 2-D target (``--size
  paper``: the defaults; ``small``: ``hidden_units=(64, 32), expert_units=(32,),
  dam_units=(32,)``, the configuration of the test);
- ``MEAN, last horizon only``: the same model fitted on the last column alone (the
  paper's single-task MEAN; its Table 1 finds it better than MTL-MEAN);
- ``ODMN``: ``ODMNRegressor()`` with its defaults (ltvkit's other multi-horizon model);
- ``past spend``: ranking by ``X["monetary_total"]``.

Columns: normalized Gini of every horizon, the percentile MAPE and AUC (top 10%) of the
last horizon, the share of test customers whose *predictions* decrease along the
horizons (must be 0), the share whose predictions decreased before the running maximum
(``monotonic_violation_rate``), and the calibration of the last horizon's
``predict_quantiles`` (coverage at 0.5/0.9/0.95, pinball at 0.9 over the training
constant's).
"""

from __future__ import annotations

import argparse
import ast
import datetime
import time
import warnings

import numpy as np
import pandas as pd
import torch
from _common import estimator, fixed_split, mean_sd, online_retail_horizons
from quality_mean import LEVELS, SIZES, quantile_scores

from ltvkit.datasets import load_cdnow
from ltvkit.metrics import high_value_auc, normalized_gini, percentile_mape


def _data(name: str) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    if name == "CDNOW":
        return load_cdnow(horizons_weeks=(13, 26, 39))
    try:
        return online_retail_horizons()
    except FileNotFoundError:
        return None


def _violations(pred: np.ndarray) -> float:
    return float((np.diff(pred, axis=1) < 0).any(axis=1).mean())


def evaluate(name: str, seeds: int, size: str, overrides: dict[str, object]) -> None:
    data = _data(name)
    if data is None:
        print(f"{name}: data not found, skipped\n")
        return
    X, Y = data
    cols = [str(c) for c in Y.columns]
    X_tr, X_te, Y_tr, Y_te = fixed_split(X, Y.to_numpy(dtype=float), float_train=True)
    Y_te = np.asarray(Y_te, dtype=float)
    T = Y_tr.shape[1]
    mean_cls = estimator("MEANRegressor")
    params = {**SIZES[size], **overrides}
    odmn = estimator("ODMNRegressor")
    rows: dict[str, list[dict[str, float]]] = {}
    timing: dict[str, list[float]] = {}
    makers = {
        f"MEAN, {T} horizons": (lambda s: mean_cls(random_state=s, **params), True),
        "MEAN, last horizon only": (lambda s: mean_cls(random_state=s, **params), False),
    }
    if odmn is not None:
        makers["ODMN"] = (lambda s: odmn(random_state=s), True)
    for label, (make, multi) in makers.items():
        for seed in range(seeds):
            model = make(seed)
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                model.fit(X_tr, Y_tr if multi else Y_tr[:, -1])
            timing.setdefault(label, []).append(time.perf_counter() - t0)
            pred = model.predict(X_te)
            res: dict[str, float] = {}
            if multi:
                for t, c in enumerate(cols):
                    res[f"GINI {c}"] = normalized_gini(Y_te[:, t], pred[:, t])
                last = pred[:, -1]
                res["decreasing predictions"] = _violations(pred)
                res["decreasing before the max"] = float(model.monotonic_violation_rate(X_te))
            else:
                res[f"GINI {cols[-1]}"] = normalized_gini(Y_te[:, -1], pred)
                last = pred
            res[f"percentile MAPE {cols[-1]}"] = percentile_mape(Y_te[:, -1], last)
            res[f"AUC top-10% {cols[-1]}"] = high_value_auc(Y_te[:, -1], last)
            Q = model.predict_quantiles(X_te, list(LEVELS))
            Q_last = Q[:, -1] if Q.ndim == 3 else Q
            q = quantile_scores(Y_te[:, -1], Q_last, Y_tr[:, -1])
            res.update({f"{k} {cols[-1]}": v for k, v in q.items() if "constant" not in k})
            rows.setdefault(label, []).append(res)
    spend = X_te["monetary_total"].to_numpy(dtype=float)
    base = {f"GINI {c}": normalized_gini(Y_te[:, t], spend) for t, c in enumerate(cols)}
    base[f"AUC top-10% {cols[-1]}"] = high_value_auc(Y_te[:, -1], spend)

    print(
        f"### {name}, horizons {cols}: {len(X_tr):,} train / {len(X_te):,} test customers, "
        f"{(Y_te[:, -1] == 0).mean():.0%} zeros in the last test column; MEAN: {size} "
        f"{SIZES[size] or '(defaults)'}{'; overrides ' + str(overrides) if overrides else ''}; "
        f"{seeds} seed(s)\n"
    )
    metrics = list(dict.fromkeys(k for res in rows.values() for k in res[0]))
    table = pd.DataFrame(
        {
            label: [mean_sd(pd.DataFrame(res)[m]) if m in res[0] else "" for m in metrics]
            for label, res in rows.items()
        },
        index=metrics,
    )
    table["past spend"] = [f"{base[m]:.4f}" if m in base else "" for m in metrics]
    print(table.T.to_markdown())
    print()
    per_seed = {
        label: ", ".join(f"{r[f'GINI {cols[-1]}']:.4f}" for r in res)
        for label, res in rows.items()
    }
    print(f"GINI {cols[-1]} per seed: " + "; ".join(f"{k} {v}" for k, v in per_seed.items()))
    print(
        "mean fit time: " + "; ".join(f"{k} {np.mean(v):.1f} s" for k, v in timing.items()) + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--size", choices=sorted(SIZES), default="paper")
    parser.add_argument("--datasets", nargs="*", default=["CDNOW", "Online Retail"])
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    overrides: dict[str, object] = {}
    for item in args.set:
        key, _, raw = item.partition("=")
        try:
            overrides[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            overrides[key] = raw
    torch.set_num_threads(args.threads)
    print(f"quality_mean_horizons.py, {datetime.date.today()}, torch {torch.__version__}\n")
    for name in args.datasets:
        evaluate(name, args.seeds, args.size, overrides)


if __name__ == "__main__":
    main()
