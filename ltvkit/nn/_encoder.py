"""Tabular encoder of ltvkit's deep models: DataFrame -> float32 / int64 arrays, once.

Numeric columns: optional signed ``log1p`` (``sign(x) * log1p(|x|)``, i.e. ``log1p`` for
non-negative values) for right-skewed columns such as spend and counts, then
:class:`~sklearn.preprocessing.StandardScaler`, then missing values imputed with the
training mean (0 after scaling) plus one 0/1 indicator column per numeric column that
had missing values in training.

Categorical columns: :class:`~sklearn.preprocessing.OrdinalEncoder` with
``handle_unknown="use_encoded_value"`` and ``min_frequency``, remapped so that index 0
is one shared "other" slot for missing, unseen and rare categories and the frequent
training levels are 1..k. The deep models embed each column with ``nn.Embedding``
(see :func:`embedding_dim_rule`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.preprocessing import OrdinalEncoder, StandardScaler

from ltvkit.base import _index_from_state, _index_state

__all__ = ["EncodedSpec", "EncoderStatistics", "TabularEncoder", "embedding_dim_rule"]

# Rows encoded at a time: bounds the float64 working copies in fit and transform.
_CHUNK_ROWS = 65_536
# Rows of numeric columns encoded at a time in encode_columns (fit in the CPU cache).
_ENCODE_BLOCK_ROWS = 8192
# Bound of a standardized numeric input (see transform).
_MAX_ABS_STANDARDIZED = 1e4
# Skewness above which log_transform="auto" applies the signed log1p to a column.
_AUTO_LOG_SKEW = 1.0
# Rows of the strided subsample on which log_transform="auto" measures skewness.
_SKEW_SAMPLE_ROWS = 100_000


def _signed_log1p(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``sign(x) * log1p(|x|)``, NaN staying NaN; ``out=x`` writes it over ``x``."""
    mag = np.abs(x)
    np.log1p(mag, out=mag)
    # (copysign: np.negative with where= is several times slower)
    return np.copysign(mag, x, out=mag if out is None else out)


class _Moments:
    """Count, mean and sum of squared deviations per column, merged batch by batch.

    Chan et al.'s pairwise update: exact (up to float64 rounding) whatever the batch
    sizes, and NaN is skipped, as ``StandardScaler.partial_fit`` does.
    """

    def __init__(self, n_cols: int) -> None:
        self.count = np.zeros(n_cols)
        self.mean = np.zeros(n_cols)
        self.m2 = np.zeros(n_cols)

    def update(self, block: np.ndarray) -> None:
        """Add ``block``: one row per column (contiguous rows reduce fastest)."""
        if not np.isnan(block).any():  # the common case: fewer passes over the block
            n_b = np.full(block.shape[0], float(block.shape[1]))
            mean_b = block.mean(axis=1)
            dev = block - mean_b[:, None]
        else:
            present = ~np.isnan(block)
            n_b = present.sum(axis=1).astype(np.float64)
            if not n_b.any():
                return
            filled = np.where(present, block, 0.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean_b = np.where(n_b > 0, filled.sum(axis=1) / n_b, 0.0)
            dev = np.where(present, block - mean_b[:, None], 0.0)
        m2_b = np.einsum("ij,ij->i", dev, dev)
        n = self.count + n_b
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(n > 0, n_b / n, 0.0)
        delta = mean_b - self.mean
        self.mean = self.mean + delta * share
        self.m2 = self.m2 + m2_b + delta**2 * self.count * share
        self.count = n

    @property
    def var(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self.m2 / np.maximum(self.count, 1), np.nan)


class EncoderStatistics:
    """What :class:`TabularEncoder` learns, gathered over record batches in one pass.

    The streaming twin of ``TabularEncoder.fit`` (``BaseDeepRegressor`` fitting on an
    :class:`ltvkit.io.ParquetDataset`). Exact: the means and variances with and
    without the signed ``log1p`` (merged moments), which numeric columns have missing
    values, the count of every category; the skewness test of
    ``log_transform="auto"`` sees the same strided subsample of about 100,000 rows as
    the in-memory fit. Feed it with :meth:`update` (raw batches, as read: the levels
    of the categorical columns are not known until the pass ends), then call
    :meth:`TabularEncoder.fit_statistics`.

    Parameters
    ----------
    numeric_columns, categorical_columns : list of str
    n_rows : int
        Rows of the whole dataset (sets the stride of the skewness subsample).

    Examples
    --------
    >>> stats = EncoderStatistics(["spend"], [], n_rows=4)
    >>> stats.update(pd.DataFrame({"spend": [1.0, 3.0]}), position=0)
    >>> stats.update(pd.DataFrame({"spend": [5.0, np.nan]}), position=2)
    >>> stats.raw.mean.tolist(), stats.raw.var.tolist()
    ([3.0], [2.6666666666666665])
    """

    def __init__(
        self, numeric_columns: list[str], categorical_columns: list[str], n_rows: int
    ) -> None:
        self.numeric_columns = list(numeric_columns)
        self.categorical_columns = list(categorical_columns)
        self.step = max(1, n_rows // _SKEW_SAMPLE_ROWS)
        k = len(self.numeric_columns)
        self.raw = _Moments(k)
        self.log = _Moments(k)
        self.has_nan = np.zeros(k, dtype=bool)
        self._sample: list[np.ndarray] = []
        self.counts: dict[str, pd.Series] = {
            c: pd.Series(dtype=np.int64) for c in categorical_columns
        }

    def update(
        self, frame: pd.DataFrame, position: int, numeric: np.ndarray | None = None
    ) -> None:
        """Add a batch whose first row is row ``position`` of the dataset.

        ``frame`` holds at least the categorical columns; ``numeric``: the batch's
        numeric columns as float64 of shape ``(len(numeric_columns), rows)``, one row
        per column, if already made (it is overwritten), else they are read from
        ``frame``.
        """
        if self.numeric_columns:
            num = numeric
            if num is None:
                num = np.ascontiguousarray(
                    TabularEncoder._numeric_block(frame, self.numeric_columns).T
                )
            self.has_nan |= np.isnan(num).any(axis=1)
            first = (-position) % self.step  # the rows at multiples of the stride
            self._sample.append(num[:, first :: self.step].T.copy())
            self.raw.update(num)
            self.log.update(_signed_log1p(num, out=num))
        for col in self.categorical_columns:
            counts = frame[col].value_counts(dropna=True)
            counts = counts[counts > 0]
            self.counts[col] = self.counts[col].add(counts, fill_value=0).astype(np.int64)

    @property
    def sample(self) -> np.ndarray:
        """The strided subsample of the numeric columns (the skewness test's rows)."""
        if not self._sample:
            return np.empty((0, len(self.numeric_columns)))
        return np.concatenate(self._sample)


def embedding_dim_rule(cardinality: int) -> int:
    """Embedding width for a column with ``cardinality`` rows: ``min(50, ceil(card / 2))``.

    The rule of CC-OR-Net. ``cardinality`` counts the "other" slot (index 0) too, so
    a binary column (2 levels + slot) gets 2 dimensions.

    Examples
    --------
    >>> embedding_dim_rule(3), embedding_dim_rule(1000)
    (2, 50)
    """
    return int(min(50, math.ceil(cardinality / 2)))


@dataclass(frozen=True)
class EncodedSpec:
    """What a module needs to know about the encoded input (built by the encoder).

    Attributes
    ----------
    n_numeric : int
        Width of the float32 block ``x_num`` (scaled columns + missing indicators).
    cardinalities : tuple of int
        Rows of the embedding table of each categorical column (levels + 1 slot).
    embedding_dims : tuple of int
        Embedding width of each categorical column.
    numeric_features : tuple of str
        Names of the ``x_num`` columns (indicators are named ``"<col>__missing"``).
    categorical_features : tuple of str
        Names of the ``x_cat`` columns.
    """

    n_numeric: int
    cardinalities: tuple[int, ...]
    embedding_dims: tuple[int, ...]
    numeric_features: tuple[str, ...]
    categorical_features: tuple[str, ...]

    @property
    def n_categorical(self) -> int:
        """Number of categorical columns."""
        return len(self.cardinalities)

    @property
    def n_inputs(self) -> int:
        """Width of ``[x_num, embeddings]``, the input of the shared bottom."""
        return self.n_numeric + sum(self.embedding_dims)


class TabularEncoder:
    """Encode a validated DataFrame into ``{"x_num": float32, "x_cat": int64}`` arrays.

    Fitted inside :meth:`BaseDeepRegressor.fit` on the DataFrame returned by
    ``_validate_fit_input`` (float64 numeric columns, ``category`` columns with the
    training levels, unseen levels already NaN). Not a public sklearn transformer: it
    has no hyperparameter search surface of its own; the estimators expose
    ``log_transform``, ``min_category_frequency`` and ``embedding_dim``.

    Parameters
    ----------
    log_transform : {"auto", True, False}, default="auto"
        Apply ``sign(x) * log1p(|x|)`` (``log1p`` for non-negative values) before
        scaling. ``"auto"``: to right-skewed numeric columns (training skewness > 1),
        e.g. spend and order counts, also when a few values are negative (refunds).
        ``True``: to every numeric column. ``False``: never.
    min_category_frequency : int, default=5
        Categories seen fewer times in training share the "other" slot (index 0) with
        missing and unseen values.
    embedding_dim : int or None, default=None
        Embedding width for every categorical column; ``None`` uses
        :func:`embedding_dim_rule`.

    Attributes
    ----------
    spec_ : EncodedSpec
    log_columns_ : list of str
        Numeric columns that get the signed ``log1p``.
    indicator_columns_ : list of str
        Numeric columns that get a missing-value indicator.

    Examples
    --------
    >>> X = pd.DataFrame({"spend": [0.0, 10.0, np.nan, 500.0],
    ...                   "country": pd.Categorical(["UK", "UK", "FR", None])})
    >>> enc = TabularEncoder(min_category_frequency=1).fit(X)
    >>> out = enc.transform(X)
    >>> out["x_num"].dtype, out["x_cat"].ravel().tolist()
    (dtype('float32'), [2, 2, 1, 0])
    """

    def __init__(
        self,
        log_transform: bool | str = "auto",
        min_category_frequency: int = 5,
        embedding_dim: int | None = None,
    ) -> None:
        self.log_transform = log_transform
        self.min_category_frequency = min_category_frequency
        self.embedding_dim = embedding_dim

    # A plain state (the training levels as lists/arrays and dtype names, not pandas
    # Index objects), so pickle and ltvkit.save (skops) store the same thing.
    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state.pop("_lookups_cache", None)
        if "_levels" in state:
            state["_levels"] = [_index_state(levels) for levels in state["_levels"]]
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        state = dict(state)
        if "_levels" in state:
            state["_levels"] = [_index_from_state(levels) for levels in state["_levels"]]
        self.__dict__.update(state)

    def fit(self, frame: pd.DataFrame, sample_weight: np.ndarray | None = None) -> TabularEncoder:
        """Learn scaling, log columns, indicators and category codes from ``frame``.

        ``sample_weight`` (frequency weights) weights the skewness test and the
        scaler's mean and variance; category frequencies are counted unweighted.
        """
        num_cols = [
            c for c in frame.columns if not isinstance(frame[c].dtype, pd.CategoricalDtype)
        ]
        cat_cols = [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)]
        self.numeric_columns_ = num_cols
        self.categorical_columns_ = cat_cols

        # the skewness only decides a yes/no: a strided subsample of ~100k rows is plenty
        step = max(1, len(frame) // _SKEW_SAMPLE_ROWS)
        sub_w = None if sample_weight is None else sample_weight[::step]
        self._log_mask = self._log_mask_for(
            self._numeric_block(frame.iloc[::step], num_cols), sub_w
        )
        self.log_columns_ = [c for c, m in zip(num_cols, self._log_mask, strict=True) if m]
        # scaling statistics and missing-value flags in row chunks: the float64 working
        # copy never exceeds one chunk, whatever the number of rows
        has_nan = np.zeros(len(num_cols), dtype=bool)
        self.scaler_ = StandardScaler(copy=False) if num_cols else None
        for start in range(0, len(frame) if num_cols else 0, _CHUNK_ROWS):
            stop = start + _CHUNK_ROWS
            block = self._apply_log(self._numeric_block(frame.iloc[start:stop], num_cols))
            has_nan |= np.isnan(block).any(axis=0)
            w = None if sample_weight is None else sample_weight[start:stop]
            if w is not None and not (w > 0).any():
                continue  # a chunk of zero weights carries no information
            self.scaler_.partial_fit(block, sample_weight=w)
        self.indicator_columns_ = [c for j, c in enumerate(num_cols) if has_nan[j]]
        self._indicator_mask = has_nan
        if self.scaler_ is not None:
            if not hasattr(self.scaler_, "mean_"):  # every weight was zero
                self.scaler_.fit(np.zeros((1, len(num_cols))))
            # an all-NaN training column has a NaN mean; make it a constant 0 column
            self.scaler_.mean_ = np.nan_to_num(self.scaler_.mean_, nan=0.0)
            self.scaler_.scale_ = np.nan_to_num(self.scaler_.scale_, nan=1.0)
            self.scaler_.scale_[self.scaler_.scale_ == 0] = 1.0

        self._fit_categories(frame, cat_cols)
        self._finish_spec()
        return self

    def _finish_spec(self) -> None:
        num_cols, cat_cols = self.numeric_columns_, self.categorical_columns_
        self.spec_ = EncodedSpec(
            n_numeric=len(num_cols) + len(self.indicator_columns_),
            cardinalities=tuple(self.cardinalities_),
            embedding_dims=tuple(self._embedding_dims()),
            numeric_features=tuple(num_cols)
            + tuple(f"{c}__missing" for c in self.indicator_columns_),
            categorical_features=tuple(cat_cols),
        )

    def fit_statistics(
        self, stats: EncoderStatistics, levels: dict[str, pd.Index]
    ) -> TabularEncoder:
        """Fit from statistics gathered over record batches (a streaming fit).

        ``levels`` are the categorical columns' levels (``TabularSchema.categories``).
        The result encodes like an encoder fitted on the whole frame at once (same log
        columns, indicators and category codes; means and variances equal to float64
        rounding), without sample weights.
        """
        num_cols = list(stats.numeric_columns)
        cat_cols = list(stats.categorical_columns)
        self.numeric_columns_ = num_cols
        self.categorical_columns_ = cat_cols
        # the skewness test a few columns at a time: its temporaries stay small
        sample = stats.sample
        self._log_mask = np.concatenate(
            [np.zeros(0, dtype=bool)]
            + [self._log_mask_for(sample[:, j : j + 8], None) for j in range(0, len(num_cols), 8)]
        )
        del sample
        self.log_columns_ = [c for c, m in zip(num_cols, self._log_mask, strict=True) if m]
        has_nan = stats.has_nan.copy()
        self.indicator_columns_ = [c for j, c in enumerate(num_cols) if has_nan[j]]
        self._indicator_mask = has_nan
        self.scaler_ = None
        if num_cols:
            mean = np.where(self._log_mask, stats.log.mean, stats.raw.mean)
            var = np.where(self._log_mask, stats.log.var, stats.raw.var)
            count = np.where(self._log_mask, stats.log.count, stats.raw.count)
            mean = np.where(count > 0, mean, np.nan)
            scaler = StandardScaler(copy=False)
            scaler.n_features_in_ = len(num_cols)
            scaler.n_samples_seen_ = count.astype(np.int64)
            scaler.mean_ = np.nan_to_num(mean, nan=0.0)
            scaler.var_ = var
            scale = np.nan_to_num(np.sqrt(var), nan=1.0)
            scale[scale == 0] = 1.0
            scaler.scale_ = scale
            self.scaler_ = scaler
        # category frequencies: each level repeated min(count, min_frequency) times
        # gives the OrdinalEncoder the same frequent / infrequent split as the data
        cap = max(int(self.min_category_frequency), 1)
        codes = {}
        for col in cat_cols:
            lv = levels[col]
            counts = stats.counts[col].reindex(lv, fill_value=0).to_numpy(dtype=np.int64)
            codes[col] = np.repeat(np.arange(len(lv), dtype=np.float64), np.minimum(counts, cap))
        self._fit_category_codes(cat_cols, levels, codes)
        self._finish_spec()
        return self

    def transform(
        self, frame: pd.DataFrame, dtype: type[np.floating] = np.float32
    ) -> dict[str, np.ndarray]:
        """Return ``{"x_num": (n, n_numeric) float32, "x_cat": (n, n_cat) int64}``.

        Works through the rows in chunks of 65,536 and writes straight into the float32
        output (``dtype=np.float64`` for a model trained with ``precision="float64"``),
        so the float64 working copies never exceed one chunk.
        """
        n = len(frame)
        if n <= _CHUNK_ROWS:
            return self._encode_chunk(frame, dtype)
        x_num = np.empty((n, self.spec_.n_numeric), dtype=dtype)
        x_cat = np.empty((n, len(self.categorical_columns_)), dtype=np.int64)
        for start in range(0, n, _CHUNK_ROWS):
            stop = min(start + _CHUNK_ROWS, n)
            part = self._encode_chunk(frame.iloc[start:stop], dtype)
            x_num[start:stop] = part["x_num"]
            x_cat[start:stop] = part["x_cat"]
        return {"x_num": x_num, "x_cat": x_cat}

    def _encode_chunk(
        self, frame: pd.DataFrame, dtype: type[np.floating]
    ) -> dict[str, np.ndarray]:
        num = None
        if self.numeric_columns_:
            # one row per column (pandas' own layout: usually no copy)
            num = np.ascontiguousarray(self._numeric_block(frame, self.numeric_columns_).T)
        positions = self._level_positions(frame) if self.ordinal_ is not None else None
        return self.encode_columns(num, positions, len(frame), dtype)

    def encode_columns(
        self,
        numeric: np.ndarray | None,
        positions: np.ndarray | None,
        n_rows: int,
        dtype: type[np.floating] = np.float32,
    ) -> dict[str, np.ndarray]:
        """:meth:`transform` from the columns' raw values (a reader that skips pandas).

        ``numeric``: float64 of shape ``(len(numeric_columns_), n_rows)``, one row per
        column, NaN for missing (written to); ``positions``: each value's position
        among the training levels of each encoded categorical column, ``-1`` for
        missing or unseen (see :meth:`_level_positions`), or None without categories.
        """
        n_cols = len(self.numeric_columns_)
        n_numeric = self.spec_.n_numeric
        x_num = np.empty((n_rows, n_numeric), dtype=dtype)
        out = torch.from_numpy(x_num)
        # column-major work on blocks of rows small enough to stay in the CPU cache:
        # each step runs on contiguous rows of a column, and the transposing copy into
        # x_num reads a block that was just written (several times as fast as a
        # transposition of the whole batch)
        step = _ENCODE_BLOCK_ROWS
        block = np.empty((n_numeric, min(step, n_rows)), dtype=dtype)
        if n_cols:
            mean, scale = self.scaler_.mean_[:, None], self.scaler_.scale_[:, None]
        log_columns = np.flatnonzero(self._log_mask)
        for start in range(0, n_rows, step):
            stop = min(start + step, n_rows)
            part = block[:, : stop - start]
            if n_cols:
                num = numeric[:, start:stop]
                for j in log_columns:
                    _signed_log1p(num[j], out=num[j])
                missing = np.isnan(num)
                # StandardScaler.transform's arithmetic, in place, without its input
                # validation (which cost more than the arithmetic): NaN passes
                num -= mean
                num /= scale
                # far outside the training range (or a column with a tiny training
                # spread) a standardized value can overflow float32: no network needs
                # more than 10,000 standard deviations to extrapolate
                np.clip(num, -_MAX_ABS_STANDARDIZED, _MAX_ABS_STANDARDIZED, out=num)
                np.copyto(num, 0.0, where=missing)  # the training mean after scaling
                part[:n_cols] = num
                part[n_cols:] = missing[self._indicator_mask]
            out[start:stop].copy_(torch.from_numpy(part).T)
        x_cat = np.zeros((n_rows, len(self.categorical_columns_)), dtype=np.int64)
        if positions is not None:
            lookups = self._lookups()
            for j_enc, j in enumerate(self._encoded_cat_idx):
                x_cat[:, j] = lookups[j_enc][positions[:, j_enc] + 1]
        return {"x_num": x_num, "x_cat": x_cat}

    def _lookups(self) -> list[np.ndarray]:
        """:meth:`_code_lookups`, computed once per fitted encoder (not saved)."""
        cached = self.__dict__.get("_lookups_cache")
        if cached is None:
            cached = self._lookups_cache = self._code_lookups()
        return cached

    def _code_lookups(self) -> list[np.ndarray]:
        """Per encoded column: the final code of each training level position (index
        ``pos + 1``; index 0: missing or unseen), from the fitted OrdinalEncoder.

        The same mapping as running the OrdinalEncoder on every row, computed once per
        ``transform`` over the levels instead of the rows.
        """
        n = max(len(levels) for levels in self._levels) + 1
        grid = np.full((n, len(self._levels)), np.nan)
        for j_enc, levels in enumerate(self._levels):
            grid[1 : len(levels) + 1, j_enc] = np.arange(len(levels))
        codes = self.ordinal_.transform(grid).astype(np.int64) + 1
        return [
            self._code_maps[j_enc][codes[: len(levels) + 1, j_enc]]
            for j_enc, levels in enumerate(self._levels)
        ]

    def _level_positions(self, frame: pd.DataFrame) -> np.ndarray:
        """Position of each value among the training levels, -1 for missing or unseen."""
        out = np.empty((len(frame), len(self._encoded_cat_cols)), dtype=np.int64)
        for j_enc, col in enumerate(self._encoded_cat_cols):
            out[:, j_enc] = self.level_positions(j_enc, frame[col])
        return out

    def level_positions(self, j_enc: int, values: pd.Series) -> np.ndarray:
        """Positions among the training levels of encoded categorical column ``j_enc``
        (``-1``: missing or unseen) of its values after ``TabularSchema``'s typing."""
        if not values.cat.categories.equals(self._levels[j_enc]):
            values = pd.Categorical(values.astype(object), categories=self._levels[j_enc])
        return np.asarray(values.cat.codes if hasattr(values, "cat") else values.codes)

    def transform_tensors(
        self, frame: pd.DataFrame, dtype: type[np.floating] = np.float32
    ) -> dict[str, torch.Tensor]:
        """:meth:`transform`, as torch tensors sharing the arrays' memory."""
        return {k: torch.from_numpy(v) for k, v in self.transform(frame, dtype).items()}

    # -- numeric --------------------------------------------------------------------------
    @staticmethod
    def _numeric_block(frame: pd.DataFrame, cols: list[str]) -> np.ndarray:
        if not cols:
            return np.empty((len(frame), 0), dtype=np.float64)
        # always a fresh array (copy=True): the log and the imputation below write into
        # it, and under pandas copy-on-write a plain to_numpy() may be a read-only view
        return frame[cols].to_numpy(dtype=np.float64, na_value=np.nan, copy=True)

    def _log_mask_for(self, num: np.ndarray, sample_weight: np.ndarray | None) -> np.ndarray:
        """Which columns get the signed log1p (see ``log_transform``)."""
        n_cols = num.shape[1]
        if self.log_transform is False or n_cols == 0:
            return np.zeros(n_cols, dtype=bool)
        has_value = ~np.isnan(num).all(axis=0)
        if self.log_transform is True:
            return has_value
        sub = num
        w = np.ones(sub.shape[0]) if sample_weight is None else sample_weight
        mask = ~np.isnan(sub)
        wm = mask * w[:, None]
        total = wm.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            filled = np.where(mask, sub, 0.0)
            mean = (wm * filled).sum(axis=0) / total
            dev = np.where(mask, sub - mean, 0.0)
            var = (wm * dev**2).sum(axis=0) / total
            skew = (wm * dev**3).sum(axis=0) / total / var**1.5
        return has_value & (total > 0) & (var > 0) & (np.nan_to_num(skew) > _AUTO_LOG_SKEW)

    def _apply_log(self, num: np.ndarray) -> np.ndarray:
        if self._log_mask.any():
            num[:, self._log_mask] = _signed_log1p(num[:, self._log_mask])
        return num

    # -- categorical ----------------------------------------------------------------------
    def _fit_categories(self, frame: pd.DataFrame, cat_cols: list[str]) -> None:
        levels = {col: frame[col].cat.categories for col in cat_cols}
        codes = {}
        for col in cat_cols:
            c = np.asarray(frame[col].cat.codes)
            codes[col] = c[c >= 0].astype(np.float64)
        self._fit_category_codes(cat_cols, levels, codes)

    def _fit_category_codes(
        self, cat_cols: list[str], levels: dict[str, pd.Index], codes: dict[str, np.ndarray]
    ) -> None:
        """Fit the category codes from each column's observed level positions.

        ``codes[col]``: the position among ``levels[col]`` of every non-missing training
        value (or any multiset with the same frequent / infrequent split).
        """
        self.__dict__.pop("_lookups_cache", None)  # a refit: new codes
        self.cardinalities_ = [1] * len(cat_cols)
        self._code_maps: list[np.ndarray] = []
        self._encoded_cat_cols = []
        self._encoded_cat_idx = []
        self._levels = []
        for j, col in enumerate(cat_cols):
            if len(levels[col]) and len(codes[col]):
                self._encoded_cat_cols.append(col)
                self._encoded_cat_idx.append(j)
                self._levels.append(levels[col])
        if not self._encoded_cat_cols:
            self.ordinal_ = None
            return
        # one column per encoded categorical, padded with NaN (missing: no frequency)
        n = max(len(codes[col]) for col in self._encoded_cat_cols)
        matrix = np.full((n, len(self._encoded_cat_cols)), np.nan)
        for j_enc, col in enumerate(self._encoded_cat_cols):
            matrix[: len(codes[col]), j_enc] = codes[col]
        min_freq = self.min_category_frequency if self.min_category_frequency > 1 else None
        self.ordinal_ = OrdinalEncoder(
            categories=[np.arange(len(lv), dtype=np.float64) for lv in self._levels],
            handle_unknown="use_encoded_value",
            unknown_value=-1,
            encoded_missing_value=-1,
            min_frequency=min_freq,
            dtype=np.float64,
        ).fit(matrix)
        infrequent = getattr(self.ordinal_, "infrequent_categories_", [None] * len(self._levels))
        for j_enc, j in enumerate(self._encoded_cat_idx):
            n_levels = len(self.ordinal_.categories_[j_enc])
            rare = infrequent[j_enc]
            n_rare = 0 if rare is None else len(rare)
            n_frequent = n_levels - n_rare
            # OrdinalEncoder codes: -1 missing/unseen, 0..n_frequent-1 frequent levels,
            # n_frequent = the infrequent group. Shift by one and send -1 and the
            # infrequent group to the shared slot 0.
            n_codes = n_frequent + (1 if n_rare else 0)
            code_map = np.zeros(n_codes + 1, dtype=np.int64)
            code_map[1 : n_frequent + 1] = np.arange(1, n_frequent + 1)
            self._code_maps.append(code_map)
            self.cardinalities_[j] = n_frequent + 1

    def _embedding_dims(self) -> list[int]:
        if self.embedding_dim is None:
            return [embedding_dim_rule(c) for c in self.cardinalities_]
        return [int(self.embedding_dim)] * len(self.cardinalities_)
