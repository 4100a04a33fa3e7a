"""Pictures of LTV predictions (gain chart, decile chart, Lorenz curves) and training curves.

Each function takes the true values and one or several predictions (``{name: y_pred}``)
and draws on a matplotlib ``Axes`` (a new one if ``ax`` is None), which it returns, so the
same pictures work in notebooks, scripts and ``ltvkit benchmark``. matplotlib is an
optional dependency (``pip install 'ltvkit[plot]'``); it is imported only when a function
is called.

Examples
--------
>>> import numpy as np
>>> from ltvkit.plotting import plot_gain_chart
>>> y = np.array([0.0, 0.0, 1.0, 5.0, 20.0])
>>> ax = plot_gain_chart(y, {"model": [0.1, 0.2, 0.9, 3.0, 9.0]})  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from ltvkit.metrics import decile_mape, gain_curve, lorenz_curve, mutual_gini, normalized_gini

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = [
    "plot_decile_chart",
    "plot_gain_chart",
    "plot_history",
    "plot_lorenz",
    "training_curves",
]

_MAX_POINTS = 2000


def _new_axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "ltvkit.plotting needs matplotlib; install it with pip install 'ltvkit[plot]'."
        ) from exc
    _, new = plt.subplots(figsize=(7.5, 5.5))
    return new


def _as_dict(
    y_true: ArrayLike, y_preds: Mapping[str, ArrayLike] | ArrayLike
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    t = np.asarray(y_true, dtype=np.float64)
    if t.ndim != 1 or t.size == 0:
        raise ValueError(f"y_true must be a non-empty 1-D array, got shape {t.shape}.")
    preds = dict(y_preds) if isinstance(y_preds, Mapping) else {"model": y_preds}
    if not preds:
        raise ValueError("y_preds is empty: give at least one prediction.")
    out = {}
    for name, pred in preds.items():
        p = np.asarray(pred, dtype=np.float64)
        if p.shape != t.shape:
            raise ValueError(
                f"prediction {name!r} has shape {p.shape}, but y_true has shape {t.shape}."
            )
        if not np.isfinite(p).all():
            raise ValueError(f"prediction {name!r} contains NaN or infinite values.")
        out[str(name)] = p
    return t, out


def _thin(x: np.ndarray, g: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep at most ``max_points`` evenly spaced points (ends included): the curves are
    smooth at that resolution and the PNG stays small for large tables."""
    if x.size <= max_points:
        return x, g
    idx = np.unique(np.linspace(0, x.size - 1, max_points).round().astype(np.int64))
    return x[idx], g[idx]


def _style(i: int) -> dict[str, Any]:
    # tab10 colours, then the same colours dashed: readable with up to 20 models.
    return {"color": f"C{i % 10}", "linestyle": "-" if i < 10 else "--", "linewidth": 1.4}


def plot_gain_chart(
    y_true: ArrayLike,
    y_preds: Mapping[str, ArrayLike] | ArrayLike,
    *,
    ax: Axes | None = None,
    max_points: int = _MAX_POINTS,
) -> Axes:
    """Cumulative gain curves: share of total value captured by the top-ranked customers.

    Customers are taken in decreasing order of each model's prediction; the curve is the
    cumulative share of the *true* value they hold (:func:`ltvkit.metrics.gain_curve`),
    drawn against the perfect order (by true value) and the random order (the diagonal),
    as in Wang, Liu & Miao (2019), Figure 3. The legend gives each model's normalized Gini
    (the area between its curve and the diagonal over that of the perfect order).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    y_preds : mapping of str to array-like, or array-like
        ``{name: y_pred}``; a single array is named ``"model"``.
    ax : matplotlib Axes or None, default=None
        Where to draw; None creates a new figure.
    max_points : int, default=2000
        Points kept per curve.

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0.0, 0.0, 1.0, 5.0, 20.0])
    >>> ax = plot_gain_chart(y, {"good": y + 1, "bad": -y})  # doctest: +SKIP
    """
    t, preds = _as_dict(y_true, y_preds)
    ax = _new_axes(ax)
    x, g = _thin(*gain_curve(t, t), max_points)
    ax.plot(x, g, color="black", linewidth=1.6, label="perfect (sort by true value)")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1.2, label="random")
    for i, (name, p) in enumerate(preds.items()):
        x, g = _thin(*gain_curve(t, p), max_points)
        ax.plot(x, g, **_style(i), label=f"{name} (Gini {normalized_gini(t, p):.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("share of customers, highest predicted value first")
    ax.set_ylabel("cumulative share of true value")
    ax.set_title("Gain chart")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    return ax


def _decile_means(t: np.ndarray, p: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    # Same groups as ltvkit.metrics.decile_mape: stable ascending sort, np.array_split.
    groups = [g for g in np.array_split(np.argsort(p, kind="stable"), n_bins) if g.size]
    return np.array([p[g].mean() for g in groups]), np.array([t[g].mean() for g in groups])


def plot_decile_chart(
    y_true: ArrayLike,
    y_preds: Mapping[str, ArrayLike] | ArrayLike,
    *,
    ax: Axes | None = None,
    n_bins: int = 10,
    log_scale: bool = True,
) -> Axes:
    """Calibration by predicted decile: mean predicted vs mean true value per decile.

    For each model, customers are sorted by prediction and split into ``n_bins`` equal
    groups (the groups of :func:`ltvkit.metrics.decile_mape`); each group is a point at
    (mean true value, mean predicted value), joined from the lowest decile to the highest.
    A calibrated model lies on the diagonal; a point above it over-predicts that decile.
    The legend gives each model's decile MAPE.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    y_preds : mapping of str to array-like, or array-like
    ax : matplotlib Axes or None, default=None
    n_bins : int, default=10
    log_scale : bool, default=True
        Log axes, since LTV deciles span orders of magnitude. A decile mean of 0 is
        drawn at half the smallest positive mean (the axis label says so).

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import numpy as np
    >>> y = np.arange(100.0)
    >>> ax = plot_decile_chart(y, {"model": y * 1.1})  # doctest: +SKIP
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 2:
        raise ValueError(f"n_bins must be an integer >= 2, got {n_bins!r}.")
    t, preds = _as_dict(y_true, y_preds)
    ax = _new_axes(ax)
    means = {name: _decile_means(t, p, int(n_bins)) for name, p in preds.items()}
    values = np.concatenate([np.concatenate(m) for m in means.values()])
    positive = values[values > 0]
    high = float(values.max()) * 1.25 if values.max() > 0 else 1.0
    if log_scale:
        # Deciles span orders of magnitude: log axes. A decile mean of 0 (e.g. a lowest
        # decile without any spender) cannot be shown on them; it is drawn at the floor,
        # half the smallest positive mean, and the axis label says so.
        floor = float(positive.min()) / 2 if positive.size else high / 100
        clipped = bool((values < floor).any())
        ax.set_xscale("log")
        ax.set_yscale("log")
        low = floor / 1.25
    else:
        floor, clipped, low = 0.0, False, 0.0
    ax.plot(
        [low, high], [low, high], color="grey", linestyle=":", linewidth=1.2, label="calibrated"
    )
    for i, (name, (mean_pred, mean_true)) in enumerate(means.items()):
        ax.plot(
            np.maximum(mean_true, floor),
            np.maximum(mean_pred, floor),
            marker="o",
            markersize=3.5,
            **_style(i),
            label=f"{name} (decile MAPE {decile_mape(t, preds[name]):.3f})",
        )
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    note = f" (0 drawn at {floor:.3g})" if clipped else ""
    group = "decile" if n_bins == 10 else "group"
    ax.set_xlabel(f"mean true value per predicted {group}{note}")
    ax.set_ylabel("mean predicted value")
    ax.set_title(f"Calibration by predicted {group}")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    return ax


def plot_lorenz(
    y_true: ArrayLike,
    y_preds: Mapping[str, ArrayLike] | ArrayLike,
    *,
    ax: Axes | None = None,
    max_points: int = _MAX_POINTS,
) -> Axes:
    """Lorenz curves of the true values and of each model's predictions.

    Each vector is sorted by its own values, largest first
    (:func:`ltvkit.metrics.lorenz_curve`): the curve is the share of the total held by the
    top customers. A model whose curve follows the true one predicts a value distribution
    as concentrated as the real one; the area between them is the Mutual Gini (Li et al.
    2022, Eq. 16; in the legend). It compares distributions, not who gets which value:
    pair it with the gain chart.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    y_preds : mapping of str to array-like, or array-like
    ax : matplotlib Axes or None, default=None
    max_points : int, default=2000

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0.0, 0.0, 1.0, 5.0, 20.0])
    >>> ax = plot_lorenz(y, {"model": [0.5, 0.5, 1.0, 4.0, 10.0]})  # doctest: +SKIP
    """
    t, preds = _as_dict(y_true, y_preds)
    ax = _new_axes(ax)
    x, s = _thin(*lorenz_curve(t), max_points)
    ax.plot(x, s, color="black", linewidth=1.8, label="true values")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1.2, label="equal shares")
    for i, (name, p) in enumerate(preds.items()):
        x, s = _thin(*lorenz_curve(np.maximum(p, 0.0)), max_points)
        ax.plot(x, s, **_style(i), label=f"{name} (Mutual Gini {mutual_gini(t, p):.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("share of customers, largest value first")
    ax.set_ylabel("share of total value")
    ax.set_title("Lorenz curves: true vs predicted value")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    return ax


def training_curves(estimator: Any) -> dict[str, np.ndarray]:
    """The per-epoch (or per-round) curves a fitted model recorded, by name.

    Deep models: every numeric column of ``net_.history`` (``train_loss``,
    ``valid_loss``, the columns of ``EpochScoring`` callbacks and of the model's own
    callbacks), by epoch. ``TwoStageRegressor``: each booster stage's evaluation
    curves on its validation set (``early_stopping`` or ``validation_data``), named
    ``"<stage> <set> <metric>"``, by boosting round.

    Parameters
    ----------
    estimator : fitted ltvkit model (or a Pipeline ending in one)

    Returns
    -------
    dict of str to ndarray

    Examples
    --------
    >>> from ltvkit.datasets import make_ltv
    >>> from ltvkit.nn import ZILNRegressor
    >>> X, y = make_ltv(n_samples=300, random_state=0)
    >>> curves = training_curves(ZILNRegressor(max_epochs=3, random_state=0).fit(X, y))
    >>> "valid_loss" in curves, len(curves["train_loss"])
    (True, 3)
    """
    est = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    if hasattr(est, "net_"):
        rows = list(est.net_.history)
        names = sorted({k for row in rows for k, v in row.items() if _is_number(v)})
        return {
            name: np.asarray([row.get(name, np.nan) for row in rows], dtype=np.float64)
            for name in names
            if name != "epoch"
        }
    curves = {}
    for stage in ("classifier_", "regressor_"):
        booster = getattr(est, stage, None)
        if booster is None:
            continue
        result = getattr(booster, "evals_result_", None)
        if result is None and hasattr(booster, "evals_result"):
            try:
                result = booster.evals_result()
            except Exception:
                result = None
        for data, metrics in (result or {}).items():
            for metric, values in metrics.items():
                curves[f"{stage[:-1]} {data} {metric}"] = np.asarray(values, dtype=np.float64)
    if not curves and not hasattr(est, "net_"):
        raise ValueError(
            f"{type(est).__name__} recorded no training curves: a deep model records them "
            "per epoch; TwoStageRegressor only with a validation set (early_stopping=True "
            "or fit(..., validation_data=...))."
        )
    return curves


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def plot_history(
    estimator: Any,
    curves: list[str] | None = None,
    *,
    ax: Axes | None = None,
) -> Axes:
    """Training curves of a fitted model: losses and logged metrics per epoch (or round).

    Parameters
    ----------
    estimator : fitted ltvkit model (or a Pipeline ending in one)
    curves : list of str or None, default=None
        Names from :func:`training_curves`; None draws the losses (``train_loss``,
        ``valid_loss`` of deep models, every curve of a booster) and the metrics of
        ``EpochScoring`` callbacks (on a second axis when their scale differs).
    ax : matplotlib Axes or None, default=None

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> from ltvkit.datasets import make_ltv
    >>> from ltvkit.nn import ZILNRegressor
    >>> X, y = make_ltv(n_samples=300, random_state=0)
    >>> model = ZILNRegressor(max_epochs=3, random_state=0).fit(X, y)
    >>> ax = plot_history(model)  # doctest: +SKIP
    """
    found = training_curves(estimator)
    if curves is None:
        skip = {"dur", "train_batch_count", "valid_batch_count", "event_lr"}
        curves = [c for c in found if c not in skip and not c.endswith("_best")]
    missing = [c for c in curves if c not in found]
    if missing:
        raise ValueError(f"unknown curve(s) {missing}; this model recorded {sorted(found)}.")
    ax = _new_axes(ax)
    losses = [c for c in curves if "loss" in c or " " in c]
    others = [c for c in curves if c not in losses]
    deep = hasattr(estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator, "net_")
    start = 1 if deep else 0
    for i, name in enumerate(losses):
        values = found[name]
        ax.plot(np.arange(start, start + len(values)), values, label=name, **_style(i))
    ax.set_xlabel("epoch" if deep else "boosting round")
    ax.set_ylabel("loss")
    target = ax.twinx() if (losses and others) else ax
    for j, name in enumerate(others, start=len(losses)):
        values = found[name]
        target.plot(np.arange(start, start + len(values)), values, label=name, **_style(j))
    if others:
        target.set_ylabel("metric" if losses else "value")
    handles, labels = ax.get_legend_handles_labels()
    if target is not ax:
        h2, l2 = target.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, loc="best")
    ax.set_title(f"Training curves: {type(estimator).__name__}")
    return ax
