"""Why does OptDist's selection collapse? One factor at a time, on data with planted groups.

Run from the repository root::

    OMP_NUM_THREADS=1 python benchmarks/diagnose_optdist_selection.py            # all, 10 seeds
    OMP_NUM_THREADS=1 python benchmarks/diagnose_optdist_selection.py --seeds 3 --only init

Data: ``make_ltv(n_samples=10_000, n_groups=3, zero_fraction=0.1, whale_fraction=0,
sigma=2)`` (the groups of ``docs/models/optdist.md``: adjacent groups 5 log units apart,
different zero rates, identifiable from ``num_0`` and ``cat_0``), one dataset per seed,
``train_test_split(..., test_size=0.3, random_state=0)``; the model's ``random_state`` is
the seed too. ``--data default`` uses ``make_ltv(n_samples=10_000, n_groups=3)`` with
its other defaults instead (70% zeros, ``sigma=1``: groups 2.5 log units apart, 1%
whales), a harder case.

Every variant is ``OptDistRegressor`` at its defaults (the paper's SDN size
``(64, 32, 32)``, shared bottom ``(64, 32)``, ``L = 4``, ``component_init="quantiles"``,
``gumbel_temperature=0.1``, ``patience=20``, ...) with the changes its label names
("marginal init": ``component_init="marginal"``); the first row is the earlier default.
Columns, on the 30% test rows, over the seeds:

- **ARI**: adjusted Rand index between ``predict_component`` and the planted group
  (mean ± sd, min, and how many seeds reach 0.3), at the epoch early stopping kept;
- **peak ARI**: the highest ARI of any epoch during training (mean over seeds), and
  the mean epoch where it occurred: how much specialisation existed before it was lost;
- **largest share**: share of test customers on the most-selected component (mean,
  max); with perfectly recovered groups it is 57% (the largest group);
- **SDN mu range**: mean over test customers of ``max_i mu_i - min_i mu_i`` across the
  four components at the end, in log units: how different the components still are
  (the planted groups are 5 log units apart; near 0 = the components have become one
  model);
- **alpha max**: mean over test customers of ``max_i alpha_i`` (0.25 = uniform);
- **spend gap**: the paper's Fig. 5 in one number: over the components selected for at
  least 5% of the test customers, the largest minus the smallest mean ``log y`` of the
  spending customers selected for each (0 when one component takes everyone; the
  planted groups' means are 5 apart).

Factors (the issue's list): initialisation (``component_init``), temperature and the
mask (``gumbel_temperature``, ``gumbel_hard``), the alignment terms (``ce_weight``,
``kl_weight``, and the KL gradient reaching the components, ``OptDistLoss``'s
``align_components``, which the estimator does not expose), the selection network's
learning rate (a separate optimizer parameter group, 10x), capacity (no shared bottom
MLP; linear components on the shared bottom; linear components on the encoded input),
and early stopping's patience.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import train_test_split
from skorch.callbacks import Callback

from ltvkit.datasets import make_ltv
from ltvkit.nn import OptDistRegressor

DATA = {
    "separated": dict(
        n_samples=10_000, n_groups=3, zero_fraction=0.1, whale_fraction=0.0, sigma=2.0
    ),
    "default": dict(n_samples=10_000, n_groups=3),
}
MARGINAL = {"component_init": "marginal"}
EARLIER_DEFAULT = {**MARGINAL, "gumbel_temperature": 1.0, "patience": 10}
SOFT = {"gumbel_hard": False}

# (factor, label, estimator params on top of the defaults, diagnostic-only options)
VARIANTS: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    ("init", "earlier default (marginal init, tau=1, patience=10)", EARLIER_DEFAULT, {}),
    ("init", "default (quantile init, tau=0.1, patience=20)", {}, {}),
    ("init", "marginal init", MARGINAL, {}),
    (
        "init",
        "untrained selection (learning_rate=1e-12, 1 epoch)",
        {"learning_rate": 1e-12, "max_epochs": 1},
        {},
    ),
    ("temperature", "tau=1", {"gumbel_temperature": 1.0}, {}),
    ("temperature", "tau=3", {"gumbel_temperature": 3.0}, {}),
    ("temperature", "marginal init, tau=1", {**MARGINAL, "gumbel_temperature": 1.0}, {}),
    ("temperature", "soft mask, tau=0.1", SOFT, {}),
    ("temperature", "soft mask, tau=1", {**SOFT, "gumbel_temperature": 1.0}, {}),
    ("temperature", "soft mask, tau=3", {**SOFT, "gumbel_temperature": 3.0}, {}),
    ("alignment", "no alignment (ce_weight=kl_weight=0)", {"ce_weight": 0, "kl_weight": 0}, {}),
    ("alignment", "kl_weight=0", {"kl_weight": 0.0}, {}),
    ("alignment", "ce_weight=0", {"ce_weight": 0.0}, {}),
    ("alignment", "KL gradient into the components", {}, {"align_components": True}),
    ("selection lr", "selection network lr x10", {}, {"selection_lr_factor": 10.0}),
    ("capacity", "no shared bottom MLP (hidden_units=())", {"hidden_units": ()}, {}),
    (
        "capacity",
        "linear components on the bottom (component_units=())",
        {"component_units": ()},
        {},
    ),
    (
        "capacity",
        "linear components, no bottom MLP",
        {"hidden_units": (), "component_units": ()},
        {},
    ),
    ("early stopping", "patience=10", {"patience": 10}, {}),
]


class _Diagnostic(OptDistRegressor):
    """OptDistRegressor with the two options the estimator does not expose."""

    selection_lr_factor_: float = 1.0
    align_components_: bool = False

    def _optimizer_kwargs(self) -> dict[str, Any]:
        kwargs = super()._optimizer_kwargs()
        if self.selection_lr_factor_ != 1.0:
            # skorch parameter groups: the selection network (MLP + head) gets its own lr
            lr = float(self.learning_rate) * self.selection_lr_factor_
            kwargs["optimizer__param_groups"] = [("selection*", {"lr": lr})]
        return kwargs

    def _build_criterion(self, info: Any) -> Any:
        criterion = super()._build_criterion(info)
        criterion.align_components = self.align_components_
        return criterion


class _EpochProbe(Callback):
    """Test-set ARI of the selection after every epoch (shared, not deep-copied, by fit)."""

    def __init__(self, model: OptDistRegressor, X: pd.DataFrame, groups: np.ndarray) -> None:
        self.model, self.X, self.groups = model, X, groups
        self.ari: list[float] = []

    def __deepcopy__(self, memo: dict) -> _EpochProbe:
        return self

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:
        tensors = self.model.encoder_.transform_tensors(self.model._validate_predict_input(self.X))
        was_training = net.module_.training
        net.module_.eval()
        with torch.no_grad():
            logits = net.module_(**tensors)["selection_logits"]
        net.module_.train(was_training)
        self.ari.append(adjusted_rand_score(self.groups, logits.argmax(dim=0).numpy()))


def _one_fit(seed: int, data: dict, params: dict, options: dict) -> dict[str, float]:
    X, y, g = make_ltv(random_state=seed, return_groups=True, **data)
    X_tr, X_te, y_tr, y_te, _, g_te = train_test_split(X, y, g, test_size=0.3, random_state=0)
    cls = type(
        "Diagnostic",
        (_Diagnostic,),
        {
            "selection_lr_factor_": options.get("selection_lr_factor", 1.0),
            "align_components_": options.get("align_components", False),
        },
    )
    model = cls(random_state=seed, **params)
    probe = _EpochProbe(model, X_te, g_te)
    model.set_params(callbacks=[probe])
    t0 = time.process_time()
    model.fit(X_tr, y_tr)
    secs = time.process_time() - t0
    sel = model.predict_component(X_te)
    alpha = model.predict_component_proba(X_te)
    mu = model._forward_outputs(X_te, lambda out: out["mu"].double().T)
    share = np.bincount(sel, minlength=model.n_components) / len(sel)
    spenders = y_te > 0
    level = [
        np.log(y_te[spenders & (sel == k)]).mean()
        for k in np.flatnonzero(share >= 0.05)
        if (spenders & (sel == k)).any()
    ]
    return {
        "ari": adjusted_rand_score(g_te, sel),
        "peak": float(np.max(probe.ari)),
        "peak_epoch": int(np.argmax(probe.ari)) + 1,
        "top": float(share.max()),
        "mu_range": float(np.mean(mu.max(axis=1) - mu.min(axis=1))),
        "alpha_max": float(alpha.max(axis=1).mean()),
        "spend_gap": float(np.ptp(level)) if level else 0.0,
        "epochs": model.n_iter_,
        "secs": secs,
    }


def run(data_name: str, seeds: int, only: str | None) -> pd.DataFrame:
    rows = []
    for section, label, params, options in VARIANTS:
        if only is not None and section != only:
            continue
        fits = pd.DataFrame([_one_fit(s, DATA[data_name], params, options) for s in range(seeds)])
        ari = fits["ari"]
        rows.append(
            {
                "factor": section,
                "variant": label,
                "ARI": f"{ari.mean():.2f} ± {ari.std(ddof=1) if seeds > 1 else 0.0:.2f}",
                "ARI min": f"{ari.min():.2f}",
                "ARI ≥ 0.3": f"{int((ari >= 0.3).sum())}/{seeds}",
                "peak ARI (epoch)": f"{fits['peak'].mean():.2f} ({fits['peak_epoch'].mean():.0f})",
                "largest share": f"{fits['top'].mean():.0%} (max {fits['top'].max():.0%})",
                "SDN mu range": f"{fits['mu_range'].mean():.2f}",
                "alpha max": f"{fits['alpha_max'].mean():.2f}",
                "spend gap": f"{fits['spend_gap'].mean():.2f}",
                "epochs": f"{fits['epochs'].mean():.0f}",
                "fit CPU s": f"{fits['secs'].mean():.1f}",
            }
        )
        print(
            f"  {label}: ARI per seed {', '.join(f'{a:.2f}' for a in ari)}; largest share "
            f"{', '.join(f'{t:.2f}' for t in fits['top'])}",
            flush=True,
        )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--data", choices=list(DATA), default="separated")
    parser.add_argument(
        "--only",
        choices=sorted({v[0] for v in VARIANTS}),
        default=None,
        help="run one factor's rows only",
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"make_ltv({DATA[args.data]}), seeds 0..{args.seeds - 1}:")
    print(run(args.data, args.seeds, args.only).to_markdown(index=False))


if __name__ == "__main__":
    main()
