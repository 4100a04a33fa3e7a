"""Unit tests for the contract helpers in ltvkit.base."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from sklearn.exceptions import DataConversionWarning

from ltvkit.base import TabularSchema, check_predictions, validate_ltv_target


@pytest.mark.parametrize(
    ("y", "pattern"),
    [
        ([0.0, np.nan, 1.0], "1 NaN"),
        ([0.0, np.inf, 1.0], "1 infinite"),
        ([0.0, -2.0, -1.0, 3.0], "2 negative"),
        ([0.0, 0.0], "no positive"),
        ([], "empty"),
        (np.ones((3, 2)), "1-D"),
        (["a", "b"], "numeric"),
    ],
)
def test_validate_ltv_target_names_the_problem(y, pattern):
    with pytest.raises(ValueError, match=pattern):
        validate_ltv_target(y)


def test_validate_ltv_target_accepts_column_vector_and_ints():
    with pytest.warns(DataConversionWarning, match="column-vector"):
        out = validate_ltv_target(np.array([[0], [3]]))
    assert out.dtype == np.float64 and out.shape == (2,)


def test_validate_ltv_target_multi_horizon_must_be_non_decreasing():
    ok = validate_ltv_target([[0, 1, 2], [1, 1, 1]], multi_horizon=True)
    assert ok.shape == (2, 3)
    with pytest.raises(ValueError, match="decreases along the horizons in 1 row"):
        validate_ltv_target([[0, 2, 1], [1, 1, 1]], multi_horizon=True)


def test_validate_ltv_target_rejects_sparse():
    with pytest.raises(ValueError, match="sparse"):
        validate_ltv_target(sparse.csr_matrix(np.ones((3, 1))))


def test_check_predictions_guards_output():
    np.testing.assert_array_equal(check_predictions([0, 2], "M"), [0.0, 2.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        check_predictions([np.nan, 1.0], "M")
    with pytest.raises(RuntimeError, match="negative"):
        check_predictions([-1.0, 1.0], "M")
    with pytest.raises(RuntimeError, match="astronomically"):
        check_predictions([1e27], "M")


def test_schema_records_kinds_and_maps_unseen_levels_to_missing():
    X = pd.DataFrame(
        {
            "spend": [1.0, np.nan, 3.0],
            "channel": pd.Categorical(["web", "app", "web"]),
            "country": ["UK", None, "FR"],
            "n_orders": [1, 2, 3],
            "is_member": [True, False, True],
        }
    )
    schema = TabularSchema().fit(X)
    assert schema.categorical_columns == ["channel", "country"]
    assert schema.numeric_columns == ["spend", "n_orders", "is_member"]
    new = pd.DataFrame(
        {
            "spend": [2.0],
            "channel": pd.Categorical(["store"]),
            "country": ["DE"],
            "n_orders": [4],
            "is_member": [False],
        }
    )
    out = schema.transform(new)
    assert out["channel"].isna().all() and out["country"].isna().all()
    assert list(out["country"].cat.categories) == ["FR", "UK"]
    # known levels keep their codes whatever the input's own category order
    again = schema.transform(
        X.assign(channel=pd.Categorical(["web", "app", "web"], categories=["web", "app"]))
    )
    np.testing.assert_array_equal(
        again["channel"].cat.codes, schema.transform(X)["channel"].cat.codes
    )
    assert out["is_member"].dtype == np.float64


def test_schema_column_order_follows_fit_and_missing_columns_are_named():
    X = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    schema = TabularSchema().fit(X)
    np.testing.assert_array_equal(schema.transform(X[["b", "a"]]).columns, ["a", "b"])
    with pytest.raises(ValueError, match=r"\['b'\]"):
        schema.transform(X[["a"]])


@pytest.mark.parametrize(
    ("X", "error", "pattern"),
    [
        (pd.DataFrame({"a": [1.0, np.inf]}), ValueError, "'a'.*infinite"),
        (
            pd.DataFrame({"d": pd.to_datetime(["2020-01-01", "2020-01-02"])}),
            ValueError,
            "neither numeric nor categorical",
        ),
        (pd.DataFrame({"a": []}), ValueError, "empty"),
        (pd.DataFrame(index=[0, 1]), ValueError, "no columns"),
        (sparse.csr_matrix(np.ones((2, 2))), TypeError, "sparse"),
        (np.array([[1.0, np.inf]]), ValueError, "infinity"),
    ],
)
def test_schema_rejects_bad_X(X, error, pattern):
    with pytest.raises(error, match=pattern):
        TabularSchema().fit(X)


def test_schema_on_arrays_names_columns_and_keeps_nan():
    schema = TabularSchema().fit(np.array([[1, np.nan], [2, 3]]))
    out = schema.transform([[5, np.nan]])
    assert list(out.columns) == ["x0", "x1"]
    assert np.isnan(out["x1"].iloc[0])


def test_schema_passes_float_columns_without_copying_and_converts_the_rest():
    X = pd.DataFrame(
        {
            "f64": np.array([1.0, np.nan, 3.0]),
            "f32": np.array([1.0, 2.0, np.nan], dtype=np.float32),
            "int": np.array([1, 2, 3]),
            "nullable": pd.array([1, None, 3], dtype="Int64"),
            "flag": [True, False, True],
        }
    )
    out = TabularSchema().fit(X).transform(X)
    # numpy float columns are views of the input (no full copy of a big table)
    for col in ("f64", "f32"):
        assert np.shares_memory(out[col].to_numpy(), X[col].to_numpy())
        assert out[col].dtype == X[col].dtype
    # everything else becomes float64 with NaN for missing
    for col in ("int", "nullable", "flag"):
        assert out[col].dtype == np.float64
    np.testing.assert_array_equal(out["nullable"].to_numpy(), [1.0, np.nan, 3.0])
