"""The ``ltvkit`` command line (console script ``ltvkit``, or ``python -m ltvkit``).

``ltvkit benchmark`` compares every model on a customer table: with no argument on the
embedded CDNOW data, otherwise on a CSV/Parquet customer table (``--data FILE --target
COLUMN``) or transaction log (``--data FILE --transactions ...``). The work is done by
:func:`ltvkit._benchmark.run_benchmark`; this module only reads the input, checks it
(one clear line and exit code 2 for bad input, never a traceback) and prints.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["main"]

_PROG = "ltvkit"
_EXIT_BAD_INPUT = 2


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


def build_parser() -> argparse.ArgumentParser:
    """The ``ltvkit`` argument parser (sub-command ``benchmark``)."""
    from ltvkit import __version__

    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="ltvkit: customer lifetime value models, compared on your data.",
    )
    parser.add_argument("--version", action="version", version=f"ltvkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    bench = sub.add_parser(
        "benchmark",
        help="fit every model on a customer table and compare them on held-out customers",
        description=(
            "Fit every LTV model on the training part of a customer table, score it on the "
            "held-out part and print one row per model (best value per column marked with "
            "*). Writes results.csv, results.md and, with matplotlib, gain_chart.png, "
            "decile_chart.png and lorenz.png to --out. Without --data it runs on the CDNOW "
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
    data = bench.add_argument_group("data (default: the embedded CDNOW customers)")
    data.add_argument("--data", metavar="FILE", help="CSV or Parquet table")
    data.add_argument(
        "--target",
        metavar="COLUMN",
        help="customer table: the value column to predict (several comma-separated "
        "columns = cumulative horizons, for multi-horizon models; others use the last)",
    )
    data.add_argument("--id", metavar="COLUMN", help="customer table: an id column to drop")
    data.add_argument(
        "--transactions",
        action="store_true",
        help="FILE is a transaction log; build the customer table with transactions_to_ltv",
    )
    data.add_argument("--customer", metavar="COLUMN", help="transactions: customer id column")
    data.add_argument("--date", metavar="COLUMN", help="transactions: date column")
    data.add_argument("--value", metavar="COLUMN", help="transactions: monetary value column")
    data.add_argument(
        "--calibration-end", metavar="DATE", help="transactions: first day of the holdout"
    )
    data.add_argument(
        "--holdout-end",
        metavar="DATE",
        help="transactions: end of the holdout (exclusive); several comma-separated "
        "increasing dates give a multi-horizon target",
    )
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
    return parser


# ------------------------------------------------------------------------------ input
def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _read_table(path_text: str) -> pd.DataFrame:
    path = Path(path_text)
    if not path.exists():
        raise InputError(f"file not found: {path_text}")
    if not path.is_file():
        raise InputError(f"not a file: {path_text}")
    suffixes = [s.lower() for s in path.suffixes]
    try:
        if suffixes and suffixes[-1] in (".parquet", ".pq"):
            try:
                return pd.read_parquet(path)
            except ImportError:
                raise InputError(
                    f"reading {path_text} needs pyarrow: pip install 'ltvkit[parquet]'"
                ) from None
        if ".csv" in suffixes or ".tsv" in suffixes or ".txt" in suffixes:
            sep = "\t" if ".tsv" in suffixes else ","
            return pd.read_csv(path, sep=sep)
    except InputError:
        raise
    except Exception as exc:  # any reader failure is bad input
        raise InputError(f"could not read {path_text}: {_first_line(exc)}") from None
    raise InputError(
        f"{path_text}: unsupported file type {path.suffix or '(none)'!r}; "
        "use a .csv, .tsv, .parquet or .pq file"
    )


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
    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError):
        ts = pd.NaT
    if ts is pd.NaT:
        raise InputError(f"{option} {text!r} is not a date (expected e.g. 2011-09-01)")
    return ts


def _load_customer_table(args: argparse.Namespace) -> tuple[pd.DataFrame, object]:
    if args.target is None:
        raise InputError("--data needs --target COLUMN (or --transactions for a transaction log)")
    df = _read_table(args.data)
    if df.shape[0] == 0:
        raise InputError(f"{args.data} has no rows")
    targets = [c.strip() for c in args.target.split(",") if c.strip()]
    if not targets:
        raise InputError("--target is empty")
    y = _check_target(df, targets)
    drop = list(targets)
    if args.id is not None:
        if args.id not in df.columns:
            raise InputError(f"id column {args.id!r} not found; {_columns_hint(df)}")
        drop.append(args.id)
    X = df.drop(columns=drop)
    if X.shape[1] == 0:
        raise InputError(f"{args.data} has no feature column besides the target and id")
    if args.id is not None:
        X.index = df[args.id].to_numpy()
        y.index = X.index
    return X, y


def _load_transactions(args: argparse.Namespace) -> tuple[pd.DataFrame, object]:
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
    ends = [_parse_date(t.strip(), "--holdout-end") for t in args.holdout_end.split(",")]
    tx = _read_table(args.data)
    for opt in ("--customer", "--date", "--value"):
        col = needed[opt]
        if col not in tx.columns:
            raise InputError(f"{opt} column {col!r} not found; {_columns_hint(tx)}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            X, y = transactions_to_ltv(
                tx,
                customer_col=args.customer,
                date_col=args.date,
                value_col=args.value,
                calibration_end=cal_end,
                holdout_end=ends if len(ends) > 1 else ends[0],
            )
        except (ValueError, TypeError) as exc:
            raise InputError(_first_line(exc)) from None
    for w in caught:
        print(f"{_PROG} {args.command}: warning: {_first_line(w.message)}", file=sys.stderr)
    if not (np.asarray(y) > 0).any():
        raise InputError(
            "no customer spends in the holdout window; an LTV model needs at least one "
            "customer who spends (check --calibration-end / --holdout-end)"
        )
    return X, y


def _load(args: argparse.Namespace) -> tuple[pd.DataFrame, object, str]:
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
        from ltvkit.datasets import load_cdnow

        # Cumulative spend after 13, 26 and 39 holdout weeks: multi-horizon models (ODMN)
        # learn all three, the others the 39-week spend (= load_cdnow()'s y), and every
        # model is scored on the 39-week spend.
        X, y = load_cdnow(horizons_weeks=(13, 26, 39))
        return X, y, "CDNOW (embedded; 39-week calibration, spend in the next 39 weeks)"
    if args.transactions:
        X, y = _load_transactions(args)
    else:
        X, y = _load_customer_table(args)
    from ltvkit.base import DataQualityWarning, TabularSchema

    # the feature checks every model makes, once, before any model runs
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataQualityWarning)
        try:
            TabularSchema().fit(X)
        except (ValueError, TypeError) as exc:
            raise InputError(_first_line(exc).removeprefix("ltvkit: ")) from None
    for w in caught:
        text = _first_line(w.message).removeprefix("ltvkit: ")
        print(f"{_PROG} {args.command}: warning: {text}", file=sys.stderr)
    return X, y, str(args.data)


# ------------------------------------------------------------------------------ command
def _list_models() -> int:
    from ltvkit._benchmark import available_models

    for name, kind in available_models().items():
        what = "peer" if kind == "peer" else kind.__name__
        print(f"{name:<20} {what}")
    return 0


def _benchmark(args: argparse.Namespace) -> int:
    if args.list_models:
        return _list_models()
    t0 = time.perf_counter()
    X, y, source = _load(args)
    from ltvkit._benchmark import _resolve_models, format_table, run_benchmark, write_benchmark
    from ltvkit.base import DataQualityWarning

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
        + (", quick" if args.quick else ""),
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
                return_predictions=True,
            )
    except ValueError as exc:
        raise InputError(_first_line(exc).removeprefix("ltvkit: ")) from None
    print(format_table(result.table, "text"))
    print(
        "* best per column. Higher is better: Gini, Spearman, SVA, Recall@1%; lower is better: "
        "decile MAPE, NMAE, AMBE, Mutual Gini, time, memory."
    )
    try:
        written = write_benchmark(result, args.out, progress=sys.stderr)
    except OSError as exc:
        raise InputError(f"cannot write to --out {args.out}: {_first_line(exc)}") from None
    names = ", ".join(p.name for p in written.values())
    print(
        f"{_PROG} benchmark: wrote {names} to {args.out} "
        f"({time.perf_counter() - t0:.1f} s in all)",
        file=sys.stderr,
    )
    return 0


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
