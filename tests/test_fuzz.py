"""Property-based fuzz tests (hypothesis) for every metric and every estimator.

The metrics and estimators are enumerated from the public API (``ltvkit.metrics.__all__``,
``ltvkit.all_estimators``), so a new one is fuzzed without editing this file (a new
metric only needs its documented range in ``RANGES``; a test says so).

Example counts scale with the hypothesis profile registered in ``tests/conftest.py``:
"ci" (default, derandomized, well under a minute) or ``LTVKIT_FUZZ_PROFILE=long``.
"""

from __future__ import annotations

import inspect
import math
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import BaseEstimator, RegressorMixin

import ltvkit.metrics as ltv_metrics
from ltvkit.metrics import SCORERS, get_scorer

# ---------------------------------------------------------------------------------------
# Example budget
# ---------------------------------------------------------------------------------------


def _budget(share: float) -> settings:
    """``share`` of the loaded profile's max_examples (at least 2)."""
    return settings(max_examples=max(2, round(settings.default.max_examples * share)))


# ---------------------------------------------------------------------------------------
# Metrics: enumerated from ltvkit.metrics.__all__
# ---------------------------------------------------------------------------------------

NOT_METRICS = {"SCORERS", "get_scorer"}
CURVES = {"gain_curve", "lorenz_curve"}
REPORTS = {"ltv_report"}
SCALAR_METRICS = sorted(set(ltv_metrics.__all__) - NOT_METRICS - CURVES - REPORTS)

# Documented range (docs/metrics.md) for non-negative y_true and y_pred: (low, high,
# high is excluded). Errors are [0, inf): finite is all that can be checked.
RANGES: dict[str, tuple[float, float, bool]] = {
    "normalized_gini": (-1.0, 1.0, False),
    "normalized_gini_positive": (-1.0, 1.0, False),
    "spearman": (-1.0, 1.0, False),
    "spearman_positive": (-1.0, 1.0, False),
    "recall_at_k": (0.0, 1.0, False),
    "high_value_auc": (0.0, 1.0, False),
    "mutual_gini": (0.0, 1.0, True),
    "nmae": (0.0, math.inf, True),
    "nrmse": (0.0, math.inf, True),
    "ambe": (0.0, math.inf, True),
    "mape": (0.0, math.inf, True),
    "decile_mape": (0.0, math.inf, True),
    "percentile_mape": (0.0, math.inf, True),
    "sva": (0.0, 1.0, False),
    "zero_f1": (0.0, 1.0, False),
    "bucket_accuracy": (0.0, 1.0, False),
}
# Documented values when no customer spends (all y_true == 0).
ALL_ZERO_TRUTH = {
    "normalized_gini": 0.0,
    "normalized_gini_positive": 0.0,
    "spearman": 0.0,
    "spearman_positive": 0.0,
    "high_value_auc": 0.5,
    "decile_mape": 0.0,
    "percentile_mape": 0.0,
}
# Metrics of the prediction's order only: unchanged by a strictly increasing transform.
RANK_METRICS = [
    "normalized_gini",
    "normalized_gini_positive",
    "spearman",
    "spearman_positive",
    "recall_at_k",
    "high_value_auc",
]
# Ties are broken by row order (documented), so these change under a permutation of
# rows with tied values; every other metric does not depend on the row order at all.
ROW_ORDER_TIES = {"recall_at_k", "decile_mape", "percentile_mape"}
# Documented to be bitwise identical under permutation.
BITWISE_ORDER_FREE = {"normalized_gini", "normalized_gini_positive"}


def _metric(name: str):
    return getattr(ltv_metrics, name)


# A customer value: 0, or an amount from 1e-12 to 1e12 (log-uniform), or one of a few
# round amounts (so that ties are common).
AMOUNTS = st.builds(
    lambda mantissa, exponent: mantissa * 10.0**exponent,
    st.floats(1.0, 9.99),
    st.integers(-12, 11),
)
TIE_POOL = st.sampled_from([0.0, 1.0, 2.0, 5.0, 1e-12, 1e12])
VALUES = st.one_of(st.just(0.0), AMOUNTS, TIE_POOL)


@st.composite
def vectors(draw: st.DrawFn, n: int, signed: bool = False) -> np.ndarray:
    """A length-``n`` float vector of one of several shapes customer data takes."""
    shape = draw(st.sampled_from(["mixed", "ties", "one_nonzero", "constant", "zeros"]))
    if shape == "mixed":
        out = draw(st.lists(VALUES, min_size=n, max_size=n))
    elif shape == "ties":
        out = draw(st.lists(TIE_POOL, min_size=n, max_size=n))
    elif shape == "one_nonzero":
        out = [0.0] * n
        out[draw(st.integers(0, n - 1))] = draw(AMOUNTS)
    elif shape == "constant":
        out = [draw(VALUES)] * n
    else:
        out = [0.0] * n
    arr = np.asarray(out, dtype=np.float64)
    if signed:
        arr = arr * np.asarray(
            draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=n, max_size=n))
        )
    return arr


@st.composite
def pairs(draw: st.DrawFn, signed: bool = False, max_size: int = 50) -> tuple:
    n = draw(st.integers(1, max_size))
    return draw(vectors(n, signed)), draw(vectors(n, signed))


def _call_quietly(func, *args, **kwargs):
    # Warnings are allowed (e.g. sklearn on one class); the result is what is checked.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kwargs)


def test_every_public_metric_is_fuzzed_with_its_documented_range():
    # A new public metric is picked up by SCALAR_METRICS; it needs its range here.
    assert set(SCALAR_METRICS) == set(RANGES), "add the new metric's documented range"
    for name in SCALAR_METRICS:
        params = list(inspect.signature(_metric(name)).parameters)
        assert params[:2] == ["y_true", "y_pred"], name
    assert set(ALL_ZERO_TRUTH) | set(RANK_METRICS) | ROW_ORDER_TIES <= set(SCALAR_METRICS)


@pytest.mark.parametrize("name", SCALAR_METRICS)
@given(pair=pairs())
@_budget(1.0)
def test_metric_is_finite_and_in_documented_range(name, pair):
    y_true, y_pred = pair
    before = (y_true.copy(), y_pred.copy())
    value = _call_quietly(_metric(name), y_true, y_pred)
    assert type(value) is float
    assert math.isfinite(value), value
    low, high, high_open = RANGES[name]
    assert low <= value, value
    assert value < high if high_open else value <= high, value
    if not y_true.any() and name in ALL_ZERO_TRUTH:
        assert value == ALL_ZERO_TRUTH[name]
    if name in ("spearman", "spearman_positive") and y_pred.min() == y_pred.max():
        assert value == 0.0  # documented instead of scipy's NaN
    # metrics never write into their input
    np.testing.assert_array_equal(y_true, before[0])
    np.testing.assert_array_equal(y_pred, before[1])


@pytest.mark.parametrize("name", SCALAR_METRICS)
@given(pair=pairs(signed=True))
@_budget(0.5)
def test_metric_on_signed_values_is_finite_or_value_error(name, pair):
    # Negative values are outside the documented domain (ranges no longer hold) but are
    # not rejected: the result must still be a finite float, or a clear ValueError.
    y_true, y_pred = pair
    try:
        value = _call_quietly(_metric(name), y_true, y_pred)
    except ValueError as exc:
        assert re.search(r"[Nn]egative|y_true|y_pred", str(exc)), str(exc)
        return
    assert type(value) is float and math.isfinite(value), value


@pytest.mark.parametrize("name", SCALAR_METRICS)
@given(
    pair=st.integers(1, 30).flatmap(
        lambda n: st.tuples(
            *[st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=n, max_size=n)]
            * 2
        )
    )
)
@_budget(0.5)
def test_metric_on_any_finite_floats_is_finite_or_value_error(name, pair):
    # The whole float64 range, subnormals and 1.8e308 included: never NaN or inf, never
    # another exception. Values above 1e100 are refused; a ratio that overflows (tiny
    # denominator) is a ValueError that says so.
    y_true, y_pred = (np.asarray(v, dtype=np.float64) for v in pair)
    try:
        value = _call_quietly(_metric(name), y_true, y_pred)
    except ValueError as exc:
        assert re.search(r"magnitude|overflows|negative", str(exc)), str(exc)
        if np.abs(np.concatenate([y_true, y_pred])).max() <= 1e100:
            assert "magnitude" not in str(exc)
        return
    assert type(value) is float and math.isfinite(value), value


@st.composite
def broken_pairs(draw: st.DrawFn) -> tuple:
    """(y_true, y_pred, the argument the error must name) with one defect."""
    y_true, y_pred = draw(pairs(max_size=20))
    defect = draw(st.sampled_from(["nan", "inf", "-inf", "length", "empty", "text", "3d"]))
    which = draw(st.sampled_from(["y_true", "y_pred"]))
    arrays = {"y_true": y_true.astype(object), "y_pred": y_pred.astype(object)}
    if defect in ("nan", "inf", "-inf"):
        arrays[which][draw(st.integers(0, y_true.size - 1))] = float(defect)
    elif defect == "length":
        arrays[which] = np.append(arrays[which], 1.0)
        which = "samples"  # "y_true has n samples but y_pred has n + 1"
    elif defect == "empty":
        arrays = {"y_true": [], "y_pred": []}
        which = "y_true"
    elif defect == "text":
        arrays[which][0] = "twelve"
    else:
        arrays[which] = np.zeros((y_true.size, 1, 2))
    return arrays["y_true"], arrays["y_pred"], which


@pytest.mark.parametrize("name", [*SCALAR_METRICS, "gain_curve", "ltv_report"])
@given(case=broken_pairs())
@_budget(0.25)
def test_metric_rejects_bad_input_with_a_clear_value_error(name, case):
    y_true, y_pred, names = case
    with pytest.raises(ValueError, match=names):
        _call_quietly(_metric(name), y_true, y_pred)


# Strictly increasing transforms. The predictions they get are integers in [0, 1e4], so
# that no transform merges two distinct values into one float (a new tie would change
# the metric legitimately): the gaps stay far above float64 rounding. The test asserts it.
MONOTONE = {
    "log1p": np.log1p,
    "cube": lambda x: x**3,
    "sqrt": np.sqrt,
    "affine": None,  # a * x + b, drawn below
}


@pytest.mark.parametrize("name", RANK_METRICS)
@given(
    pair=st.integers(1, 50).flatmap(
        lambda n: st.tuples(vectors(n), st.lists(st.integers(0, 10_000), min_size=n, max_size=n))
    ),
    transform=st.sampled_from(sorted(MONOTONE)),
    slope=st.floats(1e-2, 1e3),
    intercept=st.floats(-1e12, 1e12),
)
@_budget(0.5)
def test_rank_metrics_are_invariant_to_monotone_transforms(
    name, pair, transform, slope, intercept
):
    y_true, y_pred = pair[0], np.asarray(pair[1], dtype=np.float64)
    func = MONOTONE[transform] or (lambda x: slope * x + intercept)
    moved = func(y_pred)
    # the transform kept the order and the ties exactly (the premise of the property)
    order = np.argsort(y_pred, kind="stable")
    assert (np.diff(moved[order]) > 0).sum() == (np.diff(y_pred[order]) > 0).sum()
    assert (np.diff(moved[order]) >= 0).all()
    metric = _metric(name)
    assert _call_quietly(metric, y_true, moved) == _call_quietly(metric, y_true, y_pred)


@pytest.mark.parametrize("name", SCALAR_METRICS)
@given(
    pair=pairs(),
    perm_seed=st.integers(0, 2**32 - 1),
    distinct=st.booleans(),
)
@_budget(0.5)
def test_metric_does_not_depend_on_the_row_order(name, pair, perm_seed, distinct):
    y_true, y_pred = pair
    if distinct:
        # no ties at all: then even the row-order tie breaks cannot matter
        n = y_true.size
        y_true = y_true + np.arange(1, n + 1) * 1e-3 * (1.0 + np.abs(y_true).max())
        y_pred = y_pred + np.arange(n, 0, -1) * 1e-3 * (1.0 + np.abs(y_pred).max())
    elif name in ROW_ORDER_TIES:
        return  # documented: ties are broken by row order
    perm = np.random.default_rng(perm_seed).permutation(y_true.size)
    metric = _metric(name)
    ref = _call_quietly(metric, y_true, y_pred)
    got = _call_quietly(metric, y_true[perm], y_pred[perm])
    if name in BITWISE_ORDER_FREE:
        assert got == ref
    else:  # sums in another order round differently
        assert got == pytest.approx(ref, rel=1e-9, abs=1e-12)


@given(pair=pairs(), perm_seed=st.integers(0, 2**32 - 1))
@_budget(0.5)
def test_curves_are_finite_monotone_and_order_free(pair, perm_seed):
    y_true, y_pred = pair
    n = y_true.size
    perm = np.random.default_rng(perm_seed).permutation(n)
    curves = {
        "gain": ltv_metrics.gain_curve(y_true, y_pred),
        "lorenz_true": ltv_metrics.lorenz_curve(y_true),
        "lorenz_pred": ltv_metrics.lorenz_curve(y_pred),
    }
    for key, (x, share) in curves.items():
        assert x.shape == share.shape == (n + 1,), key
        assert np.isfinite(x).all() and np.isfinite(share).all(), key
        np.testing.assert_array_equal(x, np.arange(n + 1) / n)
        assert share[0] == 0.0 and share[-1] == pytest.approx(1.0), key
        assert (share >= 0).all() and (share <= 1 + 1e-12).all(), key
        assert (np.diff(share) >= -1e-12).all(), key  # non-negative values: non-decreasing
    # the Lorenz curve (perfect order) bounds the gain curve of any prediction from above
    assert (curves["gain"][1] <= curves["lorenz_true"][1] + 1e-12).all()
    # documented: tie order is fixed, so the curve is bitwise the same for any row order
    np.testing.assert_array_equal(
        ltv_metrics.gain_curve(y_true[perm], y_pred[perm])[1], curves["gain"][1]
    )


@given(pair=pairs())
@_budget(0.25)
def test_ltv_report_is_finite_and_agrees_with_each_metric(pair):
    y_true, y_pred = pair
    report = _call_quietly(ltv_metrics.ltv_report, y_true, y_pred)
    assert np.isfinite(report.to_numpy()).all(), report
    for name, value in report.items():
        assert value == _call_quietly(_metric(name), y_true, y_pred), name


class _Echo(RegressorMixin, BaseEstimator):
    """An "estimator" whose predictions are the X it is given."""

    def fit(self, X, y):
        return self

    def predict(self, X):
        return np.asarray(X)


@given(
    data=st.data(),
    n_horizons=st.integers(1, 3),
    n=st.integers(1, 30),
    as_frame=st.booleans(),
)
@_budget(0.25)
def test_scorer_scores_one_horizon_of_a_random_target(data, n_horizons, n, as_frame):
    columns = [data.draw(vectors(n)) for _ in range(n_horizons)]
    Y = np.cumsum(np.column_stack(columns), axis=1)  # cumulative spend, like ODMN's y
    P = np.column_stack([data.draw(vectors(n)) for _ in range(n_horizons)])
    horizon = data.draw(st.integers(-n_horizons, n_horizons - 1))
    name = data.draw(st.sampled_from(sorted(SCORERS)))
    metric = _metric(name.removeprefix("neg_"))
    sign = -1.0 if name.startswith("neg_") else 1.0
    target = pd.DataFrame(Y) if as_frame else Y

    score = _call_quietly(get_scorer(name, horizon=horizon), _Echo(), P, target)
    assert score == sign * _call_quietly(metric, Y[:, horizon], P[:, horizon])
    with pytest.raises(ValueError, match=r"y_true has shape .* but y_pred has shape"):
        get_scorer(name)(_Echo(), P[:, :-1] if n_horizons > 1 else P.ravel()[:-1], target)
