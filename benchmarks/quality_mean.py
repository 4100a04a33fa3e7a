"""Quality of MEANRegressor, its ablations, its readings and its quantiles.

Run from the repository root::

    OMP_NUM_THREADS=1 python benchmarks/quality_mean.py                   # all tables
    OMP_NUM_THREADS=1 python benchmarks/quality_mean.py --seeds 1 --datasets CDNOW
    OMP_NUM_THREADS=1 python benchmarks/quality_mean.py --size small --models MEAN
    OMP_NUM_THREADS=1 python benchmarks/quality_mean.py --models MEAN --set max_epochs=100
    OMP_NUM_THREADS=1 python benchmarks/quality_mean.py --readings   # the readings only

Protocol (ltvkit convention): ``train_test_split(X, y, test_size=0.3, random_state=0)``;
one fit per ``random_state`` in ``0 .. seeds-1`` (the split is fixed; the seed changes
initialisation, shuffling and the validation split); mean ± sd over seeds on the 30%
test split. Metrics: the paper's (percentile MAPE, normalized Gini, Spearman, AUC of
the top-10% customers, ``ltvkit.metrics.high_value_auc``) and two calibration metrics
(decile MAPE, AMBE).

Datasets: ``CDNOW`` (``load_cdnow()``), ``Online Retail`` (``load_online_retail()``,
skipped when its file is absent) and ``CDNOW first purchase``
(``benchmarks/_tables.py``'s :func:`first_purchase_cdnow`: features of each customer's
first purchase day only).

Rows:

- ``MEAN``: ``MEANRegressor`` with its defaults (``--size paper``, the default: the
  paper's ``[512, 256]`` shared layer, 128-wide experts and the ``[256, 128, 64]``
  DAM), or the same with a narrow network (``--size small``:
  ``hidden_units=(64, 32), expert_units=(32,), dam_units=(32,)``);
- the paper's three ablations (Tables 2-3): ``w/o L_kl`` (``kl=False``),
  ``w/o L_dis_2`` (``distillation=False``), ``MVFE only`` (``dam=False``);
- the readings (``--readings`` selects only these and ``MEAN``): the expert batch
  norm and the DAM's input flipped from the default, one at a time and together;
- ``MEAN (log1p)``: ``label_transform="log1p"``; ``MEAN (no truncation)``:
  ``label_cap_quantile=1.0``, the linear scaling with the largest training label at 20;
- ``ZILN`` and ``OptDist``: ``ZILNRegressor`` and ``OptDistRegressor`` with their
  default hyperparameters;
- ``calibration spend``: ranking by ``X["monetary_total"]``; for the error metrics it
  predicts ``monetary_total * mean(y_train) / mean(monetary_total_train)``.

Per dataset, further tables: ``bias_correction`` for the default ``MEAN`` models (the
same fitted networks, only the retransformation refitted on the training rows, so the
comparison is paired), and the calibration of every MEAN row's ``predict_quantiles``
on the test split: coverage ``P(y <= q_tau)`` at tau = 0.5, 0.9, 0.95, and the pinball
loss at 0.9 against the constant 0.9-quantile of the training labels (``ratio`` < 0.9
is the target "10% better").
"""

from __future__ import annotations

import argparse
import ast
import datetime
import time
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from _common import estimator, fixed_split, load_split, mean_sd, spend_baseline
from _tables import first_purchase_cdnow

from ltvkit.metrics import (
    ambe,
    decile_mape,
    high_value_auc,
    normalized_gini,
    percentile_mape,
    spearman,
)

METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "percentile MAPE ↓": percentile_mape,
    "GINI ↑": normalized_gini,
    "Spearman ↑": spearman,
    "AUC top-10% ↑": high_value_auc,
    "decile MAPE ↓": decile_mape,
    "AMBE ↓": ambe,
}
SIZES = {
    "small": dict(hidden_units=(64, 32), expert_units=(32,), dam_units=(32,)),
    "paper": {},
}
CORRECTIONS = ("isotonic", "balance", "smearing", "none")
LEVELS = (0.5, 0.9, 0.95)


def _reading_variants() -> dict[str, dict[str, object]]:
    """The readings flipped from the current defaults, one at a time and together."""
    cls = estimator("MEANRegressor")
    defaults = cls().get_params()
    bn = not defaults["expert_batch_norm"]
    dam_input = "shared" if defaults["dam_input"] == "separate" else "separate"
    return {
        f"MEAN (expert_batch_norm={bn})": dict(expert_batch_norm=bn),
        f"MEAN (dam_input={dam_input!r})": dict(dam_input=dam_input),
        f"MEAN (expert_batch_norm={bn}, dam_input={dam_input!r})": dict(
            expert_batch_norm=bn, dam_input=dam_input
        ),
    }


def mean_variants() -> dict[str, dict[str, object]]:
    return {
        "MEAN": {},
        "w/o L_kl": dict(kl=False),
        "w/o L_dis_2": dict(distillation=False),
        "MVFE only": dict(dam=False),
        **_reading_variants(),
        "MEAN (log1p)": dict(label_transform="log1p"),
        "MEAN (no truncation)": dict(label_cap_quantile=1.0),
    }


def _load(name: str) -> tuple | None:
    if name == "CDNOW first purchase":
        return fixed_split(*first_purchase_cdnow(), float_train=True)
    return load_split(name, float_train=True)


def _scores(y_true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {name: float(fn(y_true, pred)) for name, fn in METRICS.items()}


def pinball(y: np.ndarray, q: np.ndarray, tau: float) -> float:
    """Mean pinball (quantile) loss of the level-``tau`` quantile ``q``."""
    d = y - q
    return float(np.mean(np.maximum(tau * d, (tau - 1.0) * d)))


def quantile_scores(y_te: np.ndarray, Q: np.ndarray, y_tr: np.ndarray) -> dict[str, float]:
    """Coverage at ``LEVELS`` and pinball at 0.9 vs the training constant."""
    out = {f"coverage {tau}": float(np.mean(y_te <= Q[:, i])) for i, tau in enumerate(LEVELS)}
    i9 = LEVELS.index(0.9)
    const = float(np.quantile(y_tr, 0.9))
    out["pinball 0.9"] = pinball(y_te, Q[:, i9], 0.9)
    out["constant pinball 0.9"] = pinball(y_te, np.full_like(y_te, const), 0.9)
    out["ratio"] = out["pinball 0.9"] / out["constant pinball 0.9"]
    return out


def _fmt(values: pd.Series) -> str:
    """Mean ± sd, to 2 decimals when the values are 10 or more on average, else 4."""
    return mean_sd(values, 2 if values.abs().mean() >= 10 else 4)


def _models(
    size: str, wanted: list[str], overrides: dict[str, object]
) -> dict[str, Callable[[int], object]]:
    mean_cls = estimator("MEANRegressor")
    out: dict[str, Callable[[int], object]] = {}
    for label, extra in mean_variants().items():
        params = {**SIZES[size], **overrides, **extra}
        out[label] = lambda seed, p=params: mean_cls(random_state=seed, **p)
    for label, cls_name in (("ZILN", "ZILNRegressor"), ("OptDist", "OptDistRegressor")):
        cls = estimator(cls_name)
        if cls is None:
            print(f"{label}: {cls_name} not available, skipped")
            continue
        out[label] = lambda seed, c=cls: c(random_state=seed)
    return {k: v for k, v in out.items() if not wanted or k in wanted}


def evaluate(
    name: str, seeds: int, size: str, wanted: list[str], overrides: dict[str, object]
) -> None:
    split = _load(name)
    if split is None:
        print(f"{name}: data not found, skipped\n")
        return
    X_tr, X_te, y_tr, y_te = split
    rows: dict[str, list[dict[str, float]]] = {}
    quantiles: dict[str, list[dict[str, float]]] = {}
    timing: dict[str, list[tuple[float, int]]] = {}
    corrections: dict[str, list[dict[str, float]]] = {c: [] for c in CORRECTIONS}
    dam_accuracy: list[float] = []
    majority = 0.0
    for label, make in _models(size, wanted, overrides).items():
        for seed in range(seeds):
            model = make(seed)
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                model.fit(X_tr, y_tr)
            timing.setdefault(label, []).append((time.perf_counter() - t0, model.n_iter_))
            rows.setdefault(label, []).append(_scores(y_te, model.predict(X_te)))
            if not label.startswith(("MEAN", "w/o", "MVFE")):
                continue
            Q = model.predict_quantiles(X_te, list(LEVELS))
            quantiles.setdefault(label, []).append(quantile_scores(y_te, Q, y_tr))
            if label == "MEAN":
                if model.dam:
                    # the DAM's range classification on its own training data
                    z = model.bucketizer_.transform(y_tr.reshape(-1, 1)).ravel()
                    b = model.predict_bucket_proba(X_tr)
                    dam_accuracy.append(float((b.argmax(axis=1) == z).mean()))
                    majority = float(np.bincount(z).max() / len(z))
                # paired comparison: refit only the retransformation of this network
                # (private helpers, the same ones MEANRegressor.fit uses)
                s_hat = model._forward_outputs(X_tr, model._scaled_prediction)[:, 0]
                for corr in CORRECTIONS:
                    model.bias_correction = corr
                    model.bias_correction_ = model._fit_bias_correction(
                        y_tr, s_hat, np.ones_like(y_tr)
                    )
                    corrections[corr].append(_scores(y_te, model.predict(X_te)))
    base = _scores(y_te, spend_baseline(X_tr, X_te, y_tr))

    print(
        f"### {name}: {len(X_tr):,} train / {len(X_te):,} test customers, "
        f"{(y_te == 0).mean():.0%} zeros in test; MEAN sizes: {size} {SIZES[size] or '(defaults)'}"
        f"{'; MEAN overrides: ' + str(overrides) if overrides else ''}; {seeds} seed(s)\n"
    )
    table = pd.DataFrame(
        {label: [_fmt(pd.DataFrame(res)[m]) for m in METRICS] for label, res in rows.items()},
        index=list(METRICS),
    )
    table["calibration spend"] = [
        f"{base[m]:.2f}" if abs(base[m]) >= 10 else f"{base[m]:.4f}" for m in METRICS
    ]
    print(table.T.to_markdown())
    print()
    fit = {
        label: f"{np.mean([t for t, _ in v]):.1f} s, {np.mean([e for _, e in v]):.0f} epochs"
        for label, v in timing.items()
    }
    print("mean fit time and epochs: " + "; ".join(f"{k} {v}" for k, v in fit.items()))
    print()
    per_seed = {
        label: ", ".join(f"{r['GINI ↑']:.4f}" for r in res)
        for label, res in rows.items()
        if label.startswith("MEAN")
    }
    if per_seed:
        print("GINI per seed: " + "; ".join(f"{k} {v}" for k, v in per_seed.items()))
        print()
    if dam_accuracy:
        print(
            f"MEAN's DAM, accuracy on the training rows: {np.mean(dam_accuracy):.4f} "
            f"(seeds: {', '.join(f'{a:.4f}' for a in dam_accuracy)}); majority range: "
            f"{majority:.4f}\n"
        )
    if quantiles:
        cols = list(next(iter(quantiles.values()))[0])
        q_table = pd.DataFrame(
            {
                label: [_fmt(pd.DataFrame(res)[c]) for c in cols]
                for label, res in quantiles.items()
            },
            index=cols,
        )
        print(f"{name}: predict_quantiles on the test split (coverage = P(y <= q_tau))\n")
        print(q_table.T.to_markdown())
        print()
    if corrections["isotonic"]:
        corr_table = pd.DataFrame(
            {c: [_fmt(pd.DataFrame(res)[m]) for m in METRICS] for c, res in corrections.items()},
            index=list(METRICS),
        )
        corr_table.columns = [f"bias_correction={c!r}" for c in corr_table.columns]
        print(f"MEAN, {name}: retransformation of the same fitted networks\n")
        print(corr_table.T.to_markdown())
        print()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--size", choices=sorted(SIZES), default="paper")
    parser.add_argument(
        "--models",
        nargs="*",
        default=[],
        help="subset of rows, e.g. MEAN ZILN (default: all)",
    )
    parser.add_argument(
        "--readings",
        action="store_true",
        help="only MEAN and the reading variants (expert batch norm, DAM input)",
    )
    parser.add_argument(
        "--datasets",
        nargs="*",
        default=["CDNOW", "Online Retail", "CDNOW first purchase"],
        help="CDNOW, Online Retail, CDNOW first purchase",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a MEANRegressor parameter in every MEAN row, e.g. max_epochs=100",
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    overrides: dict[str, object] = {}
    for item in args.set:
        key, _, raw = item.partition("=")
        try:
            overrides[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            overrides[key] = raw
    models = list(args.models)
    if args.readings:
        models += ["MEAN", *_reading_variants()]
    torch.set_num_threads(args.threads)
    print(f"quality_mean.py, {datetime.date.today()}, torch {torch.__version__}\n")
    for name in args.datasets:
        evaluate(name, args.seeds, args.size, models, overrides)


if __name__ == "__main__":
    main()
