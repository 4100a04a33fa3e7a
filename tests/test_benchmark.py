"""Tests of the public benchmark package ``ltvkit.benchmark`` (the CLI is in test_cli.py).

The result type, ``seeds=``, the spend baseline, the recall column, the run record, the
chart titles and the registry-driven legend. Toy models keep every test fast.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.model_selection import train_test_split

import ltvkit.benchmark as bench
from ltvkit._run_record import file_digest
from ltvkit.benchmark import (
    COSTS,
    QUICK_NOTE,
    RECALL_MIN_CUSTOMERS,
    TABLE_METRICS,
    BenchmarkResult,
    CalibrationSpendBaseline,
    format_table,
    legend,
    run_benchmark,
    write_benchmark,
)
from ltvkit.datasets import make_ltv
from ltvkit.metrics import METRICS, ambe, nmae, normalized_gini, recall_at_k


class SeededRegressor(RegressorMixin, BaseEstimator):
    """Predicts a feature plus seed-dependent noise; records the seed it was fitted with."""

    def __init__(self, random_state=None):
        self.random_state = random_state

    def fit(self, X, y):
        self.seed_ = self.random_state
        return self

    def predict(self, X):
        rng = np.random.default_rng(self.seed_)
        base = np.abs(np.asarray(X["monetary_total"], dtype=float))
        return base + rng.uniform(0, 5, size=len(X))


@pytest.fixture
def data():
    X, y = make_ltv(n_samples=600, n_features=4, n_categorical=0, random_state=0)
    X = X.assign(monetary_total=np.round(np.abs(X["num_0"].to_numpy()) * 20, 2))
    return X, pd.Series(y, name="spend")


def test_the_package_is_public_and_the_private_module_is_gone():
    from pathlib import Path

    import ltvkit

    assert {"run_benchmark", "BenchmarkResult", "CalibrationSpendBaseline"} <= set(bench.__all__)
    # no alias left behind (checked on disk: an editable install of another checkout
    # could still serve the old module by name)
    assert not (Path(ltvkit.__file__).parent / "_benchmark.py").exists()


def test_run_benchmark_always_returns_a_result(data, tmp_path):
    X, y = data
    for kwargs in ({}, {"out": tmp_path / "o"}, {"cv": 3}, {"seeds": [0, 1]}):
        result = run_benchmark(X, y, models={"seeded": SeededRegressor()}, **kwargs)
        assert isinstance(result, BenchmarkResult)
        assert result.table.loc["seeded", "status"] == "ok"
    assert (tmp_path / "o" / "results.csv").exists()


def test_seeds_fit_once_per_seed_on_the_same_split_mean_and_sd(data):
    X, y = data
    result = run_benchmark(X, y, models={"seeded": SeededRegressor()}, seeds=[3, 5, 7], seed=1)
    scores = result.scores
    assert scores["seed"].tolist() == [3, 5, 7] and set(scores["fold"]) == {0}
    # the split is the seed=1 split for every fit: recompute seed 5's Gini by hand
    _, X_te, _, y_te = train_test_split(X, y, test_size=0.3, random_state=1)
    pred5 = SeededRegressor(random_state=5).fit(X_te, y_te).predict(X_te)
    assert scores.loc[scores["seed"] == 5, "normalized_gini"].item() == normalized_gini(
        y_te, pred5
    )
    row = result.table.loc["seeded"]
    for col in ("normalized_gini", "nmae", "fit_seconds"):
        assert row[col] == pytest.approx(scores[col].mean())
        assert row[f"{col}_std"] == pytest.approx(scores[col].std(ddof=1))
    assert row["normalized_gini_std"] > 0  # the seeds really differ
    # the charts draw the first seed's predictions
    np.testing.assert_array_equal(
        result.predictions["seeded"],
        SeededRegressor(random_state=3).fit(X_te, y_te).predict(X_te),
    )
    assert result.table.attrs["seeds"] == [3, 5, 7]
    assert "±" in format_table(result.table)


def test_seeds_with_cv_score_every_fold_and_seed(data):
    X, y = data
    result = run_benchmark(X, y, models={"seeded": SeededRegressor()}, cv=3, seeds=[0, 1])
    assert sorted(zip(result.scores["fold"], result.scores["seed"], strict=True)) == [
        (f, s) for f in range(3) for s in (0, 1)
    ]
    assert len(result.y_true) == len(X)  # out-of-fold predictions of every row


@pytest.mark.parametrize(
    ("seeds", "match"),
    [([], "non-empty"), ([0, 0], "distinct"), (3, "sequence of ints"), ([0, 1.5], "ints")],
)
def test_bad_seeds_are_refused(data, seeds, match):
    X, y = data
    with pytest.raises(ValueError, match=match):
        run_benchmark(X, y, models={"seeded": SeededRegressor()}, seeds=seeds)


# ------------------------------------------------------------------------- the baseline
def test_calibration_spend_baseline_definition():
    X = pd.DataFrame({"monetary_total": [10.0, -2.0, 0.0, 30.0, np.nan]})
    y = np.array([4.0, 0.0, 0.0, 12.0, 4.0])
    model = CalibrationSpendBaseline().fit(X, y)
    # past spend clipped at 0, missing as 0: 10, 0, 0, 30, 0 -> mean 8; mean(y) 4
    assert model.scale_ == 0.5
    pred = model.predict(X)
    assert pred.tolist() == [5.0, 0.0, 0.0, 15.0, 0.0]
    assert pred.mean() == y.mean()  # calibrated on the training customers
    # weighted: rows 3 and 4 weigh 0 -> mean y 4/3, mean past spend 10/3
    w = np.array([1.0, 1.0, 1.0, 0.0, 0.0])
    weighted = CalibrationSpendBaseline().fit(X, y, sample_weight=w)
    assert weighted.scale_ == pytest.approx((4 / 3) / (10 / 3))
    # no positive past spend: no ranking, the training mean for everyone
    flat = CalibrationSpendBaseline().fit(pd.DataFrame({"monetary_total": [0.0, -1.0]}), [1, 3])
    assert flat.scale_ == 0.0
    assert flat.predict(X).tolist() == [2.0] * 5
    with pytest.raises(ValueError, match="needs a column 'spend'"):
        CalibrationSpendBaseline(column="spend").fit(X, y)


def test_the_benchmark_peer_is_the_rescaled_baseline(data):
    X, y = data
    result = run_benchmark(X, y, models=["calibration_spend"])
    row = result.table.loc["calibration_spend"]
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0)
    spend_tr, spend_te = (d["monetary_total"].to_numpy(dtype=float) for d in (X_tr, X_te))
    pred = spend_te * (np.asarray(y_tr, dtype=float).mean() / spend_tr.mean())
    np.testing.assert_allclose(result.predictions["calibration_spend"], pred, rtol=1e-12)
    assert row["ambe"] == pytest.approx(ambe(y_te, pred))
    assert row["nmae"] == pytest.approx(nmae(y_te, pred))
    # its ranking is the raw past spend's
    assert row["normalized_gini"] == normalized_gini(y_te, X_te["monetary_total"])


# ------------------------------------------------------------------------ the columns
def test_recall_column_is_the_top_1pct_but_at_least_50(data):
    X, y = data
    result = run_benchmark(X, y, models={"seeded": SeededRegressor(random_state=0)})
    _, _, _, y_te = train_test_split(X, y, test_size=0.3, random_state=0)
    pred = result.predictions["seeded"]
    assert len(y_te) * 0.01 < RECALL_MIN_CUSTOMERS  # 180 test rows: 1% would be 2
    value = result.table.loc["seeded", "recall_at_1pct_min50"]
    assert value == recall_at_k(y_te, pred, k=RECALL_MIN_CUSTOMERS)
    assert value != recall_at_k(y_te, pred, k=0.01)
    column = {c.key: c for c in TABLE_METRICS}["recall_at_1pct_min50"]
    assert column.label == "Recall@1%≥50"
    assert dict(column.metric.params) == {"k": 0.01, "min_k": 50}


def test_table_columns_take_label_and_direction_from_the_registry():
    for col in TABLE_METRICS:
        base = METRICS[col.metric.func.__name__]
        assert col.greater_is_better == base.greater_is_better
        if col.key in METRICS:
            assert col.label == METRICS[col.key].label
    assert all(not c.greater_is_better for c in COSTS)


def test_best_marks_and_legend_follow_the_registry():
    t = pd.DataFrame(
        {
            "mutual_gini": [0.10, 0.05],  # lower is better
            "sva": [0.7, 0.6],  # higher is better
            "recall_at_1pct_min50": [0.2, 0.4],
            "status": ["ok", "ok"],
        },
        index=pd.Index(["a", "b"], name="model"),
    )
    md = format_table(t, "markdown").splitlines()
    assert md[0] == "| model | Mutual Gini | SVA | Recall@1%≥50 | status |"
    assert md[2] == "| a | 0.100 | **0.700** | 0.200 | ok |"
    assert md[3] == "| b | **0.050** | 0.600 | **0.400** | ok |"
    assert legend(t) == (
        "* best per column. Higher is better: SVA, Recall@1%≥50; lower is better: Mutual Gini."
    )


# ------------------------------------------------------------------- files and record
def test_write_benchmark_writes_a_run_record(data, tmp_path):
    X, y = data
    result = run_benchmark(
        X, y, models={"seeded": SeededRegressor()}, seeds=[0, 1], data_name="toy table"
    )
    written = write_benchmark(result, tmp_path, inputs=[], arguments={"why": "test"})
    record = json.loads(written["run_record"].read_text())
    assert record["command"] == "ltvkit.benchmark.run_benchmark"
    assert record["arguments"] == {"why": "test"}
    assert record["data"]["name"] == "toy table" and record["data"]["rows"] == 600
    assert record["data"]["sha256"] == result.data_sha256
    assert record["split"] == {"test_size": 0.3, "cv": None, "seed": 0, "scored_customers": 180}
    assert record["seeds"] == [0, 1] and record["quick"] is False
    assert record["models"] == {"seeded": "ok"}
    assert {"numpy", "scikit-learn", "ltvkit"} <= set(record["versions"])
    outputs = {entry["path"]: entry["sha256"] for entry in record["outputs"]}
    for kind in ("csv", "markdown"):
        assert outputs[str(written[kind])] == file_digest(written[kind]).removeprefix("sha256:")
    # the data digest is the table's: the same data gives the same, other data another
    again = run_benchmark(X, y, models=["calibration_spend"])
    other = run_benchmark(X.assign(num_1=X["num_1"] + 1), y, models=["calibration_spend"])
    assert again.data_sha256 == result.data_sha256 != other.data_sha256
    # without the record
    assert "run_record" not in write_benchmark(result, tmp_path / "b", run_record=False)


def test_chart_titles_name_the_data_the_customers_and_quick(data, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    titles: list[str] = []
    save = Figure.savefig

    def spy(self, *args, **kwargs):
        titles.append(self.axes[0].get_title())
        return save(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    X, y = data
    result = run_benchmark(X, y, models=["calibration_spend"], quick=True, data_name="toy")
    write_benchmark(result, tmp_path)
    assert len(titles) == 3
    for title in titles:
        assert "toy, 180 held-out customers" in title and QUICK_NOTE in title
    assert titles[0].startswith("Gain chart")
    titles.clear()
    full = run_benchmark(X, y, models=["calibration_spend"], cv=3, data_name="toy")
    write_benchmark(full, tmp_path)
    assert all("toy, 600 customers, 3-fold CV" in t and "quick" not in t for t in titles)


# ----------------------------------------------------------------- the study runner
@pytest.fixture
def study_module(monkeypatch):
    """``benchmarks/_study.py`` (a repository script) with a small toy dataset added."""
    import sys
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import _study

    def toy():
        X, Y = make_ltv(n_samples=400, n_features=3, n_categorical=0, n_horizons=2, random_state=1)
        return X.assign(monetary_total=np.abs(X["num_0"].to_numpy()) * 10), Y

    monkeypatch.setitem(_study.DATASETS, "toy", _study.Dataset("Toy", toy))
    yield _study
    sys.modules.pop("_study", None)


FITS: list[int] = []  # every HardSoftRegressor.fit call, by training rows


class HardSoftRegressor(SeededRegressor):
    """Two outputs of one fit (``prediction``), like MDME's hard and expected values."""

    def __init__(self, random_state=None, prediction="soft"):
        super().__init__(random_state)
        self.prediction = prediction

    def fit(self, X, y):
        FITS.append(len(X))
        return super().fit(X, y)

    def predict(self, X):
        pred = super().predict(X)
        return np.round(pred, -1) if self.prediction == "hard" else pred


def test_study_runner_declarative_table(study_module, capsys):
    s = study_module
    FITS.clear()

    def n_test(scored):  # an extra column computed from the fit
        return {"test rows": len(scored.y_test)}

    study = s.Study(
        name="toy",
        title="Toy study",
        seeds=2,
        tables=(
            s.Table(
                name="main",
                title="Main",
                datasets=("toy",),
                variants={
                    "model": s.Variant(
                        HardSoftRegressor,
                        outputs={"hard": {"prediction": "hard"}, "soft": {"prediction": "soft"}},
                    )
                },
                metrics=("normalized_gini", "nmae"),
                baseline=True,
                extras=(n_test,),
                cv=s.CV(metrics=("normalized_gini",), folds=2, repeats=1),
            ),
            s.Table(
                name="later",
                title="Optional",
                datasets=("toy",),
                optional=True,
                variants={"m": s.Variant(HardSoftRegressor)},
            ),
        ),
    )
    scores = s.run_study(study, command="test")
    out = capsys.readouterr().out
    # 2 seeds x 2 outputs of ONE fit each (hard and soft), then the baseline
    assert scores["model"].tolist() == ["model (hard)", "model (soft)"] * 2 + ["calibration spend"]
    # one fit per seed on the 280 training rows (both outputs come from it), and the
    # 2-fold CV on the training part: 2 fits of 140 rows per seed
    assert sorted(FITS) == [140] * 4 + [280] * 2
    assert set(scores["test rows"].dropna()) == {120}
    assert set(scores["table"]) == {"main"}  # the optional table did not run
    # every number is the metric of the fixed 70/30 split, on the last horizon
    X, Y = s.DATASETS["toy"].load()
    _, X_te, _, Y_te = train_test_split(X, Y, test_size=0.3, random_state=0)
    soft1 = scores[(scores["model"] == "model (soft)") & (scores["seed"] == 1)]
    pred = SeededRegressor(random_state=1).fit(X_te, None).predict(X_te)
    assert soft1["Gini ↑"].item() == normalized_gini(Y_te[:, -1], pred)
    assert soft1["NMAE ↓"].item() == nmae(Y_te[:, -1], pred)
    assert soft1["CV Gini ↑"].notna().all()
    # the table: mean ± sd over the seeds, the baseline, the direction arrows
    assert "| model (soft)" in out and "±" in out and "| calibration spend" in out
    assert "Toy: 280 train / 120 test customers" in out
    # re-rendering the saved scores gives the same tables
    rendered = s.render_study(study, scores, command="test")
    assert rendered.split("## Main", 1)[1].strip() == out.split("## Main", 1)[1].strip()
    with pytest.raises(ValueError, match="unknown table"):
        s.run_study(study, tables=["nope"])


def test_study_runner_scores_every_horizon(study_module, capsys):
    s = study_module

    class PerHorizon(SeededRegressor):
        def predict(self, X):
            base = super().predict(X)
            return np.c_[base, 2 * base]

    study = s.Study(
        name="toy",
        title="Toy",
        seeds=1,
        tables=(
            s.Table(
                name="horizons",
                title="Horizons",
                datasets=("toy",),
                variants={"m": s.Variant(PerHorizon)},
                metrics=("normalized_gini",),
                horizons="all",
            ),
        ),
    )
    scores = s.run_study(study)
    assert scores["horizon"].tolist() == [0, 1]
    assert "| m_1 " in capsys.readouterr().out
