"""Fitting and scoring from Parquet (streaming) against in memory: speed and peak RSS.

Run from the repository root::

    OMP_NUM_THREADS=1 python benchmarks/bench_streaming.py --rows 1000000 10000000
    OMP_NUM_THREADS=1 python benchmarks/bench_streaming.py --rows 50000000 --modes stream

Data: ``ltvkit.datasets.make_ltv_parquet`` (50 features: 47 numeric + 3 categorical,
1M-row files, 65,536-row row groups), written once under ``--data-dir``. Every
measurement runs in a fresh subprocess with one thread (``OMP_NUM_THREADS=1``,
``torch.set_num_threads(1)``, ``n_jobs=1``):

- ``memory``: ``pd.read_parquet`` of the table, then ``fit(X, y)`` and ``predict(X)``;
- ``stream``: ``fit(ParquetDataset(...))`` and ``ltvkit.score_dataset`` to a Parquet file
  of ids and scores (``quantiles=None``: expected value and P(y > 0)).

Reported per (model, rows, mode): fit seconds and fit rows/s (rows x epochs / s for
ZILN), scoring rows/s (memory: ``predict`` on the frame; stream: reading, scoring and
writing the scores file), the process's peak RSS (``ru_maxrss``) and its peak over the
process after imports (the in-memory mode's includes the loaded table). The numbers
are CPU time where noted, since other jobs share the machine. Results go to
``--out`` as JSON and are printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

CHILD = textwrap.dedent(
    """
    import json, os, resource, sys, time
    import numpy as np, pandas as pd, torch
    torch.set_num_threads(1)
    import ltvkit
    from ltvkit.io import ParquetDataset

    model_name, mode, path, epochs, scores_out = sys.argv[1:6]
    epochs = int(epochs)

    def rss_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    def cpu():
        t = os.times()
        return t.user + t.system

    if model_name == "ziln":
        model = ltvkit.ZILNRegressor(max_epochs=epochs, early_stopping=False, random_state=0)
    else:
        model = ltvkit.TwoStageRegressor(n_jobs=1, random_state=0)
    base = rss_mb()
    data = ParquetDataset(path, target="ltv", id_column="customer_id")
    out = {"model": model_name, "mode": mode, "rows": data.num_rows,
           "features": len(data.features), "epochs": epochs if model_name == "ziln" else None}
    if mode == "memory":
        X = pd.read_parquet(path, columns=data.features)
        y = data.read_target()
        out["loaded_mb"] = rss_mb() - base
        t, c = time.perf_counter(), cpu()
        model.fit(X, y)
        out["fit_s"], out["fit_cpu_s"] = time.perf_counter() - t, cpu() - c
        out["fit_peak_mb"] = rss_mb()
        t, c = time.perf_counter(), cpu()
        model.predict(X)
        model.predict_nonzero_proba(X)
        out["score_s"], out["score_cpu_s"] = time.perf_counter() - t, cpu() - c
    else:
        t, c = time.perf_counter(), cpu()
        model.fit(data)
        out["fit_s"], out["fit_cpu_s"] = time.perf_counter() - t, cpu() - c
        out["fit_peak_mb"] = rss_mb()
        t, c = time.perf_counter(), cpu()
        ltvkit.score_dataset(model, data, scores_out, quantiles=None)
        out["score_s"], out["score_cpu_s"] = time.perf_counter() - t, cpu() - c
    out["base_mb"] = base
    out["peak_mb"] = rss_mb()
    print("RESULT " + json.dumps(out))
    """
)


def _data(folder: Path, rows: int) -> Path:
    from ltvkit.datasets import make_ltv_parquet

    path = folder / f"ltv_{rows}x50"
    marker = path / "_complete"
    if not marker.exists():
        make_ltv_parquet(path, rows, chunk_rows=1_000_000, n_features=50, n_categorical=3)
        marker.touch()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--models", nargs="+", default=["ziln", "two_stage"])
    parser.add_argument("--modes", nargs="+", default=["memory", "stream"])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--data-dir", default="/tmp/ltvkit_bench_streaming")
    parser.add_argument("--out", default="bench_streaming.json")
    args = parser.parse_args()
    folder = Path(args.data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    results = []
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for rows in args.rows:
        path = _data(folder, rows)
        for model in args.models:
            for mode in args.modes:
                cmd = [sys.executable, "-c", CHILD, model, mode, str(path), str(args.epochs),
                       str(folder / f"scores_{rows}_{model}.parquet")]  # fmt: skip
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
                line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
                if proc.returncode or not line:
                    res = {"model": model, "mode": mode, "rows": rows,
                           "error": proc.stderr.strip().splitlines()[-1:]}  # fmt: skip
                else:
                    res = json.loads(line[0][len("RESULT ") :])
                results.append(res)
                print(json.dumps(res), flush=True)
                Path(args.out).write_text(json.dumps(results, indent=1))
    print()
    head = "model | rows | mode | fit s | fit rows/s | score rows/s (CPU) | peak MiB | over base"
    print(f"| {head} |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['model']} | {r['rows']:,} | {r['mode']} | error: {r['error']} |")
            continue
        passes = r["epochs"] or 1
        print(
            f"| {r['model']} | {r['rows']:,} | {r['mode']} | {r['fit_s']:.0f} | "
            f"{r['rows'] * passes / r['fit_s']:,.0f} | "
            f"{r['rows'] / r['score_cpu_s']:,.0f} | {r['peak_mb']:,.0f} | "
            f"{r['peak_mb'] - r['base_mb']:,.0f} |"
        )


if __name__ == "__main__":
    main()
