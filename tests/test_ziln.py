"""ZILNRegressor and the ZILN likelihood helpers (Wang, Liu & Miao 2019)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from ltvkit.nn import ZILNRegressor, ziln_mean, ziln_nll, ziln_quantile
from ltvkit.nn._losses import bounded_mu, bounded_sigma, inverse_bounded_sigma

FAST = dict(hidden_units=(16,), max_epochs=5, batch_size=128, random_state=0)


def _closed_form(y, logit, mu, sigma):
    """BCE + 1[y > 0] * (-lognorm.logpdf), from scipy, in float64."""
    p = 1 / (1 + np.exp(-logit))
    pos = (y > 0).astype(float)
    bce = -(pos * np.log(p) + (1 - pos) * np.log1p(-p))
    safe = np.where(y > 0, y, 1.0)
    nll = -stats.lognorm.logpdf(safe, s=sigma, scale=np.exp(mu))
    return bce + pos * nll


# ----------------------------------------------------------------------------- losses


def test_ziln_loss_matches_scipy_closed_form():
    rng = np.random.default_rng(0)
    n = 1000
    y = np.where(rng.random(n) < 0.4, 0.0, rng.lognormal(2, 1.5, n))
    logit, mu, sigma = rng.normal(0, 2, n), rng.normal(2, 1, n), rng.uniform(0.2, 2.5, n)
    expected = _closed_form(y, logit, mu, sigma)
    got = ziln_nll(*(torch.tensor(a) for a in (y, logit, mu, sigma))).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    got32 = ziln_nll(*(torch.tensor(a, dtype=torch.float32) for a in (y, logit, mu, sigma)))
    np.testing.assert_allclose(got32.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_ziln_loss_broadcasts_per_sub_distribution_for_mixtures():
    # OptDist needs L[u, i]: every customer against every sub-distribution
    rng = np.random.default_rng(1)
    n, L = 50, 4
    y = np.where(rng.random(n) < 0.5, 0.0, rng.lognormal(1, 1, n))
    logit, mu, sigma = (
        rng.normal(size=(n, L)),
        rng.normal(1, 1, (n, L)),
        rng.uniform(0.3, 2, (n, L)),
    )
    got = ziln_nll(torch.tensor(y)[:, None], *(torch.tensor(a) for a in (logit, mu, sigma)))
    assert got.shape == (n, L)
    np.testing.assert_allclose(got.numpy(), _closed_form(y[:, None], logit, mu, sigma), rtol=1e-5)


def test_ziln_mean_and_quantile_match_scipy():
    logit, mu, sigma = (
        torch.tensor([0.3, -1.0]),
        torch.tensor([2.0, 0.5]),
        torch.tensor([1.2, 0.4]),
    )
    p = torch.sigmoid(logit).numpy()
    mean = ziln_mean(logit.double(), mu.double(), sigma.double()).numpy()
    np.testing.assert_allclose(mean, p * np.exp(mu.numpy() + sigma.numpy() ** 2 / 2), rtol=1e-6)
    q = torch.tensor([0.1, 0.5, 0.8, 0.99], dtype=torch.float64)
    got = ziln_quantile(logit.double()[:, None], mu.double()[:, None], sigma.double()[:, None], q)
    for i in range(2):
        for j, qq in enumerate(q.numpy()):
            level = (qq - (1 - p[i])) / p[i]
            want = (
                stats.lognorm.ppf(level, s=float(sigma[i]), scale=math.exp(mu[i]))
                if level > 0
                else 0
            )
            np.testing.assert_allclose(got[i, j].item(), want, rtol=1e-6)


def test_bounded_parameterizations():
    raw = torch.linspace(-50, 50, 1001)
    sigma = bounded_sigma(raw, sigma_max=2.0)
    assert bool((sigma > 0).all()) and bool((sigma <= 2.0).all())
    assert bool((torch.diff(sigma) >= 0).all())
    for target in (0.05, 0.5, 1.0, 1.9):
        raw0 = inverse_bounded_sigma(target, 2.0)
        assert float(bounded_sigma(torch.tensor(raw0, dtype=torch.float64), 2.0)) == pytest.approx(
            target
        )
    mu = bounded_mu(raw, center=3.0, half_width=2.0)
    assert float(mu.min()) >= 1.0 and float(mu.max()) <= 5.0
    # at and beyond the bound the gradient is small but not zero, unlike a hard clamp
    r = torch.tensor([2.0, 4.0, 8.0], requires_grad=True)
    bounded_sigma(r, 2.0).sum().backward()
    assert bool((r.grad > 0).all())


# ----------------------------------------------------------------------------- estimator


@pytest.fixture(scope="module")
def fitted_toy():
    rng = np.random.default_rng(0)
    n = 3000
    X = rng.normal(size=(n, 4))
    pos = rng.random(n) < 1 / (1 + np.exp(-X[:, 1]))
    y = pos * np.exp(2 + 0.8 * X[:, 0] + 0.7 * rng.normal(size=n))
    model = ZILNRegressor(**dict(FAST, max_epochs=30, learning_rate=3e-3)).fit(X, y)
    return model, X, y


def test_predict_equals_params_formula_and_is_bounded(fitted_toy):
    model, X, y = fitted_toy
    params = model.predict_params(X)
    assert list(params) == ["p", "mu", "sigma"]
    assert all(v.shape == (len(X),) and v.dtype == np.float64 for v in params.values())
    np.testing.assert_allclose(
        model.predict(X),
        params["p"] * np.exp(params["mu"] + params["sigma"] ** 2 / 2),
        rtol=1e-9,
    )
    np.testing.assert_array_equal(model.predict_nonzero_proba(X), params["p"])
    assert params["sigma"].max() <= model.sigma_max
    assert params["mu"].max() <= np.log(y.max())


def test_quantiles_monotone_integrate_to_mean_and_match_samples(fitted_toy):
    model, X, _ = fitted_toy
    rows = X[:4]
    qs = np.linspace(0.0, 0.99, 100)
    quant = model.predict_quantiles(rows, qs)
    assert quant.shape == (4, 100) and (np.diff(quant, axis=1) >= 0).all()
    params = model.predict_params(rows)
    zero_part = qs[None, :] <= 1 - params["p"][:, None]
    assert (quant[zero_part] == 0).all() and (quant[~zero_part] > 0).all()
    # E[Y] = integral of the quantile function over (0, 1) (midpoint rule)
    grid = (np.arange(200_000) + 0.5) / 200_000
    integral = model.predict_quantiles(rows, grid).mean(axis=1)
    np.testing.assert_allclose(integral, model.predict(rows), rtol=0.01)
    # a large sample from the fitted distribution has the predicted quantiles
    rng = np.random.default_rng(0)
    levels = [0.5, 0.7, 0.9, 0.95]
    for i, q_pred in enumerate(model.predict_quantiles(rows, levels)):
        p, mu, sigma = (params[k][i] for k in ("p", "mu", "sigma"))
        draws = (rng.random(200_000) < p) * rng.lognormal(mu, sigma, 200_000)
        emp = np.quantile(draws, levels)
        np.testing.assert_allclose(emp, q_pred, rtol=0.03, atol=1e-9)
    assert model.predict_quantiles(rows, 0.5).shape == (4,)
    with pytest.raises(ValueError, match="quantiles"):
        model.predict_quantiles(rows, [0.5, 1.0])


def test_predictions_stay_finite_on_extreme_inputs(fitted_toy):
    model, _, y = fitted_toy
    extreme = np.array([[1e12, -1e12, 1e6, 0.0], [np.nan, np.nan, np.nan, np.nan]])
    pred = model.predict(extreme)
    assert np.isfinite(pred).all()
    assert pred.max() <= y.max() * math.exp(model.sigma_max**2 / 2)


def test_nonzero_probability_ranks_like_the_true_probability():
    from ltvkit.datasets import make_ltv

    X, y, params = make_ltv(n_samples=20_000, random_state=0, return_params=True)
    p_true = np.asarray(params["p_nonzero"])
    X_tr, X_te, y_tr, y_te, _, p_te = train_test_split(X, y, p_true, test_size=0.3, random_state=0)
    model = ZILNRegressor(random_state=0).fit(X_tr, y_tr)
    auc_model = roc_auc_score(y_te > 0, model.predict_nonzero_proba(X_te))
    auc_true = roc_auc_score(y_te > 0, p_te)
    assert auc_model >= auc_true - 0.02, (auc_model, auc_true)


@pytest.mark.slow
def test_cdnow_gini_beats_ranking_by_calibration_spend():
    from ltvkit.datasets import load_cdnow
    from ltvkit.metrics import normalized_gini

    X, y = load_cdnow()
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0)
    pred = ZILNRegressor(random_state=0).fit(X_tr, y_tr).predict(X_te)
    gini = normalized_gini(y_te, pred)
    baseline = normalized_gini(y_te, X_te["monetary_total"])
    assert gini > baseline + 0.01, (gini, baseline)


@pytest.mark.slow
def test_online_retail_predictions_are_finite_and_sensible():
    from ltvkit.datasets import load_online_retail

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # refunds netted to 0
            X, y = load_online_retail()
    except FileNotFoundError:
        pytest.skip("UCI Online Retail not available")
    X_tr, X_te, y_tr, _ = train_test_split(X, y, test_size=0.3, random_state=0)
    pred = ZILNRegressor(random_state=0).fit(X_tr, y_tr).predict(X_te)
    assert np.isfinite(pred).all()
    assert pred.max() <= 10 * y_tr.max(), (pred.max(), y_tr.max())
