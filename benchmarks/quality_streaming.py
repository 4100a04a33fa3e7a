"""Quality of a streaming fit (ParquetDataset) against the in-memory fit, on CDNOW.

Run from the repository root::

    OMP_NUM_THREADS=1 python benchmarks/quality_streaming.py            # 5 splits
    OMP_NUM_THREADS=1 python benchmarks/quality_streaming.py --seeds 2

For each seed: a random 70/30 split of the CDNOW customers (``load_cdnow``); the
training part is written to Parquet in customer-id order (CDNOW's ids follow the date
of the first purchase, so the files are ordered by cohort: the case where a small
shuffle buffer hurts), 4 files of 1,024-row row groups. ``ZILNRegressor`` (default
hyperparameters, ``random_state=seed``) is fitted

- in memory (``fit(X, y)``: a full shuffle every epoch, validation split stratified);
- streaming with a buffer of at least every row (a full shuffle);
- streaming with a 2,048-row buffer (row groups visited in random order, rows shuffled
  within two row groups at a time);

and scored on the test part: normalized Gini (mean ± sd over seeds, and the mean of the
paired differences to the in-memory fit, whose sd is the split-to-split noise).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from ltvkit.datasets import load_cdnow
from ltvkit.io import ParquetDataset
from ltvkit.metrics import normalized_gini
from ltvkit.nn import ZILNRegressor


def _write(folder: Path, X, y) -> ParquetDataset:
    frame = X.assign(ltv=np.asarray(y, dtype=float)).sort_index()
    for k, idx in enumerate(np.array_split(np.arange(len(frame)), 4)):
        frame.iloc[idx].to_parquet(folder / f"part-{k}.parquet", row_group_size=1024)
    return ParquetDataset(folder, target="ltv", features=list(X.columns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    X, y = load_cdnow()
    rows: dict[str, list[float]] = {
        "in memory": [],
        "stream, full shuffle": [],
        "stream, 2048-row buffer": [],
    }
    for seed in range(args.seeds):
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=seed)
        with tempfile.TemporaryDirectory() as tmp:
            data = _write(Path(tmp), X_tr, y_tr)
            variants = {
                "in memory": None,
                "stream, full shuffle": len(y_tr),
                "stream, 2048-row buffer": 2048,
            }
            for name, buffer in variants.items():
                model = ZILNRegressor(random_state=seed)
                if buffer is None:
                    model.fit(X_tr, y_tr)
                else:
                    model.fit(data, shuffle_buffer_rows=buffer)
                gini = normalized_gini(np.asarray(y_te), model.predict(X_te))
                rows[name].append(gini)
                print(f"seed {seed} {name}: gini {gini:.4f} ({model.n_iter_} epochs)", flush=True)
    base = np.array(rows["in memory"])
    print()
    print("| fit | normalized Gini (mean ± sd) | minus in memory (mean ± sd) |")
    print("|---|---|---|")
    for name, values in rows.items():
        v = np.array(values)
        d = v - base
        gini = f"{v.mean():.4f} ± {v.std(ddof=1):.4f}"
        print(f"| {name} | {gini} | {d.mean():+.4f} ± {d.std(ddof=1):.4f} |")


if __name__ == "__main__":
    main()
