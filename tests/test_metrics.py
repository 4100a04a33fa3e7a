"""Tests for ltvkit.metrics: hand-worked examples, properties, scorers and bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.metrics import get_scorer as sklearn_get_scorer
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score, cross_validate
from sklearn.tree import DecisionTreeRegressor

from ltvkit.metrics import (
    SCORERS,
    ambe,
    bucket_accuracy,
    decile_mape,
    gain_curve,
    get_scorer,
    high_value_auc,
    lorenz_curve,
    ltv_report,
    mape,
    mutual_gini,
    nmae,
    normalized_gini,
    normalized_gini_positive,
    nrmse,
    percentile_mape,
    recall_at_k,
    spearman,
    spearman_positive,
    sva,
    zero_f1,
)

SCALAR_METRICS = [
    normalized_gini,
    normalized_gini_positive,
    spearman,
    spearman_positive,
    recall_at_k,
    high_value_auc,
    mutual_gini,
    nmae,
    nrmse,
    ambe,
    mape,
    decile_mape,
    percentile_mape,
    sva,
    zero_f1,
    bucket_accuracy,
]
ALL_FUNCS = [*SCALAR_METRICS, gain_curve]
REPORT_NAMES = [f.__name__ for f in SCALAR_METRICS]

# Hypothesis data: zero-inflated customer values, 0 or an amount in [1e-6, 1e6]. (Amounts
# like 1e-300 only test floating-point overflow of ratios, not the metrics.)
values = st.one_of(st.just(0.0), st.floats(1e-6, 1e6))
value_lists = st.lists(values, min_size=1, max_size=60)
FAST = settings(max_examples=60, deadline=None)


def _pairs(min_size: int = 1) -> st.SearchStrategy:
    """(y_true, y_pred) lists of equal length."""
    return st.integers(min_size, 60).flatmap(
        lambda n: st.tuples(
            st.lists(values, min_size=n, max_size=n), st.lists(values, min_size=n, max_size=n)
        )
    )


# ---------------------------------------------------------------------------------------
# Hand-worked examples
# ---------------------------------------------------------------------------------------


def test_normalized_gini_hand_example():
    # Gini = 2 * mean(gain at the n points) - 1 (the definition).
    # y_pred descending takes rows 1, 0, 2, 3 -> y_true 0, 3, 1, 0 (total 4)
    # gain at x = .25, .5, .75, 1: 0, .75, 1, 1 -> mean .6875 -> Gini .375
    # perfect order y_true 3, 1, 0, 0: gain .75, 1, 1, 1 -> mean .9375 -> Gini .875
    # normalized = .375 / .875 = 3/7
    y_true = [3, 0, 1, 0]
    y_pred = [0.5, 0.9, 0.4, 0.1]
    assert normalized_gini(y_true, y_pred) == pytest.approx(3 / 7)
    assert normalized_gini(y_true, y_true) == 1.0
    # reversed perfect order: 0, 0, 1, 3 -> gain 0, 0, .25, 1 -> mean .3125 -> Gini -.375
    # normalized -.375 / .875 = -3/7 (the mean-of-points definition is not symmetric)
    assert normalized_gini(y_true, [-3, 0, -1, 0]) == pytest.approx(-3 / 7)


def test_normalized_gini_ties_are_averaged():
    # rows 0 and 1 tie at 0.5: each contributes (3 + 0) / 2 = 1.5
    # order: 1.5, 1.5, 1, 0 (total 4) -> gain .375, .75, 1, 1 -> mean .78125
    # Gini = .5625; perfect Gini = .875 (previous test) -> normalized 9/14
    y_true = np.array([3.0, 0.0, 1.0, 0.0])
    y_pred = np.array([0.5, 0.5, 0.4, 0.1])
    assert normalized_gini(y_true, y_pred) == pytest.approx(9 / 14)
    # the tie gives the same answer whichever of the two tied rows comes first
    swapped = [1, 0, 2, 3]
    assert normalized_gini(y_true[swapped], y_pred[swapped]) == normalized_gini(y_true, y_pred)


def test_normalized_gini_with_ties_does_not_depend_on_row_order():
    rng = np.random.default_rng(0)
    y_true = rng.lognormal(size=500) * (rng.random(500) < 0.3)
    y_pred = rng.integers(0, 5, size=500).astype(float)  # 5 large tie groups
    ref = normalized_gini(y_true, y_pred)
    for seed in range(5):
        perm = np.random.default_rng(seed).permutation(500)
        assert normalized_gini(y_true[perm], y_pred[perm]) == ref
    # Averaging is the mean over the orders inside each tie; as Gini is linear in the
    # order weights, that equals the mean of the best and the worst way to break ties.
    n = y_true.size
    best, worst = np.empty(n), np.empty(n)
    best[np.lexsort((-y_true, -y_pred))] = np.arange(n, 0, -1)  # high y_true first in a tie
    worst[np.lexsort((y_true, -y_pred))] = np.arange(n, 0, -1)  # low y_true first
    g_best, g_worst = normalized_gini(y_true, best), normalized_gini(y_true, worst)
    assert g_worst < ref < g_best
    assert ref == pytest.approx((g_best + g_worst) / 2)


def test_normalized_gini_degenerate_cases():
    # constant prediction: one tie run, gain .25, .5, .75, 1 -> mean .625 -> Gini .25;
    # over the perfect Gini .875 -> 2/7 = 1/(n * perfect), the definition's 1/n offset
    assert normalized_gini([0, 0, 1, 3], [2, 2, 2, 2]) == pytest.approx(2 / 7)
    # no value at all, or every customer worth the same: the perfect Gini is 0 -> 0.0
    assert normalized_gini([0, 0, 0], [1, 2, 3]) == 0.0
    assert normalized_gini([4, 4, 4], [1, 2, 3]) == 0.0
    assert normalized_gini([5], [1]) == 0.0


def test_normalized_gini_positive_hand_example():
    # positive rows 1, 3, 4: y_true 3, 1, 2 and y_pred 1, 3, 2 -> exactly reversed order
    # (rows with y_true == 0 and their large predictions are ignored)
    # order by pred: 1, 2, 3 (total 6) -> gain 1/6, 1/2, 1 -> mean 5/9 -> Gini 1/9
    # perfect: 3, 2, 1 -> gain 1/2, 5/6, 1 -> mean 7/9 -> Gini 5/9 -> normalized 1/5
    y_true = [0, 3, 0, 1, 2]
    y_pred = [9, 1, 9, 3, 2]
    assert normalized_gini_positive(y_true, y_pred) == pytest.approx(0.2)
    # fewer than two distinct positive values -> 0.0
    assert normalized_gini_positive([0, 0, 5], [1, 2, 3]) == 0.0
    assert normalized_gini_positive([0, 0], [1, 2]) == 0.0


def test_spearman_hand_example():
    # ranks y_true 1 2 3 4, y_pred 1 3 2 4 -> d = 0 1 -1 0, sum d^2 = 2
    # rho = 1 - 6*2 / (4*(16-1)) = 1 - 12/60 = 0.8
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # constant input: scipy gives NaN, ltvkit 0.0
    assert spearman([1, 2, 3, 4], [7, 7, 7, 7]) == 0.0
    assert spearman([2, 2, 2], [1, 2, 3]) == 0.0
    assert spearman([1], [1]) == 0.0


def test_spearman_positive_hand_example():
    # positive rows 1, 2, 3: y_true 1 2 3, y_pred 1 3 2 -> sum d^2 = 2
    # rho = 1 - 6*2 / (3*(9-1)) = 1 - 0.5 = 0.5
    assert spearman_positive([0, 1, 2, 3, 0], [5, 1, 3, 2, -1]) == pytest.approx(0.5)
    assert spearman_positive([0, 0, 4], [1, 2, 3]) == 0.0  # one positive row


def test_recall_at_k_hand_example():
    # true top-2: rows 1 (10), 3 (7); predicted top-2: rows 1 (9), 2 (8) -> 1 of 2
    assert recall_at_k([0, 10, 3, 7], [0, 9, 8, 1], k=2) == 0.5
    # k as a fraction: 0.5 * 4 = 2 rows
    assert recall_at_k([0, 10, 3, 7], [0, 9, 8, 1], k=0.5) == 0.5
    # 0.3 * 5 = 1.5 -> rounded half up to 2: true top-2 rows 0, 1; predicted rows 0, 2
    assert recall_at_k([5, 4, 3, 2, 1], [9, 0, 8, 0, 0], k=0.3) == 0.5
    # a tiny fraction still takes one row; an int above n is capped at n (recall 1)
    assert recall_at_k([1, 2, 3], [3, 2, 1], k=0.01) == 0.0
    assert recall_at_k([1, 2, 3], [3, 2, 1], k=10) == 1.0


def test_recall_at_k_ties_broken_by_row_order():
    # y_true ties: true top-1 is row 0 (first 5); y_pred ties: predicted top-1 is row 1
    assert recall_at_k([5, 5, 5, 0], [0, 1, 1, 1], k=1) == 0.0
    # k=2: true {0, 1}, predicted {1, 2} -> 1 of 2
    assert recall_at_k([5, 5, 5, 0], [0, 1, 1, 1], k=2) == 0.5


def test_high_value_auc_hand_example():
    y_true = [0, 1, 2, 3, 4, 5, 6, 7, 8, 100]
    # q = 0.1: quantile(0.9) = 8 + 0.1*(100-8) = 17.2 -> only row 9 is high-value.
    # Row 9 is predicted 8, below row 8 (9): it beats 8 of the 9 others -> AUC 8/9.
    y_pred = [0, 1, 2, 3, 4, 5, 6, 7, 9, 8]
    assert high_value_auc(y_true, y_pred) == pytest.approx(8 / 9)
    # q = 0.2: quantile(0.8) = 7 + 0.2*(8-7) = 7.2 -> rows 8, 9; both predicted highest
    assert high_value_auc(y_true, y_pred, q=0.2) == 1.0
    # all y_true tie: no customer is above the quantile -> documented 0.5
    assert high_value_auc([3, 3, 3, 3], [1, 2, 3, 4]) == 0.5
    # tied predictions count one half: AUC 0.5
    assert high_value_auc(y_true, [1] * 10) == 0.5


def test_gain_and_lorenz_curves_hand_example():
    # y_pred descending takes y_true 3, 0, 1 (total 4) -> 0, .75, .75, 1
    x, g = gain_curve([0, 3, 1], [0.2, 0.9, 0.1])
    np.testing.assert_allclose(x, [0, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(g, [0, 0.75, 0.75, 1])
    # ties share their mean: 1.5, 1.5, 1, 0 -> .375, .75, 1, 1
    x, g = gain_curve([3, 0, 1, 0], [0.5, 0.5, 0.4, 0.1])
    np.testing.assert_allclose(g, [0, 0.375, 0.75, 1, 1])
    # the plotted curve gives the Gini: 2 * area - 1 = .3125 (see the ties test)
    assert 2 * np.trapezoid(g, x) - 1 == pytest.approx(0.3125)
    # Lorenz: own values descending 3, 1, 0 (total 4) -> .75, 1, 1
    x, share = lorenz_curve([1, 0, 3])
    np.testing.assert_allclose(x, [0, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(share, [0, 0.75, 1, 1])
    # zero total: the line of equal shares
    np.testing.assert_allclose(lorenz_curve([0, 0])[1], [0, 0.5, 1])
    np.testing.assert_allclose(gain_curve([0, 0], [1, 2])[1], [0, 0.5, 1])


def test_mutual_gini_hand_example():
    # Lorenz(y_true = 0, 0, 0, 4) = 1, 1, 1, 1 at x = 1/4 .. 1
    # Lorenz(y_pred = 1, 1, 1, 1) = .25, .5, .75, 1 -> |diff| = .75, .5, .25, 0 -> mean .375
    assert mutual_gini([0, 0, 0, 4], [1, 1, 1, 1]) == pytest.approx(0.375)
    # same distribution, other customers: the Lorenz curves coincide
    assert mutual_gini([1, 2, 3], [3, 1, 2]) == 0.0
    # scale does not matter, shape does: 2x the truth is a perfect distribution fit
    assert mutual_gini([1, 2, 7], [2, 4, 14]) == pytest.approx(0.0)
    # all-zero prediction: its Lorenz curve is the diagonal -> same .375 as constant
    assert mutual_gini([0, 0, 0, 4], [0, 0, 0, 0]) == pytest.approx(0.375)


def test_decile_mape_hand_example():
    # y_pred = 1..20 ascending: 10 groups of 2 rows. y_true = y_pred except
    # group 0 (rows 0, 1) -> 0: skipped; group 9 (rows 18, 19) -> 38, 40: true mean 39,
    # pred mean 19.5 -> |19.5 - 39| / 39 = .5; groups 1..8 have error 0 -> .5 / 9
    y_pred = np.arange(1, 21, dtype=float)
    y_true = y_pred.copy()
    y_true[:2] = 0
    y_true[18:] = [38, 40]
    assert decile_mape(y_true, y_pred) == pytest.approx(0.5 / 9)
    # every group has true mean 0 -> all skipped -> 0.0
    assert decile_mape([0] * 20, range(20)) == 0.0


def test_percentile_mape_hand_example():
    # 3 rows < 100 groups: array_split gives 3 one-row groups (+97 empty, skipped);
    # tied predictions keep row order (stable sort): |2-1|/1, |2-2|/2, |2-4|/4 -> 1, 0, .5
    assert percentile_mape([1, 2, 4], [2, 2, 2]) == pytest.approx(0.5)


@given(_pairs())
@FAST
def test_grouped_mape_matches_array_split_reference(pair):
    y_true, y_pred = (np.asarray(a) for a in pair)
    for func, n_groups in ((decile_mape, 10), (percentile_mape, 100)):
        order = np.argsort(y_pred, kind="stable")
        errors = [
            abs(y_pred[g].mean() - y_true[g].mean()) / y_true[g].mean()
            for g in np.array_split(order, n_groups)
            if g.size and y_true[g].mean() != 0
        ]
        expected = float(np.mean(errors)) if errors else 0.0
        assert func(y_true, y_pred) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_point_error_hand_examples():
    y_true = [0, 2, 4]  # mean 2
    # MAE = (1 + 0 + 3) / 3 = 4/3 -> / 2 = 2/3
    assert nmae(y_true, [1, 2, 1]) == pytest.approx(2 / 3)
    # MSE = (0 + 0 + 9) / 3 = 3 -> RMSE sqrt(3) -> / 2
    assert nrmse(y_true, [0, 2, 1]) == pytest.approx(np.sqrt(3) / 2)
    # |mean(1, 1, 1) - 2| = 1
    assert ambe(y_true, [1, 1, 1]) == 1.0
    # |.5-0|/max(0,1) + |3-2|/2 + 0 = .5 + .5 -> / 3
    assert mape(y_true, [0.5, 3, 4]) == pytest.approx(1 / 3)
    # floor=0.5: .5/.5 + 1/2 + 0 = 1.5 -> / 3
    assert mape(y_true, [0.5, 3, 4], floor=0.5) == pytest.approx(0.5)
    # mean(y_true) == 0: NMAE / NRMSE fall back to the plain MAE / RMSE
    assert nmae([0, 0], [1, 3]) == 2.0
    assert nrmse([0, 0], [1, 3]) == pytest.approx(np.sqrt(5))


def test_sva_hand_example():
    # tau = median(1, 2, 8) = 2; true strata: zero, low, low, high
    # pred: .05 <= .1 -> zero, 1.5 -> low, 3 -> high, 9 -> high: 3 of 4 right
    y_true = [0, 1, 2, 8]
    y_pred = [0.05, 1.5, 3.0, 9.0]
    assert sva(y_true, y_pred) == 0.75
    # zero_threshold=0.01: .05 is now non-zero (low) -> 2 of 4
    assert sva(y_true, y_pred, zero_threshold=0.01) == 0.5
    # nonzero_proba replaces the threshold: P = .9 .2 .8 .7 -> non-zero, zero, nz, nz
    # strata: low (0.05 <= 2), zero, high, high vs zero, low, low, high -> 1 of 4
    assert sva(y_true, y_pred, nonzero_proba=[0.9, 0.2, 0.8, 0.7]) == 0.25
    # no positive y_true: tau = 0, every true row is "zero"; 2 zero predictions of 3
    assert sva([0, 0, 0], [0, 0.05, 5]) == pytest.approx(2 / 3)


def test_zero_f1_hand_example():
    # non-zero true: rows 1, 2; predicted (> .1): rows 1, 3 -> tp 1, fp 1, fn 1
    # F1 = 2*1 / (2*1 + 1 + 1) = .5
    assert zero_f1([0, 5, 3, 0], [0.0, 4.0, 0.05, 2.0]) == 0.5
    # with P(y > 0): rows 1, 2 predicted non-zero -> perfect
    assert zero_f1([0, 5, 3, 0], [0.0, 4.0, 0.05, 2.0], nonzero_proba=[0.1, 0.9, 0.6, 0.4]) == 1.0
    # nothing to find and nothing found -> 1.0; something wrongly found -> 0.0
    assert zero_f1([0, 0], [0, 0]) == 1.0
    assert zero_f1([0, 0], [0, 3]) == 0.0


def test_bucket_accuracy():
    # positives 1..8: cuts at their 50th / 75th percentiles (inverted_cdf) = 4 and 6
    # true buckets: 0 0 0 0 | 1 1 1 1 (1..4) | 2 2 (5, 6) | 3 3 (7, 8)
    # pred = y + 1 = 1..4 -> 1 (wrong x4), 2 3 4 -> 1 (right x3), 5 -> 2 (wrong),
    # 6 -> 2 (right), 7 -> 3 (wrong), 8 9 -> 3 (right x2): 6 of 12
    y = np.array([0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8], dtype=float)
    assert bucket_accuracy(y, y + 1) == 0.5
    y_true = np.array([0, 0, 0, 0, 5, 10, 50, 100], dtype=float)
    assert bucket_accuracy(y_true, y_true) == 1.0
    # an all-zero prediction puts everyone in the zero bucket: right for the 4 zeros only
    assert bucket_accuracy(y_true, np.zeros(8)) == 0.5
    # negative predictions are bucketed as 0 (same answer, no error)
    assert bucket_accuracy(y_true, np.full(8, -3.0)) == 0.5
    # agrees with the bucketizer applied by hand
    from ltvkit.preprocessing import LTVBucketizer

    rng = np.random.default_rng(1)
    y = rng.lognormal(size=300) * (rng.random(300) < 0.4)
    pred = y * rng.uniform(0.5, 1.5, size=300)
    b = LTVBucketizer(n_buckets=4).fit(y.reshape(-1, 1))
    expected = np.mean(b.transform(y.reshape(-1, 1)) == b.transform(pred.reshape(-1, 1)))
    assert bucket_accuracy(y, pred) == pytest.approx(expected)
    # no positive y_true: everyone is in the zero bucket; 2 of 3 predictions are
    assert bucket_accuracy([0, 0, 0], [0, 0, 4]) == pytest.approx(2 / 3)


def test_ltv_report():
    rng = np.random.default_rng(2)
    y = rng.lognormal(size=200) * (rng.random(200) < 0.3)
    pred = y * rng.uniform(0.5, 1.5, size=200) + 0.2
    report = ltv_report(y, pred)
    assert isinstance(report, pd.Series)
    assert list(report.index) == REPORT_NAMES
    assert report.dtype == np.float64
    for func in SCALAR_METRICS:
        assert report[func.__name__] == pytest.approx(func(y, pred)), func.__name__
    # nonzero_proba reaches sva and zero_f1 (and only them)
    proba = (y > 0).astype(float)
    with_proba = ltv_report(y, pred, nonzero_proba=proba)
    assert with_proba["zero_f1"] == 1.0
    assert with_proba["sva"] == pytest.approx(sva(y, pred, nonzero_proba=proba))
    assert report["zero_f1"] < 1.0  # every prediction is > 0.1, so zeros are missed
    other = [n for n in REPORT_NAMES if n not in ("sva", "zero_f1")]
    pd.testing.assert_series_equal(with_proba[other], report[other])


# ---------------------------------------------------------------------------------------
# Properties (hypothesis)
# ---------------------------------------------------------------------------------------


@given(value_lists)
@FAST
def test_gini_is_one_for_the_perfect_order(y):
    y = np.asarray(y)
    expected = 0.0 if y.min() == y.max() or y.sum() == 0 else 1.0  # documented degenerate
    assert normalized_gini(y, y) == expected


@given(
    st.integers(1, 60).flatmap(
        lambda n: st.tuples(
            st.lists(values, min_size=n, max_size=n),
            st.lists(st.integers(0, 1000), min_size=n, max_size=n),
        )
    ),
    st.floats(1e-3, 1e3),
)
@FAST
def test_gini_is_invariant_to_positive_scaling(pair, scale):
    # Integer predictions: distinct ones stay distinct after scaling (no rounding ties).
    y_true, y_pred = np.asarray(pair[0]), np.asarray(pair[1], dtype=float)
    assert normalized_gini(y_true, y_pred * scale) == normalized_gini(y_true, y_pred)


@given(
    st.integers(1, 60).flatmap(
        lambda n: st.tuples(
            st.lists(values, min_size=n, max_size=n),
            st.lists(st.integers(0, 4), min_size=n, max_size=n),  # many ties
            st.permutations(range(n)),
        )
    )
)
@FAST
def test_gini_is_invariant_to_row_order(data):
    y_true, y_pred, perm = np.asarray(data[0]), np.asarray(data[1], dtype=float), list(data[2])
    assert normalized_gini(y_true[perm], y_pred[perm]) == normalized_gini(y_true, y_pred)
    assert normalized_gini_positive(y_true[perm], y_pred[perm]) == normalized_gini_positive(
        y_true, y_pred
    )


@given(_pairs())
@FAST
def test_gini_and_spearman_are_bounded(pair):
    y_true, y_pred = pair
    for func in (normalized_gini, normalized_gini_positive, spearman, spearman_positive):
        assert -1.0 <= func(y_true, y_pred) <= 1.0, func.__name__


@given(value_lists, values)
@FAST
def test_every_metric_is_finite_on_all_tied_predictions(y_true, c):
    y_pred = [c] * len(y_true)
    report = ltv_report(y_true, y_pred)
    assert np.isfinite(report.to_numpy()).all(), report[~np.isfinite(report)]
    for curve in (gain_curve(y_true, y_pred), lorenz_curve(y_pred)):
        assert all(np.isfinite(a).all() for a in curve)
    # all tied: a straight gain curve, whose Gini is the definition's 1/n offset
    y = np.asarray(y_true, dtype=float)
    if y.sum() > 0 and y.min() < y.max():
        perfect = 2 * np.mean(np.cumsum(np.sort(y)[::-1]) / y.sum()) - 1
        assert report["normalized_gini"] == pytest.approx(1 / (len(y) * perfect))
    else:
        assert report["normalized_gini"] == 0.0
    assert report["spearman"] == 0.0


@given(value_lists)
@FAST
def test_grouped_mape_is_zero_for_perfect_predictions(y):
    assert decile_mape(y, y) == 0.0
    assert percentile_mape(y, y) == 0.0


# ---------------------------------------------------------------------------------------
# Scorers
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ltv_xy():
    """Tiny zero-inflated, long-tailed target that depends on X."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 3))
    pays = rng.random(240) < 1 / (1 + np.exp(-(X[:, 0] - 0.5)))
    y = pays * np.exp(1.0 + X[:, 1] + 0.5 * rng.normal(size=240))
    return X, y


class _Oracle(RegressorMixin, BaseEstimator):
    """Predicts the first column of X; the tests put the true y there."""

    def fit(self, X, y):
        return self

    def predict(self, X):
        return np.asarray(X)[:, 0]


def test_scorer_names():
    errors = {"mutual_gini", "decile_mape", "percentile_mape", "nmae", "nrmse", "ambe", "mape"}
    expected = {f"neg_{n}" for n in errors} | {n for n in REPORT_NAMES if n not in errors}
    assert set(SCORERS) == expected


@pytest.mark.parametrize("name", sorted(SCORERS))
def test_scorer_in_cross_val_score_and_grid_search(name, ltv_xy):
    X, y = ltv_xy
    cv = KFold(3, shuffle=True, random_state=0)
    scores = cross_val_score(
        DecisionTreeRegressor(max_depth=3, random_state=0),
        X,
        y,
        scoring=get_scorer(name),
        cv=cv,
        error_score="raise",
    )
    assert scores.shape == (3,)
    assert np.isfinite(scores).all()
    grid = GridSearchCV(
        DecisionTreeRegressor(random_state=0),
        {"max_depth": [1, 3]},
        scoring={name: SCORERS[name], "r2": "r2"},
        refit=name,
        cv=cv,
        error_score="raise",
    )
    grid.fit(X, y)
    best = int(np.argmax(grid.cv_results_[f"mean_test_{name}"]))
    assert grid.best_params_ == grid.cv_results_["params"][best]
    assert np.isfinite(grid.best_score_)
    assert grid.predict(X).shape == y.shape


def test_all_scorers_together_in_cross_validate(ltv_xy):
    X, y = ltv_xy
    res = cross_validate(
        DecisionTreeRegressor(max_depth=3, random_state=0),
        X,
        y,
        scoring={**SCORERS, "r2": "r2"},
        cv=3,
        error_score="raise",
    )
    for name in SCORERS:
        assert np.isfinite(res[f"test_{name}"]).all(), name


@pytest.mark.parametrize("name", sorted(SCORERS))
def test_scorer_sign_perfect_beats_random(name, ltv_xy):
    _, y = ltv_xy
    rng = np.random.default_rng(3)
    X_perfect = y.reshape(-1, 1)
    X_random = rng.uniform(0, 1, size=(y.size, 1))  # unrelated ranking and distribution
    oracle = _Oracle().fit(X_perfect, y)
    scorer = get_scorer(name)
    assert scorer(oracle, X_perfect, y) > scorer(oracle, X_random, y)


def test_error_scorers_are_negated_metrics(ltv_xy):
    _, y = ltv_xy
    pred = np.random.default_rng(4).uniform(0, 5, size=y.size)
    oracle = _Oracle()
    funcs = {f.__name__: f for f in SCALAR_METRICS}
    for name, scorer in SCORERS.items():
        metric = funcs[name.removeprefix("neg_")]
        sign = -1.0 if name.startswith("neg_") else 1.0
        assert scorer(oracle, pred.reshape(-1, 1), y) == pytest.approx(sign * metric(y, pred))


def test_get_scorer_passes_sklearn_names_through(ltv_xy):
    X, y = ltv_xy
    model = DecisionTreeRegressor(max_depth=2, random_state=0).fit(X, y)
    for name in ("r2", "neg_mean_absolute_error"):
        assert get_scorer(name)(model, X, y) == sklearn_get_scorer(name)(model, X, y)
    assert get_scorer(None) is None  # sklearn: None means "the estimator's score"


def test_get_scorer_unknown_name_lists_ltvkit_names():
    with pytest.raises(ValueError, match="not a valid scoring value") as info:
        get_scorer("normalised_gini")
    for name in SCORERS:
        assert name in str(info.value)


def test_get_scorer_returns_a_copy():
    assert get_scorer("normalized_gini") is not SCORERS["normalized_gini"]


def test_import_does_not_load_preprocessing():
    code = "import sys, ltvkit.metrics; sys.exit(int('ltvkit.preprocessing' in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# ---------------------------------------------------------------------------------------
# Scorers on multi-horizon (2-D) targets
# ---------------------------------------------------------------------------------------


class _Echo(RegressorMixin, BaseEstimator):
    """Predicts X itself: the tests pass the predictions (1-D or 2-D) as X."""

    def fit(self, X, y):
        return self

    def predict(self, X):
        return np.asarray(X)


@pytest.fixture(scope="module")
def horizons():
    """A cumulative 3-horizon target (DataFrame, as load_cdnow returns) and predictions
    whose quality differs by horizon, so that scoring the wrong column changes the score."""
    rng = np.random.default_rng(5)
    step = rng.lognormal(size=(120, 3)) * (rng.random((120, 3)) < 0.4)
    Y = pd.DataFrame(np.cumsum(step, axis=1), columns=["13w", "26w", "39w"])
    noise = rng.uniform(0, 1, size=(120, 3)) * np.array([0.1, 3.0, 10.0])
    P = Y.to_numpy() * rng.uniform(0.5, 1.5, size=(120, 3)) + noise
    return Y, P


@pytest.mark.parametrize("name", sorted(SCORERS))
def test_scorer_scores_the_chosen_horizon(name, horizons):
    Y, P = horizons
    funcs = {f.__name__: f for f in SCALAR_METRICS}
    metric = funcs[name.removeprefix("neg_")]
    sign = -1.0 if name.startswith("neg_") else 1.0
    per_column = [sign * metric(Y.iloc[:, h], P[:, h]) for h in range(3)]
    for h in range(-3, 3):
        score = get_scorer(name, horizon=h)(_Echo(), P, Y)
        assert score == per_column[h], h
    # the default (SCORERS entry or get_scorer without horizon) is the last horizon
    assert SCORERS[name](_Echo(), P, Y) == per_column[-1]
    assert get_scorer(name)(_Echo(), P, Y.to_numpy()) == per_column[-1]
    assert get_scorer(name, horizon=None)(_Echo(), P, Y) == per_column[-1]
    assert get_scorer(name, horizon=np.int64(0))(_Echo(), P, Y) == per_column[0]
    # a 1-D target is one horizon: 0 and -1 both score it
    y, p = Y.iloc[:, 0], P[:, 0]
    assert get_scorer(name, horizon=0)(_Echo(), p, y) == per_column[0]
    assert get_scorer(name, horizon=-1)(_Echo(), p.reshape(-1, 1), y) == per_column[0]


def test_horizon_choice_changes_the_score(horizons):
    # guards the test above: the per-horizon scores it compares are really different
    Y, P = horizons
    scores = {get_scorer("normalized_gini", horizon=h)(_Echo(), P, Y) for h in range(3)}
    assert len(scores) == 3


def test_multi_horizon_shape_mismatch_names_the_shapes(horizons):
    Y, P = horizons
    scorer = get_scorer("normalized_gini")
    with pytest.raises(
        ValueError, match=r"y_true has shape \(120, 3\) but y_pred has shape \(120,\)"
    ):
        scorer(_Echo(), P[:, -1], Y)  # a single-horizon model on a 2-D target
    with pytest.raises(
        ValueError, match=r"y_true has shape \(120,\) but y_pred has shape \(120, 3\)"
    ):
        scorer(_Echo(), P, Y.iloc[:, -1])
    with pytest.raises(
        ValueError, match=r"y_true has shape \(120, 3\) but y_pred has shape \(120, 2\)"
    ):
        scorer(_Echo(), P[:, :2], Y)
    with pytest.raises(ValueError, match=r"shape \(120, 3\) but y_pred has shape \(119, 3\)"):
        scorer(_Echo(), P[:-1], Y)
    with pytest.raises(ValueError, match=r"horizon=3 is out of range .* 3 horizon"):
        get_scorer("spearman", horizon=3)(_Echo(), P, Y)
    with pytest.raises(ValueError, match=r"horizon=-2 is out of range .* 1 horizon"):
        get_scorer("spearman", horizon=-2)(_Echo(), P[:, 0], Y.iloc[:, 0])
    with pytest.raises(ValueError, match="must be 1-D or 2-D"):
        scorer(_Echo(), P.reshape(120, 3, 1), Y)


@pytest.mark.parametrize("horizon", [1.0, "last", True, np.float64(0)])
def test_get_scorer_rejects_a_bad_horizon(horizon):
    with pytest.raises(ValueError, match="horizon must be an int"):
        get_scorer("neg_nmae", horizon=horizon)


def test_get_scorer_horizon_is_for_ltvkit_scorers_only():
    with pytest.raises(ValueError, match="horizon= applies to ltvkit scorers"):
        get_scorer("r2", horizon=0)


def test_scorer_with_horizon_pickles(horizons):
    import pickle

    Y, P = horizons
    scorer = get_scorer("neg_decile_mape", horizon=1)
    restored = pickle.loads(pickle.dumps(scorer))
    assert restored(_Echo(), P, Y) == scorer(_Echo(), P, Y) == -decile_mape(Y["26w"], P[:, 1])
    assert "horizon=1" in repr(scorer)


def test_grid_search_over_odmn_with_ltvkit_scorers_is_finite():
    from ltvkit import ODMNRegressor
    from ltvkit.datasets import make_ltv

    X, Y = make_ltv(n_samples=240, n_features=4, n_categorical=1, n_horizons=3, random_state=0)
    Y = pd.DataFrame(Y, columns=["13w", "26w", "39w"])  # load_cdnow's multi-horizon y
    scoring = {
        "gini": get_scorer("normalized_gini"),  # last horizon
        "gini_13w": get_scorer("normalized_gini", horizon=0),
        "dmape": get_scorer("neg_decile_mape"),
        "r2": "r2",
    }
    search = GridSearchCV(
        ODMNRegressor(hidden_units=(16,), max_epochs=3, batch_size=64, random_state=0),
        {"hidden_units": [(8,), (16,)]},
        scoring=scoring,
        refit="gini",
        cv=KFold(2, shuffle=True, random_state=0),
        error_score="raise",  # a NaN score would otherwise only warn
    )
    search.fit(X, Y)
    assert np.isfinite(search.best_score_)
    for key in scoring:
        assert np.isfinite(search.cv_results_[f"mean_test_{key}"]).all(), key
    best = int(np.argmax(search.cv_results_["mean_test_gini"]))
    assert search.best_params_ == search.cv_results_["params"][best]
    # the refitted model is scored on the chosen column
    pred = search.predict(X)
    assert pred.shape == Y.shape
    assert scoring["gini"](search.best_estimator_, X, Y) == normalized_gini(Y["39w"], pred[:, -1])
    assert scoring["gini_13w"](search.best_estimator_, X, Y) == normalized_gini(
        Y["13w"], pred[:, 0]
    )


# ---------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("func", ALL_FUNCS, ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    ("y_true", "y_pred", "match"),
    [
        ([1.0, 2.0, 3.0], [1.0, 2.0], "3 samples but y_pred has 2"),
        ([], [], "y_true is empty"),
        ([1.0, np.nan], [1.0, 2.0], "y_true contains 1 NaN"),
        ([1.0, 2.0], [np.inf, 2.0], "y_pred contains 1 infinite"),
        ([[1.0, 2.0], [3.0, 4.0]], [1.0, 2.0], "y_true must be 1-D"),
        (["a", "b"], [1.0, 2.0], "y_true must be numeric"),
    ],
    ids=["length", "empty", "nan", "inf", "2d", "text"],
)
def test_bad_input_raises_value_error(func, y_true, y_pred, match):
    with pytest.raises(ValueError, match=match):
        func(y_true, y_pred)


def test_bad_input_lorenz_and_report():
    with pytest.raises(ValueError, match="y is empty"):
        lorenz_curve([])
    with pytest.raises(ValueError, match="y contains 1 NaN"):
        lorenz_curve([1.0, np.nan])
    with pytest.raises(ValueError, match="3 samples but y_pred has 2"):
        ltv_report([1, 2, 3], [1, 2])


def test_bad_parameters_raise_value_error():
    y = [0.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="nonzero_proba has 2"):
        sva(y, y, nonzero_proba=[0.5, 0.5])
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        zero_f1(y, y, nonzero_proba=[0.5, 1.5, 0.5])
    with pytest.raises(ValueError, match="k must be >= 1"):
        recall_at_k(y, y, k=0)
    with pytest.raises(ValueError, match=r"k \(as a fraction of the rows\) must be a number in"):
        recall_at_k(y, y, k=1.5)
    with pytest.raises(ValueError, match="q must be a number in"):
        high_value_auc(y, y, q=1.0)
    with pytest.raises(ValueError, match="floor must be a number > 0"):
        mape(y, y, floor=0)


def test_accepts_pandas_and_column_vectors():
    y = pd.Series([0.0, 1.0, 3.0, 0.0])
    pred = np.array([[0.1], [0.9], [2.0], [0.0]])
    assert normalized_gini(y, pred) == normalized_gini(y.to_numpy(), pred.ravel())
    assert nmae(y, pred) == nmae(y.to_numpy(), pred.ravel())


def test_values_beyond_1e100_are_refused():
    # 1.7e308 used to give mutual_gini NaN, normalized_gini 0.0 and nrmse inf (overflow)
    big = [1.7e308, 0.0, 1.7e308]
    for func in SCALAR_METRICS:
        with pytest.raises(ValueError, match=r"y_true has a value of magnitude 1.7e\+308"):
            func(big, [1.0, 2.0, 3.0])
        with pytest.raises(ValueError, match=r"y_pred has a value of magnitude"):
            func([1.0, 2.0, 3.0], [0.0, -2e100, 1.0])
    # the bound itself is fine
    assert nrmse([1e100, 0.0], [0.0, 1e100]) == pytest.approx(2.0)


def test_ratio_overflow_is_a_value_error_not_inf():
    # mean(y_true) is subnormal: the relative errors exceed the float64 range
    t, p = [5e-324, 0.0, 1e-320], [1.0, 2.0, 3.0]
    for func in (nmae, nrmse, decile_mape, percentile_mape):
        with pytest.raises(ValueError, match=f"{func.__name__} overflows float64"):
            func(t, p)
    with pytest.raises(ValueError, match="mape overflows float64"):
        mape([0.0, 1.0], [1e100, 1.0], floor=1e-300)
    # values of mixed sign that cancel to a total of 5e-324 (in the order of y_pred)
    t, p = [1e100, -1e100, 5e-324], [3.0, 2.0, 1.0]
    with pytest.raises(ValueError, match="gain_curve overflows float64"):
        gain_curve(t, p)
    with pytest.raises(ValueError, match="normalized_gini overflows float64"):
        normalized_gini(t, p)  # was NaN


def test_bucket_accuracy_names_negative_y_true():
    with pytest.raises(ValueError, match=r"bucket_accuracy needs y_true >= 0.*1 negative"):
        bucket_accuracy([-1.0, 2.0], [1.0, 2.0])
