"""A table on disk that ltvkit reads in bounded record batches: :class:`ParquetDataset`."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["DEFAULT_BATCH_ROWS", "Fragment", "ParquetDataset"]

#: Rows per record batch when the caller does not say: big enough that per-batch
#: overhead is small, small enough that a batch of 50 float64 columns is ~25 MB.
DEFAULT_BATCH_ROWS = 65_536


@dataclass(frozen=True)
class Fragment:
    """One row group of one file: the unit of shuffling and of sharding.

    Attributes
    ----------
    file : str
        The Parquet file.
    row_group : int
        Row group index in ``file``.
    start : int
        Position of the row group's first row in the whole dataset (files in order,
        then row groups in order): the row's identity for deterministic rules such as
        the validation split.
    num_rows : int
    """

    file: str
    row_group: int
    start: int
    num_rows: int


def _normalise_type(t: pa.DataType) -> pa.DataType:
    """The logical type of a column: dictionary encoding and string width do not count."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    return t


def _list_files(path: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    if isinstance(path, (str, os.PathLike)):
        p = Path(path)
        if p.is_dir():
            files = sorted(
                str(f) for f in p.rglob("*") if f.is_file() and not f.name.startswith((".", "_"))
            )
            if not files:
                raise ValueError(f"ltvkit: the dataset directory {str(p)!r} has no files.")
            return files
        if not p.exists():
            raise ValueError(f"ltvkit: the dataset path {str(p)!r} does not exist.")
        return [str(p)]
    files = [str(Path(f)) for f in path]
    if not files:
        raise ValueError("ltvkit: the dataset is empty (an empty list of files).")
    for f in files:
        if not Path(f).is_file():
            raise ValueError(f"ltvkit: the dataset file {f!r} does not exist.")
    return files


class ParquetDataset:
    """A directory, a file or a list of Parquet files, read in bounded record batches.

    Accepted as ``X`` by ``fit`` (with ``y`` omitted: the ``target`` column is the
    target) and by every predict-type method of every ltvkit estimator, and by
    :func:`ltvkit.score_dataset`. Nothing is read at construction but the files'
    footers (schema and row counts), which are checked to agree.

    Parameters
    ----------
    path : str, path-like or sequence of them
        A Parquet file, a directory (every file under it, recursively, in sorted
        order; names starting with ``.`` or ``_`` are skipped) or a list of files.
    target : str, sequence of str or None, default=None
        The target column (needed to ``fit``); a list of columns for a multi-horizon
        model (cumulative value at each horizon, in order).
    id_column : str or None, default=None
        The customer id column: not a feature; :func:`ltvkit.score_dataset` writes it
        next to the scores.
    features : sequence of str or None, default=None
        The feature columns; None: every column but the target and the id.

    Attributes
    ----------
    files : list of str
    schema : pyarrow.Schema
        The schema of the first file (the others are checked to match it).
    num_rows : int
    fragments : list of Fragment
        Every (file, row group) in order, with its first row's position: iterate a
        subset with ``iter_batches(fragments=...)`` to shard the data.

    Raises
    ------
    ValueError
        For a path that does not exist, an empty dataset, a file whose columns differ
        from the first file's or a column whose type changes between files (naming the
        file and the column), a missing target, id or feature column.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from ltvkit.datasets import make_ltv
    >>> X, y = make_ltv(n_samples=200, random_state=0)
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> X.assign(ltv=y).to_parquet(folder / "part-0.parquet")
    >>> data = ParquetDataset(folder, target="ltv")
    >>> data.num_rows, len(data.features)
    (200, 20)
    >>> [len(b) for b in data.iter_batches(batch_size=150)]
    [150, 50]
    """

    def __init__(
        self,
        path: str | os.PathLike | Sequence[str | os.PathLike],
        *,
        target: str | Sequence[str] | None = None,
        id_column: str | None = None,
        features: Sequence[str] | None = None,
    ) -> None:
        self.path = path
        self.target = target
        self.id_column = id_column
        self.files = _list_files(path)
        self.schema, self.fragments = self._read_footers()
        self.num_rows = sum(f.num_rows for f in self.fragments)
        if self.num_rows == 0:
            raise ValueError(f"ltvkit: the dataset {self._where()} has no rows.")
        names = self.schema.names
        self.target_columns = (
            [] if target is None else [target] if isinstance(target, str) else list(target)
        )
        roles = [("target", c) for c in self.target_columns] + [("id_column", id_column)]
        for role, col in roles:
            if col is not None and col not in names:
                raise ValueError(
                    f"ltvkit: the {role} column {col!r} is not in the dataset (file "
                    f"{self.files[0]!r} has the columns {names})."
                )
        not_features = {*self.target_columns, id_column}
        if features is None:
            features = [c for c in names if c not in not_features]
        else:
            features = [str(c) for c in features]
            missing = [c for c in features if c not in names]
            if missing:
                raise ValueError(
                    f"ltvkit: the feature column(s) {missing} are not in the dataset (file "
                    f"{self.files[0]!r})."
                )
            both = [c for c in features if c in not_features]
            if both:
                raise ValueError(
                    f"ltvkit: column(s) {both} are both a feature and the target/id column."
                )
        if not features:
            raise ValueError(f"ltvkit: the dataset {self._where()} has no feature column.")
        self.features = list(features)

    def __repr__(self) -> str:
        return (
            f"ParquetDataset({self._where()}, target={self.target!r}, "
            f"id_column={self.id_column!r}, {len(self.features)} features, "
            f"{self.num_rows} rows)"
        )

    def __len__(self) -> int:
        return self.num_rows

    @property
    def shape(self) -> tuple[int, int]:
        """``(num_rows, number of features)``, like a DataFrame's ``X.shape``."""
        return self.num_rows, len(self.features)

    def _where(self) -> str:
        if len(self.files) == 1:
            return repr(self.files[0])
        return f"{str(self.path)!r} ({len(self.files)} files)"

    def _read_footers(self) -> tuple[pa.Schema, list[Fragment]]:
        schema: pa.Schema | None = None
        fragments: list[Fragment] = []
        start = 0
        for f in self.files:
            try:
                meta = pq.read_metadata(f)
                file_schema = meta.schema.to_arrow_schema()
            except (OSError, pa.ArrowException) as exc:
                raise ValueError(f"ltvkit: {f!r} is not a readable Parquet file ({exc}).") from exc
            file_schema = pa.schema(
                [fld for fld in file_schema if not fld.name.startswith("__index_level_")]
            )
            if schema is None:
                schema = file_schema
            else:
                self._check_same_schema(schema, file_schema, f)
            for i in range(meta.num_row_groups):
                n = meta.row_group(i).num_rows
                if n:
                    fragments.append(Fragment(f, i, start, n))
                    start += n
        assert schema is not None
        return schema, fragments

    def _check_same_schema(self, first: pa.Schema, other: pa.Schema, file: str) -> None:
        missing = [c for c in first.names if c not in other.names]
        extra = [c for c in other.names if c not in first.names]
        if missing or extra:
            col = (missing or extra)[0]
            what = "lacks" if missing else "has the extra"
            raise ValueError(
                f"ltvkit: file {file!r} {what} column {col!r}: its schema differs from "
                f"{self.files[0]!r} (missing {missing}, extra {extra})."
            )
        for fld in first:
            t0, t1 = _normalise_type(fld.type), _normalise_type(other.field(fld.name).type)
            if t0 != t1:
                raise ValueError(
                    f"ltvkit: column {fld.name!r} has type {t1} in file {file!r} but {t0} "
                    f"in {self.files[0]!r}; a column must have one type in every file."
                )

    # -- reading ------------------------------------------------------------------------
    def iter_batches(
        self,
        columns: Sequence[str] | None = None,
        batch_size: int = DEFAULT_BATCH_ROWS,
        *,
        fragments: Sequence[Fragment] | None = None,
        files: Sequence[str] | None = None,
        with_position: bool = False,
    ) -> Iterator[pa.RecordBatch] | Iterator[tuple[int, pa.RecordBatch]]:
        """Record batches of at most ``batch_size`` rows, in file and row-group order.

        Parameters
        ----------
        columns : sequence of str or None, default=None
            None: the features.
        batch_size : int, default=65536
        fragments : sequence of Fragment or None, default=None
            Read only these row groups, in this order (a shard, or a shuffled order).
        files : sequence of str or None, default=None
            Read only these files (ignored when ``fragments`` is given).
        with_position : bool, default=False
            Yield ``(position of the batch's first row in the dataset, batch)``.

        Yields
        ------
        pyarrow.RecordBatch
            With the columns in the order asked for.
        """
        cols = list(self.features if columns is None else columns)
        if fragments is None:
            wanted = None if files is None else {str(Path(f)) for f in files}
            fragments = [f for f in self.fragments if wanted is None or f.file in wanted]
        reader: pq.ParquetFile | None = None
        reader_file = None
        for frag in fragments:
            if reader is None or reader_file != frag.file:  # one open file at a time
                reader, reader_file = pq.ParquetFile(frag.file), frag.file
            pos = frag.start
            for batch in reader.iter_batches(
                batch_size=batch_size, row_groups=[frag.row_group], columns=cols
            ):
                if batch.num_rows == 0:
                    continue
                batch = batch.select(cols)
                yield (pos, batch) if with_position else batch
                pos += batch.num_rows

    def iter_frames(
        self,
        columns: Sequence[str] | None = None,
        batch_size: int = DEFAULT_BATCH_ROWS,
        **kwargs: object,
    ) -> Iterator[pd.DataFrame]:
        """:meth:`iter_batches` as pandas DataFrames (dictionary columns as ``category``)."""
        for batch in self.iter_batches(columns, batch_size, **kwargs):
            yield batch_to_frame(batch)

    def read_column(self, column: str, dtype: type = np.float64) -> np.ndarray:
        """One column of every row as a numpy array, filled batch by batch.

        The one full-length array a streaming fit holds (the target: 8 bytes a row).
        """
        out = np.empty(self.num_rows, dtype=dtype)
        for pos, batch in self.iter_batches([column], with_position=True):
            out[pos : pos + batch.num_rows] = batch.column(0).to_numpy(zero_copy_only=False)
        return out

    def read_target(self) -> np.ndarray:
        """The target column(s) as float64: shape ``(n,)``, or ``(n, n_horizons)``.

        Raises
        ------
        ValueError
            If the dataset has no target, or a target value is missing.
        """
        if not self.target_columns:
            raise ValueError(
                "ltvkit: fitting on a ParquetDataset needs its target column: "
                "ParquetDataset(path, target=<column>)."
            )
        cols = [self.read_column(c) for c in self.target_columns]
        y = cols[0] if isinstance(self.target, str) else np.column_stack(cols)
        return y

    def read_pandas(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Every row of ``columns`` (None: the features) in memory, as one DataFrame."""
        frames = list(self.iter_frames(columns))
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]

    def feature_frame(self, batch: pa.RecordBatch) -> pd.DataFrame:
        """The feature columns of ``batch`` as the DataFrame an estimator gets as ``X``."""
        return batch_to_frame(batch.select(self.features))


def batch_to_frame(batch: pa.RecordBatch | pa.Table) -> pd.DataFrame:
    """A record batch as a DataFrame: dictionary (categorical) columns become ``category``.

    Examples
    --------
    >>> batch = pa.record_batch({"x": [1.0, 2.0]})
    >>> batch_to_frame(batch)["x"].tolist()
    [1.0, 2.0]
    """
    return batch.to_pandas(split_blocks=True, self_destruct=False)
