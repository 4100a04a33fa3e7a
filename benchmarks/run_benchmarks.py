"""Regenerate docs/benchmarks.md and its pictures (docs/img/) from a fresh benchmark run.

Runs :func:`ltvkit.benchmark.run_benchmark` (what ``ltvkit benchmark`` runs) with every
registered model and the two peers on CDNOW (embedded) and UCI Online Retail (skipped
when its file is absent), with ltvkit's 70/30 split and seed 0, one thread per model.
Both targets carry three cumulative horizons so that multi-horizon models (ODMN) take
part; every model is scored on the last horizon, which is the loaders' default target.

Usage (from the repository root)::

    python benchmarks/run_benchmarks.py                  # full models, both datasets
    python benchmarks/run_benchmarks.py --quick          # --quick models (a smoke run)
    python benchmarks/run_benchmarks.py --cv 5           # 5-fold CV, mean ± std
    python benchmarks/run_benchmarks.py --datasets cdnow --out-md /tmp/b.md --img-dir /tmp

The Markdown is rewritten entirely: edit this script, not docs/benchmarks.md.
"""

from __future__ import annotations

import os

# One thread everywhere, before numpy/torch load: comparable timings on a shared machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import platform
import sys
import time
import warnings
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from _common import online_retail_horizons

from ltvkit.benchmark import (
    RECALL_MIN_CUSTOMERS,
    TABLE_METRICS,
    BenchmarkResult,
    available_models,
    format_table,
    legend,
    run_benchmark,
    write_benchmark,
)
from ltvkit.datasets import load_cdnow

ROOT = Path(__file__).resolve().parents[1]


DATASETS = {
    "cdnow": {
        "title": "CDNOW",
        "load": lambda: load_cdnow(horizons_weeks=(13, 26, 39)),
        "about": (
            "CDNOW customers (Fader & Hardie; shipped with ltvkit): the 23,570 customers who "
            "first bought in Q1 1997; features from a 39-week calibration window "
            "(1997-01-01 to 1997-09-30), target = spend in the following 39 weeks "
            "(`load_cdnow()` defaults). As in `ltvkit benchmark`, multi-horizon models are "
            "given the cumulative spend after 13, 26 and 39 weeks "
            "(`load_cdnow(horizons_weeks=(13, 26, 39))`); every model is scored on the "
            "39-week spend."
        ),
    },
    "online_retail": {
        "title": "Online Retail",
        "load": online_retail_horizons,
        "about": (
            "UCI Online Retail (a UK gift wholesaler; not shipped, read from "
            "`$LTVKIT_DATA_DIR` or `../shared/data`): customers with a purchase between "
            "2010-12-01 and 2011-08-31, target = net spend from 2011-09-01 to 2011-12-09 "
            "(`load_online_retail()` defaults; refunds netted, negative net spend set to 0). "
            "Multi-horizon models are given the cumulative spend up to 2011-10-01, "
            "2011-11-01 and 2011-12-10 (`transactions_to_ltv` with three `holdout_end` "
            "dates; the last column is `load_online_retail()`'s target); every model is "
            "scored on the last one."
        ),
    },
}


PYTHON_API = """## Python API

`ltvkit benchmark` is a thin layer over `ltvkit.benchmark`: `run_benchmark` fits and
scores the models and returns a `BenchmarkResult` (`.table`: one row per model, the
mean of each column and, with `cv` or several `seeds`, its sd; `.scores`: one row per
fit; `.y_true` and `.predictions`: what the charts draw), and `write_benchmark` writes
the tables, the charts and the run record. `seeds=` fits each model once per seed on the
same split, as the quality studies do:

```python
from ltvkit.benchmark import legend, run_benchmark, write_benchmark
from ltvkit.datasets import load_cdnow

X, y = load_cdnow()
result = run_benchmark(
    X,
    y,
    models=["two_stage", "lgbm_tweedie", "calibration_spend"],
    seeds=[0, 1, 2],
    quick=True,
    data_name="CDNOW",
)
print(result)  # the table: mean ± sd over the three seeds
print(legend(result.table))
print(result.scores.groupby("model")["normalized_gini"].agg(["mean", "std"]))
written = write_benchmark(result, "my-benchmark")  # tables, charts, run.json
print(sorted(path.name for path in written.values()))
```

Every name is documented in its docstring (`help(run_benchmark)`); the metrics, their
labels and which way each is better come from the registry `ltvkit.metrics.METRICS`.

"""

STUDIES = """## Quality studies

The "Measured quality" numbers of the model pages (`docs/models/*.md`) come from
declarative studies run by one runner, from the repository root, one at a time:

```bash
OMP_NUM_THREADS=1 python benchmarks/run_study.py ziln            # its default seeds
OMP_NUM_THREADS=1 python benchmarks/run_study.py mdme_odmn --seeds 1 --datasets cdnow
OMP_NUM_THREADS=1 python benchmarks/run_study.py two_stage --out /tmp/two_stage
python benchmarks/run_study.py --list
```

A study is `STUDY = Study(...)` in `benchmarks/quality_<name>.py`: its tables, each
with its datasets (`cdnow`, `cdnow_horizons`, `online_retail`, `online_retail_horizons`,
`synthetic_horizons`), model variants (class and parameters; `random_state` is set per
seed), metrics (registry names), whether the calibration-spend baseline is shown, and
the special parts as data or small hooks: several `outputs` of one fit (MDME's hard and
expected predictions), `horizons="all"` (fit on every horizon, score each), `extras`
(per-fit columns such as epochs or monotonicity violations) and `cv` (repeated K-fold
on the training part). The protocol is fixed: ltvkit's 70/30 split
(`train_test_split(X, y, test_size=0.3, random_state=0)`), one fit per seed, mean ± sd
over seeds on the test split. The Markdown tables go to stdout; `--out DIR` also writes
every fit's scores with a digest of its predictions (`scores.csv`) and a run record.
The smallest study, `benchmarks/quality_ziln.py`:

<!-- docs-test: skip imports benchmarks/_study.py (a repository script, not a module) -->
```python
from _study import Study, Table, Variant

from ltvkit.nn import ZILNRegressor


def epochs(s):
    return {"epochs": s.model.n_iter_}


STUDY = Study(
    name="ziln",
    title="ZILNRegressor on CDNOW and Online Retail",
    seeds=5,
    tables=(
        Table(
            name="quality",
            title="ZILN vs the calibration-spend baseline",
            datasets=("cdnow", "online_retail"),
            variants={"ZILN": Variant(ZILNRegressor)},
            metrics=("normalized_gini", "spearman", "decile_mape", "nmae", "ambe"),
            baseline=True,
            extras=(epochs,),
            timing=True,
            transpose=True,
        ),
    ),
)
```

Studies on the runner: `ziln`, `two_stage`, `mdme_odmn`. `quality_ccornet.py`,
`quality_optdist.py` and `quality_mean.py` are still scripts of their own, to be
converted the same way.
"""


def _versions() -> str:
    import lightgbm
    import sklearn
    import torch
    import xgboost

    return (
        f"Python {platform.python_version()}, torch {torch.__version__}, "
        f"scikit-learn {sklearn.__version__}, LightGBM {lightgbm.__version__}, "
        f"XGBoost {xgboost.__version__}"
    )


def _highlights(table: pd.DataFrame) -> list[str]:
    ok = table[table["status"] == "ok"]
    if ok.empty:
        return []
    lines = []
    columns = {c.key: c for c in TABLE_METRICS}  # direction: the metric registry
    for key, label in (
        ("normalized_gini", "normalized Gini"),
        ("spearman", "Spearman"),
        ("decile_mape", "decile MAPE"),
        ("mutual_gini", "Mutual Gini"),
    ):
        col = ok[key]
        best = col.idxmax() if columns[key].greater_is_better else col.idxmin()
        peer = ""
        if "calibration_spend" in ok.index and best != "calibration_spend":
            peer = f"; ranking by calibration spend: {ok.loc['calibration_spend', key]:.3f}"
        lines.append(f"- Best {label}: `{best}` ({col[best]:.3f}{peer}).")
    others = table[table["status"] != "ok"]
    for name, row in others.iterrows():
        lines.append(f"- `{name}`: {row['status']}.")
    return lines


def _section(
    key: str, result: BenchmarkResult, seconds: float, pictures: dict[str, Path], md_dir: Path
) -> str:
    spec = DATASETS[key]
    table = result.table
    attrs = table.attrs
    y = result.y_true
    split = (
        f"{attrs['cv']}-fold cross-validation (shuffled, seed {attrs['seed']}), scored on "
        "the out-of-fold predictions of every row"
        if attrs["cv"]
        else f"70/30 split (`train_test_split(X, y, test_size=0.3, random_state="
        f"{attrs['seed']})`), scored on the {attrs['n_test']:,} held-out customers"
    )
    parts = [
        f"## {spec['title']}",
        "",
        spec["about"],
        "",
        f"{attrs['n_rows']:,} customers, {100 * np.mean(y == 0):.1f}% of the scored ones "
        f"spend nothing; {split}. Run time {seconds:.0f} s.",
        "",
        format_table(table, "markdown"),
        "",
        *_highlights(table),
        "",
    ]
    for kind, caption in (
        (
            "gain_chart",
            "Gain chart: share of the true holdout value captured by the top-ranked "
            "customers, against the perfect and the random order.",
        ),
        (
            "decile_chart",
            "Calibration by predicted decile: mean predicted vs mean true value "
            "in each tenth of customers sorted by prediction (on the diagonal = "
            "calibrated).",
        ),
        (
            "lorenz",
            "Lorenz curves of the true values and of each model's predictions; the "
            "area between a model's curve and the true one is its Mutual Gini.",
        ),
    ):
        if kind in pictures:
            rel = os.path.relpath(pictures[kind], md_dir)
            parts += [
                f"![{spec['title']} {kind.replace('_', ' ')}]({rel})",
                "",
                f"*{caption}*",
                "",
            ]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="cdnow,online_retail")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cv", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-md", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--img-dir", default=str(ROOT / "docs" / "img"))
    args = parser.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass

    started = time.perf_counter()
    md_path = Path(args.out_md)
    img_dir = Path(args.img_dir)
    sections = []
    ran = []
    for key in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        spec = DATASETS[key]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # refunds netted: documented
                X, y = spec["load"]()
        except FileNotFoundError as exc:
            print(f"skipping {spec['title']}: {str(exc).splitlines()[0]}", file=sys.stderr)
            sections.append(
                f"## {spec['title']}\n\nNot run: the data file was not found when this page "
                "was generated.\n"
            )
            continue
        print(f"== {spec['title']}: {len(X):,} customers", file=sys.stderr)
        t0 = time.perf_counter()
        result = run_benchmark(
            X,
            y,
            cv=args.cv,
            seed=args.seed,
            quick=args.quick,
            n_jobs=1,
            progress=sys.stderr,
            data_name=spec["title"],
        )
        seconds = time.perf_counter() - t0
        pictures = write_benchmark(
            result, img_dir, prefix=f"{key}_", tables=False, run_record=False
        )
        print(format_table(result.table, "text"))
        sections.append(_section(key, result, seconds, pictures, md_path.parent))
        ran.append(f"{spec['title']} {seconds:.0f} s")
    total = time.perf_counter() - started

    command = "python benchmarks/run_benchmarks.py" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:])
    )
    models = ", ".join(f"`{m}`" for m in available_models())
    legend_text = legend(pd.DataFrame(columns=[c.key for c in TABLE_METRICS]))
    legend_text = legend_text.removeprefix("* best per column. ")
    header = f"""# Benchmarks: every model on CDNOW and Online Retail

<!-- Generated by benchmarks/run_benchmarks.py; edit the script, not this file. -->

This page is what `ltvkit benchmark` prints and draws, on two real customer datasets. It
is regenerated by one command, from the repository root:

```bash
{command}
```

Last run: {date.today().isoformat()}, {total:.0f} s in all ({"; ".join(ran) or "no data"}),
{
        "with `--quick` models (small networks, 5 epochs, 50 boosting rounds)"
        if args.quick
        else "every model with its default hyperparameters"
    }, on a {os.cpu_count()}-core Linux
machine shared with other jobs, one thread per model (`OMP_NUM_THREADS=1`,
`torch.set_num_threads(1)`, `n_jobs=1`); {_versions()}.

To run the same comparison on your own customers:
`ltvkit benchmark --data customers.csv --target spend --id customer_id` (or a transaction
log with `--transactions`; `ltvkit benchmark --help`).

## What is measured

- **Models**: every model registered in `ltvkit.all_estimators()` when the page was
  generated, with its defaults, plus two peers: `calibration_spend`
  (`ltvkit.benchmark.CalibrationSpendBaseline`: each customer's calibration-window
  spend `monetary_total`, clipped at 0 and rescaled so that its mean on the training
  customers equals theirs: the ranking a team has without any model, as a forecast in
  the target's units so that its error metrics mean something) and `lgbm_tweedie` (one
  LightGBM booster with the Tweedie objective, LightGBM's defaults, categorical columns
  native). Models here: {models}. A multi-horizon model is given the cumulative horizons
  and scored on the last one, like every other model.
- **Metrics** ([metrics.md](metrics.md)), on held-out customers: normalized Gini and
  the Gini on the spenders only (`Gini y>0`), Spearman, decile MAPE, NMAE, AMBE (in
  dollars / pounds), Mutual Gini, SVA (the model's P(y > 0) when it has one, else
  prediction > 0.1) and `Recall@1%≥{RECALL_MIN_CUSTOMERS}`: the share of the true top
  customers found among the predicted top ones, on the top 1% of the scored customers
  but at least {RECALL_MIN_CUSTOMERS} (Recall@1% of Online Retail's 996 test customers
  would be the top 10, a metric with steps of 0.1; here it is the top 50 there and the
  top 71 on CDNOW). The best value per column is in bold. {legend_text}
- **fit s**: wall-clock `fit` time. Each model class is first fitted once, untimed, on
  200 rows (a warm-up), so one-time costs (lazy imports, thread pools: more than a
  second for the first torch model) do not land on whichever model runs first. The
  best time and memory are marked among the models that learn (not `calibration_spend`).
- **predict ms/1k**: wall-clock `predict` time on the held-out rows, per 1,000 rows
  (one call; on a small test set the fixed cost of a call dominates).
- **peak MB**: the peak increase of the process's resident memory (RSS, sampled every
  5 ms from `/proc/self/statm`) during fit and predict, over its value just before.
  It counts native allocations (torch, LightGBM, XGBoost) that `tracemalloc` cannot
  see. Before each model, garbage is collected and freed heap pages are returned to the
  OS (glibc `malloc_trim`), so a model's allocations are not hidden by memory an earlier
  one left behind; some reuse remains possible (arenas, caches), so read it as an order
  of magnitude, not an exact footprint. Without `/proc` (macOS, Windows) `ltvkit
  benchmark` falls back to `tracemalloc`'s peak (Python allocations only).
- Timings on a shared machine vary by about ±30% from run to run; the quality metrics
  are deterministic for a given seed.
- **Pictures**: their titles name the data and the number of scored customers (and say
  "quick: not for choosing a model" for a `--quick` run); the reference lines (perfect
  order, random order, equal shares, calibrated) are drawn above the models' lines, so a
  model whose curve coincides with one cannot hide it.
- **Run record**: every `ltvkit benchmark` run writes `run.json` next to its tables: the
  command and its arguments, the data (rows, features, a SHA-256 of the customer table
  and target, and of the `--data` file), the split, the seeds, `--quick`, the versions
  of Python, ltvkit and its libraries, each model's status and every file written, with
  its SHA-256.

"""
    sections_after = PYTHON_API + STUDIES
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(
        header + "\n".join(sections).rstrip() + "\n\n" + sections_after, encoding="utf-8"
    )
    print(f"wrote {md_path} and pictures in {img_dir} ({total:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
