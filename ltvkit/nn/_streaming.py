"""Training a deep model on an :class:`ltvkit.io.ParquetDataset` with bounded memory.

:class:`BaseDeepRegressor` uses these when ``fit`` gets a dataset instead of a frame:

- :func:`scan_dataset`: one streaming pass that checks the data, learns the column
  schema, the encoder's statistics (:class:`~ltvkit.nn._encoder.EncoderStatistics`)
  and reads the target (the one full-length array kept: 8 bytes a row);
- :class:`StreamingSource` / :class:`StreamingBatchIterator`: the skorch "dataset" and
  "iterator" of a streaming epoch. A background thread reads record batches, encodes
  them to tensors and queues them (I/O and encoding overlap the training step); the
  training loop shuffles within a buffer of ``shuffle_buffer_rows`` rows, after
  visiting the row groups in a random order;
- :func:`validation_mask`: the held-out rows for early stopping, a hash of each row's
  position (deterministic, the same in every epoch, independent of batching).
"""

from __future__ import annotations

import queue
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from ltvkit.base import (
    _FEATURE_LIMIT,
    _NO_LEVEL,
    DataQualityWarning,
    TabularSchema,
    _check_magnitude,
    _check_text_values,
    _is_categorical,
    _to_frame,
    _warn_text_column,
)
from ltvkit.io._dataset import ParquetDataset, batch_to_frame
from ltvkit.nn._encoder import EncoderStatistics, TabularEncoder

__all__ = [
    "StreamingBatchIterator",
    "StreamingSource",
    "encode_arrow",
    "scan_dataset",
    "validation_mask",
]

# Rows per record batch read from Parquet in training.
_READ_ROWS = 32_768
# Encoded record batches queued ahead of the training loop by the reader thread.
_QUEUE_BATCHES = 4

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def validation_mask(start: int, n: int, fraction: float, seed: int) -> np.ndarray:
    """Whether each of the rows ``start .. start + n - 1`` is held out for validation.

    A splitmix64 hash of (row position, seed) mapped to [0, 1) and compared with
    ``fraction``: about ``fraction`` of the rows, the same rows in every epoch and for
    any batching or file layout of the same row order.

    Examples
    --------
    >>> validation_mask(0, 10, 0.5, seed=0).tolist() == validation_mask(0, 10, 0.5, 0).tolist()
    True
    >>> round(float(validation_mask(0, 100_000, 0.1, seed=1).mean()), 2)
    0.1
    """
    with np.errstate(over="ignore"):
        z = np.arange(start, start + n, dtype=np.uint64) + np.uint64(seed) * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53 < fraction


@dataclass
class ScanResult:
    """What :func:`scan_dataset` learns in its pass."""

    schema: TabularSchema
    stats: EncoderStatistics
    y: np.ndarray


def _sorted_levels(values: list) -> pd.Index:
    try:
        return pd.Index(sorted(values), dtype=object)
    except TypeError:  # mixed types: order by their text
        return pd.Index(sorted(values, key=str), dtype=object)


def scan_dataset(dataset: ParquetDataset, statistics: bool = True) -> ScanResult:
    """One pass over ``dataset``: checks, schema, encoder statistics and the target.

    Every batch goes through the checks of an in-memory ``fit`` (dtypes, inf and huge
    values, NUL characters); a column's kind (numeric or categorical) is fixed by the
    first batch, and the categorical levels are every value seen in the pass (text
    compared as text, as in memory). ``statistics=False``: no moments (a booster needs
    none), only the category counts that give the levels.
    """
    y_cols = dataset.target_columns
    n = dataset.num_rows
    y = np.empty((n, len(y_cols)) if not isinstance(dataset.target, str) else n)
    schema: TabularSchema | None = None
    stats: EncoderStatistics | None = None
    text_columns: set[str] = set()
    for pos, batch in dataset.iter_batches(
        [*dataset.features, *y_cols], batch_size=65_536, with_position=True
    ):
        m = batch.num_rows
        for j in range(len(y_cols)):
            values = batch.column(len(dataset.features) + j)
            target = y[pos : pos + m] if y.ndim == 1 else y[pos : pos + m, j]
            target[:] = values.to_numpy(zero_copy_only=False)
        features = batch.select(dataset.features)
        if schema is None:
            frame = batch_to_frame(features)
            frame = _checked(_to_frame, frame, dataset, pos, m)  # every check, once
            schema = TabularSchema()
            schema.from_frame = True
            schema.columns = list(frame.columns)
            schema.categorical_columns = [c for c in frame.columns if _is_categorical(frame[c])]
            schema.numeric_columns = [
                c for c in schema.columns if c not in schema.categorical_columns
            ]
            text_columns = {
                c
                for c in schema.categorical_columns
                if not isinstance(frame[c].dtype, pd.CategoricalDtype)
            }
            stats = EncoderStatistics(
                schema.numeric_columns if statistics else [], schema.categorical_columns, n
            )
        # numeric columns read from arrow, one row per column; other types via pandas
        num = _arrow_numeric(features, schema.numeric_columns)
        if num is None:
            frame = batch_to_frame(features)
            for col in schema.numeric_columns:
                if _is_categorical(frame[col]):
                    raise ValueError(
                        f"ltvkit: column {col!r} is numeric in the first rows but not in "
                        f"{_file_of(dataset, pos)}."
                    )
            num = np.ascontiguousarray(
                TabularEncoder._numeric_block(frame, schema.numeric_columns).T
            )
        else:
            frame = batch_to_frame(features.select(schema.categorical_columns))
        # the magnitude checks of an in-memory fit, column by column only where the
        # whole block's extremes call for it
        for j in np.flatnonzero(_beyond_limit(num)):
            col = schema.numeric_columns[j]
            _checked(_check_magnitude, num[j], f"column {col!r} of X", dataset, pos, m)
        for col in schema.categorical_columns:
            _checked(_check_text_values, frame[col], col, dataset, pos, m)
        for col in text_columns:
            frame[col] = frame[col].astype("string")  # compare as text, as in memory
        stats.update(frame, pos, num if statistics else None)  # type: ignore[union-attr]
    assert schema is not None and stats is not None
    schema._string_levels = set(text_columns)
    for col in schema.categorical_columns:
        counts = stats.counts[col]
        levels = _sorted_levels(list(counts.index))
        if col in text_columns:
            _warn_text_column(col, levels, int(counts.sum()))
        if not len(levels):
            warnings.warn(
                f"ltvkit: column {col!r} has no value at all (every row is missing), so "
                "it carries no information; drop it.",
                DataQualityWarning,
                stacklevel=4,
            )
            levels = pd.Index([_NO_LEVEL], dtype=object)
        schema.categories[col] = levels
    return ScanResult(schema, stats, y)


def _beyond_limit(num: np.ndarray) -> np.ndarray:
    """Per row of ``num`` (a column's values): any value (NaN aside) the magnitude check
    of the input validation refuses (infinite, or beyond ``_FEATURE_LIMIT``)."""
    high = np.fmax.reduce(num, axis=1, initial=-np.inf)
    low = np.fmin.reduce(num, axis=1, initial=np.inf)
    return (high > _FEATURE_LIMIT) | (low < -_FEATURE_LIMIT)


def _arrow_numeric(batch: Any, columns: list[str]) -> np.ndarray | None:
    """``columns`` of a record batch as float64, one row per column (NaN for null, as
    pandas reads them); None if one is not of integer, float or null-free boolean
    type (the caller takes the pandas path)."""
    import pyarrow as pa

    types = pa.types
    num = np.empty((len(columns), batch.num_rows))
    for j, col in enumerate(columns):
        arr = batch.column(col)
        kind = arr.type
        if not (
            types.is_integer(kind)
            or types.is_floating(kind)
            or (types.is_boolean(kind) and arr.null_count == 0)
        ):
            return None
        num[j] = arr.to_numpy(zero_copy_only=False)
    return num


def encode_arrow(
    batch: Any,
    schema: TabularSchema,
    encoder: TabularEncoder,
    dtype: type[np.floating],
    cache: dict | None = None,
) -> dict[str, np.ndarray] | None:
    """``encoder.transform(schema._transform_frame(batch_to_frame(batch)))``, from the
    arrow columns without building a DataFrame: the same arrays, about half the time.

    Numeric columns of integer, float or null-free boolean type are read as float64
    (NaN for null, as pandas does); a categorical column of dictionary or string type
    goes through the pandas typing of :class:`~ltvkit.base.TabularSchema` once per
    dictionary value, not once per row. None (use the pandas path, whose input checks
    give the errors) for any other type and for a value those checks refuse: an
    infinite or huge number, text with a NUL character. ``cache``: a dict kept between
    calls, for the positions of the last dictionary of each column (the batches of a
    row group share one).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    types = pa.types
    n = batch.num_rows
    num = None
    if encoder.numeric_columns_:
        num = _arrow_numeric(batch, encoder.numeric_columns_)
        if num is None or _beyond_limit(num).any():
            return None
    positions = None
    if encoder.ordinal_ is not None:
        positions = np.empty((n, len(encoder._encoded_cat_cols)), dtype=np.int64)
        for j_enc, col in enumerate(encoder._encoded_cat_cols):
            arr = batch.column(col)
            if types.is_string(arr.type) or types.is_large_string(arr.type):
                arr = arr.dictionary_encode()
            if not types.is_dictionary(arr.type):
                return None
            known = None if cache is None else cache.get(col)
            if known is not None and known[0].equals(arr.dictionary):
                value_positions = known[1]
            else:
                if (
                    types.is_string(arr.dictionary.type)
                    and pc.any(pc.match_substring(arr.dictionary, "\x00")).as_py()
                ):
                    return None
                # the dictionary's values as a column of their own, typed as in fit
                one_each = pa.DictionaryArray.from_arrays(
                    pa.array(np.arange(len(arr.dictionary), dtype=np.int32)), arr.dictionary
                )
                values = batch_to_frame(pa.record_batch([one_each], names=[col]))[col]
                typed = pd.Series(schema._categorical_column(col, values))
                # the position of a missing value last (index -1 below)
                value_positions = np.append(encoder.level_positions(j_enc, typed), -1)
                if cache is not None:
                    cache[col] = (arr.dictionary, value_positions)
            index = arr.indices.fill_null(-1).to_numpy(zero_copy_only=False)
            positions[:, j_enc] = value_positions[index]
    return encoder.encode_columns(num, positions, n, dtype)


def _checked(check: Any, value: Any, *args: Any) -> Any:
    """Run an input check; a ValueError names the rows and the file it is about."""
    *check_args, dataset, pos, m = args
    try:
        return check(value, *check_args)
    except ValueError as exc:
        msg = str(exc).removeprefix("ltvkit: ")
        raise ValueError(
            f"ltvkit: {msg} (dataset rows {pos}..{pos + m - 1}, {_file_of(dataset, pos)})"
        ) from exc


def _file_of(dataset: ParquetDataset, pos: int) -> str:
    for frag in dataset.fragments:
        if frag.start <= pos < frag.start + frag.num_rows:
            return f"file {frag.file!r}"
    return "the dataset"


class StreamingSource(torch.utils.data.Dataset):
    """The rows of a ParquetDataset that one side (training or validation) uses.

    A skorch "dataset" that is only iterated, never indexed, by
    :class:`StreamingBatchIterator`: it knows how to turn a record batch into the
    module's tensors and which rows it keeps.

    Parameters
    ----------
    dataset : ParquetDataset
    schema : TabularSchema
    encoder : TabularEncoder
    np_dtype : numpy float type
        The network's float type.
    targets : dict of tensors
        What the loss needs for every row of the dataset (indexed by row position).
    y : ndarray
        The customers' value, every row (float64; validation batches carry it, for
        skorch's scoring callbacks).
    valid_fraction, valid_seed : float or None, int
        The validation rule (:func:`validation_mask`); None: no rows held out.
    side : {"train", "valid", "all"}
    n_rows : int
        How many rows this side has (for ``len``).
    """

    def __init__(
        self,
        dataset: ParquetDataset,
        schema: TabularSchema,
        encoder: TabularEncoder,
        np_dtype: type[np.floating],
        targets: dict[str, Any],
        y: np.ndarray,
        valid_fraction: float | None,
        valid_seed: int,
        side: str,
        n_rows: int,
    ) -> None:
        self.dataset = dataset
        self.schema = schema
        self.encoder = encoder
        self.np_dtype = np_dtype
        self.targets = targets
        self.y = y
        self.valid_fraction = valid_fraction
        self.valid_seed = valid_seed
        self.side = side
        self.n_rows = n_rows
        self._dictionaries: dict = {}  # encode_arrow's cache (one reader thread uses it)

    def __len__(self) -> int:
        return self.n_rows

    def __getitem__(self, idx: Any) -> Any:  # pragma: no cover - never indexed
        raise TypeError("ltvkit: a streaming source is iterated, not indexed.")

    def encode(self, pos: int, batch: Any) -> tuple[dict[str, torch.Tensor], torch.Tensor] | None:
        """The kept rows of a record batch: ``(encoded inputs, row positions)``."""
        m = batch.num_rows
        keep = None
        if self.valid_fraction is not None and self.side != "all":
            mask = validation_mask(pos, m, self.valid_fraction, self.valid_seed)
            keep = np.flatnonzero(mask if self.side == "valid" else ~mask)
            if len(keep) == 0:
                return None
            if len(keep) < m:
                batch = batch.take(keep)
        X = encode_arrow(batch, self.schema, self.encoder, self.np_dtype, self._dictionaries)
        if X is None:  # a column type the arrow path leaves to pandas
            frame = self.schema._transform_frame(batch_to_frame(batch), by_name=True)
            X = self.encoder.transform(frame, self.np_dtype)
        X = {k: torch.from_numpy(v) for k, v in X.items()}
        rows = np.arange(pos, pos + m) if keep is None else pos + keep
        return X, torch.from_numpy(rows)

    def batch(
        self, X: dict[str, torch.Tensor], rows: torch.Tensor
    ) -> tuple[dict[str, Any], torch.Tensor | None]:
        """A training / validation batch as skorch sees it: ``(X with targets, y)``."""
        from ltvkit.nn._base import TARGETS_KEY, _index_tree

        out = dict(X)
        out[TARGETS_KEY] = _index_tree(self.targets, rows)
        y = torch.from_numpy(self.y[rows.numpy()]) if self.side != "train" else None
        return out, y


class StreamingBatchIterator:
    """Batches of a :class:`StreamingSource`, read and encoded by a background thread.

    Training (``shuffle=True``): each epoch visits the row groups in a new random order
    and shuffles the rows within a buffer of ``shuffle_buffer_rows`` rows (a buffer at
    least as large as the data is a full shuffle). Validation: the rows in order.

    Parameters
    ----------
    dataset : StreamingSource
    batch_size : int
    shuffle : bool, default=False
    seed : int or None, default=None
    shuffle_buffer_rows : int, default=262144
    """

    def __init__(
        self,
        dataset: StreamingSource,
        batch_size: int,
        shuffle: bool = False,
        seed: int | None = None,
        shuffle_buffer_rows: int = 262_144,
    ) -> None:
        self.source = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.shuffle_buffer_rows = max(int(shuffle_buffer_rows), self.batch_size)
        self._generator = torch.Generator()
        if seed is not None:
            self._generator.manual_seed(int(seed))
        else:
            self._generator.seed()

    def __len__(self) -> int:
        return max(1, -(-len(self.source) // self.batch_size))

    def _read(self, fragments: list, out: queue.Queue, stop: threading.Event) -> None:
        try:
            for pos, batch in self.source.dataset.iter_batches(
                batch_size=_READ_ROWS, fragments=fragments, with_position=True
            ):
                if stop.is_set():
                    return
                item = self.source.encode(pos, batch)
                if item is not None:
                    while not stop.is_set():
                        try:
                            out.put(item, timeout=0.1)
                            break
                        except queue.Full:
                            continue
        except BaseException as exc:  # handed to the training thread, which raises it
            out.put(exc)
            return
        out.put(None)

    def _encoded_chunks(self) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor]]:
        fragments = list(self.source.dataset.fragments)
        if self.shuffle:
            order = torch.randperm(len(fragments), generator=self._generator).tolist()
            fragments = [fragments[i] for i in order]
        chunks: queue.Queue = queue.Queue(maxsize=_QUEUE_BATCHES)
        stop = threading.Event()
        reader = threading.Thread(
            target=self._read, args=(fragments, chunks, stop), daemon=True, name="ltvkit-reader"
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

    def __iter__(self) -> Iterator[tuple[dict[str, Any], Any]]:
        from ltvkit.nn._base import _index_tree

        # One buffer for the epoch, filled chunk by chunk; each batch is gathered from
        # it by its slice of a permutation (the same batches as permuting the buffer
        # and slicing, without a second buffer-sized copy).
        bs = self.batch_size
        wanted = self.shuffle_buffer_rows if self.shuffle else bs
        buffer: dict[str, torch.Tensor] | None = None
        rows_held = torch.empty(0, dtype=torch.int64)
        held = 0
        for X, rows in self._encoded_chunks():
            m = len(rows)
            if buffer is None or held + m > len(rows_held):
                capacity = max(held + m, min(wanted, len(self.source)) + m)
                grown = {k: v.new_empty((capacity, *v.shape[1:])) for k, v in X.items()}
                grown_rows = torch.empty(capacity, dtype=torch.int64)
                if buffer is not None:
                    for k in grown:
                        grown[k][:held] = buffer[k][:held]
                    grown_rows[:held] = rows_held[:held]
                buffer, rows_held = grown, grown_rows
            for k in buffer:
                buffer[k][held : held + m] = X[k]
            rows_held[held : held + m] = rows
            held += m
            if held >= wanted:
                order = self._order(held)
                yield from self._drain(buffer, rows_held, order, held // bs * bs)
                rest = held % bs
                if rest:  # the rows short of a whole batch wait for the next chunks
                    left = order[held - rest : held]
                    kept = _index_tree(buffer, left), rows_held[left]
                    for k in buffer:
                        buffer[k][:rest] = kept[0][k]
                    rows_held[:rest] = kept[1]
                held = rest
        if held:
            order = self._order(held)
            yield from self._drain(buffer, rows_held, order, held)  # type: ignore[arg-type]

    def _order(self, held: int) -> torch.Tensor:
        """The order in which the buffer's first ``held`` rows leave it: a random
        permutation (shuffle) or as read."""
        if self.shuffle:
            return torch.randperm(held, generator=self._generator)
        return torch.arange(held)

    def _drain(
        self, buffer: dict[str, torch.Tensor], rows: torch.Tensor, order: torch.Tensor, n_out: int
    ) -> Iterator[tuple[dict[str, Any], Any]]:
        """Batches of the buffer's rows ``order[:n_out]``, in that order."""
        from ltvkit.nn._base import _index_tree

        for start in range(0, n_out, self.batch_size):
            idx = order[start : min(start + self.batch_size, n_out)]
            # gathered (copies): the buffer is refilled while skorch holds a batch
            yield self.source.batch(_index_tree(buffer, idx), rows[idx])
