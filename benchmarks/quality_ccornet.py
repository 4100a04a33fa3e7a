"""Quality of CCORNetRegressor: the paper's ablation ladder and the choice of the defaults.

Run from the repository root (``LTVKIT_DATA_DIR`` pointing at the shared data for Online
Retail)::

    OMP_NUM_THREADS=1 python benchmarks/quality_ccornet.py --study configs   # defaults
    OMP_NUM_THREADS=1 python benchmarks/quality_ccornet.py --study ladder    # Tables 3/4
    OMP_NUM_THREADS=1 python benchmarks/quality_ccornet.py --study ladder --base paper \\
        --datasets CDNOW --seeds 1
    OMP_NUM_THREADS=1 python benchmarks/quality_ccornet.py --study values    # expected value
    OMP_NUM_THREADS=1 python benchmarks/quality_ccornet.py --study sweep --seeds 2 \\
        --param batch_size --values 256 1024 4096

Protocol (ltvkit convention): ``train_test_split(X, y, test_size=0.3, random_state=0)``;
one fit per ``random_state`` in ``0 .. seeds-1`` (the split is fixed; the seed changes
the initialisation, shuffling and validation split). Cells are mean ± standard deviation
over the seeds, on the 30% test split.

Datasets (``--datasets``):

- ``CDNOW``: ``load_cdnow()`` (39 weeks of calibration, 39 of holdout).
- ``Online Retail``: ``load_online_retail()`` (skipped when its file is absent).
- ``CDNOW first purchase``: what a model knows on a customer's first day. The CDNOW log
  (``load_cdnow(return_transactions=True)``) restricted to each customer's first purchase
  date (every line of that day), plus every line of the full log from 1997-04-01 on,
  through ``transactions_to_ltv(calibration_end="1997-04-01",
  holdout_end="1998-07-01")``: ``X`` = the core features as of 1997-04-01 computed from
  the first purchase day only (all CDNOW customers first bought in Q1 1997), ``y`` =
  spend from 1997-04-01 to 1998-06-30 in the full log. Purchases between the first day
  and 1997-04-01 are in neither. :func:`first_purchase_cdnow` builds it.

"Past spend" ranks by ``X["monetary_total"]`` (calibration-window spend); for the error
metrics it is rescaled to the training mean.

Metrics (``ltvkit.metrics``): GINI (normalized Gini), Spearman, NMAE, MAPE, AMBE (the
global ``|mean(pred) - mean(y)|``, the paper's Table 3 and Table 4 AMBE), NRMSE, SVA and
F1 (``zero_f1``) with the model's ``predict_nonzero_proba`` (the baseline, which has none:
the paper's ``pred > 0.1`` rule), bucket accuracy, Recall@1%, and on the rows whose true
value is in the top bucket (``LTVBucketizer`` fitted on ``y_train``): the top-bucket NRMSE
and the F1 of "assigned to the top bucket" (Table 4; models without buckets: prediction
above ``q75``). Quantiles (CC-OR-Net rows): coverage ``P(y <= q_tau)`` at tau = 0.5, 0.9,
0.95, and the 0.9 pinball loss divided by that of the training set's constant
0.9-quantile ("pinball 0.9 ratio", below 0.9 = at least 10% better).

Studies (``--study``):

- ``configs``: the named configurations of ``CONFIGS`` (``--configs`` picks some) on the
  three tables: ranking, SVA, AMBE, quantiles, fit time. Each fit is scored with both
  outputs (``hard``, ``expected``; the configured one first). This is how the defaults
  were chosen (``docs/models/ccornet.md``).
- ``ladder``: Table 3 / Table 4 as increments, on top of the paper's configuration
  (``--base paper``) and of ltvkit's defaults (``--base ltvkit``): *+ cascade*
  (``distillation=False, residual=False, augmentation=False``: a bucket's value is its
  center), *+ distillation*, *+ residual*, *+ augmentation* (the full model); besides
  TwoStage, ZILN and the paper's unspecified *baseline* (the same encoder with one
  softplus output trained by MSE). The paper's rows are scored with the hard output, the
  ltvkit rows with ltvkit's default output.
- ``values``: the default model's expected value with the training labels' bucket means
  (ltvkit's) against the mixture of the network's bucket values ``v_b`` (the residual
  values and the whale tower's ``v_high``), and with the top bucket's mean in place of
  ``v_high``; the hard output with the walk and, on the same network, with the most
  probable bucket (argmax); and the normalized Gini of ``v_high`` among the test
  customers truly in the top bucket.
- ``sweep``: the default model for several values of one hyperparameter.

Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from _common import estimator, fixed_split, load_dataset, mean_sd, spend_baseline
from _tables import first_purchase_cdnow
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

#: The paper's configuration (Appendix B.2, §3.3; docs/models/ccornet.md).
PAPER = dict(
    prediction="hard",
    decision="walk",
    cascade_training="marginal",
    distill_gradient="cascade",
    high_value_output="unbounded",
    negative_weights=(3.0, 5.0, 8.0),
)

#: Named configurations of ``--study configs`` (keyword arguments of CCORNetRegressor).
CONFIGS: dict[str, dict] = {
    "ltvkit defaults": {},
    "paper": PAPER,
    "defaults, λ = (3, 5, 8)": dict(negative_weights=(3.0, 5.0, 8.0)),
    "defaults, marginal": dict(cascade_training="marginal"),
    "defaults, unbounded": dict(high_value_output="unbounded"),
    "defaults, distill -> encoder": dict(distill_gradient="encoder"),
    "defaults, argmax": dict(decision="argmax"),
}

QUANTILE_LEVELS = (0.5, 0.9, 0.95)


def load_split(name: str) -> tuple | None:
    """The fixed split of a dataset; None when the data is absent."""
    if name == "CDNOW first purchase":
        data = first_purchase_cdnow()
    else:
        data = load_dataset(name)
    if data is None:
        return None
    return fixed_split(*data, float_train=True)


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

    def predict_quantiles(self, X, quantiles):
        # no distribution: defining this keeps the base from fitting its generic one,
        # which needs a predict_nonzero_proba this baseline does not have
        raise NotImplementedError("the MSE baseline has no predictive distribution")


# -- evaluation ----------------------------------------------------------------------------
def pinball(y: np.ndarray, q: np.ndarray, tau: float) -> float:
    """Mean pinball (quantile) loss of the predictions ``q`` at level ``tau``."""
    diff = y - q
    return float(np.mean(np.maximum(tau * diff, (tau - 1.0) * diff)))


class Scorer:
    """Every metric of one test split (top bucket from the training labels)."""

    def __init__(self, y_tr: np.ndarray, y_te: np.ndarray) -> None:
        self.y_tr, self.y = y_tr, y_te
        self.bk = LTVBucketizer(n_buckets=4).fit(y_tr.reshape(-1, 1))
        self.top = self.bk.n_buckets_ - 1
        self.top_true = self.bk.transform(y_te.reshape(-1, 1)).ravel() == self.top
        self.const_q90 = float(np.quantile(y_tr, 0.9))

    def point(
        self, pred: np.ndarray, nonzero: np.ndarray | None, top_pred: np.ndarray | None = None
    ) -> dict[str, float]:
        y, top = self.y, self.top_true
        if top_pred is None:
            top_pred = self.bk.transform(np.maximum(pred, 0).reshape(-1, 1)).ravel() == self.top
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
            "top NRMSE ↓": nrmse(y[top], pred[top]),
            "top F1 ↑": float(f1_score(top, top_pred, zero_division=0.0)),
        }

    def quantiles(self, model: CCORNetRegressor, X: pd.DataFrame) -> dict[str, float]:
        Q = model.predict_quantiles(X, list(QUANTILE_LEVELS))
        out = {
            f"cov {t}": float(np.mean(self.y <= Q[:, i])) for i, t in enumerate(QUANTILE_LEVELS)
        }
        const = pinball(self.y, np.full_like(self.y, self.const_q90), 0.9)
        out["pinball 0.9 ratio ↓"] = pinball(self.y, Q[:, QUANTILE_LEVELS.index(0.9)], 0.9) / const
        return out

    def model(self, model: CCORNetRegressor, X: pd.DataFrame) -> dict[str, float]:
        """The model's configured output, its assigned top bucket, and its quantiles."""
        scores = self.point(
            model.predict(X),
            model.predict_nonzero_proba(X),
            model.predict_bucket(X) == model.n_buckets_ - 1,
        )
        return {**scores, **self.quantiles(model, X)}


def _fmt(values: list[float]) -> str:
    """One value to 4 significant digits; else mean ± sd, 3 decimals if all |v| < 10, else 2."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 1:
        return f"{arr[0]:.4g}"
    return mean_sd(arr, 3 if np.abs(arr).max() < 10 else 2, skipna=False)


def _table(
    results: dict[str, list[dict[str, float]]], columns: list[str], index_name: str
) -> pd.DataFrame:
    rows = {}
    for label, runs in results.items():
        frame = pd.DataFrame(runs)
        rows[label] = {c: _fmt(frame[c].tolist()) if c in frame else "" for c in columns}
    out = pd.DataFrame(rows).T[columns]
    out.index.name = index_name
    return out


def _header(name: str, split: tuple) -> str:
    X_tr, X_te, _, y_te = split
    return f"{name} ({len(X_tr):,} train / {len(X_te):,} test, {(y_te == 0).mean():.0%} zeros)"


def _fit(factory: Callable[[], object], X, y, label: str) -> tuple[object, float]:
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = factory().fit(X, y)
    dur = time.perf_counter() - t0
    epochs = int(getattr(model, "n_iter_", 0) or 0)
    print(f"  {label}: {dur:.1f}s, {epochs} epochs", file=sys.stderr, flush=True)
    return model, dur


# -- studies -------------------------------------------------------------------------------
CONFIG_COLUMNS = [
    "GINI ↑", "GINI - past spend ↑", "Spearman ↑", "SVA ↑", "F1 ↑", "AMBE ↓", "NMAE ↓",
    "cov 0.5", "cov 0.9", "cov 0.95", "pinball 0.9 ratio ↓", "fit s", "epochs",
]  # fmt: skip


def study_configs(name: str, seeds: int, names: list[str]) -> pd.DataFrame | None:
    split = load_split(name)
    if split is None:
        print(f"{name}: data not found, skipped")
        return None
    X_tr, X_te, y_tr, y_te = split
    scorer = Scorer(y_tr, y_te)
    spend = spend_baseline(X_tr, X_te, y_tr)
    spend_gini = normalized_gini(y_te, X_te["monetary_total"].to_numpy(dtype=float))
    results: dict[str, list[dict[str, float]]] = {
        "past spend": [{**scorer.point(spend, None), "GINI - past spend ↑": 0.0}]
    }
    for config in names:
        for seed in range(seeds):
            params = CONFIGS[config]
            model, dur = _fit(
                lambda p=params, s=seed: CCORNetRegressor(random_state=s, **p),
                X_tr,
                y_tr,
                f"{name} {config} seed {seed}",
            )
            first = model.prediction
            for output in (first, "expected" if first == "hard" else "hard"):
                model.set_params(prediction=output)
                row = scorer.model(model, X_te)
                row["GINI - past spend ↑"] = row["GINI ↑"] - spend_gini
                row["fit s"], row["epochs"] = dur, float(model.n_iter_)
                results.setdefault(f"{config} ({output})", []).append(row)
    return _table(results, CONFIG_COLUMNS, _header(name, split))


LADDER_COLUMNS = [
    "GINI ↑", "Spearman ↑", "NMAE ↓", "MAPE ↓", "AMBE ↓", "NRMSE ↓", "SVA ↑", "F1 ↑",
    "Bucket-Acc ↑", "Recall@1% ↑", "top NRMSE ↓", "top F1 ↑", "cov 0.9", "cov 0.95",
    "pinball 0.9 ratio ↓", "fit s",
]  # fmt: skip

RUNGS = [
    ("+ cascade", dict(distillation=False, residual=False, augmentation=False)),
    ("+ distillation", dict(residual=False, augmentation=False)),
    ("+ residual", dict(augmentation=False)),
    ("+ augmentation (full)", {}),
]


def study_ladder(name: str, seeds: int, bases: list[str]) -> pd.DataFrame | None:
    split = load_split(name)
    if split is None:
        print(f"{name}: data not found, skipped")
        return None
    X_tr, X_te, y_tr, y_te = split
    scorer = Scorer(y_tr, y_te)
    spend = spend_baseline(X_tr, X_te, y_tr)
    results: dict[str, list[dict[str, float]]] = {"past spend": [scorer.point(spend, None)]}
    for seed in range(seeds):
        peers: list[tuple[str, Callable[[], object]]] = []
        two, ziln = _peer("TwoStageRegressor"), _peer("ZILNRegressor")
        if two is not None:
            peers.append(("TwoStageRegressor", lambda c=two, s=seed: c(random_state=s, n_jobs=1)))
        if ziln is not None:
            peers.append(("ZILNRegressor", lambda c=ziln, s=seed: c(random_state=s)))
        peers.append(("baseline (MSE)", lambda s=seed: MSEBaseline(random_state=s)))
        for label, factory in peers:
            model, dur = _fit(factory, X_tr, y_tr, f"{name} {label} seed {seed}")
            nonzero = None if isinstance(model, MSEBaseline) else model.predict_nonzero_proba(X_te)
            row = scorer.point(model.predict(X_te), nonzero)
            results.setdefault(label, []).append({**row, "fit s": dur})
        for base in bases:
            params = PAPER if base == "paper" else {}
            for rung, switches in RUNGS:
                kw = {**params, **switches}
                model, dur = _fit(
                    lambda kw=kw, s=seed: CCORNetRegressor(random_state=s, **kw),
                    X_tr,
                    y_tr,
                    f"{name} {base} {rung} seed {seed}",
                )
                label = f"{base}: {rung}, {model.prediction}"
                results.setdefault(label, []).append({**scorer.model(model, X_te), "fit s": dur})
        # the table so far, after every seed (a long run that is stopped keeps its seeds)
        partial = _table(results, LADDER_COLUMNS, _header(name, split))
        print(f"after seed {seed}:\n{partial.to_markdown()}", file=sys.stderr, flush=True)
    return _table(results, LADDER_COLUMNS, _header(name, split))


VALUE_COLUMNS = ["GINI ↑", "GINI - past spend ↑", "Spearman ↑", "AMBE ↓", "NMAE ↓", "SVA ↑"]


def study_values(name: str, seeds: int) -> pd.DataFrame | None:
    """Which bucket values make the expected value: bucket means or the network's v_b."""
    split = load_split(name)
    if split is None:
        print(f"{name}: data not found, skipped")
        return None
    X_tr, X_te, y_tr, y_te = split
    scorer = Scorer(y_tr, y_te)
    spend_gini = normalized_gini(y_te, X_te["monetary_total"].to_numpy(dtype=float))
    results: dict[str, list[dict[str, float]]] = {}
    for seed in range(seeds):
        model, _ = _fit(
            lambda s=seed: CCORNetRegressor(random_state=s), X_tr, y_tr, f"{name} seed {seed}"
        )
        proba, values = model.predict_bucket_proba(X_te), model.predict_bucket_values(X_te)
        top = model.n_buckets_ - 1
        nonzero = model.predict_nonzero_proba(X_te)
        preds = {
            "bucket means (ltvkit's expected)": proba @ model.bucket_means_,
            "network values v_b": (proba * values).sum(axis=1),
            "v_b, top bucket's mean for the top": (proba[:, :top] * values[:, :top]).sum(axis=1)
            + proba[:, top] * model.bucket_means_[top],
            "hard (walk)": model.set_params(prediction="hard").predict(X_te),
            # the same network, the most probable bucket of eq. 1 instead of the walk
            "hard (argmax)": values[np.arange(len(values)), proba.argmax(axis=1)],
        }
        for label, pred in preds.items():
            row = scorer.point(pred, nonzero)
            row["GINI - past spend ↑"] = row["GINI ↑"] - spend_gini
            results.setdefault(label, []).append(row)
        # within the true top bucket: how the whale tower and the bucket mean rank
        in_top = scorer.top_true
        row = {"GINI ↑": normalized_gini(y_te[in_top], values[in_top, top])}
        results.setdefault("v_top alone, customers truly in the top bucket", []).append(row)
    return _table(results, VALUE_COLUMNS, _header(name, split))


def _parse(value: str) -> object:
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def study_sweep(name: str, seeds: int, param: str, values: list[str]) -> pd.DataFrame | None:
    split = load_split(name)
    if split is None:
        print(f"{name}: data not found, skipped")
        return None
    X_tr, X_te, y_tr, y_te = split
    scorer = Scorer(y_tr, y_te)
    results: dict[str, list[dict[str, float]]] = {}
    for raw in values:
        value = _parse(raw)
        for seed in range(seeds):
            model, dur = _fit(
                lambda v=value, s=seed: CCORNetRegressor(random_state=s, **{param: v}),
                X_tr,
                y_tr,
                f"{name} {param}={value} seed {seed}",
            )
            row = scorer.model(model, X_te)
            row.update({"fit s": dur, "epochs": float(model.n_iter_)})
            row["best epoch"] = float(model.best_epoch_)
            results.setdefault(f"{param}={value}", []).append(row)
    cols = ["GINI ↑", "SVA ↑", "AMBE ↓", "NMAE ↓", "cov 0.9", "pinball 0.9 ratio ↓"]
    return _table(results, [*cols, "best epoch", "epochs", "fit s"], _header(name, split))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--study", choices=["configs", "ladder", "values", "sweep"], default="configs"
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--datasets", nargs="+", default=["CDNOW", "Online Retail", "CDNOW first purchase"]
    )
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument(
        "--base", nargs="+", default=["paper", "ltvkit"], choices=["paper", "ltvkit"]
    )
    parser.add_argument("--param", default="batch_size", help="sweep: the parameter to vary")
    parser.add_argument(
        "--values", nargs="+", default=["256", "1024", "4096"], help="sweep: its values"
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), seeds 0..{args.seeds - 1}")
    for name in args.datasets:
        if args.study == "configs":
            table = study_configs(name, args.seeds, args.configs)
        elif args.study == "ladder":
            table = study_ladder(name, args.seeds, args.base)
        elif args.study == "values":
            table = study_values(name, args.seeds)
        else:
            table = study_sweep(name, args.seeds, args.param, args.values)
        if table is not None:
            print(table.to_markdown())
            print(flush=True)


if __name__ == "__main__":
    main()
