"""Running past one machine: ``torch.distributed`` helpers and distributed scoring.

A deep model's ``fit`` trains data-parallel when the process was started by
``torchrun`` with more than one process (``WORLD_SIZE > 1``): the process group is
initialised from torchrun's environment (``MASTER_ADDR``, ``MASTER_PORT``, ``RANK``,
``WORLD_SIZE``) by :func:`init_from_env`, with the timeout of
``LTVKIT_DISTRIBUTED_TIMEOUT`` (seconds, default 600) on every collective, so a rank
that dies cannot leave the others waiting forever. ``LTVKIT_DISTRIBUTED=0`` turns this
off (every process then fits on its own). Without ``torchrun`` nothing here does
anything: one process is a world of size 1 and rank 0.

The helpers are small wrappers over ``torch.distributed`` (gloo on CPU, NCCL on GPUs)
that work unchanged in a single process: :func:`all_reduce_sum` returns its input,
:func:`broadcast_object` returns the object, :func:`barrier` returns at once. See
``docs/scaling.md``.
"""

from __future__ import annotations

import datetime
import os
import sys
import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np

__all__ = [
    "all_reduce_sum",
    "barrier",
    "broadcast_object",
    "collective_timeout",
    "init_from_env",
    "is_distributed",
    "is_main_process",
    "local_rank",
    "rank",
    "score_dataset_dask",
    "shard",
    "shard_bounds",
    "world_size",
]

T = TypeVar("T")

#: Environment variable: ``0`` keeps ``fit`` single-process even under ``torchrun``.
ENV_SWITCH = "LTVKIT_DISTRIBUTED"
#: Environment variable: seconds a collective may wait for the other ranks.
ENV_TIMEOUT = "LTVKIT_DISTRIBUTED_TIMEOUT"
_DEFAULT_TIMEOUT_S = 600.0


def _torch_dist() -> Any:
    # torch is imported only when a distributed run is possible: ``import ltvkit`` and
    # the boosting models stay torch-free
    import torch.distributed as dist

    return dist if dist.is_available() else None


def _env_world_size() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ValueError(
            f"ltvkit: WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not an integer."
        ) from None


def collective_timeout() -> datetime.timedelta:
    """The timeout of every collective operation (``LTVKIT_DISTRIBUTED_TIMEOUT``).

    Returns
    -------
    datetime.timedelta
        ``LTVKIT_DISTRIBUTED_TIMEOUT`` seconds (a positive number), 600 s when unset.

    Examples
    --------
    >>> collective_timeout().total_seconds() > 0
    True
    """
    text = os.environ.get(ENV_TIMEOUT)
    if text is None or not text.strip():
        return datetime.timedelta(seconds=_DEFAULT_TIMEOUT_S)
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not (seconds > 0 and np.isfinite(seconds)):
        raise ValueError(f"ltvkit: {ENV_TIMEOUT}={text!r} must be a positive number of seconds.")
    return datetime.timedelta(seconds=seconds)


def init_from_env(device: str = "cpu") -> bool:
    """Join the ``torchrun`` process group if this process is one of several ranks.

    Called by a deep model's ``fit``; call it yourself only to use the helpers before
    that. Does nothing when ``WORLD_SIZE`` is unset or 1, when
    ``LTVKIT_DISTRIBUTED=0``, or when a process group already exists (yours is used as
    it is).

    Parameters
    ----------
    device : str, default="cpu"
        The model's device: ``"cuda"`` uses the NCCL backend (and this rank's
        ``LOCAL_RANK`` GPU), anything else gloo.

    Returns
    -------
    bool
        Whether this process is now part of a process group of more than one rank.

    Examples
    --------
    >>> init_from_env()  # a plain python process: a world of one
    False
    """
    if os.environ.get(ENV_SWITCH, "1").strip() == "0":
        return False
    dist = _torch_dist()
    if dist is None:
        return False
    if dist.is_initialized():
        return dist.get_world_size() > 1
    if _env_world_size() <= 1:
        return False
    missing = [v for v in ("MASTER_ADDR", "MASTER_PORT", "RANK") if v not in os.environ]
    if missing:
        raise ValueError(
            f"ltvkit: WORLD_SIZE={os.environ['WORLD_SIZE']} but {missing} unset; start "
            "the processes with torchrun (or set LTVKIT_DISTRIBUTED=0)."
        )
    backend = "gloo"
    if str(device).startswith("cuda"):
        import torch

        backend = "nccl"
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend=backend, timeout=collective_timeout())
    return dist.get_world_size() > 1


def is_distributed() -> bool:
    """Whether this process is one of several ranks of an initialised process group.

    Examples
    --------
    >>> is_distributed()
    False
    """
    if "torch" not in sys.modules:
        return False  # nothing can have started a process group without torch
    dist = _torch_dist()
    return dist is not None and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank in the process group (0 when not distributed).

    Examples
    --------
    >>> rank()
    0
    """
    return _torch_dist().get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of ranks in the process group (1 when not distributed).

    Examples
    --------
    >>> world_size()
    1
    """
    return _torch_dist().get_world_size() if is_distributed() else 1


def local_rank() -> int:
    """This process's rank on its machine (torchrun's ``LOCAL_RANK``; 0 when unset).

    Examples
    --------
    >>> isinstance(local_rank(), int)
    True
    """
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main_process() -> bool:
    """True on rank 0 (and in a single process): the one rank that writes files.

    Examples
    --------
    >>> is_main_process()
    True
    """
    return rank() == 0


def barrier() -> None:
    """Wait until every rank gets here (no-op in a single process).

    Examples
    --------
    >>> barrier()
    """
    if is_distributed():
        _torch_dist().barrier()


def all_reduce_sum(values: Any) -> np.ndarray:
    """Element-wise sum of ``values`` over all ranks, as float64 (merging statistics).

    Parameters
    ----------
    values : array-like of numbers
        The same shape on every rank (e.g. per-rank counts and sums).

    Returns
    -------
    ndarray of float64
        The sum over ranks (``values`` itself, as float64, in a single process).

    Examples
    --------
    >>> all_reduce_sum([1.0, 2.0]).tolist()
    [1.0, 2.0]
    """
    arr = np.array(values, dtype=np.float64)
    if not is_distributed():
        return arr
    import torch

    tensor = torch.from_numpy(arr.reshape(-1).copy())
    if torch.distributed.get_backend() == "nccl":
        tensor = tensor.cuda()
    _torch_dist().all_reduce(tensor)
    return tensor.cpu().numpy().reshape(arr.shape)


def broadcast_object(obj: T, src: int = 0) -> T:
    """``obj`` of rank ``src`` on every rank (a picklable object; identity in one process).

    Examples
    --------
    >>> broadcast_object({"seed": 3})
    {'seed': 3}
    """
    if not is_distributed():
        return obj
    box = [obj]
    _torch_dist().broadcast_object_list(box, src=src)
    return box[0]


def shard_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """``[start, stop)`` of rank ``rank``'s contiguous share of ``n`` items, balanced.

    Shares differ by at most one item; the first ``n % world_size`` ranks get the extra
    ones.

    Examples
    --------
    >>> [shard_bounds(10, r, 3) for r in range(3)]
    [(0, 4), (4, 7), (7, 10)]
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"ltvkit: rank={rank} is not in [0, world_size={world_size}).")
    base, extra = divmod(int(n), int(world_size))
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def shard(
    items: Sequence[T],
    rank: int | None = None,
    world_size: int | None = None,
    *,
    sizes: Sequence[float] | None = None,
) -> list[T]:
    """This rank's share of ``items`` (files, row groups...), balanced by count or size.

    Without ``sizes``, contiguous blocks of :func:`shard_bounds`. With ``sizes`` (e.g.
    rows per file), greedy longest-processing-time: items by decreasing size, each to
    the rank with the least so far (ties to the lower rank), so ranks read about as many
    rows each; every rank computes the same assignment, and the items keep their order
    within a share.

    Parameters
    ----------
    items : sequence
    rank, world_size : int or None, default=None
        None: this process's (:func:`rank`, :func:`world_size`).
    sizes : sequence of float or None, default=None
        The weight of each item.

    Returns
    -------
    list
        The items of this rank; an empty list when there are fewer items than ranks.

    Examples
    --------
    >>> shard(["a", "b", "c", "d", "e"], 1, 2)
    ['d', 'e']
    >>> shard(["a", "b", "c", "d"], 0, 2, sizes=[10, 1, 1, 9])
    ['a', 'c']
    """
    r = globals()["rank"]() if rank is None else int(rank)
    w = globals()["world_size"]() if world_size is None else int(world_size)
    items = list(items)
    if sizes is None:
        start, stop = shard_bounds(len(items), r, w)
        return items[start:stop]
    if len(sizes) != len(items):
        raise ValueError(f"ltvkit: shard: {len(sizes)} sizes for {len(items)} items.")
    shard_bounds(0, r, w)  # checks rank / world_size
    load = [0.0] * w
    owner = [0] * len(items)
    for i in sorted(range(len(items)), key=lambda i: (-float(sizes[i]), i)):
        k = min(range(w), key=lambda k: (load[k], k))
        owner[i] = k
        load[k] += float(sizes[i])
    return [item for i, item in enumerate(items) if owner[i] == r]


# -- scoring on a Dask cluster ----------------------------------------------------------
def _score_part(
    estimator: Any,
    dataset: Any,
    fragments: list,
    out_file: str,
    quantiles: Sequence[float] | None,
    horizon_names: Sequence[str] | None,
    batch_size: int,
) -> int:
    """One Dask task: score some row groups of ``dataset`` into the Parquet file ``out_file``.

    Written under a temporary name and renamed when complete, so a task that dies (and
    is retried elsewhere) never leaves a half-written part behind.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ltvkit._scoring import score_customers

    columns = [*dataset.features]
    if dataset.id_column is not None:
        columns.append(dataset.id_column)
    tmp = f"{out_file}.{os.getpid()}.tmp"
    writer = None
    rows = 0
    try:
        for batch in dataset.iter_batches(columns, batch_size=batch_size, fragments=fragments):
            X = dataset.feature_frame(batch)
            scores = score_customers(estimator, X, quantiles, horizon_names=horizon_names)
            scores = scores.reset_index(drop=True)
            if dataset.id_column is not None:
                ids = batch.column(batch.schema.get_field_index(dataset.id_column))
                scores.insert(0, dataset.id_column, ids.to_pandas())
            table = pa.Table.from_pandas(scores, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
            rows += len(scores)
        if writer is not None:
            writer.close()
            writer = None
            os.replace(tmp, out_file)
    except BaseException as exc:
        if writer is not None:
            writer.close()
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, Exception):
            where = sorted({f.file for f in fragments})
            raise RuntimeError(f"while scoring {where}: {type(exc).__name__}: {exc}") from exc
        raise
    return rows


def score_dataset_dask(
    estimator: Any,
    dataset: Any,
    out_path: str | os.PathLike,
    *,
    client: Any,
    quantiles: Sequence[float] | None = (0.1, 0.5, 0.9),
    horizon_names: Sequence[str] | None = None,
    batch_size: int = 65_536,
    partition: str = "file",
) -> Any:
    """Score a :class:`ltvkit.io.ParquetDataset` on a Dask cluster, one task per file.

    ``ltvkit.score_dataset(..., client=client)`` and ``ltvkit score --scheduler
    ADDRESS`` call this. The model is sent to every worker once; each task reads its
    file (or row group) of the dataset, scores it batch by batch
    (:func:`ltvkit.score_customers`, the id column first) and writes a Parquet part
    under a temporary name, renamed when complete. The workers must see the dataset
    and ``out_path`` at the same paths (a shared file system).

    A task whose worker dies is re-run on another worker by Dask (up to its
    ``distributed.scheduler.allowed-failures``, 3 by default); after that, or when a
    task fails, a ``RuntimeError`` names the file, and the parts written so far are
    removed (``out_path`` is never left half-written).

    Parameters
    ----------
    estimator : estimator
        A fitted ltvkit model or a Pipeline ending in one (picklable).
    dataset : ltvkit.io.ParquetDataset
    out_path : str or path-like
        Ending in ``.parquet`` / ``.pq``: one Parquet file, the parts joined in the
        dataset's row order (on the client, part by part). Otherwise: a directory of
        Parquet parts ``part-00000.parquet``..., one per task in the dataset's order
        (a Parquet dataset as Dask, Spark or ``ParquetDataset`` read it).
    client : distributed.Client
    quantiles, horizon_names
        As in :func:`ltvkit.score_customers`.
    batch_size : int, default=65536
        Rows scored at a time in a task.
    partition : {"file", "row_group"}, default="file"
        One task per file, or per row group (for datasets of a few large files).

    Returns
    -------
    pathlib.Path
        ``out_path``.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import pandas as pd
    >>> from distributed import Client, LocalCluster
    >>> from ltvkit import TwoStageRegressor
    >>> from ltvkit.datasets import make_ltv
    >>> from ltvkit.io import ParquetDataset
    >>> X, y = make_ltv(n_samples=400, random_state=0)
    >>> model = TwoStageRegressor(n_estimators=20, n_jobs=1, random_state=0).fit(X, y)
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for i in range(2):
    ...     X[i * 200 : (i + 1) * 200].assign(id=range(i * 200, (i + 1) * 200)).to_parquet(
    ...         folder / f"part-{i}.parquet")
    >>> data = ParquetDataset(folder, id_column="id")
    >>> with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
    ...     with Client(cluster) as client:
    ...         out = score_dataset_dask(model, data, folder / "scores.parquet", client=client)
    >>> scores = pd.read_parquet(out)
    >>> len(scores), scores["id"].is_monotonic_increasing
    (400, True)
    """
    from pathlib import Path

    from distributed import KilledWorker

    from ltvkit.io import ParquetDataset

    if not isinstance(dataset, ParquetDataset):
        raise ValueError(
            "ltvkit: score_dataset_dask scores an ltvkit.io.ParquetDataset, got "
            f"{type(dataset).__name__}."
        )
    if partition not in ("file", "row_group"):
        raise ValueError(f"ltvkit: partition must be 'file' or 'row_group', got {partition!r}.")
    out_path = Path(out_path)
    one_file = out_path.suffix.lower() in (".parquet", ".pq")
    parts_dir = (
        out_path.with_name(f".{out_path.name}.parts-{os.getpid()}") if one_file else out_path
    )
    parts_dir.mkdir(parents=True, exist_ok=not one_file)
    for stale in parts_dir.glob("part-*.parquet"):
        stale.unlink()  # an earlier run's parts: replaced, never mixed with this run's
    if partition == "file":
        units: list[list] = []
        for frag in dataset.fragments:
            if units and units[-1][0].file == frag.file:
                units[-1].append(frag)
            else:
                units.append([frag])
    else:
        units = [[frag] for frag in dataset.fragments]
    # hash=False: a key of its own, so a scatter of the same model by another call
    # (released when that call ends) cannot take this one's copy away
    model = client.scatter(estimator, broadcast=True, hash=False)
    run = uuid.uuid4().hex[:12]  # task keys of this run (a rerun is never a cache hit)
    futures = [
        client.submit(
            _score_part,
            model,
            dataset,
            unit,
            str(parts_dir / f"part-{i:05d}.parquet"),
            None if quantiles is None else list(quantiles),
            None if horizon_names is None else list(horizon_names),
            int(batch_size),
            key=f"ltvkit-score-{run}-{i}",
        )
        for i, unit in enumerate(units)
    ]
    try:
        client.gather(futures)
    except KilledWorker as exc:
        client.cancel(futures)  # no part is written after the cleanup below
        _remove_parts(parts_dir, one_file)
        raise RuntimeError(
            f"ltvkit: Dask lost the worker(s) scoring a part of {dataset._where()} too "
            f"many times ({exc}); the scores were not written. Check the workers' memory "
            "and logs."
        ) from exc
    except Exception as exc:
        client.cancel(futures)
        _remove_parts(parts_dir, one_file)
        raise RuntimeError(f"ltvkit: scoring on the Dask cluster failed: {exc}") from exc
    if not one_file:
        return out_path
    import pyarrow.parquet as pq

    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    writer = None
    try:
        for i in range(len(units)):
            part = parts_dir / f"part-{i:05d}.parquet"
            if not part.exists():  # a unit without rows
                continue
            table = pq.read_table(part)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
        if writer is not None:
            writer.close()
            writer = None
            os.replace(tmp, out_path)
    finally:
        if writer is not None:
            writer.close()
        if tmp.exists():
            tmp.unlink()
        _remove_parts(parts_dir, one_file)
    return out_path


def _remove_parts(parts_dir: Any, remove_dir: bool) -> None:
    for part in parts_dir.glob("part-*.parquet"):
        part.unlink()
    if remove_dir:
        import shutil

        shutil.rmtree(parts_dir, ignore_errors=True)
