"""The runner behind ``ltvkit benchmark``: fit several models on one table, score them.

:func:`run_benchmark` fits every requested model on the training part of a customer
table (for each of its ``seeds``), scores it with the LTV metrics on the held-out part
(or with K-fold cross-validation) and returns a :class:`BenchmarkResult`.

Models are every regressor in :func:`ltvkit.all_estimators` (so a newly registered model
joins automatically, under a short name derived from its class name) plus two peers:
``calibration_spend`` and ``lgbm_tweedie`` (``ltvkit.benchmark._peers``).
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import KFold, train_test_split

from ltvkit._registry import all_estimators
from ltvkit.base import (
    DataQualityWarning,
    TabularSchema,
    check_predictions,
    validate_ltv_target,
)
from ltvkit.benchmark._columns import COSTS, TABLE_METRICS
from ltvkit.benchmark._measure import _is_int, _Monitor, _resolve_n_jobs, _torch_threads
from ltvkit.benchmark._peers import PEERS
from ltvkit.benchmark._result import BenchmarkResult

__all__ = [
    "QUICK_MAX_UNITS",
    "QUICK_PARAMS",
    "available_models",
    "model_short_name",
    "run_benchmark",
]

#: Parameters ``--quick`` caps, through ``set_params``, on every model that has them
#: (a value already below the cap is kept). Generic on purpose, no per-model tuning: a
#: model that lands later and uses the shared deep-model parameters
#: (``ltvkit.nn.SHARED_PARAMS``) or boosting rounds is made quick without being listed
#: anywhere. A fixed epoch budget keeps the run short however many deep models exist.
QUICK_PARAMS: dict[str, int] = {
    "max_epochs": 5,
    "n_estimators": 50,
    "max_iter": 50,
}
#: ``--quick`` also caps every layer width of ``hidden_units`` and of any other
#: ``*_units`` parameter (an int or a sequence of ints) at this value, keeping the number
#: of layers: ``(512, 256)`` -> ``(32, 32)``, ``100`` -> ``32``.
QUICK_MAX_UNITS = 32


# -------------------------------------------------------------------------- model names
def model_short_name(class_name: str) -> str:
    """Short command-line name of a model class: snake case without ``Regressor``.

    Acronyms stay whole: ``TwoStageRegressor`` -> ``two_stage``, ``ZILNRegressor`` ->
    ``ziln``, ``CCORNetRegressor`` -> ``ccor_net``. :func:`available_models` also
    accepts the name without underscores (``ccornet``) and the class name itself.

    Examples
    --------
    >>> [model_short_name(n) for n in ("TwoStageRegressor", "ZILNRegressor", "OptDistRegressor")]
    ['two_stage', 'ziln', 'opt_dist']
    """
    base = re.sub(r"Regressor$", "", class_name) or class_name
    words = re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z0-9]+|[A-Z]+|[0-9]+", base)
    return "_".join(w.lower() for w in words) or class_name.lower()


def _lookup_key(name: str) -> str:
    key = re.sub(r"[\s_\-]", "", name).lower()
    return key[: -len("regressor")] if key.endswith("regressor") and key != "regressor" else key


@dataclass
class _Spec:
    name: str
    estimator: BaseEstimator | None
    multi_horizon: bool = False  # takes a 2-D target of cumulative horizons
    # only meaningful with several horizons (ODMN: with one it is MDME): skipped on 1-D
    needs_horizons: bool = False
    skip_reason: str | None = None  # the row's status when the model is not run
    peer: bool = False


def available_models() -> dict[str, type | str]:
    """Every model name ``run_benchmark`` knows, in the default order.

    Returns
    -------
    dict
        Short name -> estimator class for the registered models (``ltvkit.all_estimators
        ("regressor")``), then ``"calibration_spend"`` and ``"lgbm_tweedie"`` -> ``"peer"``.

    Examples
    --------
    >>> list(available_models())[-2:]
    ['calibration_spend', 'lgbm_tweedie']
    """
    out: dict[str, type | str] = {}
    for class_name, cls in all_estimators("regressor"):
        out[model_short_name(class_name)] = cls
    for peer in PEERS:
        out[peer] = "peer"
    return out


def _resolve_models(
    models: Sequence[str] | Mapping[str, BaseEstimator] | None,
    baseline_column: str,
    columns: pd.Index,
) -> list[_Spec]:
    if isinstance(models, Mapping):
        specs = []
        for name, est in models.items():
            if not hasattr(est, "fit") or not hasattr(est, "predict"):
                raise ValueError(f"models[{name!r}] is not an estimator (needs fit/predict).")
            multi = bool(getattr(est, "_multi_horizon", False))
            needs = bool(getattr(est, "_requires_multi_horizon", False))
            specs.append(_Spec(str(name), est, multi_horizon=multi, needs_horizons=needs))
        if not specs:
            raise ValueError("models is empty: give at least one model.")
        return specs
    known = available_models()
    if models is None:
        names, explicit = list(known), False
    else:
        if isinstance(models, str):
            models = [m for m in models.split(",") if m.strip()]
        names, explicit = [str(m).strip() for m in models], True
        if not names:
            raise ValueError("no model given: --models needs at least one name.")
    by_key = {_lookup_key(n): n for n in known}
    for n, cls in known.items():
        if isinstance(cls, type):
            by_key.setdefault(_lookup_key(cls.__name__), n)
    specs: list[_Spec] = []
    seen: set[str] = set()
    for raw in names:
        name = by_key.get(_lookup_key(raw))
        if name is None:
            raise ValueError(f"unknown model {raw!r}; available: {', '.join(known)}.")
        if name in seen:
            continue
        seen.add(name)
        kind = known[name]
        if kind == "peer":
            spec = _Spec(name, PEERS[name](baseline_column), peer=True)
            if name == "calibration_spend" and baseline_column not in columns:
                if explicit:
                    raise ValueError(
                        f"calibration_spend needs a past-spend column {baseline_column!r}, "
                        "which the table does not have; pick one with --baseline-column."
                    )
                spec.skip_reason = (
                    f"skipped: no {baseline_column!r} column (pick one with --baseline-column)"
                )
        else:
            assert isinstance(kind, type)
            multi = bool(getattr(kind, "_multi_horizon", False))
            needs = bool(getattr(kind, "_requires_multi_horizon", False))
            try:
                spec = _Spec(name, kind(), multi_horizon=multi, needs_horizons=needs)
            except Exception as exc:  # a broken model gets a failed row, not a crash
                spec = _Spec(name, None, multi_horizon=multi, needs_horizons=needs)
                spec.skip_reason = f"failed: {_short_reason(exc)}"
        specs.append(spec)
    return specs


def _cap_units(value: object, cap: int) -> object | None:
    """``value`` with every width capped at ``cap``; None when nothing changes."""
    if _is_int(value):
        return cap if value > cap else None
    if isinstance(value, Sequence) and not isinstance(value, str) and value:
        if all(_is_int(v) for v in value) and any(v > cap for v in value):
            return tuple(min(int(v), cap) for v in value)
    return None


def _configure(est: BaseEstimator, *, seed: int | None, quick: bool, n_jobs: int | None) -> None:
    params = est.get_params(deep=False)
    update: dict[str, Any] = {}
    if seed is not None and "random_state" in params:
        update["random_state"] = seed
    if n_jobs is not None and "n_jobs" in params:
        update["n_jobs"] = n_jobs
    if quick:
        for key, current in params.items():
            if key in QUICK_PARAMS:
                cap = QUICK_PARAMS[key]
                if _is_int(current) and current > cap:
                    update[key] = cap
            elif key == "hidden_units" or key.endswith("_units"):
                shrunk = _cap_units(current, QUICK_MAX_UNITS)
                if shrunk is not None:
                    update[key] = shrunk
    if update:
        est.set_params(**update)


class _Progress:
    """One progress line per model on a stream (stderr): a live bar on a terminal,
    a single summary line otherwise (logs and CI stay readable)."""

    _WIDTH = 20

    def __init__(self, stream: TextIO | None, n_models: int) -> None:
        self.stream = stream
        self.live = bool(stream is not None and getattr(stream, "isatty", lambda: False)())
        self.n_models = n_models
        self.name_width = 12
        self._lock = threading.Lock()
        self._state: tuple[int, str, int, int, str, float] | None = None

    def start(self, i: int, name: str, total_steps: int) -> None:
        self._state = (i, name, 0, total_steps, "", time.monotonic())
        self.draw()

    def step(self, done: int, phase: str) -> None:
        if self._state is not None:
            i, name, _, total, _, t0 = self._state
            self._state = (i, name, done, total, phase, t0)
            self.draw()

    def _prefix(self, i: int, name: str) -> str:
        width = len(str(self.n_models))
        return f"[{i:>{width}}/{self.n_models}] {name:<{self.name_width}}"

    def draw(self) -> None:
        if not self.live or self._state is None or self.stream is None:
            return
        i, name, done, total, phase, t0 = self._state
        filled = int(self._WIDTH * done / max(total, 1))
        bar = "#" * filled + "-" * (self._WIDTH - filled)
        line = f"{self._prefix(i, name)} [{bar}] {phase:<18} {time.monotonic() - t0:6.1f} s"
        with self._lock:
            self.stream.write("\r" + line + "\x1b[K")
            self.stream.flush()

    def finish(self, message: str, notes: Sequence[str] = ()) -> None:
        if self.stream is None or self._state is None:
            return
        i, name, *_, t0 = self._state
        self._state = None
        line = f"{self._prefix(i, name)} {message} ({time.monotonic() - t0:.1f} s)"
        with self._lock:
            self.stream.write(("\r" + line + "\x1b[K\n") if self.live else line + "\n")
            for note in notes:
                self.stream.write(f"    {note}\n")
            self.stream.flush()

    def say(self, message: str) -> None:
        if self.stream is not None:
            self.stream.write(message + "\n")
            self.stream.flush()


# ----------------------------------------------------------------------------- runner
def _short_reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    reason = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return reason if len(reason) <= 160 else reason[:157] + "..."


def _warning_text(w: warnings.WarningMessage) -> str:
    lines = str(w.message).strip().splitlines()
    text = f"{w.category.__name__}: {lines[0] if lines else ''}"
    return text if len(text) <= 200 else text[:197] + "..."


def _last_column(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return a[:, -1] if a.ndim == 2 else a


def _score(y_true: np.ndarray, pred: np.ndarray, proba: np.ndarray | None) -> dict[str, float]:
    """The table's metric columns; the model's P(y > 0) goes to the metrics that take it."""
    out = {}
    for col in TABLE_METRICS:
        assert col.metric is not None
        out[col.key] = col.metric(y_true, pred, nonzero_proba=proba)
    return out


@dataclass
class _Fold:
    train: np.ndarray
    test: np.ndarray


def _splits(n: int, test_size: float, cv: int | None, seed: int | None) -> list[_Fold]:
    idx = np.arange(n)
    if cv is not None:
        kfold = KFold(n_splits=cv, shuffle=True, random_state=seed)
        return [_Fold(tr, te) for tr, te in kfold.split(idx)]
    # Splitting the row indices gives exactly the rows of
    # train_test_split(X, y, test_size=..., random_state=seed): ltvkit's 70/30 convention.
    tr, te = train_test_split(idx, test_size=test_size, random_state=seed)
    return [_Fold(np.asarray(tr), np.asarray(te))]


def _take(obj: Any, rows: np.ndarray) -> Any:
    return obj.iloc[rows] if isinstance(obj, (pd.DataFrame, pd.Series)) else obj[rows]


def _check_inputs(X: object, y: object) -> tuple[pd.DataFrame, np.ndarray]:
    if isinstance(X, pd.DataFrame):
        frame = X
    else:
        arr = np.asarray(X)
        if arr.ndim != 2:
            raise ValueError(f"X must be 2-D (customers x features), got shape {arr.shape}.")
        frame = pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])
    TabularSchema().fit(frame)  # the checks every ltvkit model makes (empty, inf, dtypes)
    y_values = y.to_numpy() if isinstance(y, (pd.Series, pd.DataFrame)) else np.asarray(y)
    multi = y_values.ndim == 2 and y_values.shape[1] > 1
    y_arr = validate_ltv_target(y_values, multi_horizon=multi)
    if y_arr.shape[0] != len(frame):
        raise ValueError(f"X has {len(frame)} rows but y has {y_arr.shape[0]}.")
    return frame, y_arr


def _check_seeds(seeds: Sequence[int] | None, seed: int | None) -> list[int | None]:
    """The model seeds: ``seeds`` (distinct ints), or ``[seed]`` when None."""
    if seeds is None:
        return [seed]
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence):
        raise ValueError(f"seeds must be a sequence of ints (e.g. [0, 1, 2]), got {seeds!r}.")
    values = list(seeds)
    if not values or not all(_is_int(s) for s in values):
        raise ValueError(f"seeds must be a non-empty sequence of ints, got {seeds!r}.")
    if len(set(values)) != len(values):
        raise ValueError(f"seeds must be distinct, got {seeds!r}.")
    return [int(s) for s in values]


def _data_digest(frame: pd.DataFrame, y_arr: np.ndarray) -> str:
    """SHA-256 of the benchmarked table: column names, dtypes, values and the target."""
    digest = hashlib.sha256()
    for name, dtype in frame.dtypes.items():
        digest.update(f"{name}\0{dtype}\0".encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    digest.update(np.ascontiguousarray(y_arr, dtype=np.float64).tobytes())
    return digest.hexdigest()


def run_benchmark(
    X: object,
    y: object,
    *,
    models: Sequence[str] | Mapping[str, BaseEstimator] | None = None,
    test_size: float = 0.3,
    cv: int | None = None,
    seed: int | None = 0,
    seeds: Sequence[int] | None = None,
    quick: bool = False,
    out: str | os.PathLike | None = None,
    baseline_column: str = "monetary_total",
    n_jobs: int | None = None,
    progress: TextIO | None = None,
    data_name: str = "data",
) -> BenchmarkResult:
    """Fit and score several LTV models on one customer table; one row per model.

    Each model is fitted on the training part and scored on the held-out part with the
    table's metrics (:data:`~ltvkit.benchmark.TABLE_METRICS`, from the metric registry),
    its fit time, predict time and peak memory. With ``cv`` the scores are the mean
    over K folds; with ``seeds`` each model is fitted once per seed on the same split
    (or folds) and the table gives the mean and sd over those fits. A model that raises
    is reported as ``failed: <reason>`` and the run goes on.

    Parameters
    ----------
    X : DataFrame or array-like of shape (n_samples, n_features)
        Customer features.
    y : array-like of shape (n_samples,) or (n_samples, n_horizons)
        Customer value (finite, >= 0, at least one positive). A 2-D ``y`` holds
        cumulative horizons: multi-horizon models are fitted on all of them, the others
        on the last one, and everyone is scored on the last one. With a 1-D ``y``
        multi-horizon models are skipped (the row says so).
    models : sequence of str, mapping of str to estimator, or None, default=None
        Names from :func:`available_models` (the short name, the name without
        underscores or the class name; a comma-separated string works too), or a mapping
        ``{name: unfitted estimator}`` for any sklearn-style regressor. None: every
        registered ltvkit model plus the two peers.
    test_size : float, default=0.3
        Held-out share when ``cv`` is None, split with ``train_test_split(...,
        random_state=seed)`` (ltvkit's 70/30 convention).
    cv : int or None, default=None
        K-fold cross-validation (shuffled, seeded) instead of one split; K >= 2.
    seed : int or None, default=0
        Seeds the split (and the folds), and every model with a ``random_state``
        parameter unless ``seeds`` is given.
    seeds : sequence of int or None, default=None
        Model seeds: each model is fitted once per seed (its ``random_state``) on the
        same split, and every column is the mean over the fits with a
        ``<column>_std`` (sd, ddof=1) after it, like the quality studies' "mean ± sd
        over seeds". With ``cv`` the mean and sd are over every (fold, seed) fit.
    quick : bool, default=False
        Small and short models for a first look: the caps of :data:`QUICK_PARAMS` (5
        epochs, 50 boosting rounds) and :data:`QUICK_MAX_UNITS` (layer widths of every
        ``*_units`` parameter) are applied by ``set_params`` to every model having those
        parameters; never enlarges a model. Not for choosing a model (the charts say so).
    out : str, path-like or None, default=None
        If given, :func:`~ltvkit.benchmark.write_benchmark` writes the tables, the
        pictures and the run record there.
    baseline_column : str, default="monetary_total"
        Past-spend column of the ``calibration_spend`` peer (skipped when absent from
        ``X``, unless asked for by name: then it is an error).
    n_jobs : int or None, default=None
        Threads per model: passed to every model with an ``n_jobs`` parameter (boosters)
        and set as torch's thread count during the run (deep models); -1 = all cores.
        None leaves the models' and torch's defaults.
    progress : text stream or None, default=None
        Where to print one progress line per model (e.g. ``sys.stderr``); None is silent.
    data_name : str, default="data"
        What the data is called in the chart titles and the run record.

    Returns
    -------
    BenchmarkResult
        ``.table`` is indexed by model name, with the table's metric columns,
        ``fit_seconds``, ``predict_ms_per_1k``, ``peak_memory_mb`` (the increase of the
        process's resident memory while the model fits and predicts; see
        ``docs/benchmarks.md``), ``status`` (``"ok"``, ``"failed: ..."`` or
        ``"skipped: ..."``) and, with ``cv`` or several ``seeds``, a ``*_std`` column
        after each measured column; ``.scores`` has one row per fit; ``.y_true`` and
        ``.predictions`` are what the charts draw.

    Raises
    ------
    ValueError
        Bad ``X``/``y`` (the ltvkit contract), an unknown model name, a bad
        ``test_size``, ``cv`` or ``seeds``.

    Examples
    --------
    >>> from ltvkit.datasets import make_ltv
    >>> X, y = make_ltv(n_samples=500, n_features=4, random_state=0)
    >>> result = run_benchmark(X, y, models=["lgbm_tweedie"], quick=True)
    >>> result.table.loc["lgbm_tweedie", "status"]
    'ok'
    """
    started = datetime.datetime.now(datetime.timezone.utc)
    if cv is not None:
        if isinstance(cv, bool) or not isinstance(cv, (int, np.integer)) or cv < 2:
            raise ValueError(f"cv must be an integer >= 2, got {cv!r}.")
        cv = int(cv)
    elif isinstance(test_size, bool) or not (
        isinstance(test_size, (float, int)) and 0 < test_size < 1
    ):
        raise ValueError(f"test_size must be a fraction in (0, 1), got {test_size!r}.")
    model_seeds = _check_seeds(seeds, seed)
    n_jobs = _resolve_n_jobs(n_jobs)
    frame, y_arr = _check_inputs(X, y)
    multi_target = y_arr.ndim == 2
    y_last = _last_column(y_arr)
    n = len(frame)
    if cv is not None and cv > n:
        raise ValueError(f"cv={cv} folds but only {n} rows.")
    folds = _splits(n, float(test_size), cv, seed)
    specs = _resolve_models(models, baseline_column, frame.columns)
    for spec in specs:
        if spec.estimator is not None and spec.skip_reason is None:
            try:
                _configure(spec.estimator, seed=model_seeds[0], quick=quick, n_jobs=n_jobs)
            except Exception as exc:  # e.g. a set_params that validates and refuses
                spec.skip_reason = f"failed: {_short_reason(exc)}"
        if spec.needs_horizons and not multi_target and spec.skip_reason is None:
            spec.skip_reason = (
                "skipped: multi-horizon model; needs a 2-D target of cumulative horizons "
                "(e.g. --target 13w,26w,39w)"
            )

    fits = [(k, fold, s) for k, fold in enumerate(folds) for s in model_seeds]
    several = len(fits) > 1
    report = _Progress(progress, len(specs))
    report.name_width = max([12, *(len(s.name) for s in specs)])
    if cv is not None:
        scored = y_last
        oof_rows = np.concatenate([f.test for f in folds])
    else:
        scored = y_last[folds[0].test]
        oof_rows = folds[0].test
    rows: list[dict[str, Any]] = []
    per_fit_rows: list[dict[str, Any]] = []
    predictions: dict[str, np.ndarray] = {}
    warmed: set[type] = set()
    with _torch_threads(n_jobs):
        for i, spec in enumerate(specs, start=1):
            row: dict[str, Any] = {"model": spec.name}
            report.start(i, spec.name, 2 * len(fits))
            if spec.skip_reason is not None:
                row["status"] = spec.skip_reason
                report.finish(row["status"])
                rows.append(row)
                continue
            per_fit: list[dict[str, Any]] = []
            oof = np.full(n, np.nan)
            notes: list[str] = []
            report.step(0, "warm-up")
            _warm_up(spec, frame, y_arr, folds[0], multi_target, warmed)
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    for j, (k, fold, s) in enumerate(fits):
                        label = _fit_label(k, len(folds), s, len(model_seeds))
                        keep = oof if s == model_seeds[0] else None
                        scores = _fit_one(
                            spec, frame, y_arr, fold, multi_target, s, keep, report, j, label
                        )
                        per_fit.append({"model": spec.name, "fold": k, "seed": s, **scores})
                # data-quality warnings were raised once, by the input check above
                kept = [w for w in caught if not issubclass(w.category, DataQualityWarning)]
                for msg in dict.fromkeys(_warning_text(w) for w in kept):
                    notes.append(f"warning: {msg}")
            except Exception as exc:  # one model failing must not stop the run
                row["status"] = f"failed: {_short_reason(exc)}"
                report.finish(row["status"])
                rows.append(row)
                continue
            table = pd.DataFrame(per_fit).drop(columns=["model", "fold", "seed"])
            for col in table.columns:
                row[col] = float(table[col].mean())
                if several:
                    row[f"{col}_std"] = float(table[col].std(ddof=1))
            row["status"] = "ok"
            predictions[spec.name] = oof[oof_rows]
            per_fit_rows += per_fit
            report.finish(f"ok  Gini {row['normalized_gini']:.3f}", notes[:5])
            rows.append(row)

    columns = []
    for col in (*TABLE_METRICS, *COSTS):
        columns.append(col.key)
        if several:
            columns.append(f"{col.key}_std")
    result = pd.DataFrame(rows).set_index("model").reindex(columns=[*columns, "status"])
    result.attrs.update(
        {
            "n_rows": n,
            "features": int(frame.shape[1]),
            "n_test": len(scored),
            "cv": cv,
            "test_size": None if cv is not None else float(test_size),
            "seed": seed,
            "seeds": None if seeds is None else [int(s) for s in model_seeds],
            "quick": bool(quick),
            "multi_horizon_target": multi_target,
        }
    )
    arguments = {
        "models": models if models is None or isinstance(models, str) else list(models),
        "test_size": test_size,
        "cv": cv,
        "seed": seed,
        "seeds": result.attrs["seeds"],
        "quick": bool(quick),
        "baseline_column": baseline_column,
        "n_jobs": n_jobs,
    }
    bench = BenchmarkResult(
        result,
        scored,
        predictions,
        scores=pd.DataFrame(per_fit_rows),
        data_name=str(data_name),
        data_sha256=_data_digest(frame, y_arr),
        arguments=arguments,
        started=started,
    )
    if out is not None:
        from ltvkit.benchmark._report import write_benchmark

        write_benchmark(bench, out, progress=progress)
    return bench


def _fit_label(k: int, n_folds: int, seed: int | None, n_seeds: int) -> str:
    """`` fold 2/5``, `` seed 3`` or both, for the progress line."""
    label = f" fold {k + 1}/{n_folds}" if n_folds > 1 else ""
    return label + (f" seed {seed}" if n_seeds > 1 else "")


#: Parameters of the untimed warm-up fit (generic, like QUICK_PARAMS).
_WARM_UP_PARAMS: dict[str, Any] = {"max_epochs": 1, "n_estimators": 2, "max_iter": 2}
_WARM_UP_ROWS = 200


def _warm_up(
    spec: _Spec,
    frame: pd.DataFrame,
    y_arr: np.ndarray,
    fold: _Fold,
    multi_target: bool,
    warmed: set[type],
) -> None:
    """Fit one tiny, untimed copy of each model class before the timed fit.

    The first fit of a library in a process pays one-time costs (lazy imports, thread
    pools, kernel set-up): about 1.3 s for the first skorch/torch model and 1.5 s for the
    first LightGBM model here, more than a whole quick fit. Without the warm-up that cost
    would land on whichever model happens to run first; with it ``fit_seconds`` is the
    steady-state fit time. Any error is ignored here: the real fit reports it.
    """
    assert spec.estimator is not None
    cls = type(spec.estimator)
    if cls in warmed:
        return
    warmed.add(cls)
    y_last = _last_column(y_arr)[fold.train]
    pos = fold.train[y_last > 0][: _WARM_UP_ROWS // 2]
    zero = fold.train[y_last <= 0][: _WARM_UP_ROWS - len(pos)]
    rows = np.sort(np.concatenate([pos, zero]))
    est = clone(spec.estimator)
    params = est.get_params(deep=False)
    est.set_params(**{k: v for k, v in _WARM_UP_PARAMS.items() if k in params})
    y_w = y_arr[rows]
    if multi_target and not spec.multi_horizon:
        y_w = y_w[:, -1]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            X_w = _take(frame, rows)
            est.fit(X_w, y_w)
            est.predict(X_w)
    except Exception:  # the timed fit reports errors
        return


def _fit_one(
    spec: _Spec,
    frame: pd.DataFrame,
    y_arr: np.ndarray,
    fold: _Fold,
    multi_target: bool,
    seed: int | None,
    oof: np.ndarray | None,
    report: _Progress,
    j: int,
    label: str,
) -> dict[str, float]:
    """Fit a fresh copy on ``fold.train`` (``random_state=seed``), score it on ``fold.test``."""
    assert spec.estimator is not None
    est = clone(spec.estimator)
    if seed is not None and "random_state" in est.get_params(deep=False):
        est.set_params(random_state=seed)
    X_tr, X_te = _take(frame, fold.train), _take(frame, fold.test)
    y_tr = y_arr[fold.train]
    if multi_target and not spec.multi_horizon:
        y_tr = y_tr[:, -1]  # single-horizon models learn the last (longest) horizon
    y_te = _last_column(y_arr[fold.test])
    report.step(2 * j, f"fit{label}")
    with _Monitor(report.draw if report.live else None) as mon:
        t0 = time.perf_counter()
        est.fit(X_tr, y_tr)
        fit_s = time.perf_counter() - t0
        report.step(2 * j + 1, f"predict{label}")
        t0 = time.perf_counter()
        pred = est.predict(X_te)
        pred_s = time.perf_counter() - t0
        proba = None
        if hasattr(est, "predict_nonzero_proba"):
            proba = _last_column(est.predict_nonzero_proba(X_te))
    pred = _last_column(pred)
    if pred.shape != y_te.shape:
        raise ValueError(f"predict returned shape {pred.shape}, expected {y_te.shape}.")
    pred = check_predictions(pred, spec.name)
    if oof is not None:
        oof[fold.test] = pred
    scores = _score(y_te, pred, proba)
    scores["fit_seconds"] = fit_s
    scores["predict_ms_per_1k"] = 1000.0 * pred_s / max(len(fold.test), 1) * 1000.0
    scores["peak_memory_mb"] = max(float(mon.peak_mb), 0.0)
    report.step(2 * j + 2, "scored")
    return scores
