"""Two-stage (hurdle) gradient boosting for customer lifetime value.

Stage 1 is a classifier for P(y > 0 | x) fitted on every customer; stage 2 is a regressor
for E[y | y > 0, x] fitted on the customers who spent. The prediction is their product,
an estimate of the unconditional mean E[y | x]. See ``docs/models/two_stage.md``.
"""

from __future__ import annotations

import inspect
import numbers
import re
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone, is_classifier, is_regressor
from sklearn.model_selection import KFold, train_test_split
from sklearn.utils import Tags, check_random_state, get_tags
from sklearn.utils.validation import check_is_fitted, has_fit_parameter

from ltvkit._utils import Boolean, Instance, Int, Options, Real, check_quantile_levels
from ltvkit.base import (
    LTVRegressorMixin,
    SpendResiduals,
    check_predictions,
    validate_ltv_target,
    zero_inflated_quantiles,
)

__all__ = ["TwoStageRegressor"]

_BACKENDS = ("xgboost", "lightgbm")
_TARGET_TRANSFORMS = ("log1p", "none")
_BIAS_CORRECTIONS = ("balance", "smearing", "lognormal", "none")

# Characters XGBoost ("[", "]", "<") or LightGBM (JSON specials) refuse in feature names.
_UNSAFE_NAME = re.compile(r'[\[\]<>,:"{}\s]')


def _is_dask(X: object) -> bool:
    """A dask collection (checked by module name: dask is an optional dependency)."""
    return (type(X).__module__ or "").startswith(("dask.", "dask_expr"))


def _predict_lazy(model: TwoStageRegressor, X: Any, method: str) -> Any:
    from ltvkit.boosting._dask import predict_lazy

    return predict_lazy(model, X, method)


def _booster_kind(estimator: object) -> str | None:
    """Return "xgboost" / "lightgbm" for those libraries' sklearn estimators, else None."""
    module = type(estimator).__module__ or ""
    if module.startswith("xgboost.") and hasattr(estimator, "get_booster"):
        return "xgboost"
    if module.startswith("lightgbm.") and hasattr(type(estimator), "booster_"):
        return "lightgbm"
    return None


def _lightgbm_fit_takes_eval_x() -> bool:
    """LightGBM >= 4.7 spells the validation set ``eval_X``/``eval_y`` (``eval_set`` warns)."""
    import lightgbm

    return "eval_X" in inspect.signature(lightgbm.LGBMModel.fit).parameters


def _clone_plug_in(estimator: Any, seed: int | None) -> Any:
    """Clone a user's estimator; give it the seed if its own random_state is None."""
    est = clone(estimator)
    params = est.get_params(deep=False)
    if seed is not None and "random_state" in params and params["random_state"] is None:
        est.set_params(random_state=seed)
    return est


def _safe(check: Any, estimator: object) -> bool:
    """``check(estimator)``, False when the object is no estimator at all (no tags)."""
    try:
        return bool(check(estimator))
    except (AttributeError, TypeError):
        return False


def _weighted_mean(values: np.ndarray, weights: np.ndarray | None) -> float:
    if weights is None:
        return float(np.mean(values))
    return float(np.average(values, weights=weights))


class TwoStageRegressor(LTVRegressorMixin, BaseEstimator):
    """Two-stage (hurdle) gradient boosting: P(y > 0) times E[y | y > 0].

    Stage 1 is a classifier for the probability that a customer spends anything, fitted
    on all rows. Stage 2 is a regressor for the expected spend of a customer who spends,
    fitted on the rows with ``y > 0``. ``predict`` returns their product, the expected
    value E[y | x] = P(y > 0 | x) · E[y | y > 0, x].

    Both stages are XGBoost (``tree_method="hist"``) or LightGBM boosters with native
    support for missing values and pandas ``category`` columns, or any scikit-learn
    classifier / regressor passed as ``classifier`` / ``regressor``.

    Parameters
    ----------
    backend : {"xgboost", "lightgbm"}, default="xgboost"
        Library of the built-in boosters. Only picks the defaults for a stage whose
        estimator is not given.
    classifier : sklearn classifier or None, default=None
        Stage-1 estimator (cloned at ``fit``); it is fitted on ``y > 0`` and must have
        ``predict_proba``. None builds ``XGBClassifier`` / ``LGBMClassifier`` from the
        shared hyper-parameters below. A plug-in estimator receives the validated
        DataFrame: numeric columns as float64 (NaN = missing) and categorical columns as
        pandas ``category`` dtype, so an estimator without native categorical support
        needs its own encoding (e.g. a ``Pipeline`` with a ``ColumnTransformer``).
    regressor : sklearn regressor or None, default=None
        Stage-2 estimator (cloned at ``fit``), fitted on the rows with ``y > 0`` to
        ``log1p(y)`` or ``y`` (see ``target_transform``). None builds ``XGBRegressor`` /
        ``LGBMRegressor``. Same input as ``classifier``.
    target_transform : {"log1p", "none"}, default="log1p"
        ``"log1p"`` fits stage 2 to ``log1p(y)`` by squared error (a few whales cannot
        dominate the fit) and maps the prediction back with ``bias_correction``, so it
        is a mean, not a median. ``"none"`` fits ``y`` directly: the built-in boosters
        then use a gamma objective (``reg:gamma`` / ``gamma``, log link; pass
        ``regressor_params={"objective": "reg:tweedie"}`` or ``"tweedie"`` for
        Tweedie), a plug-in regressor its own loss. ``"log1p"`` is the default: its
        cross-validated Gini and decile MAPE are as good or slightly better on CDNOW
        and Online Retail (numbers in ``docs/models/two_stage.md``), and squared error
        on ``log1p(y)`` is available in every regressor one may plug in.
    bias_correction : {"balance", "smearing", "lognormal", "none"}, default="balance"
        Multiplicative correction ``c`` of stage 2 (``correction_factor_``), computed
        on the training spenders: E[y | y > 0, x] = c · exp(f(x)) − 1 for ``"log1p"``,
        c · f(x) for ``"none"``.

        - ``"balance"``: c = Σ w (1 + y) / Σ w exp(f(x)) (``"none"``: Σ w y / Σ w f(x)),
          so the predicted total spend of the training spenders equals their observed
          total. It is Duan's smearing estimate weighted by exp(f(x)), and unlike plain
          smearing it stays unbiased when the log-scale residual spread grows with the
          prediction, as it does for spend (on CDNOW, smearing under-predicts by 3%
          in cross-validation, balance by < 1%).
        - ``"smearing"``: Duan (1983), c = mean(exp(r)) over the residuals
          r = log1p(y) − f(x). ``"log1p"`` only.
        - ``"lognormal"``: c = exp(mean(r) + var(r) / 2). ``"log1p"`` only.
        - ``"none"``: c = 1. With ``"log1p"`` this predicts a conditional median,
          about 30% below the mean on CDNOW; kept for comparison.
    n_estimators : int, default=200
        Boosting rounds of each built-in stage (the maximum if early stopping is on).
        The defaults (200 rounds, ``learning_rate=0.05``, ``max_depth=3``,
        ``min_child_weight=5``) were chosen by cross-validation on the training parts
        of CDNOW and Online Retail; for tables with millions of rows allow more
        rounds with ``early_stopping``.
    learning_rate : float, default=0.05
        Shrinkage of the built-in boosters.
    max_depth : int, default=3
        Maximum tree depth. LightGBM grows leaf-wise; it gets ``max_depth`` and
        ``num_leaves = 2**max_depth`` so both backends have the same capacity (and
        keeps its own ``min_child_samples=20``).
    min_child_weight : float, default=5.0
        Minimum sum of instance Hessian in a leaf (``min_child_weight`` in both
        libraries); keeps a few whales from getting a leaf of their own in stage 2.
    subsample : float, default=1.0
        Row subsampling ratio per tree (LightGBM: bagging with ``subsample_freq=1``).
    colsample_bytree : float, default=1.0
        Column subsampling ratio per tree.
    reg_lambda : float, default=1.0
        L2 regularization of leaf values.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows (stratified on ``y > 0``, seeded
        by ``random_state``); each booster stage stops when its validation loss
        (log-loss; squared error on log1p(y) or gamma deviance) has not improved for
        ``patience`` rounds, and predictions use the best round. The held-out rows are
        not used for the trees. Applies to XGBoost / LightGBM estimators (built-in or
        plugged in); other plug-ins are fitted without it, with a warning. From a
        ParquetDataset the held-out rows are chosen by a hash of their position
        instead (not stratified). Not available on dask DataFrames.
    validation_fraction : float, default=0.1
        Share of the rows held out for early stopping, in (0, 1).
    patience : int, default=20
        Boosting rounds without improvement of the validation loss before a stage
        stops (with ``early_stopping=True``).
    classifier_params : dict or None, default=None
        Extra keyword arguments for the built-in stage-1 booster (they override the
        shared ones), e.g. ``{"scale_pos_weight": 2.0}``.
    regressor_params : dict or None, default=None
        Extra keyword arguments for the built-in stage-2 booster, e.g.
        ``{"objective": "reg:tweedie"}`` with ``target_transform="none"``.
    quantile_cv : int or None, default=2
        Folds of the cross-fitting behind :meth:`predict_quantiles`: the spread of a
        spender's value around ``predict_positive_value`` is learnt from the residual
        ratios of the training spenders, each predicted by a stage-2 model fitted on the
        other folds (``quantile_cv`` extra stage-2 fits on ``(k - 1) / k`` of the
        spenders, same rounds). None uses the final model's in-sample residuals: no
        extra fit, but narrower than on new customers. 2 folds calibrate as well as 3 or
        5 on CDNOW and Online Retail and cost least (the fit takes about 1.4 times as
        long as with None; ``docs/uncertainty.md``). ``predict`` does not depend on it.
    verbose : int, default=0
        0: silent. ``k > 0``: when there is a validation set (``early_stopping`` or
        ``validation_data``), the built-in boosters print each stage's validation loss
        every ``k`` rounds (XGBoost's ``verbose``, LightGBM's ``log_evaluation``).
        Plug-in stages keep their own settings.
    n_jobs : int or None, default=None
        Threads of each booster (None: the library's default, all cores).
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split, the folds of ``quantile_cv`` and both boosters (and
        ``random_state`` of plug-in estimators that have one).

    Attributes
    ----------
    classifier_ : estimator or None
        Fitted stage-1 classifier. None when every training row (with non-zero weight)
        has ``y > 0``: this degenerate fit predicts P(y > 0) = 1 for everyone and stage
        2 alone makes the prediction.
    regressor_ : estimator
        Fitted stage-2 regressor.
    correction_factor_ : float
        The stage-2 bias-correction factor ``c`` (see ``bias_correction``); 1.0 for
        ``bias_correction="none"``.
    spend_residuals_ : ltvkit.base.SpendResiduals
        The distribution of ``log(y / predict_positive_value)`` over the training
        spenders, cross-fitted (see ``quantile_cv``): the spread behind
        :meth:`predict_quantiles`.
    n_estimators_ : tuple of (int or None, int or None)
        Boosting rounds each stage uses at predict time (best round + 1 under early
        stopping); None for an absent stage or a plug-in that is not a booster.
    feature_importances_ : ndarray of shape (n_features,)
        Mean of the two stages' normalized importances (for the built-in boosters the
        total gain of the splits on each feature), so it sums to 1 and weighs "who
        buys" and "how much" equally. The
        per-stage values are ``classifier_.feature_importances_`` and
        ``regressor_.feature_importances_``. Only available if the stage estimators
        expose ``feature_importances_``.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names seen during ``fit`` (only when ``X`` has string column names).
    schema_ : ltvkit.base.TabularSchema
        Column kinds and category levels learned at ``fit``.

    See Also
    --------
    ltvkit.metrics.ltv_report : The metrics used to evaluate LTV models.

    Notes
    -----
    Zero ``sample_weight`` rows are dropped before fitting, so they are exactly
    equivalent to removing those rows. Predictions of E[y | y > 0, x] below zero (only
    possible with a plug-in regressor) are set to 0, the smallest possible value of a
    conditional mean of non-negative spend; non-finite output raises ``RuntimeError``.

    ``fit`` on an :class:`ltvkit.io.ParquetDataset` streams the built-in stages without
    reading the table into memory: XGBoost through its external memory
    (``ExtMemQuantileDMatrix``), LightGBM through ``lightgbm.Sequence`` objects, one per
    Parquet row group. Early stopping and the ``quantile_cv`` folds then pick rows by a
    hash of their position (``docs/streaming.md``).

    Examples
    --------
    >>> import numpy as np
    >>> from ltvkit.boosting import TwoStageRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 3))
    >>> buys = rng.random(500) < 1 / (1 + np.exp(-X[:, 0]))
    >>> y = np.where(buys, np.exp(1 + X[:, 1] + rng.normal(size=500)), 0.0)
    >>> model = TwoStageRegressor(n_estimators=50, n_jobs=1, random_state=0).fit(X, y)
    >>> pred = model.predict(X)
    >>> bool(np.allclose(pred, model.predict_nonzero_proba(X)
    ...                  * model.predict_positive_value(X)))
    True
    """

    def __init__(
        self,
        backend: Literal["xgboost", "lightgbm"] = "xgboost",
        classifier: Any = None,
        regressor: Any = None,
        target_transform: Literal["log1p", "none"] = "log1p",
        bias_correction: Literal["balance", "smearing", "lognormal", "none"] = "balance",
        n_estimators: int = 200,
        learning_rate: float = 0.05,
        max_depth: int = 3,
        min_child_weight: float = 5.0,
        subsample: float = 1.0,
        colsample_bytree: float = 1.0,
        reg_lambda: float = 1.0,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        patience: int = 20,
        classifier_params: dict[str, Any] | None = None,
        regressor_params: dict[str, Any] | None = None,
        quantile_cv: int | None = 2,
        verbose: int = 0,
        n_jobs: int | None = None,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.backend = backend
        self.classifier = classifier
        self.regressor = regressor
        self.target_transform = target_transform
        self.bias_correction = bias_correction
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.classifier_params = classifier_params
        self.regressor_params = regressor_params
        self.quantile_cv = quantile_cv
        self.verbose = verbose
        self.n_jobs = n_jobs
        self.random_state = random_state

    # ------------------------------------------------------------------ parameters

    _parameter_constraints: ClassVar[dict[str, list]] = {
        "backend": [Options(*_BACKENDS)],
        # any estimator object; _check_param_combinations checks what it can do
        "classifier": [Instance(object, text="a scikit-learn classifier"), None],
        "regressor": [Instance(object, text="a scikit-learn regressor"), None],
        "target_transform": [Options(*_TARGET_TRANSFORMS)],
        "bias_correction": [Options(*_BIAS_CORRECTIONS)],
        "n_estimators": [Int(1)],
        "learning_rate": [Real(0.0, None, closed="neither")],
        "max_depth": [Int(1)],
        "min_child_weight": [Real(0.0)],
        "subsample": [Real(0.0, 1.0, closed="right")],
        "colsample_bytree": [Real(0.0, 1.0, closed="right")],
        "reg_lambda": [Real(0.0)],
        "early_stopping": [Boolean()],
        "validation_fraction": [Real(0.0, 1.0, closed="neither")],
        "patience": [Int(1)],
        "classifier_params": [Instance(dict), None],
        "regressor_params": [Instance(dict), None],
        "quantile_cv": [Int(2), None],
        "verbose": [Int(0)],
        "n_jobs": [Int(), None],
        "random_state": [Int(), Instance(np.random.RandomState), None],
    }

    def _check_param_combinations(self) -> None:
        if self.bias_correction in ("smearing", "lognormal") and self.target_transform != "log1p":
            raise ValueError(
                f"ltvkit: TwoStageRegressor: bias_correction={self.bias_correction!r} "
                "corrects a log1p fit; with target_transform='none' use 'balance' or 'none'."
            )
        if self.classifier is not None and not (
            _safe(is_classifier, self.classifier) and hasattr(self.classifier, "predict_proba")
        ):
            raise ValueError(
                "ltvkit: TwoStageRegressor: classifier must be a scikit-learn classifier "
                f"with predict_proba, got {self.classifier!r}."
            )
        if self.regressor is not None and not (
            _safe(is_regressor, self.regressor) or hasattr(self.regressor, "predict")
        ):
            raise ValueError(
                "ltvkit: TwoStageRegressor: regressor must be a scikit-learn regressor, got "
                f"{self.regressor!r}."
            )

    def _shared_params(self, kind: str, seed: int | None) -> dict[str, Any]:
        if kind == "xgboost":
            return dict(
                n_estimators=self.n_estimators,
                learning_rate=self.learning_rate,
                max_depth=self.max_depth,
                min_child_weight=self.min_child_weight,
                subsample=self.subsample,
                colsample_bytree=self.colsample_bytree,
                reg_lambda=self.reg_lambda,
                tree_method="hist",
                enable_categorical=True,
                max_cat_to_onehot=1,
                importance_type="total_gain",
                n_jobs=self.n_jobs,
                random_state=seed,
                verbosity=0,
            )
        return dict(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            max_depth=self.max_depth,
            num_leaves=int(min(2**self.max_depth, 131072)),
            min_child_weight=self.min_child_weight,
            subsample=self.subsample,
            subsample_freq=1 if self.subsample < 1.0 else 0,
            colsample_bytree=self.colsample_bytree,
            reg_lambda=self.reg_lambda,
            importance_type="gain",
            n_jobs=self.n_jobs,
            random_state=seed,
            verbose=-1,
        )

    def _make_classifier(self, seed: int | None) -> Any:
        if self.classifier is not None:
            return _clone_plug_in(self.classifier, seed)
        params = self._shared_params(self.backend, seed)
        if self.backend == "xgboost":
            from xgboost import XGBClassifier

            params.update(objective="binary:logistic", eval_metric="logloss")
            params.update(self.classifier_params or {})
            return XGBClassifier(**params)
        from lightgbm import LGBMClassifier

        params.update(objective="binary")
        params.update(self.classifier_params or {})
        return LGBMClassifier(**params)

    def _make_regressor(self, seed: int | None) -> Any:
        if self.regressor is not None:
            return _clone_plug_in(self.regressor, seed)
        params = self._shared_params(self.backend, seed)
        log1p = self.target_transform == "log1p"
        if self.backend == "xgboost":
            from xgboost import XGBRegressor

            params.update(objective="reg:squarederror" if log1p else "reg:gamma")
            params.update(self.regressor_params or {})
            return XGBRegressor(**params)
        from lightgbm import LGBMRegressor

        params.update(objective="regression" if log1p else "gamma")
        params.update(self.regressor_params or {})
        return LGBMRegressor(**params)

    # ------------------------------------------------------------------ fitting

    def fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        *,
        validation_data: tuple | None = None,
    ) -> TwoStageRegressor:
        """Fit the two stages.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Features. NaN is a missing value; ``category`` / string columns are
            categorical (native in both backends).
        y : array-like of shape (n_samples,)
            Non-negative customer value with at least one positive entry.
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Row weights, used by both stages (and the bias correction). Rows with
            weight 0 are dropped.
        validation_data : tuple (X_val, y_val[, sample_weight_val]) or None, default=None
            Your own validation set, instead of holding out ``validation_fraction`` of
            ``X``: every row of ``X`` then trains, and each booster stage evaluates its
            loss on these rows after every round (XGBoost: ``classifier_.evals_result()``,
            LightGBM: ``classifier_.evals_result_``, the same for ``regressor_``; printed
            with ``verbose``) and, with ``early_stopping=True``, stops on it. Stage 2
            uses the validation spenders. The bias correction uses the training rows
            only.

        Returns
        -------
        self : TwoStageRegressor
            The fitted model.

        Raises
        ------
        ValueError
            For invalid input (see ``docs/contract.md``), invalid parameters, or no
            positive ``y`` with a non-zero weight.

        Examples
        --------
        >>> from ltvkit.datasets import make_ltv
        >>> X, y = make_ltv(n_samples=600, random_state=0)
        >>> model = TwoStageRegressor(n_estimators=300, early_stopping=True, n_jobs=1)
        >>> model = model.fit(X[:400], y[:400], validation_data=(X[400:], y[400:]))
        >>> model.n_estimators_[0] < 300
        True
        """
        if _is_dask(X):  # both stages on the Dask cluster (xgboost.dask / lightgbm.dask)
            from ltvkit.boosting._dask import fit_dask

            return fit_dask(self, X, y, sample_weight, validation_data)
        self._validate_params()
        frame, y_arr, sw = self._validate_fit_input(X, y, sample_weight)
        valid = self._validate_validation_data(validation_data, y_arr)

        if sw is not None and not (sw > 0).all():
            # a zero weight is exactly a removed row (also for the histogram bin edges)
            keep = np.flatnonzero(sw > 0)
            frame, y_arr, sw = frame.iloc[keep], y_arr[keep], sw[keep]
        positive = y_arr > 0
        if not positive.any():
            raise ValueError(
                "ltvkit: every row with y > 0 has sample_weight 0; an LTV model needs at "
                "least one customer who spends."
            )
        frame = self._booster_frame(frame, fit=True)

        # An int random_state goes to both boosters as is (same seed as a hand-built
        # booster); a RandomState instance draws one seed; None keeps the boosters'
        # own (fixed) default seeds.
        rng = check_random_state(self.random_state)
        if self.random_state is None:
            seed = None
        elif isinstance(self.random_state, numbers.Integral):
            seed = int(self.random_state)
        else:
            seed = int(rng.randint(np.iinfo(np.int32).max))

        classifier = None if positive.all() else self._make_classifier(seed)
        regressor = self._make_regressor(seed)
        n_train = len(frame)
        if valid is None:
            train_idx, val_idx = self._validation_split(positive, classifier, regressor, rng)
            early_stop = train_idx is not None
        else:
            # the user's rows go after the training rows; the stages see them as their
            # evaluation set only
            frame_v, y_v, w_v = valid
            frame = pd.concat([frame, self._booster_frame(frame_v)], ignore_index=True)
            y_arr = np.concatenate([y_arr, y_v])
            if sw is not None or w_v is not None:
                sw = np.concatenate(
                    [
                        np.ones(n_train) if sw is None else sw,
                        np.ones(len(y_v)) if w_v is None else w_v,
                    ]
                )
            positive = y_arr > 0
            train_idx = np.arange(n_train)
            val_idx = np.arange(n_train, len(y_arr))
            early_stop = bool(self.early_stopping)
            self._warn_plug_ins_without_eval(classifier, regressor)

        # Stage 1: P(y > 0) on every row.
        if classifier is not None:
            label = positive.astype(np.int8)
            self._fit_stage(
                classifier, frame, label, sw, train_idx, val_idx, "classifier", early_stop
            )
        self.classifier_ = classifier

        # Stage 2: E[y | y > 0] on the rows that spent.
        pos_idx = np.flatnonzero(positive)
        X_pos = frame if len(pos_idx) == len(frame) else frame.iloc[pos_idx]
        y_pos = y_arr[pos_idx]
        w_pos = None if sw is None else sw[pos_idx]
        target = np.log1p(y_pos) if self.target_transform == "log1p" else y_pos
        fitted = None
        if train_idx is None:
            fitted = self._fit_stage(
                regressor, X_pos, target, w_pos, None, None, "regressor", False
            )
        else:
            # the same held-out customers as stage 1, restricted to the spenders
            in_val = np.zeros(len(frame), dtype=bool)
            in_val[val_idx] = True
            in_val = in_val[pos_idx]
            self._fit_stage(
                regressor,
                X_pos,
                target,
                w_pos,
                np.flatnonzero(~in_val),
                np.flatnonzero(in_val) if in_val.any() else None,
                "regressor",
                early_stop and in_val.any(),
            )
            if valid is not None:  # the bias correction sees the training rows only
                keep = np.flatnonzero(~in_val)
                X_pos, y_pos = X_pos.iloc[keep], y_pos[keep]
                w_pos = None if w_pos is None else w_pos[keep]
        self.regressor_ = regressor
        self.correction_factor_ = self._correction_factor(regressor, X_pos, y_pos, w_pos, fitted)
        self.n_estimators_ = (_n_rounds(classifier), _n_rounds(regressor))
        self.spend_residuals_ = self._fit_spend_distribution(
            X_pos, y_pos, w_pos, seed, rng, fitted
        )
        return self

    def _fit_dataset(
        self,
        dataset: Any,
        sample_weight: Any = None,
        *,
        validation_data: tuple | None = None,
    ) -> TwoStageRegressor:
        """``fit`` on an :class:`ltvkit.io.ParquetDataset`.

        The built-in stages stream (see :mod:`ltvkit.boosting._streaming`): XGBoost
        through its external memory (``ExtMemQuantileDMatrix``), LightGBM through
        ``lightgbm.Sequence`` objects over the Parquet row groups (it bins the rows
        batch by batch, the raw table is never in memory). Early stopping then holds
        out the rows whose position hashes below ``validation_fraction`` (not
        stratified), and the ``quantile_cv`` folds are position hashes too. Other
        configurations (plug-in stages, ``sample_weight``, ``validation_data``) read
        the dataset into memory and fit as on a frame.
        """
        streams = (
            self.classifier is None
            and self.regressor is None
            and sample_weight is None
            and validation_data is None
        )
        if not streams:
            return self.fit(
                dataset.read_pandas(),
                dataset.read_target(),
                sample_weight,
                validation_data=validation_data,
            )
        from ltvkit.boosting._streaming import fit_two_stage_stream
        from ltvkit.nn._streaming import scan_dataset

        self._validate_params()
        scan = scan_dataset(dataset, statistics=False)
        y = validate_ltv_target(scan.y)
        self.schema_ = scan.schema
        self.n_features_in_ = len(dataset.features)
        self.feature_names_in_ = np.asarray(dataset.features, dtype=object)
        self.target_ndim_ = 1
        self._booster_frame(pd.DataFrame(columns=self.schema_.columns), fit=True)
        rng = check_random_state(self.random_state)
        if self.random_state is None:
            seed = None
        elif isinstance(self.random_state, numbers.Integral):
            seed = int(self.random_state)
        else:
            seed = int(rng.randint(np.iinfo(np.int32).max))
        fit_two_stage_stream(self, dataset, y, seed, rng)
        return self

    def _fit_spend_distribution(
        self,
        X_pos: pd.DataFrame,
        y_pos: np.ndarray,
        w_pos: np.ndarray | None,
        seed: int | None,
        rng: np.random.RandomState,
        fitted: np.ndarray | None = None,
    ) -> SpendResiduals:
        """The residual ratios ``y / E[y | y > 0, x]`` of the training spenders, out of fold.

        ``quantile_cv`` folds of the spenders: each fold is predicted by a stage-2 model
        (same settings and rounds, its own bias correction) fitted on the other folds,
        so the spread is that of customers the model has not seen. In-sample residuals
        of a booster are narrower (on Online Retail their 0.9-quantiles covered 0.866 of
        the held-out customers, the cross-fitted ones 0.886; ``docs/uncertainty.md``).
        """
        n_pos = len(y_pos)
        folds = self.quantile_cv
        if folds is None or n_pos < 2 * folds:  # in-sample (or too few spenders to cross-fit)
            if fitted is None or len(fitted) != n_pos:
                fitted = None  # LightGBM's training scores, when it handed them over
            value = self._value_from(self.regressor_, self.correction_factor_, X_pos, fitted)
            return SpendResiduals.fit(y_pos, value, w_pos)
        target = np.log1p(y_pos) if self.target_transform == "log1p" else y_pos
        value = np.empty(n_pos)
        splitter = KFold(
            int(folds), shuffle=True, random_state=rng.randint(np.iinfo(np.int32).max)
        )
        for fit_rows, held_rows in splitter.split(np.arange(n_pos)):
            reg = self._make_regressor(seed)
            rounds = self.n_estimators_[1]
            if (
                _booster_kind(reg) is not None
                and rounds is not None
                and "n_estimators" in reg.get_params()
            ):
                reg.set_params(n_estimators=int(rounds))  # the rounds the final model uses
            X_fit = X_pos.iloc[fit_rows]
            w_fit = None if w_pos is None else w_pos[fit_rows]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # a plug-in's own warnings, again
                fitted = self._fit_stage(
                    reg, X_fit, target[fit_rows], w_fit, None, None, "regressor", False
                )
            factor = self._correction_factor(reg, X_fit, y_pos[fit_rows], w_fit, fitted)
            value[held_rows] = self._value_from(reg, factor, X_pos.iloc[held_rows])
        return SpendResiduals.fit(y_pos, value, w_pos)

    def _warn_plug_ins_without_eval(self, classifier: Any, regressor: Any) -> None:
        for name, est in (("classifier", classifier), ("regressor", regressor)):
            if est is not None and _booster_kind(est) is None:
                warnings.warn(
                    f"TwoStageRegressor: validation_data is evaluated by XGBoost / LightGBM "
                    f"stages only; the {name} {type(est).__name__} ignores it.",
                    UserWarning,
                    stacklevel=3,
                )

    def _correction_factor(
        self,
        regressor: Any,
        X_pos: pd.DataFrame,
        y_pos: np.ndarray,
        w_pos: np.ndarray | None,
        fitted: np.ndarray | None = None,
    ) -> float:
        """The multiplicative bias correction of stage 2, from all training spenders.

        ``fitted``: the regressor's predictions for ``X_pos`` if already known.
        """
        if self.bias_correction == "none":
            return 1.0
        if fitted is None or len(fitted) != len(y_pos):
            fitted = regressor.predict(X_pos)
        raw = np.asarray(fitted, dtype=np.float64).reshape(-1)
        log1p = self.target_transform == "log1p"
        w = np.ones_like(y_pos) if w_pos is None else w_pos
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            if self.bias_correction == "balance":
                # predicted total spend of the training spenders == their observed total
                mean_scale = np.exp(raw) if log1p else raw
                target_sum = np.sum(w * (y_pos + 1.0 if log1p else y_pos))
                factor = float(target_sum / np.sum(w * mean_scale))
            else:
                resid = np.log1p(y_pos) - raw
                if self.bias_correction == "smearing":  # Duan (1983)
                    factor = _weighted_mean(np.exp(resid), w)
                else:  # lognormal: exp(sigma^2 / 2) around the mean residual
                    mean = _weighted_mean(resid, w)
                    factor = float(np.exp(mean + _weighted_mean((resid - mean) ** 2, w) / 2.0))
        if not (np.isfinite(factor) and factor > 0):
            raise RuntimeError(
                f"TwoStageRegressor: the stage-2 fit gave an invalid bias-correction factor "
                f"({factor!r}); the regressor probably diverged (or predicts 0 for every "
                "spender)."
            )
        return factor

    def _booster_frame(self, frame: pd.DataFrame, *, fit: bool = False) -> pd.DataFrame:
        """Rename columns whose names XGBoost / LightGBM refuse (``[``, ``<``, ``:``...)."""
        if fit:
            names = list(frame.columns)
            unsafe = any(_UNSAFE_NAME.search(n) for n in names) or len(set(names)) < len(names)
            self._booster_columns = [f"f{i}" for i in range(len(names))] if unsafe else None
        if self._booster_columns is None:
            return frame
        return frame.set_axis(self._booster_columns, axis=1)

    def _validation_split(
        self, positive: np.ndarray, classifier: Any, regressor: Any, rng: np.random.RandomState
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """One held-out split for both stages, stratified on y > 0 (or None)."""
        if not self.early_stopping:
            return None, None
        stages = [
            (n, e)
            for n, e in (("classifier", classifier), ("regressor", regressor))
            if e is not None
        ]
        for name, est in stages:
            if _booster_kind(est) is None:
                warnings.warn(
                    f"TwoStageRegressor: early_stopping applies to XGBoost / LightGBM "
                    f"stages only; the {name} {type(est).__name__} is fitted without it "
                    "(configure its own early stopping instead).",
                    UserWarning,
                    stacklevel=3,
                )
        if not any(_booster_kind(e) is not None for _, e in stages):
            return None, None
        n = len(positive)
        n_pos = int(positive.sum())
        n_val = int(np.ceil(self.validation_fraction * n))
        train_idx = val_idx = None
        if min(n_pos, n - n_pos if classifier is not None else n_pos) >= 2 and 2 <= n_val < n - 1:
            train_idx, val_idx = train_test_split(
                np.arange(n),
                test_size=n_val,
                stratify=positive if classifier is not None else None,
                random_state=rng,
            )
            # every stage needs its classes on both sides (stratification rounds, so a
            # rare class can still miss the validation part)
            need = (True, False) if classifier is not None else (True,)
            for idx in (train_idx, val_idx):
                if any(not (positive[idx] == label).any() for label in need):
                    train_idx = val_idx = None
                    break
        if train_idx is None:
            warnings.warn(
                f"TwoStageRegressor: too few rows ({n}, of which {n_pos} with y > 0) for a "
                f"validation_fraction={self.validation_fraction} early-stopping split with "
                "both classes on each side; fitting without early stopping.",
                UserWarning,
                stacklevel=3,
            )
            return None, None
        return np.sort(train_idx), np.sort(val_idx)

    def _fit_stage(
        self,
        est: Any,
        frame: pd.DataFrame,
        target: np.ndarray,
        sw: np.ndarray | None,
        train_idx: np.ndarray | None,
        val_idx: np.ndarray | None,
        name: str,
        early_stop: bool,
    ) -> np.ndarray | None:
        """Fit one stage, evaluated on ``val_idx`` (stopping early if ``early_stop``).

        Returns the stage's predictions for its training rows when LightGBM hands them
        over for free (its own score buffer, see ``_TrainPredictions``), else None.
        """

        def rows(idx: np.ndarray | None) -> pd.DataFrame:
            return frame if idx is None or len(idx) == len(frame) else frame.iloc[idx]

        def pick(a: np.ndarray | None, idx: np.ndarray | None) -> np.ndarray | None:
            return a if a is None or idx is None or len(idx) == len(a) else a[idx]

        X_tr, y_tr, w_tr = rows(train_idx), pick(target, train_idx), pick(sw, train_idx)
        kw: dict[str, Any] = {}
        if w_tr is not None:
            if not has_fit_parameter(est, "sample_weight"):
                raise ValueError(
                    f"TwoStageRegressor: the {name} {type(est).__name__} does not accept "
                    "sample_weight, but sample_weight was passed."
                )
            kw["sample_weight"] = w_tr
        kind = _booster_kind(est)
        if val_idx is not None and kind is not None:
            X_val, y_val, w_val = frame.iloc[val_idx], target[val_idx], pick(sw, val_idx)
            # a plug-in stage keeps its own settings
            plug_in = self.classifier if name == "classifier" else self.regressor
            verbose = 0 if plug_in is not None else int(self.verbose)
            if kind == "xgboost":
                est.set_params(early_stopping_rounds=int(self.patience) if early_stop else None)
                kw["eval_set"] = [(X_val, y_val)]
                if w_val is not None:
                    kw["sample_weight_eval_set"] = [w_val]
                kw["verbose"] = verbose if verbose > 1 else bool(verbose)
            else:
                import lightgbm

                if _lightgbm_fit_takes_eval_x():
                    kw["eval_X"], kw["eval_y"] = (X_val,), (y_val,)
                else:  # pragma: no cover - lightgbm < 4.7
                    kw["eval_set"] = [(X_val, y_val)]
                if w_val is not None:
                    kw["eval_sample_weight"] = [w_val]
                kw["callbacks"] = []
                if early_stop:
                    kw["callbacks"].append(
                        lightgbm.early_stopping(int(self.patience), verbose=False)
                    )
                if verbose:
                    kw["callbacks"].append(lightgbm.log_evaluation(period=verbose))
        elif kind == "xgboost" and est.get_params().get("early_stopping_rounds") is not None:
            # a plug-in XGBoost model with its own early stopping but no split to use
            est.set_params(early_stopping_rounds=None)
        if (
            kind == "xgboost"
            and not est.get_params().get("enable_categorical")
            and any(isinstance(dt, pd.CategoricalDtype) for dt in frame.dtypes)
        ):
            # a plug-in XGBoost model cannot read category columns otherwise
            est.set_params(enable_categorical=True)
        capture = None
        if kind == "lightgbm" and val_idx is None and name == "regressor":
            capture = _TrainPredictions()
            kw["callbacks"] = [capture]
        est.fit(X_tr, y_tr, **kw)
        return None if capture is None else capture.pred

    # ------------------------------------------------------------------ prediction

    def _proba(self, frame: pd.DataFrame) -> np.ndarray:
        if self.classifier_ is None:
            return np.ones(len(frame), dtype=np.float64)
        proba = np.asarray(self.classifier_.predict_proba(frame), dtype=np.float64)
        classes = list(getattr(self.classifier_, "classes_", [0, 1]))
        col = classes.index(1) if 1 in classes else proba.shape[1] - 1
        return np.clip(proba[:, col], 0.0, 1.0)

    def _value(self, frame: pd.DataFrame) -> np.ndarray:
        return self._value_from(self.regressor_, self.correction_factor_, frame)

    def _value_from(
        self, regressor: Any, factor: float, frame: pd.DataFrame, raw: np.ndarray | None = None
    ) -> np.ndarray:
        """E[y | y > 0, x] from a fitted stage-2 regressor and its correction factor.

        ``raw``: the regressor's predictions for ``frame`` if already known.
        """
        if raw is None:
            raw = regressor.predict(frame)
        raw = np.asarray(raw, dtype=np.float64).reshape(-1)
        if self.target_transform == "log1p":
            with np.errstate(over="ignore"):
                value = np.exp(raw)
            value *= factor
            value -= 1.0
        else:
            value = raw * factor
        # E[y | y > 0] >= 0; NaN / inf pass through to check_predictions
        return np.maximum(value, 0.0, where=~np.isnan(value), out=value)

    def _predict_frame(self, X: Any) -> pd.DataFrame:
        """The validated DataFrame, with the column names the boosters were fitted on."""
        return self._booster_frame(self._validate_predict_input(X))

    def predict(self, X: Any) -> np.ndarray:
        """Predict the expected customer value E[y | x].

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Features with the columns seen in ``fit``; an unseen category is missing.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            ``predict_nonzero_proba(X) * predict_positive_value(X)`` (float64, >= 0).
            For a dask DataFrame: a lazy dask Series, one task per partition.
        """
        if _is_dask(X):
            return _predict_lazy(self, X, "predict")
        frame = self._predict_frame(X)
        pred = self._proba(frame) * self._value(frame)
        return check_predictions(pred, type(self).__name__)

    def predict_nonzero_proba(self, X: Any) -> np.ndarray:
        """Predict the probability that each customer spends anything, P(y > 0 | x).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Features with the columns seen in ``fit``.

        Returns
        -------
        proba : ndarray of shape (n_samples,)
            Stage-1 probabilities in [0, 1] (all 1.0 after a fit on positives only).
            For a dask DataFrame: a lazy dask Series, one task per partition.
        """
        if _is_dask(X):
            return _predict_lazy(self, X, "predict_nonzero_proba")
        frame = self._predict_frame(X)
        return self._proba(frame)

    def predict_positive_value(self, X: Any) -> np.ndarray:
        """Predict the expected value of a customer who spends, E[y | y > 0, x].

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Features with the columns seen in ``fit``.

        Returns
        -------
        value : ndarray of shape (n_samples,)
            Stage-2 conditional means (bias-corrected for ``target_transform="log1p"``).
            For a dask DataFrame: a lazy dask Series, one task per partition.
        """
        if _is_dask(X):
            return _predict_lazy(self, X, "predict_positive_value")
        frame = self._predict_frame(X)
        return check_predictions(self._value(frame), type(self).__name__)

    def predict_quantiles(self, X: Any, quantiles: float | Sequence[float]) -> np.ndarray:
        """Quantiles of each customer's value: stage 1's point mass at zero, then the spend.

        ``P(y = 0 | x) = 1 - predict_nonzero_proba(X)`` is an exact point mass at zero;
        a customer who spends spends ``m(x) * exp(r)``, ``m(x) =
        predict_positive_value(X)`` and ``r`` drawn from the cross-fitted residuals of
        the training spenders (``spend_residuals_``, see ``quantile_cv``)::

            Q(tau | x) = 0                                   if tau <= 1 - p(x)
            Q(tau | x) = m(x) * exp(R^-1((tau - 1 + p) / p))  otherwise

        ``predict`` is unchanged by it. Calibration on CDNOW and Online Retail:
        ``docs/uncertainty.md``.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Features with the columns seen in ``fit``.
        quantiles : float or sequence of float in [0, 1]
            Probability levels; level 1 is the top of the support (``m(x)`` times the
            largest residual ratio seen), finite.

        Returns
        -------
        ndarray of shape (n_samples,) for a float, (n_samples, n_quantiles) otherwise
            Finite, non-negative float64, non-decreasing along the levels.

        Examples
        --------
        >>> from ltvkit.datasets import make_ltv
        >>> X, y = make_ltv(n_samples=500, random_state=0)
        >>> model = TwoStageRegressor(n_estimators=50, n_jobs=1, random_state=0).fit(X, y)
        >>> q = model.predict_quantiles(X, [0.5, 0.9])
        >>> q.shape, bool((q[:, 0] <= q[:, 1]).all())
        ((500, 2), True)
        """
        scalar, levels = check_quantile_levels(quantiles)
        frame = self._predict_frame(X)
        proba = self._proba(frame)
        value = check_predictions(self._value(frame), type(self).__name__)
        residuals = self.spend_residuals_
        result = zero_inflated_quantiles(
            proba, levels, lambda v: value[:, None] * np.exp(residuals.quantile(v))
        )
        return result[:, 0] if scalar else result

    @property
    def feature_importances_(self) -> np.ndarray:
        """Mean of the two stages' normalized feature importances (sums to 1)."""
        check_is_fitted(self, "regressor_")
        parts = []
        for est in (self.classifier_, self.regressor_):
            if est is None:
                continue
            if not hasattr(est, "feature_importances_"):
                raise AttributeError(
                    f"{type(est).__name__} has no feature_importances_, so the "
                    "TwoStageRegressor has none either."
                )
            imp = np.asarray(est.feature_importances_, dtype=np.float64).reshape(-1)
            total = imp.sum()
            parts.append(imp / total if total > 0 else np.zeros_like(imp))
        return np.mean(parts, axis=0)

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        # a plug-in estimator that refuses NaN makes the whole model refuse it
        for est in (self.classifier, self.regressor):
            if est is not None:
                try:
                    tags.input_tags.allow_nan &= get_tags(est).input_tags.allow_nan
                except Exception:  # pragma: no cover - third-party estimator without tags
                    pass
        return tags


class _TrainPredictions:
    """LightGBM callback: the training-row predictions after the last boosting round.

    LightGBM keeps the current score of every training row; ``Booster.eval_train`` hands
    them to a custom metric. Reading them at the last round gives exactly
    ``predict(X_train)`` (same trees, same output transformation) without a second pass
    over the data: it saves ltvkit's bias correction a full stage-2 prediction.
    """

    order = 100  # after LightGBM's own callbacks

    def __init__(self) -> None:
        self.pred: np.ndarray | None = None

    def __call__(self, env: Any) -> None:
        if env.iteration == env.end_iteration - 1:
            env.model.eval_train(feval=self._grab)

    def _grab(self, preds: np.ndarray, data: Any) -> tuple[str, float, bool]:
        self.pred = np.array(preds, dtype=np.float64, copy=True).reshape(-1)
        return "ltvkit_train_predictions", 0.0, False


def _n_rounds(est: Any) -> int | None:
    """Boosting rounds a fitted stage uses at predict time (None if unknown)."""
    kind = None if est is None else _booster_kind(est)
    if kind == "xgboost":
        booster = est.get_booster()
        if est.get_params().get("early_stopping_rounds") is not None:
            try:
                return int(est.best_iteration) + 1
            except AttributeError:  # pragma: no cover - no validation set was used
                pass
        return int(booster.num_boosted_rounds())
    if kind == "lightgbm":
        best = getattr(est, "best_iteration_", 0) or 0
        return int(best) if best > 0 else int(est.booster_.current_iteration())
    return None
