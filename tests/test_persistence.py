"""Model files (``ltvkit.save`` / ``ltvkit.load``), dropped optimizer state and
``ltvkit.score_customers``.

Every registered estimator's round trip is in ``tests/test_common.py``
(``test_save_load_round_trip``); this file tests the format itself: Pipelines, what is
refused (crafted files, other versions, files that are not model files), atomic writes,
what is and is not saved, and the scores table.
"""

from __future__ import annotations

import io
import json
import pickle
import warnings
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import skops
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

import ltvkit
from ltvkit import score_customers
from ltvkit._persistence import FORMAT_VERSION
from ltvkit.datasets import make_ltv

FAST_DEEP = dict(hidden_units=(16,), max_epochs=3, batch_size=64, learning_rate=1e-2)


@pytest.fixture(scope="module")
def data():
    X, y = make_ltv(n_samples=400, n_features=5, n_categorical=2, random_state=0)
    X.index = pd.Index([f"{i:08d}" for i in range(len(X))], name="customer_id")
    return X, np.asarray(y, dtype=float)


@pytest.fixture(scope="module")
def two_stage(data):
    X, y = data
    return ltvkit.TwoStageRegressor(n_estimators=20, random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def ziln(data):
    X, y = data
    return ltvkit.ZILNRegressor(**FAST_DEEP, random_state=0).fit(X, y)


def _rewrite(src: Path, dst: Path, replace: dict[str, bytes]) -> Path:
    """Copy a model file, replacing some members (a crafted or edited file)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            zout.writestr(name, replace.get(name, zin.read(name)))
    return dst


def _manifest(path: Path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("manifest.json"))


# ---------------------------------------------------------------------------- round trips
def test_pipeline_round_trip_is_identical(data, tmp_path):
    X, y = data
    keep = ColumnTransformer(
        [("keep", "passthrough", list(X.columns))],
        remainder="drop",
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")
    inner = Pipeline([("model", ltvkit.ZILNRegressor(**FAST_DEEP, random_state=0))])
    pipe = Pipeline([("columns", keep), ("inner", inner)]).fit(X, y)
    path = ltvkit.save(pipe, tmp_path / "pipe.ltvkit")
    loaded = ltvkit.load(path)
    assert isinstance(loaded, Pipeline)
    np.testing.assert_array_equal(loaded.predict(X), pipe.predict(X))
    pd.testing.assert_frame_equal(score_customers(loaded, X), score_customers(pipe, X))
    assert _manifest(path)["networks"][0]["location"] == ["inner", "model"]
    # the caller's pipeline is untouched by save (its net is still there)
    assert hasattr(pipe[-1][-1], "net_")


def test_the_file_holds_no_pickle_and_records_versions_and_schema(two_stage, ziln, tmp_path):
    path = ltvkit.save(ziln, tmp_path / "m.ltvkit", metadata={"note": "weekly"})
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        members = {n: zf.read(n) for n in names}
    assert names[0] == "manifest.json"
    assert {"estimator.skops", "networks/0/weights.safetensors", "networks/0/history.json"} <= set(
        names
    )
    inner = zipfile.ZipFile(io.BytesIO(members["estimator.skops"]))
    for blob in [*members.values(), *(inner.read(n) for n in inner.namelist())]:
        assert not blob.startswith(b"\x80"), "a pickle stream inside the model file"
    manifest = json.loads(members["manifest.json"])
    assert manifest["format"] == "ltvkit-model"
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["ltvkit_version"] == ltvkit.__version__
    for lib in ("torch", "scikit-learn", "skorch", "xgboost", "lightgbm", "numpy", "pandas"):
        assert manifest["versions"][lib], lib
    assert manifest["estimator"]["class"] == "ltvkit.nn._ziln.ZILNRegressor"
    assert manifest["estimator"]["params"]["hidden_units"] == [16]
    schema = manifest["input_schema"]
    assert schema["columns"] == list(ziln.feature_names_in_)
    assert schema["kinds"]["cat_0"] == "categorical" and schema["kinds"]["num_0"] == "numeric"
    assert schema["categories"]["cat_0"]["levels"][:2] == ["v0", "v1"]
    _, read_back = ltvkit.load(path, return_manifest=True)
    assert read_back["metadata"] == {"note": "weekly"}
    # a booster model: its boosters inside skops, no torch part
    path2 = ltvkit.save(two_stage, tmp_path / "b.ltvkit")
    assert _manifest(path2)["networks"] == []


def test_loading_restores_exactly_the_saved_attributes_and_leaves_the_rng(data, tmp_path):
    import torch

    X, y = data
    est = ltvkit.OptDistRegressor(
        **FAST_DEEP, n_components=3, component_units=(8,), selection_units=(8,), random_state=3
    ).fit(X, y)
    path = ltvkit.save(est, tmp_path / "o.ltvkit")
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    loaded = ltvkit.load(path)
    assert torch.equal(torch.random.get_rng_state(), before)
    # OptDist draws its component seeds in _build_module: the saved ones are kept
    assert loaded.component_seeds_ == est.component_seeds_
    assert loaded.prepared_info_ == est.prepared_info_
    assert len(loaded.net_.history) == len(est.net_.history) == est.n_iter_
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    # a loaded model can be fitted again
    loaded.set_params(max_epochs=1).fit(X, y)


def test_callbacks_are_not_saved_and_a_warning_names_them(data, tmp_path):
    from skorch.callbacks import EpochTimer

    X, y = data
    est = ltvkit.ZILNRegressor(**FAST_DEEP, random_state=0, callbacks=[EpochTimer()]).fit(X, y)
    with pytest.warns(UserWarning, match="callbacks"):
        path = ltvkit.save(est, tmp_path / "cb.ltvkit")
    loaded = ltvkit.load(path)
    assert loaded.callbacks is None and est.callbacks is not None
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))


def test_save_refuses_what_load_would_refuse(data, tmp_path):
    from sklearn.preprocessing import FunctionTransformer

    X, y = data
    pipe = Pipeline(
        [("f", FunctionTransformer(lambda Z: Z)), ("m", ltvkit.TwoStageRegressor(n_estimators=5))]
    ).fit(X, y)
    with pytest.raises(ValueError, match="type"):
        ltvkit.save(pipe, tmp_path / "f.ltvkit")
    assert not (tmp_path / "f.ltvkit").exists()
    with pytest.raises(TypeError, match="ltvkit estimator"):
        ltvkit.save(Pipeline([("m", FunctionTransformer())]), tmp_path / "g.ltvkit")


# ---------------------------------------------------------------------------- refused files
def _crafted_skops(flag: Path) -> bytes:
    """A skops archive whose payload runs code when constructed: it creates ``flag``."""
    code = f"open({str(flag)!r}, 'w').close()"
    schema = {
        "__class__": "exec",
        "__module__": "builtins",
        "__loader__": "ConstructorFromReduceNode",
        "content": {
            "__class__": "tuple",
            "__module__": "builtins",
            "__loader__": "TupleNode",
            "content": [
                {
                    "__class__": "str",
                    "__module__": "builtins",
                    "__loader__": "JsonNode",
                    "content": json.dumps(code),
                    "is_json": True,
                }
            ],
        },
        "protocol": json.loads(zipfile.ZipFile(io.BytesIO(sio.dumps(1))).read("schema.json"))[
            "protocol"
        ],
        "_skops_version": skops.__version__,
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("schema.json", json.dumps(schema))
    return buf.getvalue()


def test_a_crafted_file_is_refused_without_executing_code(two_stage, tmp_path):
    flag = tmp_path / "pwned"
    payload = _crafted_skops(flag)
    # the payload is live: a loader that trusted it would run the code
    sio.loads(payload, trusted=["builtins.exec"])
    assert flag.exists()
    flag.unlink()
    good = ltvkit.save(two_stage, tmp_path / "good.ltvkit")
    bad = _rewrite(good, tmp_path / "bad.ltvkit", {"estimator.skops": payload})
    with pytest.raises(ValueError, match=r"builtins\.exec.*allowlist"):
        ltvkit.load(bad)
    assert not flag.exists()


def test_a_file_naming_a_module_to_import_is_refused_without_importing_it(two_stage, tmp_path):
    import sys

    # importing ltvkit.__main__ would run the command line: load never imports what a
    # file names (only the registry's modules), so the type is unknown and refused
    assert "ltvkit.__main__" not in sys.modules
    payload = json.loads(zipfile.ZipFile(io.BytesIO(sio.dumps(1))).read("schema.json"))
    payload.update({"__class__": "Thing", "__module__": "ltvkit.__main__"})
    payload.update({"__loader__": "ObjectNode"})
    payload.pop("content", None)
    payload.pop("is_json", None)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("schema.json", json.dumps(payload))
    good = ltvkit.save(two_stage, tmp_path / "good.ltvkit")
    bad = _rewrite(good, tmp_path / "bad.ltvkit", {"estimator.skops": buf.getvalue()})
    with pytest.raises(ValueError, match=r"ltvkit\.__main__\.Thing"):
        ltvkit.load(bad)
    assert "ltvkit.__main__" not in sys.modules


def test_a_manifest_naming_another_class_is_refused(two_stage, tmp_path):
    good = ltvkit.save(two_stage, tmp_path / "good.ltvkit")
    manifest = _manifest(good)
    manifest["estimator"]["class"] = "os.system"
    bad = _rewrite(good, tmp_path / "bad.ltvkit", {"manifest.json": json.dumps(manifest).encode()})
    with pytest.raises(ValueError, match=r"'os\.system'.*refused"):
        ltvkit.load(bad)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("ltvkit_version", "0.0.3", r"written by ltvkit 0\.0\.3; this is ltvkit"),
        ("ltvkit_version", "1.4.0", r"written by ltvkit 1\.4\.0"),
        ("ltvkit_version", None, "written by ltvkit None"),
        ("format_version", 99, "format version 99"),
        ("format", "something-else", "not an ltvkit model file"),
    ],
    ids=["old-version", "newer-version", "no-version", "unknown-format-version", "other-format"],
)
def test_an_incompatible_file_is_refused(two_stage, tmp_path, field, value, match):
    good = ltvkit.save(two_stage, tmp_path / "good.ltvkit")
    manifest = _manifest(good)
    manifest[field] = value
    bad = _rewrite(good, tmp_path / "old.ltvkit", {"manifest.json": json.dumps(manifest).encode()})
    with pytest.raises(ValueError, match=match):
        ltvkit.load(bad)


def test_a_file_that_is_not_a_model_file_is_refused(two_stage, tmp_path):
    csv = tmp_path / "scores.csv"
    csv.write_text("id,value\n1,2\n")
    other_zip = tmp_path / "other.zip"
    with zipfile.ZipFile(other_zip, "w") as zf:
        zf.writestr("readme.txt", "hello")
    good = ltvkit.save(two_stage, tmp_path / "good.ltvkit")
    raw = good.read_bytes()
    truncated = tmp_path / "truncated.ltvkit"
    truncated.write_bytes(raw[: len(raw) // 2])
    corrupt = tmp_path / "corrupt.ltvkit"
    mid = len(raw) // 2
    corrupt.write_bytes(raw[:mid] + bytes(b ^ 0xFF for b in raw[mid : mid + 64]) + raw[mid + 64 :])
    pickled = tmp_path / "model.pkl"
    pickled.write_bytes(pickle.dumps(two_stage))
    for path in (csv, other_zip, truncated, corrupt, pickled, tmp_path):
        with pytest.raises(ValueError, match="is not an ltvkit model file"):
            ltvkit.load(path)
    with pytest.raises(FileNotFoundError):
        ltvkit.load(tmp_path / "absent.ltvkit")


# ---------------------------------------------------------------------------- atomic writes
def test_a_failing_save_leaves_the_old_file_intact_and_no_temporary_file(
    two_stage, ziln, tmp_path, monkeypatch
):
    path = ltvkit.save(two_stage, tmp_path / "m.ltvkit")
    before = path.read_bytes()
    calls = {"n": 0}
    original = zipfile.ZipFile.writestr

    def failing(self, name, data, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # after the manifest: half a file was written
            raise OSError("disk full")
        return original(self, name, data, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", failing)
    with pytest.raises(OSError, match="disk full"):
        ltvkit.save(ziln, path)
    calls["n"] = 0
    with pytest.raises(OSError, match="disk full"):
        ltvkit.save(ziln, tmp_path / "new.ltvkit")
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.ltvkit"]
    assert type(ltvkit.load(path)) is ltvkit.TwoStageRegressor


# ---------------------------------------------------------------------------- optimizer state
def test_fitted_deep_models_keep_no_optimizer_state_and_pickle_to_their_weights(data):
    from skorch.callbacks import LRScheduler

    X, y = data
    est = ltvkit.ZILNRegressor(
        hidden_units=(256, 256), max_epochs=2, batch_size=64, random_state=0
    ).fit(X, y)
    assert len(est.net_.optimizer_.state) == 0
    schedulers = [cb for _, cb in est.net_.callbacks_ if isinstance(cb, LRScheduler)]
    assert schedulers and all(cb.lr_scheduler_ is None for cb in schedulers)
    weights = sum(t.numel() * t.element_size() for t in est.net_.module_.state_dict().values())
    size = len(pickle.dumps(est))
    assert size < 1.2 * weights + 50_000, (size, weights)  # was about 6x the weights
    for restored in (pickle.loads(pickle.dumps(est)), _joblib_round_trip(est)):
        np.testing.assert_array_equal(restored.predict(X), est.predict(X))
        assert restored.net_.module is restored.net_.module_
    # a fitted model still trains again (the scheduler is rebuilt)
    est.fit(X, y)


def _joblib_round_trip(est: object) -> object:
    buf = io.BytesIO()
    joblib.dump(est, buf)
    buf.seek(0)
    return joblib.load(buf)


# ---------------------------------------------------------------------------- scores
def test_score_customers_keeps_the_index_and_names_the_columns(data, ziln):
    X, _ = data
    scores = score_customers(ziln, X, quantiles=(0.1, 0.5, 0.95))
    assert scores.index.equals(X.index) and scores.index[0] == "00000000"
    assert list(scores.columns) == [
        "predicted_value",
        "nonzero_proba",
        "quantile_0.1",
        "quantile_0.5",
        "quantile_0.95",
    ]
    np.testing.assert_array_equal(scores["predicted_value"], ziln.predict(X))
    np.testing.assert_array_equal(scores["nonzero_proba"], ziln.predict_nonzero_proba(X))
    np.testing.assert_array_equal(scores["quantile_0.5"], ziln.predict_quantiles(X, 0.5))
    assert list(score_customers(ziln, X, quantiles=None).columns) == [
        "predicted_value",
        "nonzero_proba",
    ]
    # array input: a RangeIndex
    numbers = X.iloc[:, :3].to_numpy()
    model = ltvkit.TwoStageRegressor(n_estimators=5).fit(numbers, data[1])
    assert isinstance(score_customers(model, numbers, quantiles=()).index, pd.RangeIndex)


def test_score_customers_gives_the_columns_a_model_has(data):
    # every ltvkit model has predict_nonzero_proba and predict_quantiles; any other
    # regressor (here in a Pipeline) gets the columns its methods allow, without an error
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline

    X, y = data
    numeric = X.select_dtypes("number").columns
    model = make_pipeline(make_column_transformer(("passthrough", numeric)), Ridge()).fit(X, y)
    assert not hasattr(model, "predict_quantiles")
    assert list(score_customers(model, X).columns) == ["predicted_value"]


def test_score_customers_multi_horizon_has_one_column_per_horizon(data):
    X, _ = data
    _, Y = make_ltv(n_samples=400, n_features=5, n_categorical=2, n_horizons=3, random_state=0)
    model = ltvkit.ODMNRegressor(**FAST_DEEP, random_state=0).fit(X, Y)
    scores = score_customers(model, X, quantiles=(0.5,), horizon_names=["30d", "60d", "91d"])
    assert list(scores.columns) == [
        "predicted_value_30d",
        "predicted_value_60d",
        "predicted_value_91d",
        "nonzero_proba",
        "quantile_0.5_30d",
        "quantile_0.5_60d",
        "quantile_0.5_91d",
    ]
    np.testing.assert_array_equal(scores["predicted_value_60d"], model.predict(X)[:, 1])
    default = score_customers(model, X, quantiles=None)
    assert list(default.columns)[:3] == [
        "predicted_value_h1",
        "predicted_value_h2",
        "predicted_value_h3",
    ]
    with pytest.raises(ValueError, match="horizon_names"):
        score_customers(model, X, horizon_names=["a"])


def test_warnings_free_round_trip(ziln, data, tmp_path):
    """Loading prints nothing: no version or pickle warnings from the libraries."""
    X, _ = data
    path = ltvkit.save(ziln, tmp_path / "z.ltvkit")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = ltvkit.load(path)
    np.testing.assert_array_equal(loaded.predict(X), ziln.predict(X))
