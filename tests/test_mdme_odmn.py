"""MDMERegressor and ODMNRegressor (Li et al., CIKM 2022) and their torch pieces."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.model_selection import train_test_split

from ltvkit.datasets import make_ltv
from ltvkit.nn import MDMELoss, MDMERegressor, ODMNRegressor
from ltvkit.nn._mdme import MDMEHead, MonoUnit, ordinal_class_proba, ordinal_loss

FAST = dict(hidden_units=(16,), tower_units=(8,), max_epochs=3, batch_size=256, random_state=0)


@pytest.fixture(scope="module")
def multi_data():
    X, Y = make_ltv(n_samples=3000, n_features=6, n_categorical=2, n_horizons=4, random_state=0)
    return X, np.asarray(Y, dtype=float)


@pytest.fixture(scope="module")
def fitted_mdme(multi_data):
    X, Y = multi_data
    model = MDMERegressor(**dict(FAST, max_epochs=8)).fit(X, Y[:, -1])
    return model, X, Y[:, -1]


# ----------------------------------------------------------------------------- losses


def test_ordinal_loss_is_eq9_sum_of_threshold_bces():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 4))
    labels = rng.integers(0, 5, size=50)
    p = 1 / (1 + np.exp(-logits))
    u = np.arange(4)
    want = -np.where(u[None] < labels[:, None], np.log(p), np.log(1 - p)).sum(1)
    got = ordinal_loss(torch.tensor(logits), torch.tensor(labels), torch.tensor(4))
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10)
    # padded thresholds (beyond n_valid) do not count
    padded = torch.cat([torch.tensor(logits), torch.full((50, 2), 3.0, dtype=torch.float64)], 1)
    np.testing.assert_allclose(
        ordinal_loss(padded, torch.tensor(labels), torch.tensor(4)).numpy(), want, rtol=1e-10
    )


def test_ordinal_soft_label_is_a_distribution_consistent_with_the_thresholds():
    rng = np.random.default_rng(1)
    logits = torch.tensor(rng.normal(size=(200, 5)) * 3)
    n_valid = torch.tensor(rng.integers(0, 6, size=200))
    proba = ordinal_class_proba(logits, n_valid)
    assert proba.shape == (200, 6)
    assert bool((proba >= 0).all())
    np.testing.assert_allclose(proba.sum(1).numpy(), 1.0, rtol=1e-12)
    # classes beyond the real ones get nothing; with consistent (decreasing) thresholds
    # P(class > u) is recovered exactly
    assert bool((proba[torch.arange(6)[None] > n_valid[:, None]] == 0).all())
    mono = torch.tensor([[2.0, 0.5, -1.0]])
    p = ordinal_class_proba(mono, torch.tensor(3))
    np.testing.assert_allclose(
        (1 - p.cumsum(1))[0, :3].numpy(), torch.sigmoid(mono)[0].numpy(), rtol=1e-6
    )


def _toy_head(mono=False, T=1):
    # 3 sub-distributions: zero (1 bucket), body (3 buckets), tail (2 buckets)
    lower = np.zeros((T, 3, 3))
    width = np.zeros((T, 3, 3))
    valid = np.zeros((T, 3, 3), dtype=bool)
    lower[:, 1] = [0, 1, 2]
    width[:, 1] = 1
    lower[:, 2, :2] = [3, 5]
    width[:, 2, :2] = 2
    valid[:, 0, 0] = True
    valid[:, 1] = True
    valid[:, 2, :2] = True
    torch.manual_seed(0)
    return MDMEHead(6, lower, width, valid, tower_units=(4,), mono=mono)


def _tower_grads(head, role, horizon, tower):
    """Gradient of every tower-bank parameter belonging to one tower."""
    lo, _ = head._slices[role]
    g = horizon * head.n_roles + lo + tower
    return [p.grad[g] for p in [*head.towers.weights, *head.towers.biases]]


def test_sample_isolation_sub_distribution_towers_learn_only_from_their_rows():
    head = _toy_head()
    h = torch.randn(8, 6)
    # every row is in the body (sub-distribution 1), buckets 0..2
    target = {
        "sub": torch.ones(8, 1, dtype=torch.long),
        "bucket": torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]).view(8, 1),
        "position": torch.rand(8, 1),
        "has_width": torch.ones(8, 1, dtype=torch.long),
    }
    MDMELoss(n_buckets=head.n_buckets)(head(h), target).sum().backward()
    for role in ("bct", "bot", "bbt"):
        # the tail's and the zero's towers got no gradient at all; the body's did
        for sub in (0, 2):
            assert all(bool((g == 0).all()) for g in _tower_grads(head, role, 0, sub)), role
        assert any(bool((g != 0).any()) for g in _tower_grads(head, role, 0, 1)), role
    # the segmentation module learns from every row
    assert any(bool((g != 0).any()) for g in _tower_grads(head, "dct", 0, 0))
    # the bias loss only touches the output of the row's own bucket: bucket 2 of the
    # body gets no gradient when no row is in it
    head.zero_grad()
    target["bucket"] = torch.zeros(8, 1, dtype=torch.long)
    MDMELoss(n_buckets=head.n_buckets)(head(h), target).sum().backward()
    lo, _ = head._slices["bbt"]
    out_grad = head.towers.weights[-1].grad[lo + 1]  # (hidden, out) of the body's BBT
    assert bool((out_grad[:, 1:] == 0).all()) and bool((out_grad[:, 0] != 0).any())


def test_calibration_loss_is_its_weight_times_the_decrease_between_horizons():
    head = _toy_head(T=3)
    out = head(torch.randn(5, 6))
    target = {
        "sub": torch.zeros(5, 3, dtype=torch.long),
        "bucket": torch.zeros(5, 3, dtype=torch.long),
        "position": torch.zeros(5, 3),
        "has_width": torch.zeros(5, 3, dtype=torch.long),
    }
    out["expected"] = torch.tensor([[3.0, 1.0, 2.0]] * 5)  # drops by 2, then rises
    base = MDMELoss(calibration_weight=0.0)(out, target)
    with_cal = MDMELoss(calibration_weight=1.5, y_scale=4.0)(out, target)
    np.testing.assert_allclose((with_cal - base).detach().numpy(), 1.5 * 2.0 / 4.0, rtol=1e-6)


def test_mono_unit_is_non_negative_monotone_and_stops_the_gradient():
    unit = MonoUnit(6, n_subdistributions=3, n_buckets=3, hidden_units=(5,))
    o = torch.softmax(torch.randn(20, 6), 1)
    dct, bct = unit(o)
    for k in range(6):  # more upstream mass in any bucket never lowers any output
        o2 = o.clone()
        o2[:, k] += 0.3
        dct2, bct2 = unit(o2)
        assert bool((dct2 >= dct - 1e-6).all()) and bool((bct2 >= bct - 1e-6).all())
    head = _toy_head(mono=True, T=2)
    out = head(torch.randn(4, 6))
    out["log_p"][:, 1].sum().backward()  # a loss on horizon 2 only
    # ... does not reach horizon 1's towers through the Mono Unit (stop_gradient)
    assert all(bool((g == 0).all()) for g in _tower_grads(head, "dct", 0, 0))
    assert all(bool((g == 0).all()) for g in _tower_grads(head, "bct", 0, 1))
    assert any(bool((p.grad != 0).any()) for p in head.mono.parameters())


# ----------------------------------------------------------------------------- segmentation


def test_default_segmentation_zero_body_and_whale_tail():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(800), rng.lognormal(3, 1.2, 3200)]
    X = rng.normal(size=(4000, 2))
    model = MDMERegressor(**dict(FAST, max_epochs=1)).fit(X, y)
    pos = y[y > 0]
    assert model.n_subdistributions_ == 3
    np.testing.assert_array_equal(model.bucket_subdistribution_, [0] + [1] * 8 + [2] * 4)
    # the split between body and tail is the 90th percentile of the positive labels
    split = model.bucket_lower_[model.bucket_subdistribution_ == 2][0]
    assert split == np.quantile(pos, 0.9, method="inverted_cdf")
    # equal-frequency buckets: 8 x 11.25% of the positives in the body, 4 x 2.5% in the tail
    ids = model.bucketizer_.transform(y.reshape(-1, 1)).ravel()
    share = np.bincount(ids, minlength=13)[1:] / pos.size
    np.testing.assert_allclose(share, [0.1125] * 8 + [0.025] * 4, atol=2e-3)
    assert model.bucket_lower_[0] == model.bucket_upper_[0] == 0


def test_business_boundaries_and_zero_in_the_first_sub_distribution():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(100), rng.uniform(0.5, 900, 900)]
    X = rng.normal(size=(1000, 2))
    model = MDMERegressor(
        **dict(FAST, max_epochs=1), boundaries=[(10, 50, 100), (400,)], zero_subdistribution=False
    ).fit(X, y)
    np.testing.assert_array_equal(model.bucket_lower_, [0, 0, 10, 50, 100, 400])
    np.testing.assert_array_equal(model.bucket_upper_[:-1], [0, 10, 50, 100, 400])
    np.testing.assert_array_equal(model.bucket_subdistribution_, [0, 0, 0, 0, 1, 1])
    proba = model.predict_bucket_proba(X[:5])
    assert proba.shape == (5, 6)
    with pytest.raises(ValueError, match="boundaries"):
        MDMERegressor(boundaries=[(10, 5)]).fit(X, y)
    with pytest.raises(ValueError, match="n_buckets"):
        MDMERegressor(n_buckets=(8,)).fit(X, y)


def test_integer_sample_weights_give_the_buckets_of_repeated_rows():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(300), rng.lognormal(2, 1, 700)]
    X = rng.normal(size=(1000, 2))
    w = rng.integers(0, 4, size=1000).astype(float)
    weighted = MDMERegressor(**dict(FAST, max_epochs=1)).fit(X, y, sample_weight=w)
    rep = np.repeat(np.arange(1000), w.astype(int))
    repeated = MDMERegressor(**dict(FAST, max_epochs=1)).fit(X[rep], y[rep])
    np.testing.assert_array_equal(weighted.bucket_lower_, repeated.bucket_lower_)
    np.testing.assert_array_equal(weighted.bucket_upper_, repeated.bucket_upper_)


def test_integer_sample_weights_repeated_rows_where_numpy_weighted_quantiles_differ():
    # 680 units of positive weight put the default level 0.675 (8 body buckets under
    # the 90th percentile) at N * q = 459.00000000000006: the 460th repeated value (459),
    # where np.quantile(..., weights=...) answers the 459th (458)
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(100), np.arange(1.0, 680.0)]
    w = np.r_[rng.integers(0, 3, 100), 2, np.ones(678)].astype(float)
    X = rng.normal(size=(y.size, 2))
    weighted = MDMERegressor(**dict(FAST, max_epochs=1)).fit(X, y, sample_weight=w)
    rep = np.repeat(np.arange(y.size), w.astype(int))
    repeated = MDMERegressor(**dict(FAST, max_epochs=1)).fit(X[rep], y[rep])
    assert 459.0 in weighted.bucketizer_.boundaries_
    np.testing.assert_array_equal(weighted.bucket_lower_, repeated.bucket_lower_)
    np.testing.assert_array_equal(weighted.bucket_upper_, repeated.bucket_upper_)
    # the same sub-distribution splits (the buckets at which the sub-distribution changes)
    np.testing.assert_array_equal(
        weighted.bucket_subdistribution_, repeated.bucket_subdistribution_
    )


# ----------------------------------------------------------------------------- MDME


def test_bucket_probabilities_sum_to_one_and_define_the_predictions(fitted_mdme):
    model, X, y = fitted_mdme
    proba = model.predict_bucket_proba(X)
    assert proba.shape == (len(X), model.bucket_lower_.size)
    assert (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(model.predict_nonzero_proba(X), 1 - proba[:, 0], rtol=1e-12)
    pred = model.predict(X)
    # the expected value lies between the lower and upper bucket means of the distribution
    assert (pred >= proba @ model.bucket_lower_ - 1e-9).all()
    assert (pred <= proba @ model.bucket_upper_ + 1e-9).all()
    # hard prediction (eqs. 7-8) falls inside the most probable bucket of the most
    # probable sub-distribution
    hard = model.set_params(prediction="hard").predict(X)
    model.set_params(prediction="expected")
    assert np.isfinite(hard).all() and (hard >= 0).all() and hard.max() <= y.max()
    sub_p = np.stack(
        [proba[:, model.bucket_subdistribution_ == s].sum(1) for s in range(3)], axis=1
    )
    s_star = sub_p.argmax(1)
    masked = np.where(model.bucket_subdistribution_[None] == s_star[:, None], proba, -1)
    b_star = masked.argmax(1)
    assert (hard >= model.bucket_lower_[b_star] - 1e-9).all()
    assert (hard <= model.bucket_upper_[b_star] + 1e-9).all()


def test_nm_variant_predicts_the_probability_weighted_bucket_midpoints(multi_data):
    X, Y = multi_data
    nm = MDMERegressor(**FAST, bucket_bias=False, ordinal_distillation=False).fit(X, Y[:, -1])
    mid = (nm.bucket_lower_ + nm.bucket_upper_) / 2
    np.testing.assert_allclose(nm.predict(X), nm.predict_bucket_proba(X) @ mid, rtol=1e-9)
    out = nm.net_.module_(torch.zeros(2, 4), torch.zeros(2, 2, dtype=torch.long))
    assert "bias" not in out and "dot" not in out and "bot" not in out
    out = (
        MDMERegressor(**FAST)
        .fit(X[:300], Y[:300, -1])
        .net_.module_(torch.zeros(2, 4), torch.zeros(2, 2, dtype=torch.long))
    )
    assert {"bias", "dot", "bot"} <= set(out)


def test_quantiles_are_monotone_zero_below_the_zero_mass_and_bounded(fitted_mdme):
    model, X, _ = fitted_mdme
    rows = X.iloc[:20]
    qs = np.linspace(0, 1, 41)
    quant = model.predict_quantiles(rows, qs)
    assert quant.shape == (20, 41) and (np.diff(quant, axis=1) >= -1e-9).all()
    p_zero = 1 - model.predict_nonzero_proba(rows)
    assert (quant[qs[None, :] < p_zero[:, None] - 1e-9] == 0).all()
    assert quant.max() <= model.bucket_upper_[-1] + 1e-9
    # the quantile function integrates to the mean of the uniform-in-bucket distribution
    grid = (np.arange(4000) + 0.5) / 4000
    mid = (model.bucket_lower_ + model.bucket_upper_) / 2
    np.testing.assert_allclose(
        model.predict_quantiles(rows, grid).mean(1),
        model.predict_bucket_proba(rows) @ mid,
        rtol=2e-3,
    )
    assert model.predict_quantiles(rows, 0.5).shape == (20,)
    with pytest.raises(ValueError, match="quantiles"):
        model.predict_quantiles(rows, [0.5, 1.5])


def test_bad_hyperparameters_raise_clear_errors():
    X, y = np.ones((30, 2)), np.arange(30.0)
    for params, pattern in [
        (dict(prediction="mode"), "prediction"),
        (dict(subdistribution_quantiles=(0.9, 0.5), n_buckets=(2, 2, 2)), "increasing"),
        (dict(subdistribution_distill_weight=-1.0), "subdistribution_distill_weight"),
        (dict(tower_units=8), "tower_units"),
        (dict(bucket_bias="yes"), "bucket_bias"),
        (dict(bucket_distill_weight=float("nan")), "bucket_distill_weight"),
        (dict(subdistribution_quantiles=(0.5, 1.5), n_buckets=(2, 2, 2)), r"\(0, 1\)"),
        (dict(n_buckets=(4, 0)), "n_buckets must be a non-empty tuple of integers >= 1"),
        (dict(n_buckets=(8, 4, 2)), r"n_buckets must have one entry per positive sub-dis"),
        (dict(boundaries=[10, 20]), "boundaries must be a non-empty sequence of sequences"),
        (dict(boundaries=[(), (5,)]), "Only the last sub-distribution may have no cut"),
        (dict(boundaries=[(10, "a")]), "boundaries.*positive, finite and strictly increasing"),
    ]:
        with pytest.raises(ValueError, match=f"^ltvkit: MDMERegressor: .*{pattern}"):
            MDMERegressor(**params).fit(X, y)
    for params, pattern in [
        (dict(calibration_weight=-0.1), "calibration_weight"),
        (dict(mono_hidden_units=4), r"mono_hidden_units .*Write \(4,\)"),
        (dict(mono_unit=1), "mono_unit must be True or False"),
        (dict(enforce_monotonic="yes"), "enforce_monotonic must be True or False"),
        (dict(subdistribution_distill_weight=-1.0), "subdistribution_distill_weight"),
    ]:
        with pytest.raises(ValueError, match=f"^ltvkit: ODMNRegressor: {pattern}"):
            ODMNRegressor(**params).fit(X, np.c_[y, y])
    # the quantile parameters are unused with boundaries, but still checked
    with pytest.raises(ValueError, match="subdistribution_quantiles must be a strictly"):
        MDMERegressor(boundaries=[(5,)], subdistribution_quantiles=(0.6, 0.3)).fit(X, y)
    # one positive sub-distribution (no split) is allowed
    one = MDMERegressor(max_epochs=1, subdistribution_quantiles=(), n_buckets=(4,)).fit(X, y)
    assert one.n_subdistributions_ == 2


def test_fitted_models_keep_no_private_state(multi_data):
    # everything a prediction needs is a documented fitted attribute or in the module
    X, Y = multi_data
    for model in (
        MDMERegressor(**dict(FAST, max_epochs=1)).fit(X[:500], Y[:500, -1]),
        ODMNRegressor(**dict(FAST, max_epochs=1)).fit(X[:500], Y[:500]),
    ):
        assert [k for k in vars(model) if k.startswith("_")] == []


@pytest.mark.slow
def test_cdnow_mdme_gini_beats_ranking_by_calibration_spend():
    from ltvkit.datasets import load_cdnow
    from ltvkit.metrics import normalized_gini

    X, y = load_cdnow()
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0)
    pred = MDMERegressor(random_state=0).fit(X_tr, y_tr).predict(X_te)  # defaults
    gini = normalized_gini(y_te, pred)
    baseline = normalized_gini(y_te, X_te["monetary_total"])
    assert gini > baseline + 0.01, (gini, baseline)


# ----------------------------------------------------------------------------- ODMN


def test_odmn_predictions_never_decrease_along_horizons(multi_data):
    X, Y = multi_data
    model = ODMNRegressor(**FAST).fit(X, Y)
    pred = model.predict(X)
    assert pred.shape == Y.shape and pred.dtype == np.float64
    assert (np.diff(pred, axis=1) >= 0).all()
    assert 0.0 <= model.train_violation_rate_ <= 1.0
    # without enforcement predict is the raw network, whose violations are reported
    raw = model.set_params(enforce_monotonic=False).predict(X)
    rate = float((np.diff(raw, axis=1) < -1e-9 * np.maximum(raw[:, :-1], 1)).any(1).mean())
    assert model.monotonic_violation_rate(X) == pytest.approx(rate)
    np.testing.assert_allclose(np.maximum.accumulate(raw, axis=1), pred, rtol=1e-12)
    # every horizon has its own bucket distribution, summing to 1
    for t in range(4):
        proba = model.predict_bucket_proba(X.iloc[:50], horizon=t)
        assert proba.shape == (50, model.bucket_lower_[t].size)
        np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(
        model.predict_nonzero_proba(X.iloc[:50]),
        1 - model.predict_bucket_proba(X.iloc[:50], horizon=-1)[:, 0],
        rtol=1e-12,
    )
    model.set_params(enforce_monotonic=True)
    quant = model.predict_quantiles(X.iloc[:50], [0.5, 0.9])
    assert quant.shape == (50, 4, 2) and (np.diff(quant, axis=1) >= 0).all()
    with pytest.raises(ValueError, match="horizon"):
        model.predict_bucket_proba(X.iloc[:5], horizon=4)


@pytest.mark.parametrize(
    "variant",
    [
        dict(mono_unit=False, calibration_weight=0.0),  # S
        dict(mono_unit=True, calibration_weight=0.0),  # SM
        dict(mono_unit=False, calibration_weight=1.0),  # SC
        dict(mono_hidden_units=(4,), prediction="hard"),  # ODMN with a hidden Mono layer
    ],
)
def test_odmn_variants_are_monotone_on_cdnow(variant):
    from ltvkit.datasets import load_cdnow

    X, Y = load_cdnow(horizons_weeks=(13, 26, 39))
    X_tr, X_te, Y_tr, _ = train_test_split(X, Y, test_size=0.3, random_state=0)
    model = ODMNRegressor(**dict(FAST, max_epochs=2), **variant).fit(X_tr, Y_tr)
    pred = model.predict(X_te)
    assert pred.shape == (len(X_te), 3)
    assert (np.diff(pred, axis=1) >= 0).all()


def test_odmn_is_monotone_on_online_retail_horizons():
    from ltvkit.datasets import load_online_retail, transactions_to_ltv

    try:
        tx = load_online_retail(return_transactions=True)
    except FileNotFoundError:
        pytest.skip("UCI Online Retail not available")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # refunds netted to 0
        X, Y = transactions_to_ltv(
            tx,
            customer_col="CustomerID",
            date_col="InvoiceDate",
            value_col="value",
            calibration_end="2011-09-01",
            holdout_end=["2011-10-01", "2011-11-01", "2011-12-10"],
        )
    model = ODMNRegressor(**dict(FAST, max_epochs=5)).fit(X, Y)
    pred = model.predict(X)
    assert pred.shape == Y.shape and (np.diff(pred, axis=1) >= 0).all()


def test_odmn_rejects_decreasing_horizons_and_handles_one_horizon(multi_data):
    X, Y = multi_data
    bad = Y.copy()
    bad[0, 0] = bad[0, -1] + 1
    with pytest.raises(ValueError, match="decreases along the horizons"):
        ODMNRegressor(**FAST).fit(X, bad)
    one = ODMNRegressor(**FAST).fit(X, Y[:, -1])  # 1-D y: one horizon, 1-D predictions
    assert one.n_horizons_ == 1 and one.target_ndim_ == 1
    assert one.predict(X).shape == (len(X),)
    col = ODMNRegressor(**FAST).fit(X, Y[:, -1:])
    assert col.predict(X).shape == (len(X), 1)
    np.testing.assert_allclose(col.predict(X)[:, 0], one.predict(X))
    # the quantiles answer without the horizon axis too, like predict
    assert one.predict_quantiles(X.iloc[:7], [0.5, 0.9]).shape == (7, 2)
    assert one.predict_quantiles(X.iloc[:7], 0.5).shape == (7,)
    assert col.predict_quantiles(X.iloc[:7], [0.5, 0.9]).shape == (7, 1, 2)
    np.testing.assert_allclose(
        col.predict_quantiles(X, [0.5, 0.9])[:, 0], one.predict_quantiles(X, [0.5, 0.9])
    )
