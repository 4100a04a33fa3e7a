"""HybridRegressor: what the common contract tests do not check (docs/models/hybrid.md)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr

from ltvkit import HybridRegressor
from ltvkit.datasets import make_ltv

FAST = dict(n_estimators=20, hidden_units=(16,), max_epochs=10, batch_size=64, learning_rate=1e-2)


@pytest.fixture(scope="module")
def data():
    X, y = make_ltv(n_samples=400, n_features=5, n_categorical=1, random_state=0)
    return X, np.asarray(y, dtype=float)


@pytest.fixture(scope="module")
def mixture(data):
    X, y = data
    return HybridRegressor(**FAST, n_networks=2, tree_share=None, random_state=0).fit(X, y)


def test_mixture_mean_and_proba_are_the_components_mixed_with_the_share(mixture, data):
    X, _ = data
    s = mixture.tree_share_
    assert 0.0 <= s <= 1.0
    nets = mixture.net_models_
    assert len(nets) == 2
    Xc = mixture._columns(mixture._validate_predict_input(X))
    trees_mean = mixture.trees_.predict(Xc)
    nets_mean = np.mean([net.predict(Xc) for net in nets], axis=0)
    np.testing.assert_allclose(mixture.predict(X), s * trees_mean + (1 - s) * nets_mean)
    trees_p = mixture.trees_.predict_nonzero_proba(Xc)
    nets_p = np.mean([net.predict_nonzero_proba(Xc) for net in nets], axis=0)
    np.testing.assert_allclose(mixture.predict_nonzero_proba(X), s * trees_p + (1 - s) * nets_p)


def test_learned_share_maximizes_the_out_of_fold_likelihood(mixture):
    assert mixture.share_loglik_.shape == (101,)
    assert mixture.tree_share_ == pytest.approx(np.argmax(mixture.share_loglik_) / 100)
    # the argmax is a real maximum of a likelihood curve, not its edge by default
    assert np.isfinite(mixture.share_loglik_).all()


def test_mixture_quantiles_invert_the_mixture_cdf(mixture, data):
    X, _ = data
    X = X[:50]
    levels = np.array([0.7, 0.9, 0.99])
    Q = mixture.predict_quantiles(X, levels)
    # the mixture CDF, computed independently, at the returned quantiles
    comps = mixture._components(X)
    cdf = np.zeros_like(Q)
    for w, c in comps:
        z = (np.log(np.maximum(Q, 1e-300)) - c["mu"][:, None]) / c["sigma"][:, None]
        cdf += w * ((1 - c["p"])[:, None] + c["p"][:, None] * np.where(Q > 0, ndtr(z), 0.0))
    spends = Q > 0
    np.testing.assert_allclose(cdf[spends], np.broadcast_to(levels, Q.shape)[spends], atol=1e-6)


def test_a_fixed_share_of_one_is_the_booster(data):
    X, y = data
    model = HybridRegressor(**FAST, n_networks=1, tree_share=1.0, random_state=0).fit(X, y)
    Xc = model._columns(model._validate_predict_input(X))
    np.testing.assert_allclose(model.predict(X), model.trees_.predict(Xc))
    assert model.share_loglik_ is None


def test_stack_feeds_the_booster_outputs_to_the_networks(data):
    X, y = data
    model = HybridRegressor(**FAST, combine="stack", n_networks=1, random_state=0).fit(X, y)
    net = model.net_models_[0]
    assert list(net.feature_names_in_[-2:]) == ["tree_log_value", "tree_nonzero_proba"]
    Xc = model._stacked(model._columns(model._validate_predict_input(X)), model.trees_)
    np.testing.assert_allclose(model.predict(X), net.predict(Xc))
    np.testing.assert_allclose(
        model.predict_quantiles(X, [0.5, 0.9]), net.predict_quantiles(Xc, [0.5, 0.9])
    )


def test_few_rows_skip_the_cross_fitting(data):
    X, y = data
    model = HybridRegressor(**FAST, tree_share=None, random_state=0).fit(X[:100], y[:100])
    assert model.tree_share_ == 0.5 and model.share_loglik_ is None


def test_stack_survives_a_model_file(data, tmp_path):
    import ltvkit

    X, y = data
    model = HybridRegressor(**FAST, combine="stack", random_state=0).fit(X, y)
    loaded = ltvkit.load(ltvkit.save(model, tmp_path / "stack.ltvkit"))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(
        loaded.predict_quantiles(X, [0.5, 0.9]), model.predict_quantiles(X, [0.5, 0.9])
    )
