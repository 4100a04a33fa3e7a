"""Tests for ltvkit.datasets: transactions_to_ltv, the loaders and make_ltv."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from ltvkit.datasets import (
    FEATURE_NAMES,
    load_cdnow,
    load_hillstrom,
    load_online_retail,
    make_ltv,
    transactions_to_features,
    transactions_to_ltv,
)

# --------------------------------------------------------------------------- transactions_to_ltv

# Calibration 2020-01-01 (first date) .. 2020-06-01 (exclusive, 152 days); holdout
# 2020-06-01 .. 2020-07-01; the "last 90 days" start on 2020-03-03.
TOY = pd.DataFrame(
    {
        "cust": ["A", "A", "A", "A", "A", "B", "B", "C", "C", "C", "D"],
        "date": [
            "2020-01-01",  # A: two lines of one order (6 + 4) -> one occasion of 10
            "2020-01-01",
            "2020-04-01",  # A: 30, inside the last 90 days
            "2020-06-15",  # A: holdout 5
            "2020-08-01",  # A: after holdout_end, ignored
            "2020-02-01",  # B: 50
            "2020-05-01",  # B: refund -20 (not a purchase; nets into the monetary sums)
            "2020-05-31",  # C: a zero-value order still counts as a purchase
            "2020-06-01",  # C: holdout starts on calibration_end (half-open windows)
            "2020-06-30",  # C: last holdout day
            "2020-06-10",  # D: holdout only -> not a calibration customer
        ],
        "value": [6.0, 4.0, 30.0, 5.0, 100.0, 50.0, -20.0, 0.0, 12.0, 3.0, 40.0],
    }
)
TOY_KW = dict(customer_col="cust", date_col="date", value_col="value")


def test_transactions_to_ltv_hand_worked():
    X, y = transactions_to_ltv(
        TOY, **TOY_KW, calibration_end="2020-06-01", holdout_end="2020-07-01"
    )
    expected = pd.DataFrame(
        {
            "frequency": [2, 1, 1],
            "recency": [61.0, 121.0, 1.0],
            "tenure": [152.0, 121.0, 1.0],
            "monetary_total": [40.0, 30.0, 0.0],
            "monetary_mean": [20.0, 30.0, 0.0],
            "monetary_max": [30.0, 50.0, 0.0],
            "first_purchase_value": [10.0, 50.0, 0.0],
            "spend_last_90d": [30.0, -20.0, 0.0],
            "frequency_last_90d": [1, 0, 1],
        },
        index=pd.Index(["A", "B", "C"], name="cust"),
    )
    pd.testing.assert_frame_equal(X[list(FEATURE_NAMES)], expected, check_index_type=False)
    assert list(X.columns[:9]) == list(FEATURE_NAMES)
    # the calibration window is 152 days: the 30-day window fits, 180 and 365 do not
    rich = pd.DataFrame(
        {
            "spend_last_30d": [0.0, 0.0, 0.0],
            "frequency_last_30d": [0, 0, 1],
            "interpurchase_mean_days": [91.0, np.nan, np.nan],  # A: 2020-01-01 -> 04-01
            "interpurchase_std_days": [np.nan, np.nan, np.nan],  # needs 3 purchases
            "refund_share": [0.0, 0.4, 0.0],  # B: 20 of 50 came back
        },
        index=expected.index,
    )
    pd.testing.assert_frame_equal(X.iloc[:, 9:], rich, check_index_type=False)
    # assert_frame_equal treats -0.0 as 0.0; a customer without refunds must show 0.0
    assert not np.signbit(X["refund_share"]).any()
    pd.testing.assert_series_equal(
        y,
        pd.Series([5.0, 0.0, 15.0], index=expected.index, name="holdout_spend"),
        check_index_type=False,
    )


def test_transactions_to_ltv_multi_horizon():
    ends = ["2020-06-16", "2020-07-01"]
    _, y = transactions_to_ltv(TOY, **TOY_KW, calibration_end="2020-06-01", holdout_end=ends)
    assert isinstance(y, pd.DataFrame)
    assert y.columns.tolist() == ends
    np.testing.assert_array_equal(y.to_numpy(), [[5.0, 5.0], [0.0, 0.0], [12.0, 15.0]])
    _, y1 = transactions_to_ltv(
        TOY, **TOY_KW, calibration_end="2020-06-01", holdout_end="2020-07-01"
    )
    pd.testing.assert_series_equal(y.iloc[:, -1], y1, check_names=False)


def test_transactions_to_ltv_refunds_clip_and_monotone():
    tx = pd.DataFrame(
        {
            "cust": [1, 1, 1, 2, 2],
            "date": pd.to_datetime(
                ["2020-01-01", "2020-02-05", "2020-02-20", "2020-01-02", "2020-02-03"]
            ),
            "value": [10.0, 100.0, -60.0, 10.0, -25.0],
        }
    )
    with pytest.warns(UserWarning, match="1 customer"):
        _, y = transactions_to_ltv(
            tx, **TOY_KW, calibration_end="2020-02-01", holdout_end=["2020-02-10", "2020-02-21"]
        )
    # customer 1: cumulative net 100 then 40 -> earlier horizon lowered to 40;
    # customer 2: net -25 -> 0
    np.testing.assert_array_equal(y.to_numpy(), [[40.0, 40.0], [0.0, 0.0]])
    assert (np.diff(y.to_numpy(), axis=1) >= 0).all()


def test_transactions_to_ltv_accepts_datetime_categorical_and_tz():
    tx = TOY.assign(
        cust=TOY["cust"].astype("category"),
        date=pd.to_datetime(TOY["date"]).dt.tz_localize("UTC"),
    )
    X, y = transactions_to_ltv(
        tx, **TOY_KW, calibration_end="2020-06-01", holdout_end="2020-07-01"
    )
    assert X.index.tolist() == ["A", "B", "C"]
    np.testing.assert_array_equal(y.to_numpy(), [5.0, 0.0, 15.0])


def test_transactions_to_ltv_calibration_start():
    X, _ = transactions_to_ltv(
        TOY,
        **TOY_KW,
        calibration_start="2020-03-01",
        calibration_end="2020-06-01",
        holdout_end="2020-07-01",
    )
    assert X.index.tolist() == ["A", "C"]  # B's only purchase was before the start
    assert X.loc["A", "frequency"] == 1 and X.loc["A", "first_purchase_value"] == 30.0


@pytest.mark.parametrize(
    ("change", "kwargs", "match"),
    [
        ({"value": None}, {}, r"missing column\(s\) \['value'\]"),
        pytest.param(
            {"date": ["2020-13-45"] * 11},
            {},
            "parse",
            marks=pytest.mark.filterwarnings("ignore:Could not infer format"),
        ),
        ({"date": [20200101] * 11}, {}, "numbers"),
        ({"value": ["1"] * 11}, {}, "must be numeric"),
        ({"value": [np.nan] + [1.0] * 10}, {}, "NaN"),
        ({"cust": [None] + ["A"] * 10}, {}, "missing id"),
        ({}, {"holdout_end": "2020-05-01"}, "after calibration_end"),
        ({}, {"holdout_end": ["2020-06-20", "2020-06-10"]}, "strictly increasing"),
        ({}, {"calibration_end": "not a date"}, "not a date"),
        (
            {},
            {"calibration_start": "2019-01-01", "calibration_end": "2019-06-01"},
            "No customer purchased",
        ),
    ],
)
def test_transactions_to_ltv_bad_input(change, kwargs, match):
    tx = TOY.copy()
    for col, val in change.items():
        if val is None:
            tx = tx.drop(columns=col)
        else:
            tx[col] = val
    params = dict(calibration_end="2020-06-01", holdout_end="2020-07-01")
    params.update(kwargs)
    with pytest.raises(ValueError, match=match):
        transactions_to_ltv(tx, **TOY_KW, **params)


def test_transactions_to_ltv_rejects_non_frame():
    with pytest.raises(TypeError, match="DataFrame"):
        transactions_to_ltv(
            TOY.to_numpy(), **TOY_KW, calibration_end="2020-06-01", holdout_end="2020-07-01"
        )


# --------------------------------------------------------------------------- CDNOW


@pytest.fixture(scope="module")
def cdnow() -> tuple[pd.DataFrame, pd.Series]:
    return load_cdnow()


def test_load_cdnow_default(cdnow):
    X, y = cdnow
    assert X.shape == (23_570, len(FEATURE_NAMES))
    assert X.index.is_unique and X.index.name == "customer_id"
    assert y.index.equals(X.index)
    assert (y >= 0).all() and y.dtype == np.float64
    assert (X["frequency"] >= 1).all() and (X["tenure"] <= 273).all()
    # PROVENANCE.md: 70% zeros, positive mean ~110, p99 ~820 with 39 weeks of calibration.
    # We get 0.7006; a window one week shorter or longer gives 0.6965 / 0.7043, so this
    # band catches an off-by-a-week (or inclusive/exclusive end) mistake.
    assert 0.698 < (y == 0).mean() < 0.703
    pos = y[y > 0]
    assert 105 < pos.mean() < 115
    assert 790 < np.percentile(pos, 99) < 850


def test_load_cdnow_transactions_and_windows(cdnow):
    tx = load_cdnow(return_transactions=True)
    assert tx.shape == (69_659, 4)
    assert tx.columns.tolist() == ["customer_id", "date", "quantity", "value"]
    assert tx["date"].min() == pd.Timestamp("1997-01-01")
    assert tx["date"].max() == pd.Timestamp("1998-06-30")
    assert tx["customer_id"].nunique() == 23_570
    assert np.isclose(tx["value"].sum(), 2_500_315.63)

    X, y = cdnow
    Xm, ym = load_cdnow(horizons_weeks=(13, 26, 39))
    assert ym.columns.tolist() == ["13w", "26w", "39w"]
    assert (np.diff(ym.to_numpy(), axis=1) >= 0).all()
    pd.testing.assert_frame_equal(Xm, X)
    np.testing.assert_array_equal(ym["39w"].to_numpy(), y.to_numpy())
    _, y13 = load_cdnow(holdout_weeks=13)
    np.testing.assert_array_equal(y13.to_numpy(), ym["13w"].to_numpy())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"calibration_weeks": 0},
        {"calibration_weeks": 78},
        {"calibration_weeks": 39.5},
        {"holdout_weeks": 40},
        {"horizons_weeks": (13, 13)},
        {"horizons_weeks": (13, 52)},
        {"horizons_weeks": (13,), "holdout_weeks": 13},
    ],
)
def test_load_cdnow_bad_windows(kwargs):
    with pytest.raises(ValueError):
        load_cdnow(**kwargs)


# --------------------------------------------------------------------------- local-data loaders


def _load_or_skip(loader, **kwargs):
    try:
        return loader(**kwargs)
    except FileNotFoundError as exc:
        pytest.skip(f"shared data not available: {exc}")


def test_load_online_retail():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # refunds clipped (documented)
        X, y = _load_or_skip(load_online_retail)
    assert X.shape[1] == len(FEATURE_NAMES) and len(X) > 3000
    assert (y >= 0).all() and y.index.equals(X.index)
    assert X.index.dtype == np.int64
    assert 0.3 < (y == 0).mean() < 0.5
    tx = load_online_retail(return_transactions=True)
    assert tx["CustomerID"].notna().all()
    assert (tx.loc[tx["InvoiceNo"].str.startswith("C"), "value"] <= 0).all()


def test_load_hillstrom():
    X, y = _load_or_skip(load_hillstrom)
    assert X.shape == (64_000, 8)
    for col in ("history_segment", "zip_code", "channel"):
        assert isinstance(X[col].dtype, pd.CategoricalDtype)
    assert not {"segment", "visit", "conversion", "spend"} & set(X.columns)
    assert (y >= 0).all() and (y == 0).mean() > 0.98


def test_loaders_missing_file_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="LTVKIT_DATA_DIR"):
        load_hillstrom(path=tmp_path / "nope.csv")
    with pytest.raises(FileNotFoundError, match="Online Retail"):
        load_online_retail(path=tmp_path)


def test_loaders_find_data_dir_from_env(tmp_path, monkeypatch):
    (tmp_path / "hillstrom").mkdir()
    pd.DataFrame(
        {
            "recency": [1, 2],
            "history_segment": ["1) $0 - $100", "2) $100 - $200"],
            "history": [10.0, 150.0],
            "mens": [1, 0],
            "womens": [0, 1],
            "zip_code": ["Urban", "Rural"],
            "newbie": [1, 0],
            "channel": ["Web", "Phone"],
            "segment": ["No E-Mail", "Mens E-Mail"],
            "visit": [0, 1],
            "conversion": [0, 1],
            "spend": [0.0, 29.99],
        }
    ).to_csv(tmp_path / "hillstrom" / "hillstrom.csv", index=False)
    monkeypatch.setenv("LTVKIT_DATA_DIR", str(tmp_path))
    X, y = load_hillstrom()
    assert X.shape == (2, 8) and y.tolist() == [0.0, 29.99]


# --------------------------------------------------------------------------- make_ltv


def test_make_ltv_shapes_and_dtypes():
    X, y = make_ltv(n_samples=500, n_features=6, n_categorical=2, random_state=0)
    assert X.shape == (500, 6) and y.shape == (500,)
    assert X.columns.tolist() == ["num_0", "num_1", "num_2", "num_3", "cat_0", "cat_1"]
    assert all(X[f"num_{j}"].dtype == np.float32 for j in range(4))
    assert all(isinstance(X[f"cat_{j}"].dtype, pd.CategoricalDtype) for j in range(2))
    assert y.dtype == np.float64 and np.isfinite(y).all() and (y >= 0).all()
    X, y = make_ltv(n_samples=50, n_features=3, n_categorical=0, random_state=0)
    assert X.columns.tolist() == ["num_0", "num_1", "num_2"]
    X, y = make_ltv(n_samples=50, n_features=2, n_categorical=2, random_state=0)
    assert X.columns.tolist() == ["cat_0", "cat_1"]


def test_make_ltv_deterministic():
    a = make_ltv(n_samples=300, random_state=7, n_horizons=2, return_groups=True)
    b = make_ltv(n_samples=300, random_state=7, n_horizons=2, return_groups=True)
    pd.testing.assert_frame_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[2], b[2])
    c = make_ltv(n_samples=300, random_state=8)
    assert not np.array_equal(a[1][:, -1], c[1])


@pytest.mark.parametrize("zero_fraction", [0.0, 0.3, 0.7, 0.95])
def test_make_ltv_zero_fraction(zero_fraction):
    _, y = make_ltv(n_samples=20_000, zero_fraction=zero_fraction, random_state=1)
    # binomial sd at n=20k is <= 0.0035; the intercept is solved on the rows themselves
    assert abs((y == 0).mean() - zero_fraction) < 0.015


def test_make_ltv_multi_horizon():
    _, y, params = make_ltv(n_samples=20_000, n_horizons=3, random_state=2, return_params=True)
    assert y.shape == (20_000, 3)
    assert (np.diff(y, axis=1) >= 0).all()
    zero = (y == 0).mean(axis=0)
    assert zero[0] > zero[1] > zero[2] and abs(zero[2] - 0.7) < 0.015
    assert params["p_nonzero"].shape == (20_000, 3)
    np.testing.assert_allclose((y > 0).mean(axis=0), params["p_nonzero"].mean(axis=0), atol=0.02)


def test_make_ltv_groups_and_params():
    X, y, groups, params = make_ltv(
        n_samples=30_000, random_state=3, return_groups=True, return_params=True
    )
    assert groups.shape == (30_000,) and groups.dtype == np.int64
    np.testing.assert_allclose(np.bincount(groups) / groups.size, [4 / 7, 2 / 7, 1 / 7], atol=0.02)
    # identifiable from the features: num_0 is shifted 3 sd per group, cat_0 == group 80%
    means = X.groupby(groups)["num_0"].mean().to_numpy()
    np.testing.assert_allclose(np.diff(means), 3.0, atol=0.15)
    assert (X["cat_0"].cat.codes.to_numpy() == groups).mean() > 0.8
    # well separated in value: each group's median positive spend >= 5x the previous one
    med = [np.median(y[(groups == g) & (y > 0)]) for g in range(3)]
    assert med[1] > 5 * med[0] and med[2] > 5 * med[1]
    # the true P(y > 0) ranks who spends
    p = params["p_nonzero"]
    assert p.shape == y.shape and ((p > 0) & (p < 1)).all()
    assert roc_auc_score(y > 0, p) > 0.7
    assert abs(p.mean() - (y > 0).mean()) < 0.01
    ratio = params["is_whale"].sum() / (y > 0).sum()
    assert 0.005 < ratio < 0.015
    assert params["expected_value"].shape == y.shape


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_samples": 0},
        {"n_features": 2, "n_categorical": 3},
        {"zero_fraction": 1.0},
        {"zero_fraction": -0.1},
        {"sigma": 0.0},
        {"whale_fraction": 1.5},
        {"n_groups": 0},
        {"n_horizons": 0},
    ],
)
def test_make_ltv_bad_params(kwargs):
    with pytest.raises(ValueError):
        make_ltv(**kwargs)


def test_transactions_to_ltv_warns_when_a_window_runs_past_the_data():
    # the last transaction is on 2020-08-01; a holdout that ends 2021 sees no more spend
    # than one that ends with the data, and must say so
    with pytest.warns(
        UserWarning,
        match=r"holdout_end 2021-06-01 is after the last "
        r"transaction \(2020-08-01",
    ):
        _, y_late = transactions_to_ltv(
            TOY, **TOY_KW, calibration_end="2020-06-01", holdout_end="2021-06-01"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ending the day after the last transaction is fine
        _, y_end = transactions_to_ltv(
            TOY, **TOY_KW, calibration_end="2020-06-01", holdout_end="2020-08-02"
        )
    pd.testing.assert_series_equal(y_late, y_end)
    # with several horizons, only the ends past the data are named
    with pytest.warns(UserWarning, match=r"holdout_end 2020-12-01 is after") as record:
        transactions_to_ltv(
            TOY, **TOY_KW, calibration_end="2020-06-01", holdout_end=["2020-07-01", "2020-12-01"]
        )
    assert "2020-07-01" not in str(record[0].message)


# ------------------------------------------------------------------ transactions_to_features

RICH = pd.DataFrame(
    {
        "cust": ["00418683", "00418683", "00418683", "7", "7", "00418683", "7"],
        "date": [
            "2019-01-10",
            "2019-06-01",
            "2020-03-01",
            "2020-02-01",
            "2020-02-01",
            "2020-06-15",  # holdout
            "2020-05-20",
        ],
        "value": [100.0, 50.0, 20.0, 30.0, -10.0, 5.0, 12.0],
        "sku": ["x", "y", "x", "z", "z", "x", "w"],
        "qty": [1, 2, 1, 3, -1, 1, 2],
        "country": ["UK", "UK", "FR", np.nan, "DE", "UK", np.nan],
    }
)
RICH_KW = dict(
    customer_col="cust",
    date_col="date",
    value_col="value",
    item_col="sku",
    quantity_col="qty",
    static_cols=["country"],
)


def test_features_as_of_equal_the_x_of_transactions_to_ltv():
    X = transactions_to_features(RICH, **RICH_KW, as_of="2020-06-01")
    X_ltv, y = transactions_to_ltv(
        RICH, **RICH_KW, calibration_end="2020-06-01", holdout_end="2020-06-16"
    )
    pd.testing.assert_frame_equal(X, X_ltv)
    assert y.loc["00418683"] == 5.0


def test_features_ids_windows_items_quantity_and_static_columns():
    X = transactions_to_features(RICH, **RICH_KW, as_of="2020-06-01")
    # ids are identifiers: text stays text, leading zeros included
    assert X.index.tolist() == ["00418683", "7"]
    # 507 days of history: every trailing window fits
    for w in (30, 90, 180, 365):
        assert f"spend_last_{w}d" in X and f"frequency_last_{w}d" in X
    a, b = X.loc["00418683"], X.loc["7"]
    # 2019-06-01 is 366 days before as_of: outside the 365-day window (half-open)
    assert a["frequency"] == 3 and a["spend_last_365d"] == a["spend_last_180d"] == 20.0
    assert a["spend_last_90d"] == 0.0  # 2020-03-01 is 92 days before as_of
    assert a["interpurchase_mean_days"] == pytest.approx((142 + 274) / 2)
    assert a["interpurchase_std_days"] == pytest.approx(np.std([142, 274], ddof=1))
    assert a["distinct_items"] == 2 and a["quantity_total"] == 4.0
    # 2020-02-01 nets to 20 (one occasion of two lines); the -10 line is a refund share
    assert b["frequency"] == 2 and b["refund_share"] == pytest.approx(10 / 42)
    assert b["quantity_mean"] == pytest.approx(4 / 2)
    # static: the last known value before as_of, categorical (NaN rows are skipped)
    assert isinstance(X["country"].dtype, pd.CategoricalDtype)
    assert a["country"] == "FR" and b["country"] == "DE"
    # as of an earlier date, the later values are not known yet
    early = transactions_to_features(RICH, **RICH_KW, as_of="2019-07-01")
    assert early.loc["00418683", "country"] == "UK" and "7" not in early.index
    assert "spend_last_365d" not in early  # 172 days of history


def test_features_are_fast_enough_to_be_called_per_scoring_run():
    # a vectorised path: 200k lines, 20k customers well under a few seconds here
    rng = np.random.default_rng(0)
    n = 200_000
    tx = pd.DataFrame(
        {
            "cust": rng.integers(0, 20_000, n).astype(str),
            "date": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 700, n), "D"),
            "value": rng.gamma(2.0, 20.0, n),
        }
    )
    X = transactions_to_features(
        tx, customer_col="cust", date_col="date", value_col="value", as_of="2021-12-01"
    )
    assert len(X) == tx["cust"][tx["date"] < "2021-12-01"].nunique()


@pytest.mark.parametrize(
    "dates, fmt, match",
    [
        (["01/09/2011", "02/10/2011"], None, r"ambiguous; pass date_format='%d/%m/%Y'"),
        (["13/09/2011", "02/10/2011"], None, r"only parse day first"),
        (["20110901", "20111002"], None, "holds numbers|date_format"),
        (["2011-09-01", "oops"], None, "Could not parse column 'date'"),
        (["01/09/2011", "02/10/2011"], "%Y-%m-%d", "does not match date_format"),
    ],
)
def test_features_refuse_ambiguous_or_unparseable_dates(dates, fmt, match):
    tx = pd.DataFrame({"c": ["a", "b"], "date": dates, "v": [1.0, 2.0]})
    if dates[0].isdigit():
        tx["date"] = tx["date"].astype(np.int64)
    with pytest.raises(ValueError, match=match):
        transactions_to_features(
            tx,
            customer_col="c",
            date_col="date",
            value_col="v",
            as_of="2012-01-01",
            date_format=fmt,
        )


def test_features_with_date_format_read_day_first_and_numeric_dates():
    tx = pd.DataFrame({"c": ["a", "a"], "date": ["01/09/2011", "02/10/2011"], "v": [1.0, 2.0]})
    X = transactions_to_features(
        tx,
        customer_col="c",
        date_col="date",
        value_col="v",
        as_of="2011-10-03",
        date_format="%d/%m/%Y",
    )
    assert X.loc["a", "recency"] == 1.0 and X.loc["a", "tenure"] == 32.0
    tx["date"] = [20110901, 20111002]
    X2 = transactions_to_features(
        tx,
        customer_col="c",
        date_col="date",
        value_col="v",
        as_of="2011-10-03",
        date_format="%Y%m%d",
    )
    pd.testing.assert_frame_equal(X, X2)


def test_features_as_of_after_the_data_warns():
    with pytest.warns(UserWarning, match=r"as_of 2021-01-01 is after the last transaction"):
        transactions_to_features(
            RICH, customer_col="cust", date_col="date", value_col="value", as_of="2021-01-01"
        )
