"""Quality of CCORNetRegressor: the paper's ablation ladder on CDNOW and Online Retail.

Run from the repository root::

    OMP_NUM_THREADS=1 python benchmarks/quality_ccornet.py                  # ladder, 3 seeds
    OMP_NUM_THREADS=1 python benchmarks/quality_ccornet.py --study sweep --seeds 2 \\
        --param batch_size --values 256 512 1024 4096
    OMP_NUM_THREADS=1 python benchmarks/quality_ccornet.py --study decision  # decision rules
    OMP_NUM_THREADS=1 python benchmarks/quality_ccornet.py --datasets CDNOW --seeds 1

Protocol (ltvkit convention): ``train_test_split(X, y, test_size=0.3, random_state=0)``;
every deep model with its default hyperparameters (the paper's, Appendix B.2) and one fit
per ``random_state`` in ``0 .. seeds-1`` (the split is fixed; the seed changes the
initialisation, shuffling and validation split). Cells are mean ± standard deviation
over the seeds, on the 30% test split.

Rows (``--study ladder``), as in the paper's Table 3:

- *calibration spend*: rank by ``X["monetary_total"]``; for the error metrics it is
  rescaled to the training mean (``monetary_total * mean(y_tr) / mean(monetary_tr)``).
- *TwoStageRegressor*, *ZILNRegressor*: ltvkit's defaults.
- *baseline*: the same encoder ([400, 300, 200]) and training set-up as CC-OR-Net with a
  single non-negative regression output trained by MSE (the paper does not specify its
  baseline; this is the plainest one).
- *+ cascade*: ``distillation=False, residual=False, augmentation=False`` (a bucket's
  value is its center); *+ distillation*; *+ residual*; *+ augmentation* = the full
  CC-OR-Net, with ``prediction="hard"`` (the paper's output) and ``"expected"``.
- *full, λ = 1*: the full model without the paper's negative up-weighting
  (``negative_weights=(1, 1, 1)``); *full, no teacher forcing*: ``teacher_forcing=False``.

Metrics (``ltvkit.metrics``): GINI (normalized Gini), Spearman, NMAE, MAPE, AMBE, NRMSE,
SVA and F1 (``zero_f1``) — with the model's ``predict_nonzero_proba`` when it has one,
else the 0.1 threshold rule of the paper — bucket accuracy, Recall@1%, and on the rows
whose true value is in the top bucket (``LTVBucketizer`` fitted on ``y_train``): the
top-bucket AMBE and the F1 of "predicted in the top bucket" (Table 4).

``--study sweep`` fits the full default model for several values of one hyperparameter
(``--param``, ``--values``) and reports GINI (hard and expected), SVA, NMAE, the best
and the last epoch and the fit time.

``--study decision`` compares decision rules on the same fitted networks (the full
model with the paper's ``lambda = (3, 5, 8)`` and with ``lambda = 1``): the predicted
bucket as the most probable bucket of eq. 1 (``argmax``, ltvkit's ``predict_bucket``)
or by walking the cascade while ``p_k >= 0.5`` (``walk``: the paper's "samples
traverse the cascade sequentially" with "decision thresholds fixed at 0.5"); and the
stage probabilities as trained (``raw``) or corrected for the negative up-weighting
(``debiased``: ``lambda q / (lambda q + 1 - q)``, the probability a classifier trained
with negatives weighted ``lambda`` estimates, inverted). Hard values are the bucket's
``predict_bucket_values`` column; expected values their mean under eq. 1. SVA and F1
use the (raw or debiased) ``p_1`` as ``nonzero_proba``; TwoStageRegressor is the
reference. Online Retail is skipped when its file is absent. Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from _common import estimator, load_split, mean_sd, spend_baseline
from sklearn.metrics import f1_score
from torch import nn

from ltvkit.metrics import (
    ambe,
    bucket_accuracy,
    mape,
    nmae,
    normalized_gini,
    nrmse,
    recall_at_k,
    spearman,
    sva,
    zero_f1,
)
from ltvkit.nn import BaseDeepRegressor, CCORNetRegressor, PreparedTargets
from ltvkit.preprocessing import LTVBucketizer


def _peer(name: str) -> type | None:
    """A peer model from ``ltvkit`` (registry) or, until it is registered, its module."""
    cls = estimator(name)
    if cls is None:
        print(f"{name} not available, skipped", file=sys.stderr)
    return cls


# -- the paper's unspecified "baseline": same encoder, one MSE regression output -----------
class _MSEModule(nn.Module):
    def __init__(self, bottom: nn.Module, init: float) -> None:
        super().__init__()
        self.bottom = bottom
        self.head = nn.Linear(bottom.out_features, 1)
        with torch.no_grad():  # start at the training mean (inverse softplus)
            self.head.bias.fill_(init + math.log(-math.expm1(-init)) if init > 0 else 0.0)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        return nn.functional.softplus(self.head(self.bottom(x_num, x_cat))).squeeze(-1)


class _MSELoss(nn.Module):
    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (output - target).square()


class MSEBaseline(BaseDeepRegressor):
    """Shared bottom + softplus output trained by MSE (ablation baseline, benchmark only)."""

    def __init__(
        self, *, hidden_units=(400, 300, 200), dropout=0.0, embedding_dim=None,
        log_transform="auto", min_category_frequency=5, batch_size=1024, max_epochs=100,
        learning_rate=5e-4, weight_decay=1e-4, optimizer="adamw", learning_rate_schedule="cosine",
        early_stopping=True, validation_fraction=0.1, patience=10, gradient_clip=None,
        random_state=None, verbose=0, callbacks=None, device="cpu", precision="float32",
    ):  # fmt: skip
        self._store_params(locals())

    def _prepare_targets(self, y, sample_weight):
        # info: the training mean, the starting value of the output
        return PreparedTargets(y, info=float(np.mean(y)))

    def _build_module(self, spec, info):
        return _MSEModule(self._make_bottom(spec), info)

    def _build_criterion(self, info):
        return _MSELoss()

    def _output_to_prediction(self, output):
        return output.double()


# -- evaluation ----------------------------------------------------------------------------
METRICS = [
    "GINI ↑", "Spearman ↑", "NMAE ↓", "MAPE ↓", "AMBE ↓", "NRMSE ↓", "SVA ↑", "F1 ↑",
    "Bucket-Acc ↑", "Recall@1% ↑", "top AMBE ↓", "top F1 ↑",
]  # fmt: skip


def _scores(
    y: np.ndarray, pred: np.ndarray, nonzero: np.ndarray | None, top_true: np.ndarray,
    top_pred: np.ndarray,
) -> dict[str, float]:  # fmt: skip
    return {
        "GINI ↑": normalized_gini(y, pred),
        "Spearman ↑": spearman(y, pred),
        "NMAE ↓": nmae(y, pred),
        "MAPE ↓": mape(y, pred),
        "AMBE ↓": ambe(y, pred),
        "NRMSE ↓": nrmse(y, pred),
        "SVA ↑": sva(y, pred, nonzero_proba=nonzero),
        "F1 ↑": zero_f1(y, pred, nonzero_proba=nonzero),
        "Bucket-Acc ↑": bucket_accuracy(y, pred),
        "Recall@1% ↑": recall_at_k(y, pred, k=0.01),
        "top AMBE ↓": ambe(y[top_true], pred[top_true]),
        "top F1 ↑": float(f1_score(top_true, top_pred, zero_division=0.0)),
    }


def _fmt(values: list[float]) -> str:
    """One value to 4 significant digits; else mean ± sd, 3 decimals if all |v| < 10, else 2."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 1:
        return f"{arr[0]:.4g}"
    return mean_sd(arr, 3 if np.abs(arr).max() < 10 else 2, skipna=False)


def _ladder_models(seed: int) -> list[tuple[str, Callable[[], object], dict]]:
    """(row label, factory, extra) for one seed; CC-OR-Net rows share a fit if equal."""
    rows: list[tuple[str, Callable[[], object], dict]] = []
    two = _peer("TwoStageRegressor")
    if two is not None:
        rows.append(("TwoStageRegressor", lambda: two(random_state=seed, n_jobs=1), {}))
    ziln = _peer("ZILNRegressor")
    if ziln is not None:
        rows.append(("ZILNRegressor", lambda: ziln(random_state=seed), {}))
    rows.append(("baseline (MSE)", lambda: MSEBaseline(random_state=seed), {}))

    def cc(**kw: object) -> Callable[[], object]:
        return lambda: CCORNetRegressor(random_state=seed, **kw)

    rows += [
        ("+ cascade", cc(distillation=False, residual=False, augmentation=False), {}),
        ("+ distillation", cc(residual=False, augmentation=False), {}),
        ("+ residual", cc(augmentation=False), {}),
        ("+ augmentation = CC-OR-Net (hard)", cc(), {"expected": "CC-OR-Net (expected)"}),
        (
            "CC-OR-Net λ = 1 (hard)",
            cc(negative_weights=(1.0, 1.0, 1.0)),
            {"expected": "CC-OR-Net λ = 1 (expected)"},
        ),
        ("CC-OR-Net, no teacher forcing (hard)", cc(teacher_forcing=False), {}),
    ]
    return rows


def evaluate_ladder(name: str, seeds: int) -> pd.DataFrame | None:
    split = load_split(name)
    if split is None:
        print(f"{name}: data not found, skipped")
        return None
    X_tr, X_te, y_tr, y_te = split
    bk = LTVBucketizer(n_buckets=4).fit(np.asarray(y_tr, dtype=float).reshape(-1, 1))
    top = bk.n_buckets_ - 1
    top_true = bk.transform(y_te.reshape(-1, 1)).ravel() == top
    results: dict[str, list[dict[str, float]]] = {}
    fit_info: dict[str, list[tuple[float, int]]] = {}

    def record(label: str, pred: np.ndarray, nonzero, top_pred, dur: float, epochs: int):
        results.setdefault(label, []).append(_scores(y_te, pred, nonzero, top_true, top_pred))
        fit_info.setdefault(label, []).append((dur, epochs))

    for seed in range(seeds):
        for label, factory, extra in _ladder_models(seed):
            t0 = time.perf_counter()
            model = factory().fit(X_tr, y_tr)
            dur = time.perf_counter() - t0
            epochs = int(getattr(model, "n_iter_", 0) or 0)
            pred = model.predict(X_te)
            # the baseline has no P(y > 0): SVA and F1 use the paper's 0.1 threshold rule
            nonzero = None if isinstance(model, MSEBaseline) else model.predict_nonzero_proba(X_te)
            if isinstance(model, CCORNetRegressor):
                top_pred = model.predict_bucket(X_te) == model.n_buckets_ - 1
            else:
                top_pred = bk.transform(np.maximum(pred, 0).reshape(-1, 1)).ravel() == top
            record(label, pred, nonzero, top_pred, dur, epochs)
            if "expected" in extra:
                model.set_params(prediction="expected")
                record(extra["expected"], model.predict(X_te), nonzero, top_pred, dur, epochs)
            print(f"  {name} seed {seed} {label}: {dur:.1f}s, {epochs} epochs", file=sys.stderr)
    spend = spend_baseline(X_tr, X_te, y_tr)
    base = _scores(y_te, spend, None, top_true, bk.transform(spend.reshape(-1, 1)).ravel() == top)
    table = {"calibration spend": {m: f"{base[m]:.4g}" for m in METRICS}}
    for label, rows in results.items():
        frame = pd.DataFrame(rows)
        table[label] = {m: _fmt(frame[m].tolist()) for m in METRICS}
    out = pd.DataFrame(table).T
    fit = {k: f"{np.mean([d for d, _ in v]):.0f}s / {np.mean([e for _, e in v]):.0f}"
           for k, v in fit_info.items()}  # fmt: skip
    out["fit / epochs"] = pd.Series(fit)
    out.index.name = (
        f"{name} ({len(X_tr):,} train / {len(X_te):,} test, {(y_te == 0).mean():.0%} zeros)"
    )
    return out


def _parse(value: str) -> object:
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def evaluate_sweep(name: str, seeds: int, param: str, values: list[str]) -> pd.DataFrame | None:
    split = load_split(name)
    if split is None:
        print(f"{name}: data not found, skipped")
        return None
    X_tr, X_te, y_tr, y_te = split
    rows = {}
    for raw in values:
        value = _parse(raw)
        res: dict[str, list[float]] = {}
        for seed in range(seeds):
            t0 = time.perf_counter()
            model = CCORNetRegressor(random_state=seed, **{param: value}).fit(X_tr, y_tr)
            dur = time.perf_counter() - t0
            nonzero = model.predict_nonzero_proba(X_te)
            hard = model.predict(X_te)
            expected = model.set_params(prediction="expected").predict(X_te)
            for key, val in {
                "GINI (expected) ↑": normalized_gini(y_te, expected),
                "GINI (hard) ↑": normalized_gini(y_te, hard),
                "SVA (hard) ↑": sva(y_te, hard, nonzero_proba=nonzero),
                "NMAE (expected) ↓": nmae(y_te, expected),
                "best epoch": float(model.best_epoch_),
                "epochs": float(model.n_iter_),
                "fit s": dur,
            }.items():
                res.setdefault(key, []).append(val)
            print(f"  {name} {param}={value} seed {seed}: {dur:.1f}s", file=sys.stderr)
        rows[f"{param}={value}"] = {k: _fmt(v) for k, v in res.items()}
    out = pd.DataFrame(rows).T
    out.index.name = name
    return out


def _equation_1(p: np.ndarray) -> np.ndarray:
    """Bucket probabilities from the conditional stage probabilities (eq. 1)."""
    reach = np.cumprod(np.c_[np.ones(len(p)), p], axis=1)  # P(y > tau_{k-1})
    return reach * np.c_[1.0 - p, np.ones(len(p))]


def evaluate_decision(name: str, seeds: int) -> pd.DataFrame | None:
    split = load_split(name)
    if split is None:
        print(f"{name}: data not found, skipped")
        return None
    X_tr, X_te, y_tr, y_te = split
    rows: dict[str, dict[str, list[float]]] = {}
    two = _peer("TwoStageRegressor")
    if two is not None:
        model = two(random_state=0, n_jobs=1).fit(X_tr, y_tr)
        pred, nonzero = model.predict(X_te), model.predict_nonzero_proba(X_te)
        rows["TwoStageRegressor"] = {
            "GINI ↑": [normalized_gini(y_te, pred)],
            "Spearman ↑": [spearman(y_te, pred)],
            "SVA ↑": [sva(y_te, pred, nonzero_proba=nonzero)],
            "F1 ↑": [zero_f1(y_te, pred, nonzero_proba=nonzero)],
        }
    idx = np.arange(len(y_te))
    for config, lam in (("λ = (3, 5, 8)", (3.0, 5.0, 8.0)), ("λ = 1", (1.0, 1.0, 1.0))):
        for seed in range(seeds):
            t0 = time.perf_counter()
            model = CCORNetRegressor(random_state=seed, negative_weights=lam).fit(X_tr, y_tr)
            dur = time.perf_counter() - t0
            print(f"  {name} {config} seed {seed}: {dur:.1f}s", file=sys.stderr)
            raw = model.predict_stage_proba(X_te)
            values = model.predict_bucket_values(X_te)
            weights = np.asarray(lam[: raw.shape[1]])
            debiased = weights * raw / (weights * raw + 1.0 - raw)
            for proba_label, p in (("raw", raw), ("debiased", debiased)):
                if proba_label == "debiased" and np.all(weights == 1.0):
                    continue  # identical to raw
                bucket_proba = _equation_1(p)
                expected = (bucket_proba * values).sum(axis=1)
                rules = {
                    "argmax": bucket_proba.argmax(axis=1),
                    "walk": np.cumprod(p >= 0.5, axis=1).sum(axis=1),
                }
                for rule, bucket in rules.items():
                    hard = values[idx, bucket]
                    label = f"{config}, {proba_label}, {rule}"
                    row = rows.setdefault(label, {})
                    for key, val in {
                        "GINI ↑": normalized_gini(y_te, hard),
                        "GINI (expected) ↑": normalized_gini(y_te, expected),
                        "Spearman ↑": spearman(y_te, hard),
                        "SVA ↑": sva(y_te, hard, nonzero_proba=p[:, 0]),
                        "SVA (expected) ↑": sva(y_te, expected, nonzero_proba=p[:, 0]),
                        "F1 ↑": zero_f1(y_te, hard, nonzero_proba=p[:, 0]),
                        "predicted bucket 0": float(np.mean(bucket == 0)),
                    }.items():
                        row.setdefault(key, []).append(val)
    out = pd.DataFrame({k: {m: _fmt(v) for m, v in r.items()} for k, r in rows.items()}).T
    out.index.name = f"{name} (hard unless marked)"
    return out.fillna("")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--study", choices=["ladder", "sweep", "decision"], default="ladder")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--datasets", nargs="+", default=["CDNOW", "Online Retail"])
    parser.add_argument("--param", default="batch_size", help="sweep: the parameter to vary")
    parser.add_argument(
        "--values", nargs="+", default=["256", "512", "1024", "4096"], help="sweep: its values"
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), seeds 0..{args.seeds - 1}")
    for name in args.datasets:
        if args.study == "ladder":
            table = evaluate_ladder(name, args.seeds)
        elif args.study == "decision":
            table = evaluate_decision(name, args.seeds)
        else:
            table = evaluate_sweep(name, args.seeds, args.param, args.values)
        if table is not None:
            print(table.to_markdown())
            print(flush=True)


if __name__ == "__main__":
    main()
