"""Quality of OptDistRegressor: real data, quantiles, temperature, the paper's ablations.

Run from the repository root::

    OMP_NUM_THREADS=1 python benchmarks/quality_optdist.py                  # everything
    OMP_NUM_THREADS=1 python benchmarks/quality_optdist.py --part real      # ranking tables
    OMP_NUM_THREADS=1 python benchmarks/quality_optdist.py --part quantiles # calibration
    OMP_NUM_THREADS=1 python benchmarks/quality_optdist.py --part temperature # Fig. 4(b)
    OMP_NUM_THREADS=1 python benchmarks/quality_optdist.py --part patience  # Online Retail
    OMP_NUM_THREADS=1 python benchmarks/quality_optdist.py --part ablation  # Table 3
    OMP_NUM_THREADS=1 python benchmarks/quality_optdist.py --part trajectory

Prints Markdown tables (pasted into ``docs/models/optdist.md``). Protocol (ltvkit's
convention): the fixed split ``train_test_split(X, y, test_size=0.3, random_state=0)``;
seeds 0..S-1 of the models change only initialisation, shuffling and the validation
split; mean ± sd over seeds on the 30% test split. The selection mechanism on data with
planted groups is measured by ``benchmarks/diagnose_optdist_selection.py``.

1. **Ranking** (``--part real``) on CDNOW, UCI Online Retail and the *first-purchase-only
   CDNOW table* (below): ``OptDistRegressor()`` (defaults), the earlier default
   (``component_init="marginal", gumbel_temperature=1.0, patience=10``: every
   component starts at the marginal distribution), the default fits predicting with
   ``prediction="expected"`` (same networks, paired), ``ZILNRegressor()`` (same
   bottom) and ranking by past spend (``X["monetary_total"]``; for the error metrics
   rescaled to the training mean, as in ``benchmarks/quality_ziln.py``). Also the share
   of test customers per component.
2. **Quantile calibration** (``--part quantiles``), CDNOW and Online Retail: coverage
   ``P(y <= Q(q))`` at q = 0.5, 0.9, 0.95 on the test rows, and the pinball loss at 0.9
   against the constant 0.9-quantile of the training labels (ratio < 1: the model's
   quantile beats the constant), for OptDist (hard and expected rules, the same fits)
   and ZILN.
3. **Temperature** (``--part temperature``, the paper's Fig. 4b): normalized Gini on
   CDNOW for ``gumbel_temperature`` in 0.1, 0.3, 1, 3, 10, with the straight-through
   (``gumbel_hard=True``) and the soft (``False``) mask; the largest component's share
   and the mean of ``max alpha`` on the test rows.
4. **Early stopping's patience** (``--part patience``, 10 seeds): Online Retail's
   normalized Gini and the epoch early stopping kept, for the default (``patience=20``),
   the default with ``patience=10`` and the earlier default.
5. **Ablations on CDNOW** (``--part ablation``, the paper's Table 3 variants).
6. **Training trajectory** of the default model on CDNOW, seed 0 (``--part trajectory``).

The first-purchase-only CDNOW table (:func:`cdnow_first_purchase`): the transactions of
``load_cdnow(return_transactions=True)`` restricted to each customer's first purchase
day, plus every transaction from 1997-04-01 on, go through ``transactions_to_ltv`` with
``calibration_end="1997-04-01"`` and ``holdout_end="1998-07-01"``; ``X`` keeps the nine
core ``FEATURE_NAMES`` (the same columns as ``load_cdnow``). So ``X`` describes only the
first purchase day (all 23,570 customers first bought in Q1 1997; ``monetary_total`` is
the first day's spend) and ``y`` is the spend from 1997-04-01 to the end of the data
(1998-06-30). Purchases between the first day and 1997-04-01 are in neither.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch
from _common import fixed_split, load_split, mean_sd, spend_baseline
from sklearn.metrics import mean_pinball_loss

from ltvkit.datasets import FEATURE_NAMES, load_cdnow, transactions_to_ltv
from ltvkit.metrics import ambe, decile_mape, nmae, normalized_gini, spearman
from ltvkit.nn import OptDistRegressor, ZILNRegressor

METRICS = {
    "normalized Gini ↑": normalized_gini,
    "Spearman ↑": spearman,
    "decile MAPE ↓": decile_mape,
    "NMAE ↓": nmae,
    "AMBE ↓": ambe,
}
ABLATIONS = {
    "OptDist (full)": {},
    "(w/o) Gumbel-softmax": {"gumbel": False},
    "(w/o) L_KL": {"kl_weight": 0.0},
    "(w/o) L_CE": {"ce_weight": 0.0},
    "(w/o) L_KL + L_CE": {"kl_weight": 0.0, "ce_weight": 0.0},
}
EARLIER_DEFAULT = {"component_init": "marginal", "gumbel_temperature": 1.0, "patience": 10}
TEMPERATURES = (0.1, 0.3, 1.0, 3.0, 10.0)
LEVELS = (0.5, 0.9, 0.95)
FIRST_PURCHASE = "CDNOW first purchase"


def cdnow_first_purchase() -> tuple[pd.DataFrame, pd.Series]:
    """The first-purchase-only CDNOW table (see the module docstring)."""
    tx = load_cdnow(return_transactions=True)
    first_day = tx["date"] == tx.groupby("customer_id")["date"].transform("min")
    log = pd.concat([tx[first_day], tx[tx["date"] >= "1997-04-01"]])
    X, y = transactions_to_ltv(
        log,
        customer_col="customer_id",
        date_col="date",
        value_col="value",
        calibration_end="1997-04-01",
        holdout_end="1998-07-01",
    )
    return X[list(FEATURE_NAMES)], y


def _split(name: str) -> tuple | None:
    if name == FIRST_PURCHASE:
        return fixed_split(*cdnow_first_purchase(), float_train=True)
    return load_split(name, float_train=True)


def _scores(y_true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {name: float(fn(y_true, pred)) for name, fn in METRICS.items()}


def real_data(name: str, seeds: int) -> pd.DataFrame | None:
    split = _split(name)
    if split is None:
        print(f"{name}: data not found, skipped")
        return None
    X_tr, X_te, y_tr, y_te = split
    labels = ("OptDist", "OptDist expected", "OptDist earlier default", "ZILN")
    rows: dict[str, list[dict[str, float]]] = {k: [] for k in labels}
    shares, fit_s, epochs = [], {k: [] for k in labels}, {k: [] for k in labels}

    def fit(label: str, model: object) -> object:
        t0 = time.process_time()
        model.fit(X_tr, y_tr)
        fit_s[label].append(time.process_time() - t0)
        epochs[label].append(model.n_iter_)
        rows[label].append(_scores(y_te, model.predict(X_te)))
        return model

    for seed in range(seeds):
        model = fit("OptDist", OptDistRegressor(random_state=seed))
        sel = model.predict_component(X_te)
        shares.append(np.sort(np.bincount(sel, minlength=model.n_components) / len(sel))[::-1])
        # same fitted network, mixture prediction: a paired comparison of the two rules
        model.set_params(prediction="expected")
        rows["OptDist expected"].append(_scores(y_te, model.predict(X_te)))
        fit("OptDist earlier default", OptDistRegressor(random_state=seed, **EARLIER_DEFAULT))
        fit("ZILN", ZILNRegressor(random_state=seed))
    base = _scores(y_te, spend_baseline(X_tr, X_te, y_tr))
    share = np.mean(shares, axis=0)
    print(
        f"{name}: {len(X_tr):,} train / {len(X_te):,} test rows, {(y_te == 0).mean():.0%} "
        f"zeros in test; {seeds} seed(s). Fit CPU time (mean): "
        + ", ".join(
            f"{k} {np.mean(fit_s[k]):.1f}s / {np.mean(epochs[k]):.0f} epochs"
            for k in labels
            if fit_s[k]
        )
        + ". Test customers per component (default, sorted, mean over seeds): "
        + ", ".join(f"{s:.0%}" for s in share)
    )
    frames = {k: pd.DataFrame(v) for k, v in rows.items()}
    out = pd.DataFrame(
        {
            "OptDist (default)": [mean_sd(frames["OptDist"][m]) for m in METRICS],
            "OptDist expected prediction": [
                mean_sd(frames["OptDist expected"][m]) for m in METRICS
            ],
            "OptDist earlier default": [
                mean_sd(frames["OptDist earlier default"][m]) for m in METRICS
            ],
            "ZILN": [mean_sd(frames["ZILN"][m]) for m in METRICS],
            "past spend": [f"{base[m]:.4f}" for m in METRICS],
        },
        index=list(METRICS),
    )
    out.index.name = name
    gini = {k: frames[k]["normalized Gini ↑"] for k in labels}
    for other in ("ZILN", "OptDist earlier default"):
        diff = gini["OptDist"] - gini[other]
        print(
            f"  OptDist - {other} normalized Gini per seed: {', '.join(f'{d:+.4f}' for d in diff)}"
        )
    return out


def quantiles(name: str, seeds: int) -> pd.DataFrame | None:
    split = _split(name)
    if split is None:
        print(f"{name}: data not found, skipped")
        return None
    X_tr, X_te, y_tr, y_te = split
    constant = np.quantile(y_tr, 0.9)
    base_pinball = mean_pinball_loss(y_te, np.full_like(y_te, constant), alpha=0.9)
    results: dict[str, list[dict[str, float]]] = {}

    def record(label: str, q: np.ndarray) -> None:
        row = {f"coverage at {lv}": float(np.mean(y_te <= q[:, i])) for i, lv in enumerate(LEVELS)}
        pinball = mean_pinball_loss(y_te, q[:, LEVELS.index(0.9)], alpha=0.9)
        row["pinball 0.9 / constant"] = pinball / base_pinball
        results.setdefault(label, []).append(row)

    for seed in range(seeds):
        model = OptDistRegressor(random_state=seed).fit(X_tr, y_tr)
        record("OptDist (hard, default)", model.predict_quantiles(X_te, list(LEVELS)))
        model.set_params(prediction="expected")
        record("OptDist expected", model.predict_quantiles(X_te, list(LEVELS)))
        ziln = ZILNRegressor(random_state=seed).fit(X_tr, y_tr)
        record("ZILN", ziln.predict_quantiles(X_te, list(LEVELS)))
    print(
        f"{name}: constant training 0.9-quantile {constant:.2f}, its test pinball loss "
        f"{base_pinball:.3f}, its coverage {np.mean(y_te <= constant):.3f}"
    )
    table = pd.DataFrame(
        {
            label: {k: mean_sd(pd.DataFrame(rows)[k], 3) for k in rows[0]}
            for label, rows in results.items()
        }
    ).T
    table.index.name = name
    return table


def temperature(seeds: int) -> pd.DataFrame:
    X_tr, X_te, y_tr, y_te = _split("CDNOW")
    rows = []
    for hard in (True, False):
        for tau in TEMPERATURES:
            gini, top, amax = [], [], []
            for seed in range(seeds):
                model = OptDistRegressor(
                    random_state=seed, gumbel_temperature=tau, gumbel_hard=hard
                ).fit(X_tr, y_tr)
                gini.append(normalized_gini(y_te, model.predict(X_te)))
                alpha = model.predict_component_proba(X_te)
                top.append(np.bincount(alpha.argmax(1)).max() / len(alpha))
                amax.append(alpha.max(1).mean())
            rows.append(
                {
                    "mask": "straight-through (hard)" if hard else "soft",
                    "tau": tau,
                    "normalized Gini ↑": mean_sd(gini),
                    "largest share": f"{np.mean(top):.0%}",
                    "mean max alpha": f"{np.mean(amax):.2f}",
                }
            )
            print(f"  hard={hard} tau={tau}: Gini per seed {', '.join(f'{g:.4f}' for g in gini)}")
    return pd.DataFrame(rows)


def patience(seeds: int) -> pd.DataFrame | None:
    """Online Retail: normalized Gini and the epoch early stopping kept, per seed."""
    split = _split("Online Retail")
    if split is None:
        print("Online Retail: data not found, skipped")
        return None
    X_tr, X_te, y_tr, y_te = split
    rows = []
    configs = {
        "default (patience=20)": {},
        "patience=10": {"patience": 10},
        "earlier default": EARLIER_DEFAULT,
    }
    for label, params in configs.items():
        gini, kept = [], []
        for seed in range(seeds):
            model = OptDistRegressor(random_state=seed, **params).fit(X_tr, y_tr)
            gini.append(normalized_gini(y_te, model.predict(X_te)))
            kept.append(model.best_epoch_)
        rows.append(
            {
                "variant": label,
                "normalized Gini ↑": mean_sd(gini),
                "Gini min / max": f"{min(gini):.4f} / {max(gini):.4f}",
                "epoch kept, per seed": ", ".join(str(k) for k in kept),
            }
        )
        print(f"  {label}: Gini per seed {', '.join(f'{g:.4f}' for g in gini)}", flush=True)
    return pd.DataFrame(rows).set_index("variant")


def ablation(seeds: int) -> pd.DataFrame:
    X_tr, X_te, y_tr, y_te = _split("CDNOW")
    rows = []
    for label, params in ABLATIONS.items():
        gini, spear, top = [], [], []
        for seed in range(seeds):
            model = OptDistRegressor(random_state=seed, **params).fit(X_tr, y_tr)
            pred = model.predict(X_te)
            gini.append(normalized_gini(y_te, pred))
            spear.append(spearman(y_te, pred))
            sel = model.predict_component(X_te)
            top.append(np.bincount(sel).max() / len(sel))
        rows.append(
            {
                "variant": label,
                "normalized Gini ↑": mean_sd(gini),
                "Spearman ↑": mean_sd(spear),
                "largest SDN share": f"{np.mean(top):.0%}",
            }
        )
        print(f"  {label}: Gini per seed {', '.join(f'{g:.4f}' for g in gini)}", flush=True)
    return pd.DataFrame(rows).set_index("variant")


def trajectory() -> pd.DataFrame:
    """Per-epoch loss terms and SDN shares of the default model on CDNOW (seed 0)."""
    X_tr, _, y_tr, _ = _split("CDNOW")
    hist = OptDistRegressor(random_state=0).fit(X_tr, y_tr).net_.history
    rows = [
        {
            "epoch": h["epoch"],
            "train NLL": round(h["train_nll"], 4),
            "valid NLL": round(h["valid_nll"], 4),
            "train CE": round(h["train_ce"], 3),
            "train KL": round(h["train_kl"], 3),
            "train SDN shares": " / ".join(f"{v:.0%}" for v in h["train_component_share"]),
        }
        for h in hist
    ]
    return pd.DataFrame(rows).set_index("epoch")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--part",
        choices=["all", "real", "quantiles", "temperature", "patience", "ablation", "trajectory"],
        default="all",
    )
    parser.add_argument("--patience-seeds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.part in ("all", "real"):
        for name in ("CDNOW", "Online Retail", FIRST_PURCHASE):
            table = real_data(name, args.seeds)
            if table is not None:
                print(table.to_markdown())
                print(flush=True)
    if args.part in ("all", "quantiles"):
        for name in ("CDNOW", "Online Retail"):
            table = quantiles(name, args.seeds)
            if table is not None:
                print(table.to_markdown())
                print(flush=True)
    if args.part in ("all", "temperature"):
        print(f"Gumbel-softmax temperature on CDNOW ({args.seeds} seeds):")
        print(temperature(args.seeds).to_markdown(index=False))
        print(flush=True)
    if args.part in ("all", "patience"):
        print(f"Early stopping's patience on Online Retail ({args.patience_seeds} seeds):")
        table = patience(args.patience_seeds)
        if table is not None:
            print(table.to_markdown())
        print(flush=True)
    if args.part in ("all", "ablation"):
        print(f"Ablations on CDNOW ({args.seeds} seeds):")
        print(ablation(args.seeds).to_markdown())
        print(flush=True)
    if args.part in ("all", "trajectory"):
        print("Training trajectory, CDNOW, default OptDistRegressor, seed 0:")
        print(trajectory().to_markdown())
        print(flush=True)


if __name__ == "__main__":
    main()
