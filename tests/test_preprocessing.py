"""Tests for ltvkit.preprocessing: LTVBucketizer and QuantileBucketizer."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
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
        ({"boundaries": [1.0, np.inf]}, "finite"),
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
