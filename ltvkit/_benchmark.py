"""The model comparison behind ``ltvkit benchmark``, as a library function.

:func:`run_benchmark` fits every requested model on the training part of a customer table,
scores it with the LTV metrics on the held-out part (or with K-fold cross-validation) and
returns one row per model. :func:`write_benchmark` writes the table (CSV and Markdown)
and the three pictures. The command line (``ltvkit/cli.py``) is a thin layer over both.

Models are every regressor in :func:`ltvkit.all_estimators` (so a newly registered model
joins automatically, under a short name derived from its class name) plus two peers:
``calibration_spend`` (rank customers by what they spent in the calibration window) and
``lgbm_tweedie`` (one LightGBM booster with the Tweedie objective).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import math
import os
import re
import sys
import threading
import time
import tracemalloc
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.model_selection import KFold, train_test_split
from sklearn.utils.validation import check_is_fitted

from ltvkit._registry import all_estimators
from ltvkit.base import (
    DataQualityWarning,
    TabularSchema,
    check_predictions,
    validate_ltv_target,
)
from ltvkit.metrics import (
    ambe,
    decile_mape,
    mutual_gini,
    nmae,
    normalized_gini,
    normalized_gini_positive,
    recall_at_k,
    spearman,
    sva,
)

__all__ = [
    "METRICS",
    "PEERS",
    "QUICK_MAX_UNITS",
    "QUICK_PARAMS",
    "CalibrationSpendBaseline",
    "LGBMTweedieRegressor",
    "available_models",
    "format_table",
    "model_short_name",
    "run_benchmark",
    "write_benchmark",
]


# --------------------------------------------------------------------------- metrics
@dataclass(frozen=True)
class _Column:
    key: str
    label: str
    higher_is_better: bool
    digits: int
    func: Callable[..., float] | None = None


def _recall_at_1pct(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return recall_at_k(y_true, y_pred, k=0.01)


#: The scored columns of the table, in order: (key, label, direction, digits, metric).
METRICS: tuple[_Column, ...] = (
    _Column("normalized_gini", "Gini", True, 3, normalized_gini),
    _Column("normalized_gini_positive", "Gini y>0", True, 3, normalized_gini_positive),
    _Column("spearman", "Spearman", True, 3, spearman),
    _Column("decile_mape", "decile MAPE", False, 3, decile_mape),
    _Column("nmae", "NMAE", False, 3, nmae),
    _Column("ambe", "AMBE", False, 3, ambe),
    _Column("mutual_gini", "Mutual Gini", False, 3, mutual_gini),
    _Column("sva", "SVA", True, 3, None),  # needs the model's P(y > 0): computed apart
    _Column("recall_at_1pct", "Recall@1%", True, 3, _recall_at_1pct),
)

#: Cost columns: wall-clock fit time, predict time per 1,000 rows, peak memory increase.
COSTS: tuple[_Column, ...] = (
    _Column("fit_seconds", "fit s", False, 2),
    _Column("predict_ms_per_1k", "predict ms/1k", False, 2),
    _Column("peak_memory_mb", "peak MB", False, 1),
)

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


# ------------------------------------------------------------------------------ peers
class CalibrationSpendBaseline(RegressorMixin, BaseEstimator):
    """Peer model: predict each customer's calibration-window spend (a feature column).

    The usual business rule "last period's best customers are next period's best": the
    prediction is the value of ``column`` (clipped at 0, NaN as 0). It learns nothing, so
    its ranking metrics are the floor a model has to beat; its error metrics are those of
    the naive forecast "the customer spends again what they spent before".

    Parameters
    ----------
    column : str, default="monetary_total"
        Feature column holding past spend (``transactions_to_ltv`` calls it
        ``monetary_total``).

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"monetary_total": [10.0, -2.0, 0.0]})
    >>> CalibrationSpendBaseline().fit(X, [1.0, 0.0, 0.0]).predict(X).tolist()
    [10.0, 0.0, 0.0]
    """

    def __init__(self, column: str = "monetary_total") -> None:
        self.column = column

    def fit(self, X: pd.DataFrame, y: object = None) -> CalibrationSpendBaseline:
        """Check that ``X`` has ``column``; nothing is learned."""
        self._check_column(X)
        self.is_fitted_ = True
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Return ``max(X[column], 0)`` as float64 (missing values as 0)."""
        check_is_fitted(self, "is_fitted_")
        self._check_column(X)
        values = pd.to_numeric(X[self.column], errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        return np.maximum(np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0), 0.0)

    def _check_column(self, X: object) -> None:
        if not isinstance(X, pd.DataFrame) or self.column not in X.columns:
            raise ValueError(
                f"calibration_spend needs a column {self.column!r} holding past spend."
            )


class LGBMTweedieRegressor(RegressorMixin, BaseEstimator):
    """Peer model: one LightGBM booster with the Tweedie objective (log link).

    The Tweedie distribution with power in (1, 2) is a compound Poisson-gamma: a point
    mass at zero plus a continuous positive part, so a single booster fits zero-inflated
    spend without a hurdle. Categorical columns are passed to LightGBM natively (pandas
    ``category`` with the training levels fixed by :class:`ltvkit.base.TabularSchema`;
    unseen levels become missing).

    Parameters
    ----------
    n_estimators : int, default=100
    learning_rate : float, default=0.1
    tweedie_variance_power : float, default=1.5
        LightGBM's defaults for all three.
    n_jobs : int or None, default=None
        Threads (None: LightGBM's default).
    random_state : int or None, default=None

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 2)); y = np.where(X[:, 0] > 0, np.exp(X[:, 1]), 0.0)
    >>> LGBMTweedieRegressor(n_estimators=10, random_state=0).fit(X, y).predict(X).shape
    (300,)
    """

    def __init__(
        self,
        n_estimators: int = 100,
        learning_rate: float = 0.1,
        tweedie_variance_power: float = 1.5,
        n_jobs: int | None = None,
        random_state: int | None = None,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.tweedie_variance_power = tweedie_variance_power
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _frame(self, X: object) -> pd.DataFrame:
        frame = self.schema_.transform(X)
        # LightGBM refuses JSON special characters in feature names: use positional names.
        frame.columns = [f"f{i}" for i in range(frame.shape[1])]
        return frame

    def fit(self, X: object, y: object) -> LGBMTweedieRegressor:
        """Fit the booster on ``(X, y)``."""
        import lightgbm

        y_arr = validate_ltv_target(y)
        self.schema_ = TabularSchema().fit(X)
        self.booster_ = lightgbm.LGBMRegressor(
            objective="tweedie",
            tweedie_variance_power=self.tweedie_variance_power,
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
            verbose=-1,
        ).fit(self._frame(X), y_arr)
        return self

    def predict(self, X: object) -> np.ndarray:
        """Expected value (the Tweedie mean, positive by the log link)."""
        check_is_fitted(self, "booster_")
        return check_predictions(self.booster_.predict(self._frame(X)), "lgbm_tweedie")


#: Peer name -> factory(baseline_column) of the unfitted peer.
PEERS: dict[str, Callable[[str], BaseEstimator]] = {
    "calibration_spend": lambda column: CalibrationSpendBaseline(column=column),
    "lgbm_tweedie": lambda column: LGBMTweedieRegressor(),
}


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
    multi_horizon: bool = False
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
            specs.append(_Spec(str(name), est, multi_horizon=multi))
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
            try:
                spec = _Spec(name, kind(), multi_horizon=multi)
            except Exception as exc:  # a broken model gets a failed row, not a crash
                spec = _Spec(name, None, multi_horizon=multi)
                spec.skip_reason = f"failed: {_short_reason(exc)}"
        specs.append(spec)
    return specs


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _cap_units(value: object, cap: int) -> object | None:
    """``value`` with every width capped at ``cap``; None when nothing changes."""
    if _is_int(value):
        return cap if value > cap else None
    if isinstance(value, Sequence) and not isinstance(value, str) and value:
        if all(_is_int(v) for v in value) and any(v > cap for v in value):
            return tuple(min(int(v), cap) for v in value)
    return None


def _resolve_n_jobs(n_jobs: int | None) -> int | None:
    if n_jobs is None:
        return None
    if not _is_int(n_jobs) or (n_jobs < 1 and n_jobs != -1):
        raise ValueError(f"n_jobs must be None, -1 or an integer >= 1, got {n_jobs!r}.")
    return (os.cpu_count() or 1) if n_jobs == -1 else int(n_jobs)


@contextlib.contextmanager
def _torch_threads(n_jobs: int | None) -> Iterator[None]:
    """Run the models with ``n_jobs`` torch threads (if given), then restore the setting.

    Deep models take their thread count from torch, not from an ``n_jobs`` parameter. On
    a busy machine, torch's default (one thread per core) oversubscribes the cores: the
    CDNOW ``--quick`` run took 216 s instead of 33 s on 2 shared cores.
    """
    torch = sys.modules.get("torch")
    if n_jobs is None or torch is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n_jobs)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


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


# ------------------------------------------------------------------------ measurement
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_STATM = Path("/proc/self/statm")


def _rss_bytes() -> int | None:
    """Resident set size of this process from /proc (Linux), else None."""
    try:
        return int(_STATM.read_text().split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return None


def _release_free_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc ``malloc_trim``).

    Without it, memory freed by an earlier model stays in the process (RSS) and a later
    model can reuse it without any RSS increase, so its peak would read as ~0.
    """
    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (e.g. musl): RSS stays a lower bound
            pass


class _Monitor:
    """Samples the process memory in a thread while a model fits and predicts.

    On Linux it reads the resident set size (``/proc/self/statm``) every 5 ms and reports
    the peak increase over the value at ``start``: this counts every allocation (numpy,
    torch, LightGBM/XGBoost native memory), unlike ``tracemalloc``, which only sees Python
    allocations. Elsewhere it falls back to ``tracemalloc``'s peak (Python allocations
    only, so torch tensors are missed). The same thread redraws the progress line.
    """

    def __init__(self, redraw: Callable[[], None] | None) -> None:
        self._redraw = redraw
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_rss = 0
        self.peak_rss = 0
        self._tracing = False

    def __enter__(self) -> _Monitor:
        _release_free_memory()
        rss = _rss_bytes()
        if rss is None:
            self._tracing = not tracemalloc.is_tracing()
            if self._tracing:
                tracemalloc.start()
            tracemalloc.reset_peak()
        else:
            self._start_rss = self.peak_rss = rss
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        last_draw = 0.0
        while not self._stop.wait(0.005):
            rss = _rss_bytes()
            if rss is not None and rss > self.peak_rss:
                self.peak_rss = rss
            now = time.monotonic()
            if self._redraw is not None and now - last_draw > 0.25:
                last_draw = now
                self._redraw()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        rss = _rss_bytes()
        if rss is not None:
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_mb = (self.peak_rss - self._start_rss) / 2**20
        else:
            self.peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
            if self._tracing:
                tracemalloc.stop()


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
    out = {}
    for col in METRICS:
        if col.key == "sva":
            out[col.key] = sva(y_true, pred, nonzero_proba=proba)
        else:
            assert col.func is not None
            out[col.key] = float(col.func(y_true, pred))
    return out


@dataclass
class _Fold:
    train: np.ndarray
    test: np.ndarray


@dataclass
class BenchmarkResult:
    """What :func:`run_benchmark` measured, for :func:`write_benchmark`."""

    table: pd.DataFrame
    y_true: np.ndarray
    predictions: dict[str, np.ndarray] = field(default_factory=dict)


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


def run_benchmark(
    X: object,
    y: object,
    *,
    models: Sequence[str] | Mapping[str, BaseEstimator] | None = None,
    test_size: float = 0.3,
    cv: int | None = None,
    seed: int | None = 0,
    quick: bool = False,
    out: str | os.PathLike | None = None,
    baseline_column: str = "monetary_total",
    n_jobs: int | None = None,
    progress: TextIO | None = None,
    return_predictions: bool = False,
) -> pd.DataFrame | BenchmarkResult:
    """Fit and score several LTV models on one customer table; one row per model.

    Each model is fitted on the training part and scored on the held-out part with the
    ltvkit metrics (:data:`METRICS`), its fit time, predict time and peak memory; with
    ``cv`` the scores are the mean (and ``<metric>_std``) over K folds. A model that
    raises is reported as ``failed: <reason>`` and the run goes on.

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
        Seeds the split and every model with a ``random_state`` parameter.
    quick : bool, default=False
        Small and short models for a first look: the caps of :data:`QUICK_PARAMS` (5
        epochs, 50 boosting rounds) and :data:`QUICK_MAX_UNITS` (layer widths of every
        ``*_units`` parameter) are applied by ``set_params`` to every model having those
        parameters; never enlarges a model.
    out : str, path-like or None, default=None
        If given, :func:`write_benchmark` writes the tables and pictures there.
    baseline_column : str, default="monetary_total"
        Past-spend column of the ``calibration_spend`` peer (skipped when absent from
        ``X``, unless asked for by name: then it is an error).
    n_jobs : int or None, default=None
        Threads per model: passed to every model with an ``n_jobs`` parameter (boosters)
        and set as torch's thread count during the run (deep models); -1 = all cores.
        None leaves the models' and torch's defaults.
    progress : text stream or None, default=None
        Where to print one progress line per model (e.g. ``sys.stderr``); None is silent.
    return_predictions : bool, default=False
        Return a :class:`BenchmarkResult` (table, the scored ``y_true`` and each model's
        held-out or out-of-fold predictions) instead of the table alone.

    Returns
    -------
    table : pandas.DataFrame
        Indexed by model name, with the :data:`METRICS` columns, ``fit_seconds``,
        ``predict_ms_per_1k``, ``peak_memory_mb`` (the increase of the process's resident
        memory while the model fits and predicts; see ``docs/benchmarks.md``), ``status``
        (``"ok"``, ``"failed: ..."`` or ``"skipped: ..."``) and, with ``cv``, a ``*_std``
        column after each measured column.

    Raises
    ------
    ValueError
        Bad ``X``/``y`` (the ltvkit contract), an unknown model name, a bad ``test_size``
        or ``cv``.

    Examples
    --------
    >>> from ltvkit.datasets import make_ltv
    >>> X, y = make_ltv(n_samples=500, n_features=4, random_state=0)
    >>> table = run_benchmark(X, y, models=["lgbm_tweedie"], quick=True)
    >>> table.loc["lgbm_tweedie", "status"]
    'ok'
    """
    if cv is not None:
        if isinstance(cv, bool) or not isinstance(cv, (int, np.integer)) or cv < 2:
            raise ValueError(f"cv must be an integer >= 2, got {cv!r}.")
        cv = int(cv)
    elif isinstance(test_size, bool) or not (
        isinstance(test_size, (float, int)) and 0 < test_size < 1
    ):
        raise ValueError(f"test_size must be a fraction in (0, 1), got {test_size!r}.")
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
                _configure(spec.estimator, seed=seed, quick=quick, n_jobs=n_jobs)
            except Exception as exc:  # e.g. a set_params that validates and refuses
                spec.skip_reason = f"failed: {_short_reason(exc)}"
        if spec.multi_horizon and not multi_target and spec.skip_reason is None:
            spec.skip_reason = (
                "skipped: multi-horizon model; needs a 2-D target of cumulative horizons "
                "(e.g. --target 13w,26w,39w)"
            )

    report = _Progress(progress, len(specs))
    report.name_width = max([12, *(len(s.name) for s in specs)])
    if cv is not None:
        scored = y_last
        oof_rows = np.concatenate([f.test for f in folds])
    else:
        scored = y_last[folds[0].test]
        oof_rows = folds[0].test
    rows: list[dict[str, Any]] = []
    predictions: dict[str, np.ndarray] = {}
    warmed: set[type] = set()
    with _torch_threads(n_jobs):
        for i, spec in enumerate(specs, start=1):
            row: dict[str, Any] = {"model": spec.name}
            report.start(i, spec.name, 2 * len(folds))
            if spec.skip_reason is not None:
                row["status"] = spec.skip_reason
                report.finish(row["status"])
                rows.append(row)
                continue
            per_fold: list[dict[str, float]] = []
            oof = np.full(n, np.nan)
            notes: list[str] = []
            report.step(0, "warm-up")
            _warm_up(spec, frame, y_arr, folds[0], multi_target, warmed)
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    for k, fold in enumerate(folds):
                        per_fold.append(
                            _fit_one(spec, frame, y_arr, fold, multi_target, oof, report, k, folds)
                        )
                # data-quality warnings were raised once, by the input check above
                kept = [w for w in caught if not issubclass(w.category, DataQualityWarning)]
                for msg in dict.fromkeys(_warning_text(w) for w in kept):
                    notes.append(f"warning: {msg}")
            except Exception as exc:  # one model failing must not stop the run
                row["status"] = f"failed: {_short_reason(exc)}"
                report.finish(row["status"])
                rows.append(row)
                continue
            table = pd.DataFrame(per_fold)
            for col in table.columns:
                row[col] = float(table[col].mean())
                if cv is not None:
                    row[f"{col}_std"] = float(table[col].std(ddof=1))
            row["status"] = "ok"
            predictions[spec.name] = oof[oof_rows]
            report.finish(f"ok  Gini {row['normalized_gini']:.3f}", notes[:5])
            rows.append(row)

    columns = []
    for col in (*METRICS, *COSTS):
        columns.append(col.key)
        if cv is not None:
            columns.append(f"{col.key}_std")
    result = pd.DataFrame(rows).set_index("model").reindex(columns=[*columns, "status"])
    result.attrs.update(
        {
            "n_rows": n,
            "n_test": len(scored),
            "cv": cv,
            "test_size": None if cv is not None else float(test_size),
            "seed": seed,
            "quick": bool(quick),
            "multi_horizon_target": multi_target,
        }
    )
    bench = BenchmarkResult(result, scored, predictions)
    if out is not None:
        write_benchmark(bench, out, progress=progress)
    return bench if return_predictions else result


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
    oof: np.ndarray,
    report: _Progress,
    k: int,
    folds: list[_Fold],
) -> dict[str, float]:
    assert spec.estimator is not None
    est = clone(spec.estimator)
    X_tr, X_te = _take(frame, fold.train), _take(frame, fold.test)
    y_tr = y_arr[fold.train]
    if multi_target and not spec.multi_horizon:
        y_tr = y_tr[:, -1]  # single-horizon models learn the last (longest) horizon
    y_te = _last_column(y_arr[fold.test])
    n_folds = len(folds)
    fold_label = f" fold {k + 1}/{n_folds}" if n_folds > 1 else ""
    report.step(2 * k, f"fit{fold_label}")
    with _Monitor(report.draw if report.live else None) as mon:
        t0 = time.perf_counter()
        est.fit(X_tr, y_tr)
        fit_s = time.perf_counter() - t0
        report.step(2 * k + 1, f"predict{fold_label}")
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
    oof[fold.test] = pred
    scores = _score(y_te, pred, proba)
    scores["fit_seconds"] = fit_s
    scores["predict_ms_per_1k"] = 1000.0 * pred_s / max(len(fold.test), 1) * 1000.0
    scores["peak_memory_mb"] = max(float(mon.peak_mb), 0.0)
    report.step(2 * k + 2, "scored")
    return scores


# ---------------------------------------------------------------------------- output
def _best_rows(table: pd.DataFrame) -> dict[str, set[str]]:
    ok = table[table["status"] == "ok"]
    # The calibration-spend peer learns nothing: it would always "win" time and memory.
    learners = ok.drop(index=[n for n in ok.index if n == "calibration_spend"])
    best: dict[str, set[str]] = {}
    for col in (*METRICS, *COSTS):
        rows = learners if col in COSTS else ok
        if col.key not in rows or rows[col.key].isna().all() or len(rows) < 2:
            continue
        values = rows[col.key].round(col.digits)
        target = values.max() if col.higher_is_better else values.min()
        best[col.key] = set(values.index[values == target])
    return best


def _fmt(value: float, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if abs(value) >= 10 ** (7 - digits):
        return f"{value:.3g}"
    return f"{value:.{digits}f}"


def format_table(table: pd.DataFrame, fmt: str = "text") -> str:
    """Render a :func:`run_benchmark` table as aligned text or Markdown.

    The best value of each column (among models whose status is ``ok``; for time and
    memory, not counting the ``calibration_spend`` peer, which fits nothing) is marked:
    with a ``*`` in text, in bold in Markdown. Direction: Gini, Spearman, SVA and Recall are
    higher-is-better; errors, Mutual Gini, time and memory are lower-is-better.

    Parameters
    ----------
    table : DataFrame
        The output of :func:`run_benchmark`.
    fmt : {"text", "markdown"}, default="text"

    Returns
    -------
    str

    Examples
    --------
    >>> t = pd.DataFrame({"normalized_gini": [0.7, 0.6], "status": ["ok", "ok"]},
    ...                  index=pd.Index(["a", "b"], name="model"))
    >>> print(format_table(t, "markdown").splitlines()[2])
    | a | **0.700** | ok |
    """
    if fmt not in ("text", "markdown"):
        raise ValueError(f"fmt must be 'text' or 'markdown', got {fmt!r}.")
    best = _best_rows(table)
    cols = [c for c in (*METRICS, *COSTS) if c.key in table.columns]
    header = ["model", *(c.label for c in cols), "status"]
    body: list[list[str]] = []
    for name, row in table.iterrows():
        cells = [str(name)]
        for c in cols:
            value = row[c.key]
            text = _fmt(value, c.digits)
            std_key = f"{c.key}_std"
            if text and std_key in table.columns and not pd.isna(row[std_key]):
                text += f" ± {_fmt(row[std_key], c.digits)}"
            if text and name in best.get(c.key, ()):
                text = f"**{text}**" if fmt == "markdown" else f"{text}*"
            cells.append(text)
        cells.append(str(row.get("status", "")))
        body.append(cells)
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |"]
        lines.append("|" + "|".join(["---"] + ["---:"] * len(cols) + ["---"]) + "|")
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        return "\n".join(lines)
    widths = [max(len(r[j]) for r in [header, *body]) for j in range(len(header))]
    out = []
    for r in [header, *body]:
        parts = [r[0].ljust(widths[0])]
        parts += [r[j].rjust(widths[j]) for j in range(1, len(r) - 1)]
        parts.append(r[-1])
        out.append("  ".join(parts).rstrip())
    out.insert(1, "-" * len(out[0]))
    return "\n".join(out)


def write_benchmark(
    result: BenchmarkResult,
    out: str | os.PathLike,
    *,
    progress: TextIO | None = None,
    prefix: str = "",
    tables: bool = True,
) -> dict[str, Path]:
    """Write ``results.csv``, ``results.md`` and, with matplotlib, the three pictures.

    Parameters
    ----------
    result : BenchmarkResult
        From ``run_benchmark(..., return_predictions=True)``.
    out : str or path-like
        Directory (created if needed).
    progress : text stream or None
        Where to say that the pictures were skipped (no matplotlib).
    prefix : str, default=""
        Prepended to every file name (e.g. ``"cdnow_"``).
    tables : bool, default=True
        Write the CSV and Markdown tables (False: the pictures only).

    Returns
    -------
    dict
        Kind (``"csv"``, ``"markdown"``, ``"gain_chart"``, ``"decile_chart"``,
        ``"lorenz"``) -> path written.
    """
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    if tables:
        csv_path = out_dir / f"{prefix}results.csv"
        result.table.to_csv(csv_path)
        written["csv"] = csv_path
        md_path = out_dir / f"{prefix}results.md"
        md_path.write_text(format_table(result.table, "markdown") + "\n", encoding="utf-8")
        written["markdown"] = md_path
    if not result.predictions:
        return written
    try:
        from matplotlib.figure import Figure

        from ltvkit import plotting
    except ImportError:
        if progress is not None:
            progress.write(
                "ltvkit benchmark: matplotlib is not installed, so no pictures were drawn "
                "(pip install 'ltvkit[plot]'); the tables were written.\n"
            )
        return written
    charts = (
        ("gain_chart", plotting.plot_gain_chart),
        ("decile_chart", plotting.plot_decile_chart),
        ("lorenz", plotting.plot_lorenz),
    )
    for kind, func in charts:
        fig = Figure(figsize=(7.5, 5.5), layout="constrained")
        func(result.y_true, result.predictions, ax=fig.subplots())
        path = out_dir / f"{prefix}{kind}.png"
        fig.savefig(path, dpi=110)
        written[kind] = path
    return written
