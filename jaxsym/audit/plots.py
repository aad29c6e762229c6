"""The audit's PNG plots (matplotlib, Agg backend: no display needed).

* ``profile.png`` — the data's RMS profile ``E_2(g)`` per element (bars, with
  standard errors; unmatched elements hatched) and the matched fraction;
* ``bound.png`` — the estimated bound ``σ² + A(ε) + Gen_n(ε)`` and its two terms
  vs ε, with the bound-optimal ε* and the loss range;
* ``risk.png`` — the cross-fitted risk vs the dial level t for each candidate,
  with each t* marked;
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
    # error bar of √excess from the stderr of excess (delta method, capped at the value)
    error = np.where(rms > 0, stderr / (2 * np.maximum(rms, 1e-12)), np.sqrt(np.abs(stderr)))
    error = np.where(np.isfinite(error), error, 0.0)
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
        label="E_2(g) = √max(excess, 0)",
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
    eps = np.asarray(bound["eps"])
    total = np.asarray(bound["total"], np.float64)
    loss_range = bound["constants"]["loss_range"]
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(6.4, 5.2), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    top.plot(eps, total, "k-", lw=2, marker=".", label="total σ² + A(ε) + Gen_n(ε)")
    top.plot(eps, bound["generalization"], ":", color="tab:orange", lw=2, label="Gen_n(ε)")
    top.axhline(
        loss_range, color="tab:gray", lw=0.8, ls="-.", label=f"loss range B = {loss_range:.3g}"
    )
    top.set_ylim(0, 1.15 * max(float(np.nanmax(total)), loss_range))
    if np.nanmin(total) >= loss_range:
        top.text(0.5, 0.5, "vacuous at this n: above the loss range", transform=top.transAxes,
                 ha="center", color="tab:red")  # fmt: skip
    top.set_ylabel("risk bound")
    top.set_title(
        f"Bound vs ε for {results['group']['name']}, estimated constants (docs/theory.md §4–5)"
    )
    bottom.plot(eps, bound["approximation"], "--", marker=".", label="A(ε) = (η_2 − ε)₊²")
    bottom.set_ylabel("approximation")
    bottom.set_xlabel("model equivariance error ε (d_2 units)")
    for ax in (top, bottom):
        ax.axvline(bound["eps_star"], color="tab:red", lw=1,
                   label=f"bound-optimal ε* = {bound['eps_star']:.3g}")  # fmt: skip
    top.legend(fontsize=8, loc="lower right")
    bottom.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def _risk(plt, results: dict[str, Any]):
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    rec = results["recommendation"]
    if not results["predictive"]:
        ax.text(0.5, 0.5, "needs a group (exact Q_G)", ha="center", va="center")
    for p in results["predictive"]:
        t, risk = np.asarray(p["t"]), np.asarray(p["risk"])
        (line,) = ax.plot(t, risk, label=f"{p['symmetry']}: t* = {p['t_star']:.2f}")
        t_star = float(p["t_star"])
        ax.plot([t_star], [np.interp(t_star, t, risk)], "o", color=line.get_color(), ms=7)
        ax.axvline(t_star, color=line.get_color(), lw=0.8, ls=":")
    ax.set_xlabel("symmetry level t (0 = exact Q_H f, 1 = unconstrained)")
    ax.set_ylabel("cross-fitted risk (squared loss)")
    ax.set_title(
        f"Risk vs symmetry level — recommended: {rec['symmetry']}, t* = {rec['t_star']:.2f}"
    )
    ax.legend(fontsize=8)
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
