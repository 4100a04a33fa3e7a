"""Throughput of data-parallel training: 1 vs 2 processes (torchrun) and 1 vs 2 Dask workers.

Run from the repository root::

    OMP_NUM_THREADS=1 python benchmarks/bench_distributed.py                  # 2M rows
    OMP_NUM_THREADS=1 python benchmarks/bench_distributed.py --rows 200000 --reps 1

What it measures (``make_ltv`` data, 20 features: 17 numeric + 3 categorical; every
process one thread, ``torch.set_num_threads(1)``):

1. **Deep models** (ZILN, default (64, 32) network; MEAN, default (512, 256) network),
   one training epoch, ``batch_size=1024`` (the global batch; ``--models ziln@8192``
   for another), no early stopping: the
   samples per second of skorch's epoch (``history[:, "dur"]``, so data generation and
   encoding are not timed) for

   - ``1 process``: a plain ``fit``;
   - ``2 processes``: ``torchrun --nproc_per_node 2``, gloo; each rank trains on half of
     every global batch (512 rows) and all-reduces the gradients every step;
   - ``2 processes, no communication``: the control. Two processes started the same
     way with ``LTVKIT_DISTRIBUTED=0``, each fitting half the rows with batch 512, i.e.
     the same per-process work without any collective: the ceiling of what 2
     processes can reach on this machine (shared cores, memory bandwidth).

   The best of ``--reps`` repetitions of each (other jobs on the machine only ever add
   time).

   Then the median time of one gloo all-reduce between the 2 processes of a
   ZILN-sized (4,100 floats) and a MEAN-sized (460,000 floats) gradient, both
   processes doing nothing else: the communication a step costs at best.
2. **TwoStageRegressor on Dask**: ``fit`` on a dask DataFrame (8 partitions, persisted
   on the workers first) on a ``LocalCluster`` of 1 and of 2 worker processes with one
   thread each, XGBoost backend, 100 rounds; and the in-memory fit with ``n_jobs=1``
   for reference. Samples per second = rows / fit seconds.

``--step-profile``: one more 2-process run per model in which every step's
communication is timed: the wait for the other rank, then the gradient all-reduce.

Prints a Markdown table and writes it with the raw numbers to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# -- one process's part ----------------------------------------------------------------
def _deep_worker(args: argparse.Namespace) -> None:
    import torch

    from ltvkit import distributed
    from ltvkit.datasets import make_ltv
    from ltvkit.nn import MEANRegressor, ZILNRegressor

    torch.set_num_threads(1)
    X, y = make_ltv(n_samples=args.rows, random_state=0)
    name, _, size = args.model.partition("@")  # "ziln@8192": another global batch size
    batch = int(size or 1024)
    rank = int(os.environ.get("RANK", "0"))
    if args.mode == "nocomm":  # each process: its half of the rows, half the batch
        half = args.rows // 2
        X, y = X.iloc[rank * half : (rank + 1) * half], y[rank * half : (rank + 1) * half]
        batch //= 2
    cls = {"ziln": ZILNRegressor, "mean": MEANRegressor}[name]
    model = cls(batch_size=batch, max_epochs=1, early_stopping=False, random_state=0)
    profile = _profile_steps() if args.mode == "ddp" and args.step_profile else None
    model.fit(X, y)
    dur = float(model.net_.history[-1]["dur"])
    if args.mode == "nocomm" or distributed.is_main_process():
        out = Path(args.out)
        record = {"dur": dur, "rows": len(y), "world": distributed.world_size()}
        if profile is not None:
            record.update(profile)
        out.with_name(f"{out.stem}.rank{rank}.json").write_text(json.dumps(record))


def _profile_steps() -> dict[str, float]:
    """Time what each training step spends communicating (``--step-profile``).

    Before the gradient all-reduce of ``DataParallel.on_grad_computed``, a one-float
    all-reduce waits for the other rank to finish its step ("wait"); the gradient
    all-reduce after it then finds both ranks ready ("allreduce": flattening, the
    transfer and the copy back). The extra collective costs about one small all-reduce
    per step, so the profiled run is a little slower than the plain one.
    """
    import torch

    from ltvkit.nn import _data_parallel

    totals = {"wait_s": 0.0, "allreduce_s": 0.0, "steps": 0}
    plain = _data_parallel.DataParallel.on_grad_computed

    def timed(self: object, *args: object, **kwargs: object) -> None:
        start = time.perf_counter()
        torch.distributed.all_reduce(torch.zeros(1))
        ready = time.perf_counter()
        plain(self, *args, **kwargs)
        totals["wait_s"] += ready - start
        totals["allreduce_s"] += time.perf_counter() - ready
        totals["steps"] += 1

    _data_parallel.DataParallel.on_grad_computed = timed
    return totals


def _allreduce_worker(args: argparse.Namespace) -> None:
    """Median seconds of one gloo all-reduce of a ZILN-sized and a MEAN-sized gradient."""
    import torch

    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo")
    times = {}
    # about the flat gradient of the default networks (4,032 and ~0.46 M parameters)
    for name, size in (("ziln", 4_100), ("mean", 460_000)):
        flat = torch.ones(size)
        for _ in range(50):  # warm-up: connections, allocations
            torch.distributed.all_reduce(flat)
        laps = []
        for _ in range(500):
            start = time.perf_counter()
            torch.distributed.all_reduce(flat)
            laps.append(time.perf_counter() - start)
        times[name] = sorted(laps)[len(laps) // 2]
    if torch.distributed.get_rank() == 0:
        Path(args.out).write_text(json.dumps(times))
    torch.distributed.destroy_process_group()


def _run_allreduce(tmp: Path) -> dict[str, float]:
    """Median all-reduce seconds between 2 torchrun processes (one thread each)."""
    out = tmp / "allreduce.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd += ["--nproc_per_node", "2", __file__, "--worker", "allreduce", "--out", str(out)]
    subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    return json.loads(out.read_text())


def _run_deep(
    model: str, rows: int, mode: str, tmp: Path, step_profile: bool = False
) -> float | dict[str, float]:
    """Samples per second of one configuration (one repetition); with ``step_profile``
    (2 processes), rank 0's record with its per-step communication times."""
    out = tmp / f"{model}-{mode}.json"
    for old in tmp.glob(f"{model}-{mode}.rank*.json"):
        old.unlink()
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    cmd = [sys.executable]
    if mode != "single":
        cmd += ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
        if mode == "nocomm":
            env["LTVKIT_DISTRIBUTED"] = "0"
    cmd += [__file__, "--worker", "deep", "--model", model, "--rows", str(rows)]
    cmd += ["--mode", mode, "--out", str(out)]
    if step_profile:
        cmd.append("--step-profile")
    subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    parts = [json.loads(p.read_text()) for p in sorted(tmp.glob(f"{model}-{mode}.rank*.json"))]
    if step_profile:
        return parts[0]
    if mode == "nocomm":
        return sum(p["rows"] for p in parts) / max(p["dur"] for p in parts)
    return parts[0]["rows"] / parts[0]["dur"]


def _run_dask(rows: int, workers: int | None) -> float:
    """Samples per second of TwoStageRegressor.fit (None: in memory, n_jobs=1)."""
    import dask.dataframe as dd
    from distributed import Client, LocalCluster, wait

    from ltvkit.boosting import TwoStageRegressor
    from ltvkit.datasets import make_ltv

    X, y = make_ltv(n_samples=rows, random_state=0)
    model = TwoStageRegressor(n_estimators=100, n_jobs=1, random_state=0)
    if workers is None:
        start = time.perf_counter()
        model.fit(X, y)
        return rows / (time.perf_counter() - start)
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        frame = client.persist(dd.from_pandas(X.assign(ltv=y), npartitions=8))
        wait(frame)
        start = time.perf_counter()
        model.fit(frame.drop(columns="ltv"), frame["ltv"])
        return rows / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument(
        "--models", default="ziln,mean", help="comma-separated; name@B: global batch size B"
    )
    parser.add_argument("--skip-dask", action="store_true")
    parser.add_argument(
        "--step-profile",
        action="store_true",
        help="also run the 2-process fit once with the communication of each step timed",
    )
    parser.add_argument("--out", default="bench_distributed.json")
    # internal: one process of a torchrun job
    parser.add_argument("--worker", choices=["deep", "allreduce"], default=None)
    parser.add_argument("--model", default="ziln")
    parser.add_argument("--mode", default="single")
    args = parser.parse_args()
    if args.worker == "deep":
        _deep_worker(args)
        return
    if args.worker == "allreduce":
        _allreduce_worker(args)
        return

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        for model in [m for m in args.models.split(",") if m]:
            best: dict[str, float] = {}
            for _ in range(args.reps):
                for mode in ("single", "ddp", "nocomm"):  # interleaved: drift hits all
                    rate = _run_deep(model, args.rows, mode, tmp)
                    best[mode] = max(best.get(mode, 0.0), rate)
                    print(f"{model} {mode}: {rate:,.0f} samples/s", flush=True)
            if args.step_profile:
                prof = _run_deep(model, args.rows, "ddp", tmp, step_profile=True)
                steps = max(prof["steps"], 1)
                best["profile_ms_per_step"] = {
                    "step": 1e3 * prof["dur"] / steps,
                    "wait": 1e3 * prof["wait_s"] / steps,
                    "allreduce": 1e3 * prof["allreduce_s"] / steps,
                }
                print(f"{model} 2 processes, per step (ms): {best['profile_ms_per_step']}")
            results[model] = best
        if any(args.models.split(",")):  # what a step waits for, without the step
            latency = _run_allreduce(tmp)
            print(
                "gloo all-reduce, median of 500: "
                + ", ".join(f"{k}-sized {v * 1e3:.3f} ms" for k, v in latency.items()),
                flush=True,
            )
            results["allreduce_seconds"] = latency
    if not args.skip_dask:
        best = {}
        for _ in range(args.reps):
            for name, workers in (("in memory", None), ("1 worker", 1), ("2 workers", 2)):
                rate = _run_dask(args.rows, workers)
                best[name] = max(best.get(name, 0.0), rate)
                print(f"two_stage {name}: {rate:,.0f} samples/s", flush=True)
        results["two_stage"] = best

    lines = [f"rows: {args.rows:,}; best of {args.reps}; samples per second"]
    deep = [m for m in results if m not in ("two_stage", "allreduce_seconds")]
    if deep:
        lines += [
            "",
            "| model | 1 process | 2 processes | speed-up | 2 processes, no communication "
            "(ceiling) | its speed-up |",
            "|---|---:|---:|---:|---:|---:|",
        ]
    for model in deep:
        r = results[model]
        lines.append(
            f"| {model} | {r['single']:,.0f} | {r['ddp']:,.0f} | "
            f"{r['ddp'] / r['single']:.2f}x | {r['nocomm']:,.0f} | "
            f"{r['nocomm'] / r['single']:.2f}x |"
        )
    profiled = [m for m in deep if "profile_ms_per_step" in results[m]]
    if profiled:
        lines += [
            "",
            "| model, 2 processes (profiled run) | ms per step | waiting for the other "
            "rank | gradient all-reduce |",
            "|---|---:|---:|---:|",
        ]
        for model in profiled:
            p = results[model]["profile_ms_per_step"]
            lines.append(f"| {model} | {p['step']:.1f} | {p['wait']:.2f} | {p['allreduce']:.2f} |")
    if "two_stage" in results:
        r = results["two_stage"]
        lines += [
            "",
            "| TwoStageRegressor (XGBoost, 100 rounds) | in memory, n_jobs=1 | Dask, 1 "
            "worker | Dask, 2 workers | 2 vs 1 worker |",
            "|---|---:|---:|---:|---:|",
            f"| fit | {r['in memory']:,.0f} | {r['1 worker']:,.0f} | {r['2 workers']:,.0f} | "
            f"{r['2 workers'] / r['1 worker']:.2f}x |",
        ]
    table = "\n".join(lines)
    print(table)
    Path(args.out).write_text(json.dumps({"rows": args.rows, "results": results}, indent=2))


if __name__ == "__main__":
    main()
