"""Training cost of OptDistRegressor per epoch, relative to ZILNRegressor on the same bottom.

Run from the repository root::

    OMP_NUM_THREADS=1 python benchmarks/bench_optdist.py                 # 200k rows, 5 reps
    OMP_NUM_THREADS=1 python benchmarks/bench_optdist.py --n-rows 50000 --reps 2

What it measures (``make_ltv`` data, 20 features: 17 numeric + 3 categorical; every
model with the same shared bottom ``hidden_units=(64, 32)``, batch size 1024, no early
stopping, no learning-rate schedule):

- **ZILN**: ``ZILNRegressor`` (bottom + one linear ZILN head).
- **OptDist L=1, 2, 4, 8**: ``OptDistRegressor`` defaults (components, the paper's SDNs,
  ``(64, 32, 32)``; selection network ``(64,)``) with ``n_components=L``. The ``L``
  components are one ``MLPBank``: one ``torch.baddbmm`` per layer for all of them.
- **OptDist L=4, loop**: the same model with the SDNs as a ``ModuleList`` of ``L``
  ordinary MLPs evaluated in a Python loop (what ltvkit does *not* do), to show what
  the batched evaluation saves.
- **ZILN (fused Adam)**: ZILN with the fused Adam kernel that OptDistRegressor uses, the
  like-for-like reference for the optimizer part of the cost.
- **OptDist L=4, SDNs (32,)**: SDNs with one hidden layer of 32 instead of the paper's
  ``(64, 32, 32)``, to show how much of the cost is the paper's SDN size.

Each configuration trains ``--epochs`` epochs per repetition; the configurations are
interleaved within each repetition (rotating the order) so that drifting load on a
shared machine hits all of them alike. The epoch time is process CPU time (a skorch
callback; robust when other jobs share the machine); the median over repetitions and
epochs is reported, with the ratio to ZILN's.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from skorch.callbacks import Callback
from torch import nn


class _EpochCPUTimer(Callback):
    """Process CPU time of each epoch (robust to other jobs on a shared machine)."""

    def on_epoch_begin(self, net, **kwargs) -> None:
        self._t0 = time.process_time()

    def on_epoch_end(self, net, **kwargs) -> None:
        net.history.record("cpu_dur", time.process_time() - self._t0)


def _classes():
    from ltvkit.nn import OptDistRegressor, ZILNRegressor
    from ltvkit.nn._layers import MLP

    class _LoopSDN(nn.Module):
        """L separate MLPs evaluated one after the other (the layout ltvkit avoids)."""

        def __init__(self, stacked) -> None:
            super().__init__()
            widths = [w.shape[1] for w in stacked.weights] + [stacked.weights[-1].shape[2]]
            self.nets = nn.ModuleList()
            for _ in range(stacked.n_networks):
                mlp = MLP(widths[0], widths[1:-1])
                self.nets.append(nn.Sequential(mlp, nn.Linear(widths[-2], widths[-1])))

        def forward(self, h):
            return torch.stack([net(h) for net in self.nets])  # (L, n, 3)

    class LoopOptDist(OptDistRegressor):
        def _build_module(self, spec, info):
            module = super()._build_module(spec, info)
            module.components = _LoopSDN(module.components)
            return module

    class FusedZILN(ZILNRegressor):
        def _optimizer_kwargs(self):
            return {**super()._optimizer_kwargs(), "optimizer__fused": True}

    return ZILNRegressor, OptDistRegressor, LoopOptDist, FusedZILN


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n-rows", type=int, default=200_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from ltvkit.datasets import make_ltv

    ziln_cls, optdist_cls, loop_cls, fused_ziln_cls = _classes()
    X, y = make_ltv(n_samples=args.n_rows, n_features=20, n_categorical=3, random_state=0)
    common = dict(
        hidden_units=(64, 32),
        batch_size=1024,
        max_epochs=args.epochs,
        early_stopping=False,
        learning_rate_schedule="none",
    )
    configs = {
        "ZILN": (ziln_cls, {}),
        "ZILN (fused Adam)": (fused_ziln_cls, {}),
        "OptDist L=1": (optdist_cls, {"n_components": 1}),
        "OptDist L=2": (optdist_cls, {"n_components": 2}),
        "OptDist L=4": (optdist_cls, {"n_components": 4}),
        "OptDist L=8": (optdist_cls, {"n_components": 8}),
        "OptDist L=4, loop over SDNs": (loop_cls, {"n_components": 4}),
        "OptDist L=4, SDNs (32,)": (
            optdist_cls,
            {"n_components": 4, "component_units": (32,)},
        ),
    }
    names = list(configs)
    times: dict[str, list[float]] = {name: [] for name in names}
    ratios: dict[str, list[float]] = {name: [] for name in names}
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), {args.n_rows:,} rows x 20 "
        f"features, {args.epochs} epoch(s) x {args.reps} rep(s) per configuration"
    )
    ziln_cls(random_state=0, **dict(common, max_epochs=1)).fit(X[:5000], y[:5000])  # warm-up
    for rep in range(args.reps):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        rep_times = {}
        for name in order:
            cls, extra = configs[name]
            model = cls(
                random_state=rep, callbacks=[("cpu_timer", _EpochCPUTimer())], **common, **extra
            ).fit(X, y)
            rep_times[name] = [float(v) for v in model.net_.history[:, "cpu_dur"]]
            times[name].extend(rep_times[name])
        base = np.median(rep_times["ZILN"])
        for name in names:
            ratios[name].append(float(np.median(rep_times[name]) / base))
        print(
            f"  rep {rep}: " + ", ".join(f"{n} {np.median(rep_times[n]):.2f}s" for n in names),
            flush=True,
        )
    print()
    print("| configuration | CPU s / epoch (median) | × ZILN (median of per-rep ratios) |")
    print("|---|---|---|")
    for name in names:
        print(
            f"| {name} | {np.median(times[name]):.2f} | {np.median(ratios[name]):.2f} "
            f"(reps: {', '.join(f'{r:.2f}' for r in ratios[name])}) |"
        )


if __name__ == "__main__":
    main()
