"""Size of a fitted deep model: its weights, its pickle and its ltvkit model file.

Every registered deep model with its default architecture is fitted on the embedded
CDNOW customers (``load_cdnow()``) and measured three ways: the bytes of its module's
``state_dict`` (the weights), ``len(pickle.dumps(model))`` and the size of the file
``ltvkit.save`` writes (when this ltvkit has it). Run from the repository root:

    OMP_NUM_THREADS=1 python benchmarks/bench_model_size.py --epochs 2

The sizes do not depend on the number of epochs (Adam's state exists after the first
step), so two epochs are enough. Run it on an older checkout (``PYTHONPATH=<checkout>``)
to get the "before" column: that one has no ``ltvkit.save`` and prints "-" there.
"""

from __future__ import annotations

import argparse
import os
import pickle
import tempfile
import warnings

import ltvkit
from ltvkit.datasets import load_cdnow
from ltvkit.nn import BaseDeepRegressor


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    X, y = load_cdnow()
    print(f"CDNOW: {X.shape[0]:,} customers, {X.shape[1]} features; {args.epochs} epochs")
    print("| model | weights MB | pickle MB | model file MB |")
    print("|:--|--:|--:|--:|")
    for name, cls in ltvkit.all_estimators("regressor"):
        if not issubclass(cls, BaseDeepRegressor):
            continue
        est = cls(max_epochs=args.epochs, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y)
        state = est.net_.module_.state_dict()
        weights = sum(t.numel() * t.element_size() for t in state.values())
        pickled = len(pickle.dumps(est))
        saved = "-"
        if hasattr(ltvkit, "save"):
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "model.ltvkit")
                ltvkit.save(est, path)
                saved = _mb(os.path.getsize(path))
        print(f"| {name} | {_mb(weights)} | {_mb(pickled)} | {saved} |", flush=True)


if __name__ == "__main__":
    main()
