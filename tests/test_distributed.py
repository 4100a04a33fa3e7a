"""Data-parallel training (torchrun, gloo) and TwoStageRegressor / scoring on Dask.

The torchrun tests start ``tests/_ddp_worker.py`` in subprocesses (2 ranks, one thread
each) with a hard timeout, so a wiring bug shows as a failure, never as a hung suite.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ltvkit import distributed

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("_ddp_worker.py")
# generous: each run takes ~5-10 s on one core; only a hang gets near it
RUN_TIMEOUT_S = 240


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["OMP_NUM_THREADS"] = "1"
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    env.update(extra)
    return env


def _run(args: list[str], nproc: int | None, **env: str) -> subprocess.CompletedProcess:
    launcher = [sys.executable]
    if nproc:
        launcher += ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)]
    return subprocess.run(
        [*launcher, str(WORKER), *args],
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )


# -- helpers -------------------------------------------------------------------------------
def test_single_process_is_a_world_of_one():
    assert not distributed.init_from_env()
    assert (distributed.rank(), distributed.world_size()) == (0, 1)
    assert distributed.is_main_process()
    assert distributed.broadcast_object([1, 2]) == [1, 2]
    np.testing.assert_array_equal(distributed.all_reduce_sum([1, 2]), [1.0, 2.0])


@pytest.mark.parametrize("n, world", [(0, 1), (1, 3), (10, 3), (7, 7), (100, 8)])
def test_shard_bounds_cover_every_item_once(n, world):
    bounds = [distributed.shard_bounds(n, r, world) for r in range(world)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    sizes = [stop - start for start, stop in bounds]
    assert max(sizes) - min(sizes) <= 1


def test_shard_by_size_is_a_partition_and_balanced():
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 1000, size=37).tolist()
    items = list(range(37))
    shares = [distributed.shard(items, r, 4, sizes=sizes) for r in range(4)]
    assert sorted(i for s in shares for i in s) == items
    loads = [sum(sizes[i] for i in s) for s in shares]
    assert max(loads) - min(loads) <= max(sizes)


def test_bad_settings_are_value_errors(monkeypatch):
    with pytest.raises(ValueError, match="rank=2"):
        distributed.shard_bounds(5, 2, 2)
    monkeypatch.setenv("LTVKIT_DISTRIBUTED_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="LTVKIT_DISTRIBUTED_TIMEOUT"):
        distributed.collective_timeout()
    monkeypatch.setenv("LTVKIT_DISTRIBUTED_TIMEOUT", "2.5")
    assert distributed.collective_timeout().total_seconds() == 2.5


def test_opt_out_keeps_fit_single_process(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LTVKIT_DISTRIBUTED", "0")
    assert not distributed.init_from_env()


def test_world_size_without_torchrun_env_is_a_value_error(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    for var in ("MASTER_ADDR", "MASTER_PORT", "RANK"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ValueError, match="torchrun"):
        distributed.init_from_env()


# -- torchrun ------------------------------------------------------------------------------
def test_two_ranks_make_the_updates_of_one_process(tmp_path):
    """2 gloo ranks, each on its half of every global batch, end with the weights that
    one process reaches on the same batches (float64: to ~1e-12), and write one file."""
    one = _run([str(tmp_path / "one")], nproc=None)
    assert one.returncode == 0, one.stderr[-3000:]
    two = _run([str(tmp_path / "two")], nproc=2)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "rank 1 of 2 done" in two.stdout and "rank 0 of 2 done" in two.stdout

    a = np.load(tmp_path / "one" / "weights.npz")
    b = np.load(tmp_path / "two" / "weights.npz")
    assert int(a["_world"]) == 1 and int(b["_world"]) == 2
    np.testing.assert_allclose(b["_valid_loss"], a["_valid_loss"], rtol=1e-10)
    keys = [k for k in a.files if not k.startswith("_")]
    assert keys and sorted(keys) == sorted(k for k in b.files if not k.startswith("_"))
    for k in keys:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-9, atol=1e-12, err_msg=k)

    import ltvkit

    model = ltvkit.load(tmp_path / "two" / "model.ltv")
    assert model.n_iter_ == 4
    # rank 0 wrote the file, renamed from a temporary name; nothing else is left
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["model.ltv", "weights.npz"]


def test_a_failing_rank_stops_the_job_with_its_error(tmp_path):
    run = _run(
        [str(tmp_path / "out"), "--fail-rank", "1"], nproc=2, LTVKIT_DISTRIBUTED_TIMEOUT="60"
    )
    assert run.returncode != 0
    assert "rank 1 fails on purpose" in run.stderr
    assert not (tmp_path / "out" / "model.ltv").exists()


def test_different_data_on_the_ranks_is_refused(tmp_path):
    run = _run([str(tmp_path / "out"), "--uneven"], nproc=2, LTVKIT_DISTRIBUTED_TIMEOUT="60")
    assert run.returncode != 0
    assert "every rank must call fit with the same data" in run.stderr
    assert not (tmp_path / "out" / "model.ltv").exists()


def test_a_silent_rank_times_out_the_collectives(tmp_path):
    run = _run(
        [str(tmp_path / "out"), "--hang-rank", "1"], nproc=2, LTVKIT_DISTRIBUTED_TIMEOUT="5"
    )
    assert run.returncode != 0
    assert "Timed out" in run.stderr or "timeout" in run.stderr.lower()
    assert not (tmp_path / "out" / "model.ltv").exists()


@pytest.fixture(scope="module")
def parquet_dir(tmp_path_factory):
    """5 files of 600 rows, row groups of 200: 15 row groups to share between ranks."""
    from ltvkit.datasets import make_ltv

    X, y = make_ltv(n_samples=3000, random_state=0)
    frame = X.assign(ltv=y, customer_id=np.arange(3000))
    folder = tmp_path_factory.mktemp("parquet")
    for i in range(5):
        frame.iloc[i * 600 : (i + 1) * 600].to_parquet(
            folder / f"part-{i}.parquet", row_group_size=200
        )
    return folder


class _RowsSource:
    """A StreamingSource stand-in that yields row positions (what a rank reads)."""

    def __init__(self, dataset, fraction, side):
        self.dataset, self.valid_fraction, self.valid_seed, self.side = dataset, fraction, 7, side

    def __len__(self):
        return self.dataset.num_rows

    def encode(self, pos, batch):
        from ltvkit.nn._streaming import validation_mask

        rows = np.arange(pos, pos + batch.num_rows)
        if self.valid_fraction is not None and self.side != "all":
            mask = validation_mask(pos, batch.num_rows, self.valid_fraction, self.valid_seed)
            rows = rows[mask if self.side == "valid" else ~mask]
        if not len(rows):
            return None
        import torch

        return {"row": torch.from_numpy(rows)}, torch.from_numpy(rows)

    def batch(self, X, rows):
        return X, rows


@pytest.mark.parametrize("side", ["train", "valid"])
def test_each_rank_streams_its_own_share_of_row_groups(parquet_dir, side):
    from ltvkit.io import ParquetDataset
    from ltvkit.nn._data_parallel import ShardedStreamingBatchIterator

    data = ParquetDataset(parquet_dir, target="ltv", id_column="customer_id")
    source = _RowsSource(data, 0.2, side)
    shuffle = side == "train"
    seen = []
    for rank in range(2):
        it = ShardedStreamingBatchIterator(
            source, 64, shuffle=shuffle, seed=3, shuffle_buffer_rows=256, rank=rank, world_size=2
        )
        seen.append([rows.numpy() for _, rows in it])
    a, b = (np.concatenate(s) for s in seen)
    assert not set(a) & set(b)  # disjoint shares
    if shuffle:
        # the same number of steps on both ranks, each a half of the global batch
        assert len(seen[0]) == len(seen[1]) > 0
        assert {len(r) for s in seen for r in s} == {32}
        # at most a row group's worth of each share waits for a later epoch
        assert len(a) + len(b) > 0.8 * 3000 - 2 * 200
    else:  # validation: every held-out row, once
        from ltvkit.nn._streaming import validation_mask

        held = np.flatnonzero(validation_mask(0, 3000, 0.2, 7))
        np.testing.assert_array_equal(np.sort(np.concatenate([a, b])), held)


def test_streaming_fit_on_two_ranks(parquet_dir, tmp_path):
    """torchrun, each rank streaming its share of the Parquet row groups: the fit runs,
    rank 0 writes the model, and its validation losses track one process's."""
    one = _run([str(tmp_path / "one"), "--parquet", str(parquet_dir), "--stream"], nproc=None)
    assert one.returncode == 0, one.stderr[-3000:]
    two = _run([str(tmp_path / "two"), "--parquet", str(parquet_dir), "--stream"], nproc=2)
    assert two.returncode == 0, two.stderr[-3000:]
    a = np.load(tmp_path / "one" / "weights.npz")["_valid_loss"]
    b = np.load(tmp_path / "two" / "weights.npz")["_valid_loss"]
    assert len(a) == len(b) == 4
    # the same held-out rows, a different (sharded) row order: close, not equal
    np.testing.assert_allclose(b, a, rtol=0.05)
    assert b[-1] < b[0]

    import ltvkit

    model = ltvkit.load(tmp_path / "two" / "model.ltv")
    assert model.n_iter_ == 4


def test_parquet_data_in_memory_on_two_ranks_equals_one_process(parquet_dir, tmp_path):
    one = _run([str(tmp_path / "one"), "--parquet", str(parquet_dir)], nproc=None)
    two = _run([str(tmp_path / "two"), "--parquet", str(parquet_dir)], nproc=2)
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-3000:]
    a, b = np.load(tmp_path / "one" / "weights.npz"), np.load(tmp_path / "two" / "weights.npz")
    for k in a.files:
        if not k.startswith("_"):
            np.testing.assert_allclose(b[k], a[k], rtol=1e-9, atol=1e-12, err_msg=k)


def test_ltvkit_fit_under_torchrun_writes_one_model_and_run_record(parquet_dir, tmp_path):
    import ltvkit

    out = tmp_path / "model.ltvkit"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd += ["--nproc_per_node", "2", "-m", "ltvkit", "fit", "--model", "ziln"]
    cmd += ["--data", str(parquet_dir / "part-0.parquet"), "--target", "ltv"]
    cmd += ["--id", "customer_id", "--set", "max_epochs=2", "--out", str(out)]
    run = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert run.returncode == 0, run.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.ltvkit", "model.ltvkit.run.json"]
    assert ltvkit.load(out).n_iter_ == 2


# -- Dask ----------------------------------------------------------------------------------
def test_two_stage_on_dask_needs_a_client(ltv_data):
    dd = pytest.importorskip("dask.dataframe")
    distributed_ = pytest.importorskip("distributed")
    from ltvkit.boosting import TwoStageRegressor

    try:
        distributed_.get_client()
        pytest.skip("a distributed.Client is active in this process")
    except ValueError:
        pass
    X, y, *_ = ltv_data
    frame = dd.from_pandas(X.assign(ltv=y), npartitions=2)
    with pytest.raises(ValueError, match=r"no distributed\.Client"):
        TwoStageRegressor().fit(frame.drop(columns="ltv"), frame["ltv"])


@pytest.fixture(scope="module")
def dask_client():
    pytest.importorskip("dask.dataframe")
    distributed_ = pytest.importorskip("distributed")
    with (
        distributed_.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=False,
            protocol="tcp",  # an address `ltvkit score --scheduler` can reach
            dashboard_address=None,
        ) as cluster,
        distributed_.Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def ltv_data():
    from ltvkit.datasets import make_ltv

    X, y = make_ltv(n_samples=3000, random_state=0)
    X_test, y_test = make_ltv(n_samples=2000, random_state=1)
    return X, y, X_test, y_test


@pytest.mark.parametrize("backend", ["xgboost", "lightgbm"])
def test_two_stage_on_dask_matches_the_in_memory_fit(dask_client, ltv_data, backend, tmp_path):
    import dask.dataframe as dd

    import ltvkit
    from ltvkit.boosting import TwoStageRegressor
    from ltvkit.metrics import normalized_gini

    X, y, X_test, y_test = ltv_data
    frame = dd.from_pandas(X.assign(ltv=y), npartitions=4)
    params = dict(backend=backend, n_estimators=80, n_jobs=1, random_state=0)
    on_dask = TwoStageRegressor(**params).fit(frame.drop(columns="ltv"), frame["ltv"])
    in_memory = TwoStageRegressor(**params).fit(X, y)

    # an ordinary fitted estimator: the libraries' own sklearn models, pandas predictions
    assert type(on_dask.classifier_) is type(in_memory.classifier_)
    assert type(on_dask.regressor_) is type(in_memory.regressor_)
    pred, ref = on_dask.predict(X_test), in_memory.predict(X_test)
    # distributed histogram sketches differ a little from one machine's: within noise
    gini, gini_ref = normalized_gini(y_test, pred), normalized_gini(y_test, ref)
    assert abs(gini - gini_ref) < 0.02, (gini, gini_ref)
    assert abs(pred.mean() / ref.mean() - 1) < 0.05
    assert abs(on_dask.correction_factor_ / in_memory.correction_factor_ - 1) < 0.05
    q = on_dask.predict_quantiles(X_test[:50], [0.1, 0.9])
    assert (q[:, 0] <= q[:, 1]).all()

    lazy = on_dask.predict(dd.from_pandas(X_test, npartitions=3))
    assert type(lazy).__module__.startswith("dask")
    np.testing.assert_allclose(lazy.compute().to_numpy(), pred)

    ltvkit.save(on_dask, tmp_path / "m.ltvkit")
    np.testing.assert_allclose(ltvkit.load(tmp_path / "m.ltvkit").predict(X_test), pred)


def test_two_stage_on_dask_refuses_what_it_cannot_do(dask_client, ltv_data):
    import dask.dataframe as dd

    from ltvkit.boosting import TwoStageRegressor

    X, y, *_ = ltv_data
    frame = dd.from_pandas(X.assign(ltv=y), npartitions=2)
    Xd, yd = frame.drop(columns="ltv"), frame["ltv"]
    with pytest.raises(ValueError, match="early_stopping"):
        TwoStageRegressor(early_stopping=True).fit(Xd, yd)
    with pytest.raises(ValueError, match="dask Series"):
        TwoStageRegressor().fit(Xd, y)
    with pytest.raises(ValueError, match="negative"):
        TwoStageRegressor(n_estimators=5).fit(Xd, yd - 1e9)
    with pytest.raises(ValueError, match="y > 0"):
        TwoStageRegressor(n_estimators=5).fit(Xd, yd * 0)


@pytest.fixture(scope="module")
def fitted_two_stage(ltv_data):
    from ltvkit.boosting import TwoStageRegressor

    X, y, *_ = ltv_data
    return TwoStageRegressor(n_estimators=40, n_jobs=1, random_state=0).fit(X, y)


def test_score_dataset_on_dask_writes_every_customer_with_its_id(
    dask_client, parquet_dir, fitted_two_stage, tmp_path
):
    import pandas as pd

    import ltvkit
    from ltvkit.distributed import score_dataset_dask
    from ltvkit.io import ParquetDataset

    data = ParquetDataset(
        parquet_dir, id_column="customer_id", features=fitted_two_stage.feature_names_in_
    )
    frame = pd.concat([pd.read_parquet(f) for f in data.files], ignore_index=True)
    expected = ltvkit.score_customers(fitted_two_stage, frame[list(data.features)])

    out = score_dataset_dask(
        fitted_two_stage, data, tmp_path / "scores.parquet", client=dask_client
    )
    scores = pd.read_parquet(out)
    assert list(scores.columns[:3]) == ["customer_id", "predicted_value", "nonzero_proba"]
    np.testing.assert_array_equal(scores["customer_id"], frame["customer_id"])  # in order
    np.testing.assert_allclose(scores[expected.columns].to_numpy(), expected.to_numpy())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.parquet"]  # no leftovers

    # a directory of parts, one task per row group
    parts = score_dataset_dask(
        fitted_two_stage, data, tmp_path / "parts", client=dask_client, partition="row_group"
    )
    assert len(list(parts.glob("part-*.parquet"))) == len(data.fragments) == 15
    again = ParquetDataset(parts).read_pandas()
    np.testing.assert_allclose(again["predicted_value"], scores["predicted_value"])

    # ltvkit.score_dataset(..., client=...) goes through the same path, with its options
    via = ltvkit.score_dataset(
        fitted_two_stage, data, tmp_path / "via.parquet", quantiles=(0.5,), client=dask_client
    )
    via = pd.read_parquet(via)
    assert list(via.columns) == ["customer_id", "predicted_value", "nonzero_proba", "quantile_0.5"]
    np.testing.assert_allclose(via["predicted_value"], scores["predicted_value"])


def test_ltvkit_score_with_a_scheduler(dask_client, parquet_dir, fitted_two_stage, tmp_path):
    import json

    import pandas as pd

    import ltvkit
    from ltvkit.cli import main

    model_file = ltvkit.save(fitted_two_stage, tmp_path / "model.ltvkit")
    out = tmp_path / "scores.parquet"
    address = dask_client.scheduler.address
    argv = ["score", "--model", str(model_file), "--data", str(parquet_dir)]
    argv += ["--id", "customer_id", "--as-of", "2024-01-01", "--out", str(out)]
    assert main([*argv, "--scheduler", address]) == 0
    scores = pd.read_parquet(out)
    assert len(scores) == 3000 and scores.columns[0] == "customer_id"
    record = json.loads((tmp_path / "scores.parquet.run.json").read_text())
    assert record["scheduler"] == address
    # a scheduler nobody listens at: one clear line, exit code 2
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        assert main([*argv, "--scheduler", "tcp://127.0.0.1:9"]) == 2


class _Fails:
    """A model whose predictions fail: a task that raises on the cluster."""

    def predict(self, X):
        raise ValueError("no prediction today")


def test_a_failing_scoring_task_names_its_file_and_leaves_nothing(
    dask_client, parquet_dir, fitted_two_stage, tmp_path
):
    from ltvkit.distributed import score_dataset_dask
    from ltvkit.io import ParquetDataset

    data = ParquetDataset(parquet_dir, features=fitted_two_stage.feature_names_in_)
    with pytest.raises(RuntimeError, match=r"part-\d\.parquet.*no prediction today"):
        score_dataset_dask(_Fails(), data, tmp_path / "scores.parquet", client=dask_client)
    assert list(tmp_path.iterdir()) == []


class _DiesOnce:
    """A model whose first prediction kills its process: a Dask worker lost mid-task."""

    def __init__(self, model, flag):
        self.model, self.flag = model, str(flag)

    def predict(self, X):
        if not os.path.exists(self.flag):
            open(self.flag, "w").close()
            os._exit(1)
        return self.model.predict(X)

    def predict_nonzero_proba(self, X):
        return self.model.predict_nonzero_proba(X)


def test_a_lost_dask_worker_is_retried(parquet_dir, fitted_two_stage, tmp_path):
    pytest.importorskip("dask.dataframe")
    distributed_ = pytest.importorskip("distributed")
    import cloudpickle
    import pandas as pd

    from ltvkit.distributed import score_dataset_dask
    from ltvkit.io import ParquetDataset

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # worker processes
    try:
        data = ParquetDataset(
            parquet_dir, id_column="customer_id", features=fitted_two_stage.feature_names_in_
        )
        dies = _DiesOnce(fitted_two_stage, tmp_path / "died")
        with (
            distributed_.LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
            ) as cluster,
            distributed_.Client(cluster) as client,
        ):
            out = score_dataset_dask(dies, data, tmp_path / "scores.parquet", client=client)
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert (tmp_path / "died").exists()  # a worker did die
    scores = pd.read_parquet(out)
    np.testing.assert_array_equal(scores["customer_id"], np.arange(3000))
