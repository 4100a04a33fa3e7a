"""Tests of ltvkit.plotting: what is drawn, the legends' numbers, errors, no matplotlib."""

from __future__ import annotations

import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ltvkit.metrics import (  # noqa: E402
    decile_mape,
    gain_curve,
    lorenz_curve,
    mutual_gini,
    normalized_gini,
)
from ltvkit.plotting import plot_decile_chart, plot_gain_chart, plot_lorenz  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    y = np.where(rng.random(300) < 0.3, rng.lognormal(3.0, 1.0, 300), 0.0)
    good = y * rng.lognormal(0.0, 0.3, 300) + rng.random(300)
    noise = rng.random(300) * 10
    return y, {"good": good, "noise": noise}


def _line(ax, label_start):
    matches = [ln for ln in ax.get_lines() if ln.get_label().startswith(label_start)]
    assert len(matches) == 1, [ln.get_label() for ln in ax.get_lines()]
    return matches[0]


def test_gain_chart_draws_curves_of_the_metric(data):
    y, preds = data
    ax = plot_gain_chart(y, preds)
    assert isinstance(ax, matplotlib.axes.Axes)
    # perfect + random + one per model
    assert len(ax.get_lines()) == 2 + len(preds)
    for name, p in preds.items():
        line = _line(ax, name)
        assert f"Gini {normalized_gini(y, p):.3f}" in line.get_label()
        x, g = gain_curve(y, p)
        np.testing.assert_allclose(line.get_xdata(), x)
        np.testing.assert_allclose(line.get_ydata(), g)
    perfect = _line(ax, "perfect")
    np.testing.assert_allclose(perfect.get_ydata(), gain_curve(y, y)[1])
    # the informative model's curve lies above the noise model's in total
    assert np.mean(_line(ax, "good").get_ydata()) > np.mean(_line(ax, "noise").get_ydata())


def test_lorenz_draws_true_and_predicted_curves(data):
    y, preds = data
    ax = plot_lorenz(y, preds)
    true_line = _line(ax, "true values")
    np.testing.assert_allclose(true_line.get_ydata(), lorenz_curve(y)[1])
    for name, p in preds.items():
        line = _line(ax, name)
        assert f"Mutual Gini {mutual_gini(y, p):.3f}" in line.get_label()
        np.testing.assert_allclose(line.get_ydata(), lorenz_curve(p)[1])


def test_decile_chart_points_are_group_means(data):
    y, preds = data
    ax = plot_decile_chart(y, preds, log_scale=False)
    for name, p in preds.items():
        line = _line(ax, name)
        assert f"decile MAPE {decile_mape(y, p):.3f}" in line.get_label()
        groups = np.array_split(np.argsort(p, kind="stable"), 10)
        np.testing.assert_allclose(line.get_xdata(), [y[g].mean() for g in groups])
        np.testing.assert_allclose(line.get_ydata(), [p[g].mean() for g in groups])
    # a perfectly calibrated model sits on the diagonal
    ax2 = plot_decile_chart(y, {"truth": y}, log_scale=False)
    line = _line(ax2, "truth")
    np.testing.assert_allclose(line.get_xdata(), line.get_ydata())


def test_decile_chart_log_scale_draws_zero_means_at_a_floor():
    y = np.r_[np.zeros(50), np.arange(1.0, 51.0)]
    pred = np.r_[np.zeros(50), np.arange(1.0, 51.0)]
    ax = plot_decile_chart(y, {"m": pred})
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    line = _line(ax, "m")
    assert (line.get_xdata() > 0).all() and (line.get_ydata() > 0).all()
    assert "0 drawn at" in ax.get_xlabel()


def test_single_array_is_named_model_and_ax_is_reused(data):
    y, preds = data
    _fig, ax = plt.subplots()
    out = plot_gain_chart(y, preds["good"], ax=ax)
    assert out is ax
    assert _line(ax, "model (Gini")


def test_long_curves_are_thinned_keeping_the_ends():
    rng = np.random.default_rng(1)
    y = rng.exponential(size=20_000)
    ax = plot_gain_chart(y, {"m": y + rng.normal(size=20_000)}, max_points=500)
    line = _line(ax, "m")
    assert len(line.get_xdata()) <= 500
    assert line.get_xdata()[0] == 0.0 and line.get_xdata()[-1] == 1.0
    assert line.get_ydata()[-1] == pytest.approx(1.0)


@pytest.mark.parametrize("func", [plot_gain_chart, plot_decile_chart, plot_lorenz])
def test_bad_input_is_a_clear_error(func):
    y = np.array([0.0, 1.0, 2.0, 5.0])
    with pytest.raises(ValueError, match="shape"):
        func(y, {"m": np.ones(3)})
    with pytest.raises(ValueError, match="NaN or infinite"):
        func(y, {"m": np.array([0.0, np.nan, 1.0, 2.0])})
    with pytest.raises(ValueError, match="empty"):
        func(y, {})


def test_decile_chart_rejects_bad_n_bins():
    with pytest.raises(ValueError, match="n_bins"):
        plot_decile_chart([0.0, 1.0, 2.0], {"m": [0.0, 1.0, 2.0]}, n_bins=1)


def test_without_matplotlib_the_message_names_the_extra(monkeypatch, data):
    y, preds = data
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"ltvkit\[plot\]"):
        plot_gain_chart(y, preds)


def test_plot_history_draws_losses_and_epoch_scores_of_a_deep_model():
    from skorch.callbacks import EpochScoring

    from ltvkit.datasets import make_ltv
    from ltvkit.metrics import get_scorer
    from ltvkit.nn import ZILNRegressor
    from ltvkit.plotting import plot_history, training_curves

    X, y = make_ltv(n_samples=400, random_state=0)
    scoring = EpochScoring(get_scorer("normalized_gini"), lower_is_better=False, name="gini")
    model = ZILNRegressor(max_epochs=4, random_state=0, callbacks=[scoring]).fit(X, y)
    curves = training_curves(model)
    assert len(curves["gini"]) == len(curves["valid_loss"]) == model.n_iter_
    ax = plot_history(model)
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["train_loss", "valid_loss"]
    assert [line.get_label() for line in ax.figure.axes[1].get_lines()] == ["gini"]
    np.testing.assert_array_equal(ax.get_lines()[1].get_ydata(), curves["valid_loss"])
    with pytest.raises(ValueError, match="unknown curve"):
        plot_history(model, ["nope"])


def test_plot_history_of_two_stage_needs_a_validation_set():
    from ltvkit import TwoStageRegressor
    from ltvkit.datasets import make_ltv
    from ltvkit.plotting import plot_history, training_curves

    X, y = make_ltv(n_samples=600, random_state=0)
    model = TwoStageRegressor(n_estimators=15, n_jobs=1).fit(X, y)
    with pytest.raises(ValueError, match="no training curves"):
        training_curves(model)
    model.fit(X[:400], y[:400], validation_data=(X[400:], y[400:]))
    ax = plot_history(model)
    assert len(ax.get_lines()) == 2
    assert all(len(line.get_xdata()) == 15 for line in ax.get_lines())
