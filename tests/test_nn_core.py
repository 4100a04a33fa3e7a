"""The shared deep-model machinery: encoder, data path, skorch wiring, hooks (ltvkit.nn)."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import train_test_split
from skorch.callbacks import Callback

from ltvkit.nn import (
    SHARED_PARAMS,
    BaseDeepRegressor,
    CCORNetRegressor,
    MDMERegressor,
    PreparedTargets,
    TabularEncoder,
    TensorDictDataset,
    ZILNLoss,
    ZILNRegressor,
    embedding_dim_rule,
)
from ltvkit.nn._base import BatchIterator
from ltvkit.nn._layers import MLPBank

FAST = dict(hidden_units=(8,), max_epochs=3, batch_size=64, random_state=0)
DOCS = Path(__file__).resolve().parents[1] / "docs" / "nn.md"


def _toy(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "spend": rng.lognormal(3.0, 1.5, n),
            "age": rng.normal(40, 10, n),
            "country": pd.Categorical(
                rng.choice(["UK", "FR", "DE", "NL"], n, p=[0.6, 0.2, 0.19, 0.01])
            ),
            "channel": rng.choice(["web", "app"], n).astype(object),
        }
    )
    logit = -0.5 + 0.8 * (np.log(X["spend"]) - 3.0) / 1.5
    pos = rng.random(n) < 1 / (1 + np.exp(-logit))
    y = pos * np.exp(1.0 + 0.3 * np.log(X["spend"]) + 0.5 * rng.normal(size=n))
    return X, np.asarray(y, dtype=float)


# ----------------------------------------------------------------------------- encoder


def _schema_frame(X: pd.DataFrame) -> pd.DataFrame:
    return ZILNRegressor()._validate_fit_input(X, np.ones(len(X)))[0]


def test_encoder_unseen_and_rare_categories_share_slot_zero():
    X = pd.DataFrame({"c": pd.Categorical(["a"] * 10 + ["b"] * 10 + ["rare"] * 2)})
    est = ZILNRegressor()
    frame, _, _ = est._validate_fit_input(X, np.ones(len(X)))
    enc = TabularEncoder(min_category_frequency=5).fit(frame)
    codes = enc.transform(frame)["x_cat"][:, 0]
    assert set(codes[:20]) == {1, 2}
    assert (codes[20:] == 0).all()  # rare -> slot 0
    assert enc.spec_.cardinalities == (3,)  # a, b + the shared slot
    new = est._validate_predict_input(pd.DataFrame({"c": ["never-seen", "a", None]}))
    assert enc.transform(new)["x_cat"][:, 0].tolist() == [0, codes[0], 0]


def test_encoder_embedding_dim_rule_and_override():
    assert embedding_dim_rule(3) == 2  # binary column: 2 levels + slot
    assert embedding_dim_rule(21) == 11
    assert embedding_dim_rule(5000) == 50
    levels = [f"l{i}" for i in range(200)]
    X = pd.DataFrame({"big": pd.Categorical(levels * 5), "two": ["x", "y"] * 500})
    frame = _schema_frame(X)
    enc = TabularEncoder(min_category_frequency=1).fit(frame)
    assert enc.spec_.cardinalities == (201, 3)
    assert enc.spec_.embedding_dims == (50, 2)
    assert TabularEncoder(embedding_dim=4).fit(frame).spec_.embedding_dims == (4, 4)


def test_encoder_nan_imputed_with_training_mean_plus_indicator():
    X = pd.DataFrame({"a": [1.0, np.nan, 3.0, 5.0], "b": [1.0, 2.0, 3.0, 4.0]})
    frame = _schema_frame(X)
    enc = TabularEncoder(log_transform=False).fit(frame)
    out = enc.transform(frame)["x_num"]
    assert enc.indicator_columns_ == ["a"]  # only columns with NaN in training
    assert enc.spec_.numeric_features == ("a", "b", "a__missing")
    assert out.shape == (4, 3)
    assert out[1, 0] == 0.0 and out[1, 2] == 1.0 and out[0, 2] == 0.0
    np.testing.assert_allclose(out[[0, 2, 3], 0].mean(), 0.0, atol=1e-6)  # scaled
    # NaN at predict in a column that had none in training: mean, no new column
    new = enc.transform(pd.DataFrame({"a": [np.nan], "b": [np.nan]}))["x_num"]
    assert new.tolist() == [[0.0, 0.0, 1.0]]


def test_encoder_float64_and_int_input_become_float32_once():
    rng = np.random.default_rng(0)
    X_int = rng.integers(0, 100, size=(50, 3))
    for X in (X_int, X_int.astype(np.float64), X_int.astype(np.float32)):
        frame = _schema_frame(X)
        out = TabularEncoder().fit(frame).transform(frame)
        assert out["x_num"].dtype == np.float32 and out["x_num"].flags.c_contiguous
        assert out["x_cat"].dtype == np.int64 and out["x_cat"].shape == (50, 0)
    model = ZILNRegressor(**FAST).fit(X_int, X_int[:, 0].astype(float))
    np.testing.assert_array_equal(model.predict(X_int), model.predict(X_int.astype(np.float64)))


def test_encoder_log_transform_auto_picks_skewed_columns():
    rng = np.random.default_rng(0)
    spend = rng.lognormal(3, 1.5, 1000)
    refunds = spend.copy()
    refunds[:5] = -10.0  # a few refunds do not disqualify a heavy-tailed column
    X = pd.DataFrame({"spend": spend, "net": refunds, "age": rng.normal(40, 10, 1000)})
    frame = _schema_frame(X)
    assert TabularEncoder().fit(frame).log_columns_ == ["spend", "net"]
    assert TabularEncoder(log_transform=False).fit(frame).log_columns_ == []
    assert TabularEncoder(log_transform=True).fit(frame).log_columns_ == ["spend", "net", "age"]
    out = TabularEncoder().fit(frame).transform(frame)["x_num"]
    assert np.abs(out).max() < 10  # no 30-sigma outliers left in the spend column


# ----------------------------------------------------------------------------- layers


def _separate_mlps(bank: MLPBank) -> list[torch.nn.Sequential]:
    """The bank's ``G`` networks as separate ``nn.Sequential`` MLPs with copied weights."""
    nets = []
    last = len(bank.weights) - 1
    for g in range(bank.n_networks):
        layers: list[torch.nn.Module] = []
        for k, (w, b) in enumerate(zip(bank.weights, bank.biases, strict=True)):
            linear = torch.nn.Linear(w.shape[1], w.shape[2]).double()
            with torch.no_grad():
                linear.weight.copy_(bank.layer_weight(k)[g].T)
                linear.bias.copy_(b[g])
            layers.append(linear)
            if k < last or bank.activate_output:
                layers.append(torch.nn.ReLU())
        nets.append(torch.nn.Sequential(*layers))
    return nets


@pytest.mark.parametrize("network_major", [False, True])
@pytest.mark.parametrize(("hidden", "out"), [((7, 4), 3), ((7, 4), None), ((), 3)])
def test_mlp_bank_equals_separate_mlps_for_shared_and_per_network_input(
    network_major, hidden, out
):
    torch.manual_seed(0)
    bank = MLPBank(3, 5, hidden, out, dropout=0.5, network_major=network_major).double()
    width = out if out is not None else hidden[-1]
    assert bank.out_features == width and bank.in_features == 5
    nets = _separate_mlps(bank)
    bank.eval()  # dropout off, as in the separate networks
    shared = torch.randn(10, 5, dtype=torch.float64)
    per_network = torch.randn(10, 3, 5, dtype=torch.float64)  # (n, G, in)
    if network_major:
        per_network = per_network.transpose(0, 1).contiguous()  # (G, n, in)
    with torch.no_grad():
        out_shared, out_each = bank(shared), bank(per_network)
    expected_shape = (3, 10, width) if network_major else (10, 3, width)
    assert out_shared.shape == out_each.shape == expected_shape
    for g, net in enumerate(nets):
        if network_major:
            torch.testing.assert_close(out_shared[g], net(shared))
            torch.testing.assert_close(out_each[g], net(per_network[g]))
        else:
            torch.testing.assert_close(out_shared[:, g], net(shared))
            torch.testing.assert_close(out_each[:, g], net(per_network[:, g]))
    bank.train()  # dropout after every ReLU only in training
    assert not torch.equal(bank(shared), out_shared) or not hidden
    with pytest.raises(ValueError, match="at least one layer"):
        MLPBank(2, 5, ())
    with pytest.raises(ValueError, match="one seed per network"):
        MLPBank(2, 5, (4,), seeds=[1])


def test_mlp_bank_initialisation_global_rng_or_one_seed_per_network():
    # nn.Linear's bounds, drawn from the global RNG: reproducible under manual_seed
    torch.manual_seed(0)
    bank = MLPBank(4, 6, (9,), 2)
    torch.manual_seed(0)
    again = MLPBank(4, 6, (9,), 2)
    for k, fan_in in enumerate((6, 9)):
        for p, q in ((bank.weights[k], again.weights[k]), (bank.biases[k], again.biases[k])):
            assert torch.equal(p, q)
            assert 0.5 / fan_in**0.5 < p.abs().max() <= 1 / fan_in**0.5
    # with seeds: a network depends on its own seed only, the global RNG is untouched
    state = torch.get_rng_state()
    a = MLPBank(3, 6, (9,), 2, seeds=[11, 22, 33])
    b = MLPBank(2, 6, (9,), 2, seeds=[33, 11])
    assert torch.equal(torch.get_rng_state(), state)
    for p, q in zip([*a.weights, *a.biases], [*b.weights, *b.biases], strict=True):
        assert torch.equal(p[0], q[1]) and torch.equal(p[2], q[0])
        assert not torch.equal(p[0], p[1])


# ----------------------------------------------------------------------------- data path


def test_batch_iterator_indexes_whole_batches_of_tensors():
    X = {"x_num": torch.arange(10.0).reshape(5, 2), "x_cat": torch.zeros(5, 0, dtype=torch.long)}
    ds = TensorDictDataset(X, {"target": torch.arange(5.0)}, rows=torch.tensor([4, 0, 2]))
    it = BatchIterator(ds, batch_size=2, shuffle=True, seed=1)
    batches = list(it)
    assert len(it) == 2 and [len(b[0]["x_num"]) for b in batches] == [2, 1]
    seen = sorted(float(v) for b in batches for v in b[1]["target"])
    assert seen == [0.0, 2.0, 4.0]
    again = [
        b[1]["target"].tolist() for b in BatchIterator(ds, batch_size=2, shuffle=True, seed=1)
    ]
    assert again == [b[1]["target"].tolist() for b in batches]


def test_fit_encodes_once_and_predict_is_batched(monkeypatch):
    X, y = _toy(400)
    calls = []
    original = TabularEncoder.transform

    def counting(self, frame, *args):
        calls.append(len(frame))
        return original(self, frame, *args)

    monkeypatch.setattr(TabularEncoder, "transform", counting)
    model = ZILNRegressor(**FAST).fit(X, y)
    assert calls == [400]  # one conversion to float32/int64, never per batch or epoch
    assert model.net_.iterator_valid__batch_size >= 1024
    full = model.predict(X)
    model.net_.iterator_valid__batch_size = 7  # 58 prediction batches
    np.testing.assert_allclose(model.predict(X), full, rtol=1e-6)
    monkeypatch.setattr("ltvkit.nn._base._PREDICT_CHUNK_ROWS", 50)  # encode 50 rows at a time
    np.testing.assert_allclose(model.predict(X), full, rtol=1e-6)


def test_encoder_works_in_row_chunks(monkeypatch):
    X, _ = _toy(500)
    X.loc[X.index[::7], "age"] = np.nan
    frame = _schema_frame(X)
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(X))
    whole = TabularEncoder().fit(frame, sample_weight=w)
    monkeypatch.setattr("ltvkit.nn._encoder._CHUNK_ROWS", 37)
    chunked = TabularEncoder().fit(frame, sample_weight=w)
    np.testing.assert_allclose(chunked.scaler_.mean_, whole.scaler_.mean_, rtol=1e-9)
    np.testing.assert_allclose(chunked.scaler_.scale_, whole.scaler_.scale_, rtol=1e-9)
    assert chunked.indicator_columns_ == whole.indicator_columns_ == ["age"]
    a, b = whole.transform(frame), chunked.transform(frame)
    np.testing.assert_allclose(a["x_num"], b["x_num"], rtol=1e-6)
    np.testing.assert_array_equal(a["x_cat"], b["x_cat"])


# ----------------------------------------------------------------------------- estimator


def test_determinism_bitwise_and_global_rng_untouched():
    X, y = _toy()
    torch.manual_seed(123)
    state = torch.get_rng_state()
    model = ZILNRegressor(**dict(FAST, dropout=0.2)).fit(X, y)
    a = model.predict(X)
    assert torch.equal(torch.get_rng_state(), state)
    assert np.array_equal(model.predict(X), a)  # eval mode: no dropout at predict
    b = ZILNRegressor(**dict(FAST, dropout=0.2)).fit(X, y).predict(X)
    assert np.array_equal(a, b)
    c = ZILNRegressor(**dict(FAST, dropout=0.2, random_state=1)).fit(X, y).predict(X)
    assert not np.array_equal(a, c)


def test_nan_loss_raises_runtime_error_naming_the_epoch(monkeypatch):
    X, y = _toy(256)
    calls = {"n": 0}
    original = ZILNLoss.forward

    def poisoned(self, output, target):
        calls["n"] += 1
        loss = original(self, output, target)
        return loss * float("nan") if calls["n"] > 4 else loss  # 4 batches per epoch

    monkeypatch.setattr(ZILNLoss, "forward", poisoned)
    model = ZILNRegressor(**dict(FAST, early_stopping=False, max_epochs=5))
    with pytest.raises(RuntimeError, match=r"epoch 2.*learning rate"):
        model.fit(X, y)


def test_early_stopping_stops_and_history_is_recorded():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 3))  # no signal: validation loss stops improving fast
    y = (rng.random(600) < 0.5) * rng.lognormal(2.0, 1.0, 600)
    model = ZILNRegressor(
        hidden_units=(32,), max_epochs=200, patience=3, learning_rate=3e-3, random_state=0
    ).fit(X, y)
    assert model.n_iter_ < 200
    assert model.best_epoch_ <= model.n_iter_ - 3
    hist = model.net_.history
    assert len(hist) == model.n_iter_
    assert {"train_loss", "valid_loss", "dur"} <= set(hist[-1])
    assert np.isfinite(hist[:, "valid_loss"]).all()
    # no validation split on tiny data (sklearn's checks): trains all epochs on all rows
    tiny = ZILNRegressor(**FAST).fit(X[:30], y[:30])
    assert tiny.n_iter_ == 3 and "valid_loss" not in tiny.net_.history[-1]
    assert tiny.net_.history[-1, "train_batch_count"] == 1


def test_every_shared_hyperparameter_is_settable_and_used():
    values = dict(
        hidden_units=(8, 4),
        dropout=0.1,
        embedding_dim=3,
        log_transform=False,
        min_category_frequency=2,
        batch_size=32,
        max_epochs=2,
        learning_rate=5e-3,
        weight_decay=1e-4,
        optimizer="sgd",
        learning_rate_schedule="none",
        early_stopping=False,
        validation_fraction=0.2,
        patience=2,
        gradient_clip=1.0,
        random_state=3,
        verbose=0,
        callbacks=[],
        device="cpu",
        precision="float64",
    )
    assert set(values) == set(SHARED_PARAMS)
    model = ZILNRegressor()
    for name, value in values.items():
        model.set_params(**{name: value})
        assert model.get_params()[name] == value
    X, y = _toy(200)
    model.fit(X, y)
    net = model.net_
    assert isinstance(net.optimizer_, torch.optim.SGD)
    assert net.optimizer_.param_groups[0]["weight_decay"] == pytest.approx(1e-4)
    assert net.batch_size == 32 and model.n_iter_ == 2
    names = [name for name, _ in net.callbacks_]
    assert "gradient_clip" in names and "lr_scheduler" not in names
    assert "early_stopping" not in names
    assert [m.embedding_dim for m in net.module_.bottom.embedding.embeddings] == [3, 3]
    assert model.encoder_.log_columns_ == []
    assert [m.out_features for m in net.module_.bottom.mlp if isinstance(m, torch.nn.Linear)] == [
        8,
        4,
    ]
    assert clone(model).get_params()["hidden_units"] == (8, 4)


@pytest.mark.parametrize(
    "params, pattern",
    [
        (dict(hidden_units=16), r"\(16,\)"),
        (dict(dropout=1.0), "dropout"),
        (dict(learning_rate=0.0), "learning_rate"),
        (dict(batch_size=0), "batch_size"),
        (dict(optimizer="lbfgs"), "optimizer"),
        (dict(learning_rate_schedule="step"), "learning_rate_schedule"),
        (dict(validation_fraction=1.0), "validation_fraction"),
        (dict(sigma_max=0.0), "sigma_max"),
    ],
)
def test_invalid_hyperparameters_raise_value_error_at_fit(params, pattern):
    X, y = _toy(50)
    with pytest.raises(ValueError, match=pattern):
        ZILNRegressor(**params).fit(X, y)


class _EpochCounter(Callback):
    def __init__(self):
        self.epochs = 0

    def on_epoch_end(self, net, **kwargs):
        self.epochs += 1


def test_user_callbacks_pass_through_and_are_not_mutated():
    X, y = _toy(200)
    counter = _EpochCounter()
    model = ZILNRegressor(**dict(FAST, callbacks=[counter, ("named", _EpochCounter())])).fit(X, y)
    fitted = dict(model.net_.callbacks_)
    assert fitted["_EpochCounter"].epochs == model.n_iter_
    assert fitted["named"].epochs == model.n_iter_
    assert counter.epochs == 0  # deep-copied: the hyperparameter stays untouched


def test_skorch_checkpoint_callback_works(tmp_path):
    from skorch.callbacks import Checkpoint

    X, y = _toy(300)
    cp = Checkpoint(dirname=str(tmp_path), monitor="valid_loss_best", load_best=True)
    model = ZILNRegressor(**dict(FAST, max_epochs=4, callbacks=[cp])).fit(X, y)
    assert (tmp_path / "params.pt").exists()
    assert any(model.net_.history[:, "event_cp"])


def test_verbose_zero_prints_nothing_and_verbose_one_prints_the_table(capsys):
    X, y = _toy(300)
    ZILNRegressor(**FAST).fit(X, y).predict(X)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    ZILNRegressor(**dict(FAST, verbose=1)).fit(X, y)
    out = capsys.readouterr()
    assert "train_loss" in out.out and "valid_loss" in out.out


def test_sample_weight_ones_is_none_and_weights_matter():
    X, y = _toy(300)
    a = ZILNRegressor(**FAST).fit(X, y).predict(X)
    b = ZILNRegressor(**FAST).fit(X, y, sample_weight=np.ones(len(y))).predict(X)
    assert np.array_equal(a, b)
    w = np.where(y > 0, 1.0, 10.0)  # zeros count ten times: lower P(y > 0)
    p_w = ZILNRegressor(**FAST).fit(X, y, sample_weight=w).predict_nonzero_proba(X)
    p = ZILNRegressor(**FAST).fit(X, y).predict_nonzero_proba(X)
    assert p_w.mean() < p.mean() - 0.1


def test_pickle_keeps_history_but_not_the_training_data():
    X, y = _toy(3000)
    model = ZILNRegressor(**FAST).fit(X, y)
    assert model.net_.train_split is None
    blob = pickle.dumps(model)
    restored = pickle.loads(blob)
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))
    assert len(restored.net_.history) == model.n_iter_
    assert len(blob) < 200_000


def test_subclass_must_list_shared_params():
    with pytest.raises(TypeError, match="missing"):

        class Incomplete(BaseDeepRegressor):
            def __init__(self, *, hidden_units=(8,)):
                self._store_params(locals())


# ----------------------------------------------------------------------------- new models


class _MultiHorizonLogMSE(BaseDeepRegressor):
    """A 2-D target model with a dict output and dict targets, to exercise the hooks."""

    _multi_horizon = True

    def __init__(
        self,
        *,
        hidden_units=(8,),
        dropout=0.0,
        embedding_dim=None,
        log_transform="auto",
        min_category_frequency=5,
        batch_size=64,
        max_epochs=3,
        learning_rate=1e-2,
        weight_decay=0.0,
        optimizer="adam",
        learning_rate_schedule="cosine",
        early_stopping=True,
        validation_fraction=0.1,
        patience=10,
        gradient_clip=None,
        random_state=None,
        verbose=0,
        callbacks=None,
        device="cpu",
        precision="float32",
    ):
        self._store_params(locals())

    def _prepare_targets(self, y, sample_weight):
        self.n_horizons_ = y.shape[1]
        targets = {"log_y": np.log1p(y), "any": (y[:, -1] > 0).astype(np.int64)}
        return PreparedTargets(targets, info={"n_out": y.shape[1]})

    def _build_module(self, spec, info):
        bottom = self._make_bottom(spec)
        n_out = info["n_out"]

        class Module(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.bottom = bottom
                self.head = torch.nn.Linear(bottom.out_features, n_out)

            def forward(self, x_num, x_cat):
                return {"log_y": self.head(self.bottom(x_num, x_cat))}

        return Module()

    def _build_criterion(self, info):
        class Loss(torch.nn.Module):
            def forward(self, output, target):
                assert target["any"].dtype == torch.int64
                return ((output["log_y"] - target["log_y"]) ** 2).sum(dim=1)

        return Loss()

    def _output_to_prediction(self, output):
        # cumulative horizons: non-decreasing by construction
        return torch.cummax(torch.expm1(output["log_y"]).clamp(min=0), dim=1).values.double()


def test_base_supports_2d_targets_dict_outputs_and_prepared_targets():
    X, y1 = _toy(300)
    y = np.column_stack([y1, y1 * 1.5, y1 * 2.0])
    model = _MultiHorizonLogMSE(random_state=0).fit(X, y)
    pred = model.predict(X)
    assert pred.shape == (300, 3) and np.isfinite(pred).all()
    assert (np.diff(pred, axis=1) >= 0).all()


class _HookSpy(_MultiHorizonLogMSE):
    """Logs what the optional fit hooks receive (in ``log``, a list set by the test)."""

    def _prepare_targets(self, y, sample_weight):
        prepared = super()._prepare_targets(y, sample_weight)
        # per-row strata unrelated to y > 0, handed to the split through the targets
        prepared.targets["stratum"] = (np.arange(len(y)) % 3 == 0).astype(np.int64)
        self.log.append(("prepare", prepared.targets))
        return prepared

    def _validation_strata(self, y, targets):
        self.log.append(("strata", y, targets))
        return targets["stratum"]

    def _model_callbacks(self):
        return [("epochs", _EpochCounter())]

    def _after_fit(self, X, y, sample_weight):
        net = self.net_
        self.log.append(
            ("after_fit", X, y, sample_weight, self.n_iter_, len(net.history), net.train_split)
        )


def _per_row_attributes(model: BaseDeepRegressor, n: int) -> list[str]:
    """Attributes of ``model`` holding an array with ``n`` rows (training data)."""
    return sorted(
        name
        for name, value in vars(model).items()
        if isinstance(value, (np.ndarray, torch.Tensor)) and value.ndim and len(value) == n
    )


def test_fit_hooks_contract(monkeypatch):
    X, y1 = _toy(300)
    Y = pd.DataFrame({"h1": y1, "h2": 2.0 * y1})
    w = list(np.linspace(0.5, 2.0, 300))
    stratify = []

    def spy_split(*args, **kwargs):
        stratify.append(kwargs["stratify"])
        return train_test_split(*args, **kwargs)

    monkeypatch.setattr("ltvkit.nn._base.train_test_split", spy_split)
    model = _HookSpy(random_state=0)
    model.log = []
    model.fit(X, Y, sample_weight=w)
    assert [event[0] for event in model.log] == ["prepare", "strata", "after_fit"]
    prepared = model.log[0][1]
    # _validation_strata: the validated y and the very targets _prepare_targets returned
    _, y_seen, targets = model.log[1]
    assert targets is prepared
    assert y_seen.dtype == np.float64 and y_seen.shape == (300, 2)
    assert len(stratify) == 1 and np.array_equal(stratify[0], prepared["stratum"])
    # _after_fit: once, after training, with X as passed and the validated y / weights
    _, X_seen, y_after, w_after, n_iter, n_history, train_split = model.log[2]
    assert X_seen is X
    assert isinstance(y_after, np.ndarray) and y_after.dtype == np.float64
    np.testing.assert_array_equal(y_after, Y.to_numpy())
    assert isinstance(w_after, np.ndarray) and w_after.dtype == np.float64
    np.testing.assert_array_equal(w_after, w)  # not normalised
    assert n_iter == n_history == model.n_iter_ == 3 and train_split is None
    assert dict(model.net_.callbacks_)["epochs"].epochs == model.n_iter_
    assert _per_row_attributes(model, 300) == []

    # no weights: None; no split on tiny data: no _validation_strata call
    model.log = []
    model.fit(X[:30], Y[:30])
    assert [event[0] for event in model.log] == ["prepare", "after_fit"]
    assert model.log[1][3] is None


def test_model_callbacks_see_the_epoch_early_stopping_ends():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 3))  # no signal: early stopping fires after a few epochs
    y1 = (rng.random(600) < 0.5) * rng.lognormal(2.0, 1.0, 600)
    model = _HookSpy(max_epochs=200, patience=2, random_state=0)
    model.log = []
    model.fit(X, np.column_stack([y1, y1]))
    assert model.n_iter_ < 200
    # model callbacks run before EarlyStopping, which raises in its on_epoch_end
    assert dict(model.net_.callbacks_)["epochs"].epochs == model.n_iter_


class _FailAtEpochEnd(Callback):
    def on_epoch_end(self, net, **kwargs):
        raise RuntimeError("boom")


@pytest.mark.parametrize(
    ("cls", "params"),
    [
        (MDMERegressor, {}),
        (CCORNetRegressor, dict(residual_units=(8, 8), high_value_units=(8,))),
    ],
)
def test_stratified_models_keep_no_per_row_data_after_fit_or_failed_fit(cls, params):
    X, y = _toy(300)
    model = cls(**FAST, **params).fit(X, y)
    assert _per_row_attributes(model, 300) == []
    failing = cls(**FAST, **params, callbacks=[_FailAtEpochEnd()])
    with pytest.raises(RuntimeError, match="boom"):
        failing.fit(X, y)
    assert hasattr(failing, "bucketizer_")  # _prepare_targets ran before the failure
    assert _per_row_attributes(failing, 300) == []


def _doc_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.S)


@pytest.mark.skipif(not DOCS.exists(), reason="docs/nn.md not present")
def test_docs_nn_examples_run():
    blocks = [b for b in _doc_blocks() if "class " in b and "BaseDeepRegressor" in b]
    assert len(blocks) >= 2
    for block in blocks:
        namespace: dict = {}
        exec(compile(block, str(DOCS), "exec"), namespace)  # our own docs
