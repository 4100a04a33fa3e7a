"""Tests of ``ltvkit benchmark`` (ltvkit/cli.py) and the runner (``ltvkit.benchmark``).

Most tests call ``ltvkit.cli.main`` in-process on small tables with toy models registered
through a patched registry (fast, and independent of which real models have landed);
``test_benchmark_quick_on_a_small_table_writes_parseable_outputs`` runs the real registry.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator

import ltvkit
import ltvkit._registry as registry
from ltvkit._run_record import file_digest
from ltvkit.base import LTVRegressorMixin, check_predictions
from ltvkit.benchmark import (
    QUICK_PARAMS,
    available_models,
    format_table,
    model_short_name,
    run_benchmark,
)
from ltvkit.cli import main
from ltvkit.datasets import load_cdnow, make_ltv
from ltvkit.metrics import normalized_gini

PNGS = ("gain_chart.png", "decile_chart.png", "lorenz.png")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------- toy models
class ToyHurdleRegressor(LTVRegressorMixin, BaseEstimator):
    """A tiny deterministic LTV model with the parameter names --quick looks for."""

    def __init__(self, max_epochs=100, hidden_units=(64, 32), n_estimators=300, random_state=None):
        self.max_epochs = max_epochs
        self.hidden_units = hidden_units
        self.n_estimators = n_estimators
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None):
        frame, y, _ = self._validate_fit_input(X, y, sample_weight)
        y = y.reshape(len(y), -1)[:, -1]
        col = self.schema_.numeric_columns[0]
        x = np.nan_to_num(frame[col].to_numpy())
        self.slope_ = float(np.corrcoef(x, y)[0, 1]) if x.std() > 0 else 0.0
        self.center_, self.scale_ = float(x.mean()), float(x.std() or 1.0)
        self.mean_ = float(y.mean())
        self.col_ = col
        return self

    def _score(self, X):
        frame = self._validate_predict_input(X)
        z = (np.nan_to_num(frame[self.col_].to_numpy()) - self.center_) / self.scale_
        return 1.0 / (1.0 + np.exp(-np.sign(self.slope_) * z))

    def predict(self, X):
        s = self._score(X)
        return check_predictions(self.mean_ * s / 0.5, "ToyHurdleRegressor")

    def predict_nonzero_proba(self, X):
        return self._score(X)


class DivergingRegressor(ToyHurdleRegressor):
    """Always 'diverges' at fit."""

    def fit(self, X, y, sample_weight=None):
        raise RuntimeError("loss became NaN at epoch 3 (diverged)")


class NaNPredictRegressor(ToyHurdleRegressor):
    """Fits, then predicts NaN: check_predictions in the runner must catch it."""

    def predict(self, X):
        return np.full(len(X), np.nan)


class ToyMultiHorizonRegressor(ToyHurdleRegressor):
    """A multi-horizon toy: predicts the per-horizon means scaled by the score."""

    _multi_horizon = True
    _requires_multi_horizon = True

    def fit(self, X, y, sample_weight=None):
        super().fit(X, y, sample_weight)
        self.horizon_means_ = np.asarray(y).reshape(len(y), -1).mean(axis=0)
        return self

    def predict(self, X):
        s = self._score(X)
        return s[:, None] / 0.5 * self.horizon_means_[None, :]


class MemoryHungryRegressor(ToyHurdleRegressor):
    """Keeps ~64 MB alive after fit: the peak-memory column must see it."""

    def fit(self, X, y, sample_weight=None):
        super().fit(X, y, sample_weight)
        self.buffer_ = np.ones(8 * 2**20)  # 64 MB, touched so it is resident
        return self


TOYS = {
    "ToyHurdleRegressor": __name__,
    "DivergingRegressor": __name__,
    "ToyMultiHorizonRegressor": __name__,
}


@pytest.fixture
def toy_registry(monkeypatch):
    """Replace the registry by toy models (the runner must discover them by itself)."""
    monkeypatch.setattr(registry, "ESTIMATOR_LOCATIONS", dict(TOYS))


@pytest.fixture
def table(tmp_path):
    """A small customer table as CSV: id, features (one categorical), monetary_total, spend."""
    X, y = make_ltv(n_samples=600, n_features=5, n_categorical=1, random_state=0)
    df = X.copy()
    df.insert(0, "customer_id", np.arange(1000, 1600))
    df["monetary_total"] = np.round(np.abs(df["num_0"].to_numpy()) * 20, 2)
    df["spend"] = y
    path = tmp_path / "customers.csv"
    df.to_csv(path, index=False)
    return path, df


def run(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code, err, *phrases):
    assert code == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("ltvkit benchmark: error: ")
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


# ---------------------------------------------------------------------- model names
@pytest.mark.parametrize(
    ("class_name", "short"),
    [
        ("TwoStageRegressor", "two_stage"),
        ("ZILNRegressor", "ziln"),
        ("OptDistRegressor", "opt_dist"),
        ("MDMERegressor", "mdme"),
        ("ODMNRegressor", "odmn"),
        ("CCORNetRegressor", "ccor_net"),
        ("MEANRegressor", "mean"),
    ],
)
def test_model_short_name(class_name, short):
    assert model_short_name(class_name) == short


def test_new_models_join_automatically_and_aliases_resolve(toy_registry, table, capsys):
    models = available_models()
    assert list(models) == [
        "toy_hurdle",
        "diverging",
        "toy_multi_horizon",
        "calibration_spend",
        "lgbm_tweedie",
    ]
    _path, df = table
    X, y = df.drop(columns=["customer_id", "spend"]), df["spend"]
    # the name without underscores and the class name both select the model
    result = run_benchmark(X, y, models="toyhurdle,ToyHurdleRegressor,calibration_spend").table
    assert list(result.index) == ["toy_hurdle", "calibration_spend"]
    with pytest.raises(ValueError, match="unknown model 'nope'; available: toy_hurdle"):
        run_benchmark(X, y, models=["nope"])


# ---------------------------------------------------------------------- the main run
def test_benchmark_quick_on_a_small_table_writes_parseable_outputs(table, tmp_path, capsys):
    """The real registry, every default model, --quick: outputs exist and parse."""
    path, df = table
    out = tmp_path / "out"
    code, stdout, stderr = run(
        [
            "benchmark",
            "--data",
            path,
            "--target",
            "spend",
            "--id",
            "customer_id",
            "--quick",
            "--out",
            out,
            "--n-jobs",
            "1",
        ],
        capsys,
    )
    assert code == 0, stderr
    expected = list(available_models())
    csv = pd.read_csv(out / "results.csv", index_col="model")
    assert list(csv.index) == expected
    for col in (
        "normalized_gini",
        "normalized_gini_positive",
        "spearman",
        "decile_mape",
        "nmae",
        "ambe",
        "mutual_gini",
        "sva",
        "recall_at_1pct_min50",
        "fit_seconds",
        "predict_ms_per_1k",
        "peak_memory_mb",
        "status",
    ):
        assert col in csv.columns
    ok = csv[csv["status"] == "ok"]
    assert {"calibration_spend", "lgbm_tweedie"} <= set(ok.index)
    # every model that ran was scored; nothing else is allowed to fail silently
    assert set(csv.index) - set(ok.index) == set(
        csv.index[csv["status"].str.startswith("skipped")]
    )
    assert (
        ok[["normalized_gini", "spearman", "fit_seconds", "predict_ms_per_1k"]].notna().all().all()
    )
    assert ((ok["normalized_gini"] > -1) & (ok["normalized_gini"] <= 1)).all()
    assert (ok["predict_ms_per_1k"] > 0).all()
    # the calibration-spend peer really is the ranking by monetary_total on the test rows
    from sklearn.model_selection import train_test_split

    X = df.drop(columns=["customer_id", "spend"])
    _, X_te, _, y_te = train_test_split(X, df["spend"], test_size=0.3, random_state=0)
    assert ok.loc["calibration_spend", "normalized_gini"] == pytest.approx(
        normalized_gini(y_te, X_te["monetary_total"]), abs=1e-12
    )
    md = (out / "results.md").read_text().strip().splitlines()
    assert md[0].startswith("| model | Gini | Gini y>0 | Spearman | decile MAPE |")
    assert len(md) == 2 + len(expected)
    assert all(line.count("|") == md[0].count("|") for line in md)
    for png in PNGS:
        assert (out / png).read_bytes()[:8] == PNG_MAGIC
    # stdout: the table and the legend (directions from the metric registry); stderr:
    # one progress line per model
    assert stdout.splitlines()[0].split()[:3] == ["model", "Gini", "Gini"]
    assert stdout.splitlines()[-1] == (
        "* best per column. Higher is better: Gini, Gini y>0, Spearman, SVA, Recall@1%≥50; "
        "lower is better: decile MAPE, NMAE, AMBE, Mutual Gini, fit s, predict ms/1k, peak MB."
    )
    for i, name in enumerate(expected, start=1):
        # the counter is right-aligned to the total's width: "[ 1/10]"
        assert f"[{i:>{len(str(len(expected)))}}/{len(expected)}] {name}" in stderr
    assert "quick: not for choosing a model" in stderr
    assert (
        "wrote results.csv, results.md, gain_chart.png, decile_chart.png, lorenz.png, run.json"
        in (stderr)
    )
    # the run record: what ran, on which data, which files it wrote
    record = json.loads((out / "run.json").read_text())
    assert record["command"] == "ltvkit benchmark"
    assert record["arguments"]["quick"] is True and record["arguments"]["target"] == "spend"
    assert record["inputs"] == [
        {
            "path": str(path),
            "sha256": file_digest(path).removeprefix("sha256:"),
            "bytes": path.stat().st_size,
        }
    ]
    assert record["data"]["name"] == "customers.csv" and record["data"]["rows"] == 600
    assert record["split"]["scored_customers"] == 180 and record["quick"] is True
    written = {Path(o["path"]).name for o in record["outputs"]}
    assert written == {"results.csv", "results.md", *PNGS}
    assert record["models"] == dict(csv["status"])


def test_failed_and_skipped_models_get_a_row_and_the_run_goes_on(
    toy_registry, table, tmp_path, capsys
):
    path, _ = table
    out = tmp_path / "out"
    code, stdout, stderr = run(
        [
            "benchmark",
            "--data",
            path,
            "--target",
            "spend",
            "--id",
            "customer_id",
            "--models",
            "toy_hurdle,diverging,toy_multi_horizon,calibration_spend",
            "--out",
            out,
        ],
        capsys,
    )
    assert code == 0, stderr
    csv = pd.read_csv(out / "results.csv", index_col="model")
    assert csv.loc["toy_hurdle", "status"] == "ok"
    assert csv.loc["calibration_spend", "status"] == "ok"
    assert csv.loc["diverging", "status"] == (
        "failed: RuntimeError: loss became NaN at epoch 3 (diverged)"
    )
    assert csv.loc["toy_multi_horizon", "status"].startswith("skipped: multi-horizon model")
    assert np.isnan(csv.loc["diverging", "normalized_gini"])
    assert "failed: RuntimeError" in stdout and "failed: RuntimeError" in stderr
    for png in PNGS:  # the pictures show the models that ran
        assert (out / png).exists()


def test_non_finite_predictions_fail_the_row(monkeypatch, table):
    _, df = table
    X, y = df.drop(columns=["customer_id", "spend"]), df["spend"]
    result = run_benchmark(
        X, y, models={"nan_model": NaNPredictRegressor(), "toy": ToyHurdleRegressor()}
    ).table
    assert result.loc["nan_model", "status"].startswith("failed: RuntimeError: nan_model produced")
    assert result.loc["toy", "status"] == "ok"


def test_multi_horizon_target_fits_multi_horizon_models_on_all_columns(
    toy_registry, tmp_path, capsys
):
    X, Y = make_ltv(n_samples=500, n_features=4, n_categorical=1, n_horizons=3, random_state=1)
    df = X.assign(h1=Y[:, 0], h2=Y[:, 1], h3=Y[:, 2])
    path = tmp_path / "mh.parquet"
    df.to_parquet(path)
    out = tmp_path / "out"
    code, _stdout, stderr = run(
        [
            "benchmark",
            "--data",
            path,
            "--target",
            "h1,h2,h3",
            "--models",
            "toy_hurdle,toy_multi_horizon",
            "--out",
            out,
        ],
        capsys,
    )
    assert code == 0, stderr
    csv = pd.read_csv(out / "results.csv", index_col="model")
    assert (csv["status"] == "ok").all()
    # both are scored on the last horizon; the toy models rank by the same feature, so
    # their rankings (and Gini) coincide
    assert csv.loc["toy_hurdle", "normalized_gini"] == pytest.approx(
        csv.loc["toy_multi_horizon", "normalized_gini"]
    )


def test_cv_reports_mean_and_std(toy_registry, table, tmp_path, capsys):
    path, _ = table
    out = tmp_path / "out"
    code, stdout, _ = run(
        [
            "benchmark",
            "--data",
            path,
            "--target",
            "spend",
            "--models",
            "toy_hurdle",
            "--cv",
            "3",
            "--out",
            out,
        ],
        capsys,
    )
    assert code == 0
    csv = pd.read_csv(out / "results.csv", index_col="model")
    assert "normalized_gini_std" in csv.columns and "fit_seconds_std" in csv.columns
    assert csv.loc["toy_hurdle", "normalized_gini_std"] > 0
    assert "±" in stdout


def test_same_seed_same_table_and_seed_changes_the_split(table):
    _, df = table
    X, y = df.drop(columns=["customer_id", "spend"]), df["spend"]
    kw = {"models": ["lgbm_tweedie", "calibration_spend"], "quick": True, "n_jobs": 1}
    a = run_benchmark(X, y, seed=3, **kw).table
    b = run_benchmark(X, y, seed=3, **kw).table
    c = run_benchmark(X, y, seed=4, **kw).table
    cols = ["normalized_gini", "spearman", "decile_mape", "sva"]
    pd.testing.assert_frame_equal(a[cols], b[cols])
    assert not np.allclose(a[cols].to_numpy(), c[cols].to_numpy())


class UnitsRegressor(ToyHurdleRegressor):
    """Extra layer-width parameters in the shapes deep models use."""

    def __init__(
        self,
        max_epochs=100,
        hidden_units=(64, 32),
        n_estimators=300,
        random_state=None,
        tower_units=(128, 16),
        attention_units=100,
        mono_units=(),
        n_experts=8,
    ):
        super().__init__(max_epochs, hidden_units, n_estimators, random_state)
        self.tower_units = tower_units
        self.attention_units = attention_units
        self.mono_units = mono_units
        self.n_experts = n_experts


def test_quick_shrinks_models_generically_but_never_enlarges_them():
    from ltvkit.benchmark._runner import QUICK_MAX_UNITS, _configure

    big = UnitsRegressor()
    _configure(big, seed=7, quick=True, n_jobs=None)
    assert big.max_epochs == QUICK_PARAMS["max_epochs"]
    assert big.n_estimators == QUICK_PARAMS["n_estimators"]
    cap = QUICK_MAX_UNITS
    assert big.hidden_units == (cap, cap)  # widths capped, depth kept
    assert big.tower_units == (cap, 16)
    assert big.attention_units == cap
    assert big.mono_units == ()  # nothing to shrink
    assert big.n_experts == 8  # counts are not widths
    assert big.random_state == 7
    small = UnitsRegressor(max_epochs=2, hidden_units=(8,), n_estimators=10, tower_units=(4,))
    _configure(small, seed=None, quick=True, n_jobs=None)
    assert (small.max_epochs, small.hidden_units, small.n_estimators) == (2, (8,), 10)
    assert small.tower_units == (4,) and small.random_state is None
    same = UnitsRegressor()
    _configure(same, seed=None, quick=False, n_jobs=3)
    assert same.get_params() == UnitsRegressor().get_params()  # n_jobs: no such parameter


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="RSS sampling needs Linux /proc")
def test_peak_memory_sees_native_allocations(table):
    _, df = table
    X, y = df.drop(columns=["customer_id", "spend"]), df["spend"]
    result = run_benchmark(
        X, y, models={"hungry": MemoryHungryRegressor(), "toy": ToyHurdleRegressor()}
    ).table
    assert result.loc["hungry", "peak_memory_mb"] > 50
    assert result.loc["toy", "peak_memory_mb"] < 20


def test_format_table_marks_the_best_value_per_column():
    t = pd.DataFrame(
        {
            "normalized_gini": [0.70, 0.75, 0.99],
            "decile_mape": [0.30, 0.10, 0.01],
            "fit_seconds": [1.0, 2.0, 0.5],
            "status": ["ok", "ok", "failed: boom"],
        },
        index=pd.Index(["a", "b", "c"], name="model"),
    )
    md = format_table(t, "markdown").splitlines()
    assert md[2] == "| a | 0.700 | 0.300 | **1.00** | ok |"
    assert md[3] == "| b | **0.750** | **0.100** | 2.00 | ok |"
    assert "**" not in md[4]  # a failed row is never "best"
    text = format_table(t, "text").splitlines()
    assert "0.750*" in text[3] and "1.00*" in text[2] and "0.700*" not in text[2]


# ---------------------------------------------------------------------- data sources
def test_transactions_input(toy_registry, tmp_path, capsys):
    tx = load_cdnow(return_transactions=True)
    tx = tx[tx["customer_id"] <= 1500].copy()
    tx["date"] = tx["date"].dt.strftime("%Y-%m-%d")
    path = tmp_path / "tx.csv"
    tx.to_csv(path, index=False)
    out = tmp_path / "out"
    code, _, stderr = run(
        [
            "benchmark",
            "--data",
            path,
            "--transactions",
            "--customer",
            "customer_id",
            "--date",
            "date",
            "--value",
            "value",
            "--calibration-end",
            "1997-10-01",
            "--holdout-end",
            "1998-07-01",
            "--models",
            "toy_hurdle,calibration_spend",
            "--out",
            out,
        ],
        capsys,
    )
    assert code == 0, stderr
    assert "1,500 customers, 16 features" in stderr
    csv = pd.read_csv(out / "results.csv", index_col="model")
    assert (csv["status"] == "ok").all()


def test_calibration_spend_is_skipped_without_its_column_unless_asked(
    toy_registry, table, tmp_path, capsys
):
    _path, df = table
    path2 = tmp_path / "no_spend.csv"
    df.drop(columns=["monetary_total"]).to_csv(path2, index=False)
    out = tmp_path / "out"
    code, _, _ = run(
        [
            "benchmark",
            "--data",
            path2,
            "--target",
            "spend",
            "--models",
            "toy_hurdle",
            "--out",
            out,
        ],
        capsys,
    )
    assert code == 0
    table_all = run_benchmark(
        df.drop(columns=["monetary_total", "customer_id", "spend"]),
        df["spend"],
        models=None,
        quick=True,
        n_jobs=1,
    ).table
    assert table_all.loc["calibration_spend", "status"] == (
        "skipped: no 'monetary_total' column (pick one with --baseline-column)"
    )
    # asked for by name: an error; --baseline-column picks another column
    code, _, err = run(
        [
            "benchmark",
            "--data",
            path2,
            "--target",
            "spend",
            "--models",
            "calibration_spend",
            "--out",
            out,
        ],
        capsys,
    )
    assert_one_line_error(code, err, "calibration_spend needs a past-spend column")
    code, _, err = run(
        [
            "benchmark",
            "--data",
            path2,
            "--target",
            "spend",
            "--models",
            "calibration_spend",
            "--baseline-column",
            "num_1",
            "--out",
            out,
        ],
        capsys,
    )
    assert code == 0, err


# ---------------------------------------------------------------------- bad input
@pytest.fixture
def bad_tables(tmp_path, table):
    _, df = table
    files = {}
    base = df.drop(columns=["customer_id"])
    files["text_target"] = base.assign(spend=["$" + str(v) for v in base["spend"]])
    neg = base.copy()
    neg.loc[[3, 10, 11], "spend"] = -5.0
    files["negative"] = neg
    nan = base.copy()
    nan.loc[[1, 2, 3, 4], "spend"] = np.nan
    files["nan"] = nan
    files["zeros"] = base.assign(spend=0.0)
    tx = pd.DataFrame(
        {"c": [1, 1, 2], "d": ["2020-01-01", "someday", "2020-02-03"], "v": [1.0, 2.0, 3.0]}
    )
    files["bad_date_column"] = tx
    paths = {}
    for name, frame in files.items():
        paths[name] = tmp_path / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    return paths


@pytest.mark.parametrize(
    ("argv", "phrases"),
    [
        (
            ["--data", "{tmp}/missing.csv", "--target", "spend"],
            ["file not found: ", "missing.csv"],
        ),
        (
            ["--data", "{good}", "--target", "revenue"],
            ["target column 'revenue' not found", "the table has: customer_id, num_0"],
        ),
        (
            ["--data", "{text_target}", "--target", "spend"],
            ["target column 'spend' is not numeric"],
        ),
        (
            ["--data", "{negative}", "--target", "spend"],
            ["target column 'spend' has 3 negative value(s) out of 600 rows"],
        ),
        (
            ["--data", "{nan}", "--target", "spend"],
            ["target column 'spend' has 4 missing (NaN) value(s) out of 600 rows"],
        ),
        (["--data", "{zeros}", "--target", "spend"], ["has no positive value"]),
        (
            [
                "--data",
                "{bad_date_column}",
                "--transactions",
                "--customer",
                "c",
                "--date",
                "d",
                "--value",
                "v",
                "--calibration-end",
                "2020-02-01",
                "--holdout-end",
                "2020-03-01",
            ],
            ["Could not parse column 'd' as dates"],
        ),
        (
            [
                "--data",
                "{good}",
                "--transactions",
                "--customer",
                "customer_id",
                "--date",
                "num_0",
                "--value",
                "spend",
                "--calibration-end",
                "first of May",
                "--holdout-end",
                "2020-03-01",
            ],
            ["--calibration-end 'first of May' is not a date"],
        ),
        (
            [
                "--data",
                "{good}",
                "--transactions",
                "--customer",
                "customer_id",
                "--date",
                "num_0",
                "--value",
                "spend",
                "--calibration-end",
                "2020-01-01",
                "--holdout-end",
                "2020-13-45",
            ],
            ["--holdout-end '2020-13-45' is not a date"],
        ),
        (["--data", "{good}"], ["--data needs --target COLUMN"]),
        (["--target", "spend"], ["--target needs --data FILE"]),
        (
            ["--data", "{good}", "--target", "spend", "--models", "lgbm_tweedie,bogus"],
            ["unknown model 'bogus'"],
        ),
        (
            ["--data", "{good}", "--transactions", "--customer", "customer_id"],
            ["--transactions needs --date, --value, --calibration-end, --holdout-end"],
        ),
        (
            ["--data", "{good}", "--target", "spend", "--id", "cust"],
            ["id column 'cust' not found"],
        ),
    ],
    ids=[
        "missing-file",
        "missing-target",
        "non-numeric-target",
        "negative-target",
        "nan-target",
        "no-positive-target",
        "unparseable-date-column",
        "unparseable-date",
        "invalid-date",
        "no-target",
        "target-without-data",
        "unknown-model",
        "transactions-missing-options",
        "missing-id",
    ],
)
def test_bad_input_gives_one_line_and_exit_code_2(
    argv, phrases, bad_tables, table, tmp_path, capsys
):
    subs = {"{tmp}": str(tmp_path), "{good}": str(table[0])}
    subs.update({"{" + k + "}": str(v) for k, v in bad_tables.items()})
    resolved = []
    for a in argv:
        for k, v in subs.items():
            a = a.replace(k, v)
        resolved.append(a)
    code, stdout, stderr = run(["benchmark", *resolved, "--out", tmp_path / "o"], capsys)
    assert_one_line_error(code, stderr, *phrases)
    assert stdout == ""
    assert not (tmp_path / "o").exists()


def test_infinite_feature_is_reported_before_any_model_runs(table, tmp_path, capsys):
    _, df = table
    df = df.copy()
    df.loc[5, "num_1"] = np.inf
    path = tmp_path / "inf.csv"
    df.to_csv(path, index=False)
    code, _, err = run(["benchmark", "--data", path, "--target", "spend"], capsys)
    assert_one_line_error(code, err, "column 'num_1' of X contains infinite values")


def test_unsupported_file_type(tmp_path, capsys):
    path = tmp_path / "data.xlsx"
    path.write_bytes(b"not really")
    code, _, err = run(["benchmark", "--data", path, "--target", "y"], capsys)
    assert_one_line_error(code, err, "unsupported file type '.xlsx'")


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["benchmark", "--test-size", "1.5"])
    assert exc.value.code == 2
    assert "must be a fraction in (0, 1)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["benchmark", "--cv", "1"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["benchmark", "--n-jobs", "0"])
    assert exc.value.code == 2
    assert "must be -1 or >= 1" in capsys.readouterr().err


# ---------------------------------------------------------------------- no matplotlib
def test_without_matplotlib_tables_are_still_written(
    toy_registry, table, tmp_path, capsys, monkeypatch
):
    for mod in ("matplotlib", "matplotlib.figure", "matplotlib.pyplot"):
        monkeypatch.setitem(sys.modules, mod, None)
    path, _ = table
    out = tmp_path / "out"
    code, _, err = run(
        ["benchmark", "--data", path, "--target", "spend", "--models", "toy_hurdle", "--out", out],
        capsys,
    )
    assert code == 0
    assert (
        "matplotlib is not installed, so no pictures were drawn (pip install 'ltvkit[plot]')"
        in err
    )
    assert (out / "results.csv").exists() and (out / "results.md").exists()
    assert not any((out / png).exists() for png in PNGS)


def test_progress_to_a_terminal_is_a_live_bar(toy_registry, table):
    _, df = table

    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    X, y = df.drop(columns=["customer_id", "spend"]), df["spend"]
    run_benchmark(X, y, models=["toy_hurdle"], progress=stream)
    text = stream.getvalue()
    assert "\r[1/1] toy_hurdle" in text and "[####" in text and text.endswith("\n")


# ---------------------------------------------------------------------- entry points
def test_python_dash_m_and_console_script():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "ltvkit", "benchmark", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0
    assert "--transactions" in proc.stdout and "--quick" in proc.stdout
    script = Path(sys.executable).parent / "ltvkit"
    if not script.exists():
        pytest.skip("console script not installed in this environment")
    proc = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"ltvkit {ltvkit.__version__}"


def test_list_models(toy_registry, capsys):
    code, stdout, _ = run(["benchmark", "--list-models"], capsys)
    assert code == 0
    names = [line.split()[0] for line in stdout.splitlines()]
    assert names == list(available_models())
    assert "toy_hurdle           ToyHurdleRegressor" in stdout


def test_default_data_is_cdnow_with_three_horizons():
    """No --data: CDNOW, with the 13/26/39-week cumulative spend (last = load_cdnow()'s y)."""
    from ltvkit.cli import _load, build_parser

    args = build_parser().parse_args(["benchmark"])
    X, y, source = _load(args)
    X1, y1 = load_cdnow()
    assert source.startswith("CDNOW")
    pd.testing.assert_frame_equal(X, X1)
    assert list(y.columns) == ["13w", "26w", "39w"]
    np.testing.assert_array_equal(y["39w"].to_numpy(), y1.to_numpy())


class ThreadProbeRegressor(ToyHurdleRegressor):
    """A toy whose fit is spied on by the test below."""


def test_n_jobs_sets_torch_threads_during_the_run_and_restores_them(table, monkeypatch):
    torch = pytest.importorskip("torch")
    _, df = table
    X, y = df.drop(columns=["customer_id", "spend"]), df["spend"]
    before = torch.get_num_threads()
    target = 2 if before != 2 else 3
    seen = []  # the runner fits clones, so the fit method itself records what it sees
    original = ThreadProbeRegressor.fit

    def spy(self, X, y, sample_weight=None):
        seen.append(torch.get_num_threads())
        return original(self, X, y, sample_weight)

    monkeypatch.setattr(ThreadProbeRegressor, "fit", spy)
    run_benchmark(X, y, models={"probe": ThreadProbeRegressor()}, n_jobs=target)
    assert seen and set(seen) == {target}
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="n_jobs must be"):
        run_benchmark(X, y, models={"probe": ThreadProbeRegressor()}, n_jobs=0)


def test_suspicious_columns_are_warned_about_once_naming_them(
    toy_registry, table, tmp_path, capsys
):
    _, df = table
    df = df.copy()
    df["order_ref"] = [f"R{i:07d}" for i in range(len(df))]  # an id left among the features
    amounts = df["monetary_total"].map("{:.2f}".format)
    amounts.iloc[7] = "12,50"
    df["amount_text"] = amounts
    path = tmp_path / "suspicious.csv"
    df.to_csv(path, index=False)
    code, _, err = run(
        [
            "benchmark",
            "--data",
            path,
            "--target",
            "spend",
            "--id",
            "customer_id",
            "--quick",
            "--out",
            tmp_path / "o",
        ],
        capsys,
    )
    assert code == 0
    lines = err.splitlines()
    id_lines = [ln for ln in lines if "'order_ref'" in ln]
    text_lines = [ln for ln in lines if "'amount_text' holds numbers stored as text" in ln]
    assert len(id_lines) == 1 and "warning: column 'order_ref' has a distinct value" in id_lines[0]
    assert len(text_lines) == 1 and "'12,50'" in text_lines[0]


# ====================================================================== ltvkit fit / score
def assert_one_line(code, err, command, *phrases):
    """Bad input: exit code 2 and exactly one line, the error."""
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"ltvkit {command}: error: "), lines[0]
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


@pytest.fixture
def id_table(tmp_path):
    """A customer table whose ids have leading zeros (identifiers, not numbers)."""
    X, y = make_ltv(n_samples=300, n_features=4, n_categorical=1, random_state=1)
    df = X.copy()
    df.insert(0, "customer_id", [f"{i:08d}" for i in range(418_683, 418_683 + len(df))])
    df["spend"] = y
    path = tmp_path / "customers.csv"
    df.to_csv(path, index=False)
    return path, df


@pytest.fixture
def tx_log(tmp_path):
    """A small transaction log: text ids with leading zeros, day-first dates, a country."""
    tx = load_cdnow(return_transactions=True)
    tx = tx[tx["customer_id"] <= 600].copy()
    tx["customer_id"] = tx["customer_id"].map("{:08d}".format)
    tx["country"] = np.where(tx["customer_id"].str[-1].isin(list("01234")), "UK", "FR")
    tx["date"] = tx["date"].dt.strftime("%d/%m/%Y")
    path = tmp_path / "tx.csv"
    tx.to_csv(path, index=False)
    return path, tx


TX_FLAGS = [
    "--transactions",
    "--customer",
    "customer_id",
    "--date",
    "date",
    "--value",
    "value",
    "--date-format",
    "%d/%m/%Y",
    "--static-columns",
    "country",
    "--quantity",
    "quantity",
]
FAST_TWO_STAGE = ["--model", "two_stage", "--set", "n_estimators=20"]


def test_fit_and_score_a_customer_table_keep_leading_zeros(id_table, tmp_path, capsys):
    path, df = id_table
    model = tmp_path / "model.ltvkit"
    code, _, err = run(
        [
            "fit",
            "--data",
            path,
            "--target",
            "spend",
            "--id",
            "customer_id",
            *FAST_TWO_STAGE,
            "--out",
            model,
        ],
        capsys,
    )
    assert code == 0, err
    assert model.exists() and (tmp_path / "model.ltvkit.run.json").exists()
    scores_path = tmp_path / "scores.csv"
    code, _, err = run(
        ["score", "--model", model, "--data", path, "--as-of", "2024-01-01", "--out", scores_path],
        capsys,
    )
    assert code == 0, err
    scores = pd.read_csv(scores_path, dtype={"customer_id": str})
    assert list(scores.columns) == [
        "customer_id",
        "predicted_value",
        "nonzero_proba",
        "quantile_0.1",
        "quantile_0.5",
        "quantile_0.9",
    ]
    assert scores["customer_id"].tolist() == df["customer_id"].tolist()
    assert scores["customer_id"].iloc[0] == "00418683"
    loaded = ltvkit.load(model)
    features = df.drop(columns=["customer_id", "spend"])
    np.testing.assert_allclose(scores["predicted_value"], loaded.predict(features), rtol=1e-12)
    record = __import__("json").loads((tmp_path / "scores.csv.run.json").read_text())
    assert record["command"] == "ltvkit score"
    assert record["customers"] == len(df) and record["rows"] == len(df)
    assert len(record["inputs"][0]["sha256"]) == 64
    assert record["outputs"][0]["path"] == str(scores_path)
    assert record["versions"]["ltvkit"] == ltvkit.__version__


def test_fit_and_score_a_transaction_log_reuse_the_recorded_feature_settings(
    tx_log, tmp_path, capsys
):
    path, tx = tx_log
    model = tmp_path / "model.ltvkit"
    code, _, err = run(
        [
            "fit",
            "--data",
            path,
            *TX_FLAGS,
            "--calibration-end",
            "1997-07-01",
            "--holdout-end",
            "1997-10-01",
            *FAST_TWO_STAGE,
            "--out",
            model,
        ],
        capsys,
    )
    assert code == 0, err
    assert (
        "ltvkit fit: windows: calibration 1997-01-01 to 1997-07-01, holdout 1997-07-01 to "
        "1997-10-01 (end dates excluded); the transactions run from 1997-01-01 to 1998-06-30"
    ) in err
    _, manifest = ltvkit.load(model, return_manifest=True)
    fitted = manifest["metadata"]["ltvkit_fit"]
    assert fitted["transactions"]["date_format"] == "%d/%m/%Y"
    assert fitted["transactions"]["static_columns"] == ["country"]
    assert "country" in manifest["input_schema"]["columns"]
    assert manifest["input_schema"]["kinds"]["country"] == "categorical"
    out = tmp_path / "scores.parquet"
    # no feature flags: the model file says how the features were built
    code, _, err = run(
        ["score", "--model", model, "--data", path, "--as-of", "1997-10-01", "--out", out],
        capsys,
    )
    assert code == 0, err
    assert "ltvkit score: windows: features from 1997-01-01 to as-of 1997-10-01" in err
    scores = pd.read_parquet(out)
    assert scores.columns[0] == "customer_id"
    assert scores["customer_id"].str.len().eq(8).all()
    assert scores["customer_id"].iloc[0] == "00000001"
    assert len(scores) == tx["customer_id"].nunique()


@pytest.mark.parametrize("kind", ["csv.gz", "zip", "parquet", "parquet-dir"])
def test_data_may_be_compressed_csv_parquet_or_a_parquet_directory(
    kind, id_table, tmp_path, capsys
):
    _, df = id_table
    if kind == "parquet-dir":
        data = tmp_path / "parts"
        data.mkdir()
        df.iloc[:150].to_parquet(data / "part-0.parquet", index=False)
        df.iloc[150:].to_parquet(data / "part-1.parquet", index=False)
    else:
        data = tmp_path / f"customers.{kind}"
        if kind == "parquet":
            df.to_parquet(data, index=False)
        else:
            df.to_csv(data, index=False)
    model = tmp_path / "m.ltvkit"
    code, _, err = run(
        [
            "fit",
            "--data",
            data,
            "--target",
            "spend",
            "--id",
            "customer_id",
            *FAST_TWO_STAGE,
            "--out",
            model,
        ],
        capsys,
    )
    assert code == 0, err
    assert ltvkit.load(model).n_features_in_ == 4  # the table minus id and target


def test_set_values_are_python_literals():
    from ltvkit.cli import _literal

    assert _literal("2") == 2 and _literal("0.003") == 0.003
    assert _literal("false") is False and _literal("False") is False and _literal("TRUE") is True
    assert _literal("none") is None
    assert _literal("(64,32)") == (64, 32)
    assert _literal("lightgbm") == "lightgbm"
    assert _literal("'0001'") == "0001"
    with pytest.raises(SyntaxError):
        _literal("(64,")


def test_set_reaches_the_model_and_default_model_is_stated(id_table, tmp_path, capsys):
    from ltvkit.cli import DEFAULT_MODEL, build_parser

    path, _ = id_table
    model = tmp_path / "m.ltvkit"
    code, _, err = run(
        [
            "fit",
            "--data",
            path,
            "--target",
            "spend",
            "--id",
            "customer_id",
            "--model",
            "two_stage",
            "--set",
            "backend=lightgbm",
            "--set",
            "n_estimators=7",
            "--set",
            "early_stopping=false",
            "--out",
            model,
        ],
        capsys,
    )
    assert code == 0, err
    params = ltvkit.load(model).get_params()
    assert params["backend"] == "lightgbm" and params["n_estimators"] == 7
    assert params["early_stopping"] is False and params["random_state"] == 0
    fit_help = build_parser()._subparsers._group_actions[0].choices["fit"].format_help()
    assert f"default: {DEFAULT_MODEL}" in " ".join(fit_help.split())
    assert DEFAULT_MODEL in available_models()


def test_id_like_column_is_warned_about_once_and_drop_removes_it(id_table, tmp_path, capsys):
    _, df = id_table
    df = df.assign(order_ref=[f"R{i:07d}" for i in range(len(df))])
    path = tmp_path / "with_ref.csv"
    df.to_csv(path, index=False)
    args = ["fit", "--data", path, "--target", "spend", "--id", "customer_id", *FAST_TWO_STAGE]
    code, _, err = run([*args, "--out", tmp_path / "a.ltvkit"], capsys)
    assert code == 0
    warned = [ln for ln in err.splitlines() if "'order_ref'" in ln]
    assert len(warned) == 1 and warned[0].startswith("ltvkit fit: warning: column 'order_ref'")
    code, _, err = run([*args, "--drop", "order_ref", "--out", tmp_path / "b.ltvkit"], capsys)
    assert code == 0 and "order_ref" not in err
    assert "order_ref" not in ltvkit.load(tmp_path / "b.ltvkit").feature_names_in_


@pytest.fixture
def fitted_model(id_table, tmp_path, capsys):
    path, _ = id_table
    model = tmp_path / "fitted.ltvkit"
    code, _, err = run(
        [
            "fit",
            "--data",
            path,
            "--target",
            "spend",
            "--id",
            "customer_id",
            *FAST_TWO_STAGE,
            "--out",
            model,
        ],
        capsys,
    )
    assert code == 0, err
    return model


@pytest.mark.parametrize(
    ("argv", "phrases"),
    [
        (
            ["score", "--model", "{model}", "--data", "{table}", "--out", "{tmp}/s.csv"],
            ["--as-of DATE is required"],
        ),
        (
            [
                "score",
                "--model",
                "{model}",
                "--data",
                "{table}",
                "--as-of",
                "01/09/2011",
                "--out",
                "{tmp}/s.csv",
            ],
            ["--as-of '01/09/2011' is not an ISO date (YYYY-MM-DD)"],
        ),
        (
            [
                "fit",
                "--data",
                "{tx}",
                *TX_FLAGS,
                "--calibration-end",
                "01/09/1997",
                "--holdout-end",
                "1997-12-01",
                "--out",
                "{tmp}/m.ltvkit",
            ],
            ["--calibration-end '01/09/1997' is not an ISO date (YYYY-MM-DD)"],
        ),
        (
            [
                "score",
                "--model",
                "{table}",
                "--data",
                "{table}",
                "--as-of",
                "2024-01-01",
                "--out",
                "{tmp}/s.csv",
            ],
            ["customers.csv is not an ltvkit model file"],
        ),
        (
            [
                "score",
                "--model",
                "{tmp}/nope.ltvkit",
                "--data",
                "{table}",
                "--as-of",
                "2024-01-01",
                "--out",
                "{tmp}/s.csv",
            ],
            ["model file not found"],
        ),
        (
            [
                "score",
                "--model",
                "{model}",
                "--data",
                "{narrow}",
                "--id",
                "customer_id",
                "--as-of",
                "2024-01-01",
                "--out",
                "{tmp}/s.csv",
            ],
            ["the scoring data has no column 'num_1', which the model was fitted with"],
        ),
        (
            [
                "score",
                "--model",
                "{model}",
                "--data",
                "{table}",
                "--as-of",
                "2024-01-01",
                "--out",
                "{tmp}/s.xlsx",
            ],
            ["unsupported output type '.xlsx'"],
        ),
        (
            [
                "fit",
                "--data",
                "{table}",
                "--target",
                "spend",
                "--model",
                "bogus",
                "--out",
                "{tmp}/m.ltvkit",
            ],
            ["unknown model 'bogus'; choose one of: two_stage"],
        ),
        (
            [
                "fit",
                "--data",
                "{table}",
                "--target",
                "spend",
                "--model",
                "ziln",
                "--set",
                "max_epochs",
                "--out",
                "{tmp}/m.ltvkit",
            ],
            ["--set 'max_epochs': expected PARAM=VALUE"],
        ),
        (
            [
                "fit",
                "--data",
                "{table}",
                "--target",
                "spend",
                "--model",
                "ziln",
                "--set",
                "epochs=3",
                "--out",
                "{tmp}/m.ltvkit",
            ],
            ["--set epochs: ziln has no parameter 'epochs'"],
        ),
        (
            [
                "fit",
                "--data",
                "{table}",
                "--target",
                "spend",
                "--model",
                "ziln",
                "--set",
                "hidden_units=(64,",
                "--out",
                "{tmp}/m.ltvkit",
            ],
            ["is not a Python literal"],
        ),
        (
            [
                "fit",
                "--data",
                "{table}",
                "--target",
                "spend",
                "--model",
                "ziln",
                "--set",
                "max_epochs=0",
                "--out",
                "{tmp}/m.ltvkit",
            ],
            ["ZILNRegressor: max_epochs must be"],
        ),
        (
            ["fit", "--data", "{table}", "--target", "spend", "--out", "{tmp}/no/m.ltvkit"],
            ["directory", "does not exist"],
        ),
        (["fit", "--data", "{table}", "--target", "spend"], ["--out FILE is required"]),
        (["fit", "--target", "spend", "--out", "{tmp}/m.ltvkit"], ["--target needs --data"]),
        (
            [
                "fit",
                "--data",
                "{table}",
                "--target",
                "spend",
                "--drop",
                "nope",
                "--out",
                "{tmp}/m.ltvkit",
            ],
            ["--drop: no column 'nope'"],
        ),
        (
            [
                "fit",
                "--data",
                "{tx}",
                *TX_FLAGS[:-4],
                "--static-columns",
                "region",
                "--calibration-end",
                "1997-07-01",
                "--holdout-end",
                "1997-10-01",
                "--out",
                "{tmp}/m.ltvkit",
            ],
            ["--static-columns column 'region' not found"],
        ),
    ],
    ids=[
        "missing-as-of",
        "non-iso-as-of",
        "non-iso-calibration-end",
        "not-a-model-file",
        "missing-model-file",
        "scoring-table-missing-a-column",
        "bad-output-type",
        "unknown-model",
        "set-without-value",
        "set-unknown-parameter",
        "set-not-a-literal",
        "set-invalid-value",
        "out-directory-missing",
        "fit-without-out",
        "fit-without-data",
        "drop-unknown-column",
        "static-column-not-found",
    ],
)
def test_fit_and_score_bad_input_gives_one_line_and_exit_code_2(
    argv, phrases, fitted_model, id_table, tx_log, tmp_path, capsys
):
    path, df = id_table
    narrow = tmp_path / "narrow.csv"
    df.drop(columns=["num_1"]).to_csv(narrow, index=False)
    subs = {
        "{model}": str(fitted_model),
        "{table}": str(path),
        "{narrow}": str(narrow),
        "{tx}": str(tx_log[0]),
        "{tmp}": str(tmp_path),
    }
    resolved = []
    for a in argv:
        for k, v in subs.items():
            a = a.replace(k, v)
        resolved.append(a)
    code, stdout, stderr = run(resolved, capsys)
    assert_one_line(code, stderr, resolved[0], *phrases)
    assert stdout == ""
    assert not (tmp_path / "s.csv").exists() and not (tmp_path / "m.ltvkit").exists()


# ---------------------------------------------------------------------- the backtest
HORIZON_DAYS = 91


@pytest.fixture(scope="module")
def online_retail_backtest(tmp_path_factory):
    """docs/scoring.md's backtest through the CLI: fit as of 2011-06-01 (91-day horizon),
    score as of 2011-09-01 in a fresh process, and the spend realised after it."""
    from ltvkit.datasets import load_online_retail, transactions_to_features

    try:
        tx = load_online_retail(return_transactions=True)
    except FileNotFoundError as exc:
        pytest.skip(f"needs the Online Retail data: {exc}")
    work = tmp_path_factory.mktemp("backtest")
    orders = work / "orders.parquet"
    tx.to_parquet(orders, index=False)
    flags = [
        "--data",
        orders,
        "--transactions",
        "--customer",
        "CustomerID",
        "--date",
        "InvoiceDate",
        "--value",
        "value",
        "--static-columns",
        "Country",
        "--item",
        "StockCode",
        "--quantity",
        "Quantity",
    ]
    model = work / "model.ltvkit"
    code = main(
        [
            str(a)
            for a in [
                "fit",
                *flags,
                "--calibration-end",
                "2011-06-01",
                "--holdout-end",
                "2011-08-31",
                "--model",
                "two_stage",
                "--set",
                "n_estimators=50",
                "--out",
                model,
            ]
        ]
    )
    assert code == 0
    scores_path = work / "scores.csv"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ltvkit",
            "score",
            "--model",
            str(model),
            "--data",
            str(orders),
            "--as-of",
            "2011-09-01",
            "--out",
            str(scores_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    scores = pd.read_csv(scores_path, dtype={"CustomerID": str}).set_index("CustomerID")
    tx["CustomerID"] = tx["CustomerID"].astype(str)
    after = tx[(tx["InvoiceDate"] >= "2011-09-01") & (tx["InvoiceDate"] < "2011-12-01")]
    realised = (
        after.groupby("CustomerID")["value"]
        .sum()
        .clip(lower=0)
        .reindex(scores.index, fill_value=0.0)
    )
    past = transactions_to_features(
        tx,
        customer_col="CustomerID",
        date_col="InvoiceDate",
        value_col="value",
        as_of="2011-09-01",
        static_cols=["Country"],
        item_col="StockCode",
        quantity_col="Quantity",
    ).reindex(scores.index)
    return scores, realised, past, model


def test_cli_backtest_scores_rank_the_realised_spend(online_retail_backtest):
    scores, realised, past, model = online_retail_backtest
    assert (
        HORIZON_DAYS
        == (pd.Timestamp("2011-08-31") - pd.Timestamp("2011-06-01")).days
        == (pd.Timestamp("2011-12-01") - pd.Timestamp("2011-09-01")).days
    )
    assert len(scores) == 3317 and scores.index.is_unique
    gini = normalized_gini(realised, scores["predicted_value"])
    recent = normalized_gini(realised, past[f"spend_last_{HORIZON_DAYS - 1}d"])
    all_past = normalized_gini(realised, past["monetary_total"])
    print(
        f"Gini: scores {gini:.4f}, spend of the last 90 days {recent:.4f}, all past {all_past:.4f}"
    )
    # better than the horizon-matched naive forecast (the last 90 days' spend again)...
    assert gini > recent + 0.03, (gini, recent)
    # ... and within a whisker of the ranking by all past spend (see the strict xfail)
    assert gini > all_past - 0.01, (gini, all_past)
    # the model file written by fit loads here too, and gives the same scores
    features = past[ltvkit.load(model).feature_names_in_]
    np.testing.assert_allclose(
        scores["predicted_value"], ltvkit.load(model).predict(features), rtol=1e-12
    )


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="measured: on Online Retail no model beats the ranking by all past spend "
    "(monetary_total) on the spend realised after 2011-09-01 (two_stage 0.761, odmn 0.757 "
    "vs 0.763; docs/scoring.md); remove this mark when one does",
)
def test_cli_backtest_scores_beat_the_ranking_by_all_past_spend(online_retail_backtest):
    scores, realised, past, _ = online_retail_backtest
    assert normalized_gini(realised, scores["predicted_value"]) > normalized_gini(
        realised, past["monetary_total"]
    )


def test_a_long_step_shows_progress_and_a_quick_one_prints_nothing(monkeypatch, capsys):
    import argparse
    import time

    import ltvkit.cli as cli

    args = argparse.Namespace(command="fit")
    with cli._step(args, "quick step"):
        pass
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(cli, "_HEARTBEAT_AFTER", 0.05)
    monkeypatch.setattr(cli, "_HEARTBEAT_EVERY", 0.05)
    with cli._step(args, "fitting odmn"):
        time.sleep(0.3)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("ltvkit fit: fitting odmn ... ")
    assert lines[-1].startswith("ltvkit fit: fitting odmn: done in ")
