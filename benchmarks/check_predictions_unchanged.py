"""Check that a refactoring leaves every estimator's predictions bitwise identical.

Fits every registered regressor (and a few non-default variants) on one fixed synthetic
case and compares the output of every ``predict*`` method with values recorded before
the change (``benchmarks/reference/predictions.npz``). float32 results differ between CPUs
in the last bit, so record and check on the same machine: this is a refactoring tool,
not a test.

    python benchmarks/check_predictions_unchanged.py --record   # before the change
    python benchmarks/check_predictions_unchanged.py            # after it

Parameter names are those of the current code: when a refactoring renames a parameter,
update ``CASES`` (only the names) and the check still compares the same fits.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

import ltvkit
from ltvkit.datasets import make_ltv

REFERENCE = Path(__file__).with_name("reference") / "predictions.npz"
DEEP = dict(hidden_units=(16,), max_epochs=4, batch_size=64, random_state=0)

#: (case name, estimator class name, parameters, fit with sample weights?)
CASES: list[tuple[str, str, dict, bool]] = [
    ("two_stage", "TwoStageRegressor", dict(n_estimators=20, n_jobs=1, random_state=0), False),
    (
        "two_stage_es",
        "TwoStageRegressor",
        dict(n_estimators=40, n_jobs=1, random_state=0, early_stopping=True, patience=5),
        True,
    ),
    ("ziln", "ZILNRegressor", dict(DEEP), False),
    ("ziln_w", "ZILNRegressor", dict(DEEP), True),
    (
        "optdist",
        "OptDistRegressor",
        dict(DEEP, n_components=3, component_units=(8,), selection_units=(8,)),
        False,
    ),
    (
        "optdist_soft",
        "OptDistRegressor",
        dict(
            DEEP,
            n_components=3,
            component_units=(8,),
            selection_units=(8,),
            prediction="expected",
            gumbel_temperature=0.5,
        ),
        True,
    ),
    (
        "mdme",
        "MDMERegressor",
        dict(DEEP, subdistribution_distill_weight=0.3, bucket_distill_weight=0.7),
        False,
    ),
    ("mdme_hard", "MDMERegressor", dict(DEEP, prediction="hard"), True),
    ("odmn", "ODMNRegressor", dict(DEEP, calibration_weight=0.5), False),
    (
        "mean",
        "MEANRegressor",
        dict(
            DEEP,
            expert_units=(8,),
            dam_units=(8,),
            n_buckets=4,
            hard_label_weight=0.5,
            soft_label_weight=2.0,
            distill_temperature=1.5,
        ),
        False,
    ),
    (
        "mean_mean",
        "MEANRegressor",
        dict(DEEP, expert_units=(8,), dam_units=(8,), bias_correction="balance"),
        True,
    ),
    (
        "ccornet",
        "CCORNetRegressor",
        dict(DEEP, residual_units=(16, 8), high_value_units=(16, 8), main_weight=0.7),
        False,
    ),
    (
        "ccornet_expected",
        "CCORNetRegressor",
        dict(DEEP, residual_units=(16, 8), high_value_units=(16, 8), prediction="expected"),
        True,
    ),
]

# method name before the change -> name now (extend when a refactoring renames a method)
RENAMED_METHODS: dict[str, str] = {}


def _outputs(est: object, X: object) -> dict[str, np.ndarray]:
    out = {}
    for name in sorted(dir(est)):
        if not name.startswith("predict") or not callable(getattr(est, name)):
            continue
        method = getattr(est, name)
        try:
            if name == "predict_quantiles":
                value = method(X, [0.1, 0.5, 0.9])
            else:
                value = method(X)
        except (AttributeError, NotImplementedError, TypeError, ValueError):
            continue
        if isinstance(value, dict):  # e.g. predict_params: one array per parameter
            value = np.column_stack([np.asarray(v, dtype=float) for v in value.values()])
        value = value.to_numpy() if hasattr(value, "to_numpy") else np.asarray(value)
        out[name] = value
    return out


def run(only: list[str] | None = None) -> dict[str, np.ndarray]:
    torch.set_num_threads(1)
    X, y = make_ltv(n_samples=600, n_features=5, n_categorical=2, random_state=0)
    _, y_multi = make_ltv(
        n_samples=600, n_features=5, n_categorical=2, n_horizons=3, random_state=0
    )
    w = np.random.default_rng(0).integers(1, 4, size=len(X)).astype(float)
    results = {}
    for case, cls_name, params, weighted in CASES:
        if only and not any(case.startswith(prefix) for prefix in only):
            continue
        cls = getattr(ltvkit, cls_name)
        target = y_multi if getattr(cls, "_multi_horizon", False) else y
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = cls(**params).fit(X, target, sample_weight=w if weighted else None)
            for name, value in _outputs(est, X).items():
                results[f"{case}/{name}"] = value
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="record the reference values")
    parser.add_argument("--only", nargs="*", help="check only the cases with these prefixes")
    args = parser.parse_args()
    results = run(args.only)
    if args.record:
        REFERENCE.parent.mkdir(exist_ok=True)
        np.savez_compressed(REFERENCE, **results)
        print(f"recorded {len(results)} outputs of {len(CASES)} fits to {REFERENCE}")
        return 0
    ref = dict(np.load(REFERENCE))
    failures = 0
    if args.only:
        ref = {k: v for k, v in ref.items() if any(k.startswith(p) for p in args.only)}
    for key, value in ref.items():
        case, method = key.split("/")
        now = f"{case}/{RENAMED_METHODS.get(method, method)}"
        if now not in results:
            print(f"MISSING  {key} (now {now})")
            failures += 1
        elif not np.array_equal(results[now], value, equal_nan=True):
            diff = np.max(np.abs(np.asarray(results[now], float) - np.asarray(value, float)))
            print(f"CHANGED  {key}: max abs difference {diff:.3g}")
            failures += 1
    extra = sorted(
        set(results)
        - {
            f"{k.split('/')[0]}/{RENAMED_METHODS.get(k.split('/')[1], k.split('/')[1])}"
            for k in ref
        }
    )
    for key in extra:
        print(f"NEW      {key} (no reference)")
    print(f"{len(ref) - failures} of {len(ref)} recorded outputs identical")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
