"""Inference cost of CCORNetRegressor at the paper's default sizes vs the paper's 0.79 ms/row.

Run from the repository root::

    OMP_NUM_THREADS=1 python benchmarks/bench_ccornet.py                   # 200k rows, 5 reps
    OMP_NUM_THREADS=1 python benchmarks/bench_ccornet.py --n-rows 50000 --reps 3

The paper (Table 5) reports 0.79 ms per row for the full CC-OR-Net and 0.64 ms without
the high-value augmentation module, on a 14-core CPU (TensorFlow 1.15), with ~1.04M
parameters and ~2.06M FLOPs per row. This script fits the model once at the paper's
default sizes (encoder [400, 300, 200], residual blocks [200, 100], whale tower
[300, 200]; one epoch on 20,000 rows, enough to time inference) on ``make_ltv`` data with
20 features (17 numeric, 3 categorical), then times ``predict`` end to end (validation,
encoding, batched forward in blocks of 16,384 rows, output checks) on ``--n-rows`` rows.

Configurations are timed interleaved (one round = every configuration once, ``--reps``
rounds, median reported), so drifting load on a shared machine hits all alike, and both
process CPU time and wall time are recorded: with one thread, CPU time is what the wall
time would be on an idle core, while wall time on a busy shared machine includes the wait
for a core (the load average is printed). Configurations:
full model (``prediction="hard"``, the paper's output) and without augmentation, each
with 1 and 2 torch threads, and the full model with ``prediction="expected"`` (ltvkit's
default: the encoder and the cascade only, the bucket distribution times the training
bucket means). It also counts parameters and the multiply-adds of the hard prediction
pass (2 FLOPs each). The target: at least 10x faster per row than the paper's 0.79 ms.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from torch import nn

PAPER_MS = {"full": 0.79, "no augmentation": 0.64}


def _flops_per_row(model, X) -> float:
    """Multiply-adds x 2 of every Linear layer in one hard prediction pass, per row."""
    macs = 0

    def hook(module: nn.Linear, inputs, output) -> None:
        nonlocal macs
        rows = inputs[0].numel() // inputs[0].shape[-1]
        macs += rows * module.in_features * module.out_features

    handles = [
        m.register_forward_hook(hook)
        for m in model.net_.module_.modules()
        if isinstance(m, nn.Linear)
    ]
    try:
        model.predict(X)
    finally:
        for h in handles:
            h.remove()
    return 2.0 * macs / len(X)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n-rows", type=int, default=200_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    from ltvkit.datasets import make_ltv
    from ltvkit.nn import CCORNetRegressor

    torch.set_num_threads(1)
    X, y = make_ltv(n_samples=args.n_rows, n_features=20, n_categorical=3, random_state=0)
    fit_rows = min(20_000, args.n_rows)
    # the paper's output: the hard pass evaluates every module (FLOPs are counted on it)
    fit_kw = dict(prediction="hard", max_epochs=1, early_stopping=False, random_state=0)
    models = {
        "full": CCORNetRegressor(**fit_kw).fit(X[:fit_rows], y[:fit_rows]),
        "no augmentation": CCORNetRegressor(augmentation=False, **fit_kw).fit(
            X[:fit_rows], y[:fit_rows]
        ),
    }
    full = models["full"]
    n_params = {k: sum(p.numel() for p in m.net_.module_.parameters()) for k, m in models.items()}
    flops = {k: _flops_per_row(m, X[:20_000]) for k, m in models.items()}
    print(
        f"torch {torch.__version__}; predict on {args.n_rows:,} rows x 20 features; "
        f"{args.reps} interleaved rounds (median)"
    )
    for k in models:
        print(
            f"  {k}: {n_params[k] / 1e6:.2f}M parameters, {flops[k] / 1e6:.2f}M FLOPs per row "
            f"(hard pass)"
        )

    configs = []
    for threads in args.threads:
        configs.append(("full", "hard", threads))
        configs.append(("no augmentation", "hard", threads))
    configs.append(("full", "expected", args.threads[0]))
    for name, mode, threads in configs:  # warm-up
        torch.set_num_threads(threads)
        models[name].set_params(prediction=mode).predict(X[:20_000])
    wall: dict[tuple, list[float]] = {c: [] for c in configs}
    cpu: dict[tuple, list[float]] = {c: [] for c in configs}
    load_before = os.getloadavg()[0]
    for _ in range(args.reps):
        for config in configs:
            name, mode, threads = config
            torch.set_num_threads(threads)
            model = models[name].set_params(prediction=mode)
            t0, c0 = time.perf_counter(), time.process_time()
            pred = model.predict(X)
            cpu[config].append(time.process_time() - c0)
            wall[config].append(time.perf_counter() - t0)
            assert np.isfinite(pred).all()
    full.set_params(prediction="hard")
    load_after = os.getloadavg()[0]

    print(
        f"\nmachine load average (1 min) {load_before:.1f} before, {load_after:.1f} after, on "
        f"{os.cpu_count()} cores: wall time includes waiting for a core, CPU time does not"
    )
    print()
    print(
        "| model | prediction | threads | CPU ms per row | wall ms per row | paper ms per row "
        "| speed-up (CPU) | speed-up (wall) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    speedups = []
    for config in configs:
        name, mode, threads = config
        c_ms = 1000.0 * float(np.median(cpu[config])) / args.n_rows
        w_ms = 1000.0 * float(np.median(wall[config])) / args.n_rows
        paper = PAPER_MS[name]
        print(
            f"| CC-OR-Net {name} | {mode} | {threads} | {c_ms:.4f} | {w_ms:.4f} | {paper} | "
            f"{paper / c_ms:.0f}x | {paper / w_ms:.0f}x |"
        )
        if name == "full" and mode == "hard" and threads == 1:
            speedups.append(paper / c_ms)
    best = max(speedups)
    verdict = "met" if best >= 10 else "NOT met"
    print(
        f"\ntarget >= 10x faster than the paper's 0.79 ms/row (full model, hard, 1 thread, "
        f"CPU time = wall time on an idle core): {best:.0f}x -> {verdict}"
    )


if __name__ == "__main__":
    main()
