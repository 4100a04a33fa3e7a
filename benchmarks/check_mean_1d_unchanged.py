"""Check that MEANRegressor on a 1-D target still gives the recorded predictions.

``benchmarks/check_predictions_unchanged.py`` fits every model on the target its class
declares; ``MEANRegressor`` is now a multi-horizon model (``_multi_horizon = True``),
so that script fits it on the 3-horizon target and cannot compare it with the values
recorded for the 1-D target. This script fits the recorded MEAN cases on the 1-D
target, with the switches that did not exist then set to what the model did then
(``LEGACY``: no expert batch norm, the DAM on its own shared layer, the DAM's plain
``softmax(k)``), and compares every ``predict*`` output recorded for them (bitwise;
record and check on the same machine, as for the other script). Methods that did not
exist when the reference was recorded (``predict_quantiles``; ``predict_nonzero_proba``
without a DAM) are listed as new.

    python benchmarks/check_mean_1d_unchanged.py
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import torch
from check_predictions_unchanged import CASES, REFERENCE, _outputs

import ltvkit
from ltvkit.datasets import make_ltv

#: The readings the reference predictions were recorded with.
LEGACY = dict(expert_batch_norm=False, dam_input="separate", bucket_calibration="none")


def main() -> int:
    torch.set_num_threads(1)
    X, y = make_ltv(n_samples=600, n_features=5, n_categorical=2, random_state=0)
    w = np.random.default_rng(0).integers(1, 4, size=len(X)).astype(float)
    ref = dict(np.load(REFERENCE))
    failures = checked = 0
    for case, cls_name, params, weighted in CASES:
        if cls_name != "MEANRegressor":
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = ltvkit.MEANRegressor(**{**params, **LEGACY})
            est.fit(X, y, sample_weight=w if weighted else None)
            now = _outputs(est, X)
        for name, value in now.items():
            key = f"{case}/{name}"
            if key not in ref:
                print(f"NEW      {key} (no reference)")
                continue
            checked += 1
            if not np.array_equal(value, ref[key], equal_nan=True):
                diff = np.max(np.abs(np.asarray(value, float) - ref[key]))
                print(f"CHANGED  {key}: max abs difference {diff:.3g}")
                failures += 1
        missing = [k for k in ref if k.startswith(f"{case}/") and k.split("/")[1] not in now]
        for key in missing:
            print(f"MISSING  {key}")
            failures += 1
    print(f"{checked - failures} of {checked} recorded MEAN outputs identical")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
