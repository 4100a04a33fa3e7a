"""The ``ltvkit`` command line (console script ``ltvkit``, or ``python -m ltvkit``).

- ``ltvkit benchmark`` compares every model on a customer table: with no argument on the
  embedded CDNOW data, otherwise on a CSV/Parquet customer table (``--data FILE --target
  COLUMN``) or transaction log (``--data FILE --transactions ...``). The work is done by
  :func:`ltvkit.benchmark.run_benchmark`; it writes the tables, the pictures and a run
  record (``run.json``) to ``--out``.
- ``ltvkit fit`` fits one model on such data and writes a model file (``ltvkit.save``).
- ``ltvkit score`` loads a model file and scores the customers of a table or of a
  transaction log as of a date (``ltvkit.score_customers``), one row per customer.

This module only reads the input, checks it (one clear line and exit code 2 for bad
input, never a traceback), prints and writes. ``fit`` and ``score`` write a JSON run
record next to their output (``ltvkit._run_record``).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import datetime
import os
import re
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["DEFAULT_MODEL", "main"]

_PROG = "ltvkit"
_EXIT_BAD_INPUT = 2

#: The model ``ltvkit fit`` uses without ``--model``: the best normalized Gini on both
#: datasets of docs/benchmarks.md (CDNOW 0.739, Online Retail 0.792) among ltvkit's
#: models (the peers calibration_spend and lgbm_tweedie are references, not models to
#: deploy). Change it here only, with the benchmark page.
DEFAULT_MODEL = "odmn"
_DEFAULT_MODEL_WHY = "the best normalized Gini on CDNOW and Online Retail in docs/benchmarks.md"

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# compression suffixes pandas' CSV reader understands
_COMPRESSION = (".gz", ".bz2", ".xz", ".zip", ".zst", ".tar")
_SCORE_SUFFIXES = (".csv", ".parquet", ".pq")
# ``ltvkit score`` streams a Parquet --data (ltvkit.score_dataset) that is a directory or
# a file at least this large, instead of reading it whole
_STREAM_SCORE_BYTES = 256 * 2**20
# a step that runs longer than this shows progress, then every _HEARTBEAT_EVERY seconds
_HEARTBEAT_AFTER = 5.0
_HEARTBEAT_EVERY = 15.0


class InputError(Exception):
    """Bad command-line input: reported as one line on stderr with exit code 2."""


# ------------------------------------------------------------------------------ parser
def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a fraction in (0, 1), got {text}")
    return value


def _int_at_least(low: int) -> object:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def _n_jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1 and value != -1:
        raise argparse.ArgumentTypeError(f"must be -1 or >= 1, got {value}")
    return value


def _add_data_options(parser: argparse.ArgumentParser, command: str) -> None:
    """The data options, the same for every command (``command`` adds its own few)."""
    title = "data (default: the embedded CDNOW customers)" if command == "benchmark" else "data"
    data = parser.add_argument_group(title)
    data.add_argument(
        "--data",
        metavar="FILE",
        help="CSV (plain or compressed: .csv.gz, .zip...) or Parquet file, or a directory "
        "of Parquet files",
    )
    if command != "score":
        data.add_argument(
            "--target",
            metavar="COLUMN",
            help="customer table: the value column to predict (several comma-separated "
            "columns = cumulative horizons, for multi-horizon models; others use the last)",
        )
    data.add_argument(
        "--id",
        metavar="COLUMN",
        help="customer table: the customer id column (read as text: leading zeros are kept)"
        + ("; dropped from the features" if command == "benchmark" else ""),
    )
    data.add_argument(
        "--transactions",
        action="store_true",
        help="FILE is a transaction log; build the customer table with transactions_to_ltv"
        + (" (default when the model was fitted on one)" if command == "score" else ""),
    )
    data.add_argument(
        "--customer", metavar="COLUMN", help="transactions: customer id column (read as text)"
    )
    data.add_argument("--date", metavar="COLUMN", help="transactions: date column")
    data.add_argument("--value", metavar="COLUMN", help="transactions: monetary value column")
    data.add_argument(
        "--date-format",
        metavar="FORMAT",
        help="transactions: strftime format of the date column, e.g. %%d/%%m/%%Y (needed "
        "when day and month order is ambiguous)",
    )
    data.add_argument(
        "--static-columns",
        metavar="COLS",
        help="transactions: comma-separated customer attributes (country, segment...), "
        "each customer's last known value becomes a feature",
    )
    data.add_argument(
        "--item", metavar="COLUMN", help="transactions: product column (distinct_items)"
    )
    data.add_argument(
        "--quantity",
        metavar="COLUMN",
        help="transactions: quantity column (quantity_total, quantity_mean)",
    )
    if command == "score":
        data.add_argument(
            "--as-of",
            metavar="DATE",
            help="the date the customers are scored at (YYYY-MM-DD, required); with "
            "--transactions the features use the transactions before it",
        )
    else:
        data.add_argument(
            "--calibration-end",
            metavar="DATE",
            help="transactions: first day of the holdout (YYYY-MM-DD)",
        )
        data.add_argument(
            "--holdout-end",
            metavar="DATE",
            help="transactions: end of the holdout (exclusive, YYYY-MM-DD); several "
            "comma-separated increasing dates give a multi-horizon target",
        )
    if command != "score":  # at score, the model file's input schema picks the columns
        data.add_argument(
            "--drop",
            metavar="COLS",
            help="comma-separated feature columns to leave out (e.g. an id left in the table)",
        )
    if command == "score":
        parser.set_defaults(target=None, calibration_end=None, holdout_end=None, drop=None)
    else:
        parser.set_defaults(as_of=None)


def build_parser() -> argparse.ArgumentParser:
    """The ``ltvkit`` argument parser (sub-commands ``benchmark``, ``fit``, ``score``)."""
    from ltvkit import __version__

    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="ltvkit: customer lifetime value models, compared on your data, fitted "
        "and used to score your customers.",
    )
    parser.add_argument("--version", action="version", version=f"ltvkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    bench = sub.add_parser(
        "benchmark",
        help="fit every model on a customer table and compare them on held-out customers",
        description=(
            "Fit every LTV model on the training part of a customer table, score it on the "
            "held-out part and print one row per model (best value per column marked with "
            "*). Writes results.csv, results.md, with matplotlib gain_chart.png, "
            "decile_chart.png and lorenz.png, and run.json (what was run, on which data, "
            "with which versions) to --out. Without --data it runs on the CDNOW "
            "customers shipped with ltvkit."
        ),
        epilog=(
            "examples:\n"
            "  ltvkit benchmark --quick\n"
            "  ltvkit benchmark --data customers.csv --target spend_next_year --id customer_id\n"
            "  ltvkit benchmark --data orders.parquet --transactions --customer customer_id \\\n"
            "      --date order_date --value amount --calibration-end 2024-01-01 \\\n"
            "      --holdout-end 2025-01-01 --models two_stage,ziln,lgbm_tweedie --cv 5"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_data_options(bench, "benchmark")
    run = bench.add_argument_group("run")
    run.add_argument(
        "--models",
        metavar="NAMES",
        help="comma-separated model names (default: all; see --list-models)",
    )
    run.add_argument("--list-models", action="store_true", help="list the model names and exit")
    run.add_argument(
        "--test-size",
        type=_fraction,
        default=0.3,
        metavar="FRAC",
        help="held-out share of customers (default: 0.3)",
    )
    run.add_argument(
        "--cv",
        type=_int_at_least(2),
        metavar="K",
        help="K-fold cross-validation instead of one split (mean ± std)",
    )
    run.add_argument("--seed", type=int, default=0, help="split and model seed (default: 0)")
    run.add_argument(
        "--quick",
        action="store_true",
        help="small networks, few epochs and boosting rounds: a first look in seconds",
    )
    run.add_argument(
        "--baseline-column",
        default="monetary_total",
        metavar="COLUMN",
        help="past-spend column of the calibration_spend peer (default: monetary_total)",
    )
    run.add_argument(
        "--n-jobs",
        type=_n_jobs,
        default=1,
        metavar="N",
        help="threads per model: boosters' n_jobs and torch's thread count (default: 1, "
        "comparable timings and no oversubscription on a shared machine; -1 = all cores)",
    )
    run.add_argument(
        "--out",
        default="ltvkit-benchmark",
        metavar="DIR",
        help="output directory (default: ./ltvkit-benchmark)",
    )
    bench.set_defaults(func=_benchmark)

    fit = sub.add_parser(
        "fit",
        help="fit one model on a customer table or transaction log and save it to a file",
        description=(
            "Fit one LTV model and write it to a model file (ltvkit.save: no pickle inside; "
            "it records the input schema and, for a transaction log, how the features were "
            "built, so `ltvkit score` needs no repetition). Writes MODEL_FILE.run.json "
            f"beside it. Default model: {DEFAULT_MODEL}, {_DEFAULT_MODEL_WHY}."
        ),
        epilog=(
            "examples:\n"
            "  ltvkit fit --data orders.parquet --transactions --customer customer_id \\\n"
            "      --date order_date --value amount --calibration-end 2024-01-01 \\\n"
            "      --holdout-end 2024-04-01 --out model.ltvkit\n"
            "  ltvkit fit --data customers.csv --target spend --id customer_id \\\n"
            "      --model two_stage --set n_estimators=300 --set backend=lightgbm "
            "--out model.ltvkit\n"
            "\n--set values are Python literals (max_epochs=20, learning_rate=0.003,\n"
            "early_stopping=false, hidden_units=(64,32)); a bare word is text\n"
            "(backend=lightgbm)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_data_options(fit, "fit")
    model = fit.add_argument_group("model")
    model.add_argument(
        "--model",
        metavar="NAME",
        default=None,
        help=f"model name (default: {DEFAULT_MODEL}, {_DEFAULT_MODEL_WHY}; "
        "`ltvkit benchmark --list-models` lists the names)",
    )
    model.add_argument(
        "--set",
        metavar="PARAM=VALUE",
        action="append",
        default=[],
        help="a hyperparameter of the model (repeatable); VALUE is a Python literal",
    )
    model.add_argument("--seed", type=int, default=0, help="the model's random_state (default: 0)")
    model.add_argument("--out", metavar="MODEL_FILE", help="the model file to write (required)")
    fit.set_defaults(func=_fit)

    score = sub.add_parser(
        "score",
        help="score customers with a model file: one row per customer",
        description=(
            "Load a model file written by `ltvkit fit` (or ltvkit.save) and score the "
            "customers of a customer table, or of a transaction log as of --as-of (the "
            "features are built with the settings recorded at fit time). Writes one row "
            "per customer, the id column first, then predicted_value, nonzero_proba and "
            "quantile_<level> columns (models with predict_quantiles), to a CSV or Parquet "
            "file, and FILE.run.json beside it."
        ),
        epilog=(
            "examples:\n"
            "  ltvkit score --model model.ltvkit --data orders.parquet --as-of 2024-07-01 \\\n"
            "      --out scores.csv\n"
            "  ltvkit score --model model.ltvkit --data customers.parquet --id customer_id \\\n"
            "      --as-of 2024-07-01 --out scores.parquet"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    score.add_argument(
        "--model", metavar="MODEL_FILE", help="a model file written by ltvkit fit (required)"
    )
    _add_data_options(score, "score")
    out = score.add_argument_group("output")
    out.add_argument(
        "--quantiles",
        default="0.1,0.5,0.9",
        metavar="LEVELS",
        help="comma-separated quantile levels (default: 0.1,0.5,0.9; 'none' for none)",
    )
    out.add_argument(
        "--out", metavar="FILE", help="the scores: a .csv or .parquet file (required)"
    )
    cluster = score.add_argument_group("cluster")
    cluster.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help=(
            "score on a Dask cluster (pip install 'ltvkit[distributed]'): the scheduler's "
            "address, e.g. tcp://scheduler:8786. --data: a customer table in Parquet (a "
            "file or a directory), one task per file; --out: a .parquet file. The workers "
            "must see --data and --out at the same paths"
        ),
    )
    score.set_defaults(func=_score)
    return parser


# ------------------------------------------------------------------------------ output
def _say(args: argparse.Namespace, text: str) -> None:
    print(f"{_PROG} {args.command}: {text}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _step(args: argparse.Namespace, what: str) -> Iterator[None]:
    """Run a step silently; if it takes more than a few seconds, show that it runs.

    Nothing is printed for a quick step (so bad input still gets exactly one line);
    after ``_HEARTBEAT_AFTER`` seconds a line says what is running, then one every
    ``_HEARTBEAT_EVERY`` seconds, and one more when it is done.
    """
    stream = sys.stderr
    start = time.perf_counter()
    done = threading.Event()
    shown = threading.Event()

    def beat() -> None:
        wait = _HEARTBEAT_AFTER
        while not done.wait(wait):
            shown.set()
            elapsed = time.perf_counter() - start
            print(f"{_PROG} {args.command}: {what} ... {elapsed:.0f} s", file=stream, flush=True)
            wait = _HEARTBEAT_EVERY

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
    if shown.is_set():
        elapsed = time.perf_counter() - start
        print(f"{_PROG} {args.command}: {what}: done in {elapsed:.1f} s", file=stream, flush=True)


@contextlib.contextmanager
def _surfaced(args: argparse.Namespace, seen: set[str], *ignore: type[Warning]) -> Iterator[None]:
    """Print each warning raised in the block once, as a ``warning:`` line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for category in ignore:
            warnings.simplefilter("ignore", category)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        yield
    for w in caught:
        text = _first_line(w.message).removeprefix("ltvkit: ")
        if text not in seen:
            seen.add(text)
            _say(args, f"warning: {text}")


# ------------------------------------------------------------------------------ input
def _first_line(exc: BaseException | Warning | str) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _split_list(text: str | None) -> list[str]:
    return [c.strip() for c in (text or "").split(",") if c.strip()]


def _table_kind(path: Path) -> str:
    """ "parquet" or "csv" (with its separator in the name), from the file name."""
    suffixes = [s.lower() for s in path.suffixes]
    if path.is_dir():
        return "parquet-dir"
    while suffixes and suffixes[-1] in _COMPRESSION:
        suffixes.pop()
        if not suffixes:  # data.zip / data.gz: a compressed CSV
            return "csv"
    if suffixes and suffixes[-1] in (".parquet", ".pq"):
        return "parquet"
    if suffixes and suffixes[-1] in (".csv", ".tsv", ".txt"):
        return "tsv" if suffixes[-1] == ".tsv" else "csv"
    return "unknown"


def _read_table(path_text: str, text_columns: Sequence[str] = ()) -> pd.DataFrame:
    """Read ``--data``: CSV (compressed or not), a Parquet file or a Parquet directory.

    ``text_columns`` (ids) are read from CSV as text, so ``00418683`` keeps its zeros.
    """
    path = Path(path_text)
    if not path.exists():
        raise InputError(f"file not found: {path_text}")
    kind = _table_kind(path)
    if kind == "parquet-dir" and not any(path.rglob("*.parquet")) and not any(path.rglob("*.pq")):
        raise InputError(f"{path_text} is a directory without .parquet files")
    if kind == "unknown":
        raise InputError(
            f"{path_text}: unsupported file type {path.suffix or '(none)'!r}; use a .csv, "
            ".tsv, .csv.gz, .zip, .parquet or .pq file, or a directory of Parquet files"
        )
    try:
        if kind in ("parquet", "parquet-dir"):
            try:
                return pd.read_parquet(path)
            except ImportError:
                raise InputError(
                    f"reading {path_text} needs pyarrow: pip install 'ltvkit[parquet]'"
                ) from None
        dtype = {c: str for c in text_columns if c}
        return pd.read_csv(path, sep="\t" if kind == "tsv" else ",", dtype=dtype or None)
    except InputError:
        raise
    except Exception as exc:  # any reader failure is bad input
        raise InputError(f"could not read {path_text}: {_first_line(exc)}") from None


def _columns_hint(df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns]
    shown = ", ".join(cols[:12]) + (f", ... ({len(cols)} columns)" if len(cols) > 12 else "")
    return f"the table has: {shown}"


def _check_target(df: pd.DataFrame, columns: list[str]) -> pd.Series | pd.DataFrame:
    for col in columns:
        if col not in df.columns:
            raise InputError(f"target column {col!r} not found; {_columns_hint(df)}")
        series = df[col]
        if not pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(
            series.dtype
        ):
            example = series.dropna().astype(str).head(1).tolist()
            shown = f" (e.g. {example[0]!r})" if example else ""
            raise InputError(f"target column {col!r} is not numeric: dtype {series.dtype}{shown}")
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        n_nan = int(np.isnan(values).sum())
        if n_nan:
            raise InputError(
                f"target column {col!r} has {n_nan} missing (NaN) value(s) out of "
                f"{len(values)} rows; fill or drop those rows"
            )
        n_inf = int(np.isinf(values).sum())
        if n_inf:
            raise InputError(f"target column {col!r} has {n_inf} infinite value(s)")
        n_neg = int((values < 0).sum())
        if n_neg:
            raise InputError(
                f"target column {col!r} has {n_neg} negative value(s) out of {len(values)} "
                f"rows (min {values.min():g}); customer value must be >= 0 (net out refunds)"
            )
    y = df[columns[0]] if len(columns) == 1 else df[columns]
    if not (np.asarray(y, dtype=np.float64) > 0).any():
        raise InputError(
            f"target {', '.join(columns)} has no positive value; an LTV model needs at least "
            "one customer who spends"
        )
    return y.astype(np.float64)


def _parse_date(text: str, option: str) -> pd.Timestamp:
    """An ISO date (YYYY-MM-DD) given on the command line; anything else is refused.

    ``01/09/2011`` is 1 September in most of the world and 9 January in the US: the
    command line does not guess.
    """
    text = text.strip()
    if _ISO_DATE.match(text):
        try:
            return pd.Timestamp(datetime.date.fromisoformat(text))
        except ValueError:
            pass
        raise InputError(f"{option} {text!r} is not a date (expected YYYY-MM-DD, e.g. 2011-09-01)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = pd.Timestamp(text)
    except (ValueError, TypeError):
        parsed = pd.NaT
    if parsed is pd.NaT:
        raise InputError(
            f"{option} {text!r} is not a date (expected an ISO date YYYY-MM-DD, e.g. 2011-09-01)"
        )
    raise InputError(
        f"{option} {text!r} is not an ISO date (YYYY-MM-DD); write e.g. 2011-09-01 "
        "(day/month order in other formats is ambiguous)"
    )


def _label(ts: pd.Timestamp) -> str:
    return ts.date().isoformat() if ts == ts.normalize() else str(ts)


@dataclass
class _Settings:
    """How a transaction log becomes features: recorded in the model file at fit."""

    customer: str | None = None
    date: str | None = None
    value: str | None = None
    date_format: str | None = None
    static_columns: list[str] = field(default_factory=list)
    item: str | None = None
    quantity: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace, recorded: dict | None = None) -> _Settings:
        """The command's options, falling back to what the model file recorded."""
        rec = dict(recorded or {})
        static = _split_list(args.static_columns) if args.static_columns else None
        return cls(
            customer=args.customer or rec.get("customer"),
            date=args.date or rec.get("date"),
            value=args.value or rec.get("value"),
            date_format=args.date_format or rec.get("date_format"),
            static_columns=static if static is not None else list(rec.get("static_columns", [])),
            item=args.item or rec.get("item"),
            quantity=args.quantity or rec.get("quantity"),
        )

    def columns(self) -> list[tuple[str, str]]:
        """(option, column) of every column the log must have."""
        named = [("--customer", self.customer), ("--date", self.date), ("--value", self.value)]
        named += [("--item", self.item), ("--quantity", self.quantity)]
        named += [("--static-columns", c) for c in self.static_columns]
        return [(opt, col) for opt, col in named if col]


@dataclass
class _Input:
    """What was read: the features, the target (fit/benchmark) and how they were built."""

    X: pd.DataFrame
    y: Any
    source: str
    rows: int
    id_column: str | None
    windows: dict[str, str] = field(default_factory=dict)
    settings: _Settings | None = None
    horizon_names: list[str] | None = None


def _read_transactions(
    args: argparse.Namespace, settings: _Settings
) -> tuple[pd.DataFrame, pd.Series]:
    """The log with its date column parsed once, and the parsed dates."""
    from ltvkit.datasets._transactions import _parse_dates

    tx = _read_table(args.data, text_columns=[settings.customer or ""])
    for opt, col in settings.columns():
        if col not in tx.columns:
            raise InputError(f"{opt} column {col!r} not found; {_columns_hint(tx)}")
    if tx.shape[0] == 0:
        raise InputError(f"{args.data} has no rows")
    try:
        dates = _parse_dates(tx[settings.date], settings.date, settings.date_format)
    except (ValueError, TypeError) as exc:
        raise InputError(_first_line(exc)) from None
    tx = tx.assign(**{settings.date: dates})
    return tx, dates


def _drop_columns(
    args: argparse.Namespace, X: pd.DataFrame, ignore: Sequence[str] = ()
) -> pd.DataFrame:
    drop = [c for c in _split_list(args.drop) if c not in ignore]
    missing = [c for c in drop if c not in X.columns]
    if missing:
        raise InputError(
            f"--drop: no column {missing[0]!r} among the features; {_columns_hint(X)}"
        )
    return X.drop(columns=drop)


def _load_customer_table(args: argparse.Namespace) -> _Input:
    if args.target is None:
        raise InputError("--data needs --target COLUMN (or --transactions for a transaction log)")
    df = _read_table(args.data, text_columns=[args.id or ""])
    if df.shape[0] == 0:
        raise InputError(f"{args.data} has no rows")
    targets = _split_list(args.target)
    if not targets:
        raise InputError("--target is empty")
    y = _check_target(df, targets)
    drop = list(targets)
    if args.id is not None:
        if args.id not in df.columns:
            raise InputError(f"id column {args.id!r} not found; {_columns_hint(df)}")
        drop.append(args.id)
    X = _drop_columns(args, df.drop(columns=drop), ignore=drop)
    if X.shape[1] == 0:
        raise InputError(f"{args.data} has no feature column besides the target and id")
    if args.id is not None:
        X.index = pd.Index(df[args.id].to_numpy(), name=args.id)
        y.index = X.index
    names = targets if len(targets) > 1 else None
    return _Input(X, y, str(args.data), len(df), args.id, horizon_names=names)


def _load_transactions(args: argparse.Namespace, seen: set[str]) -> _Input:
    from ltvkit.datasets import transactions_to_ltv

    if args.target is not None:
        raise InputError(
            "--target is not used with --transactions (the target is the "
            "holdout spend built from the log)"
        )
    needed = {
        "--customer": args.customer,
        "--date": args.date,
        "--value": args.value,
        "--calibration-end": args.calibration_end,
        "--holdout-end": args.holdout_end,
    }
    missing = [opt for opt, value in needed.items() if value is None]
    if missing:
        raise InputError(f"--transactions needs {', '.join(missing)}")
    cal_end = _parse_date(args.calibration_end, "--calibration-end")
    ends = [_parse_date(t, "--holdout-end") for t in _split_list(args.holdout_end)]
    if not ends:
        raise InputError("--holdout-end is empty")
    settings = _Settings.from_args(args)
    with _step(args, f"reading {args.data}"):
        tx, dates = _read_transactions(args, settings)
    with _step(args, "building the customer features"), _surfaced(args, seen):
        try:
            X, y = transactions_to_ltv(
                tx,
                customer_col=settings.customer,
                date_col=settings.date,
                value_col=settings.value,
                calibration_end=cal_end,
                holdout_end=ends if len(ends) > 1 else ends[0],
                static_cols=settings.static_columns or None,
                item_col=settings.item,
                quantity_col=settings.quantity,
            )
        except (ValueError, TypeError) as exc:
            raise InputError(_first_line(exc)) from None
    if not (np.asarray(y) > 0).any():
        raise InputError(
            "no customer spends in the holdout window; an LTV model needs at least one "
            "customer who spends (check --calibration-end / --holdout-end)"
        )
    X = _drop_columns(args, X)
    first, last = dates.min(), dates.max()
    windows = {
        "transactions_first": _label(first),
        "transactions_last": _label(last),
        "calibration_start": _label(first),
        "calibration_end": _label(cal_end),
        "holdout_end": ", ".join(_label(e) for e in ends),
    }
    days = [int((e - cal_end) / pd.Timedelta(days=1)) for e in ends]
    return _Input(
        X,
        y,
        str(args.data),
        len(tx),
        settings.customer,
        windows=windows,
        settings=settings,
        horizon_names=[f"{d}d" for d in days] if len(days) > 1 else None,
    )


def _print_windows(args: argparse.Namespace, windows: dict[str, str]) -> None:
    """One line with the resolved date windows (half-open: end dates excluded)."""
    if "transactions_first" not in windows:
        return
    if "as_of" in windows:
        what = f"features from {windows['calibration_start']} to as-of {windows['as_of']}"
    else:
        what = (
            f"calibration {windows['calibration_start']} to {windows['calibration_end']}, "
            f"holdout {windows['calibration_end']} to {windows['holdout_end']}"
        )
    _say(
        args,
        f"windows: {what} (end dates excluded); the transactions run from "
        f"{windows['transactions_first']} to {windows['transactions_last']}",
    )


def _check_features(args: argparse.Namespace, X: pd.DataFrame, seen: set[str]) -> None:
    """The feature checks every model makes, once, before any model runs."""
    from ltvkit.base import DataQualityWarning, TabularSchema

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataQualityWarning)
        try:
            TabularSchema().fit(X)
        except (ValueError, TypeError) as exc:
            raise InputError(_first_line(exc).removeprefix("ltvkit: ")) from None
    for w in caught:
        text = _first_line(w.message).removeprefix("ltvkit: ")
        if text not in seen:
            seen.add(text)
            _say(args, f"warning: {text}")


def _load(
    args: argparse.Namespace, seen: set[str] | None = None
) -> tuple[pd.DataFrame, object, str]:
    """The benchmark's input: (X, y, description)."""
    data = _load_input(args, set() if seen is None else seen)
    return data.X, data.y, data.source


def _load_input(args: argparse.Namespace, seen: set[str]) -> _Input:
    if args.data is None:
        used = [
            opt
            for opt, value in (
                ("--target", args.target),
                ("--id", args.id),
                ("--transactions", args.transactions or None),
                ("--customer", args.customer),
                ("--date", args.date),
                ("--value", args.value),
                ("--calibration-end", args.calibration_end),
                ("--holdout-end", args.holdout_end),
            )
            if value is not None
        ]
        if used:
            raise InputError(f"{used[0]} needs --data FILE")
        if args.command != "benchmark":
            raise InputError("--data FILE is required")
        from ltvkit.datasets import load_cdnow

        # Cumulative spend after 13, 26 and 39 holdout weeks: multi-horizon models (ODMN)
        # learn all three, the others the 39-week spend (= load_cdnow()'s y), and every
        # model is scored on the 39-week spend.
        X, y = load_cdnow(horizons_weeks=(13, 26, 39))
        X = _drop_columns(args, X)
        source = "CDNOW (embedded; 39-week calibration, spend in the next 39 weeks)"
        return _Input(X, y, source, len(X), None)
    if args.transactions:
        data = _load_transactions(args, seen)
    else:
        data = _load_customer_table(args)
    _check_features(args, data.X, seen)
    _print_windows(args, data.windows)
    return data


# ------------------------------------------------------------------------------ benchmark
def _list_models() -> int:
    from ltvkit.benchmark import available_models

    for name, kind in available_models().items():
        what = "peer" if kind == "peer" else kind.__name__
        print(f"{name:<20} {what}")
    return 0


def _benchmark(args: argparse.Namespace) -> int:
    if args.list_models:
        return _list_models()
    t0 = time.perf_counter()
    X, y, source = _load(args)
    from ltvkit.base import DataQualityWarning
    from ltvkit.benchmark import format_table, legend, run_benchmark, write_benchmark
    from ltvkit.benchmark._runner import _resolve_models

    try:  # unknown names and a missing baseline column, before any output
        _resolve_models(args.models, args.baseline_column, X.columns)
    except ValueError as exc:
        raise InputError(_first_line(exc)) from None

    y_all = np.asarray(y, dtype=np.float64).reshape(len(X), -1)
    n_pos = float((y_all[:, -1] > 0).mean())
    horizons = f"; {y_all.shape[1]} horizons, scored on the last" if y_all.shape[1] > 1 else ""
    threads = "1 thread" if args.n_jobs == 1 else f"n_jobs {args.n_jobs}"
    if args.cv:
        split = f"{args.cv}-fold CV"
    else:
        split = f"{1 - args.test_size:.0%}/{args.test_size:.0%} split"
    print(
        f"{_PROG} benchmark: {source}: {len(X):,} customers, {X.shape[1]} features, "
        f"{n_pos:.1%} with positive value{horizons}; {split}, seed {args.seed}, {threads}"
        + (", quick: not for choosing a model" if args.quick else ""),
        file=sys.stderr,
    )
    try:
        with warnings.catch_warnings():
            # data-quality warnings were printed once, by _load
            warnings.simplefilter("ignore", DataQualityWarning)
            result = run_benchmark(
                X,
                y,
                models=args.models,
                test_size=args.test_size,
                cv=args.cv,
                seed=args.seed,
                quick=args.quick,
                baseline_column=args.baseline_column,
                n_jobs=args.n_jobs,
                progress=sys.stderr,
                data_name="CDNOW" if args.data is None else Path(args.data).name,
            )
    except ValueError as exc:
        raise InputError(_first_line(exc).removeprefix("ltvkit: ")) from None
    print(format_table(result.table, "text"))
    print(legend(result.table))
    try:
        written = write_benchmark(
            result,
            args.out,
            progress=sys.stderr,
            command="ltvkit benchmark",
            arguments=_record_arguments(args),
            inputs=[args.data] if args.data is not None else [],
        )
    except OSError as exc:
        raise InputError(f"cannot write to --out {args.out}: {_first_line(exc)}") from None
    names = ", ".join(p.name for p in written.values())
    print(
        f"{_PROG} benchmark: wrote {names} to {args.out} "
        f"({time.perf_counter() - t0:.1f} s in all)",
        file=sys.stderr,
    )
    return 0


# ------------------------------------------------------------------------------ fit
def _fit_models() -> dict[str, type]:
    """Model name -> class, for the models ``fit`` can save (the registered ones)."""
    from ltvkit.benchmark import available_models

    return {name: cls for name, cls in available_models().items() if cls != "peer"}


def _resolve_model(name: str) -> tuple[str, type]:
    models = _fit_models()
    key = re.sub(r"[\s_\-]", "", name).lower().removesuffix("regressor")
    for short, cls in models.items():
        if key in (short.replace("_", ""), cls.__name__.lower().removesuffix("regressor")):
            return short, cls
    raise InputError(f"unknown model {name!r}; choose one of: {', '.join(models)}")


_WORDS = {"true": True, "false": False, "none": None, "null": None}
# a value that was meant as a literal (a number, tuple, list, dict, quoted text)
_LITERAL_START = re.compile(r"^\s*[-+.\d(\[{'\"]")


def _literal(text: str) -> object:
    """A ``--set`` value: a Python literal; true/false/none in any case; else the text."""
    stripped = text.strip()
    if stripped.lower() in _WORDS:
        return _WORDS[stripped.lower()]
    try:
        return ast.literal_eval(stripped)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        if _LITERAL_START.match(stripped) or not stripped:
            raise
        return stripped  # a bare word: backend=lightgbm


def _parse_set(items: Sequence[str], name: str, cls: type) -> dict[str, object]:
    params: dict[str, object] = {}
    known = cls._get_param_names()
    for item in items:
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise InputError(f"--set {item!r}: expected PARAM=VALUE, e.g. --set max_epochs=20")
        if key not in known:
            raise InputError(
                f"--set {key}: {name} has no parameter {key!r}; its parameters are: "
                + ", ".join(known)
            )
        try:
            params[key] = _literal(text)
        except Exception:
            raise InputError(
                f"--set {item!r}: {text.strip()!r} is not a Python literal (numbers, "
                "True/False, None, 'text', (64, 32), [..], {..})"
            ) from None
    return params


def _check_out(path_text: str | None, option: str, suffixes: Sequence[str] = ()) -> Path:
    if not path_text:
        raise InputError(f"{option} FILE is required")
    path = Path(path_text)
    if suffixes and path.suffix.lower() not in suffixes:
        raise InputError(
            f"{option} {path_text}: unsupported output type {path.suffix or '(none)'!r}; "
            f"use {' or '.join(suffixes)}"
        )
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"cannot write {option} {path_text}: directory {parent} does not exist")
    if path.is_dir():
        raise InputError(f"cannot write {option} {path_text}: it is a directory")
    return path


def _record_arguments(args: argparse.Namespace) -> dict[str, object]:
    return {k: v for k, v in vars(args).items() if k != "func"}


def _fit(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    started = datetime.datetime.now(datetime.timezone.utc)
    name, cls = _resolve_model(args.model or DEFAULT_MODEL)
    params = _parse_set(args.set, name, cls)
    est = cls(**params)
    if "random_state" in est.get_params(deep=False) and "random_state" not in params:
        est.set_params(random_state=args.seed)
    try:  # a bad --set value, before any data is read
        est._validate_params()
    except ValueError as exc:
        raise InputError(_first_line(exc).removeprefix("ltvkit: ")) from None
    out = _check_out(args.out, "--out")
    seen: set[str] = set()
    data = _load_input(args, seen)
    X, y = data.X, data.y
    y_arr = np.asarray(y, dtype=np.float64)
    if y_arr.ndim == 2 and y_arr.shape[1] > 1 and not getattr(est, "_multi_horizon", False):
        _say(args, f"{name} predicts one horizon: fitted on the last, {data.horizon_names[-1]}")
        y = y.iloc[:, -1] if isinstance(y, pd.DataFrame) else y_arr[:, -1]
        data.horizon_names = None
    elif y_arr.ndim == 1 or y_arr.shape[1] == 1:
        data.horizon_names = None
    from ltvkit import save
    from ltvkit.base import DataQualityWarning

    what = f"fitting {name} on {len(X):,} customers x {X.shape[1]} features"
    fit_start = time.perf_counter()
    with _step(args, what), _surfaced(args, seen, DataQualityWarning):
        try:
            est.fit(X, y)
        except ValueError as exc:
            raise InputError(_first_line(exc).removeprefix("ltvkit: ")) from None
    fit_seconds = time.perf_counter() - fit_start
    settings = data.settings
    fitted = {
        "model": name,
        "params": {k: repr(v) for k, v in params.items()},
        "seed": args.seed,
        "input": "transactions" if settings is not None else "table",
        "id_column": data.id_column,
        "drop": _split_list(args.drop),
        "windows": data.windows,
        "horizon_names": data.horizon_names,
        "customers": len(X),
        "rows": data.rows,
        "data": str(args.data),
    }
    if settings is not None:
        fitted["transactions"] = {
            "customer": settings.customer,
            "date": settings.date,
            "value": settings.value,
            "date_format": settings.date_format,
            "static_columns": settings.static_columns,
            "item": settings.item,
            "quantity": settings.quantity,
        }
    else:
        fitted["target"] = _split_list(args.target)
    with _surfaced(args, seen):
        try:
            save(est, out, metadata={"ltvkit_fit": fitted})
        except OSError as exc:
            raise InputError(f"cannot write --out {args.out}: {_first_line(exc)}") from None
    from ltvkit import distributed
    from ltvkit._run_record import run_record_path, write_run_record

    if not distributed.is_main_process():
        return 0  # a data-parallel fit under torchrun: rank 0 writes the files
    record = write_run_record(
        run_record_path(out),
        command="ltvkit fit",
        arguments=_record_arguments(args),
        inputs=[args.data],
        outputs=[out],
        started=started,
        model=name,
        params=fitted["params"],
        rows=data.rows,
        customers=len(X),
        features=[str(c) for c in X.columns],
        windows=data.windows,
        fit_seconds=round(fit_seconds, 3),
        warnings=sorted(seen),
    )
    size = out.stat().st_size / 1e6
    _say(
        args,
        f"wrote {out} ({name}, {size:.2f} MB) and {record.name} "
        f"({time.perf_counter() - t0:.1f} s in all)",
    )
    return 0


# ------------------------------------------------------------------------------ score
def _parse_quantiles(text: str) -> list[float]:
    if text.strip().lower() in ("", "none"):
        return []
    levels = []
    for part in _split_list(text):
        try:
            level = float(part)
        except ValueError:
            raise InputError(f"--quantiles: {part!r} is not a number") from None
        if not 0.0 <= level <= 1.0:
            raise InputError(f"--quantiles: {part} is not a level in [0, 1]")
        levels.append(level)
    return levels


def _load_model(path_text: str) -> tuple[Any, dict]:
    from ltvkit import load

    path = Path(path_text)
    if not path.exists():
        raise InputError(f"model file not found: {path_text}")
    try:
        return load(path, return_manifest=True)
    except (ValueError, OSError) as exc:
        raise InputError(_first_line(exc)) from None


def _score_transactions(
    args: argparse.Namespace, fitted: dict, as_of: pd.Timestamp, seen: set[str]
) -> _Input:
    from ltvkit.datasets import transactions_to_features

    settings = _Settings.from_args(args, fitted.get("transactions"))
    missing = [
        opt
        for opt, value in (
            ("--customer", settings.customer),
            ("--date", settings.date),
            ("--value", settings.value),
        )
        if value is None
    ]
    if missing:
        raise InputError(
            f"--transactions needs {', '.join(missing)} (this model file does not record "
            "how its features were built)"
        )
    with _step(args, f"reading {args.data}"):
        tx, dates = _read_transactions(args, settings)
    with _step(args, "building the customer features"), _surfaced(args, seen):
        try:
            X = transactions_to_features(
                tx,
                customer_col=settings.customer,
                date_col=settings.date,
                value_col=settings.value,
                as_of=as_of,
                static_cols=settings.static_columns or None,
                item_col=settings.item,
                quantity_col=settings.quantity,
            )
        except (ValueError, TypeError) as exc:
            raise InputError(_first_line(exc)) from None
    first = dates.min()
    windows = {
        "transactions_first": _label(first),
        "transactions_last": _label(dates.max()),
        "calibration_start": _label(first),
        "as_of": _label(as_of),
    }
    return _Input(X, None, str(args.data), len(tx), settings.customer, windows, settings)


def _score_table(args: argparse.Namespace, fitted: dict) -> _Input:
    id_column = args.id or fitted.get("id_column")
    df = _read_table(args.data, text_columns=[id_column or ""])
    if df.shape[0] == 0:
        raise InputError(f"{args.data} has no rows")
    if id_column is not None and id_column not in df.columns:
        if args.id is not None:
            raise InputError(f"id column {id_column!r} not found; {_columns_hint(df)}")
        id_column = None  # the training table's id column is not in this one
    X = df.drop(columns=[id_column]) if id_column else df
    if id_column:
        X.index = pd.Index(df[id_column].to_numpy(), name=id_column)
    return _Input(X, None, str(args.data), len(df), id_column)


def _write_scores(frame: pd.DataFrame, out: Path) -> None:
    """Write the scores whole or not at all (a temporary file, then a rename)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=out.suffix, dir=out.parent)
    os.close(fd)
    try:
        if out.suffix.lower() == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            try:
                frame.to_parquet(tmp, index=False)
            except ImportError:
                raise InputError(
                    f"writing {out} needs pyarrow: pip install 'ltvkit[parquet]'"
                ) from None
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _score(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    started = datetime.datetime.now(datetime.timezone.utc)
    if args.model is None:
        raise InputError("--model MODEL_FILE is required (a file written by ltvkit fit)")
    if args.data is None:
        raise InputError("--data FILE is required")
    if args.as_of is None:
        raise InputError(
            "--as-of DATE is required: the date the customers are scored at (YYYY-MM-DD)"
        )
    as_of = _parse_date(args.as_of, "--as-of")
    out = _check_out(args.out, "--out", _SCORE_SUFFIXES)
    quantiles = _parse_quantiles(args.quantiles)
    model, manifest = _load_model(args.model)
    fitted = (manifest.get("metadata") or {}).get("ltvkit_fit") or {}
    columns = list(manifest["input_schema"]["columns"])
    seen: set[str] = set()
    if args.scheduler is not None:
        return _score_on_cluster(args, model, fitted, columns, quantiles, out, started, t0)
    if not (args.transactions or fitted.get("input") == "transactions") and _streams(args.data):
        return _score_streamed(args, model, fitted, columns, quantiles, out, started, t0)
    if args.transactions or fitted.get("input") == "transactions":
        data = _score_transactions(args, fitted, as_of, seen)
    else:
        data = _score_table(args, fitted)
    X = data.X
    missing = [c for c in columns if c not in X.columns]
    if missing:
        shown = ", ".join(repr(c) for c in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise InputError(
            f"the scoring data has no column {shown}, which the model was fitted with "
            f"({len(missing)} of its {len(columns)} columns missing)"
        )
    X = X[columns]
    if not data.windows:
        data.windows = {"as_of": _label(as_of)}
    else:
        _print_windows(args, data.windows)
    from ltvkit import score_customers

    if quantiles and not hasattr(_final(model), "predict_quantiles"):
        _say(args, f"note: {type(_final(model)).__name__} has no quantiles; no quantile columns")
    with _step(args, f"scoring {len(X):,} customers"), _surfaced(args, seen):
        try:
            scores = score_customers(
                model, X, quantiles, horizon_names=fitted.get("horizon_names")
            )
        except ValueError as exc:
            raise InputError(_first_line(exc).removeprefix("ltvkit: ")) from None
    id_name = data.id_column or "row"
    frame = scores.reset_index(names=id_name) if id_name not in scores.columns else scores
    try:
        _write_scores(frame, out)
    except OSError as exc:
        raise InputError(f"cannot write --out {args.out}: {_first_line(exc)}") from None
    from ltvkit._run_record import run_record_path, write_run_record

    record = write_run_record(
        run_record_path(out),
        command="ltvkit score",
        arguments=_record_arguments(args),
        inputs=[args.data, args.model],
        outputs=[out],
        started=started,
        model=type(_final(model)).__name__,
        rows=data.rows,
        customers=len(frame),
        windows=data.windows,
        columns=[str(c) for c in frame.columns],
        warnings=sorted(seen),
    )
    _say(
        args,
        f"wrote {len(frame):,} customers to {out} and {record.name} "
        f"({time.perf_counter() - t0:.1f} s in all)",
    )
    return 0


def _streams(data: str) -> bool:
    """Whether ``ltvkit score`` reads ``--data`` in record batches (score_dataset)."""
    path = Path(data)
    if path.is_dir():
        return True
    return (
        path.suffix.lower() in (".parquet", ".pq")
        and path.is_file()
        and path.stat().st_size >= _STREAM_SCORE_BYTES
    )


def _score_streamed(
    args: argparse.Namespace,
    model: object,
    fitted: dict,
    columns: list[str],
    quantiles: list[float] | None,
    out: Path,
    started: datetime.datetime,
    t0: float,
) -> int:
    """``ltvkit score`` on a Parquet directory or a large Parquet file, chunk by chunk."""
    from ltvkit import score_dataset
    from ltvkit.io import ParquetDataset

    try:
        probe = ParquetDataset(args.data)
        id_column = args.id or fitted.get("id_column")
        if id_column is not None and id_column not in probe.schema.names:
            if args.id is not None:
                raise InputError(f"id column {id_column!r} not found in {args.data}")
            id_column = None
        missing = [c for c in columns if c not in probe.schema.names]
        if missing:
            shown = ", ".join(repr(c) for c in missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise InputError(
                f"the scoring data has no column {shown}, which the model was fitted with "
                f"({len(missing)} of its {len(columns)} columns missing)"
            )
        data = ParquetDataset(args.data, id_column=id_column, features=columns)
    except ValueError as exc:
        raise InputError(_first_line(exc).removeprefix("ltvkit: ")) from None
    if quantiles and not hasattr(_final(model), "predict_quantiles"):
        _say(args, f"note: {type(_final(model)).__name__} has no quantiles; no quantile columns")
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=out.suffix, dir=out.parent)
    os.close(fd)
    try:
        with _step(args, f"scoring {data.num_rows:,} customers in batches"):
            try:
                score_dataset(
                    model, data, tmp, quantiles, horizon_names=fitted.get("horizon_names")
                )
            except ValueError as exc:
                raise InputError(_first_line(exc).removeprefix("ltvkit: ")) from None
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    from ltvkit._run_record import run_record_path, write_run_record

    record = write_run_record(
        run_record_path(out),
        command="ltvkit score",
        arguments=_record_arguments(args),
        inputs=[args.data, args.model],
        outputs=[out],
        started=started,
        model=type(_final(model)).__name__,
        rows=data.num_rows,
        customers=data.num_rows,
        windows={"as_of": args.as_of},
        columns=_written_columns(out),
        warnings=[],
    )
    _say(
        args,
        f"wrote {data.num_rows:,} customers to {out} and {record.name} "
        f"({time.perf_counter() - t0:.1f} s in all)",
    )
    return 0


def _written_columns(out: Path) -> list[str]:
    """The columns of a scores file that ``score_dataset`` wrote (its header only)."""
    if out.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        return list(pq.read_schema(out).names)
    return list(pd.read_csv(out, nrows=0).columns)


def _score_on_cluster(
    args: argparse.Namespace,
    model: object,
    fitted: dict,
    columns: list[str],
    quantiles: list[float],
    out: Path,
    started: datetime.datetime,
    t0: float,
) -> int:
    """``ltvkit score --scheduler ADDRESS``: one Dask task per Parquet file of --data."""
    if args.transactions or fitted.get("input") == "transactions":
        raise InputError(
            "--scheduler scores a customer table in Parquet; this model was fitted on "
            "transactions: build the customer table first (ltvkit.datasets."
            "transactions_to_features) or score without --scheduler"
        )
    if out.suffix.lower() not in (".parquet", ".pq"):
        raise InputError(f"--scheduler writes Parquet: --out must end in .parquet, got {out}")
    try:
        from distributed import Client
    except ImportError:
        raise InputError(
            "--scheduler needs dask.distributed: pip install 'ltvkit[distributed]'"
        ) from None
    from ltvkit.distributed import score_dataset_dask
    from ltvkit.io import ParquetDataset

    try:
        probe = ParquetDataset(args.data)
        id_column = args.id or fitted.get("id_column")
        if id_column is not None and id_column not in probe.schema.names:
            if args.id is not None:
                raise InputError(f"id column {id_column!r} not found in {args.data}")
            id_column = None
        missing = [c for c in columns if c not in probe.schema.names]
        if missing:
            shown = ", ".join(repr(c) for c in missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise InputError(
                f"the scoring data has no column {shown}, which the model was fitted with "
                f"({len(missing)} of its {len(columns)} columns missing)"
            )
        data = ParquetDataset(args.data, id_column=id_column, features=columns)
    except ValueError as exc:
        raise InputError(_first_line(exc).removeprefix("ltvkit: ")) from None
    try:
        # timeout: dask's distributed.comm.timeouts.connect (30 s unless configured)
        client = Client(args.scheduler)
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(
            f"cannot reach the Dask scheduler at {args.scheduler}: {_first_line(exc)}"
        ) from None
    what = f"scoring {data.num_rows:,} customers in {len(data.files)} file(s) on {args.scheduler}"
    try:
        with client, _step(args, what):
            score_dataset_dask(
                model,
                data,
                out,
                client=client,
                quantiles=quantiles,
                horizon_names=fitted.get("horizon_names"),
            )
    except (RuntimeError, ValueError) as exc:
        raise InputError(_first_line(exc).removeprefix("ltvkit: ")) from None
    from ltvkit._run_record import run_record_path, write_run_record

    record = write_run_record(
        run_record_path(out),
        command="ltvkit score",
        arguments=_record_arguments(args),
        inputs=[args.data, args.model],
        outputs=[out],
        started=started,
        model=type(_final(model)).__name__,
        rows=data.num_rows,
        customers=data.num_rows,
        windows={"as_of": args.as_of},
        scheduler=args.scheduler,
        files=len(data.files),
    )
    _say(
        args,
        f"wrote {data.num_rows:,} customers to {out} and {record.name} "
        f"({time.perf_counter() - t0:.1f} s in all, on {args.scheduler})",
    )
    return 0


def _final(model: object) -> object:
    from ltvkit._persistence import _final_estimator

    return _final_estimator(model)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ltvkit`` command line; return the exit code.

    Parameters
    ----------
    argv : sequence of str or None, default=None
        Arguments without the program name; None reads ``sys.argv[1:]``.

    Returns
    -------
    int
        0 on success, 2 for bad input (one line on stderr), 130 when interrupted.

    Examples
    --------
    >>> from ltvkit.cli import main
    >>> main(["benchmark", "--quick", "--out", "bench"])  # doctest: +SKIP
    0
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except InputError as exc:
        print(f"{_PROG} {args.command}: error: {exc}", file=sys.stderr)
        return _EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"{_PROG} {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
