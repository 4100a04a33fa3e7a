"""Tests for ltvkit.preprocessing: LTVBucketizer and QuantileBucketizer."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import KBinsDiscretizer, OneHotEncoder
from sklearn.utils.estimator_checks import parametrize_with_checks

from ltvkit.preprocessing import BucketMergeWarning, LTVBucketizer, QuantileBucketizer

# --------------------------------------------------------------------------- sklearn checks


@pytest.mark.filterwarnings("ignore::ltvkit.preprocessing.BucketMergeWarning")
@parametrize_with_checks(
    [
        LTVBucketizer(),
        LTVBucketizer(n_buckets=6),
        LTVBucketizer(quantiles=(0.3, 0.6, 0.9)),
        LTVBucketizer(boundaries=(0.5, 2.0)),
        QuantileBucketizer(),
        QuantileBucketizer(n_bins=3),
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# --------------------------------------------------------------------------- LTVBucketizer


def _col(values: object) -> np.ndarray:
    return np.asarray(values, dtype=float).reshape(-1, 1)


def test_ltv_hand_worked_example():
    # 4 zeros + positives 1..8. inverted-CDF quantiles of the 8 positives: the 50th is the
    # 4th value (4), the 75th the 6th (6). Buckets: {0}, (0, 4], (4, 6], (6, 8].
    y = np.array([0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8], dtype=float)
    bk = LTVBucketizer(n_buckets=4).fit(_col(y))
    assert bk.n_buckets_ == 4
    np.testing.assert_array_equal(bk.boundaries_, [4.0, 6.0])
    np.testing.assert_array_equal(bk.lower_, [0.0, 0.0, 4.0, 6.0])
    np.testing.assert_array_equal(bk.upper_, [0.0, 4.0, 6.0, 8.0])
    np.testing.assert_array_equal(bk.centers_, [0.0, 2.0, 5.0, 7.0])
    np.testing.assert_array_equal(bk.half_widths_, [0.0, 2.0, 1.0, 1.0])
    np.testing.assert_array_equal(bk.counts_, [4, 4, 2, 2])
    ids = bk.transform(_col(y)).ravel()
    np.testing.assert_array_equal(ids, [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3])
    assert ids.dtype == np.int64
    for attr in ("lower_", "upper_", "centers_", "half_widths_", "counts_"):
        assert getattr(bk, attr).shape == (4,)


def test_ltv_ccornet_50_75_percentiles():
    rng = np.random.default_rng(0)
    y = np.where(rng.random(20_000) < 0.6, 0.0, rng.lognormal(3.0, 1.2, 20_000))
    bk = LTVBucketizer().fit(_col(y))
    pos = y[y > 0]
    np.testing.assert_allclose(
        bk.boundaries_, np.quantile(pos, [0.5, 0.75], method="inverted_cdf")
    )
    # continuous data: the textbook percentiles agree to within sampling noise
    np.testing.assert_allclose(bk.boundaries_, np.percentile(pos, [50, 75]), rtol=1e-3)
    ids = bk.transform(_col(y)).ravel()
    share = np.bincount(ids[y > 0], minlength=4)[1:] / pos.size
    np.testing.assert_allclose(share, [0.5, 0.25, 0.25], atol=1e-3)
    assert (ids[y == 0] == 0).all()


@pytest.mark.parametrize(
    ("n_buckets", "quantiles"),
    [(2, []), (3, [0.5]), (4, [0.5, 0.75]), (5, [0.5, 0.75, 0.875])],
)
def test_ltv_halving_rule(n_buckets, quantiles):
    pos = np.arange(1.0, 1001.0)
    bk = LTVBucketizer(n_buckets=n_buckets).fit(_col(np.r_[0.0, pos]))
    assert bk.n_buckets_ == n_buckets
    np.testing.assert_array_equal(
        bk.boundaries_, np.quantile(pos, quantiles, method="inverted_cdf")
    )


def test_ltv_user_quantiles_equal_frequency():
    pos = np.arange(1.0, 101.0)
    bk = LTVBucketizer(quantiles=(0.3, 0.6, 0.9)).fit(_col(np.r_[np.zeros(50), pos]))
    assert bk.n_buckets_ == 5
    np.testing.assert_array_equal(bk.boundaries_, [30.0, 60.0, 90.0])
    np.testing.assert_array_equal(bk.counts_, [50, 30, 30, 30, 10])


def test_ltv_business_boundaries_and_edges():
    bk = LTVBucketizer(boundaries=[10, 100]).fit(_col([0.0, 5.0, 50.0, 300.0]))
    assert bk.n_buckets_ == 4
    np.testing.assert_array_equal(bk.boundaries_, [10.0, 100.0])
    np.testing.assert_array_equal(bk.upper_, [0.0, 10.0, 100.0, 300.0])
    # right-closed buckets; (0, zero_tol] -> 0; above the training max -> last bucket
    ids = bk.transform(_col([0.0, 5e-7, 2e-6, 10.0, 10.01, 100.0, 1e9])).ravel()
    np.testing.assert_array_equal(ids, [0, 0, 1, 1, 2, 2, 3])
    # business boundaries are used as given: an empty bucket is reported in counts_
    bk = LTVBucketizer(boundaries=[10, 100, 1000]).fit(_col([0.0, 5.0, 50.0]))
    np.testing.assert_array_equal(bk.counts_, [1, 1, 1, 0, 0])
    assert bk.upper_[-1] == 1000.0  # last boundary above the training max


def test_ltv_zero_tol():
    bk = LTVBucketizer(n_buckets=2, zero_tol=0.5).fit(_col([0.0, 0.5, 0.6, 3.0]))
    np.testing.assert_array_equal(bk.transform(_col([0.0, 0.5, 0.6, 3.0])).ravel(), [0, 0, 1, 1])
    np.testing.assert_array_equal(bk.lower_, [0.0, 0.0])
    np.testing.assert_array_equal(bk.upper_, [0.0, 3.0])


def test_ltv_duplicate_quantiles_merge_and_warn():
    # positives: ten 5s and one 7 -> the 50th and 75th percentiles are both 5
    y = np.r_[np.zeros(5), np.full(10, 5.0), 7.0]
    with pytest.warns(BucketMergeWarning, match="merged"):
        bk = LTVBucketizer().fit(_col(y))
    assert bk.n_buckets_ == 3
    np.testing.assert_array_equal(bk.boundaries_, [5.0])
    np.testing.assert_array_equal(bk.counts_, [5, 10, 1])  # no empty bucket
    assert bk.centers_.shape == (3,)
    # a cut at the maximum would leave the top bucket empty: merged too
    with pytest.warns(BucketMergeWarning):
        bk = LTVBucketizer().fit(_col([0.0, 5.0, 5.0, 5.0, 5.0]))
    assert bk.n_buckets_ == 2
    np.testing.assert_array_equal(bk.counts_, [1, 4])


def test_ltv_no_merge_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LTVBucketizer().fit(_col(np.arange(10.0)))


def test_ltv_all_zero_column_warns():
    with pytest.warns(BucketMergeWarning, match="no value"):
        bk = LTVBucketizer().fit(_col(np.zeros(5)))
    assert bk.n_buckets_ == 2
    np.testing.assert_array_equal(bk.transform(_col([0.0, 3.0])).ravel(), [0, 1])


def test_ltv_inverse_transform_gives_centers():
    rng = np.random.default_rng(1)
    y = np.where(rng.random(500) < 0.5, 0.0, rng.lognormal(2.0, 1.0, 500))
    bk = LTVBucketizer().fit(_col(y))
    ids = bk.transform(_col(y))
    back = bk.inverse_transform(ids)
    np.testing.assert_array_equal(back.ravel(), bk.centers_[ids.ravel()])
    assert back.dtype == np.float64
    # every value lies inside its bucket's [lower, upper]
    k = ids.ravel()
    assert ((bk.lower_[k] <= y) & (y <= bk.upper_[k])).all()
    with pytest.raises(ValueError, match="must be in"):
        bk.inverse_transform([[4]])
    with pytest.raises(ValueError, match="integer"):
        bk.inverse_transform([[1.5]])


def test_ltv_several_columns_are_independent():
    X = np.c_[np.arange(12.0), 10 * np.arange(12.0)]
    bk = LTVBucketizer().fit(X)
    assert isinstance(bk.boundaries_, list) and len(bk.boundaries_) == 2
    np.testing.assert_array_equal(bk.n_buckets_, [4, 4])
    np.testing.assert_array_equal(bk.boundaries_[1], 10 * bk.boundaries_[0])
    np.testing.assert_array_equal(bk.transform(X)[:, 0], bk.transform(X)[:, 1])
    np.testing.assert_array_equal(
        bk.inverse_transform(bk.transform(X))[:, 1] / 10,
        bk.inverse_transform(bk.transform(X))[:, 0],
    )


@pytest.mark.parametrize(
    ("X", "match"),
    [
        (_col([1.0, -2.0]), "Negative values in data"),
        (_col([1.0, np.nan]), "NaN"),
        (_col([1.0, np.inf]), "infinity"),
        (np.array([1.0, 2.0]), "Expected 2D array"),
        (np.array([["a"], ["b"]], dtype=object), "could not convert"),
    ],
)
def test_ltv_bad_input(X, match):
    with pytest.raises(ValueError, match=match):
        LTVBucketizer().fit(X)


def test_ltv_bad_input_at_transform():
    bk = LTVBucketizer().fit(_col(np.arange(10.0)))
    with pytest.raises(ValueError, match="Negative values in data"):
        bk.transform(_col([-1.0]))
    with pytest.raises(ValueError, match="features"):
        bk.transform(np.zeros((2, 2)))


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n_buckets": 1}, "n_buckets"),
        ({"n_buckets": 2.5}, "n_buckets"),
        ({"boundaries": [1.0], "quantiles": [0.5]}, "not both"),
        ({"boundaries": [5.0, 1.0]}, "strictly increasing"),
        ({"boundaries": [0.0, 1.0]}, "zero_tol"),
        ({"boundaries": [1.0, np.inf]}, r"boundaries must be .* numbers >= 0"),
        ({"quantiles": [0.5, 1.0]}, r"\(0, 1\)"),
        ({"quantiles": [0.7, 0.5]}, "strictly increasing"),
        ({"zero_tol": -1.0}, "zero_tol"),
    ],
)
def test_ltv_bad_params(params, match):
    with pytest.raises(ValueError, match=match):
        LTVBucketizer(**params).fit(_col(np.arange(10.0)))


# --------------------------------------------------------------------------- QuantileBucketizer


def test_quantile_beats_kbins_on_zero_inflated_column():
    rng = np.random.default_rng(0)
    n, n_bins = 5000, 10
    x = np.where(rng.random(n) < 0.8, 0.0, rng.lognormal(3.0, 1.0, n)).reshape(-1, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Bins whose width are too small"
        kb = KBinsDiscretizer(n_bins=n_bins, encode="ordinal", strategy="quantile").fit(x)
    assert np.unique(kb.transform(x)).size <= 3  # the collapse we are fixing

    qb = QuantileBucketizer(n_bins=n_bins).fit(x)
    ids = qb.transform(x).ravel()
    pos = x.ravel() > 0
    assert np.unique(ids[pos]).size >= n_bins - 1
    assert (ids[~pos] == qb.zero_bin_[0]).all() and qb.zero_bin_[0] == 0
    assert not np.isin(ids[pos], [0]).any()  # zeros have a bin of their own
    counts = np.bincount(ids[pos])[1:]
    assert counts.min() >= 0.8 * pos.sum() / n_bins  # equal frequency


def test_quantile_hand_worked_and_nan_bin():
    X = np.array([[0.0], [0.0], [0.0], [1.0], [2.0], [3.0], [4.0], [np.nan]])
    qb = QuantileBucketizer(n_bins=2).fit(X)
    np.testing.assert_array_equal(qb.bin_edges_[0], [2.0])
    np.testing.assert_array_equal(qb.n_bins_, [4])
    np.testing.assert_array_equal(qb.transform(X).ravel(), [0, 0, 0, 1, 1, 2, 2, 3])
    # NaN unseen at fit still gets the (reserved) last id
    qb = QuantileBucketizer(n_bins=2).fit(X[:-1])
    assert qb.transform([[np.nan]])[0, 0] == qb.n_bins_[0] - 1 == 3


def test_quantile_negative_values_ordered_around_zero():
    x = np.r_[-np.arange(1.0, 21.0), np.zeros(10), np.arange(1.0, 21.0)]
    qb = QuantileBucketizer(n_bins=4).fit(x.reshape(-1, 1))
    ids = qb.transform(x.reshape(-1, 1)).ravel()
    order = np.argsort(x, kind="stable")
    assert (np.diff(ids[order]) >= 0).all()
    zero = qb.zero_bin_[0]
    assert (ids[x == 0] == zero).all()
    assert (ids[x < 0] < zero).all() and (ids[x > 0] > zero).all()
    # out-of-range values clip to the nearest bin
    edge = qb.transform([[-1e9], [1e9]]).ravel()
    assert edge[0] == 0 and edge[1] == qb.n_bins_[0] - 2
    # a column fitted without negatives sends a negative value to its lowest bin, the zero bin
    qb = QuantileBucketizer(n_bins=3).fit(np.arange(10.0).reshape(-1, 1))
    assert qb.transform([[-5.0]])[0, 0] == qb.zero_bin_[0] == 0


def test_quantile_merge_warns_on_ties():
    x = np.r_[np.zeros(5), np.ones(50), 2.0].reshape(-1, 1)
    with pytest.warns(BucketMergeWarning, match="x0"):
        qb = QuantileBucketizer(n_bins=5).fit(x)
    ids = qb.transform(x).ravel()
    assert np.unique(ids).size == 3  # zero, the 1s, the 2
    assert (np.bincount(ids) > 0).all()


@pytest.mark.parametrize(
    ("X", "match"),
    [(np.array([[1.0], [np.inf]]), "infinity"), (np.array([1.0, 2.0]), "Expected 2D array")],
)
def test_quantile_bad_input(X, match):
    with pytest.raises(ValueError, match=match):
        QuantileBucketizer().fit(X)


@pytest.mark.parametrize("n_bins", [0, 2.0, "10"])
def test_quantile_bad_params(n_bins):
    with pytest.raises(ValueError, match="n_bins"):
        QuantileBucketizer(n_bins=n_bins).fit(np.ones((3, 1)))


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(
    x=arrays(np.float64, st.integers(1, 60), elements=st.one_of(finite, st.just(0.0))),
    n_bins=st.integers(1, 12),
)
def test_quantile_ids_monotone_and_in_range(x, n_bins):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BucketMergeWarning)
        qb = QuantileBucketizer(n_bins=n_bins).fit(x.reshape(-1, 1))
    ids = qb.transform(x.reshape(-1, 1)).ravel()
    order = np.argsort(x, kind="stable")
    assert (np.diff(ids[order]) >= 0).all()
    assert ids.min() >= 0 and ids.max() <= qb.n_bins_[0] - 2  # NaN id unused
    assert (np.bincount(ids, minlength=qb.n_bins_[0])[ids] > 0).all()


@settings(max_examples=60, deadline=None)
@given(
    y=arrays(np.float64, st.integers(1, 60), elements=st.floats(0, 1e6)),
    n_buckets=st.integers(2, 8),
)
def test_ltv_ids_monotone_and_buckets_non_empty(y, n_buckets):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BucketMergeWarning)
        bk = LTVBucketizer(n_buckets=n_buckets).fit(y.reshape(-1, 1))
    ids = bk.transform(y.reshape(-1, 1)).ravel()
    order = np.argsort(y, kind="stable")
    assert (np.diff(ids[order]) >= 0).all()
    assert 2 <= bk.n_buckets_ <= n_buckets
    if (y > bk.zero_tol).any():  # every positive bucket holds training values
        assert (bk.counts_[1:] > 0).all()
    pos = ids > 0  # bucket 0 is [0, 0] but also takes values in (0, zero_tol]
    assert ((bk.lower_[ids] <= y) & (y <= bk.upper_[ids]))[pos].all()
    assert (y[~pos] <= bk.zero_tol).all()


# --------------------------------------------------------------------------- sample_weight


def _repeated(X: np.ndarray, w: np.ndarray) -> np.ndarray:
    return np.repeat(np.asarray(X, dtype=float), np.asarray(w, dtype=int), axis=0)


def _assert_same_fit(a: object, b: object, X: np.ndarray) -> None:
    """Same fitted cuts and bucket ranges (not counts_), same ids on ``X``."""
    if isinstance(a, LTVBucketizer):
        np.testing.assert_array_equal(a.n_buckets_, b.n_buckets_)
        for attr in ("boundaries_", "lower_", "upper_", "centers_", "half_widths_"):
            va, vb = getattr(a, attr), getattr(b, attr)
            for x, y in zip(*(v if isinstance(v, list) else [v] for v in (va, vb)), strict=True):
                np.testing.assert_array_equal(x, y)
    else:
        for x, y in zip(a.bin_edges_, b.bin_edges_, strict=True):
            np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(a.n_bins_, b.n_bins_)
        np.testing.assert_array_equal(a.zero_bin_, b.zero_bin_)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))


@pytest.mark.filterwarnings("ignore::ltvkit.preprocessing.BucketMergeWarning")
@pytest.mark.parametrize(
    "est",
    [
        LTVBucketizer(),
        LTVBucketizer(n_buckets=6),
        LTVBucketizer(quantiles=(0.3, 0.6, 0.9)),
        LTVBucketizer(boundaries=(2.0, 5.0)),
        QuantileBucketizer(),
        QuantileBucketizer(n_bins=3),
    ],
)
def test_integer_weights_give_the_cuts_of_repeated_rows(est):
    rng = np.random.default_rng(0)
    n = 500
    X = np.c_[
        np.where(rng.random(n) < 0.4, 0.0, rng.lognormal(1.0, 1.0, n)),  # continuous
        rng.integers(0, 9, n).astype(float),  # many ties
    ]
    w = rng.integers(0, 4, n)
    weighted = clone(est).fit(X, sample_weight=w)
    repeated = clone(est).fit(_repeated(X, w))
    _assert_same_fit(weighted, repeated, X)
    if isinstance(est, LTVBucketizer):
        # counts_ counts the rows of positive weight, not the weights
        ids = weighted.transform(X[w > 0])
        for j in range(2):
            np.testing.assert_array_equal(
                weighted.counts_[j], np.bincount(ids[:, j], minlength=weighted.n_buckets_[j])
            )


def test_weighted_cuts_are_those_of_repeated_rows_where_numpy_weighted_is_not():
    # total weight 50; QuantileBucketizer(n_bins=10) cuts at np.linspace(0, 1, 11), whose
    # 7th level is 0.7000000000000001. The repeated rows put that quantile at the 35th
    # value (34.0); np.quantile(x, q, method="inverted_cdf", weights=w) answers 35.0.
    x = np.arange(1.0, 50.0).reshape(-1, 1)
    w = np.r_[2.0, np.ones(48)]
    weighted = QuantileBucketizer(n_bins=10).fit(x, sample_weight=w)
    repeated = QuantileBucketizer(n_bins=10).fit(_repeated(x, w))
    assert 34.0 in weighted.bin_edges_[0]
    _assert_same_fit(weighted, repeated, x)
    # the same with LTVBucketizer at user quantiles
    qs = np.linspace(0.0, 1.0, 11)[1:-1]
    weighted = LTVBucketizer(quantiles=qs).fit(x, sample_weight=w)
    np.testing.assert_array_equal(
        weighted.boundaries_, LTVBucketizer(quantiles=qs).fit(_repeated(x, w)).boundaries_
    )


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    n=st.integers(1, 40),
    n_buckets=st.integers(2, 8),
    n_bins=st.integers(1, 12),
)
def test_integer_weights_equal_repeated_rows_property(data, n, n_buckets, n_bins):
    values = st.one_of(st.just(0.0), st.integers(1, 6).map(float), st.floats(1e-3, 1e6))
    y = data.draw(arrays(np.float64, n, elements=values))
    w = data.draw(arrays(np.int64, n, elements=st.integers(0, 4)).filter(lambda a: a.any()))
    x = data.draw(arrays(np.float64, n, elements=st.one_of(finite, st.just(0.0))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BucketMergeWarning)
        for est, X in (
            (LTVBucketizer(n_buckets=n_buckets), y.reshape(-1, 1)),
            (QuantileBucketizer(n_bins=n_bins), x.reshape(-1, 1)),
        ):
            weighted = clone(est).fit(X, sample_weight=w)
            repeated = clone(est).fit(_repeated(X, w))
            _assert_same_fit(weighted, repeated, X)


@pytest.mark.parametrize("est", [LTVBucketizer(), QuantileBucketizer(n_bins=4)])
def test_zero_weight_rows_are_ignored(est):
    rng = np.random.default_rng(1)
    n = 300
    X = np.where(rng.random((n, 2)) < 0.3, 0.0, rng.lognormal(2.0, 1.0, (n, 2)))
    w = rng.uniform(0.5, 2.0, n)
    w[:40] = 0.0
    X[:5] = 1e9  # zero-weight whales: no cut, no bucket top, no count
    weighted = clone(est).fit(X, sample_weight=w)
    dropped = clone(est).fit(X[40:], sample_weight=w[40:])
    _assert_same_fit(weighted, dropped, X)
    if isinstance(est, LTVBucketizer):
        for a, b in zip(weighted.counts_, dropped.counts_, strict=True):
            np.testing.assert_array_equal(a, b)
        assert max(u[-1] for u in weighted.upper_) < 1e9


@pytest.mark.parametrize("est", [LTVBucketizer(), QuantileBucketizer(n_bins=4)])
def test_equal_weights_are_the_unweighted_fit(est):
    X = np.r_[np.zeros(5), np.full(10, 5.0), 7.0].reshape(-1, 1)  # tied quantiles
    with pytest.warns(BucketMergeWarning, match="merged"):
        plain = clone(est).fit(X)
    with pytest.warns(BucketMergeWarning, match="merged"):
        weighted = clone(est).fit(X, sample_weight=np.full(len(X), 0.1))
    _assert_same_fit(weighted, plain, X)


def test_weights_move_the_cuts_and_can_merge_them():
    y = _col(np.r_[0.0, np.arange(1.0, 9.0)])
    assert LTVBucketizer().fit(y).boundaries_.tolist() == [4.0, 6.0]
    # weight 5 on the 1: positives 1, 1, 1, 1, 1, 2, ..., 8 (12 values); the median is
    # the 6th (2), the 75th percentile the 9th (5)
    w = np.r_[1.0, 5.0, np.ones(7)]
    bk = LTVBucketizer().fit(y, sample_weight=w)
    np.testing.assert_array_equal(bk.boundaries_, [2.0, 5.0])
    # weight 30 on the 1: both percentiles are 1, merged with a warning
    with pytest.warns(BucketMergeWarning, match="merged"):
        bk = LTVBucketizer().fit(y, sample_weight=np.r_[1.0, 30.0, np.ones(7)])
    np.testing.assert_array_equal(bk.boundaries_, [1.0])
    # fit_transform passes the weights on
    ids = LTVBucketizer().fit_transform(y, sample_weight=w).ravel()
    np.testing.assert_array_equal(ids, [0, 1, 1, 2, 2, 2, 3, 3, 3])


@pytest.mark.parametrize("est", [LTVBucketizer(), QuantileBucketizer()])
@pytest.mark.parametrize(
    ("sample_weight", "match"),
    [
        (np.r_[-1.0, np.ones(9)], r"Negative values in data passed to `sample_weight`"),
        (np.ones(9), r"sample_weight\.shape == \(9,\), expected \(10,\)"),
        (np.ones((10, 2)), "Sample weights must be 1D"),
        (np.zeros(10), "Sample weights must contain at least one non-zero number"),
        (np.r_[np.nan, np.ones(9)], "sample_weight contains NaN"),
        (np.r_[np.inf, np.ones(9)], "sample_weight contains infinity"),
    ],
)
def test_bad_sample_weight(est, sample_weight, match):
    with pytest.raises(ValueError, match=match):
        clone(est).fit(_col(np.arange(10.0)), sample_weight=sample_weight)


# --------------------------------------------------------------------------- sklearn integration


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 300
    return pd.DataFrame(
        {
            "visits": np.where(rng.random(n) < 0.7, 0.0, rng.poisson(5, n) + 1.0),
            "spend_90d": np.where(rng.random(n) < 0.8, 0.0, rng.lognormal(3, 1, n)),
            "ltv": np.where(rng.random(n) < 0.6, 0.0, rng.lognormal(4, 1, n)),
        },
        index=pd.RangeIndex(100, 100 + n),
    )


@pytest.mark.filterwarnings("ignore::ltvkit.preprocessing.BucketMergeWarning")
@pytest.mark.parametrize("est", [LTVBucketizer(), QuantileBucketizer(n_bins=4)])
def test_set_output_pandas(est, frame):
    out = est.set_output(transform="pandas").fit_transform(frame)
    assert isinstance(out, pd.DataFrame)
    assert out.columns.tolist() == frame.columns.tolist()
    assert out.index.equals(frame.index)
    assert all(pd.api.types.is_integer_dtype(t) for t in out.dtypes)
    np.testing.assert_array_equal(est.get_feature_names_out(), frame.columns)


def test_feature_names_for_arrays():
    qb = QuantileBucketizer(n_bins=2).fit(np.arange(8.0).reshape(4, 2))
    np.testing.assert_array_equal(qb.get_feature_names_out(), ["x0", "x1"])


@pytest.mark.filterwarnings("ignore::ltvkit.preprocessing.BucketMergeWarning")
def test_column_transformer_and_pipeline(frame):
    ct = ColumnTransformer(
        [
            ("feat", QuantileBucketizer(n_bins=4), ["visits", "spend_90d"]),
            ("label", LTVBucketizer(), ["ltv"]),
        ]
    ).set_output(transform="pandas")
    out = ct.fit_transform(frame)
    assert out.columns.tolist() == ["feat__visits", "feat__spend_90d", "label__ltv"]
    np.testing.assert_array_equal(
        out["label__ltv"], LTVBucketizer().fit_transform(frame[["ltv"]]).ravel()
    )

    pipe = Pipeline(
        [
            ("bin", QuantileBucketizer(n_bins=5)),
            ("ohe", OneHotEncoder(handle_unknown="ignore")),
            ("reg", Ridge()),
        ]
    )
    pipe.fit(frame[["visits", "spend_90d"]], frame["ltv"])
    pred = pipe.predict(frame[["visits", "spend_90d"]])
    assert pred.shape == (len(frame),) and np.isfinite(pred).all()
