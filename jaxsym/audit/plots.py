"""The audit's PNG plots (matplotlib, Agg backend: no display needed).

* ``profile.png`` — the data's RMS profile ``E_2(g)`` per element (bars, with
  standard errors; unmatched elements hatched) and the matched fraction;
* ``bound.png`` — the theory bound ``Gen_n(S, ε = 0)`` (docs/theory.md §4,
  estimated constants) for ``{e} ⊂ screened set ⊂ G`` against the loss range;
  marked vacuous where it is (it decides nothing, so nothing is marked optimal);
* ``risk.png`` — left: the screen's cross-fitted risk vs the dial level t for
  each candidate set, with standard errors and the screened option marked; right:
  each trained model's held-out certificate against its certify-split and test
  error, the recommended one marked;
* ``covering.png`` — orbit covering numbers vs radius, one line per candidate.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = ["PLOTS", "write_plots"]

PLOTS = ("profile.png", "bound.png", "risk.png", "covering.png")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _profile(plt, results: dict[str, Any]):
    profile, group = results["profile"], results["group"]
    rms = np.asarray(profile["rms"], np.float64)
    excess = np.asarray(profile["excess"], np.float64)
    stderr = np.asarray(profile["stderr"], np.float64)
    error = np.where(np.isfinite(stderr), stderr, 0.0)  # already in RMS units
    unmatched = ~np.isfinite(excess)
    filled = np.asarray(profile["rms_filled"], np.float64)
    fig, (top, bottom) = plt.subplots(
        2,
        1,
        figsize=(max(6, 0.45 * group["size"] + 2), 5.5),
        sharex=True,
        gridspec_kw={"height_ratios": [3, 1]},
    )
    index = np.arange(group["size"])
    top.bar(
        index[~unmatched],
        rms[~unmatched],
        yerr=error[~unmatched],
        color="tab:blue",
        capsize=2,
        label="E_2(g) (kNN excess, RMS)",
    )
    if unmatched.any():
        top.bar(
            index[unmatched],
            filled[unmatched],
            color="none",
            edgecolor="tab:red",
            hatch="//",
            label="no match (unrelated-labels level)",
        )
    top.set_ylabel("RMS label change E_2(g)")
    top.set_title(f"Data equivariance profile under {group['name']} (kNN, docs/theory.md §6)")
    top.set_ylim(0, 1.3 * max(float(np.nanmax(np.concatenate([rms + error, filled]))), 1e-6))
    top.legend(fontsize=8, loc="upper left", ncol=2)
    bottom.bar(index, profile["matched_fraction"], color="tab:gray")
    bottom.set_ylim(0, 1)
    bottom.set_ylabel("matched")
    bottom.set_xticks(index)
    bottom.set_xticklabels(group["elements"], rotation=60, ha="right", fontsize=7)
    fig.tight_layout()
    return fig


def _bound(plt, results: dict[str, Any]):
    bound = results["bound"]
    total = np.asarray(bound["total"], np.float64)
    loss_range = bound["constants"]["loss_range"]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    index = np.arange(len(total))
    ax.bar(index, total, color="tab:gray", label="Gen_n(S, ε = 0), estimated constants")
    ax.axhline(loss_range, color="tab:red", lw=1, ls="-.", label=f"loss range B = {loss_range:.3g}")
    ax.set_xticks(index)
    ax.set_xticklabels(bound["symmetry"], fontsize=8)
    ax.set_ylim(0, 1.2 * max(float(np.nanmax(total)), loss_range))
    if bound["vacuous"]:
        ax.text(0.5, 0.9, f"vacuous at n = {bound['n']}: no information about the choice",
                transform=ax.transAxes, ha="center", color="tab:red")  # fmt: skip
    ax.set_ylabel("bound on R − R̂_n")
    ax.set_title("The theory bound (covering numbers, docs/theory.md §4)")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def _risk(plt, results: dict[str, Any]):
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4))
    screen, rec = results["screen"], results["recommendation"]
    for entry in screen["sets"]:
        if entry["size"] == 1:
            left.plot([1.0], entry["risk"][-1:], "ks", label="none (t = 1)")
            continue
        t, risk = np.asarray(entry["t"], np.float64), np.asarray(entry["risk"], np.float64)
        stderr = np.asarray(entry["stderr"], np.float64)
        left.errorbar(t, risk, yerr=stderr, capsize=2, marker=".", label=entry["symmetry"])
    left.plot([screen["t_star"]], [screen["risk"]], "k*", ms=12, label="screened option")
    left.set_xlabel("dial level t (0 = exact Q_H f, 1 = unconstrained)")
    left.set_ylabel("cross-fitted risk ± fold SE (estimate)")
    left.set_title("Screen (training split, docs/theory.md §8–9)")
    left.legend(fontsize=7)
    rows = [r for r in results["training"] if r["available"]]
    index = np.arange(len(rows))
    bounds = [r["certificate"]["bound"] for r in rows]
    right.bar(index, bounds, color="tab:blue", alpha=0.6, label="held-out certificate")
    right.plot(index, [r["certificate"]["empirical"] for r in rows], "ko", label="certify split")
    if any(r.get("error") is not None for r in rows):
        errors = [np.nan if r.get("error") is None else r["error"] for r in rows]
        right.plot(index, errors, "r^", label="test split")
    chosen = [k for k, r in enumerate(rows) if r["method"] == rec["method"]]
    right.bar(chosen, [bounds[k] for k in chosen], fill=False, edgecolor="k", lw=2,
              label="recommended")  # fmt: skip
    right.set_xticks(index)
    right.set_xticklabels([r["method"] for r in rows], rotation=20, ha="right", fontsize=7)
    right.set_ylabel("error" if results["data"]["task"] == "classification" else "squared error")
    delta = results["settings"]["delta"]
    right.set_title(f"Certificates (prob. ≥ {1 - delta:.0%}, union over {len(rows)} models)")
    right.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _covering(plt, results: dict[str, Any]):
    radii = np.asarray(results["covering"]["radii"])
    counts = np.asarray(results["covering"]["counts"])
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    styles = ("-", "--", "-.", ":")
    last = max(1, len(results["candidates"]) - 1)
    for k, candidate in enumerate(results["candidates"]):
        ax.step(
            radii,
            counts[k],
            styles[k % len(styles)],
            lw=2.6 - 1.6 * k / last,
            where="post",
            label=f"{candidate['name']} (|S| = {candidate['size']})",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("radius r (rescaled input units)")
    ax.set_ylabel("N_S(X_n, r)")
    ax.set_title(f"Orbit covering numbers, n = {results['data']['num_train']} (docs/theory.md §4)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def write_plots(results: dict[str, Any], directory: str) -> list[str]:
    """Write the four PNGs into ``directory``; returns their file names."""
    plt = _pyplot()
    for name, draw in zip(PLOTS, (_profile, _bound, _risk, _covering), strict=True):
        fig = draw(plt, results)
        fig.savefig(os.path.join(directory, name), dpi=110)
        plt.close(fig)
    return list(PLOTS)
