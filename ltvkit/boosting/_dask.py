"""TwoStageRegressor on Dask: both stages trained by ``xgboost.dask`` / ``lightgbm.dask``.

``TwoStageRegressor.fit`` hands dask DataFrames here (a ``distributed.Client`` must be
active). The data stay on the workers: the input schema (column kinds, category levels)
and the target checks are computed with a few reductions, each stage is trained by the
library's own distributed trainer (XGBoost's collective, LightGBM's socket network), the
bias correction is one more reduction, and the spread behind ``predict_quantiles`` is
cross-fitted, as in memory, on a random sample of at most ``_RESIDUAL_SAMPLE`` spenders.
The fitted stages are then turned into the ordinary ``XGBClassifier`` /
``XGBRegressor`` / ``LGBM*`` models, so the fitted estimator is the same kind of object
as after an in-memory fit (it predicts on pandas, ``ltvkit.save`` stores it) and
predicts lazily on dask DataFrames (:func:`predict_lazy`). See ``docs/scaling.md``.
"""

from __future__ import annotations

import contextlib
import numbers
import os
import tempfile
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

from ltvkit.base import _NO_LEVEL, TabularSchema

if TYPE_CHECKING:  # pragma: no cover
    from ltvkit.boosting._two_stage import TwoStageRegressor

__all__ = ["fit_dask", "is_dask_collection", "predict_lazy"]

#: Spenders (at most) on which the residual spread of ``predict_quantiles`` is
#: cross-fitted in memory: its 2,001 stored levels need far fewer.
_RESIDUAL_SAMPLE = 100_000


def is_dask_collection(obj: object) -> bool:
    """Whether ``obj`` is a dask collection (checked without importing dask).

    Examples
    --------
    >>> is_dask_collection(pd.DataFrame({"a": [1]}))
    False
    """
    module = type(obj).__module__ or ""
    return module == "dask" or module.startswith(("dask.", "dask_expr"))


def _client() -> Any:
    try:
        from distributed import get_client
    except ImportError:  # pragma: no cover - dask installed without distributed
        raise ValueError(
            "ltvkit: TwoStageRegressor on dask DataFrames needs dask.distributed: "
            'pip install "ltvkit[distributed]".'
        ) from None
    try:
        return get_client()
    except ValueError:
        raise ValueError(
            "ltvkit: TwoStageRegressor.fit got a dask DataFrame but no distributed.Client "
            "is active; start one first (distributed.Client(address) or "
            "distributed.LocalCluster().get_client()), or pass pandas data."
        ) from None


def _as_series(obj: object, name: str) -> Any:
    import dask.dataframe as dd

    if isinstance(obj, dd.DataFrame):
        if len(obj.columns) != 1:
            raise ValueError(
                f"ltvkit: TwoStageRegressor on Dask: {name} must be a dask Series (or a "
                f"one-column DataFrame), got {len(obj.columns)} columns."
            )
        obj = obj[obj.columns[0]]
    if not isinstance(obj, dd.Series):
        raise ValueError(
            f"ltvkit: TwoStageRegressor on Dask: with a dask DataFrame X, {name} must be a "
            f"dask Series from the same DataFrame (same partitions), got "
            f"{type(obj).__name__}."
        )
    return obj


def _check_supported(est: TwoStageRegressor, validation_data: object) -> None:
    unsupported = {
        "classifier": est.classifier is not None,
        "regressor": est.regressor is not None,
        "early_stopping": bool(est.early_stopping),
        "validation_data": validation_data is not None,
    }
    bad = [name for name, used in unsupported.items() if used]
    if bad:
        raise ValueError(
            f"ltvkit: TwoStageRegressor on dask DataFrames supports the built-in boosters "
            f"without early stopping; {bad} not supported there. Fit on pandas for those, "
            "or set n_estimators from an in-memory run on a sample."
        )


def _schema(est: TwoStageRegressor, X: Any) -> tuple[Any, TabularSchema]:
    """The input schema of a dask DataFrame: kinds from its dtypes, levels computed."""
    import dask
    from sklearn.utils.validation import validate_data

    meta = X._meta
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an empty frame has no levels yet: filled below
        schema = TabularSchema()._fit_frame(meta.copy(), from_frame=True)
    unknown = [
        c
        for c in schema.categorical_columns
        if isinstance(meta[c].dtype, pd.CategoricalDtype) and not X[c].cat.known
    ]
    if unknown:
        X = X.categorize(columns=unknown)
        meta = X._meta
    text = [c for c in schema.categorical_columns if c in schema._string_levels]
    found = dask.compute(*[X[c].dropna().astype("string").unique() for c in text])
    for col in schema.categorical_columns:
        if col in text:
            levels = pd.Index(sorted(set(found[text.index(col)].astype(str))), dtype=object)
        else:
            levels = pd.Index(meta[col].cat.categories)
        if not len(levels):
            warnings.warn(
                f"ltvkit: column {col!r} has no value at all (every row is missing), so it "
                "carries no information; drop it.",
                UserWarning,
                stacklevel=4,
            )
            levels = pd.Index([_NO_LEVEL], dtype=object)
        schema.categories[col] = levels
    validate_data(est, meta, reset=True, skip_check_array=True)
    return X, schema


def _check_target(y: Any, sw: Any) -> tuple[int, int]:
    """(rows with a non-zero weight, those with y > 0); ValueError for a bad target."""
    import dask

    if not pd.api.types.is_numeric_dtype(y.dtype):
        raise ValueError(f"ltvkit: y must be numeric, got dtype {y.dtype}.")
    values = y.astype("float64")
    checks = [
        values.size,
        values.isna().sum(),
        (values < 0).sum(),
        values.map_partitions(lambda s: np.isinf(s.to_numpy()).sum(), meta=("n", "i8")).sum(),
    ]
    if sw is None:
        checks.append((values > 0).sum())
    else:
        w = sw.astype("float64")
        checks += [(w < 0).sum() + w.isna().sum(), (w > 0).sum(), ((values > 0) & (w > 0)).sum()]
    out = [int(v) for v in dask.compute(*checks)]
    n, n_nan, n_neg, n_inf = out[:4]
    if n_nan or n_inf:
        raise ValueError(f"ltvkit: y contains {n_nan + n_inf} NaN or infinite value(s).")
    if n_neg:
        raise ValueError(f"ltvkit: y contains {n_neg} negative value(s); LTV is non-negative.")
    if sw is not None and out[4]:
        raise ValueError("ltvkit: sample_weight contains negative or missing values.")
    n_kept = n if sw is None else out[5]
    n_pos = out[-1]
    if not n_pos:
        raise ValueError(
            "ltvkit: no customer with y > 0 (and a non-zero sample_weight); an LTV model "
            "needs at least one customer who spends."
        )
    return n_kept, n_pos


def _dask_booster(local: Any) -> Any:
    """The ``xgboost.dask`` / ``lightgbm.dask`` twin of a built-in stage, same params."""
    params = local.get_params()
    if type(local).__module__.startswith("xgboost"):
        from xgboost import dask as dxgb

        cls = dxgb.DaskXGBClassifier if hasattr(local, "predict_proba") else dxgb.DaskXGBRegressor
        return cls(**params)
    import lightgbm

    cls = (
        lightgbm.DaskLGBMClassifier
        if hasattr(local, "predict_proba")
        else lightgbm.DaskLGBMRegressor
    )
    return cls(**params)


@contextlib.contextmanager
def _quiet_lightgbm() -> Iterator[None]:
    # lightgbm.dask warns about n_jobs whatever its value (get_params always has it)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Parameter n_jobs will be ignored")
        yield


def _fit_on_cluster(model: Any, stage: str, *args: Any, **kwargs: Any) -> None:
    """``model.fit`` on the cluster; a failure (e.g. a worker lost) named, with its cause."""
    try:
        with _quiet_lightgbm():
            model.fit(*args, **kwargs)
    except Exception as exc:
        raise RuntimeError(
            f"TwoStageRegressor on Dask: training the {stage} failed on the cluster "
            f"({type(exc).__name__}: {exc}). XGBoost's and LightGBM's distributed training "
            "cannot continue without a worker that was lost: fit again once the cluster is "
            "whole (nothing was fitted)."
        ) from exc


def _to_local(fitted: Any, local: Any) -> Any:
    """The ordinary sklearn model (``local``, unfitted, same params) with ``fitted``'s trees."""
    if hasattr(fitted, "to_local"):  # LightGBM
        return fitted.to_local().set_params(n_jobs=local.get_params()["n_jobs"])
    # XGBoost: through its own model format, which records the sklearn attributes
    fd, path = tempfile.mkstemp(suffix=".ubj")
    os.close(fd)
    try:
        fitted.save_model(path)
        local.load_model(path)
    finally:
        os.unlink(path)
    return local


def _on_partitions(model: Any, X: Any, method: str, name: str) -> Any:
    """A lazy dask Series of ``model.<method>(partition)`` (first column of a 2-D result)."""

    def apply(part: pd.DataFrame) -> pd.Series:
        if not len(part):
            return pd.Series(np.empty(0), index=part.index, name=name)
        out = np.asarray(getattr(model, method)(part), dtype=np.float64)
        return pd.Series(out if out.ndim == 1 else out[:, -1], index=part.index, name=name)

    return X.map_partitions(apply, meta=pd.Series(dtype=np.float64, name=name))


def _correction_factor(est: TwoStageRegressor, regressor: Any, X_pos: Any, y_pos: Any, w: Any):
    """The bias correction of ``_two_stage._correction_factor`` as reductions on the workers."""
    import dask

    if est.bias_correction == "none":
        return 1.0
    raw = _on_partitions(regressor, X_pos, "predict", "raw")
    log1p = est.target_transform == "log1p"
    ones = y_pos * 0.0 + 1.0
    w = ones if w is None else w
    if est.bias_correction == "balance":
        scale = np.exp(raw) if log1p else raw
        num, den = dask.compute((w * (y_pos + 1.0 if log1p else y_pos)).sum(), (w * scale).sum())
        factor = float(num / den)
    else:
        resid = np.log1p(y_pos) - raw
        sums = dask.compute(w.sum(), (w * np.exp(resid)).sum(), (w * resid).sum())
        total, exp_sum, r_sum = (float(s) for s in sums)
        if est.bias_correction == "smearing":
            factor = exp_sum / total
        else:
            mean = r_sum / total
            (sq,) = dask.compute((w * (resid - mean) ** 2).sum())
            factor = float(np.exp(mean + float(sq) / total / 2.0))
    if not (np.isfinite(factor) and factor > 0):
        raise RuntimeError(
            f"TwoStageRegressor: the stage-2 fit gave an invalid bias-correction factor "
            f"({factor!r}); the regressor probably diverged (or predicts 0 for every spender)."
        )
    return factor


def fit_dask(
    est: TwoStageRegressor,
    X: Any,
    y: Any,
    sample_weight: Any = None,
    validation_data: object = None,
) -> TwoStageRegressor:
    """``TwoStageRegressor.fit`` on dask DataFrames (called by it; see the module doc)."""
    import dask.dataframe as dd

    from ltvkit.boosting._two_stage import _n_rounds

    est._validate_params()
    est._check_param_combinations()
    _check_supported(est, validation_data)
    if not isinstance(X, dd.DataFrame):
        raise ValueError(
            f"ltvkit: TwoStageRegressor on Dask needs X as a dask DataFrame, got "
            f"{type(X).__name__}."
        )
    client = _client()
    y = _as_series(y, "y")
    sw = None if sample_weight is None else _as_series(sample_weight, "sample_weight")
    X, schema = _schema(est, X)
    n_kept, n_pos = _check_target(y, sw)
    est.schema_ = schema
    est.target_ndim_ = 1

    frame_meta = est._booster_frame(schema._transform_frame(X._meta.copy(), True), fit=True)

    def transform(part: pd.DataFrame) -> pd.DataFrame:
        return est._booster_frame(schema._transform_frame(part, by_name=True))

    frame = X.map_partitions(transform, meta=frame_meta)
    y = y.astype("float64")
    if sw is not None:  # zero weight = a removed row, as in memory
        keep = sw > 0
        frame, y, sw = frame[keep], y[keep], sw[keep].astype("float64")

    # seeds as in memory: an int goes to both boosters, a RandomState draws one
    rng = check_random_state(est.random_state)
    if est.random_state is None:
        seed = None
    elif isinstance(est.random_state, numbers.Integral):
        seed = int(est.random_state)
    else:
        seed = int(rng.randint(np.iinfo(np.int32).max))

    positive = y > 0
    classifier = None
    if n_pos < n_kept:
        local_clf = est._make_classifier(seed)
        dask_clf = _dask_booster(local_clf)
        dask_clf.client = client
        kw = {} if sw is None else {"sample_weight": sw}
        _fit_on_cluster(dask_clf, "classifier (stage 1)", frame, positive.astype("int8"), **kw)
        classifier = _to_local(dask_clf, local_clf)
    est.classifier_ = classifier

    X_pos, y_pos = frame[positive], y[positive]
    w_pos = None if sw is None else sw[positive]
    target = np.log1p(y_pos) if est.target_transform == "log1p" else y_pos
    local_reg = est._make_regressor(seed)
    dask_reg = _dask_booster(local_reg)
    dask_reg.client = client
    kw = {} if w_pos is None else {"sample_weight": w_pos}
    _fit_on_cluster(dask_reg, "regressor (stage 2)", X_pos, target, **kw)
    regressor = _to_local(dask_reg, local_reg)
    est.regressor_ = regressor
    est.correction_factor_ = _correction_factor(est, regressor, X_pos, y_pos, w_pos)
    est.n_estimators_ = (_n_rounds(classifier), _n_rounds(regressor))

    # the spread of predict_quantiles: cross-fitted in memory on a sample of spenders
    parts = [X_pos, y_pos.rename("_ltvkit_y")]
    if w_pos is not None:
        parts.append(w_pos.rename("_ltvkit_w"))
    spenders = dd.concat(parts, axis=1)
    if n_pos > _RESIDUAL_SAMPLE:
        spenders = spenders.sample(
            frac=min(1.0, 1.05 * _RESIDUAL_SAMPLE / n_pos),
            random_state=None if seed is None else seed,
        )
    sample = spenders.compute()
    y_s = sample.pop("_ltvkit_y").to_numpy(dtype=np.float64)
    w_s = sample.pop("_ltvkit_w").to_numpy(dtype=np.float64) if w_pos is not None else None
    est.spend_residuals_ = est._fit_spend_distribution(sample, y_s, w_s, seed, rng)
    return est


def predict_lazy(est: TwoStageRegressor, X: Any, method: str) -> Any:
    """``est.<method>`` on a dask DataFrame: a lazy dask Series, one task per partition.

    The fitted estimator is shipped to the workers with the tasks; each partition is
    predicted by the ordinary pandas path (schema, then both stages).
    """
    import dask.dataframe as dd

    if not isinstance(X, dd.DataFrame):
        raise ValueError(
            f"ltvkit: TwoStageRegressor.{method} takes a pandas or dask DataFrame here, got "
            f"{type(X).__name__}."
        )
    name = {"predict": "predicted_value", "predict_nonzero_proba": "nonzero_proba"}.get(
        method, method
    )

    def apply(part: pd.DataFrame) -> pd.Series:
        if not len(part):
            return pd.Series(np.empty(0), index=part.index, name=name)
        return pd.Series(getattr(est, method)(part), index=part.index, name=name)

    return X.map_partitions(apply, meta=pd.Series(dtype=np.float64, name=name))
