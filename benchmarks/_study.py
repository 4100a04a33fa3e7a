"""The quality-study runner: one loop for split -> seeds -> metrics -> table.

A *study* (``benchmarks/quality_<name>.py`` defines ``STUDY``) is declarative: a list of
:class:`Table` s, each naming its datasets, its model variants (class and parameters),
the metrics (names from the registry ``ltvkit.metrics.METRICS``, which also says which
way each one is better), whether the spend baseline is shown, and the few special parts
a study needs as data or small hooks:

- ``outputs``: several predictions of one fitted model (e.g. MDME's ``prediction="hard"``
  and ``"expected"``), without refitting;
- ``horizons="all"``: a multi-horizon model fitted on every horizon and scored on each;
- ``extras``: per-fit columns computed by a function of the fit (:class:`Scored`), e.g.
  epochs, ``mean(pred) / mean(y_train)``, monotonicity violations;
- ``cv``: repeated K-fold cross-validation on the training part (:class:`CV`), next to or
  instead of the held-out scores.

The protocol is ltvkit's: ``train_test_split(X, y, test_size=0.3, random_state=0)`` (the
split is fixed), one fit per model seed (``random_state`` = 0, 1, ...; the seed changes
initialisation, shuffling and validation split, not the data), metrics on the 30% test
split as mean ± sd over seeds. The baseline is ``ltvkit.benchmark.CalibrationSpendBaseline``
(rank by past spend, rescaled to the training mean). Online Retail is skipped when its
file is absent.

Adopting the runner for a new study: write ``benchmarks/quality_<name>.py`` with
``STUDY = Study(...)`` (see ``quality_ziln.py``, the smallest), then::

    OMP_NUM_THREADS=1 python benchmarks/run_study.py <name> [--seeds N] [--datasets ...]

Every fit's scores (and a digest of its predictions) go to ``<out>/scores.csv``, the
Markdown tables to stdout and ``<out>/tables.md``, and a run record to ``<out>/run.json``.
"""

from __future__ import annotations

import datetime
import hashlib
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from _common import mean_sd, online_retail, online_retail_horizons
from sklearn.base import BaseEstimator
from sklearn.model_selection import KFold, train_test_split

from ltvkit.benchmark import CalibrationSpendBaseline
from ltvkit.datasets import load_cdnow, make_ltv
from ltvkit.metrics import MetricSpec, get_metric, ltv_report

BASELINE = "calibration spend"


# ------------------------------------------------------------------------------ datasets
@dataclass(frozen=True)
class Dataset:
    """A named customer table; ``load()`` returns ``(X, y)``, FileNotFoundError if absent."""

    title: str
    load: Callable[[], tuple[pd.DataFrame, Any]]


#: The datasets studies refer to by name.
DATASETS: dict[str, Dataset] = {
    "cdnow": Dataset("CDNOW", load_cdnow),
    "cdnow_horizons": Dataset(
        "CDNOW (13/26/39 weeks)", lambda: load_cdnow(horizons_weeks=(13, 26, 39))
    ),
    "online_retail": Dataset("Online Retail", online_retail),
    "online_retail_horizons": Dataset(
        "Online Retail (1/2/3.3 months after 2011-09-01)", online_retail_horizons
    ),
    "synthetic_horizons": Dataset(
        "make_ltv(n_samples=20_000, n_horizons=4)",
        lambda: make_ltv(n_samples=20_000, n_horizons=4, random_state=0),
    ),
}


# ------------------------------------------------------------------------- declarations
@dataclass(frozen=True)
class Variant:
    """One model configuration: ``estimator(**params)``, ``random_state`` set per seed.

    ``outputs`` maps an output name to the parameters set (``set_params``) before one
    ``predict`` of the same fitted model, e.g. ``{"hard": {"prediction": "hard"},
    "expected": {"prediction": "expected"}}``; None is one plain ``predict``.
    """

    estimator: Callable[..., BaseEstimator]
    params: Mapping[str, Any] = field(default_factory=dict)
    outputs: Mapping[str, Mapping[str, Any]] | None = None

    def build(self, seed: int | None) -> BaseEstimator:
        est = self.estimator(**self.params)
        if seed is not None and "random_state" in est.get_params(deep=False):
            est.set_params(random_state=seed)
        return est


@dataclass
class Scored:
    """What an ``extras`` hook sees: one fitted model's prediction of one horizon."""

    model: BaseEstimator
    X_train: pd.DataFrame
    y_train: np.ndarray
    X_test: pd.DataFrame
    y_test: np.ndarray
    pred: np.ndarray  # this horizon's prediction, 1-D
    pred_full: np.ndarray  # what predict returned (2-D for a multi-horizon model)
    seed: int | None
    horizon: int | None  # 0-based, None for a single-horizon target


Extra = Callable[[Scored], Mapping[str, float]]


@dataclass(frozen=True)
class CV:
    """Repeated K-fold cross-validation on the training part: ``repeats`` x ``folds`` fits
    (``KFold(folds, shuffle=True, random_state=r)`` for r = 0, 1, ...); each column is the
    mean over the folds, labelled ``"CV <label>"``."""

    metrics: tuple[str | MetricSpec, ...] = ()
    extras: tuple[Extra, ...] = ()
    folds: int = 5
    repeats: int = 3


@dataclass(frozen=True)
class Table:
    """One table of a study: variants x datasets, scored with ``metrics``.

    Parameters
    ----------
    name : str
        Short key (``--tables``).
    title : str
        Markdown heading.
    datasets : tuple of str
        Keys of :data:`DATASETS`.
    variants : mapping of str to Variant
    metrics : tuple of str or MetricSpec
        Registry names (or specs), scored on the test split.
    horizons : {"last", "all"}
        ``"last"``: fit and score on the last column of a multi-horizon target;
        ``"all"``: fit on every horizon (multi-horizon models) and score each.
    baseline : bool
        Add the ``calibration spend`` row, fitted on the same training part.
    extras : tuple of callables
        ``extra(scored) -> {column: value}`` per fit, averaged over seeds. For the
        baseline, an extra that needs what it lacks (AttributeError) is left empty.
    cv : CV or None
        Cross-validation on the training part, as extra columns.
    test_split : bool
        Score the held-out split (False: the CV columns only).
    timing : bool
        A ``fit s`` column (wall clock).
    transpose : bool
        Print metrics as rows and models as columns.
    digits : int
        Decimals of the metric columns.
    optional : bool
        Run only when named in ``--tables``.
    """

    name: str
    title: str
    datasets: tuple[str, ...]
    variants: Mapping[str, Variant]
    metrics: tuple[str | MetricSpec, ...] = ()
    horizons: Literal["last", "all"] = "last"
    baseline: bool = False
    extras: tuple[Extra, ...] = ()
    cv: CV | None = None
    test_split: bool = True
    timing: bool = False
    transpose: bool = False
    digits: int = 4
    optional: bool = False


@dataclass(frozen=True)
class Study:
    """A named list of tables with its default number of seeds."""

    name: str
    title: str
    tables: tuple[Table, ...]
    seeds: int = 3
    ignore_warnings: tuple[type[Warning], ...] = ()


# ------------------------------------------------------------------------------- runner
def _digest(pred: np.ndarray) -> str:
    data = np.ascontiguousarray(np.asarray(pred, dtype=np.float64)).tobytes()
    return hashlib.sha256(data).hexdigest()[:16]


def _column(Y: np.ndarray, h: int | None) -> np.ndarray:
    if h is None:
        return Y if Y.ndim == 1 else np.ascontiguousarray(Y[:, -1])
    return np.ascontiguousarray(Y[:, h])


def _label(spec: MetricSpec) -> str:
    return f"{spec.label} {spec.arrow}"


class _Runner:
    """Runs the tables of one study; collects one row per (fit, output, horizon)."""

    def __init__(self, study: Study, seeds: Sequence[int], datasets: Sequence[str] | None):
        self.study = study
        self.seeds = list(seeds)
        self.only = set(datasets) if datasets else None
        self.rows: list[dict[str, Any]] = []
        self.cache: dict[str, tuple[pd.DataFrame, np.ndarray] | None] = {}
        self.data_info: dict[str, dict[str, Any]] = {}
        self.y_test: dict[str, np.ndarray] = {}

    def log(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def data(self, key: str) -> tuple[pd.DataFrame, np.ndarray] | None:
        if key not in self.cache:
            try:
                X, y = DATASETS[key].load()
            except FileNotFoundError as exc:
                self.log(f"{DATASETS[key].title}: data not found, skipped ({exc})")
                self.cache[key] = None
            else:
                self.cache[key] = (X, np.asarray(y, dtype=np.float64))
        return self.cache[key]

    def split(self, key: str) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
        """ltvkit's fixed split of dataset ``key`` (its header facts are kept for the table)."""
        pair = self.data(key)
        assert pair is not None
        X, Y = pair
        # Splitting the row indices gives exactly the rows of train_test_split(X, y, ...).
        tr, te = train_test_split(np.arange(len(X)), test_size=0.3, random_state=0)
        self.data_info[key] = {"rows": len(X), "train": len(tr), "test": len(te)}
        self.y_test[key] = _column(Y[te], None)
        return X.iloc[tr], X.iloc[te], Y[tr], Y[te]

    def run_table(self, table: Table) -> list[str]:
        """Fit and score ``table``; return its Markdown (one block per dataset)."""
        metrics = [get_metric(m) for m in table.metrics]
        blocks = [f"## {table.title}\n"]
        for key in table.datasets:
            if self.only is not None and key not in self.only:
                continue
            pair = self.data(key)
            if pair is None:
                blocks.append(f"{DATASETS[key].title}: data not found, skipped.\n")
                continue
            rows = self._dataset(table, key, metrics)
            self.rows += rows
            blocks.append(self._markdown(table, key, pd.DataFrame(rows), metrics))
        return blocks

    def _dataset(self, table: Table, key: str, metrics: list[MetricSpec]) -> list[dict[str, Any]]:
        X_tr, X_te, Y_tr, Y_te = self.split(key)
        horizons: list[int | None] = [None]
        if table.horizons == "all":
            if Y_tr.ndim != 2:
                raise ValueError(f"table {table.name}: {key} has a single horizon")
            horizons = list(range(Y_tr.shape[1]))
        y_fit = Y_tr if table.horizons == "all" else _column(Y_tr, None)
        uses_proba = any(m.uses_nonzero_proba for m in metrics)
        base = {"table": table.name, "dataset": key}
        rows = []
        for name, variant in table.variants.items():
            for seed in self.seeds:
                cv = self._cv(table, variant, seed, X_tr, y_fit) if table.cv else {}
                if not table.test_split:
                    rows.append({**base, "model": name, "seed": seed, "horizon": None, **cv})
                    continue
                model = variant.build(seed)
                t0 = time.perf_counter()
                model.fit(X_tr, y_fit)
                fit_s = time.perf_counter() - t0
                self.log(f"[{table.name}] {key} {name} seed {seed}: fit {fit_s:.1f} s")
                proba = None
                if uses_proba and hasattr(model, "predict_nonzero_proba"):
                    proba = np.asarray(model.predict_nonzero_proba(X_te), dtype=np.float64)
                for output, params in (variant.outputs or {"": {}}).items():
                    if params:
                        model.set_params(**params)
                    pred_full = np.asarray(model.predict(X_te), dtype=np.float64)
                    label = f"{name} ({output})" if output else name
                    for h in horizons:
                        scored = Scored(
                            model,
                            X_tr,
                            _column(Y_tr, h),
                            X_te,
                            _column(Y_te, h),
                            _column(pred_full, h),
                            pred_full,
                            seed,
                            h,
                        )
                        # P(y > 0) is the last horizon's (docs/contract.md)
                        last = h is None or h == horizons[-1]
                        p_h = proba if last and proba is not None and proba.ndim == 1 else None
                        row = {**base, "model": label, "seed": seed, "horizon": h}
                        row |= self._score(scored, metrics, table.extras, p_h)
                        row |= cv | ({"fit s": fit_s} if table.timing else {})
                        rows.append(row)
        if table.baseline and table.test_split:
            for h in horizons:
                model = CalibrationSpendBaseline().fit(X_tr, _column(Y_tr, h))
                pred = model.predict(X_te)
                scored = Scored(
                    model, X_tr, _column(Y_tr, h), X_te, _column(Y_te, h), pred, pred, None, h
                )
                row = {**base, "model": BASELINE, "seed": None, "horizon": h}
                row |= self._score(scored, metrics, table.extras, None, baseline=True)
                rows.append(row)
        return rows

    def _score(
        self,
        s: Scored,
        metrics: list[MetricSpec],
        extras: Sequence[Extra],
        proba: np.ndarray | None,
        *,
        baseline: bool = False,
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if metrics:
            report = ltv_report(s.y_test, s.pred, proba, metrics=metrics)
            out |= {_label(m): float(report[m.name]) for m in metrics}
        for extra in extras:
            try:
                out |= dict(extra(s))
            except AttributeError:
                if not baseline:
                    raise
        out["pred_sha256"] = _digest(s.pred)
        return out

    def _cv(
        self, table: Table, variant: Variant, seed: int | None, X: pd.DataFrame, y: np.ndarray
    ) -> dict[str, float]:
        assert table.cv is not None
        cv = table.cv
        metrics = [get_metric(m) for m in cv.metrics]
        scores = []
        for rep in range(cv.repeats):
            for a, b in KFold(cv.folds, shuffle=True, random_state=rep).split(X):
                model = variant.build(seed).fit(X.iloc[a], y[a])
                pred = np.asarray(model.predict(X.iloc[b]), dtype=np.float64)
                s = Scored(model, X.iloc[a], y[a], X.iloc[b], y[b], pred, pred, seed, None)
                fold = self._score(s, metrics, cv.extras, None)
                fold.pop("pred_sha256")
                scores.append(fold)
        mean = pd.DataFrame(scores).mean()
        return {f"CV {k}": float(v) for k, v in mean.items()}

    def _markdown(
        self, table: Table, key: str, frame: pd.DataFrame, metrics: list[MetricSpec]
    ) -> str:
        if key not in self.data_info:  # rendering saved scores: the header's facts
            self.split(key)
        info, y_test = self.data_info[key], self.y_test[key]
        head = (
            f"{DATASETS[key].title}: {info['train']:,} train / {info['test']:,} test "
            f"customers, {(y_test == 0).mean():.0%} zeros in test, mean(y_test) = "
            f"{y_test.mean():.2f}; seeds {_seed_text(self.seeds)}"
        )
        frame = frame.copy()
        horizon = frame["horizon"] if "horizon" in frame else pd.Series(np.nan, frame.index)
        frame["row"] = [
            model if pd.isna(h) else f"{model}_{int(h) + 1}"
            for model, h in zip(frame["model"], horizon, strict=True)
        ]
        metric_cols = [_label(m) for m in metrics]
        skip = {"table", "dataset", "model", "seed", "horizon", "row", "pred_sha256"}
        cols = [c for c in frame.columns if c not in skip and frame[c].notna().any()]
        cells: dict[str, dict[str, str]] = {}
        for row_name, group in frame.groupby("row", sort=False):
            cells[row_name] = {
                c: _cell(group[c], c in metric_cols or c.startswith("CV "), table.digits)
                for c in cols
            }
        out = pd.DataFrame(cells).T[cols]
        out.index.name = "model"
        if table.transpose:
            out = out.T
            out.index.name = "metric"
        markdown = out.to_markdown(disable_numparse=True)  # keep the formatted cells
        return f"### {DATASETS[key].title}\n\n{head}\n\n{markdown}\n"


def _cell(values: pd.Series, metric: bool, digits: int) -> str:
    """A metric: its value or mean ± sd over seeds to ``digits`` decimals; anything else
    (extras, fit time): the mean to ``digits`` significant digits."""
    values = pd.to_numeric(values, errors="coerce")
    if values.isna().all():
        return ""
    if not metric:
        return f"{values.mean():.{digits}g}"
    if len(values) == 1:
        return f"{values.iloc[0]:.{digits}f}"
    return mean_sd(values, digits, skipna=False)


def _seed_text(seeds: Sequence[int]) -> str:
    seeds = list(seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}..{seeds[-1]}"
    return ", ".join(str(s) for s in seeds)


def run_study(
    study: Study,
    *,
    seeds: int | None = None,
    datasets: Sequence[str] | None = None,
    tables: Sequence[str] | None = None,
    out: str | Path | None = None,
    command: str = "",
    arguments: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Run ``study`` (its non-optional tables, or ``tables``); print and return the scores.

    Parameters
    ----------
    study : Study
    seeds : int or None
        Number of model seeds (0 .. seeds - 1); None: the study's default.
    datasets, tables : sequence of str or None
        Restrict to these dataset keys / table names (``tables`` may name optional ones;
        ``["all"]`` is every table).
    out : path or None
        Directory for ``scores.csv`` (one row per fit, with a digest of the prediction),
        ``tables.md`` and ``run.json``.

    Returns
    -------
    pandas.DataFrame
        The per-fit scores.
    """
    started = datetime.datetime.now(datetime.timezone.utc)
    n_seeds = study.seeds if seeds is None else seeds
    if n_seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {n_seeds}")
    known = {t.name for t in study.tables}
    if tables is not None and list(tables) == ["all"]:
        tables = sorted(known)
    unknown = set(tables or ()) - known
    if unknown:
        raise ValueError(f"unknown table(s) {sorted(unknown)}; {study.name} has {sorted(known)}")
    bad = set(datasets or ()) - set(DATASETS)
    if bad:
        raise ValueError(f"unknown dataset(s) {sorted(bad)}; known: {sorted(DATASETS)}")
    chosen = [t for t in study.tables if (t.name in tables if tables else not t.optional)]
    runner = _Runner(study, range(n_seeds), datasets)
    text = [f"# {study.title}\n", f"`{command}`, {datetime.date.today()}\n"]
    print("\n".join(text), flush=True)
    with warnings.catch_warnings():
        for category in study.ignore_warnings:
            warnings.simplefilter("ignore", category)
        for table in chosen:
            for block in runner.run_table(table):
                print(block, flush=True)
                text.append(block)
    scores = pd.DataFrame(runner.rows)
    if out is not None:
        _write(Path(out), scores, "\n".join(text), runner, started, command, arguments)
    return scores


def _write(
    out: Path,
    scores: pd.DataFrame,
    markdown: str,
    runner: _Runner,
    started: datetime.datetime,
    command: str,
    arguments: Mapping[str, Any] | None,
) -> None:
    from ltvkit._run_record import write_run_record
    from ltvkit.benchmark._runner import _data_digest

    out.mkdir(parents=True, exist_ok=True)
    scores_path, md_path = out / "scores.csv", out / "tables.md"
    scores.to_csv(scores_path, index=False)
    md_path.write_text(markdown + "\n", encoding="utf-8")
    data = {}
    for key, info in runner.data_info.items():
        X, Y = runner.cache[key]  # type: ignore[misc]
        data[key] = {**info, "sha256": _data_digest(X, Y)}
    write_run_record(
        out / "run.json",
        command=command,
        arguments=dict(arguments or {}),
        outputs=[scores_path, md_path],
        started=started,
        study=runner.study.name,
        seeds=runner.seeds,
        data=data,
    )


def render_study(study: Study, scores: pd.DataFrame, command: str = "") -> str:
    """The Markdown tables of saved per-fit ``scores`` (a ``scores.csv``), without refitting.

    Formatting changes need no rerun: ``run_study.py NAME --render DIR/scores.csv``.
    """
    seeds = sorted({int(s) for s in scores["seed"].dropna()})
    runner = _Runner(study, seeds, None)
    text = [f"# {study.title}\n", f"`{command}`\n"]
    for table in study.tables:
        part = scores[scores["table"] == table.name]
        if part.empty:
            continue
        metrics = [get_metric(m) for m in table.metrics]
        text.append(f"## {table.title}\n")
        for key in table.datasets:
            rows = part[part["dataset"] == key].dropna(axis=1, how="all")
            if not rows.empty:
                text.append(runner._markdown(table, key, rows, metrics))
    return "\n".join(text)
