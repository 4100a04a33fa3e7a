"""Bucketizers for zero-inflated, long-tailed columns.

Both transformers cut at *observed* values (``np.quantile(..., method="inverted_cdf")``)
and use right-closed intervals ``(lo, hi]``. With cut points that are data values, every
interval between two distinct cuts holds at least one training value, so the only way a
bucket can come out empty is a tie at a cut, which is merged away and reported with a
:class:`BucketMergeWarning` instead of silently losing the bucket.

``fit(X, y=None, sample_weight=None)`` takes frequency weights: the quantiles are those
of the rows repeated (the first sorted value whose cumulative weight reaches ``q`` times
the total weight), so integer weights give exactly the cuts of the repeated rows, and a
row of weight 0 is not training data at all.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils import check_array
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ltvkit._utils import Increasing, Int, Real, inverted_cdf_quantile, validate_params
from ltvkit.base import _values_of_dataset

__all__ = ["BucketMergeWarning", "LTVBucketizer", "QuantileBucketizer"]


class BucketMergeWarning(UserWarning):
    """Tied quantiles were merged, so a column got fewer buckets than requested.

    Examples
    --------
    >>> import warnings
    >>> from ltvkit.preprocessing import BucketMergeWarning
    >>> warnings.simplefilter("ignore", BucketMergeWarning)
    """


def _halving_quantiles(n_buckets: int) -> np.ndarray:
    """CC-OR-Net's cut rule generalized: 1 - 2**-j for j = 1..n_buckets-2.

    4 buckets -> (0.5, 0.75); every further bucket halves the top one, so the scheme keeps
    resolving the whale tail instead of spreading buckets evenly over the bulk.
    """
    return 1.0 - 0.5 ** np.arange(1, n_buckets - 1, dtype=np.float64)


def _check_non_negative(X: np.ndarray, whom: str) -> None:
    # The phrase "Negative values in data" is what sklearn's checks (and users' greps)
    # look for when an estimator declares ``input_tags.positive_only``.
    n_neg = int((X < 0).sum())
    if n_neg:
        raise ValueError(
            f"Negative values in data passed to {whom}: {n_neg} value(s) < 0 "
            f"(min {X.min():g}). LTVBucketizer buckets non-negative customer values; "
            "net out refunds before bucketizing."
        )


def _fit_rows(X: np.ndarray, sample_weight: object) -> tuple[np.ndarray, np.ndarray | None]:
    """The rows that count at fit, and their frequency weights (None: unweighted).

    Rows of weight 0 are dropped. Equal weights are the unweighted fit (no weights), so
    they give exactly the unweighted cuts.
    """
    if sample_weight is None:
        return X, None
    sw = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
    if np.all(sw == sw[0]):
        return X, None
    keep = sw > 0
    return X[keep], sw[keep]


def _format_cols(cols: list[str]) -> str:
    shown = ", ".join(cols[:10])
    return shown + (f" and {len(cols) - 10} more" if len(cols) > 10 else "")


class LTVBucketizer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Ordered value buckets for a non-negative LTV column: a zero bucket plus positive buckets.

    Bucket 0 holds the zeros (``v <= zero_tol``). The positive values (``v > zero_tol``)
    are cut into ``n_buckets - 1`` right-closed buckets ``(lower, upper]`` at quantiles of
    the positive training values, at user-given ``quantiles``, or at business
    ``boundaries``. The default cut rule is CC-OR-Net's, generalized by halving: the
    positive-value quantiles ``1 - 2**-j`` for ``j = 1 .. n_buckets - 2``, i.e. the 50th
    and 75th percentiles for 4 buckets, (50, 75, 87.5) for 5, the median for 3 and no cut
    for 2. For many equal-frequency buckets (MDME) pass ``quantiles`` instead.

    Quantiles are taken with ``method="inverted_cdf"``, so every cut is an observed value
    and every bucket holds training values. Tied quantiles (and a cut at the maximum,
    which would leave the top bucket empty) are merged: the column gets fewer buckets,
    ``n_buckets_`` says how many, and a :class:`BucketMergeWarning` is issued. With
    ``fit(X, sample_weight=w)`` the quantiles are weighted (frequency weights: integer
    weights give exactly the cuts of the repeated rows, rows of weight 0 are ignored).

    Parameters
    ----------
    n_buckets : int, default=4
        Total number of buckets including the zero bucket (>= 2). Ignored when
        ``quantiles`` or ``boundaries`` is given.
    boundaries : sequence of float or None, default=None
        Business cut points between the positive buckets, strictly increasing and
        ``> zero_tol``; gives ``len(boundaries) + 2`` buckets. Used as given (no merging),
        so a bucket may be empty (see ``counts_``).
    zero_tol : float, default=1e-6
        Values ``<= zero_tol`` go to bucket 0 (CC-OR-Net uses 1e-6).
    quantiles : sequence of float or None, default=None
        Quantiles of the positive values, strictly increasing in (0, 1), at which to cut,
        e.g. ``(0.5, 0.75)`` (the default for 4 buckets) or ``(0.3, 0.6, 0.9)`` for
        equal-frequency buckets under a 90th-percentile tail cut. Gives up to
        ``len(quantiles) + 2`` buckets.

    Attributes
    ----------
    n_buckets_ : int
        Number of buckets after merging ties. (Fitted on several columns, each column is
        bucketized independently and every attribute here becomes a list with one entry
        per column, ``n_buckets_`` an int array.)
    boundaries_ : ndarray of shape (n_buckets_ - 2,)
        Cut points between the positive buckets: bucket ``k >= 1`` holds
        ``boundaries_[k - 2] < v <= boundaries_[k - 1]`` (open-ended at both ends).
    lower_, upper_ : ndarray of shape (n_buckets_,)
        Bucket ranges: bucket 0 is ``[0, 0]``, bucket 1 ``[0, boundaries_[0]]``, ..., the
        last ``[boundaries_[-1], max]`` where ``max`` is the largest training value
        (or the last business boundary if that is larger).
    centers_, half_widths_ : ndarray of shape (n_buckets_,)
        ``(lower_ + upper_) / 2`` and ``(upper_ - lower_) / 2`` (CC-OR-Net's ``c_b`` and
        ``r_b``); 0 for bucket 0.
    counts_ : ndarray of int64 of shape (n_buckets_,)
        Training values per bucket (rows, not weights: with ``sample_weight``, the rows of
        positive weight).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame with string column names.

    See Also
    --------
    QuantileBucketizer : equal-frequency bins for long-tailed feature columns.

    Notes
    -----
    Values above the training maximum go into the last bucket, values in
    ``(0, zero_tol]`` into bucket 0. Input must be finite and non-negative (ValueError).
    A column without any positive training value gets a single (empty) positive bucket
    and a warning.

    Examples
    --------
    >>> import numpy as np
    >>> from ltvkit.preprocessing import LTVBucketizer
    >>> y = np.array([0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8], dtype=float)
    >>> bk = LTVBucketizer(n_buckets=4).fit(y.reshape(-1, 1))
    >>> bk.boundaries_
    array([4., 6.])
    >>> bk.transform(y.reshape(-1, 1)).ravel()
    array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3])
    >>> bk.centers_
    array([0., 2., 5., 7.])

    Frequency weights: weight 3 on the value 1 is the same as three rows of 1.

    >>> w = np.where(y == 1, 3.0, 1.0)
    >>> LTVBucketizer(n_buckets=4).fit(y.reshape(-1, 1), sample_weight=w).boundaries_
    array([3., 6.])
    """

    def __init__(
        self,
        n_buckets: int = 4,
        boundaries: Sequence[float] | None = None,
        zero_tol: float = 1e-6,
        quantiles: Sequence[float] | None = None,
    ) -> None:
        self.n_buckets = n_buckets
        self.boundaries = boundaries
        self.zero_tol = zero_tol
        self.quantiles = quantiles

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        tags.transformer_tags.preserves_dtype = []  # bucket ids are int64
        return tags

    _parameter_constraints: ClassVar[dict[str, list]] = {
        "n_buckets": [Int(2)],
        "quantiles": [Increasing(Real(0.0, 1.0, closed="neither"), allow_empty=True), None],
        # > zero_tol, checked with it in _check_params
        "boundaries": [Increasing(Real(0.0), allow_empty=True), None],
        "zero_tol": [Real(0.0)],
    }

    def _check_params(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Validate the parameters; return the cut points or the cut quantiles."""
        validate_params(self)
        if self.boundaries is not None and self.quantiles is not None:
            raise ValueError("Give either boundaries or quantiles, not both.")
        if self.boundaries is not None:
            bounds = np.asarray(self.boundaries, dtype=np.float64)
            if bounds.size and bounds[0] <= self.zero_tol:
                raise ValueError(
                    f"boundaries must all be > zero_tol={self.zero_tol:g} (bucket 0 holds "
                    f"the zeros), got {bounds.tolist()}."
                )
            return bounds, None
        if self.quantiles is not None:
            return None, np.asarray(self.quantiles, dtype=np.float64)
        return None, _halving_quantiles(int(self.n_buckets))

    def fit(self, X: object, y: object = None, sample_weight: object = None) -> LTVBucketizer:
        """Learn the bucket boundaries.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Non-negative, finite values; usually one column, ``y.reshape(-1, 1)``.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency weights of the rows (non-negative, finite, not all 0). The cuts
            become weighted ``inverted_cdf`` quantiles: integer weights give exactly the
            cuts of the rows repeated that many times, rows of weight 0 are ignored (also
            for the top of the last bucket and ``counts_``), equal weights give the
            unweighted cuts. Business ``boundaries`` are used as given.

        Returns
        -------
        self : LTVBucketizer

        Examples
        --------
        >>> import numpy as np
        >>> LTVBucketizer(boundaries=[10, 100]).fit(np.array([[0.0], [50.0]])).n_buckets_
        4
        >>> y = np.array([[0.0], [1.0], [2.0], [3.0], [4.0]])
        >>> LTVBucketizer(n_buckets=3).fit(y, sample_weight=[1, 5, 1, 1, 1]).boundaries_
        array([1.])
        """
        X = _values_of_dataset(X)  # a ParquetDataset: its target column
        bounds, qs = self._check_params()
        X = validate_data(self, X, dtype=np.float64)
        _check_non_negative(X, type(self).__name__)
        X_fit, w_fit = _fit_rows(X, sample_weight)
        names = self._column_names()
        cuts, merged, no_positive = [], [], []
        for j in range(X_fit.shape[1]):
            is_pos = X_fit[:, j] > self.zero_tol
            pos = X_fit[:, j][is_pos]
            if bounds is not None:
                c = bounds
            elif pos.size == 0:
                c = np.empty(0)
                if qs.size:
                    no_positive.append(names[j])
            else:
                w_pos = None if w_fit is None else w_fit[is_pos]
                cand = inverted_cdf_quantile(pos, qs, w_pos)
                # unique() merges tied quantiles; a cut at the maximum would leave the top
                # bucket empty, so it is merged too.
                c = np.unique(cand)
                c = c[c < pos.max()]
                if c.size < qs.size:
                    merged.append(f"{names[j]} ({qs.size + 2} -> {c.size + 2} buckets)")
            cuts.append(np.asarray(c, dtype=np.float64))
        if merged:
            warnings.warn(
                "LTVBucketizer: tied positive-value quantiles were merged, so fewer buckets "
                f"than requested in column(s) {_format_cols(merged)}. See n_buckets_.",
                BucketMergeWarning,
                stacklevel=2,
            )
        if no_positive:
            warnings.warn(
                f"LTVBucketizer: column(s) {_format_cols(no_positive)} have no value > "
                f"zero_tol={self.zero_tol:g}; they get one empty positive bucket.",
                BucketMergeWarning,
                stacklevel=2,
            )
        self._cuts = cuts
        self._zero_tol = float(self.zero_tol)
        ids = self._bucket_ids(X_fit)
        per_col = []
        for j, c in enumerate(cuts):
            col = X_fit[:, j]
            top = max(float(c[-1]) if c.size else 0.0, float(col.max()) if col.size else 0.0)
            lower = np.concatenate(([0.0, 0.0], c))
            upper = np.concatenate(([0.0], c, [top]))
            counts = np.bincount(ids[:, j], minlength=c.size + 2).astype(np.int64)
            per_col.append((c.copy(), lower, upper, counts))
        single = len(per_col) == 1

        def pick(k: int) -> object:
            vals = [pc[k] for pc in per_col]
            return vals[0] if single else vals

        self.boundaries_ = pick(0)
        self.lower_ = pick(1)
        self.upper_ = pick(2)
        self.counts_ = pick(3)
        if single:
            self.centers_ = (self.lower_ + self.upper_) / 2.0
            self.half_widths_ = (self.upper_ - self.lower_) / 2.0
            self.n_buckets_ = int(cuts[0].size + 2)
        else:
            self.centers_ = [
                (lo + up) / 2.0 for lo, up in zip(self.lower_, self.upper_, strict=True)
            ]
            self.half_widths_ = [
                (up - lo) / 2.0 for lo, up in zip(self.lower_, self.upper_, strict=True)
            ]
            self.n_buckets_ = np.array([c.size + 2 for c in cuts], dtype=np.int64)
        return self

    def _column_names(self) -> list[str]:
        if hasattr(self, "feature_names_in_"):
            return [str(c) for c in self.feature_names_in_]
        return [f"x{j}" for j in range(self.n_features_in_)]

    def _bucket_ids(self, X: np.ndarray) -> np.ndarray:
        out = np.empty(X.shape, dtype=np.int64)
        for j, c in enumerate(self._cuts):
            col = X[:, j]
            # side="left" counts the cuts strictly below v: right-closed buckets (lo, hi].
            out[:, j] = np.where(col <= self._zero_tol, 0, 1 + np.searchsorted(c, col, "left"))
        return out

    def transform(self, X: object) -> np.ndarray:
        """Map values to integer bucket ids.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Non-negative, finite values.

        Returns
        -------
        ids : ndarray of int64 of shape (n_samples, n_features)
            0 for zeros, 1 .. ``n_buckets_ - 1`` for increasing positive values.

        Examples
        --------
        >>> import numpy as np
        >>> bk = LTVBucketizer(boundaries=[10, 100]).fit(np.array([[0.0], [50.0]]))
        >>> bk.transform([[0.0], [5.0], [10.0], [10.5], [1e6]]).ravel()
        array([0, 1, 1, 2, 3])
        """
        X = _values_of_dataset(X)  # a ParquetDataset: its target column
        check_is_fitted(self, "_cuts")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        _check_non_negative(X, type(self).__name__)
        return self._bucket_ids(X)

    def inverse_transform(self, X: object) -> np.ndarray:
        """Map bucket ids to bucket centers (``centers_``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Integer bucket ids as returned by :meth:`transform`.

        Returns
        -------
        values : ndarray of float64 of shape (n_samples, n_features)

        Examples
        --------
        >>> import numpy as np
        >>> bk = LTVBucketizer(boundaries=[10, 100]).fit(np.array([[0.0], [50.0], [300.0]]))
        >>> bk.inverse_transform([[0], [1], [2], [3]]).ravel()
        array([  0.,   5.,  55., 200.])
        """
        check_is_fitted(self, "_cuts")
        ids = check_array(X, dtype=np.float64)
        if ids.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {ids.shape[1]} columns, but LTVBucketizer was fitted on "
                f"{self.n_features_in_}."
            )
        if not (ids == np.round(ids)).all():
            raise ValueError("inverse_transform expects integer bucket ids.")
        out = np.empty(ids.shape, dtype=np.float64)
        centers = [self.centers_] if self.n_features_in_ == 1 else self.centers_
        for j, cen in enumerate(centers):
            col = ids[:, j].astype(np.int64)
            if col.size and (col.min() < 0 or col.max() >= cen.size):
                raise ValueError(
                    f"Bucket ids in column {j} must be in [0, {cen.size - 1}], got "
                    f"[{col.min()}, {col.max()}]."
                )
            out[:, j] = cen[col]
        return out


class QuantileBucketizer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Equal-frequency bins for long-tailed, zero-inflated feature columns.

    Per column, the non-zero, non-missing values are cut into ``n_bins`` equal-frequency,
    right-closed bins (the ODMN paper discretizes dense features this way before
    embedding them). Exact zeros get a bin of their own and so does NaN, so an 80%-zero
    column keeps all its bins for the positive values, where ``KBinsDiscretizer``
    collapses to about 3 bins.

    Bin ids are ordered by value: the bins of negative values, then the zero bin
    (``zero_bin_``), then the bins of positive values; the NaN bin is always the last id
    (``n_bins_ - 1``). The zero and NaN bins are reserved even when the training column
    has no zero or no NaN. Tied quantiles are merged (fewer bins, with a
    :class:`BucketMergeWarning`); if the column holds both signs, 0 is an extra cut, so no
    bin mixes negative and positive values. ``fit(X, sample_weight=w)`` weights the
    quantiles (frequency weights, as in :class:`LTVBucketizer`).

    Parameters
    ----------
    n_bins : int, default=10
        Number of equal-frequency bins for the non-zero values (>= 1).

    Attributes
    ----------
    bin_edges_ : list of ndarray
        Per column, the interior cut points; a non-zero value ``v`` falls into the bin
        ``(edges[k - 1], edges[k]]``.
    n_bins_ : ndarray of int64 of shape (n_features_in_,)
        Number of distinct ids per column (value bins + zero bin + NaN bin).
    zero_bin_ : ndarray of int64 of shape (n_features_in_,)
        Id of the zero bin per column (0 unless the column has negative values).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame with string column names.

    Notes
    -----
    Values outside the training range go to the nearest bin (below the smallest negative
    value: the lowest bin; a negative value in a column trained without negatives: the
    zero bin; symmetrically for positive values). inf is rejected (ValueError).

    Examples
    --------
    >>> import numpy as np
    >>> from ltvkit.preprocessing import QuantileBucketizer
    >>> X = np.array([[0.0], [0.0], [0.0], [1.0], [2.0], [3.0], [4.0], [np.nan]])
    >>> qb = QuantileBucketizer(n_bins=2).fit(X)
    >>> qb.bin_edges_
    [array([2.])]
    >>> qb.transform(X).ravel()
    array([0, 0, 0, 1, 1, 2, 2, 3])
    >>> w = [1, 1, 1, 3, 1, 1, 1, 1]  # weight 3 on the value 1
    >>> QuantileBucketizer(n_bins=2).fit(X, sample_weight=w).bin_edges_
    [array([1.])]
    """

    _parameter_constraints: ClassVar[dict[str, list]] = {"n_bins": [Int(1)]}

    def __init__(self, n_bins: int = 10) -> None:
        self.n_bins = n_bins

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = []  # bin ids are int64
        return tags

    def fit(self, X: object, y: object = None, sample_weight: object = None) -> QuantileBucketizer:
        """Learn the per-column bin edges.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Numeric columns; NaN allowed, inf not.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency weights of the rows (non-negative, finite, not all 0): weighted
            ``inverted_cdf`` quantiles, so integer weights give exactly the edges of the
            rows repeated; rows of weight 0 are ignored. Equal weights give the
            unweighted edges.

        Returns
        -------
        self : QuantileBucketizer

        Examples
        --------
        >>> import numpy as np
        >>> QuantileBucketizer(n_bins=4).fit(np.arange(20.0).reshape(-1, 1)).n_bins_
        array([6])
        """
        X = _values_of_dataset(X)  # a ParquetDataset: its target column
        validate_params(self)
        n = self.n_bins
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        X_fit, w_fit = _fit_rows(X, sample_weight)
        if hasattr(self, "feature_names_in_"):
            names = [str(c) for c in self.feature_names_in_]
        else:
            names = [f"x{j}" for j in range(X.shape[1])]
        qs = np.linspace(0.0, 1.0, int(n) + 1)[1:-1]
        edges, n_bins, zero_bin, merged = [], [], [], []
        for j in range(X_fit.shape[1]):
            col = X_fit[:, j]
            nonzero = (col != 0) & ~np.isnan(col)
            if w_fit is None:
                vals, w = np.sort(col[nonzero]), None
            else:
                order = np.argsort(col[nonzero], kind="stable")
                vals, w = col[nonzero][order], w_fit[nonzero][order]
            e = self._edges(vals, qs, w)
            n_value_bins = e.size + 1 if vals.size else 0
            has_neg = bool(vals.size) and vals[0] < 0
            if vals.size and n_value_bins < n:
                merged.append(f"{names[j]} ({n} -> {n_value_bins} bins)")
            edges.append(e)
            n_bins.append(n_value_bins + 2)
            # The zero bin follows the negative bins (ids 0 .. k, k = cuts below 0).
            zero_bin.append(int(np.searchsorted(e, 0.0, "left")) + 1 if has_neg else 0)
        if merged:
            warnings.warn(
                "QuantileBucketizer: tied quantiles were merged, so fewer non-zero bins than "
                f"n_bins in column(s) {_format_cols(merged)}.",
                BucketMergeWarning,
                stacklevel=2,
            )
        self.bin_edges_ = edges
        self.n_bins_ = np.asarray(n_bins, dtype=np.int64)
        self.zero_bin_ = np.asarray(zero_bin, dtype=np.int64)
        return self

    @staticmethod
    def _edges(vals: np.ndarray, qs: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
        """Interior cuts of sorted non-zero ``vals`` such that no bin is empty.

        ``weights`` (aligned with ``vals``, all > 0, or None) only weight the quantiles:
        whether a bin is empty does not depend on how much its rows weigh.
        """
        if vals.size == 0:
            return np.empty(0)
        cand = np.unique(inverted_cdf_quantile(vals, qs, weights)) if qs.size else []
        split_at_zero = vals[0] < 0 < vals[-1]
        if split_at_zero:
            cand = np.union1d(cand, [0.0])
        kept: list[float] = []
        below = 0  # number of values <= the last kept cut
        for e in cand:
            n_le = int(np.searchsorted(vals, e, "right"))
            if split_at_zero and e == 0.0:
                if n_le == below and kept:
                    kept.pop()  # (last cut, 0] would be empty: merge it downwards
                kept.append(0.0)
                below = n_le
            elif below < n_le < vals.size:
                kept.append(float(e))
                below = n_le
        return np.asarray(kept, dtype=np.float64)

    def transform(self, X: object) -> np.ndarray:
        """Map values to integer bin ids.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ids : ndarray of int64 of shape (n_samples, n_features)

        Examples
        --------
        >>> import numpy as np
        >>> qb = QuantileBucketizer(n_bins=2).fit([[0.0], [1.0], [2.0], [3.0], [4.0]])
        >>> qb.transform([[0.0], [1.5], [100.0], [np.nan]]).ravel()
        array([0, 1, 2, 3])
        """
        X = _values_of_dataset(X)  # a ParquetDataset: its target column
        check_is_fitted(self, "bin_edges_")
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan", reset=False)
        out = np.empty(X.shape, dtype=np.int64)
        for j, e in enumerate(self.bin_edges_):
            col = X[:, j]
            n_value_bins = int(self.n_bins_[j]) - 2
            k = np.searchsorted(e, col, "left")
            # Negative values keep k; the zero bin sits between negatives and positives,
            # so positive ids shift by one. Out-of-range values clip to the nearest bin.
            ids = np.where(col < 0, k, np.minimum(k + 1, n_value_bins))
            ids[col == 0] = self.zero_bin_[j]
            ids[np.isnan(col)] = n_value_bins + 1
            out[:, j] = ids
        return out
