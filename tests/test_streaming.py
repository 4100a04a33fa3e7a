"""Training and scoring from Parquet: ltvkit.io.ParquetDataset and score_dataset."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_common import (
    LEVELS,
    REGRESSORS,
    TRANSFORMERS,
    _fast,
    _predict_outputs,
)

import ltvkit
from ltvkit.datasets import make_ltv, make_ltv_parquet
from ltvkit.io import ParquetDataset
from ltvkit.nn import BaseDeepRegressor

N = 1200


@pytest.fixture(scope="module")
def table() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    X, y = make_ltv(n_samples=N, n_features=5, n_categorical=2, random_state=0)
    _, y_multi = make_ltv(n_samples=N, n_features=5, n_categorical=2, n_horizons=3, random_state=0)
    return X, np.asarray(y, float), np.asarray(y_multi, float)


def _write(folder: Path, X: pd.DataFrame, y: np.ndarray, y_multi: np.ndarray, parts: int = 3):
    """The table as ``parts`` Parquet files of small row groups, with an id column."""
    folder.mkdir(parents=True, exist_ok=True)
    frame = X.assign(
        customer_id=[f"c{i:05d}" for i in range(len(X))],
        ltv=y,
        **{f"h{t + 1}": y_multi[:, t] for t in range(y_multi.shape[1])},
    )
    for k, idx in enumerate(np.array_split(np.arange(len(X)), parts)):
        frame.iloc[idx].to_parquet(folder / f"part-{k}.parquet", row_group_size=150)
    return folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory, table) -> Path:
    return _write(tmp_path_factory.mktemp("data"), *table)


def _dataset(folder: Path, est: object, X: pd.DataFrame) -> ParquetDataset:
    multi = getattr(est, "_multi_horizon", False)
    return ParquetDataset(
        folder, target=["h1", "h2", "h3"] if multi else "ltv", features=list(X.columns)
    )


# --------------------------------------------------------------------------- the dataset


def test_dataset_lists_files_rows_and_features(folder, table):
    X = table[0]
    data = ParquetDataset(folder, target="ltv", id_column="customer_id")
    assert len(data.files) == 3 and data.num_rows == N
    assert data.features == [*X.columns, "h1", "h2", "h3"]
    assert sum(f.num_rows for f in data.fragments) == N
    assert [f.start for f in data.fragments] == list(
        np.cumsum([0] + [f.num_rows for f in data.fragments])[:-1]
    )
    sizes = [b.num_rows for b in data.iter_batches(batch_size=100)]
    assert sum(sizes) == N and max(sizes) <= 100
    # a shard: the row groups of one file, and positions that say where its rows are
    shard = [f for f in data.fragments if f.file == data.files[1]]
    got = list(data.iter_batches(["customer_id"], fragments=shard, with_position=True))
    ids = np.concatenate([b.column(0).to_numpy(zero_copy_only=False) for _, b in got])
    assert list(ids) == [f"c{i:05d}" for i in range(got[0][0], got[0][0] + len(ids))]
    assert ParquetDataset(data.files, target="ltv").num_rows == N
    assert ParquetDataset(data.files[0], target="ltv").num_rows == 400


def _bad_case(tmp_path: Path, case: str) -> tuple[object, dict]:
    X, y = make_ltv(n_samples=60, n_features=3, n_categorical=1, random_state=0)
    frame = X.assign(ltv=y)
    frame.iloc[:30].to_parquet(tmp_path / "a.parquet")
    second = frame.iloc[30:]
    if case == "schema":
        second = second.assign(extra=1.0)
    elif case == "type":
        second = second.assign(num_0=second["num_0"].astype(str))
    elif case == "empty":
        frame.iloc[:0].to_parquet(tmp_path / "a.parquet")
        second = frame.iloc[:0]
    second.to_parquet(tmp_path / "b.parquet")
    return tmp_path, {"target": "ltv"}


@pytest.mark.parametrize(
    "case, pattern",
    [
        ("schema", r"b\.parquet.*'extra'"),
        ("type", r"'num_0'.*b\.parquet"),
        ("empty", r"no rows"),
        ("target", r"target column 'spend'.*a\.parquet"),
        ("id", r"id_column column 'cid'.*a\.parquet"),
        ("feature", r"feature column\(s\) \['nope'\].*a\.parquet"),
        ("nothing", r"does not exist"),
    ],
)
def test_bad_dataset_raises_value_error_naming_file_and_column(tmp_path, case, pattern):
    path, kw = _bad_case(tmp_path, case)
    if case == "target":
        kw["target"] = "spend"
    elif case == "id":
        kw["id_column"] = "cid"
    elif case == "feature":
        kw["features"] = ["num_0", "nope"]
    elif case == "nothing":
        path = tmp_path / "missing"
    with pytest.raises(ValueError, match=pattern):
        ParquetDataset(path, **kw)


def test_empty_directory_and_missing_target_at_fit(tmp_path, folder):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no files"):
        ParquetDataset(tmp_path / "empty")
    model = ltvkit.ZILNRegressor(max_epochs=1)
    with pytest.raises(ValueError, match="target column"):
        model.fit(ParquetDataset(folder))
    with pytest.raises(ValueError, match="do not pass y"):
        model.fit(ParquetDataset(folder, target="ltv"), np.ones(N))


def test_bad_values_in_a_later_file_name_the_file(tmp_path):
    X, y = make_ltv(n_samples=80, n_features=3, n_categorical=0, random_state=0)
    frame = X.assign(ltv=y)
    frame.iloc[:40].to_parquet(tmp_path / "a.parquet")
    bad = frame.iloc[40:].copy()
    bad.iloc[3, 0] = np.inf
    bad.to_parquet(tmp_path / "b.parquet")
    data = ParquetDataset(tmp_path, target="ltv")
    with pytest.raises(ValueError, match=r"infinite.*b\.parquet"):
        ltvkit.ZILNRegressor(max_epochs=1).fit(data)


# ------------------------------------------------------------ every estimator, same answer


def _assert_close_outputs(a: object, b: object) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _assert_close_outputs(a[key], b[key])
    else:
        assert np.shape(a) == np.shape(b)
        # float32 networks: an output may move by an ulp with the batch's size, and a
        # quantile found by inverting a distribution moves a little more
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("cls", [c for _, c in REGRESSORS], ids=[n for n, _ in REGRESSORS])
def test_every_model_fits_from_and_scores_a_dataset_with_the_in_memory_answer(cls, folder, table):
    X, y, y_multi = table
    est = _fast(cls, max_epochs=3)
    data = _dataset(folder, est, X)
    fitted = est.fit(data)
    assert fitted.n_features_in_ == X.shape[1]
    # one fitted model: the frame and the dataset of the same rows give the same output,
    # up to the last bit: numpy's and torch's vectorised kernels may round the tail of
    # an array differently, and the dataset's batches are not the frame's chunks
    outputs_frame = _predict_outputs(fitted, X)
    assert outputs_frame
    for name, expected in outputs_frame.items():
        method = getattr(fitted, name)
        got = method(data, LEVELS) if name == "predict_quantiles" else method(data)
        _assert_close_outputs(got, expected)
    if not isinstance(fitted, BaseDeepRegressor):
        # a model that reads the dataset into memory fits exactly as on the frame; so
        # does TwoStage's XGBoost external memory here, where all rows make one page
        # (one quantile sketch, as in memory)
        target = y_multi if getattr(est, "_multi_horizon", False) else y
        in_memory = _fast(cls, max_epochs=3).fit(X, target)
        np.testing.assert_array_equal(in_memory.predict(X), outputs_frame["predict"])


@pytest.mark.parametrize("cls", [c for _, c in TRANSFORMERS], ids=[n for n, _ in TRANSFORMERS])
def test_transformers_fit_and_transform_the_target_column(cls, folder, table):
    y = table[1]
    data = ParquetDataset(folder, target="ltv")
    a = _fast(cls).fit(data)
    b = _fast(cls).fit(y.reshape(-1, 1))
    np.testing.assert_array_equal(a.transform(data), b.transform(y.reshape(-1, 1)))


def test_streaming_deep_fit_is_deterministic_and_early_stops(folder, table):
    X = table[0]
    data = ParquetDataset(folder, target="ltv", features=list(X.columns))
    params = dict(max_epochs=30, patience=2, batch_size=64, random_state=0)
    a = ltvkit.ZILNRegressor(**params).fit(data, shuffle_buffer_rows=300)
    b = ltvkit.ZILNRegressor(**params).fit(data, shuffle_buffer_rows=300)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert "valid_loss" in a.net_.history[-1]
    assert a.best_epoch_ <= a.n_iter_ <= 30
    # a fitted streaming model is an ordinary model: pickles, saves and loads
    loaded = ltvkit.load(ltvkit.save(a, folder.parent / "stream.ltvkit"))
    np.testing.assert_array_equal(loaded.predict(X), a.predict(X))


def test_streaming_encoder_statistics_match_the_in_memory_encoder(tmp_path, table):
    rng = np.random.default_rng(0)
    # a heavy-tailed spend column (log1p'd), one with missing values (an indicator)
    X = table[0].assign(spend=np.exp(2.0 * rng.normal(size=N)), visits=rng.poisson(3.0, N))
    X.loc[X.index[::7], "visits"] = np.nan
    _write(tmp_path, X, table[1], table[2])
    data = ParquetDataset(tmp_path, target="ltv", features=list(X.columns))
    streamed = ltvkit.ZILNRegressor(max_epochs=1, min_category_frequency=40).fit(data)
    in_memory = ltvkit.ZILNRegressor(max_epochs=1, min_category_frequency=40).fit(X, table[1])
    a, b = streamed.encoder_, in_memory.encoder_
    assert a.spec_ == b.spec_
    assert a.log_columns_ == b.log_columns_ == ["spend"]
    assert a.indicator_columns_ == ["visits"]
    np.testing.assert_allclose(a.scaler_.mean_, b.scaler_.mean_, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a.scaler_.scale_, b.scaler_.scale_, rtol=1e-12)
    frame = in_memory.schema_.transform(X)
    np.testing.assert_array_equal(a.transform(frame)["x_cat"], b.transform(frame)["x_cat"])


def test_text_categories_that_differ_between_files(tmp_path):
    rng = np.random.default_rng(0)
    for k, levels in enumerate([["UK", "FR"], ["FR", "DE", "ES"]]):
        n = 300
        pd.DataFrame(
            {
                "spend": rng.gamma(2.0, 10.0, n),
                "country": rng.choice(levels, n),
                "ltv": rng.gamma(1.0, 10.0, n) * (rng.random(n) < 0.4),
            }
        ).to_parquet(tmp_path / f"p{k}.parquet")
    data = ParquetDataset(tmp_path, target="ltv")
    model = ltvkit.ZILNRegressor(max_epochs=2, min_category_frequency=1).fit(data)
    assert list(model.schema_.categories["country"]) == ["DE", "ES", "FR", "UK"]
    assert model.encoder_.cardinalities_ == [5]


def test_shuffle_buffer_visits_every_training_row_once_per_epoch(folder, table):
    from ltvkit.nn._streaming import StreamingBatchIterator, StreamingSource, validation_mask

    X = table[0]
    data = ParquetDataset(folder, target="ltv", features=list(X.columns))
    model = ltvkit.ZILNRegressor(max_epochs=1).fit(data)
    targets = {"target": torch_arange(N)}
    for buffer, fraction in [(64, 0.2), (100_000, None)]:
        source = StreamingSource(
            data, model.schema_, model.encoder_, np.float32, targets, table[1], fraction, 7,
            "train" if fraction else "all", 0,
        )  # fmt: skip
        it = StreamingBatchIterator(source, batch_size=50, shuffle=True, seed=0,
                                    shuffle_buffer_rows=buffer)  # fmt: skip
        for _ in range(2):
            rows = np.concatenate([xb["_ltvkit_targets"]["target"].numpy() for xb, _ in it])
            held = validation_mask(0, N, fraction, 7) if fraction else np.zeros(N, bool)
            assert sorted(rows.tolist()) == np.flatnonzero(~held).tolist()
            assert rows.tolist() != sorted(rows.tolist())  # shuffled


def torch_arange(n: int):
    import torch

    return torch.arange(n)


def test_validation_mask_is_deterministic_and_batching_independent():
    from ltvkit.nn._streaming import validation_mask

    whole = validation_mask(0, 10_000, 0.1, seed=3)
    parts = np.concatenate([validation_mask(s, 1000, 0.1, seed=3) for s in range(0, 10_000, 1000)])
    np.testing.assert_array_equal(whole, parts)
    assert 0.08 < whole.mean() < 0.12
    assert not np.array_equal(whole, validation_mask(0, 10_000, 0.1, seed=4))


# --------------------------------------------------------------------------- scoring


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_score_dataset_writes_ids_and_the_score_customers_columns(folder, table, tmp_path, suffix):
    X, y = table[0], table[1]
    model = ltvkit.ZILNRegressor(max_epochs=2, random_state=0).fit(X, y)
    data = ParquetDataset(folder, id_column="customer_id", features=list(X.columns))
    out = ltvkit.score_dataset(model, data, tmp_path / f"scores{suffix}", batch_size=500)
    got = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out)
    expected = ltvkit.score_customers(model, X)
    assert list(got.columns) == ["customer_id", *expected.columns]
    assert got["customer_id"].tolist() == [f"c{i:05d}" for i in range(N)]
    # the last bit may differ (vectorised kernels round an array tail differently)
    rtol = 1e-12
    np.testing.assert_allclose(got[expected.columns].to_numpy(), expected.to_numpy(), rtol=rtol)


def test_score_dataset_checks_its_arguments(folder, table, tmp_path):
    X, y = table[0], table[1]
    model = ltvkit.ZILNRegressor(max_epochs=1).fit(X, y)
    data = ParquetDataset(folder, features=list(X.columns))
    with pytest.raises(ValueError, match="must end in"):
        ltvkit.score_dataset(model, data, tmp_path / "scores.txt")
    with pytest.raises(ValueError, match="ParquetDataset"):
        ltvkit.score_dataset(model, X, tmp_path / "scores.parquet")
    try:
        importlib.import_module("ltvkit.distributed")
    except ImportError:
        with pytest.raises(ImportError, match=r"ltvkit\.distributed"):
            ltvkit.score_dataset(model, data, tmp_path / "s.parquet", client=object())


def test_cli_score_streams_a_parquet_directory(folder, table, tmp_path):
    from ltvkit.cli import main

    X, y = table[0], table[1]
    model = ltvkit.ZILNRegressor(max_epochs=1, random_state=0).fit(X, y)
    path = ltvkit.save(model, tmp_path / "m.ltvkit")
    out = tmp_path / "scores.parquet"
    code = main(
        ["score", "--model", str(path), "--data", str(folder), "--id", "customer_id",
         "--as-of", "2024-01-01", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    got = pd.read_parquet(out)
    assert got["customer_id"].iloc[-1] == f"c{N - 1:05d}"
    from ltvkit._run_record import run_record_path

    record = json.loads(run_record_path(out).read_text())
    assert record["columns"] == list(got.columns)
    np.testing.assert_array_equal(got["predicted_value"].to_numpy(), model.predict(X))


def test_make_ltv_parquet_writes_chunks(tmp_path):
    files = make_ltv_parquet(tmp_path, 2500, chunk_rows=1000, row_group_rows=300, n_features=4)
    assert len(files) == 3
    data = ParquetDataset(tmp_path, target="ltv", id_column="customer_id")
    assert data.num_rows == 2500 and len(data.features) == 4
    assert pq.ParquetFile(files[0]).metadata.num_row_groups == 4
    ids = data.read_column("customer_id", np.int64)
    np.testing.assert_array_equal(ids, np.arange(2500))
    again = make_ltv_parquet(tmp_path / "b", 2500, chunk_rows=1000, n_features=4)
    assert pa.Table.equals(pq.read_table(again[2]), pq.read_table(files[2]))


# ------------------------------------------------------------------------ bounded memory


def test_a_fit_on_more_data_than_the_memory_limit_completes(tmp_path):
    """A subprocess with an address-space limit: loading the table whole would break it.

    The limit is the process's own address space after importing everything and
    fitting once on a tiny dataset, plus less than the table's float64 size; the
    streaming fit of the whole table must still complete.
    """
    pytest.importorskip("resource")
    script = textwrap.dedent(
        """
        import resource, sys, numpy as np
        from ltvkit.datasets import make_ltv_parquet
        from ltvkit.io import ParquetDataset
        from ltvkit import ZILNRegressor
        big, small = sys.argv[1], sys.argv[2]
        make_ltv_parquet(big, 2_000_000, chunk_rows=250_000, row_group_rows=32_768,
                         n_features=40, n_categorical=0)
        make_ltv_parquet(small, 5_000, n_features=40, n_categorical=0)
        params = dict(max_epochs=1, batch_size=4096, hidden_units=(8,), random_state=0)
        ZILNRegressor(**params).fit(ParquetDataset(small, target="ltv", id_column="customer_id"))
        def vm():
            with open("/proc/self/status") as f:
                return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize"))
        table_bytes = 2_000_000 * 40 * 4  # the features as float32: 320 MB
        limit = vm() + 300 * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        try:
            np.ones(table_bytes // 4, dtype=np.float32)  # the table, loaded whole, does not fit
            raise SystemExit("limit too loose")
        except MemoryError:
            pass
        data = ParquetDataset(big, target="ltv", id_column="customer_id")
        model = ZILNRegressor(**params).fit(data)
        assert np.isfinite(model.predict(data)[:10]).all()
        print("ok")
        """
    )
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc (Linux)")
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "big"), str(tmp_path / "small")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")


def test_two_stage_streams_through_xgboost_external_memory(folder, table, monkeypatch):
    import xgboost

    from ltvkit.boosting import _streaming

    X, y = table[0], table[1]
    made = []
    real = xgboost.ExtMemQuantileDMatrix

    def spy(*args, **kwargs):
        made.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(xgboost, "ExtMemQuantileDMatrix", spy)
    monkeypatch.setattr(_streaming, "_PAGE_ROWS", 256)  # several pages
    data = ParquetDataset(folder, target="ltv", features=list(X.columns))
    params = dict(n_estimators=30, n_jobs=1, random_state=0, quantile_cv=2)
    streamed = ltvkit.TwoStageRegressor(early_stopping=True, **params).fit(data)
    assert len(made) == 6  # 2 stages x (train, validation) + 2 cross-fitting folds
    in_memory = ltvkit.TwoStageRegressor(early_stopping=True, **params).fit(X, y)
    assert streamed.n_estimators_[0] <= 30 and streamed.classifier_.evals_result()
    a, b = streamed.predict(X), in_memory.predict(X)
    assert np.corrcoef(np.log1p(a), np.log1p(b))[0, 1] > 0.9
    q = streamed.predict_quantiles(X, [0.1, 0.5, 0.9])
    assert np.all(np.diff(q, axis=1) >= 0)


def _spy_lightgbm_datasets(monkeypatch) -> list:
    """Record the ``data`` of every ``lightgbm.Dataset`` the streaming fit makes."""
    import lightgbm

    made = []
    real = lightgbm.Dataset

    def spy(data, *args, **kwargs):
        made.append(data)
        return real(data, *args, **kwargs)

    monkeypatch.setattr(lightgbm, "Dataset", spy)
    return made


def _no_read_pandas(data: ParquetDataset, monkeypatch) -> None:
    def boom(*args, **kwargs):
        raise AssertionError("the streaming LightGBM fit read the dataset into memory")

    monkeypatch.setattr(data, "read_pandas", boom)


def test_two_stage_lightgbm_streams_through_sequences(folder, table, monkeypatch, tmp_path):
    import lightgbm

    X, y = table[0], table[1]
    data = ParquetDataset(folder, target="ltv", features=list(X.columns))
    _no_read_pandas(data, monkeypatch)
    made = _spy_lightgbm_datasets(monkeypatch)
    params = dict(backend="lightgbm", n_estimators=200, n_jobs=1, random_state=0, quantile_cv=2)
    streamed = ltvkit.TwoStageRegressor(early_stopping=True, patience=5, **params).fit(data)
    # 2 stages x (train, validation) + 2 cross-fitting folds, each a list of Sequences
    # (one per row group: 150-row row groups)
    assert len(made) == 6
    for seqs in made:
        assert isinstance(seqs, list) and len(seqs) > 1
        assert all(isinstance(s, lightgbm.Sequence) for s in seqs)
    assert sum(len(s) for s in made[0]) + sum(len(s) for s in made[1]) == N
    assert sum(len(s) for s in made[2]) + sum(len(s) for s in made[3]) == int((y > 0).sum())
    # early stopping on the held-out rows, as the in-memory fit reports it
    assert streamed.n_estimators_[0] < 200 and streamed.n_estimators_[1] < 200
    assert "valid_0" in streamed.classifier_.evals_result_
    assert streamed.regressor_.best_iteration_ == streamed.n_estimators_[1]
    # the fitted model is the usual LightGBM one: same predictions on the frame and on
    # the dataset, categories re-coded by the booster, save / load
    booster = streamed.regressor_.booster_
    assert booster.pandas_categorical == [
        list(X[c].cat.categories) for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)
    ]
    pred = streamed.predict(X)
    np.testing.assert_allclose(streamed.predict(data), pred, rtol=1e-9)
    q = streamed.predict_quantiles(X, [0.1, 0.5, 0.9])
    assert np.all(np.diff(q, axis=1) >= 0) and np.isfinite(q).all()
    np.testing.assert_allclose(streamed.predict_quantiles(data, [0.1, 0.5, 0.9]), q, rtol=1e-9)
    ltvkit.save(streamed, tmp_path / "model")
    np.testing.assert_array_equal(ltvkit.load(tmp_path / "model").predict(X), pred)
    # quantile_cv=None: no cross-fitting, the in-sample residuals
    made.clear()
    ltvkit.TwoStageRegressor(**dict(params, quantile_cv=None, n_estimators=20)).fit(data)
    assert len(made) == 2


def test_two_stage_lightgbm_stream_matches_the_in_memory_fit(tmp_path, monkeypatch):
    from ltvkit.metrics import normalized_gini

    X, y = make_ltv(n_samples=4000, n_features=5, n_categorical=2, random_state=1)
    y = np.asarray(y, float)
    X.assign(ltv=y).to_parquet(tmp_path / "data.parquet", row_group_size=512)
    data = ParquetDataset(tmp_path, target="ltv", features=list(X.columns))
    _no_read_pandas(data, monkeypatch)
    params = dict(backend="lightgbm", n_estimators=60, n_jobs=1, random_state=0)
    for early_stopping in (False, True):
        kw = dict(params, early_stopping=early_stopping)
        streamed = ltvkit.TwoStageRegressor(**kw).fit(data)
        in_memory = ltvkit.TwoStageRegressor(**kw).fit(X, y)
        a, b = streamed.predict(X), in_memory.predict(X)
        assert abs(normalized_gini(y, a) - normalized_gini(y, b)) < 0.02
        if not early_stopping:
            # every row is in LightGBM's bin sample (< bin_construct_sample_cnt): the
            # same bins, the same trees, the same bias correction
            np.testing.assert_allclose(a, b, rtol=1e-6)
        for stage in ("classifier_", "regressor_"):
            assert set(vars(getattr(streamed, stage))) == set(vars(getattr(in_memory, stage)))


@pytest.mark.parametrize("cls", [c for _, c in REGRESSORS], ids=[n for n, _ in REGRESSORS])
def test_score_dataset_matches_score_customers_for_every_model(cls, folder, table, tmp_path):
    X, y, y_multi = table
    est = _fast(cls, max_epochs=2)
    model = est.fit(X, y_multi if getattr(est, "_multi_horizon", False) else y)
    data = ParquetDataset(folder, id_column="customer_id", features=list(X.columns))
    got = pd.read_parquet(ltvkit.score_dataset(model, data, tmp_path / "s.parquet"))
    expected = ltvkit.score_customers(model, X)
    assert list(got.columns) == ["customer_id", *expected.columns]
    _assert_close_outputs(got[expected.columns].to_numpy(), expected.to_numpy())
    assert "_shared_outputs" not in vars(model)


def _typed_table(n: int, seed: int) -> pa.Table:
    """Every column type a Parquet file commonly holds, with nulls and odd levels."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(3.0, n).astype(float)
    counts[::5] = np.nan
    country = rng.choice(["UK", "FR", "DE", "NL"], n).astype(object)
    country[::7] = None
    channel = rng.choice(["web", "app", "shop"], n).astype(object)
    channel[::11] = None
    return pa.table(
        {
            "spend": np.exp(2.0 * rng.normal(size=n)),  # float, log1p'd
            "visits": pa.array(counts, type=pa.int64(), from_pandas=True),  # int, nulls
            "score": pa.array(rng.normal(size=n).astype(np.float32)),
            "returning": pa.array(rng.random(n) < 0.3),  # bool without nulls
            "country": pa.array(country, type=pa.string()),  # plain text
            "channel": pa.array(channel, type=pa.string()).dictionary_encode(),
        }
    )


def test_arrow_encoding_equals_the_pandas_path():
    from ltvkit.io import batch_to_frame
    from ltvkit.nn._streaming import encode_arrow

    train = _typed_table(600, 0)
    X = batch_to_frame(train)
    y = np.random.default_rng(1).gamma(1.0, 10.0, 600) * (np.arange(600) % 3 == 0)
    model = ltvkit.ZILNRegressor(max_epochs=1, min_category_frequency=30).fit(X, y)
    assert model.encoder_.log_columns_ == ["spend"]

    def pandas_path(batch):
        frame = model.schema_._transform_frame(batch_to_frame(batch), by_name=True)
        return model.encoder_.transform(frame, np.float32)

    # new rows: a level never seen in fit, and the dictionary of each batch differs
    new = _typed_table(500, 2).to_pandas()
    new.loc[::9, "country"] = "JP"
    cache: dict = {}
    for batch in pa.Table.from_pandas(new, preserve_index=False).to_batches(max_chunksize=128):
        for use_cache in (cache, None):
            got = encode_arrow(batch, model.schema_, model.encoder_, np.float32, use_cache)
            want = pandas_path(batch)
            assert got.keys() == want.keys()
            for key in want:
                np.testing.assert_array_equal(got[key], want[key], err_msg=key)
                assert got[key].dtype == want[key].dtype
    assert set(cache) == {"country", "channel"}


@pytest.mark.parametrize(
    "column, values",
    [
        ("returning", pa.array([True, None, False])),  # bool with nulls
        ("visits", pa.array(pd.to_datetime(["2020-01-01"] * 3))),  # a timestamp
    ],
)
def test_arrow_encoding_leaves_other_types_to_pandas(column, values):
    from ltvkit.io import batch_to_frame
    from ltvkit.nn._streaming import encode_arrow

    train = _typed_table(300, 0)
    model = ltvkit.ZILNRegressor(max_epochs=1).fit(batch_to_frame(train), np.ones(300))
    batch = (
        train.slice(0, 3)
        .set_column(train.schema.get_field_index(column), column, values)
        .to_batches()[0]
    )
    assert encode_arrow(batch, model.schema_, model.encoder_, np.float32) is None


def test_deep_models_score_arrow_batches_without_a_dataframe(folder, table, tmp_path, monkeypatch):
    from ltvkit.base import _ArrowRows

    X, y = table[0], table[1]
    model = ltvkit.ZILNRegressor(max_epochs=1, random_state=0).fit(X, y)
    data = ParquetDataset(folder, id_column="customer_id", features=list(X.columns))
    expected = model.predict(X)

    def no_frame(self):
        raise AssertionError("the Arrow rows were turned into a DataFrame")

    monkeypatch.setattr(_ArrowRows, "frame", no_frame)
    np.testing.assert_allclose(model.predict(data), expected, rtol=1e-12)
    out = ltvkit.score_dataset(model, data, tmp_path / "s.parquet", quantiles=(0.5,))
    np.testing.assert_allclose(pd.read_parquet(out)["predicted_value"], expected, rtol=1e-12)


@pytest.mark.parametrize(
    "value, pattern",
    [(np.inf, "column 'num_0' of X contains infinite"), ("a\x00b", "column 'cat_0'.*NUL")],
)
def test_scoring_a_dataset_refuses_what_in_memory_scoring_refuses(table, tmp_path, value, pattern):
    X, y = table[0], table[1]
    model = ltvkit.ZILNRegressor(max_epochs=1, random_state=0).fit(X, y)
    bad = X.copy()
    column = "num_0" if value is np.inf else "cat_0"
    if column == "cat_0":
        bad[column] = bad[column].astype(object)
    bad.iloc[N - 1, bad.columns.get_loc(column)] = value
    bad.iloc[: N // 2].to_parquet(tmp_path / "a.parquet")
    bad.iloc[N // 2 :].to_parquet(tmp_path / "b.parquet")
    data = ParquetDataset(tmp_path)
    with pytest.raises(ValueError, match=pattern):
        model.predict(bad)
    with pytest.raises(ValueError, match=pattern):
        model.predict(data)
    with pytest.raises(ValueError, match=pattern):
        ltvkit.score_dataset(model, data, tmp_path / "s.parquet")
