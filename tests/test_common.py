"""The contract every ltvkit estimator meets (docs/contract.md).

Every class in ``ltvkit.all_estimators()`` goes through these tests; a new model only
adds itself to the registry and, if it is slow, a fast configuration to ``FAST_PARAMS``.
"""

from __future__ import annotations

import contextlib
import inspect
import pickle
import re
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone, is_regressor
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from ltvkit import _registry as registry
from ltvkit import all_estimators
from ltvkit.metrics import get_scorer


@contextlib.contextmanager
def _registered(name: str, module: str) -> Iterator[None]:
    """Add one line to ltvkit's registry for the duration of the block."""
    registry.ESTIMATOR_LOCATIONS[name] = module
    try:
        yield
    finally:
        del registry.ESTIMATOR_LOCATIONS[name]


# A model written the way docs/nn.md tells a newcomer to (tests/newcomer_model.py):
# registered like any model, it goes through every test below.
NEWCOMER = "LogMSERegressor"
with _registered(NEWCOMER, "newcomer_model"):
    REGRESSORS = all_estimators("regressor")
TRANSFORMERS = all_estimators("transformer")

# Small, fast configurations for the tests (the defaults are tuned for real data).
# 10 epochs at learning_rate 1e-2: the least that trains a deep model on the tiny check data.
DEEP_FAST = dict(hidden_units=(16,), max_epochs=10, batch_size=64, learning_rate=1e-2)
FAST_PARAMS: dict[str, dict] = {
    "TwoStageRegressor": dict(n_estimators=20, n_jobs=1),
    "ZILNRegressor": DEEP_FAST,
    "OptDistRegressor": dict(
        DEEP_FAST, n_components=2, component_units=(8,), selection_units=(8,), max_epochs=20
    ),
    "MDMERegressor": DEEP_FAST,
    "ODMNRegressor": DEEP_FAST,
    "CCORNetRegressor": dict(DEEP_FAST, residual_units=(16, 8), high_value_units=(16, 8)),
    "MEANRegressor": dict(DEEP_FAST, expert_units=(8,), dam_units=(8,)),
}

# One small grid per model for the GridSearchCV test.
GRIDS: dict[str, dict] = {
    "TwoStageRegressor": {"model__max_depth": [2, 3]},
}
DEEP_GRID = {"model__learning_rate": [3e-3, 1e-2]}

# sklearn's checks compare predictions at rtol=1e-7, which is one float32 rounding step
# (2**-23): a weighted fit and a fit on repeated rows sum their losses and gradients in
# a different order, and which way the last bit rounds depends on the CPU's kernels. So
# the deep models run sklearn's checks with precision="float64", where the two fits agree
# to ~1e-15 on every machine; every other test uses the float32 default.
CHECK_PARAMS: dict[str, dict] = {
    "MDMERegressor": dict(max_epochs=20),
    "ODMNRegressor": dict(max_epochs=20),
}


def _check_instance(cls: type) -> object:
    from ltvkit.nn import BaseDeepRegressor

    params = dict(CHECK_PARAMS.get(cls.__name__, {}))
    if issubclass(cls, BaseDeepRegressor):
        params["precision"] = "float64"
    return _fast(cls, **params)


# Checks a model cannot pass, with the reason. Keep this short; every entry is a debt.
EXPECTED_FAILURES: dict[str, dict[str, str]] = {
    "ODMNRegressor": {
        "check_regressor_multioutput": (
            "The check's make_regression target is negative and decreases along its "
            "columns; ODMN's horizons are cumulative spend and must be non-negative and "
            "non-decreasing, so it rejects that target with a ValueError by design."
        ),
    },
    "OptDistRegressor": {
        "check_sample_weight_equivalence_on_dense_data": (
            "Training draws one Gumbel sample per row to pick the component whose loss counts "
            "(eq. 8), so a row repeated k times gets k independent draws and one row with "
            "weight k gets one: the fits agree in expectation only (passes with gumbel=False)."
        ),
    },
    "CCORNetRegressor": {
        "check_sample_weight_equivalence_on_dense_data": (
            "Batch norm (the paper's Algorithm 3), classifier dropout, the augmentation's "
            "feature noise and the label-smoothing noise are drawn per row of a batch, so a "
            "row repeated k times is not the same fit as one row with weight k."
        ),
        "check_regressors_train": (
            "The paper's hard output predicts bucket values, and its negative-class weights "
            "lambda = (3, 5, 8) push bucket probabilities down, so R^2 on sklearn's all-positive "
            "toy data stays below 0.5 (0.41 even with lambda = 1)."
        ),
    },
}


def _fast(cls: type, **extra: object) -> object:
    params = dict(FAST_PARAMS.get(cls.__name__, {}))
    params.update(extra)
    sig_params = cls().get_params()
    params = {k: v for k, v in params.items() if k in sig_params}
    if "random_state" in sig_params:
        params.setdefault("random_state", 0)
    return cls(**params)


def _expected_failures(estimator: object) -> dict[str, str]:
    return EXPECTED_FAILURES.get(type(estimator).__name__, {})


def _is_multi_horizon(est: object) -> bool:
    return bool(getattr(est, "_multi_horizon", False))


@pytest.fixture(scope="module")
def ltv_data() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """A small zero-inflated table with numeric and categorical columns."""
    from ltvkit.datasets import make_ltv

    X, y = make_ltv(n_samples=400, n_features=5, n_categorical=2, random_state=0)
    _, y_multi = make_ltv(
        n_samples=400, n_features=5, n_categorical=2, n_horizons=3, random_state=0
    )
    return X, np.asarray(y, dtype=float), np.asarray(y_multi, dtype=float)


def _target(est: object, data: tuple) -> np.ndarray:
    return data[2] if _is_multi_horizon(est) else data[1]


# --------------------------------------------------------------------------- sklearn checks


@parametrize_with_checks(
    [_check_instance(cls) for _, cls in REGRESSORS + TRANSFORMERS],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_registry_lists_every_public_estimator():
    import ltvkit

    names = [name for name, _ in all_estimators()]
    assert NEWCOMER not in names
    assert len(names) == len(set(names))
    for name in names:
        assert getattr(ltvkit, name).__name__ == name
        assert name in ltvkit.__all__
    # transformers and regressors partition the registry (plus the test's newcomer)
    assert len(REGRESSORS) + len(TRANSFORMERS) == len(names) + 1
    assert all(is_regressor(cls()) for _, cls in REGRESSORS)


def test_expected_failures_are_few_and_explained():
    for name, failures in EXPECTED_FAILURES.items():
        assert len(failures) <= 3, name
        for check, reason in failures.items():
            assert len(reason) > 20, f"{name}.{check} needs a written reason"


# --------------------------------------------------------------------------- regressors

reg_ids = [name for name, _ in REGRESSORS]


@pytest.mark.parametrize("cls", [cls for _, cls in REGRESSORS], ids=reg_ids)
def test_fit_predict_contract(cls, ltv_data):
    X, _, _ = ltv_data
    est = _fast(cls)
    y = _target(est, ltv_data)
    est.fit(X, y)
    pred = est.predict(X)
    assert pred.dtype == np.float64
    assert pred.shape == y.shape
    assert np.isfinite(pred).all()
    assert (pred >= 0).all()
    assert pred.max() < 1e4 * y.max()
    proba = est.predict_nonzero_proba(X)
    assert proba.shape[0] == X.shape[0]
    assert np.isfinite(proba).all() and (proba >= 0).all() and (proba <= 1).all()
    assert list(est.feature_names_in_) == list(X.columns)
    assert est.n_features_in_ == X.shape[1]


@pytest.mark.parametrize("cls", [cls for _, cls in REGRESSORS], ids=reg_ids)
def test_clone_and_pickle_round_trip(cls, ltv_data):
    X, _, _ = ltv_data
    est = _fast(cls)
    y = _target(est, ltv_data)
    cloned = clone(est)
    assert cloned.get_params() == est.get_params()
    est.fit(X, y)
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(restored.predict(X), est.predict(X))
    # clone of a fitted model is unfitted and refits to the same predictions
    refit = clone(est).fit(X, y)
    np.testing.assert_array_equal(refit.predict(X), est.predict(X))


@pytest.mark.parametrize("cls", [cls for _, cls in REGRESSORS], ids=reg_ids)
def test_determinism_under_random_state(cls, ltv_data):
    X, _, _ = ltv_data
    a = _fast(cls, random_state=7)
    y = _target(a, ltv_data)
    b = _fast(cls, random_state=7)
    np.testing.assert_array_equal(a.fit(X, y).predict(X), b.fit(X, y).predict(X))


@pytest.mark.parametrize("cls", [cls for _, cls in REGRESSORS], ids=reg_ids)
def test_pipeline_gridsearch_cross_validate_with_ltv_scorers(cls, ltv_data):
    X, _, _ = ltv_data
    est = _fast(cls)
    y = _target(est, ltv_data)  # multi-horizon: ltvkit's scorers score the last horizon
    pipe = Pipeline([("model", est)])
    scoring = {
        "gini": get_scorer("normalized_gini"),
        "dmape": get_scorer("neg_decile_mape"),
        "spearman": get_scorer("spearman"),
        "r2": "r2",  # sklearn names mix with ltvkit scorers
    }
    grid = GridSearchCV(
        pipe,
        GRIDS.get(cls.__name__, DEEP_GRID),
        scoring=scoring,
        refit="gini",
        cv=KFold(2, shuffle=True, random_state=0),
    )
    grid.fit(X, y)
    assert np.isfinite(grid.best_score_)
    assert grid.predict(X).shape == y.shape
    res = cross_validate(pipe, X, y, scoring=scoring, cv=KFold(2, shuffle=True, random_state=0))
    for key in ("test_gini", "test_dmape", "test_spearman"):
        assert np.isfinite(res[key]).all(), key
    # the scorers rank a fitted model above a constant predictor on its training data
    assert res["test_gini"].mean() > 0.0


@pytest.mark.parametrize("cls", [cls for _, cls in REGRESSORS], ids=reg_ids)
def test_unseen_category_at_predict_is_handled(cls, ltv_data):
    X, _, _ = ltv_data
    est = _fast(cls)
    y = _target(est, ltv_data)
    est.fit(X, y)
    X_new = X.head(5).copy()
    cat_col = next(c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype))
    X_new[cat_col] = pd.Categorical(["never-seen"] * 5)
    pred = est.predict(X_new)
    assert np.isfinite(pred).all() and (pred >= 0).all()


def _bad_inputs(X: pd.DataFrame, y: np.ndarray) -> list[tuple[str, object, object, str]]:
    """(case id, X, y, regex the ValueError must match)."""
    y_nan, y_inf, y_neg = y.copy(), y.copy(), y.copy()
    y_nan[0] = np.nan
    y_inf[1] = np.inf
    y_neg[2] = -5.0
    return [
        ("nan_target", X, y_nan, "NaN"),
        ("inf_target", X, y_inf, "infinite"),
        ("negative_target", X, y_neg, "negative"),
        ("no_positive_target", X, np.zeros_like(y), "no positive"),
        ("empty_X", X.iloc[:0], y[:0], "empty|0 sample"),
        ("length_mismatch", X, y[:-3], "inconsistent numbers of samples"),
        ("datetime_column", X.assign(when=pd.Timestamp("2020-01-01")), y, "neither numeric"),
        ("text_target", X, y.astype(str), "y must be numeric.*text"),
        ("categorical_target", X, _as_categorical(y), "y must be numeric.*category"),
    ]


def _as_categorical(y: np.ndarray) -> object:
    if y.ndim == 1:
        return pd.Series(y).astype("category")
    return pd.DataFrame(y).astype("category")


BAD_CASES = [
    "nan_target",
    "inf_target",
    "negative_target",
    "no_positive_target",
    "empty_X",
    "length_mismatch",
    "datetime_column",
    "text_target",
    "categorical_target",
]


def _suspicious_columns(X: pd.DataFrame) -> dict[str, tuple[pd.DataFrame, str]]:
    """(X with one suspicious column added, what the warning must say), by case."""
    n = len(X)
    rng = np.random.default_rng(0)
    amounts = [f"{v:.2f}" for v in rng.gamma(2.0, 30.0, size=n)]
    amounts[3] = "12,50"  # a decimal comma: the one cell that does not parse
    signup = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D")
    return {
        "numbers_as_text": (X.assign(amount=amounts), "'amount' holds numbers stored as text"),
        "dates_as_text": (
            X.assign(signup=signup.strftime("%Y-%m-%d")),
            "'signup' holds dates stored as text",
        ),
        "id_column": (
            X.assign(customer_id=[f"C{i:06d}" for i in range(n)]),
            "'customer_id' has a distinct value in almost every row",
        ),
    }


@pytest.mark.parametrize("case", ["numbers_as_text", "dates_as_text", "id_column"])
@pytest.mark.parametrize("cls", [cls for _, cls in REGRESSORS], ids=reg_ids)
def test_suspicious_column_draws_a_warning_naming_it(cls, case, ltv_data):
    from ltvkit.base import DataQualityWarning

    X, _, _ = ltv_data
    est = _fast(cls)
    y = _target(est, ltv_data)
    X_bad, message = _suspicious_columns(X)[case]
    with pytest.warns(DataQualityWarning, match=re.escape(message)):
        est.fit(X_bad, y)
    # legal input: the model still fits and predicts
    assert np.isfinite(est.predict(X_bad)).all()


def test_clean_table_draws_no_data_quality_warning(ltv_data):
    import warnings

    from ltvkit.base import DataQualityWarning, TabularSchema

    X, _, _ = ltv_data
    named = X.assign(country=np.where(np.arange(len(X)) % 3 == 0, "UK", "FR"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataQualityWarning)
        TabularSchema().fit(named)


@pytest.mark.parametrize("case", BAD_CASES)
@pytest.mark.parametrize("cls", [cls for _, cls in REGRESSORS], ids=reg_ids)
def test_bad_input_at_fit_raises_clear_value_error(cls, case, ltv_data):
    X, _, _ = ltv_data
    est = _fast(cls)
    y = _target(est, ltv_data)
    cases = {c[0]: c for c in _bad_inputs(X, y)}
    _, X_bad, y_bad, pattern = cases[case]
    with pytest.raises(ValueError, match=pattern):
        est.fit(X_bad, y_bad)


@pytest.mark.parametrize(
    "case, pattern",
    [
        ("negative", "[Nn]egative"),
        ("nan", "NaN"),
        ("all_zero", "sums to zero|at least one non-zero"),
        ("spenders_zero", "positive target y has sample_weight 0"),
    ],
)
@pytest.mark.parametrize("cls", [cls for _, cls in REGRESSORS], ids=reg_ids)
def test_bad_sample_weight_raises_clear_value_error(cls, case, pattern, ltv_data):
    X, _, _ = ltv_data
    est = _fast(cls)
    y = _target(est, ltv_data)
    spends = (y > 0) if y.ndim == 1 else (y > 0).any(axis=1)
    w = np.ones(len(X))
    if case == "negative":
        w[0] = -1.0
    elif case == "nan":
        w[0] = np.nan
    elif case == "all_zero":
        w[:] = 0.0
    else:  # only non-spenders carry weight: no customer who spends is left
        w[spends] = 0.0
    with pytest.raises(ValueError, match=pattern):
        est.fit(X, y, sample_weight=w)


@pytest.mark.parametrize("cls", [cls for _, cls in REGRESSORS], ids=reg_ids)
def test_fit_and_predict_leave_the_input_unchanged(cls, ltv_data):
    # validation hands float columns on as views, so no model may write into them
    X, _, _ = ltv_data
    X = X.copy()
    num = X.select_dtypes("number").columns
    X[num[0]] = X[num[0]].astype(np.float64)
    X.loc[X.index[::9], num[1]] = np.nan
    y = _target(_fast(cls), ltv_data)
    before = X.copy(deep=True)
    est = _fast(cls).fit(X, y)
    est.predict(X)
    pd.testing.assert_frame_equal(X, before)


@pytest.mark.parametrize("cls", [cls for _, cls in REGRESSORS], ids=reg_ids)
def test_bad_input_at_predict_raises_clear_value_error(cls, ltv_data):
    X, _, _ = ltv_data
    est = _fast(cls)
    est.fit(X, _target(est, ltv_data))
    with pytest.raises(ValueError, match="features"):
        est.predict(X.iloc[:, :-1].to_numpy())
    with pytest.raises(ValueError, match=re.escape(X.columns[0])):
        est.predict(X.drop(columns=X.columns[0]))
    with pytest.raises(ValueError, match=r"empty|0 sample"):
        est.predict(X.iloc[:0])


# --------------------------------------------------------------------------- transformers

tr_ids = [name for name, _ in TRANSFORMERS]


@pytest.mark.parametrize("cls", [cls for _, cls in TRANSFORMERS], ids=tr_ids)
def test_transformer_clone_pickle_pipeline(cls, ltv_data):
    _, y, _ = ltv_data
    col = y.reshape(-1, 1)
    est = cls()
    out = est.fit_transform(col)
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(restored.transform(col), out)
    assert clone(est).get_params() == est.get_params()
    pipe = Pipeline([("bucketize", cls())]).set_output(transform="pandas")
    frame = pipe.fit_transform(pd.DataFrame({"value": y}))
    assert isinstance(frame, pd.DataFrame)
    assert len(frame) == len(y)


# --------------------------------------------------------------------------- conventions

#: The public prediction methods, one name per concept (docs/contract.md, "Vocabulary").
#: A new name is a new concept: add it here and to the table, or reuse one.
PREDICT_METHODS = {
    "predict",  # E[y | x]
    "predict_nonzero_proba",  # P(y > 0 | x)
    "predict_quantiles",  # quantiles of y | x
    "predict_params",  # a parametric model's distribution parameters (dict of arrays)
    "predict_positive_value",  # E[y | y > 0, x]
    "predict_bucket_proba",  # P(bucket | x) over the model's value buckets
    "predict_bucket",  # the most probable bucket
    "predict_bucket_values",  # the value the model predicts inside each bucket
    "predict_stage_proba",  # a cascade's conditional stage probabilities
    "predict_component_proba",  # a mixture's component (selection) probabilities
    "predict_component",  # the selected mixture component
    "predict_attention",  # an attention matrix, for inspection
}

#: Names that mean different things in different papers (Greek letters) or that ltvkit
#: replaced by one name per concept; no estimator may use them as a parameter.
FORBIDDEN_PARAMS = {
    "alpha": "a role name (e.g. calibration_weight)",
    "beta": "a role name (e.g. *_weight)",
    "gamma": "a role name (e.g. main_weight)",
    "temperature": "gumbel_temperature or distill_temperature",
    "lr": "learning_rate",
    "lr_schedule": "learning_rate_schedule",
    "early_stopping_rounds": "early_stopping + patience",
    "n_distributions": "n_buckets (label ranges) or n_components (mixture components)",
    "selection": "prediction",
}

#: Values of the switches several models share.
SHARED_CHOICES = {
    "prediction": {"hard", "expected"},
    "bias_correction": {"balance", "smearing", "lognormal", "isotonic", "none"},
}


@pytest.mark.parametrize("cls", [cls for _, cls in REGRESSORS], ids=reg_ids)
def test_prediction_methods_use_the_shared_vocabulary(cls):
    methods = {name for name in dir(cls) if name.startswith("predict")}
    assert "predict" in methods and "predict_nonzero_proba" in methods
    unknown = methods - PREDICT_METHODS
    assert not unknown, f"{cls.__name__}: {sorted(unknown)} not in the vocabulary"


@pytest.mark.parametrize("cls", [cls for _, cls in REGRESSORS], ids=reg_ids)
def test_parameters_use_the_shared_vocabulary(cls):
    from ltvkit.nn import SHARED_PARAMS, BaseDeepRegressor

    params = inspect.signature(cls.__init__).parameters
    for name, instead in FORBIDDEN_PARAMS.items():
        assert name not in params, f"{cls.__name__}.{name}: use {instead}"
    for name, allowed in SHARED_CHOICES.items():
        if name in params:
            constraint = dict(cls._parameter_constraints)[name][0]
            assert set(constraint.options) <= allowed, (cls.__name__, name)
    if issubclass(cls, BaseDeepRegressor):
        assert set(SHARED_PARAMS) <= set(params)
    # every parameter has declared constraints, checked at fit
    assert set(params) - {"self"} == set(cls._parameter_constraints), cls.__name__


@pytest.mark.parametrize("cls", [cls for _, cls in REGRESSORS], ids=reg_ids)
def test_every_parameter_is_validated_at_fit_with_its_name(cls, ltv_data):
    X, _, _ = ltv_data
    est = _fast(cls)
    y = _target(est, ltv_data)
    for name in cls._parameter_constraints:
        bad = est.set_params(**{name: _INVALID})
        with pytest.raises(ValueError, match=rf"\b{re.escape(name)}\b"):
            bad.fit(X, y)
        est = _fast(cls)


class _Invalid:
    """A value no constraint accepts."""

    def __repr__(self) -> str:
        return "<invalid>"


_INVALID = _Invalid()


def test_a_registered_model_is_exposed_everywhere():
    import ltvkit

    assert not hasattr(ltvkit, NEWCOMER)
    with _registered(NEWCOMER, "newcomer_model"):
        cls = dict(all_estimators("regressor"))[NEWCOMER]
        assert getattr(ltvkit, NEWCOMER) is cls
        from ltvkit._benchmark import available_models

        assert available_models()["log_mse"] is cls


# --------------------------------------------------------------------------- distributions

LEVELS = [0.0, 0.05, 0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99]


@pytest.mark.parametrize("cls", [cls for _, cls in REGRESSORS], ids=reg_ids)
def test_predict_quantiles_contract(cls, ltv_data):
    """One signature and one contract for every model (docs/contract.md, "Quantiles")."""
    X, _, _ = ltv_data
    est = _fast(cls)
    y = _target(est, ltv_data)
    est.fit(X, y)
    Q = est.predict_quantiles(X, LEVELS)
    horizons = y.shape[1:] if y.ndim == 2 else ()
    assert Q.shape == (len(X), *horizons, len(LEVELS))
    assert Q.dtype == np.float64 and np.isfinite(Q).all() and (Q >= 0).all()
    assert (np.diff(Q, axis=-1) >= 0).all(), "quantiles must not decrease with the level"
    assert est.predict_quantiles(X, 0.5).shape == (len(X), *horizons)
    np.testing.assert_array_equal(est.predict_quantiles(X, 0.5), Q[..., LEVELS.index(0.5)])
    # the point mass at zero, exactly: Q(tau) = 0 for tau <= P(y = 0 | x), > 0 above it
    p_zero = 1.0 - est.predict_nonzero_proba(X)
    last = Q[:, -1, :] if Q.ndim == 3 else Q
    below = np.asarray(LEVELS)[None, :] <= p_zero[:, None] - 1e-9
    above = np.asarray(LEVELS)[None, :] >= p_zero[:, None] + 1e-9
    assert (last[below] == 0).all()
    assert (last[above] > 0).all()
    # level 1 is the top of the support: finite, or refused for an unbounded one
    try:
        top = est.predict_quantiles(X, 1.0)
    except ValueError as exc:
        assert "unbounded" in str(exc)
    else:
        assert np.isfinite(top).all() and (top >= Q[..., -1]).all()
    for bad in ([0.5, 1.5], [-0.1], [], [[0.5]], "0.5", [np.nan]):
        with pytest.raises(ValueError, match="quantiles"):
            est.predict_quantiles(X, bad)


# --------------------------------------------------------------------------- training feedback


def _deep_regressors() -> list[type]:
    from ltvkit.nn import BaseDeepRegressor

    return [cls for _, cls in REGRESSORS if issubclass(cls, BaseDeepRegressor)]


@pytest.mark.parametrize("cls", _deep_regressors(), ids=lambda c: c.__name__)
def test_epoch_scoring_logs_an_ltvkit_scorer_on_the_validation_data(cls, ltv_data):
    from skorch.callbacks import EpochScoring

    from ltvkit.metrics import normalized_gini

    X, _, _ = ltv_data
    y = _target(_fast(cls), ltv_data)
    scoring = EpochScoring(get_scorer("normalized_gini"), lower_is_better=False, name="gini")
    est = _fast(cls, callbacks=[scoring], max_epochs=3, early_stopping=False)
    est.fit(X[:300], y[:300], validation_data=(X[300:], y[300:]))
    ginis = est.net_.history[:, "gini"]
    assert len(ginis) == 3 and np.isfinite(ginis).all()
    assert np.isfinite(est.net_.history[:, "valid_loss"]).all()
    # the last epoch's score is the final model's Gini on the validation rows (the last
    # horizon of a multi-horizon target, like ltvkit's scorers)
    y_val, pred = y[300:], est.predict(X[300:])
    if y_val.ndim == 2:
        y_val, pred = y_val[:, -1], pred[:, -1]
    assert ginis[-1] == pytest.approx(normalized_gini(y_val, pred), abs=1e-9)


@pytest.mark.parametrize("cls", [cls for _, cls in REGRESSORS], ids=reg_ids)
def test_validation_data_is_checked_and_names_itself(cls, ltv_data):
    X, _, _ = ltv_data
    est = _fast(cls)
    y = _target(est, ltv_data)
    with pytest.raises(ValueError, match=r"validation_data.*tuple"):
        est.fit(X, y, validation_data=X)
    with pytest.raises(ValueError, match=rf"validation_data(.|\n)*{X.columns[0]}"):
        est.fit(X, y, validation_data=(X.drop(columns=X.columns[0]), y))
    with pytest.raises(ValueError, match=r"validation_data.*negative"):
        est.fit(X, y, validation_data=(X, -np.abs(y) - 1))
    with pytest.raises(ValueError, match=r"validation_data.*rows"):
        est.fit(X, y, validation_data=(X, y[:10]))


# --------------------------------------------------------------------------- model files


def _predict_outputs(est: object, X: pd.DataFrame) -> dict[str, object]:
    """Every public predict-type method's output (transform for transformers)."""
    out = {}
    for name in sorted(n for n in dir(est) if n.startswith("predict") or n == "transform"):
        method = getattr(est, name, None)
        if not callable(method):
            continue
        out[name] = method(X, LEVELS) if name == "predict_quantiles" else method(X)
    return out


def _assert_same_outputs(a: object, b: object) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _assert_same_outputs(a[key], b[key])
    else:
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "cls", [cls for _, cls in REGRESSORS + TRANSFORMERS], ids=reg_ids + tr_ids
)
def test_save_load_round_trip(cls, ltv_data, tmp_path):
    """ltvkit.save / ltvkit.load: identical output from every predict-type method."""
    import ltvkit

    X, y1, _ = ltv_data
    est = _fast(cls)
    if hasattr(est, "transform"):
        X, fitted = y1.reshape(-1, 1), est.fit(y1.reshape(-1, 1))
    else:
        fitted = est.fit(X, _target(est, ltv_data))
    with contextlib.ExitStack() as stack:
        if cls.__name__ == NEWCOMER:  # registered like a real model for the round trip
            stack.enter_context(_registered(NEWCOMER, "newcomer_model"))
        loaded = ltvkit.load(ltvkit.save(fitted, tmp_path / "model.ltvkit"))
    assert type(loaded) is cls
    assert loaded.get_params() == fitted.get_params()
    _assert_same_outputs(_predict_outputs(loaded, X), _predict_outputs(fitted, X))


@pytest.mark.parametrize("cls", [cls for _, cls in TRANSFORMERS], ids=tr_ids)
def test_transformer_parameters_are_declared_and_validated_at_fit(cls, ltv_data):
    _, y, _ = ltv_data
    params = set(inspect.signature(cls.__init__).parameters) - {"self"}
    assert params == set(cls._parameter_constraints), cls.__name__
    for name in params:
        with pytest.raises(ValueError, match=rf"\b{re.escape(name)}\b"):
            cls(**{name: _INVALID}).fit(y.reshape(-1, 1))


# --------------------------------------------------------------------------- recalibration


@pytest.mark.parametrize("cls", [cls for _, cls in REGRESSORS], ids=reg_ids)
def test_conformal_recalibration_keeps_the_quantile_contract(cls, ltv_data):
    """ConformalQuantileRegressor works on every model and keeps its point mass at zero."""
    from ltvkit.base import CONFORMAL_LEVELS, ConformalQuantileRegressor

    X, _, _ = ltv_data
    est = _fast(cls)
    y = _target(est, ltv_data)
    model = ConformalQuantileRegressor(est, calibration_fraction=0.25, random_state=0).fit(X, y)
    levels = [0.0, 0.1, 0.5, 0.9, 0.95]
    Q = model.predict_quantiles(X, levels)
    horizons = y.shape[1:] if y.ndim == 2 else ()
    assert Q.shape == (len(X), *horizons, len(levels))
    assert np.isfinite(Q).all() and (Q >= 0).all() and (np.diff(Q, axis=-1) >= 0).all()
    assert model.log_factors_.shape == (*horizons, len(CONFORMAL_LEVELS))
    # recalibration rescales: zero where the model's quantile is zero, positive elsewhere
    raw = model.estimator_.predict_quantiles(X, levels)
    np.testing.assert_array_equal(Q > 0, raw > 0)
    np.testing.assert_array_equal(model.predict(X), model.estimator_.predict(X))
