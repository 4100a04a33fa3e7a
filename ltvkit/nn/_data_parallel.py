"""Data-parallel training of the deep models across ``torch.distributed`` ranks.

:class:`BaseDeepRegressor` uses these when ``fit`` runs under ``torchrun`` with more than
one process (:func:`ltvkit.distributed.init_from_env`):

- :class:`DataParallel`: the skorch callback that makes the ranks one optimizer
  (weights broadcast, gradients all-reduced, epoch losses merged);
- :func:`shard_validation`: each rank's share of the in-memory validation rows;
- :class:`ShardedStreamingBatchIterator`: each rank's share of a
  :class:`~ltvkit.io.ParquetDataset`'s row groups, with the same number of steps on
  every rank.

See ``docs/scaling.md``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback

from ltvkit import distributed as _dist

if TYPE_CHECKING:  # pragma: no cover
    from ltvkit.nn._base import TensorDictDataset

__all__ = ["DataParallel", "ShardedStreamingBatchIterator", "shard_validation"]


class DataParallel(Callback):
    """Data-parallel training across ``torch.distributed`` ranks, as skorch callbacks.

    - ``on_train_begin``: rank 0's weights (module and criterion) go to every rank.
    - ``on_grad_computed``: one all-reduce per step of every gradient, weighted by the
      rows each rank had in the step, so the result is the gradient of the mean loss
      over the global batch, as one process would compute it. Runs before gradient
      clipping (which then clips the global gradient, identically on every rank).
    - ``on_epoch_end``: ``train_loss`` / ``valid_loss`` become the means over all ranks'
      rows (each rank evaluates its shard of the validation rows), before early
      stopping and the learning-rate schedule read them: every rank stops in the same
      epoch and keeps the same weights.

    Why not ``DistributedDataParallel``: it renames the module (``module.`` prefixes in
    ``state_dict``, attributes that model callbacks set on ``net.module_`` would land on
    the wrapper) and refuses parameters a step does not use. See ``docs/scaling.md``.
    """

    def on_train_begin(self, net: NeuralNet, **kwargs: Any) -> None:
        dist = torch.distributed
        with torch.no_grad():
            for part in (net.module_, net.criterion_):
                for tensor in part.state_dict().values():
                    dist.broadcast(tensor, src=0)

    def on_grad_computed(
        self,
        net: NeuralNet,
        named_parameters: Any,
        batch: Any = None,
        training: bool = False,
        **kwargs: Any,
    ) -> None:
        params = [p for _, p in named_parameters if p.requires_grad]
        if not params:
            return
        from ltvkit.nn._base import _tree_len

        rows = float(_tree_len(batch[0]))
        dtype = params[0].dtype
        parts = [
            (p.grad.reshape(-1).to(dtype) * rows)
            if p.grad is not None
            else torch.zeros(p.numel(), dtype=dtype, device=p.device)
            for p in params
        ]
        flags = [0.0 if p.grad is None else 1.0 for p in params]
        parts.append(torch.tensor([*flags, rows], dtype=dtype, device=params[0].device))
        flat = torch.cat(parts)
        torch.distributed.all_reduce(flat)
        total = flat[-1]
        offset = 0
        for i, p in enumerate(params):
            grad = flat[offset : offset + p.numel()].view_as(p).div_(total)
            offset += p.numel()
            if p.grad is not None:
                p.grad.copy_(grad)
            elif float(flat[-1 - len(params) + i]) > 0:  # another rank's step used it
                p.grad = grad.to(p.dtype).clone()

    def on_epoch_end(self, net: NeuralNet, **kwargs: Any) -> None:
        epoch = net.history[-1]
        for prefix in ("train", "valid"):
            name = f"{prefix}_loss"
            if name not in epoch:
                continue
            sums = [
                (b[name] * b[f"{prefix}_batch_size"], b[f"{prefix}_batch_size"])
                for b in epoch["batches"]
                if name in b
            ]
            local = np.sum(np.asarray(sums, dtype=np.float64).reshape(-1, 2), axis=0)
            total, rows = _dist.all_reduce_sum(local)
            value = float(total / rows) if rows > 0 else float("nan")
            net.history.record(name, value)
            if f"{name}_best" in epoch:
                before = [h[name] for h in net.history[:-1] if name in h]
                net.history.record(f"{name}_best", bool(not before or value < min(before)))


def shard_validation(valid_ds: TensorDictDataset | None) -> TensorDictDataset | None:
    """This rank's contiguous share of the validation rows (all of them when there are
    fewer rows than ranks; the epoch's loss is the row-weighted mean over ranks either
    way)."""
    if valid_ds is None or valid_ds.rows is None or len(valid_ds) < _dist.world_size():
        return valid_ds
    from ltvkit.nn._base import TensorDictDataset

    start, stop = _dist.shard_bounds(len(valid_ds), _dist.rank(), _dist.world_size())
    return TensorDictDataset(valid_ds.X, valid_ds.y, valid_ds.rows[start:stop], valid_ds.targets)


def _streaming_base() -> type:
    from ltvkit.nn._streaming import StreamingBatchIterator

    return StreamingBatchIterator


class ShardedStreamingBatchIterator(_streaming_base()):  # type: ignore[misc]
    """A rank's share of a streaming epoch: its row groups, as many steps as every rank.

    Each epoch every rank draws the same random order of the dataset's row groups (same
    seed), assigns them to ranks balanced by rows (:func:`ltvkit.distributed.shard`)
    and reads only its own; so over the epochs a rank reads different row groups.
    ``batch_size`` is the global batch: a rank's batches have ``batch_size //
    world_size`` rows. Every rank makes the same number of steps (a step is a
    collective): the fewest whole batches any rank's share holds this epoch; the
    rows past them (less than a row group's worth, differing by epoch) wait for a
    later epoch. Validation (``shuffle=False``): each rank evaluates its share of the
    row groups, in order, all of it (validation has no per-step collective).

    Parameters
    ----------
    dataset : StreamingSource
    batch_size : int
        The global batch size.
    shuffle : bool, default=False
    seed : int or None, default=None
    shuffle_buffer_rows : int, default=262144
    rank, world_size : int or None, default=None
        None: this process's.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        shuffle: bool = False,
        seed: int | None = None,
        shuffle_buffer_rows: int = 262_144,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        self.rank = _dist.rank() if rank is None else int(rank)
        self.world_size = _dist.world_size() if world_size is None else int(world_size)
        local = max(1, int(batch_size) // self.world_size) if shuffle else int(batch_size)
        super().__init__(dataset, local, shuffle, seed, shuffle_buffer_rows)
        self._steps: int | None = None

    def _rows_by_fragment(self, fragments: list) -> list[int]:
        """Rows of this side (training / validation) in each row group."""
        from ltvkit.nn._streaming import validation_mask

        source = self.source
        if source.valid_fraction is None or source.side == "all":
            return [f.num_rows for f in fragments]
        out = []
        for f in fragments:
            held = int(
                validation_mask(
                    f.start, f.num_rows, source.valid_fraction, source.valid_seed
                ).sum()
            )
            out.append(held if source.side == "valid" else f.num_rows - held)
        return out

    def _assignment(self) -> list:
        fragments = list(self.source.dataset.fragments)
        if self.shuffle:
            order = torch.randperm(len(fragments), generator=self._generator).tolist()
            fragments = [fragments[i] for i in order]
        rows = self._rows_by_fragment(fragments)
        owner = {
            id(f): r
            for r in range(self.world_size)
            for f in _dist.shard(fragments, r, self.world_size, sizes=rows)
        }
        per_rank = [0] * self.world_size
        for f, n in zip(fragments, rows, strict=True):
            per_rank[owner[id(f)]] += n
        self._steps = min(per_rank) // self.batch_size if self.shuffle else None
        return [f for f in fragments if owner[id(f)] == self.rank]

    def _encoded_chunks(self) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor]]:
        # the base's reader thread, on this rank's row groups (in this epoch's order)
        from ltvkit.nn._streaming import _QUEUE_BATCHES

        chunks: queue.Queue = queue.Queue(maxsize=_QUEUE_BATCHES)
        stop = threading.Event()
        reader = threading.Thread(
            target=self._read,
            args=(self._assignment(), chunks, stop),
            daemon=True,
            name="ltvkit-reader",
        )
        reader.start()
        try:
            while True:
                item = chunks.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            reader.join()

    def __len__(self) -> int:
        return max(1, self._steps or 0)

    def __iter__(self) -> Iterator[tuple[dict[str, Any], Any]]:
        batches = super().__iter__()
        if not self.shuffle:
            yield from batches
            return
        steps = None
        try:
            for i, batch in enumerate(batches):
                steps = self._steps if steps is None else steps
                if i >= steps:
                    break
                yield batch
        finally:
            batches.close()  # stops this epoch's reader thread
        if steps is not None and steps < 1:
            raise ValueError(
                "ltvkit: a data-parallel streaming fit needs at least one batch of "
                f"{self.batch_size} rows per rank and epoch; some rank's share has fewer "
                "rows. Use fewer ranks or a smaller batch_size."
            )
