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


def _module(n=5, m=3, d=6, dam=True, seed=0, dam_input="separate", **kwargs):
    torch.manual_seed(seed)
    spec = EncodedSpec(4, (), (), ("a", "b", "c", "d"), ())
    separate = dam and dam_input == "separate"
    return MEANModule(
        SharedBottom(spec, (8,)),
        SharedBottom(spec, (8,)) if separate else None,
        n_buckets=n,
        n_experts=m,
        expert_units=(d,),
        dam_units=(5,),
        dam_input=dam_input if dam else None,
        **kwargs,
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
            w_q, w_k, w_a = module.w_q[0], module.w_k[0], module.w_a[0]
            g = torch.tanh(w_q.weight @ tokens[t] + w_k.weight @ tokens[t] + w_k.bias)
            rows.append(torch.softmax(w_a.weight @ g + w_a.bias, dim=-1))
        A = torch.stack(rows)
        torch.testing.assert_close(out["attention"][0][b], A)
        e = sum((A @ tokens)[i] for i in range(n)) / n  # eq. 6
        y_hat = module.output[0].weight @ e + module.output[0].bias  # eq. 7, no activation
        torch.testing.assert_close(out["y_hat"][b, 0], y_hat[0])
    # attention rows and theta are distributions
    attention = out["attention"][0]
    torch.testing.assert_close(attention.sum(-1), torch.ones(6, n, dtype=torch.float64))
    theta = attention.mean(1)
    assert bool((theta > 0).all())
    torch.testing.assert_close(theta.sum(-1), torch.ones(6, dtype=torch.float64))
    assert out["y_hat"].shape == (6, 1) and out["dam_logits"][0].shape == (6, n)
    assert "dam_logits" not in _module(dam=False)(x, cat)


def _loss_by_hand(out, s, z, delta, kl, distillation, beta, gamma, tau):
    """Eqs. 8 and 12-17 written out in float64 numpy."""
    y_hat = out["y_hat"][:, 0].detach().numpy()
    A = out["attention"][0].detach().numpy()
    k = out["dam_logits"][0].detach().numpy()
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
    assert module.w_a[0].weight.grad.abs().sum() > 0
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
    assert module.w_a[0].weight.grad is None or module.w_a[0].weight.grad.abs().sum() == 0
    MEANLoss(kl=True, distillation=False)(detached, target).sum().backward()
    assert module.w_a[0].weight.grad.abs().sum() > 0
    no_dam = {"y_hat": out["y_hat"], "attention": out["attention"]}
    torch.testing.assert_close(
        MEANLoss()(no_dam, target),
        F.huber_loss(out["y_hat"][:, 0], target["s"], reduction="none", delta=1.0),
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
    s_hat = fitted._forward_outputs(X, fitted._scaled_prediction)[:, 0]
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
    s_hat = model._forward_outputs(X, lambda out: out["y_hat"][:, 0].double())
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
    assert targets["s"].shape == (len(y), 1) and targets["z"].shape == (len(y), 1)
    np.testing.assert_allclose(targets["s"][:, 0], 20.0 * np.minimum(y, cap) / cap, rtol=1e-12)
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
    s_hat = smear._forward_outputs(X, smear._scaled_prediction)[:, 0]
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
    assert not hasattr(mvfe, "predict_bucket_proba")
    assert not hasattr(mvfe.net_.module_, "dam_mlp")
    assert mvfe.predict(X).shape == (len(y),)
    assert mvfe.predict_attention(X[:3]).shape == (3, 5, 5)
    # without a DAM, P(y > 0) is the isotonic regression of 1(y > 0) on the MVFE's score
    s_hat = mvfe._forward_outputs(X, mvfe._scaled_prediction)[:, 0]
    iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(s_hat, y > 0)
    np.testing.assert_allclose(mvfe.predict_nonzero_proba(X), iso.predict(s_hat), atol=1e-12)
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


# ----------------------------------------------------------------------------- readings


def test_expert_batch_norm_normalises_each_expert_and_survives_one_row_batches():
    module = _module(expert_batch_norm=True)
    x = torch.randn(64, 4, dtype=torch.float64)
    cat = torch.zeros(64, 0, dtype=torch.long)
    module.train()
    h = module.bottom(x, cat)
    normed = module.expert_norm(module.experts(h).flatten(1)).view(64, 3, 6)
    # batch statistics per expert and feature: mean 0, variance 1 (affine at its init)
    torch.testing.assert_close(normed.mean(0), torch.zeros(3, 6, dtype=torch.float64))
    assert module(x[:1], cat[:1])["y_hat"].shape == (1, 1)  # a 1-row batch: no error
    assert _module().expert_norm is None
    # a training set whose last batch has one row trains; eval mode uses running
    # statistics, so a customer's prediction does not depend on the other rows
    rng = np.random.default_rng(0)
    X = rng.normal(size=(129, 3))
    y = (rng.random(129) < 0.5) * np.exp(X[:, 0] + 2)
    model = MEANRegressor(**dict(FAST, early_stopping=False), expert_batch_norm=True).fit(X, y)
    assert isinstance(model.net_.module_.expert_norm, torch.nn.BatchNorm1d)
    np.testing.assert_array_equal(model.predict(X[:5]), model.predict(X)[:5])


def test_dam_input_shared_reads_the_mvfe_shared_layer():
    shared = _module(dam_input="shared")
    assert shared.dam_bottom is None
    assert shared.dam_mlp[0].in_features == shared.bottom.out_features
    x = torch.randn(10, 4, dtype=torch.float64)
    out = shared(x, torch.zeros(10, 0, dtype=torch.long))
    # the DAM's bucket loss alone trains the shared layer (not so with its own layer)
    F.cross_entropy(out["dam_logits"][0], torch.zeros(10, dtype=torch.long)).backward()
    assert shared.bottom.mlp[0].weight.grad.abs().sum() > 0
    separate = _module(dam_input="separate")
    out = separate(x, torch.zeros(10, 0, dtype=torch.long))
    F.cross_entropy(out["dam_logits"][0], torch.zeros(10, dtype=torch.long)).backward()
    assert separate.bottom.mlp[0].weight.grad is None
    assert separate.dam_bottom.mlp[0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="dam_bottom"):
        MEANModule(
            separate.bottom,
            separate.bottom,
            n_buckets=3,
            n_experts=2,
            expert_units=(4,),
            dam_units=(),
            dam_input="shared",
        )
    X, y = make_ltv(n_samples=300, random_state=1)
    model = MEANRegressor(**FAST, dam_input="shared").fit(X, y)
    assert model.net_.module_.dam_bottom is None
    assert model.predict_bucket_proba(X[:4]).shape == (4, 5)


# ----------------------------------------------------------------------------- horizons


@pytest.fixture(scope="module")
def horizons():
    X, Y = make_ltv(n_samples=1500, n_horizons=3, random_state=0)
    return X, np.asarray(Y, dtype=float)


@pytest.fixture(scope="module")
def fitted_horizons(horizons):
    X, Y = horizons
    return MEANRegressor(**dict(FAST, max_epochs=8, learning_rate=3e-3)).fit(X, Y)


def test_multi_horizon_target_gives_one_monotone_output_per_horizon(fitted_horizons, horizons):
    X, Y = horizons
    model = fitted_horizons
    assert model.n_horizons_ == 3 and model.target_ndim_ == 2
    pred = model.predict(X)
    assert pred.shape == (len(X), 3) and pred.dtype == np.float64
    assert (np.diff(pred, axis=1) >= 0).all()  # every customer, every horizon
    # the enforced step is a running maximum of the per-horizon expected values
    raw = model._forward_outputs(X, model._raw_prediction)
    np.testing.assert_array_equal(pred, np.maximum.accumulate(raw, axis=1))
    assert model.monotonic_violation_rate(X) == pytest.approx(
        np.mean((np.diff(raw, axis=1) < -1e-9 * np.maximum(raw[:, :-1], 1)).any(axis=1))
    )
    assert 0.0 <= model.train_violation_rate_ <= 1.0
    # one network: per horizon its own buckets, scaling, heads and correction
    module = model.net_.module_
    assert len(module.output) == len(module.w_a) == 3 and module.experts.n_networks == 5
    assert len(model.bucketizers_) == 3 and model.bucketizer_ is model.bucketizers_[-1]
    for t in range(3):
        want = LTVBucketizer(n_buckets=5).fit(Y[:, [t]])
        np.testing.assert_array_equal(model.bucketizers_[t].boundaries_, want.boundaries_)
        cap = np.quantile(Y[Y[:, t] > 0, t], 0.99, method="inverted_cdf")
        assert model.label_cap_[t] == cap
        assert model.predict_bucket_proba(X[:3], horizon=t).shape == (3, 5)
    assert isinstance(model.bias_correction_, list) and len(model.bias_correction_) == 3
    # isotonic per horizon: each horizon's training mean is matched (before the max)
    np.testing.assert_allclose(raw.mean(axis=0), Y.mean(axis=0), rtol=2e-4)
    with pytest.raises(ValueError, match="horizon must be an integer"):
        model.predict_bucket_proba(X[:3], horizon=3)


def test_running_maximum_repairs_decreasing_raw_outputs(fitted_horizons):
    model = fitted_horizons
    # a hand-made network output that decreases along the horizons
    out = {"y_hat": torch.tensor([[20.0, 10.0, 0.0], [0.0, 5.0, 1.0]])}
    raw = model._raw_prediction(out)
    assert (raw[:, 1:] < raw[:, :-1]).any()
    pred = model._output_to_prediction(out)
    torch.testing.assert_close(pred, torch.cummax(raw, dim=1).values)
    assert bool((pred[:, 1:] >= pred[:, :-1]).all())


def test_one_horizon_as_1d_or_2d_y_is_the_same_model(toy):
    X, y = toy
    Xs, ys = X[:500], y[:500]
    one = MEANRegressor(**FAST).fit(Xs, ys)
    col = MEANRegressor(**FAST).fit(Xs, ys.reshape(-1, 1))
    assert one.predict(Xs).shape == (500,) and col.predict(Xs).shape == (500, 1)
    np.testing.assert_array_equal(one.predict(Xs), col.predict(Xs)[:, 0])
    np.testing.assert_array_equal(
        one.predict_quantiles(Xs, [0.5, 0.9]), col.predict_quantiles(Xs, [0.5, 0.9])[:, 0]
    )
    assert isinstance(one.label_cap_, float) and col.label_cap_.shape == (1,)


def test_multi_horizon_target_must_be_cumulative(horizons):
    X, Y = horizons
    bad = Y.copy()
    bad[0] = [5.0, 3.0, 7.0]
    with pytest.raises(ValueError, match="decreases along the horizons"):
        MEANRegressor(**FAST).fit(X, bad)


# ----------------------------------------------------------------------------- quantiles


def _quantiles_by_hand(proba, grid, tau):
    """The level-tau quantile of sum_k proba_k * (bucket k's within-bucket distribution)."""
    cum = np.cumsum(proba)
    k = int(np.searchsorted(cum / cum[-1], tau))
    k = min(k, len(proba) - 1)
    if k == 0:
        return 0.0
    frac = np.clip((tau - (cum[k - 1] / cum[-1])) / (proba[k] / cum[-1]), 0, 1)
    return float(np.interp(frac, np.linspace(0, 1, grid.shape[1]), grid[k]))


def test_quantiles_are_the_dam_mixture_with_within_bucket_labels(fitted, toy):
    X, y = toy
    z = fitted.bucketizer_.transform(y.reshape(-1, 1)).ravel()
    grid = fitted.within_bucket_quantiles_[0]
    assert grid.shape == (5, 101) and (grid[0] == 0).all()
    for k in range(1, 5):  # the training labels' quantiles inside each bucket
        want = np.quantile(y[z == k], np.linspace(0, 1, 101), method="inverted_cdf")
        np.testing.assert_array_equal(grid[k], want)
    levels = [0.0, 0.2, 0.5, 0.7, 0.9, 0.95, 1.0]
    Q = fitted.predict_quantiles(X[:40], levels)
    b = fitted.predict_bucket_proba(X[:40])
    for i in range(40):
        for j, tau in enumerate(levels):
            assert Q[i, j] == pytest.approx(_quantiles_by_hand(b[i], grid, tau), rel=1e-9)
    # level 1 is the largest training label: finite support
    np.testing.assert_allclose(fitted.predict_quantiles(X[:40], 1.0), y.max())
    # the point mass at zero is the DAM's zero bucket
    p0 = 1 - fitted.predict_nonzero_proba(X[:40])
    np.testing.assert_allclose(p0, b[:, 0], rtol=1e-12)


def test_quantiles_without_dam_use_score_based_buckets(toy):
    X, y = toy
    model = MEANRegressor(**FAST, dam=False).fit(X, y)
    Q = model.predict_quantiles(X, [0.1, 0.5, 0.9, 0.99])
    p0 = 1 - model.predict_nonzero_proba(X)
    assert ((Q[:, 0] == 0) == (0.1 <= p0 + 1e-12)).all()
    assert (np.diff(Q, axis=1) >= 0).all() and np.isfinite(Q).all()
    # higher score, stochastically larger: the 0.9-quantile follows the ranking
    s_hat = model._forward_outputs(X, model._scaled_prediction)[:, 0]
    order = np.argsort(s_hat, kind="stable")
    assert (np.diff(Q[order, 2]) >= -1e-9).all()


def test_multi_horizon_quantiles_and_nonzero_proba_are_coherent(fitted_horizons, horizons):
    X, _ = horizons
    model = fitted_horizons
    Q = model.predict_quantiles(X, [0.3, 0.6, 0.9])
    assert Q.shape == (len(X), 3, 3)
    assert (np.diff(Q, axis=1) >= 0).all() and (np.diff(Q, axis=2) >= 0).all()
    p = np.column_stack([1 - model.predict_bucket_proba(X, horizon=t)[:, 0] for t in range(3)])
    # spending by an earlier horizon is spending by the later ones: a running maximum
    np.testing.assert_allclose(model.predict_nonzero_proba(X), p.max(axis=1), rtol=1e-12)
    assert model.predict_quantiles(X, 0.5).shape == (len(X), 3)


def test_one_dimensional_target_in_pipeline_gridsearch_and_cross_validate():
    # the common contract test skips multi-horizon models here (ltvkit's scorers are
    # for 1-D targets); MEAN also takes a 1-D y, so this path is tested here
    from sklearn.model_selection import GridSearchCV, KFold, cross_validate
    from sklearn.pipeline import Pipeline

    from ltvkit.metrics import get_scorer

    X, y = make_ltv(n_samples=400, n_features=5, n_categorical=2, random_state=0)
    # tests/test_common.py's fast configuration (an undertrained network can rank
    # backwards on this tiny table)
    common = dict(FAST, max_epochs=10, batch_size=64, learning_rate=1e-2)
    pipe = Pipeline([("model", MEANRegressor(**common))])
    scoring = {"gini": get_scorer("normalized_gini"), "r2": "r2"}
    cv = KFold(2, shuffle=True, random_state=0)
    grid = GridSearchCV(
        pipe, {"model__learning_rate": [3e-3, 1e-2]}, scoring=scoring, refit="gini", cv=cv
    ).fit(X, y)
    assert np.isfinite(grid.best_score_) and grid.predict(X).shape == (400,)
    res = cross_validate(pipe, X, y, scoring=scoring, cv=cv)
    assert np.isfinite(res["test_gini"]).all() and res["test_gini"].mean() > 0


@pytest.mark.slow
def test_cdnow_three_horizons_are_monotone_and_the_longest_beats_past_spend():
    """The issue's done-criterion, in a fast configuration.

    ``load_cdnow(horizons_weeks=(13, 26, 39))``, the fixed split, one network for the
    three horizons at MEAN's defaults except the narrow widths of the 1-D test above
    (about 4x less training time). Every test customer's predictions must be
    non-decreasing along the horizons, and the 39-week column must rank better than past
    spend by normalized Gini. ``benchmarks/quality_mean_horizons.py`` reports 3 seeds,
    at the paper's sizes and (``--size small``) at these; fewer epochs than the default
    30 do not make it (20 epochs: Gini 0.704-0.712 against 0.715, documented).
    """
    from ltvkit.datasets import load_cdnow
    from ltvkit.metrics import normalized_gini

    X, Y = load_cdnow(horizons_weeks=(13, 26, 39))
    X_tr, X_te, Y_tr, Y_te = train_test_split(X, Y.to_numpy(), test_size=0.3, random_state=0)
    model = MEANRegressor(
        hidden_units=(64, 32), expert_units=(32,), dam_units=(32,), random_state=0
    ).fit(X_tr, Y_tr)
    pred = model.predict(X_te)
    assert pred.shape == (len(X_te), 3)
    assert (np.diff(pred, axis=1) >= 0).all()  # zero monotonicity violations
    spend = normalized_gini(Y_te[:, 2], X_te["monetary_total"])
    gini = normalized_gini(Y_te[:, 2], pred[:, 2])
    assert gini > spend + 0.005, (gini, spend)
    Q = model.predict_quantiles(X_te, [0.5, 0.9])
    assert Q.shape == (len(X_te), 3, 2) and (np.diff(Q, axis=1) >= 0).all()


def test_bucket_temperature_maximises_the_training_likelihood(fitted, toy):
    X, y = toy
    T = fitted.bucket_temperature_
    assert isinstance(T, float) and 0.05 < T < 20
    logits = torch.from_numpy(fitted._forward_outputs(X, lambda o: o["dam_logits"][0].double()))
    z = torch.from_numpy(fitted.bucketizer_.transform(y.reshape(-1, 1)).ravel().astype(np.int64))

    def nll(t):
        return float(F.cross_entropy(logits / t, z))

    assert nll(T) <= min(nll(1.0), nll(0.9 * T), nll(1.1 * T)) + 1e-7
    np.testing.assert_allclose(
        fitted.predict_bucket_proba(X), torch.softmax(logits / T, -1).numpy(), rtol=1e-12
    )
    raw = MEANRegressor(**dict(FAST, max_epochs=15, learning_rate=3e-3), bucket_calibration="none")
    raw.fit(X, y)
    assert raw.bucket_temperature_ == 1.0
    # the calibration is read after training: the network and predict are unchanged
    np.testing.assert_array_equal(raw.predict(X), fitted.predict(X))
    logits_raw = raw._forward_outputs(X, lambda o: o["dam_logits"][0].double())
    np.testing.assert_array_equal(
        raw.predict_bucket_proba(X), torch.softmax(torch.from_numpy(logits_raw), -1).numpy()
    )


@pytest.mark.parametrize("dam", [True, False])
@pytest.mark.parametrize("n_horizons", [1, 3])
def test_predict_quantiles_contract_with_and_without_dam(dam, n_horizons):
    """tests/test_common.py's shared quantile contract, for both DAM settings and targets."""
    X, y = make_ltv(
        n_samples=400,
        n_features=5,
        n_categorical=2,
        n_horizons=n_horizons,
        random_state=0,
    )
    y = np.asarray(y, dtype=float)
    levels = [0.0, 0.05, 0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99]
    model = MEANRegressor(**dict(FAST, max_epochs=10, batch_size=64), dam=dam).fit(X, y)
    assert hasattr(model, "predict_bucket_proba") == dam
    Q = model.predict_quantiles(X, levels)
    horizons = y.shape[1:]
    assert Q.shape == (len(X), *horizons, len(levels))
    assert Q.dtype == np.float64 and np.isfinite(Q).all() and (Q >= 0).all()
    assert (np.diff(Q, axis=-1) >= 0).all()
    np.testing.assert_array_equal(model.predict_quantiles(X, 0.5), Q[..., levels.index(0.5)])
    p_nonzero = model.predict_nonzero_proba(X)
    assert p_nonzero.shape == (len(X),) and ((p_nonzero >= 0) & (p_nonzero <= 1)).all()
    # the point mass at zero, exactly, on the longest horizon
    last = Q[:, -1, :] if Q.ndim == 3 else Q
    p_zero = 1.0 - p_nonzero
    below = np.asarray(levels)[None, :] <= p_zero[:, None] - 1e-9
    above = np.asarray(levels)[None, :] >= p_zero[:, None] + 1e-9
    assert below.any() and above.any()  # the check is not vacuous
    assert (last[below] == 0).all() and (last[above] > 0).all()
    top = model.predict_quantiles(X, 1.0)
    assert np.isfinite(top).all() and (top >= Q[..., -1]).all()
    for bad in ([0.5, 1.5], [-0.1], [], [[0.5]], "0.5", [np.nan]):
        with pytest.raises(ValueError, match="quantiles"):
            model.predict_quantiles(X, bad)


@pytest.mark.parametrize("n_horizons", [1, 3])
def test_epoch_scoring_scores_the_model_predict_gives(n_horizons):
    """skorch's EpochScoring in training sees the estimator's own predict (the
    retransformation refitted each epoch), not the uncorrected scaled output."""
    from skorch.callbacks import EpochScoring

    from ltvkit.metrics import get_scorer, nmae

    X, y = make_ltv(
        n_samples=400,
        n_features=5,
        n_categorical=2,
        n_horizons=n_horizons,
        random_state=1,
    )
    y = np.asarray(y, dtype=float)
    scoring = EpochScoring(
        get_scorer("neg_nmae"), lower_is_better=False, name="mae", use_caching=True
    )
    params = dict(FAST, max_epochs=3, batch_size=64, early_stopping=False)
    model = MEANRegressor(**params, callbacks=[scoring])
    model.fit(X[:300], y[:300], validation_data=(X[300:], y[300:]))
    y_val, pred = y[300:], model.predict(X[300:])
    if n_horizons > 1:
        y_val, pred = y_val[:, -1], pred[:, -1]
    # a value metric, not only a ranking one: the same function of the same weights
    mae = -model.net_.history[-1, "mae"]
    assert mae == pytest.approx(nmae(y_val, pred), rel=1e-9)
    # the uncorrected value would score differently (the check can fail)
    raw = MEANRegressor(**params, bias_correction="none").fit(X[:300], y[:300])
    assert not np.allclose(raw.predict(X[300:]), model.predict(X[300:]))
    # nothing from training is kept, and a refit does not read the previous correction
    assert "_epoch_bias_correction" not in model.__dict__
    assert dict(model.net_.callbacks_)["epoch_bias_correction"].estimator is None
    model.fit(X[:300], 3 * y[:300], validation_data=(X[300:], 3 * y[300:]))
    fresh = MEANRegressor(**params, callbacks=[scoring])
    fresh.fit(X[:300], 3 * y[:300], validation_data=(X[300:], 3 * y[300:]))
    np.testing.assert_allclose(model.net_.history[:, "mae"], fresh.net_.history[:, "mae"])
