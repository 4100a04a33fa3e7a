"""Property-based fuzz tests (hypothesis) for every metric and every estimator.

The metrics and estimators are enumerated from the public API (``ltvkit.metrics.__all__``,
``ltvkit.all_estimators``), so a new one is fuzzed without editing this file (a new
metric only needs its documented range in ``RANGES``; a test says so).

Example counts scale with the hypothesis profile registered in ``tests/conftest.py``:
"ci" (default, derandomized, well under a minute) or ``LTVKIT_FUZZ_PROFILE=long``.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import re
import signal
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from sklearn.base import BaseEstimator, RegressorMixin

import ltvkit.metrics as ltv_metrics
from ltvkit import all_estimators
from ltvkit.base import _PREDICTION_LIMIT
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
# Means of per-row quotients: a permutation changes how that sum rounds.
PER_ROW_RATIOS = {"mape"}


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
    named = set(ALL_ZERO_TRUTH) | set(RANK_METRICS) | ROW_ORDER_TIES | PER_ROW_RATIOS
    assert named | BITWISE_ORDER_FREE <= set(SCALAR_METRICS)


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


@st.composite
def _exact_pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, bool]:
    """(y_true, y_pred, distinct): integers times a power of two, so that every sum is
    exact in float64 whatever the order; ``distinct``: no ties in either vector."""
    n = draw(st.integers(1, 40))
    distinct = draw(st.booleans())
    ints = st.lists(st.integers(0, 10_000), min_size=n, max_size=n, unique=distinct)
    scale = 2.0 ** draw(st.integers(-40, 40))  # about 1e-12 to 1e12
    t, p = (np.asarray(draw(ints), dtype=np.float64) * scale for _ in range(2))
    return t, p, distinct


@pytest.mark.parametrize("name", SCALAR_METRICS)
@given(pair=_exact_pairs(), perm_seed=st.integers(0, 2**32 - 1))
@_budget(0.5)
def test_metric_does_not_depend_on_the_row_order(name, pair, perm_seed):
    y_true, y_pred, distinct = pair
    if name in ROW_ORDER_TIES and not distinct:
        return  # documented: ties are broken by row order
    perm = np.random.default_rng(perm_seed).permutation(y_true.size)
    metric = _metric(name)
    ref = _call_quietly(metric, y_true, y_pred)
    got = _call_quietly(metric, y_true[perm], y_pred[perm])
    if name in PER_ROW_RATIOS:  # a mean of per-row quotients: the order of that sum rounds
        assert got == pytest.approx(ref, rel=1e-12, abs=0)
    else:  # sums of exact values, counts and ranks: bitwise equal
        assert got == ref


@pytest.mark.parametrize("name", sorted(BITWISE_ORDER_FREE))
@given(pair=pairs(), perm_seed=st.integers(0, 2**32 - 1))
@_budget(0.5)
def test_gini_is_bitwise_order_free_on_any_values(name, pair, perm_seed):
    # documented: even the rounding does not depend on the row order (ties included)
    y_true, y_pred = pair
    perm = np.random.default_rng(perm_seed).permutation(y_true.size)
    metric = _metric(name)
    assert metric(y_true[perm], y_pred[perm]) == metric(y_true, y_pred)


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


# ---------------------------------------------------------------------------------------
# Estimators: input validation, enumerated from ltvkit.all_estimators("regressor")
# ---------------------------------------------------------------------------------------

REGRESSORS = all_estimators("regressor")

# Tiny, fast settings: each is applied only where the model has the parameter, so a new
# model is fuzzed without an entry here (add one if its defaults are slow).
TINY = dict(
    hidden_units=(8,),
    max_epochs=2,
    batch_size=64,
    n_estimators=5,
    n_jobs=1,
    random_state=0,
)
TINY_BY_MODEL: dict[str, dict] = {
    # (both spellings: parameters were renamed on main; unknown ones are dropped)
    "OptDistRegressor": dict(
        n_distributions=2,
        sdn_hidden_units=(8,),
        dsm_hidden_units=(8,),
        n_components=2,
        component_units=(8,),
        selection_units=(8,),
    ),
    "MDMERegressor": dict(tower_units=(8,)),
    "ODMNRegressor": dict(tower_units=(8,)),
    "MEANRegressor": dict(expert_units=(8,), dam_units=(8,)),
    "CCORNetRegressor": dict(residual_units=(8, 4), high_value_units=(8, 4)),
}


def _tiny(cls: type) -> object:
    accepted = cls().get_params()
    params = {**TINY, **TINY_BY_MODEL.get(cls.__name__, {})}
    return cls(**{k: v for k, v in params.items() if k in accepted})


class _Hang(Exception):
    pass


@contextlib.contextmanager
def _hang_guard(seconds: int = 300):
    """Fail (not wait forever) if one fit + predict on <= 30 rows hangs. It takes well
    under a second; the limit only catches an endless loop."""

    def _raise(signum, frame):
        raise _Hang(f"fit/predict did not return within {seconds} s")

    previous = signal.signal(signal.SIGALRM, _raise)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# Column kinds of a DataFrame; "valid" ones a model must take (docs/contract.md).
VALID_KINDS = [
    "float",
    "float_nan",
    "all_nan",
    "huge",
    "int",
    "nullable_int",
    "bool",
    "category",
    "object",
    "string",
    "mixed_object",
    "constant",
]
INVALID_KINDS = ["float_inf", "datetime", "too_large"]
CATEGORICAL_KINDS = {"category", "object", "string", "mixed_object"}
# Feature values: 0, or 1e-6 <= |x| <= 1e12 (a tiny spread has a test at the end).
FEATURE = st.one_of(st.just(0.0), st.floats(1e-6, 1e12), st.floats(-1e12, -1e-6))


@st.composite
def _column(draw: st.DrawFn, kind: str, n: int) -> object:
    levels = st.sampled_from(["a", "b", "c", "dd"])
    if kind in ("float", "float_nan", "float_inf"):
        values = np.asarray(draw(st.lists(FEATURE, min_size=n, max_size=n)), dtype=np.float64)
        if n and kind != "float":
            special = {"float_nan": np.nan, "float_inf": draw(st.sampled_from([np.inf, -np.inf]))}
            values[draw(st.integers(0, n - 1))] = special[kind]
        return values
    if kind == "all_nan":
        return np.full(n, np.nan)
    if kind == "huge":  # far beyond any currency, up to the documented limit of 1e30
        values = st.sampled_from([0.0, 1.0, -1e30, 1e30, 3e29])
        return np.asarray(draw(st.lists(values, min_size=n, max_size=n)))
    if kind == "too_large":  # beyond the limit: refused, naming the column
        values = np.asarray(draw(st.lists(FEATURE, min_size=n, max_size=n)), dtype=np.float64)
        if n:
            big = draw(st.sampled_from([1.1e30, -1e31, 1e38, 1e300, -1.7e308]))
            values[draw(st.integers(0, n - 1))] = big
        return values
    if kind == "int":
        return np.asarray(draw(st.lists(st.integers(-(2**62), 2**62), min_size=n, max_size=n)))
    if kind == "nullable_int":
        values = draw(st.lists(st.one_of(st.none(), st.integers(-5, 5)), min_size=n, max_size=n))
        return pd.array(values, dtype="Int64")
    if kind == "bool":
        return np.asarray(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    if kind in ("category", "object", "string"):
        texts = TEXTS if kind == "string" else levels
        values = draw(st.lists(st.one_of(st.none(), texts), min_size=n, max_size=n))
        if kind == "category":
            return pd.Categorical(values)
        return (
            pd.array(values, dtype="string")
            if kind == "string"
            else np.asarray(values, dtype=object)
        )
    if kind == "mixed_object":  # numbers and text in one object column
        values = draw(st.lists(st.one_of(st.integers(0, 3), levels), min_size=n, max_size=n))
        return np.asarray(values, dtype=object)
    if kind == "constant":
        return np.full(n, draw(FEATURE))
    assert kind == "datetime"
    return pd.date_range("2020-01-01", periods=n)


# Any text but NUL (refused as corrupt text, a test at the end).
TEXTS = st.text(st.characters(exclude_characters="\x00"), max_size=3)

# Column names: strings, ints, tuples (duplicates and non-string names of categorical
# columns have their own tests at the end of the file).
COLUMN_NAME_TYPES = [
    st.one_of(st.sampled_from(["spend", "country", "x0", "", "spend "]), st.text(max_size=4)),
    st.integers(-2, 3),
    st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 1)),
]
COLUMN_NAMES = st.one_of(*COLUMN_NAME_TYPES)


@st.composite
def problems(draw: st.DrawFn, multi_horizon: bool) -> tuple:
    """(X, y, expectation); the expectation says what the model must do:

    ``("fit", None)``: valid data (docs/contract.md), fit must succeed;
    ``("raise", checks)``: a documented defect, fit must raise ValueError/TypeError and
    the message must pass one of ``checks`` (it names the problem);
    ``("either", checks)``: not covered by the contract (column names of mixed types):
    fit may succeed, or raise a message that passes a check.
    """
    # Half the examples are valid by construction (so that fits happen); the other half
    # may have any defect, several at once.
    valid = draw(st.booleans())
    n = draw(st.integers(1, 30) if valid else st.sampled_from([0, 1, 2, 3, 17]))
    n_cols = draw(st.integers(1, 5) if valid else st.integers(0, 5))
    kinds = draw(
        st.lists(
            st.sampled_from(VALID_KINDS if valid else VALID_KINDS + INVALID_KINDS),
            min_size=n_cols,
            max_size=n_cols,
        )
    )
    # one type of names when valid (str, int or tuple: sklearn takes any single type)
    name_pool = draw(st.sampled_from(COLUMN_NAME_TYPES)) if valid else COLUMN_NAMES
    names = draw(st.lists(name_pool, min_size=n_cols, max_size=n_cols, unique_by=str))
    if set(kinds) & CATEGORICAL_KINDS:
        names = [str(c) for c in names]
    X = pd.DataFrame({i: draw(_column(kind, n)) for i, kind in enumerate(kinds)}, index=range(n))
    X.columns = pd.Index(names, dtype=object, tupleize_cols=False)

    x_checks, either = [], []
    if n == 0:
        x_checks.append(r"X is empty|0 sample")
    if n_cols == 0:
        x_checks.append(r"no columns|0 feature")
    for name, kind in zip(names, kinds, strict=True):
        if kind in INVALID_KINDS and n > 0:
            x_checks.append(re.escape(repr(name)))
    if len({type(c) for c in names}) > 1:  # sklearn: "Feature names are only supported..."
        either.append(r"column|feature names?|X")

    y_kind, y = draw(_targets(n, multi_horizon, valid))
    y_checks = [] if y_kind == "valid" else [r"\by\b|target|samples"]

    checks = x_checks + y_checks + either
    if x_checks or y_checks:
        return X, y, ("raise", checks)
    if either:
        return X, y, ("either", checks)
    return X, y, ("fit", None)


@st.composite
def _targets(draw: st.DrawFn, n: int, multi_horizon: bool, valid: bool) -> tuple[str, object]:
    """(kind, y): a valid target (kind "valid") or one with one documented defect."""
    amounts = st.one_of(st.just(0.0), AMOUNTS)
    n_horizons = draw(st.integers(1, 3)) if multi_horizon else 1
    steps = np.asarray(
        draw(st.lists(amounts, min_size=n * n_horizons, max_size=n * n_horizons)),
        dtype=np.float64,
    ).reshape(n, n_horizons)
    if n:
        steps[draw(st.integers(0, n - 1)), 0] = draw(AMOUNTS)  # someone spends
    y = np.cumsum(steps, axis=1)  # cumulative spend along the horizons
    if not multi_horizon or (n_horizons == 1 and draw(st.booleans())):
        y = y[:, 0]
    kind = (
        "valid"
        if valid
        else draw(
            st.sampled_from(
                ["valid"]
                + ["all_zero", "negative", "nan", "inf", "text", "length", "too_many_dims"]
                + (["decreasing"] if multi_horizon else ["two_columns"])
            )
        )
    )
    if n == 0 and kind not in ("length", "text", "too_many_dims"):
        kind = "empty"
    if kind == "valid":
        if draw(st.booleans()):  # int amounts, or pandas containers
            y = np.round(y).astype(np.int64) if (np.round(y) > 0).any() else y
        if draw(st.booleans()):
            y = (
                pd.Series(y)
                if y.ndim == 1
                else pd.DataFrame(y, columns=[f"{13 * (i + 1)}w" for i in range(y.shape[1])])
            )
        return kind, y
    y = np.array(y, dtype=np.float64)
    row = draw(st.integers(0, max(n - 1, 0)))
    if kind == "all_zero":
        y[:] = 0.0
    elif kind in ("negative", "nan", "inf"):
        y.reshape(n, -1)[row, -1] = {"negative": -1.0, "nan": np.nan, "inf": np.inf}[kind]
    elif kind == "text":
        y = np.full(y.shape, "spend", dtype=object)
    elif kind == "length":
        y = np.concatenate([y, y[:1] + 1.0]) if n else np.ones(1)
    elif kind == "too_many_dims":
        y = np.repeat(np.atleast_2d(y.T).T[..., None], 2, axis=-1)  # (n, h, 2)
    elif kind == "two_columns":
        y = np.column_stack([y, y])
    elif kind == "decreasing":
        y = np.column_stack([y.reshape(n, -1)[:, 0] + 1.0, y.reshape(n, -1)[:, 0]])
    return kind, y


def _far_outside(X: pd.DataFrame, far: float = 1e12) -> pd.DataFrame:
    """``X`` with every numeric value moved far outside the training range (+-``far``)."""
    out = X.copy()
    for i in range(out.shape[1]):
        col = out.iloc[:, i]
        if pd.api.types.is_bool_dtype(col.dtype) or not pd.api.types.is_numeric_dtype(col.dtype):
            continue
        sign = np.where(np.arange(len(col)) % 2 == 0, 1.0, -1.0)
        out.isetitem(i, pd.Series(sign * far, index=out.index).astype(col.dtype, errors="ignore"))
    return out


def _check_prediction(pred: object, n: int, y: object) -> None:
    assert isinstance(pred, np.ndarray) and pred.dtype == np.float64
    assert pred.shape == np.shape(y) and len(pred) == n
    assert np.isfinite(pred).all(), pred
    assert (pred >= 0).all(), pred.min()
    assert (pred <= _PREDICTION_LIMIT).all(), pred.max()


@pytest.mark.parametrize("cls", [cls for _, cls in REGRESSORS], ids=[n for n, _ in REGRESSORS])
@given(data=st.data())
@_budget(0.5)
def test_estimator_fits_and_predicts_or_raises_a_clear_error(cls, data):
    est = _tiny(cls)
    X, y, (expect, checks) = data.draw(problems(bool(getattr(est, "_multi_horizon", False))))
    with _hang_guard(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # warnings are allowed
        try:
            est.fit(X, y)
        except (ValueError, TypeError) as exc:
            message = str(exc)
            assert expect != "fit", f"valid input rejected: {type(exc).__name__}: {message}"
            assert any(re.search(c, message) for c in checks), (message, checks)
            event(f"fit raised {type(exc).__name__}")  # --hypothesis-show-statistics
            return
        assert expect != "raise", f"fit accepted a documented defect {checks}"
        event("fit succeeded")
        _check_prediction(est.predict(X), len(X), y)
        _check_prediction(est.predict(_far_outside(X)), len(X), y)


# ---------------------------------------------------------------------------------------
# Cases the fuzzing found (each was a bug, now fixed), kept as plain regression tests.
# ---------------------------------------------------------------------------------------

_Y4 = np.array([0.0, 1.0, 2.0, 0.0])
REGRESSOR_IDS = [n for n, _ in REGRESSORS]


def _fit_predict(cls: type, X: pd.DataFrame) -> np.ndarray:
    est = _tiny(cls)
    y = np.column_stack([_Y4, 2 * _Y4]) if getattr(est, "_multi_horizon", False) else _Y4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = est.fit(X, y).predict(X)
    _check_prediction(pred, len(X), y)
    return pred


@pytest.mark.parametrize("cls", [cls for _, cls in REGRESSORS], ids=REGRESSOR_IDS)
def test_duplicate_column_names_are_refused_by_name(cls):
    X = pd.DataFrame([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]], columns=["a", "a"])
    with pytest.raises(ValueError, match=r"duplicate column names \['a'\]"):
        _tiny(cls).fit(X, _Y4)


@pytest.mark.parametrize("cls", [cls for _, cls in REGRESSORS], ids=REGRESSOR_IDS)
def test_categorical_column_with_a_non_string_name(cls):
    # all names non-string: sklearn accepts that (no feature_names_in_), and so does ltvkit
    X = pd.DataFrame({0: pd.Categorical(["a", "b", "a", "b"]), 1: [1.0, 2.0, 3.0, 4.0]})
    _fit_predict(cls, X)


@pytest.mark.parametrize("cls", [cls for _, cls in REGRESSORS], ids=REGRESSOR_IDS)
@pytest.mark.parametrize("value", [1e31, -1e300, 1.7e308])
def test_a_feature_beyond_the_limit_is_refused_by_name(cls, value):
    X = pd.DataFrame({"spend": [0.0, value, 1.0, 2.0]})
    with pytest.raises(ValueError, match=r"column 'spend' of X contains values beyond"):
        _fit_predict(cls, X)
    # the limit itself is fine
    _fit_predict(cls, pd.DataFrame({"spend": [0.0, 1e30, 1.0, 2.0]}))


@pytest.mark.parametrize("cls", [cls for _, cls in REGRESSORS], ids=REGRESSOR_IDS)
@pytest.mark.parametrize("train", [[0.0, 1.0, 2.0, 3.0], [0.0, 1e-30, 0.0, 1e-30]])
def test_predictions_far_outside_the_training_range_are_finite(cls, train):
    # the second case has a tiny spread: its standardized values would overflow float32
    X = pd.DataFrame({"a": train})
    est = _tiny(cls)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, _Y4)  # 1-D: ODMN takes it as one horizon
        _check_prediction(est.predict(pd.DataFrame({"a": [1e12, -1e12]})), 2, _Y4[:2])


@pytest.mark.parametrize("cls", [cls for _, cls in REGRESSORS], ids=REGRESSOR_IDS)
@pytest.mark.parametrize(
    "column",
    [[None] * 4, pd.Categorical([None] * 4)],
    ids=["text", "category"],
)
def test_a_column_with_no_value_at_all_fits_and_is_warned_about(cls, column):
    from ltvkit.base import DataQualityWarning

    X = pd.DataFrame({"s": column, "x": [1.0, 2.0, 3.0, 4.0]})
    est = _tiny(cls)
    y = np.column_stack([_Y4, 2 * _Y4]) if getattr(est, "_multi_horizon", False) else _Y4
    with pytest.warns(DataQualityWarning, match="'s' has no value at all"):
        est.fit(X, y)
    _check_prediction(est.predict(X), len(X), y)
    # at predict, a level never seen in fit is a missing value, as for any column
    _check_prediction(est.predict(X.assign(s=["a", None, "b", None])), len(X), y)


@pytest.mark.parametrize("cls", [cls for _, cls in REGRESSORS], ids=REGRESSOR_IDS)
@pytest.mark.parametrize("dtype", ["string", "category", object])
def test_nul_character_in_text_is_refused_by_name(cls, dtype):
    X = pd.DataFrame({"s": pd.Series(["\x00", "a", "\x00", "a"]).astype(dtype)})
    with pytest.raises(ValueError, match=r"column 's' of X contains the NUL character"):
        _fit_predict(cls, X)
