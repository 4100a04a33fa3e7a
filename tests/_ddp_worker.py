"""A deep-model fit for tests/test_distributed.py, run by torchrun or by plain python.

Usage: ``python tests/_ddp_worker.py OUT_DIR [--fail-rank R] [--hang-rank R]``. Fits a
small ZILN model in float64 on ``make_ltv`` data (every rank the same rows; data-parallel under
torchrun) and, on rank 0, writes ``OUT_DIR/weights.npz`` (the module's weights and the
validation losses) and ``OUT_DIR/model.ltv`` (``ltvkit.save``). ``--fail-rank R``: rank
R raises in its second training batch; ``--hang-rank R``: rank R stops answering there
(sleeps), so the others wait in a collective until ``LTVKIT_DISTRIBUTED_TIMEOUT``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--fail-rank", type=int, default=None)
    parser.add_argument("--hang-rank", type=int, default=None)
    parser.add_argument("--parquet", type=Path, default=None)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--rows", type=int, default=600)
    parser.add_argument("--uneven", action="store_true", help="rank 1 gets 10 more rows")
    args = parser.parse_args(argv)

    import torch
    from skorch.callbacks import Callback

    import ltvkit
    from ltvkit import distributed
    from ltvkit.datasets import make_ltv
    from ltvkit.nn import ZILNRegressor

    torch.set_num_threads(1)

    class FailOnRank(Callback):
        def on_batch_begin(self, net, training=False, **kwargs):
            if not training or len(net.history[-1]["batches"]) < 2:
                return
            if distributed.rank() == args.fail_rank:
                raise RuntimeError(f"rank {args.fail_rank} fails on purpose")
            if distributed.rank() == args.hang_rank:
                time.sleep(3600)

    if args.parquet is None:
        extra = 10 if args.uneven and os.environ.get("RANK") == "1" else 0
        X, y = make_ltv(n_samples=args.rows + extra, random_state=0)
    else:
        from ltvkit.io import ParquetDataset

        data = ParquetDataset(args.parquet, target="ltv")
        X, y = (data, None) if args.stream else (data.read_pandas(), data.read_target())
    model = ZILNRegressor(
        hidden_units=(16, 8),
        dropout=0.0,
        batch_size=64,
        max_epochs=4,
        learning_rate=3e-3,
        learning_rate_schedule="cosine",
        gradient_clip=5.0,
        precision="float64",
        random_state=0,
        callbacks=None if args.fail_rank is None and args.hang_rank is None else [FailOnRank()],
    )
    model.fit(X, y)
    if distributed.is_main_process():
        args.out.mkdir(parents=True, exist_ok=True)
        weights = {k: v.numpy() for k, v in model.net_.module_.state_dict().items()}
        valid = np.asarray(model.net_.history[:, "valid_loss"], dtype=np.float64)
        np.savez(
            args.out / "weights.npz",
            _valid_loss=valid,
            _world=np.array(distributed.world_size()),
            **weights,
        )
    ltvkit.save(model, args.out / "model.ltv")  # writes on rank 0 only
    print(f"rank {distributed.rank()} of {distributed.world_size()} done", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
