"""Run a quality study: ``python benchmarks/run_study.py NAME [options]``.

A study is ``STUDY`` in ``benchmarks/quality_<NAME>.py`` (declared with the classes of
``benchmarks/_study.py``, whose docstring explains how to write one). Run from the
repository root, one study at a time, one thread::

    OMP_NUM_THREADS=1 python benchmarks/run_study.py ziln
    OMP_NUM_THREADS=1 python benchmarks/run_study.py mdme_odmn --seeds 1 --datasets cdnow
    OMP_NUM_THREADS=1 python benchmarks/run_study.py two_stage --tables all
    python benchmarks/run_study.py --list

The tables go to stdout as Markdown; with ``--out DIR`` also ``DIR/tables.md``,
``DIR/scores.csv`` (every fit, with a digest of its predictions) and ``DIR/run.json``.
``python benchmarks/quality_<NAME>.py [options]`` runs the same.
"""

from __future__ import annotations

import os

# One thread everywhere, before numpy/torch load: reproducible and fair on a shared machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import importlib
import sys
from pathlib import Path

from _study import DATASETS, Study, render_study, run_study

HERE = Path(__file__).resolve().parent


def available() -> list[str]:
    """Names of the studies declared with ``STUDY = Study(...)``."""
    return [
        p.stem.removeprefix("quality_")
        for p in sorted(HERE.glob("quality_*.py"))
        if "STUDY = Study(" in p.read_text(encoding="utf-8")
    ]


def load_study(name: str) -> Study:
    """``STUDY`` of ``benchmarks/quality_<name>.py``."""
    if name not in available():
        raise SystemExit(f"run_study.py: no study {name!r}; available: {', '.join(available())}")
    return importlib.import_module(f"quality_{name}").STUDY


def _names(text: str | None) -> list[str] | None:
    names = [t.strip() for t in (text or "").split(",") if t.strip()]
    return names or None


def main(argv: list[str] | None = None, *, name: str | None = None) -> int:
    """Parse the options, run the study, return 0."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=f"datasets: {', '.join(DATASETS)}",
    )
    if name is None:
        parser.add_argument("name", nargs="?", help="the study (quality_<NAME>.py)")
        parser.add_argument("--list", action="store_true", help="list the studies and exit")
    parser.add_argument("--seeds", type=int, help="model seeds 0..N-1 (default: the study's)")
    parser.add_argument("--datasets", help="comma-separated dataset keys (default: all)")
    parser.add_argument(
        "--tables",
        help="comma-separated table names, or 'all' (default: all but the optional ones)",
    )
    parser.add_argument("--out", help="directory for tables.md, scores.csv and run.json")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument(
        "--render",
        metavar="SCORES_CSV",
        help="print the tables of a saved scores.csv (no fitting): e.g. after a format change",
    )
    args = parser.parse_args(argv)
    if name is None:
        if args.list or args.name is None:
            for study in available():
                print(study)
            return 0
        name = args.name
    study = load_study(name)
    if args.render:
        import pandas as pd

        command = f"python benchmarks/run_study.py {name} --render {args.render}"
        print(render_study(study, pd.read_csv(args.render), command))
        return 0
    import torch

    torch.set_num_threads(args.threads)
    options = [
        f"--{key} {value}"
        for key in ("seeds", "datasets", "tables")
        if (value := getattr(args, key)) is not None
    ]
    command = " ".join(["python benchmarks/run_study.py", name, *options])
    run_study(
        study,
        seeds=args.seeds,
        datasets=_names(args.datasets),
        tables=_names(args.tables),
        out=args.out,
        command=command,
        arguments={k: v for k, v in vars(args).items() if k != "list"} | {"name": name},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
