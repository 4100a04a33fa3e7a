"""Tests for ltvkit.boosting.TwoStageRegressor (docs/models/two_stage.md)."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsRegressor
from threadpoolctl import threadpool_limits

from ltvkit.boosting import TwoStageRegressor
from ltvkit.datasets import load_cdnow, make_ltv
from ltvkit.metrics import decile_mape, normalized_gini

BACKENDS = ["xgboost", "lightgbm"]
FAST = dict(n_estimators=60, n_jobs=1, random_state=0)


@pytest.fixture(scope="module")
def ltv() -> tuple[pd.DataFrame, np.ndarray]:
    X, y = make_ltv(n_samples=3000, n_features=6, n_categorical=2, random_state=0)
    return X, np.asarray(y, dtype=np.float64)


def _lognormal(n: int, seed: int, sigma: float = 1.0) -> tuple[pd.DataFrame, np.ndarray]:
    """Hurdle data with a homoscedastic log-normal spend (log1p ~ log at this scale)."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    buys = rng.random(n) < 1.0 / (1.0 + np.exp(-X["b"].to_numpy()))
    log_value = 4.0 + 0.7 * X["a"].to_numpy() + sigma * rng.normal(size=n)
    return X, np.where(buys, np.exp(log_value), 0.0)


# --------------------------------------------------------------------------- basics


@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_predict_both_backends(backend, ltv):
    X, y = ltv
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0)
    model = TwoStageRegressor(backend=backend, **FAST).fit(X_tr, y_tr)
    pred = model.predict(X_te)
    assert pred.dtype == np.float64 and pred.shape == (len(X_te),)
    assert np.isfinite(pred).all() and (pred >= 0).all()
    # make_ltv's groups are identifiable from the features: the ranking is good
    assert normalized_gini(y_te, pred) > 0.5
    proba = model.predict_nonzero_proba(X_te)
    assert ((proba >= 0) & (proba <= 1)).all()
    # the classifier separates spenders from non-spenders
    assert proba[y_te > 0].mean() > proba[y_te == 0].mean() + 0.2
    module = "xgboost" if backend == "xgboost" else "lightgbm"
    assert type(model.classifier_).__module__.startswith(module)
    assert type(model.regressor_).__module__.startswith(module)
    assert model.n_estimators_ == (60, 60)
    assert list(model.feature_names_in_) == list(X.columns)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("target_transform", ["log1p", "none"])
def test_predict_is_nonzero_proba_times_positive_value(backend, target_transform, ltv):
    X, y = ltv
    model = TwoStageRegressor(backend=backend, target_transform=target_transform, **FAST)
    model.fit(X, y)
    product = model.predict_nonzero_proba(X) * model.predict_positive_value(X)
    np.testing.assert_allclose(model.predict(X), product, rtol=1e-12)
    assert (model.predict_positive_value(X) > 0).all()


def test_defaults_use_hist_and_native_categories():
    params = TwoStageRegressor().get_params()
    assert params["backend"] == "xgboost"
    assert params["target_transform"] == "log1p"
    assert params["bias_correction"] == "balance"
    X, y = _lognormal(300, 0)
    model = TwoStageRegressor(n_estimators=5, n_jobs=1).fit(X, y)
    for est in (model.classifier_, model.regressor_):
        assert est.get_params()["tree_method"] == "hist"
        assert est.get_params()["enable_categorical"] is True
    assert model.regressor_.get_params()["objective"] == "reg:squarederror"


@pytest.mark.parametrize(
    ("backend", "objective"), [("xgboost", "reg:gamma"), ("lightgbm", "gamma")]
)
def test_target_transform_none_fits_y_with_a_gamma_objective(backend, objective):
    X, y = _lognormal(4000, 0)
    model = TwoStageRegressor(backend=backend, target_transform="none", **FAST).fit(X, y)
    assert model.regressor_.get_params()["objective"] == objective
    # balance: the spenders' predicted total equals their observed total
    pos = y > 0
    np.testing.assert_allclose(model.predict_positive_value(X[pos]).sum(), y[pos].sum(), rtol=1e-6)
    tweedie = {"xgboost": "reg:tweedie", "lightgbm": "tweedie"}[backend]
    model = TwoStageRegressor(
        backend=backend, target_transform="none", regressor_params={"objective": tweedie}, **FAST
    ).fit(X, y)
    assert model.regressor_.get_params()["objective"] == tweedie


# --------------------------------------------------------------------------- bias correction


def test_bias_correction_makes_mean_predictions_unbiased():
    """Plain exp(f) - 1 predicts medians; every correction recovers the mean."""
    X, y = _lognormal(20000, 0, sigma=1.0)
    X_new, y_new = _lognormal(200000, 1, sigma=1.0)
    pos_new = y_new > 0
    truth = y_new[pos_new].mean()
    ratio = {}
    for correction in ("none", "smearing", "lognormal", "balance"):
        model = TwoStageRegressor(
            bias_correction=correction, n_estimators=100, n_jobs=1, random_state=0
        ).fit(X, y)
        ratio[correction] = model.predict_positive_value(X_new[pos_new]).mean() / truth
        if correction == "none":
            assert model.correction_factor_ == 1.0
        else:  # close to the log-normal exp(sigma^2 / 2) = 1.65
            assert 1.45 < model.correction_factor_ < 1.8
    # the median of a log-normal is exp(-sigma^2 / 2) = 0.61 of its mean
    assert ratio["none"] < 0.7
    for correction in ("smearing", "lognormal", "balance"):
        assert abs(ratio[correction] - 1.0) < 0.06, (correction, ratio)
    # and the overall mean E[y] (both stages) is unbiased too
    model = TwoStageRegressor(n_estimators=100, n_jobs=1, random_state=0).fit(X, y)
    assert abs(model.predict(X_new).mean() / y_new.mean() - 1.0) < 0.06


@pytest.mark.parametrize("backend", BACKENDS)
def test_balance_matches_the_spenders_total_exactly(backend, ltv):
    X, y = ltv
    w = np.random.default_rng(0).uniform(0.5, 2.0, size=len(y))
    model = TwoStageRegressor(backend=backend, **FAST).fit(X, y, sample_weight=w)
    pos = y > 0
    value = model.predict_positive_value(X[pos])
    np.testing.assert_allclose(np.sum(w[pos] * value), np.sum(w[pos] * y[pos]), rtol=1e-6)


def test_smearing_and_lognormal_need_log1p():
    X, y = _lognormal(200, 0)
    for correction in ("smearing", "lognormal"):
        with pytest.raises(ValueError, match="log1p"):
            TwoStageRegressor(target_transform="none", bias_correction=correction).fit(X, y)


# --------------------------------------------------------------------------- features


@pytest.mark.parametrize("backend", BACKENDS)
def test_category_columns_are_native_and_unseen_levels_are_missing(backend):
    rng = np.random.default_rng(0)
    n = 4000
    level = rng.choice(["a", "b", "c", "d", "e"], size=n)
    effect = pd.Series({"a": 0.0, "b": 3.0, "c": 0.0, "d": 3.0, "e": 0.0})[level].to_numpy()
    X = pd.DataFrame({"x": rng.normal(size=n), "channel": pd.Categorical(level)})
    buys = rng.random(n) < np.where(effect > 0, 0.8, 0.2)
    y = np.where(buys, np.exp(2.0 + effect + 0.3 * rng.normal(size=n)), 0.0)
    model = TwoStageRegressor(backend=backend, **FAST).fit(X, y)
    if backend == "xgboost":
        assert model.classifier_.get_booster().feature_types == ["float", "c"]
    else:
        assert model.regressor_.booster_.pandas_categorical == [["a", "b", "c", "d", "e"]]
    probe = pd.DataFrame({"x": np.zeros(5), "channel": pd.Categorical(list("abcde"))})
    pred = model.predict(probe)
    # one split on the category (not an ordinal cut) separates {b, d} from {a, c, e}
    assert pred[[1, 3]].min() > 5 * pred[[0, 2, 4]].max()
    # an unseen level is scored exactly like a missing value
    unseen = probe.assign(channel=pd.Categorical(["zzz"] * 5))
    missing = probe.assign(channel=pd.Categorical([np.nan] * 5, categories=["a"]))
    np.testing.assert_array_equal(model.predict(unseen), model.predict(missing))
    # string columns work too (treated as categories)
    as_str = model.predict(probe.assign(channel=probe["channel"].astype(str)))
    np.testing.assert_array_equal(as_str, pred)


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_features_are_handled_natively(backend):
    rng = np.random.default_rng(0)
    n = 3000
    a = rng.normal(size=n)
    missing = rng.random(n) < 0.3
    # customers with no recorded visit (NaN) never buy
    buys = ~missing & (rng.random(n) < 0.6)
    y = np.where(buys, np.exp(3.0 + a), 0.0)
    X = pd.DataFrame({"visits": np.where(missing, np.nan, rng.normal(size=n)), "a": a})
    model = TwoStageRegressor(backend=backend, **FAST).fit(X, y)
    proba = model.predict_nonzero_proba(X)
    assert proba[missing].max() < 0.1
    assert 0.5 < proba[~missing].mean() < 0.7
    X_all_nan = X.assign(a=np.nan)
    assert np.isfinite(model.predict(X_all_nan)).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_column_names_boosters_refuse_are_handled(backend):
    X, y = _lognormal(500, 0)
    X.columns = ["spend[90d]", "orders <30d: web"]
    model = TwoStageRegressor(backend=backend, **FAST).fit(X, y)
    assert list(model.feature_names_in_) == list(X.columns)
    assert np.isfinite(model.predict(X)).all()


# --------------------------------------------------------------------------- weights, seeds


@pytest.mark.parametrize("backend", BACKENDS)
def test_sample_weight_reaches_both_stages(backend, ltv):
    X, y = ltv
    base = TwoStageRegressor(backend=backend, **FAST).fit(X, y)
    w = np.where(X["cat_0"].to_numpy() == "v0", 5.0, 1.0)
    weighted = TwoStageRegressor(backend=backend, **FAST).fit(X, y, sample_weight=w)
    assert not np.allclose(base.predict_nonzero_proba(X), weighted.predict_nonzero_proba(X))
    assert not np.allclose(base.predict_positive_value(X), weighted.predict_positive_value(X))
    # weights of ones are no weights
    ones = TwoStageRegressor(backend=backend, **FAST).fit(X, y, sample_weight=np.ones(len(y)))
    np.testing.assert_allclose(ones.predict(X), base.predict(X), rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_weight_equals_dropping_the_rows(backend, ltv):
    X, y = ltv
    rng = np.random.default_rng(1)
    w = rng.integers(1, 4, size=len(y)).astype(float)
    w[rng.random(len(y)) < 0.25] = 0.0
    keep = w > 0
    with_zeros = TwoStageRegressor(backend=backend, **FAST).fit(X, y, sample_weight=w)
    dropped = TwoStageRegressor(backend=backend, **FAST).fit(
        X[keep], y[keep], sample_weight=w[keep]
    )
    np.testing.assert_array_equal(with_zeros.predict(X), dropped.predict(X))


def test_no_positive_with_nonzero_weight_is_a_clear_error(ltv):
    X, y = ltv
    w = np.where(y > 0, 0.0, 1.0)
    with pytest.raises(ValueError, match="sample_weight 0"):
        TwoStageRegressor(**FAST).fit(X, y, sample_weight=w)


@pytest.mark.parametrize("backend", BACKENDS)
def test_random_state_reaches_both_boosters(backend, ltv):
    X, y = ltv
    params = dict(FAST, subsample=0.5, colsample_bytree=0.5, backend=backend)
    a = TwoStageRegressor(**params).fit(X, y)
    b = TwoStageRegressor(**params).fit(X, y)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert a.classifier_.get_params()["random_state"] == 0
    assert a.regressor_.get_params()["random_state"] == 0
    c = TwoStageRegressor(**dict(params, random_state=1)).fit(X, y)
    assert not np.allclose(a.predict_nonzero_proba(X), c.predict_nonzero_proba(X))
    assert not np.allclose(a.predict_positive_value(X), c.predict_positive_value(X))
    # a RandomState instance works and is reproducible from the same seed
    d = TwoStageRegressor(**dict(params, random_state=np.random.RandomState(3))).fit(X, y)
    e = TwoStageRegressor(**dict(params, random_state=np.random.RandomState(3))).fit(X, y)
    np.testing.assert_array_equal(d.predict(X), e.predict(X))


# --------------------------------------------------------------------------- early stopping


@pytest.mark.parametrize("backend", BACKENDS)
def test_early_stopping_stops_both_stages(backend, ltv):
    X, y = ltv
    params = dict(
        backend=backend,
        n_estimators=2000,
        learning_rate=0.3,
        early_stopping=True,
        patience=10,
        n_jobs=1,
        random_state=0,
    )
    model = TwoStageRegressor(**params).fit(X, y)
    n_clf, n_reg = model.n_estimators_
    assert n_clf < 2000 and n_reg < 2000
    if backend == "xgboost":
        assert model.classifier_.best_iteration + 1 == n_clf
        assert model.regressor_.best_iteration + 1 == n_reg
        assert model.classifier_.get_booster().num_boosted_rounds() < 2000
    else:
        assert model.classifier_.best_iteration_ == n_clf
        assert model.regressor_.best_iteration_ == n_reg
        assert model.classifier_.booster_.current_iteration() < 2000
    # the held-out split is seeded: the same random_state gives the same model
    again = TwoStageRegressor(**params).fit(X, y)
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    other = TwoStageRegressor(**dict(params, random_state=5)).fit(X, y)
    assert not np.array_equal(other.predict(X), model.predict(X))


def test_early_stopping_split_is_stratified_and_seeded(ltv):
    _, y = ltv
    positive = y > 0
    model = TwoStageRegressor(early_stopping=True, patience=3, validation_fraction=0.2)
    clf, reg = model._make_classifier(0), model._make_regressor(0)
    train, val = model._validation_split(positive, clf, reg, np.random.RandomState(0))
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == len(y)
    assert len(val) == int(np.ceil(0.2 * len(y)))
    # stratified on y > 0: the same share of spenders on both sides
    assert abs(positive[val].mean() - positive[train].mean()) < 0.002
    again = model._validation_split(positive, clf, reg, np.random.RandomState(0))[1]
    np.testing.assert_array_equal(again, val)
    # without early stopping nothing is held out
    assert TwoStageRegressor()._validation_split(positive, clf, reg, np.random) == (None, None)


def test_early_stopping_on_tiny_data_falls_back_with_a_warning():
    X = np.arange(12.0).reshape(6, 2)
    y = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 5.0])  # a single spender
    model = TwoStageRegressor(n_estimators=10, early_stopping=True, patience=2, n_jobs=1)
    with pytest.warns(UserWarning, match="without early stopping"):
        model.fit(X, y)
    assert model.n_estimators_ == (10, 10)
    assert np.isfinite(model.predict(X)).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_early_stopping_with_spenders_missing_from_the_split_falls_back(backend):
    # 2 spenders in 100 rows: a stratified 10% split rounds them out of the validation
    # part, where stage 2 would have nothing to evaluate
    X = np.random.default_rng(0).normal(size=(100, 2))
    y = np.zeros(100)
    y[[3, 50]] = [5.0, 7.0]
    model = TwoStageRegressor(
        backend=backend, n_estimators=10, early_stopping=True, patience=2, n_jobs=1, random_state=0
    )
    with pytest.warns(UserWarning, match="both classes on each side"):
        model.fit(X, y)
    assert np.isfinite(model.predict(X)).all()


# --------------------------------------------------------------------------- plug-ins


def test_custom_classifier_and_regressor_plug_in(ltv):
    X, y = ltv
    clf = HistGradientBoostingClassifier(max_iter=30)
    reg = HistGradientBoostingRegressor(max_iter=30)
    with threadpool_limits(1):  # HistGradientBoosting has no n_jobs; the machine is shared
        model = TwoStageRegressor(classifier=clf, regressor=reg, random_state=0).fit(X, y)
    assert isinstance(model.classifier_, HistGradientBoostingClassifier)
    assert model.classifier_ is not clf and not hasattr(clf, "classes_")  # cloned
    # random_state reaches plug-ins whose own random_state is None
    assert model.classifier_.random_state == 0 and clf.random_state is None
    # the category columns arrive as pandas categories (native in HistGradientBoosting)
    assert model.regressor_.is_categorical_.sum() == 2
    pred = model.predict(X)
    assert np.isfinite(pred).all() and normalized_gini(y, pred) > 0.5
    assert model.n_estimators_ == (None, None)
    np.testing.assert_allclose(
        pred, model.predict_nonzero_proba(X) * model.predict_positive_value(X)
    )
    # only the booster stage early-stops; the plug-in stage says it cannot
    with (
        pytest.warns(UserWarning, match="early_stopping applies to XGBoost"),
        threadpool_limits(1),
    ):
        mixed = TwoStageRegressor(
            classifier=clf,
            early_stopping=True,
            patience=5,
            n_estimators=500,
            learning_rate=0.3,
            **{k: v for k, v in FAST.items() if k != "n_estimators"},
        ).fit(X, y)
    assert mixed.n_estimators_[0] is None and mixed.n_estimators_[1] < 500


def test_plug_in_booster_gets_early_stopping_and_plug_in_without_weights_is_refused():
    from xgboost import XGBRegressor

    X, y = _lognormal(2000, 0)
    reg = XGBRegressor(n_estimators=1000, learning_rate=0.3, max_depth=2, n_jobs=1)
    model = TwoStageRegressor(
        regressor=reg,
        early_stopping=True,
        patience=5,
        **{k: v for k, v in FAST.items() if k != "n_estimators"},
    ).fit(X, y)
    assert model.n_estimators_[1] < 1000
    # category columns reach a plug-in XGBoost model natively (enable_categorical is set)
    X_cat = X.assign(c=pd.Categorical(np.where(X["a"] > 0, "hi", "lo")))
    plug = TwoStageRegressor(regressor=XGBRegressor(n_estimators=20, n_jobs=1)).fit(X_cat, y)
    assert plug.regressor_.get_params()["enable_categorical"] is True
    assert reg.get_params()["enable_categorical"] is False  # the user's object is untouched
    knn = TwoStageRegressor(regressor=KNeighborsRegressor(), classifier=LogisticRegression())
    knn.fit(X, y)  # fine without weights
    with pytest.raises(ValueError, match="does not accept sample_weight"):
        knn.fit(X, y, sample_weight=np.ones(len(y)))
    # a plug-in that refuses NaN makes the model say so in its tags
    assert knn.__sklearn_tags__().input_tags.allow_nan is False
    assert TwoStageRegressor().__sklearn_tags__().input_tags.allow_nan is True


# --------------------------------------------------------------------------- degenerate fits


@pytest.mark.parametrize("backend", BACKENDS)
def test_only_positives_is_a_documented_degenerate_fit(backend):
    X, y = _lognormal(500, 0)
    y = y + 1.0  # every customer spends
    model = TwoStageRegressor(backend=backend, **FAST).fit(X, y)
    assert model.classifier_ is None
    np.testing.assert_array_equal(model.predict_nonzero_proba(X), np.ones(len(y)))
    np.testing.assert_array_equal(model.predict(X), model.predict_positive_value(X))
    assert model.n_estimators_ == (None, 60)
    np.testing.assert_allclose(
        model.feature_importances_,
        model.regressor_.feature_importances_ / model.regressor_.feature_importances_.sum(),
    )


def test_no_positive_label_is_a_clear_error():
    X, _ = _lognormal(50, 0)
    with pytest.raises(ValueError, match="no positive value"):
        TwoStageRegressor().fit(X, np.zeros(50))


def test_single_spender_and_tiny_data_do_not_crash():
    X = np.arange(8.0).reshape(4, 2)
    for y in ([0.0, 0.0, 0.0, 3.0], [2.0], [0.0, 1.0]):
        n = len(y)
        model = TwoStageRegressor(n_estimators=10, n_jobs=1).fit(X[:n], y)
        assert np.isfinite(model.predict(X)).all()


@pytest.mark.parametrize(
    ("params", "pattern"),
    [
        (dict(backend="catboost"), "backend"),
        (dict(target_transform="log"), "target_transform"),
        (dict(bias_correction="duan"), "bias_correction"),
        (dict(n_estimators=0), "n_estimators"),
        (dict(max_depth=2.5), "max_depth"),
        (dict(learning_rate=0.0), "learning_rate"),
        (dict(subsample=1.5), "subsample"),
        (dict(validation_fraction=1.0), "validation_fraction"),
        (dict(min_child_weight=-1), "min_child_weight"),
        (dict(early_stopping=True, patience=0), "patience"),
        (dict(classifier_params=[("max_depth", 2)]), "classifier_params"),
        (dict(classifier=HistGradientBoostingRegressor()), "classifier"),
    ],
)
def test_invalid_parameters_raise_value_error(params, pattern):
    X, y = _lognormal(100, 0)
    with pytest.raises(ValueError, match=pattern):
        TwoStageRegressor(**params).fit(X, y)


def test_stage_params_override_shared_ones(ltv):
    X, y = ltv
    model = TwoStageRegressor(
        classifier_params={"max_depth": 2}, regressor_params={"reg_lambda": 7.0}, **FAST
    ).fit(X, y)
    assert model.classifier_.get_params()["max_depth"] == 2
    assert model.regressor_.get_params()["max_depth"] == 3
    assert model.regressor_.get_params()["reg_lambda"] == 7.0


# --------------------------------------------------------------------------- importances


@pytest.mark.parametrize("backend", BACKENDS)
def test_feature_importances_combine_normalized_stages(backend, ltv):
    X, y = ltv
    model = TwoStageRegressor(backend=backend, **FAST).fit(X, y)
    imp = model.feature_importances_
    assert imp.shape == (X.shape[1],) and (imp >= 0).all()
    np.testing.assert_allclose(imp.sum(), 1.0)
    per_stage = [
        e.feature_importances_ / e.feature_importances_.sum()
        for e in (model.classifier_, model.regressor_)
    ]
    np.testing.assert_allclose(imp, (per_stage[0] + per_stage[1]) / 2)
    # make_ltv: num_0 carries the latent group; the second half of num_* is noise
    named = dict(zip(X.columns, imp, strict=True))
    assert named["num_0"] > 0.5
    assert named["num_2"] < 0.05 and named["num_3"] < 0.05
    plug = TwoStageRegressor(classifier=LogisticRegression(), regressor=KNeighborsRegressor())
    plug.fit(X[["num_0", "num_1"]], y)
    assert not hasattr(plug, "feature_importances_")


def test_pickle_round_trip_and_clone(ltv):
    X, y = ltv
    model = TwoStageRegressor(backend="lightgbm", **FAST).fit(X, y)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))
    assert clone(model).get_params() == model.get_params()


# --------------------------------------------------------------------------- quality


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_cdnow_quality_with_defaults(backend):
    """The documented CDNOW numbers: beat ranking by calibration spend; calibrated deciles."""
    X, y = load_cdnow()
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the defaults fit CDNOW without any warning
        model = TwoStageRegressor(backend=backend, n_jobs=1, random_state=0).fit(X_tr, y_tr)
    pred = model.predict(X_te)
    gini_model = normalized_gini(y_te, pred)
    gini_rfm = normalized_gini(y_te, X_te["monetary_total"])
    assert gini_model > gini_rfm + 0.01, (gini_model, gini_rfm)
    assert decile_mape(y_te, pred) <= 0.25
    assert abs(pred.mean() / y_te.mean() - 1.0) < 0.1


def test_lightgbm_bias_correction_reuses_the_training_scores(ltv, monkeypatch):
    """LightGBM hands over its training-row scores; no second stage-2 pass at fit.

    (``quantile_cv=None``: the cross-fitting behind ``predict_quantiles`` predicts its
    held-out folds, by design; the in-sample residuals reuse the scores too.)
    """
    import lightgbm

    X, y = ltv
    w = np.random.default_rng(0).uniform(0.5, 2.0, size=len(y))

    def no_predict(*args, **kwargs):
        raise AssertionError("stage 2 predicted at fit")

    for target_transform in ("log1p", "none"):
        params = dict(
            backend="lightgbm", target_transform=target_transform, quantile_cv=None, **FAST
        )
        with monkeypatch.context() as patch:
            patch.setattr(lightgbm.LGBMRegressor, "predict", no_predict)
            model = TwoStageRegressor(**params).fit(X, y, sample_weight=w)
        pos = y > 0
        fitted = model.regressor_.predict(model._validate_predict_input(X[pos]))
        expected = model._correction_factor(model.regressor_, None, y[pos], w[pos], fitted)
        assert model.correction_factor_ == pytest.approx(expected, rel=1e-12)


@pytest.mark.slow
def test_online_retail_quality_with_defaults():
    """Online Retail: past spend ranks well already; the model ties it and is calibrated."""
    from ltvkit.datasets import load_online_retail

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # refunds > purchases -> y = 0
            X, y = load_online_retail()
    except FileNotFoundError as exc:
        pytest.skip(f"Online Retail is not available: {exc}")
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0)
    rfm = X_te["monetary_total"].to_numpy()
    for backend in BACKENDS:
        model = TwoStageRegressor(backend=backend, n_jobs=1, random_state=0).fit(X_tr, y_tr)
        pred = model.predict(X_te)
        assert normalized_gini(y_te, pred) > normalized_gini(y_te, rfm) - 0.02
        assert decile_mape(y_te, pred) < 0.5 * decile_mape(y_te, rfm)
        assert abs(pred.mean() / y_te.mean() - 1.0) < 0.2


@pytest.mark.parametrize("backend", ["xgboost", "lightgbm"])
def test_validation_data_is_the_eval_set_and_early_stopping_watches_it(backend):
    X, y = _lognormal(1500, 0)
    X_tr, y_tr, X_val, y_val = X[:1000], y[:1000], X[1000:], y[1000:]
    common = dict(backend=backend, n_estimators=400, learning_rate=0.3, n_jobs=1, random_state=0)
    stopped = TwoStageRegressor(**common, early_stopping=True, patience=5).fit(
        X_tr, y_tr, validation_data=(X_val, y_val)
    )
    assert all(r < 400 for r in stopped.n_estimators_)
    # without early stopping the validation loss is still recorded, every round
    watched = TwoStageRegressor(**common).fit(X_tr, y_tr, validation_data=(X_val, y_val))
    assert watched.n_estimators_ == (400, 400)
    for stage in (watched.classifier_, watched.regressor_):
        curves = stage.evals_result() if backend == "xgboost" else stage.evals_result_
        (curve,) = next(iter(curves.values())).values()
        assert len(curve) == 400
    # every training row trains: the same fit as without validation data
    plain = TwoStageRegressor(**common).fit(X_tr, y_tr)
    np.testing.assert_allclose(watched.predict(X_val), plain.predict(X_val), rtol=1e-12)


@pytest.mark.parametrize("backend", ["xgboost", "lightgbm"])
def test_verbose_prints_the_validation_loss_every_k_rounds(backend, capsys):
    X, y = _lognormal(600, 1)
    TwoStageRegressor(backend=backend, n_estimators=20, verbose=10, n_jobs=1).fit(
        X[:400], y[:400], validation_data=(X[400:], y[400:])
    )
    out = capsys.readouterr()
    lines = [ln for ln in (out.out + out.err).splitlines() if ln.strip()]
    assert 4 <= len(lines) <= 8, lines  # rounds 0, 10, 19 (xgboost) / 10, 20 (lightgbm)
    TwoStageRegressor(backend=backend, n_estimators=20, n_jobs=1).fit(
        X[:400], y[:400], validation_data=(X[400:], y[400:])
    )
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
