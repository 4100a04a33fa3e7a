"""Quality of OptDistRegressor: real data, the paper's ablations, and a synthetic check.

Run from the repository root::

    OMP_NUM_THREADS=1 python benchmarks/quality_optdist.py                 # everything
    OMP_NUM_THREADS=1 python benchmarks/quality_optdist.py --part real     # tables 1-2
    OMP_NUM_THREADS=1 python benchmarks/quality_optdist.py --part ablation # table 3
    OMP_NUM_THREADS=1 python benchmarks/quality_optdist.py --part trajectory # table 4
    OMP_NUM_THREADS=1 python benchmarks/quality_optdist.py --part groups   # table 5

Prints Markdown tables (pasted into ``docs/models/optdist.md``):

1. **CDNOW and UCI Online Retail** (ltvkit's fixed split,
   ``train_test_split(X, y, test_size=0.3, random_state=0)``; seeds 0..S-1 change only
   initialisation, shuffling and the validation split): OptDist with default
   hyperparameters, the same fitted models predicting with ``prediction="expected"``
   (the ``alpha``-weighted mixture instead of the argmax component, the paper's SDN;
   training is identical, only the prediction rule changes, so the comparison is
   paired), ``ZILNRegressor`` with default hyperparameters (same bottom), and ranking
   by calibration spend (``X["monetary_total"]``; for the error metrics rescaled to the
   training mean, as in ``benchmarks/quality_ziln.py``). Mean ± sd over seeds on the 30%
   test split, plus the share of test customers per SDN (mean over seeds, sorted).
2. **Ablations on CDNOW** (the paper's Table 3 variants): no Gumbel-softmax
   (``gumbel=False``), no KL term (``kl_weight=0``), no CE term (``ce_weight=0``),
   neither; normalized Gini and Spearman, mean ± sd over seeds.
3. **Training trajectory** of the default model on CDNOW (seed 0): per epoch the
   train/valid NLL, the alignment terms and the share of training customers per SDN.
4. **Does the selection find the latent groups?** ``make_ltv`` with 3 well-separated
   groups (``sigma=2``: adjacent groups are ``2.5 * sigma = 5`` apart in log value,
   large against the feature effects; ``zero_fraction=0.1``, ``whale_fraction=0``),
   10,000 rows, 70/30 split, one dataset per seed. Reported on the test rows: adjusted
   Rand index between ``predict_component`` and the latent group, share of the
   largest SDN, number of SDNs selected for at least 5% of customers, and the training
   CE and KL alignment terms in the first and the last epoch (``net_.history``). Variants:
   defaults (the paper's SDN sizes on ltvkit's shared bottom); "linear SDNs" (no shared
   MLP, ``component_units=()``, ``selection_units=(32,)``: the configuration of
   ``tests/test_optdist.py``); the same without alignment terms; and the same at
   initialisation (``learning_rate=1e-12``, one epoch: the ARI an untrained selection network
   gets from the features alone).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch
from _common import load_split, mean_sd, spend_baseline
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import train_test_split

from ltvkit.datasets import make_ltv
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
LINEAR = {"hidden_units": (), "component_units": (), "selection_units": (32,)}
GROUP_VARIANTS = {
    "defaults (paper SDN sizes, shared bottom (64, 32))": {},
    "linear SDNs (test config)": LINEAR,
    "linear SDNs, no alignment (ce_weight=kl_weight=0)": {
        **LINEAR,
        "ce_weight": 0.0,
        "kl_weight": 0.0,
    },
    "linear SDNs at initialisation (learning_rate=1e-12, 1 epoch)": {
        **LINEAR,
        "learning_rate": 1e-12,
        "max_epochs": 1,
    },
}
GROUP_DATA = dict(n_samples=10_000, n_groups=3, zero_fraction=0.1, whale_fraction=0.0, sigma=2.0)


def _scores(y_true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {name: float(fn(y_true, pred)) for name, fn in METRICS.items()}


def real_data(name: str, seeds: int) -> pd.DataFrame | None:
    split = load_split(name, float_train=True)
    if split is None:
        print(f"{name}: data not found, skipped")
        return None
    X_tr, X_te, y_tr, y_te = split
    rows: dict[str, list[dict[str, float]]] = {"OptDist": [], "OptDist expected": [], "ZILN": []}
    shares, fit_s, epochs = [], {"OptDist": [], "ZILN": []}, {"OptDist": [], "ZILN": []}
    for seed in range(seeds):
        t0 = time.process_time()
        model = OptDistRegressor(random_state=seed).fit(X_tr, y_tr)
        fit_s["OptDist"].append(time.process_time() - t0)
        epochs["OptDist"].append(model.n_iter_)
        rows["OptDist"].append(_scores(y_te, model.predict(X_te)))
        # same fitted network, mixture prediction: a paired comparison of the two rules
        model.set_params(prediction="expected")
        rows["OptDist expected"].append(_scores(y_te, model.predict(X_te)))
        sel = model.predict_component(X_te)
        shares.append(np.sort(np.bincount(sel, minlength=model.n_components) / len(sel))[::-1])
        t0 = time.process_time()
        ziln = ZILNRegressor(random_state=seed).fit(X_tr, y_tr)
        fit_s["ZILN"].append(time.process_time() - t0)
        epochs["ZILN"].append(ziln.n_iter_)
        rows["ZILN"].append(_scores(y_te, ziln.predict(X_te)))
    base = _scores(y_te, spend_baseline(X_tr, X_te, y_tr))
    share = np.mean(shares, axis=0)
    print(
        f"{name}: {len(X_tr):,} train / {len(X_te):,} test rows, {(y_te == 0).mean():.0%} "
        f"zeros in test; {seeds} seed(s). Fit CPU time (mean): OptDist "
        f"{np.mean(fit_s['OptDist']):.1f}s / {np.mean(epochs['OptDist']):.0f} epochs, ZILN "
        f"{np.mean(fit_s['ZILN']):.1f}s / {np.mean(epochs['ZILN']):.0f} epochs. Test customers "
        f"per SDN (sorted, mean over seeds): {', '.join(f'{s:.0%}' for s in share)}"
    )
    frames = {k: pd.DataFrame(v) for k, v in rows.items()}
    out = pd.DataFrame(
        {
            "OptDist (mean ± sd)": [mean_sd(frames["OptDist"][m]) for m in METRICS],
            "OptDist expected prediction": [
                mean_sd(frames["OptDist expected"][m]) for m in METRICS
            ],
            "ZILN (mean ± sd)": [mean_sd(frames["ZILN"][m]) for m in METRICS],
            "calibration spend": [f"{base[m]:.4f}" for m in METRICS],
        },
        index=list(METRICS),
    )
    out.index.name = name
    diff = frames["OptDist"]["normalized Gini ↑"] - frames["ZILN"]["normalized Gini ↑"]
    print(f"  OptDist - ZILN normalized Gini per seed: {', '.join(f'{d:+.4f}' for d in diff)}")
    return out


def ablation(seeds: int) -> pd.DataFrame:
    X_tr, X_te, y_tr, y_te = load_split("CDNOW", float_train=True)
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
    X_tr, _, y_tr, _ = load_split("CDNOW", float_train=True)
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


def groups(seeds: int) -> pd.DataFrame:
    rows = []
    for label, params in GROUP_VARIANTS.items():
        ari, top, used, ce, kl, secs = [], [], [], [], [], []
        for seed in range(seeds):
            X, y, g = make_ltv(random_state=seed, return_groups=True, **GROUP_DATA)
            X_tr, X_te, y_tr, _, _, g_te = train_test_split(X, y, g, test_size=0.3, random_state=0)
            t0 = time.process_time()
            model = OptDistRegressor(random_state=seed, **params).fit(X_tr, y_tr)
            secs.append(time.process_time() - t0)
            sel = model.predict_component(X_te)
            share = np.bincount(sel, minlength=model.n_components) / len(sel)
            ari.append(adjusted_rand_score(g_te, sel))
            top.append(share.max())
            used.append(int((share >= 0.05).sum()))
            hist = model.net_.history
            ce.append((hist[0, "train_ce"], hist[-1, "train_ce"]))
            kl.append((hist[0, "train_kl"], hist[-1, "train_kl"]))
        ce_a, kl_a = np.array(ce), np.array(kl)
        align_down = int((ce_a[:, 1] + kl_a[:, 1] < ce_a[:, 0] + kl_a[:, 0]).sum())
        rows.append(
            {
                "variant": label,
                "ARI mean": f"{np.mean(ari):.3f}",
                "ARI min / max": f"{np.min(ari):.3f} / {np.max(ari):.3f}",
                "largest SDN share": f"{np.mean(top):.0%} (max {np.max(top):.0%})",
                "SDNs ≥ 5%": f"{np.mean(used):.1f} (min {np.min(used)})",
                "train CE first → last": f"{ce_a[:, 0].mean():.3f} → {ce_a[:, 1].mean():.3f}"
                f" (down in {(ce_a[:, 1] < ce_a[:, 0]).sum()}/{seeds})",
                "train KL first → last": f"{kl_a[:, 0].mean():.3f} → {kl_a[:, 1].mean():.3f}"
                f" (down in {(kl_a[:, 1] < kl_a[:, 0]).sum()}/{seeds})",
                "CE + KL down": f"{align_down}/{seeds}",
                "fit CPU s": f"{np.mean(secs):.1f}",
            }
        )
        print(f"  {label}: ARI per seed {', '.join(f'{a:.3f}' for a in ari)}", flush=True)
    return pd.DataFrame(rows).set_index("variant")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3, help="seeds for tables 1-3")
    parser.add_argument("--group-seeds", type=int, default=10, help="seeds for table 5")
    parser.add_argument(
        "--part", choices=["all", "real", "ablation", "trajectory", "groups"], default="all"
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.part in ("all", "real"):
        for name in ("CDNOW", "Online Retail"):
            table = real_data(name, args.seeds)
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
    if args.part in ("all", "groups"):
        print(f"Latent groups of make_ltv({GROUP_DATA}) ({args.group_seeds} seeds):")
        print(groups(args.group_seeds).to_markdown())


if __name__ == "__main__":
    main()
