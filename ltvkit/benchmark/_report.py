"""The benchmark's report: aligned text and Markdown tables, the legend, the files.

:func:`write_benchmark` writes ``results.csv``, ``results.md``, the three pictures (gain
chart, decile chart, Lorenz curves; with matplotlib) and ``run.json``, the run record
that says what produced them.
"""

from __future__ import annotations

import datetime
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import pandas as pd

from ltvkit.benchmark._columns import COSTS, TABLE_METRICS, Column
from ltvkit.benchmark._result import BenchmarkResult

__all__ = ["format_table", "legend", "write_benchmark"]

#: The note every ``--quick`` chart carries in its title.
QUICK_NOTE = "quick: not for choosing a model"


def _columns(table: pd.DataFrame) -> list[Column]:
    return [c for c in (*TABLE_METRICS, *COSTS) if c.key in table.columns]


def _best_rows(table: pd.DataFrame) -> dict[str, set[str]]:
    ok = table[table["status"] == "ok"]
    # The calibration-spend peer learns nothing: it would always "win" time and memory.
    learners = ok.drop(index=[n for n in ok.index if n == "calibration_spend"])
    best: dict[str, set[str]] = {}
    for col in _columns(table):
        rows = learners if col in COSTS else ok
        if rows[col.key].isna().all() or len(rows) < 2:
            continue
        values = rows[col.key].round(col.digits)
        target = values.max() if col.greater_is_better else values.min()
        best[col.key] = set(values.index[values == target])
    return best


def _fmt(value: float, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if abs(value) >= 10 ** (7 - digits):
        return f"{value:.3g}"
    return f"{value:.{digits}f}"


def format_table(table: pd.DataFrame, fmt: str = "text") -> str:
    """Render a benchmark table as aligned text or Markdown.

    The best value of each column (among models whose status is ``ok``; for time and
    memory, not counting the ``calibration_spend`` peer, which fits nothing) is marked:
    with a ``*`` in text, in bold in Markdown. Which way is better comes from the metric
    registry (``ltvkit.metrics.METRICS``); time and memory are lower-is-better.
    :func:`legend` spells it out.

    Parameters
    ----------
    table : DataFrame
        ``run_benchmark(...).table``.
    fmt : {"text", "markdown"}, default="text"

    Returns
    -------
    str

    Examples
    --------
    >>> t = pd.DataFrame({"normalized_gini": [0.7, 0.6], "status": ["ok", "ok"]},
    ...                  index=pd.Index(["a", "b"], name="model"))
    >>> print(format_table(t, "markdown").splitlines()[2])
    | a | **0.700** | ok |
    """
    if fmt not in ("text", "markdown"):
        raise ValueError(f"fmt must be 'text' or 'markdown', got {fmt!r}.")
    best = _best_rows(table)
    cols = _columns(table)
    header = ["model", *(c.label for c in cols), "status"]
    body: list[list[str]] = []
    for name, row in table.iterrows():
        cells = [str(name)]
        for c in cols:
            text = _fmt(row[c.key], c.digits)
            std_key = f"{c.key}_std"
            if text and std_key in table.columns and not pd.isna(row[std_key]):
                text += f" ± {_fmt(row[std_key], c.digits)}"
            if text and name in best.get(c.key, ()):
                text = f"**{text}**" if fmt == "markdown" else f"{text}*"
            cells.append(text)
        cells.append(str(row.get("status", "")))
        body.append(cells)
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |"]
        lines.append("|" + "|".join(["---"] + ["---:"] * len(cols) + ["---"]) + "|")
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        return "\n".join(lines)
    widths = [max(len(r[j]) for r in [header, *body]) for j in range(len(header))]
    out = []
    for r in [header, *body]:
        parts = [r[0].ljust(widths[0])]
        parts += [r[j].rjust(widths[j]) for j in range(1, len(r) - 1)]
        parts.append(r[-1])
        out.append("  ".join(parts).rstrip())
    out.insert(1, "-" * len(out[0]))
    return "\n".join(out)


def legend(table: pd.DataFrame) -> str:
    """The line under a printed table: what ``*`` means and which way each column is better.

    Examples
    --------
    >>> t = pd.DataFrame({"normalized_gini": [0.7], "nmae": [1.0], "fit_seconds": [0.1]})
    >>> legend(t)
    '* best per column. Higher is better: Gini; lower is better: NMAE, fit s.'
    """
    cols = _columns(table)
    higher = ", ".join(c.label for c in cols if c.greater_is_better)
    lower = ", ".join(c.label for c in cols if not c.greater_is_better)
    parts = [f"higher is better: {higher}"] if higher else []
    parts += [f"lower is better: {lower}"] if lower else []
    text = "; ".join(parts)
    return "* best per column." + (f" {text[0].upper()}{text[1:]}." if text else "")


def chart_title(kind: str, result: BenchmarkResult) -> str:
    """A chart's title: what it shows, on which data, how many customers, ``--quick``."""
    attrs = result.table.attrs
    n = len(result.y_true)
    cv = attrs.get("cv")
    who = f"{n:,} customers, {cv}-fold CV" if cv else f"{n:,} held-out customers"
    title = f"{kind}: {result.data_name}, {who}"
    if attrs.get("quick"):
        title += f"\n({QUICK_NOTE})"
    return title


def write_benchmark(
    result: BenchmarkResult,
    out: str | os.PathLike,
    *,
    progress: TextIO | None = None,
    prefix: str = "",
    tables: bool = True,
    run_record: bool = True,
    command: str = "ltvkit.benchmark.run_benchmark",
    arguments: Mapping[str, Any] | None = None,
    inputs: Sequence[str | os.PathLike] = (),
) -> dict[str, Path]:
    """Write ``results.csv``, ``results.md``, the three pictures and ``run.json``.

    Parameters
    ----------
    result : BenchmarkResult
        From :func:`run_benchmark`.
    out : str or path-like
        Directory (created if needed).
    progress : text stream or None
        Where to say that the pictures were skipped (no matplotlib).
    prefix : str, default=""
        Prepended to every file name (e.g. ``"cdnow_"``).
    tables : bool, default=True
        Write the CSV and Markdown tables (False: the pictures only).
    run_record : bool, default=True
        Write ``run.json`` (``ltvkit._run_record``): the command and its arguments, the
        data (rows, customers, features, a SHA-256 of the table), the split, the
        seeds, ``quick``, the library versions and every file written, with its
        SHA-256.
    command : str, default="ltvkit.benchmark.run_benchmark"
        The command recorded (the CLI passes ``"ltvkit benchmark"``).
    arguments : mapping or None, default=None
        The arguments recorded; None: ``result.arguments``.
    inputs : sequence of paths, default=()
        Files read (recorded with their SHA-256), e.g. the CLI's ``--data``.

    Returns
    -------
    dict
        Kind (``"csv"``, ``"markdown"``, ``"gain_chart"``, ``"decile_chart"``,
        ``"lorenz"``, ``"run_record"``) -> path written.

    Examples
    --------
    >>> import tempfile
    >>> from ltvkit.benchmark import run_benchmark
    >>> from ltvkit.datasets import make_ltv
    >>> X, y = make_ltv(n_samples=300, n_features=3, random_state=0)
    >>> result = run_benchmark(X, y, models=["lgbm_tweedie"], quick=True)
    >>> written = write_benchmark(result, tempfile.mkdtemp())
    >>> sorted(written)  # the charts need matplotlib (pip install 'ltvkit[plot]')
    ['csv', 'decile_chart', 'gain_chart', 'lorenz', 'markdown', 'run_record']
    """
    started = result.started or datetime.datetime.now(datetime.timezone.utc)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    if tables:
        csv_path = out_dir / f"{prefix}results.csv"
        result.table.to_csv(csv_path)
        written["csv"] = csv_path
        md_path = out_dir / f"{prefix}results.md"
        md_path.write_text(format_table(result.table, "markdown") + "\n", encoding="utf-8")
        written["markdown"] = md_path
    if result.predictions:
        written.update(_draw(result, out_dir, prefix, progress))
    if run_record:
        path = out_dir / f"{prefix}run.json"
        _write_record(result, path, written, started, command, arguments, inputs)
        written["run_record"] = path
    return written


def _draw(
    result: BenchmarkResult, out_dir: Path, prefix: str, progress: TextIO | None
) -> dict[str, Path]:
    try:
        from matplotlib.figure import Figure

        from ltvkit import plotting
    except ImportError:
        if progress is not None:
            progress.write(
                "ltvkit benchmark: matplotlib is not installed, so no pictures were drawn "
                "(pip install 'ltvkit[plot]'); the tables were written.\n"
            )
        return {}
    charts = (
        ("gain_chart", "Gain chart", plotting.plot_gain_chart),
        ("decile_chart", "Calibration by predicted decile", plotting.plot_decile_chart),
        ("lorenz", "Lorenz curves", plotting.plot_lorenz),
    )
    written = {}
    for kind, what, func in charts:
        fig = Figure(figsize=(7.5, 5.5), layout="constrained")
        func(
            result.y_true,
            result.predictions,
            ax=fig.subplots(),
            title=chart_title(what, result),
        )
        path = out_dir / f"{prefix}{kind}.png"
        fig.savefig(path, dpi=110)
        written[kind] = path
    return written


def _write_record(
    result: BenchmarkResult,
    path: Path,
    written: Mapping[str, Path],
    started: datetime.datetime,
    command: str,
    arguments: Mapping[str, Any] | None,
    inputs: Sequence[str | os.PathLike],
) -> None:
    from ltvkit._run_record import write_run_record

    attrs = dict(result.table.attrs)
    status = result.table["status"] if "status" in result.table else pd.Series(dtype=str)
    write_run_record(
        path,
        command=command,
        arguments=dict(result.arguments if arguments is None else arguments),
        inputs=list(inputs),
        outputs=list(written.values()),
        started=started,
        data={
            "name": result.data_name,
            "rows": attrs.get("n_rows"),
            "features": attrs.get("features"),
            "multi_horizon_target": attrs.get("multi_horizon_target"),
            "sha256": result.data_sha256,
        },
        split={
            "test_size": attrs.get("test_size"),
            "cv": attrs.get("cv"),
            "seed": attrs.get("seed"),
            "scored_customers": attrs.get("n_test"),
        },
        seeds=attrs.get("seeds"),
        quick=attrs.get("quick"),
        models={str(k): str(v) for k, v in status.items()},
    )
