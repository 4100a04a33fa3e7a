"""MEANRegressor: the Multi-Expert Adaptive Network of Liu et al. (WeChat Pay)."""

from __future__ import annotations

import math
import pickle
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import train_test_split

from ltvkit.datasets import make_ltv
from ltvkit.nn import MEANLoss, MEANModule, MEANRegressor, MLPBank
from ltvkit.nn._encoder import EncodedSpec
from ltvkit.nn._layers import SharedBottom
from ltvkit.nn._mean import XI, _interp, soft_cross_entropy
from ltvkit.preprocessing import BucketMergeWarning, LTVBucketizer

FAST = dict(
    hidden_units=(16,),
    expert_units=(8,),
    dam_units=(8,),
    max_epochs=4,
    batch_size=128,
    random_state=0,
)


def _module(n=5, m=3, d=6, dam=True, seed=0):
    torch.manual_seed(seed)
    spec = EncodedSpec(4, (), (), ("a", "b", "c", "d"), ())
    return MEANModule(
        SharedBottom(spec, (8,)),
        SharedBottom(spec, (8,)) if dam else None,
        n_buckets=n,
        n_experts=m,
        expert_units=(d,),
        dam_units=(5,),
    ).double()


# ----------------------------------------------------------------------------- module


def test_parallel_experts_equal_independent_towers():
    torch.manual_seed(0)
    experts = MLPBank(4, 7, (5, 3)).double()  # MEANModule's experts: no output layer
    x = torch.randn(10, 7, dtype=torch.float64)
    out = experts(x)
    assert out.shape == (10, 4, 3)
    for j in range(4):  # tower j alone: relu(relu(x W0_j + b0_j) W1_j + b1_j)
        h = torch.relu(x @ experts.weights[0][j] + experts.biases[0][j])
        h = torch.relu(h @ experts.weights[1][j] + experts.biases[1][j])
        torch.testing.assert_close(out[:, j], h)
    with pytest.raises(ValueError, match="at least one"):
        MLPBank(2, 3, ())


def test_forward_follows_equations_2_to_7_token_by_token():
    n, m = 5, 3
    module = _module(n=n, m=m)
    x = torch.randn(6, 4, dtype=torch.float64)
    cat = torch.zeros(6, 0, dtype=torch.long)
    out = module(x, cat)
    h = module.bottom(x, cat)
    experts = module.experts(h)  # (B, M, d)
    for b in range(6):
        # eq. 3: G_i = softmax(W_g x) over the M experts, one gate per bucket i
        gates = torch.softmax(module.gates(h[b]).view(n, m), dim=-1)
        # eq. 2: f_i = sum_j G_ij E_j(x)
        tokens = torch.stack(
            [sum(gates[i, j] * experts[b, j] for j in range(m)) for i in range(n)]
        )
        rows = []
        for t in range(n):  # eqs. 4-5, one token at a time
            g = torch.tanh(
                module.w_q.weight @ tokens[t] + module.w_k.weight @ tokens[t] + module.w_k.bias
            )
            rows.append(torch.softmax(module.w_a.weight @ g + module.w_a.bias, dim=-1))
        A = torch.stack(rows)
        torch.testing.assert_close(out["attention"][b], A)
        e = sum((A @ tokens)[i] for i in range(n)) / n  # eq. 6
        y_hat = module.output.weight @ e + module.output.bias  # eq. 7, no activation
        torch.testing.assert_close(out["y_hat"][b], y_hat[0])
    # attention rows and theta are distributions
    torch.testing.assert_close(out["attention"].sum(-1), torch.ones(6, n, dtype=torch.float64))
    theta = out["attention"].mean(1)
    assert bool((theta > 0).all())
    torch.testing.assert_close(theta.sum(-1), torch.ones(6, dtype=torch.float64))
    assert out["dam_logits"].shape == (6, n)
    assert "dam_logits" not in _module(dam=False)(x, cat)


def _loss_by_hand(out, s, z, delta, kl, distillation, beta, gamma, tau):
    """Eqs. 8 and 12-17 written out in float64 numpy."""
    y_hat = out["y_hat"].detach().numpy()
    A = out["attention"].detach().numpy()
    k = out["dam_logits"].detach().numpy()
    err = np.abs(s - y_hat)
    huber = np.where(err <= delta, 0.5 * err**2, delta * (err - 0.5 * delta))

    def softmax(v):
        v = v - v.max(axis=1, keepdims=True)
        return np.exp(v) / np.exp(v).sum(axis=1, keepdims=True)

    b = softmax(k)
    theta = A.mean(axis=1)
    total = huber + beta * -np.log(b[np.arange(len(z)), z] + XI)
    if kl:
        total += (b * np.log(b / theta)).sum(axis=1)
    if distillation:
        total += gamma * -(softmax(theta / tau) * np.log(softmax(k / tau) + XI)).sum(axis=1)
    return total


@pytest.mark.parametrize(
    "kl, distillation, hard, soft, delta",
    [(True, True, 1.0, 1.0, 1.0), (False, True, 0.5, 2.0, 0.3), (True, False, 1.0, 1.0, 2.0)],
)
def test_loss_matches_the_equations(kl, distillation, hard, soft, delta):
    module = _module()
    x = torch.randn(50, 4, dtype=torch.float64)
    out = module(x, torch.zeros(50, 0, dtype=torch.long))
    rng = np.random.default_rng(0)
    s = np.abs(rng.normal(0, 2, 50))
    z = rng.integers(0, 5, 50)
    target = {"s": torch.tensor(s), "z": torch.tensor(z)}
    crit = MEANLoss(
        huber_delta=delta,
        kl=kl,
        distillation=distillation,
        hard_label_weight=hard,
        soft_label_weight=soft,
        distill_temperature=2.0,
    )
    got = crit(out, target)
    assert got.shape == (50,)
    want = _loss_by_hand(out, s, z, delta, kl, distillation, hard, soft, 2.0)
    np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-7, atol=1e-9)
    # gradients reach both branches (no stop-gradient in the alignment terms)
    got.mean().backward()
    assert module.w_a.weight.grad.abs().sum() > 0
    assert module.dam_head.weight.grad.abs().sum() > 0


def test_alignment_terms_move_the_attention_and_mvfe_only_is_huber():
    module = _module()
    x = torch.randn(20, 4, dtype=torch.float64)
    out = module(x, torch.zeros(20, 0, dtype=torch.long))
    target = {"s": torch.rand(20, dtype=torch.float64), "z": torch.randint(0, 5, (20,))}
    # without KL and soft labels the attention gets gradient only through y_hat;
    # with y_hat detached it gets none, with KL it does
    detached = dict(out, y_hat=out["y_hat"].detach())
    MEANLoss(kl=False, distillation=False)(detached, target).sum().backward(retain_graph=True)
    assert module.w_a.weight.grad is None or module.w_a.weight.grad.abs().sum() == 0
    MEANLoss(kl=True, distillation=False)(detached, target).sum().backward()
    assert module.w_a.weight.grad.abs().sum() > 0
    no_dam = {"y_hat": out["y_hat"], "attention": out["attention"]}
    torch.testing.assert_close(
        MEANLoss()(no_dam, target),
        F.huber_loss(out["y_hat"], target["s"], reduction="none", delta=1.0),
    )
    p = torch.tensor([[0.25, 0.75]])
    assert float(soft_cross_entropy(p, p)) == pytest.approx(
        -(0.25 * math.log(0.25 + XI) + 0.75 * math.log(0.75 + XI))
    )


def test_interp_matches_numpy():
    xp = torch.tensor([0.0, 1.0, 3.0], dtype=torch.float64)
    fp = torch.tensor([0.0, 2.0, 2.5], dtype=torch.float64)
    x = torch.tensor([-1.0, 0.0, 0.5, 1.0, 2.0, 3.0, 9.0], dtype=torch.float64)
    np.testing.assert_allclose(_interp(x, xp, fp).numpy(), np.interp(x, xp, fp))
    assert _interp(x, xp[:1], fp[:1]).tolist() == [0.0] * 7


# ----------------------------------------------------------------------------- estimator


@pytest.fixture(scope="module")
def toy():
    X, y = make_ltv(n_samples=2000, random_state=0)
    return X, np.asarray(y, dtype=float)


@pytest.fixture(scope="module")
def fitted(toy):
    X, y = toy
    model = MEANRegressor(**dict(FAST, max_epochs=15, learning_rate=3e-3)).fit(X, y)
    return model


def test_predict_methods_shapes_and_distributions(fitted, toy):
    X, y = toy
    assert fitted.n_buckets_ == 5
    bk = LTVBucketizer(n_buckets=5).fit(y.reshape(-1, 1))
    np.testing.assert_array_equal(fitted.bucketizer_.boundaries_, bk.boundaries_)
    b = fitted.predict_bucket_proba(X)
    assert isinstance(b, np.ndarray) and b.shape == (len(y), 5)
    np.testing.assert_allclose(b.sum(axis=1), 1.0, rtol=1e-9)
    np.testing.assert_allclose(fitted.predict_nonzero_proba(X), 1.0 - b[:, 0], rtol=1e-12)
    A = fitted.predict_attention(X[:50])
    assert A.shape == (50, 5, 5) and (A >= 0).all()
    np.testing.assert_allclose(A.sum(axis=2), 1.0, rtol=1e-6)
    pred = fitted.predict(X)
    assert pred.dtype == np.float64 and (pred >= 0).all() and np.isfinite(pred).all()


def test_dam_beats_the_majority_class_on_training_data():
    # the value range is a function of the features (plus noise): a working DAM must
    # find it; a DAM stuck at the class priors scores the majority share
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, 4))
    y = (X[:, 0] > 0.3) * np.exp(2 + 1.5 * X[:, 1] + 0.3 * rng.normal(size=3000))
    model = MEANRegressor(**dict(FAST, max_epochs=15, learning_rate=3e-3)).fit(X, y)
    z = model.bucketizer_.transform(y.reshape(-1, 1)).ravel()
    acc = (model.predict_bucket_proba(X).argmax(axis=1) == z).mean()
    majority = np.bincount(z).max() / len(z)
    assert acc > majority + 0.1, (acc, majority)


def test_isotonic_correction_is_calibrated_monotone_and_bounded(fitted, toy):
    X, y = toy
    pred = fitted.predict(X)
    # an isotonic fit reproduces the training mean exactly (pool-adjacent-violators);
    # the tie-break adds at most 1e-4 of the mean
    assert pred.mean() == pytest.approx(y.mean(), rel=2e-4)
    s_hat = fitted._forward_outputs(X, fitted._scaled_prediction)
    order = np.argsort(s_hat, kind="stable")
    assert (np.diff(pred[order]) >= 0).all()  # the network's ranking is kept
    strict = np.diff(s_hat[order]) > 0
    assert (np.diff(pred[order])[strict] > 0).all()  # ... and ties are broken by it
    iso = IsotonicRegression(y_min=0, out_of_bounds="clip").fit(s_hat, y)
    np.testing.assert_allclose(pred, iso.predict(s_hat), rtol=0, atol=2e-4 * y.mean())
    assert pred.max() <= y.max() * (1 + 1e-4)


@pytest.mark.parametrize("transform", ["linear", "log1p", "sqrt", "none"])
def test_label_transforms_invert_and_uncorrected_prediction_is_the_inverse(toy, transform):
    X, y = toy
    model = MEANRegressor(**FAST, label_transform=transform, bias_correction="none").fit(X, y)
    cap = np.quantile(y[y > 0], 0.99, method="inverted_cdf")
    assert model.label_cap_ == cap and cap < y.max()  # the top 1% of spenders is truncated
    s_hat = model._forward_outputs(X, lambda out: out["y_hat"].double())
    clipped = np.clip(s_hat, 0, model.label_max_)
    inverse = {
        "linear": lambda c: c * cap / 20.0,
        "log1p": np.expm1,
        "sqrt": np.square,
        "none": lambda c: c,
    }[transform](clipped)
    np.testing.assert_allclose(model.predict(X), inverse, rtol=1e-12)
    expected_max = {"linear": 20.0, "log1p": np.log1p(cap), "sqrt": np.sqrt(cap)}
    assert model.label_max_ == pytest.approx(expected_max.get(transform, cap))


@pytest.mark.parametrize("q", [0.5, 0.99, 1.0])
def test_label_cap_truncates_the_training_target(toy, q):
    _, y = toy
    model = MEANRegressor(**FAST, label_cap_quantile=q)
    prepared = model.set_params(label_transform="linear")._prepare_targets(y, None)
    targets = prepared.targets
    cap = y.max() if q == 1.0 else np.quantile(y[y > 0], q, method="inverted_cdf")
    assert model.label_cap_ == cap
    np.testing.assert_allclose(targets["s"], 20.0 * np.minimum(y, cap) / cap, rtol=1e-12)
    assert targets["s"].max() == pytest.approx(20.0)
    # integer weights truncate at the cap of the repeated rows
    w = np.where(np.arange(len(y)) % 3 == 0, 3.0, 1.0)
    model._prepare_targets(y, w)
    repeated = np.repeat(y, w.astype(int))
    assert model.label_cap_ == np.quantile(repeated[repeated > 0], q, method="inverted_cdf")


def test_balance_and_smearing_corrections(toy):
    X, y = toy
    base = dict(FAST, label_transform="log1p", early_stopping=False)
    model = MEANRegressor(**base, bias_correction="balance").fit(X, y)
    assert model.bias_correction_["kind"] == "balance"
    # balance: the predicted training total is the observed total
    pred = model.predict(X)
    assert pred.sum() == pytest.approx(y.sum(), rel=1e-9)
    # predictions follow what was fitted, not a hyperparameter changed afterwards
    model.set_params(bias_correction="none", label_transform="sqrt")
    np.testing.assert_array_equal(model.predict(X), pred)
    smear = MEANRegressor(**base, bias_correction="smearing").fit(X, y)
    s_hat = smear._forward_outputs(X, smear._scaled_prediction)
    # Duan's smearing factor, on the residuals of the truncated training target
    factor = np.mean(np.exp(np.log1p(np.minimum(y, smear.label_cap_)) - s_hat))
    assert smear.bias_correction_["factor"] == pytest.approx(factor, rel=1e-9)
    np.testing.assert_allclose(
        smear.predict(X[:20]), np.clip(np.exp(s_hat[:20]) * factor - 1, 0, None), rtol=1e-9
    )


def test_predictions_stay_bounded_on_extreme_inputs(fitted, toy):
    X, y = toy
    extreme = X.iloc[:2].copy()
    num = extreme.select_dtypes("number").columns
    extreme.loc[extreme.index[0], num] = 1e12
    extreme.loc[extreme.index[1], num] = np.nan
    pred = fitted.predict(extreme)
    assert np.isfinite(pred).all() and (pred >= 0).all()
    assert pred.max() <= y.max() * (1 + 1e-4)


def test_ablation_switches(toy):
    X, y = toy
    mvfe = MEANRegressor(**FAST, dam=False).fit(X, y)
    assert not hasattr(mvfe, "predict_nonzero_proba")
    assert not hasattr(mvfe, "predict_bucket_proba")
    assert not hasattr(mvfe.net_.module_, "dam_mlp")
    assert mvfe.predict(X).shape == (len(y),)
    assert mvfe.predict_attention(X[:3]).shape == (3, 5, 5)
    preds = {}
    for kl, dist in [(True, True), (False, True), (True, False)]:
        model = MEANRegressor(**FAST, kl=kl, distillation=dist)
        crit = model.fit(X, y).net_.criterion_
        assert (crit.kl, crit.distillation) == (kl, dist)
        preds[kl, dist] = model.predict(X)
    # the alignment terms change the fitted regression head
    assert not np.allclose(preds[True, True], preds[False, True])
    assert not np.allclose(preds[True, True], preds[True, False])


def test_boundaries_and_merged_ranges(toy):
    X, y = toy
    model = MEANRegressor(**FAST, boundaries=[10.0, 100.0]).fit(X, y)
    assert model.n_buckets_ == 4
    assert model.predict_bucket_proba(X[:3]).shape == (3, 4)
    # few distinct positive values: tied quantile cuts are merged, with a warning
    y_tied = np.where(y > 0, 5.0, 0.0)
    y_tied[:3] = [1.0, 2.0, 3.0]
    with pytest.warns(BucketMergeWarning, match=r"buckets instead of n_buckets=5"):
        tied = MEANRegressor(**FAST).fit(X, y_tied)
    assert tied.n_buckets_ < 5
    assert np.isfinite(tied.predict(X)).all()


def test_weighted_ranges_equal_the_ranges_of_repeated_rows(toy):
    _, y = toy
    rng = np.random.default_rng(0)
    w = rng.integers(0, 4, len(y)).astype(float)
    model = MEANRegressor(**FAST)
    model._prepare_targets(y, w)
    repeated = LTVBucketizer(n_buckets=5).fit(np.repeat(y, w.astype(int)).reshape(-1, 1))
    np.testing.assert_array_equal(model.bucketizer_.boundaries_, repeated.boundaries_)
    # rows of weight 0 do not set the label range
    w[np.argmax(y)] = 0.0
    model.set_params(label_cap_quantile=1.0)._prepare_targets(y, w)
    assert model.label_cap_ == y[w > 0].max() < y.max()


@pytest.mark.parametrize(
    "param, value, match",
    [
        ("n_buckets", 1, "n_buckets must be an integer >= 2"),
        ("n_experts", 0, "n_experts must be an integer >= 1"),
        ("expert_units", (), r"expert_units must be a tuple of positive ints \(at least one\)"),
        ("dam_units", (4, 0), "dam_units must be a tuple of positive ints"),
        ("huber_delta", 0.0, "huber_delta must be a number > 0"),
        ("distill_temperature", -1.0, "distill_temperature must be a number > 0"),
        ("soft_label_weight", float("nan"), "soft_label_weight must be a number >= 0"),
        ("hard_label_weight", -0.5, "hard_label_weight must be a number >= 0"),
        ("kl", "yes", "kl must be True or False"),
        ("label_transform", "log", "label_transform must be one of"),
        ("label_cap_quantile", 0.0, r"label_cap_quantile must be a number in \(0, 1\]"),
        ("label_cap_quantile", 1.5, r"label_cap_quantile must be a number in \(0, 1\]"),
        ("bias_correction", "duan", "bias_correction must be one of"),
        ("bias_correction", "mean", "bias_correction must be one of"),
        ("boundaries", [5.0, 1.0], "boundaries must be a strictly increasing sequence"),
        ("boundaries", [0.0, 1.0], r"boundaries must be .* numbers > 1e-06"),
        ("boundaries", "abc", "boundaries must be a strictly increasing sequence"),
    ],
)
def test_bad_hyperparameters_raise_value_error(toy, param, value, match):
    X, y = toy
    # the message names the estimator and the parameter, then what it must be
    with pytest.raises(ValueError, match=f"^ltvkit: MEANRegressor: {match}"):
        MEANRegressor(**dict(FAST, **{param: value})).fit(X[:100], y[:100])


def test_boundaries_accept_any_1d_array_like(toy):
    X, y = toy
    for boundaries in ([10.0, 100.0], (10, 100), np.array([10.0, 100.0])):
        model = MEANRegressor(**dict(FAST, max_epochs=1), boundaries=boundaries)
        assert model.fit(X[:200], y[:200]).n_buckets_ == 4


def test_hooks_hand_nothing_over_through_private_attributes(fitted):
    # the label-derived starting values travel in PreparedTargets.info, not on self
    private = [k for k in vars(fitted) if k.startswith("_") and not k.startswith("__")]
    assert private == [], private
    assert not any(k.startswith("_init") for k in vars(fitted))


def test_sample_weights_deterministic_and_pickle(toy):
    X, y = toy
    Xs, ys = X[:600], y[:600]
    a = MEANRegressor(**FAST).fit(Xs, ys).predict(Xs)
    b = MEANRegressor(**FAST).fit(Xs, ys, sample_weight=np.ones(600)).predict(Xs)
    np.testing.assert_array_equal(a, b)
    w = np.where(ys > 0, 5.0, 1.0)
    weighted = MEANRegressor(**FAST).fit(Xs, ys, sample_weight=w)
    assert not np.allclose(weighted.predict(Xs), a)
    restored = pickle.loads(pickle.dumps(weighted))
    np.testing.assert_array_equal(restored.predict(Xs), weighted.predict(Xs))


def test_weighted_ranges_are_the_bucketizers_weighted_cuts(toy):
    X, y = toy
    Xs, ys = X[:600], y[:600]
    w = np.random.default_rng(0).integers(0, 4, 600).astype(float)
    weighted = MEANRegressor(**dict(FAST, max_epochs=1)).fit(Xs, ys, sample_weight=w)
    want = LTVBucketizer(n_buckets=5).fit(ys.reshape(-1, 1), sample_weight=w)
    assert weighted.bucketizer_.get_params() == want.get_params()
    np.testing.assert_array_equal(weighted.bucketizer_.boundaries_, want.boundaries_)
    # integer weights: the ranges of the repeated rows
    rep = np.repeat(np.arange(600), w.astype(int))
    repeated = MEANRegressor(**dict(FAST, max_epochs=1)).fit(Xs.iloc[rep], ys[rep])
    np.testing.assert_array_equal(
        weighted.bucketizer_.boundaries_, repeated.bucketizer_.boundaries_
    )
    assert weighted.n_buckets_ == repeated.n_buckets_


# ----------------------------------------------------------------------------- real data


@pytest.mark.slow
def test_cdnow_gini_beats_ranking_by_calibration_spend():
    """The issue's CDNOW claim, at the defaults except a narrower network.

    Every MEAN hyperparameter at its default (the paper's truncated linear label
    scaling, ``label_transform="linear"``, ``label_cap_quantile=0.99``) except the widths
    (``hidden_units=(64, 32)``, 32-wide experts and DAM: the paper's are up to 8x wider
    and rank the same within the seed noise, docs/models/mean.md) and at most 25 epochs
    (about 5 s a fit). The ``log1p`` scaling ranks worse on this zero-heavy data
    (Gini 0.708 vs 0.715 for spend over 3 seeds at the defaults, documented); it is
    asserted to rank below the default here, so the documented reason for the default
    stays true.
    """
    from ltvkit.datasets import load_cdnow
    from ltvkit.metrics import normalized_gini

    X, y = load_cdnow()
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0)
    small = dict(
        hidden_units=(64, 32), expert_units=(32,), dam_units=(32,), max_epochs=25, random_state=0
    )
    spend = normalized_gini(y_te, X_te["monetary_total"])
    gini = normalized_gini(y_te, MEANRegressor(**small).fit(X_tr, y_tr).predict(X_te))
    assert gini > spend + 0.005, (gini, spend)
    log1p = MEANRegressor(**small, label_transform="log1p").fit(X_tr, y_tr)
    assert normalized_gini(y_te, log1p.predict(X_te)) < gini


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
    model = MEANRegressor(
        hidden_units=(64, 32), expert_units=(32,), dam_units=(32,), max_epochs=25, random_state=0
    ).fit(X_tr, y_tr)
    pred = model.predict(X_te)
    assert np.isfinite(pred).all() and (pred >= 0).all()
    assert pred.max() <= y_tr.max() * (1 + 1e-4)
    p = model.predict_nonzero_proba(X_te)
    assert ((p >= 0) & (p <= 1)).all()
