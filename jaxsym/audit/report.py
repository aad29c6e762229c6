"""The audit's report: printed tables, the recommendation paragraph, ``report.json``.

``report.json`` schema, version :data:`SCHEMA_VERSION` (a JSON object; NaN and
infinities are written as ``null``; arrays are lists; element indices refer to
the order of the given group, element 0 being the identity):

* ``schema_version`` (str), ``jaxsym_version`` (str), ``command`` (list of str).
* ``recommendation`` — the answer:
  ``symmetry`` (str: the recommended set's name: the group's name, ``"none"``,
  or ``"<group>{i,j,...}"`` for a subgroup), ``elements`` (list of int: its
  element indices), ``t_star`` (float: the dial level, 0 = exact symmetry, 1 =
  none), ``eps_star`` (float: the model's equivariance error ``ε* = t* d_2(f̂)``
  in ``d_2`` units, docs/theory.md §8), ``strictness`` (``"exact"``, ``"soft"`` or
  ``"none"``), ``basis`` (``"predictive"``: from the cross-fitted risk of the
  dial; ``"predictive (partial average)"`` for a set that is not a group, whose
  average ``Q_ν`` is not a projection), ``text`` (str: the paragraph).
* ``data`` — ``source``, ``task``, ``num_train``, ``num_test``, ``test_source``
  (``"file"`` or ``"split"``), ``input_shape``, ``output_dim``, ``classes``,
  ``input_scale`` (the scalar the inputs were divided by).
* ``group`` — ``name``, ``size``, ``is_group``, ``elements`` (labels).
* ``profile`` — the kNN data profile (docs/theory.md §6), per element: ``profile``,
  ``excess`` (squared units: estimates ``E_x e_{f*}(x, g)²``), ``stderr``,
  ``matched_fraction``, ``rms`` (``√max(excess, 0)``, null if unmatched),
  ``rms_filled`` (unmatched elements at the unrelated-labels level); scalars
  ``baseline`` and ``radius``.
* ``stabilizers`` — list of ``{tolerance, elements, measure}`` (docs/theory.md §2,
  on ``rms_filled``).
* ``candidates`` — list of ``{name, elements, size}``, nested, smallest first.
* ``covering`` — ``radii`` (R) and ``counts`` (K × R, one row per candidate):
  greedy orbit covering numbers of the training inputs (docs/theory.md §4).
* ``bound`` — estimated constants (``constants``, ``estimated: true``), ``eta``
  (``d_2`` of the data), the curve ``eps``, ``approximation``,
  ``generalization``, ``total`` and its minimizer ``eps_star``; ``subset`` (the
  bound-optimal subgroup: ``symmetry``, ``elements``, per-candidate
  ``approximation``, ``generalization``, ``total``) or null.
* ``predictive`` — one entry per candidate of size > 1: ``symmetry``,
  ``candidate`` (index), ``t`` and ``risk`` (the cross-fitted curve), ``t_star``,
  ``t_star_cv``, ``eps_star``, ``eta``, ``distance``, ``alignment``,
  ``anti_energy``, ``symmetric_risk``.
* ``training`` — list of ``{method, available, accuracy, ece, mse, note}``.
* ``settings``, ``seed``, ``quick``, ``timings`` (wall seconds per step, and
  ``<step>_cpu`` process CPU seconds; ``total`` and ``total_cpu`` from the
  start of the command to the report, before the plots), ``plots``
  (file names).

Files are written atomically (:func:`jaxsym.audit.output.write_atomically`).
"""

from __future__ import annotations

import json
import math
import textwrap
from typing import Any

import numpy as np

__all__ = [
    "SCHEMA_VERSION",
    "format_tables",
    "recommendation_text",
    "to_json",
]

SCHEMA_VERSION = "1.0"


def _plain(value: Any) -> Any:
    """NumPy and JAX values as JSON values (non-finite floats as ``None``)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "__array__") and not isinstance(value, (str, bytes)):
        array = np.asarray(value)
        if array.ndim:
            return [_plain(v) for v in array.tolist()]
        value = array.item()
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def to_json(results: dict[str, Any], *, command: list[str], version: str) -> str:
    """The ``report.json`` text (see the module docstring for the schema)."""
    document = {"schema_version": SCHEMA_VERSION, "jaxsym_version": version, "command": command}
    document.update(results)
    return json.dumps(_plain(document), indent=1, ensure_ascii=False)


# ----------------------------------------------------------------------------- tables


def _num(value, spec: str = ".3g") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return format(float(value), spec)


def _table(title: str, header: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    lines = [title, "  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def _members(elements) -> str:
    elements = [int(k) for k in elements]
    text = "{" + ",".join(map(str, elements)) + "}"
    return text if len(text) <= 40 else text[:37] + "…}"


def format_tables(results: dict[str, Any]) -> str:
    """The seven steps as plain-text tables."""
    data, group, profile = results["data"], results["group"], results["profile"]
    out = [
        f"jaxsym audit — {data['source']}: {data['num_train']} training / {data['num_test']} "
        f"test examples ({data['test_source']}), input shape {tuple(data['input_shape'])}, "
        f"{data['task']} ({data['output_dim']} outputs); group {group['name']} "
        f"({group['size']} elements{'' if group['is_group'] else ', not a group'})",
    ]
    rows = [
        [
            str(k),
            group["elements"][k],
            _num(profile["profile"][k]),
            _num(profile["excess"][k]),
            _num(profile["stderr"][k]),
            _num(profile["rms"][k]),
            _num(profile["matched_fraction"][k], ".2f"),
        ]
        for k in range(group["size"])
    ]
    out.append(
        _table(
            f"\n1. Data equivariance profile (kNN label consistency, docs/theory.md §6; "
            f"{'one-hot labels, ' if data['task'] == 'classification' else ''}squared units; "
            f"baseline {_num(profile['baseline'])}, radius {_num(profile['radius'])})",
            ["k", "element", "mean ‖Δy‖²", "excess", "± stderr", "E_2 (RMS)", "matched"],
            rows,
        )
    )
    rows = [
        [_num(s["tolerance"]), f"{s['measure']:.3f}", _members(s["elements"])]
        for s in results["stabilizers"]
    ]
    out.append(
        _table(
            "\n2. ε-stabilizers of the data, Stab_ε = {g : E_2(g) ≤ ε} (docs/theory.md §2)",
            ["ε", "λ(Stab_ε)", "elements"],
            rows,
        )
    )
    radii, counts = (
        np.asarray(results["covering"]["radii"]),
        np.asarray(results["covering"]["counts"]),
    )
    picks = np.unique(np.linspace(0, len(radii) - 1, 6).round().astype(int))
    rows = [
        [c["name"], str(c["size"])] + [str(int(counts[k, j])) for j in picks]
        for k, c in enumerate(results["candidates"])
    ]
    out.append(
        _table(
            "\n3. Orbit covering numbers N_S(X_n, r) of the training inputs "
            "(greedy, docs/theory.md §4)",
            ["candidate S", "|S|"] + [f"r={radii[j]:.3g}" for j in picks],
            rows,
        )
    )
    bound = results["bound"]
    constants = bound["constants"]
    eps, total = np.asarray(bound["eps"]), np.asarray(bound["total"])
    picks = np.unique(np.linspace(0, len(eps) - 1, 7).round().astype(int))
    rows = [
        [
            _num(eps[j]),
            _num(bound["approximation"][j]),
            _num(bound["generalization"][j]),
            _num(total[j]),
        ]
        for j in picks
    ]
    note = (
        f"\n4. Bound σ²+A(ε)+Gen_n(ε) for {group['name']} (d_2 class, docs/theory.md §4–5), "
        f"estimated constants L={constants['lipschitz']:.3g}, M={constants['output_bound']:.3g}, "
        f"B={constants['loss_range']:.3g}; η_2={bound['eta']:.3g}; bound-optimal ε*="
        f"{bound['eps_star']:.3g}"
    )
    out.append(_table(note, ["ε", "A(ε)", "Gen_n(ε)", "total"], rows))
    subset = bound.get("subset")
    if subset is not None:
        rows = [
            [
                c["name"],
                _num(subset["approximation"][k]),
                _num(subset["generalization"][k]),
                _num(subset["total"][k]),
            ]
            for k, c in enumerate(results["candidates"])
        ]
        out.append(
            _table(
                f"   exactly invariant candidates (bound-optimal: {subset['symmetry']})",
                ["candidate", "A", "Gen_n", "total"],
                rows,
            )
        )
    rows = [
        [
            p["symmetry"],
            _num(p["risk"][0]),
            _num(p["risk"][-1]),
            _num(p["t_star"], ".2f"),
            _num(p["eps_star"]),
            _num(p["distance"]),
            _num(p["eta"]),
        ]
        for p in results["predictive"]
    ]
    out.append(
        _table(
            "\n5. Predicted best level (cross-fitted random-features ridge, docs/theory.md §8)",
            ["candidate H", "risk t=0", "risk t=1", "t*", "ε*", "d_2(f̂)", "η̂"],
            rows or [["(needs a group)", "", "", "", "", "", ""]],
        )
    )
    classification = data["task"] == "classification"
    rows = [
        [r["method"]]
        + (
            [_num(r["accuracy"], ".3f"), _num(r["ece"], ".3f")]
            if classification
            else [_num(r["mse"], ".4g")]
        )
        + [r["note"]]
        for r in results["training"]
    ]
    out.append(
        _table(
            "\n6. Training sweep (2-layer MLP, adam, test split)",
            ["method"] + (["accuracy", "ECE"] if classification else ["MSE"]) + ["note"],
            rows,
        )
    )
    out.append("\n7. Recommendation\n" + textwrap.fill(results["recommendation"]["text"], 88))
    return "\n".join(out)


# ----------------------------------------------------------------------------- paragraph


def recommendation_text(results: dict[str, Any]) -> str:
    """The one-paragraph recommendation, with the numbers behind it."""
    rec, group = results["recommendation"], results["group"]
    predictive = {p["candidate"]: p for p in results["predictive"]}
    size = len(rec["elements"])
    parts = []
    if rec["strictness"] == "none":
        full = predictive[max(predictive)] if predictive else None
        parts.append(
            f"Do not build {group['name']} (or any of its candidate "
            f"{'subgroups' if group['is_group'] else 'subsets'}) into the model."
        )
        if full is not None:
            parts.append(
                f"The data breaks it: the predicted best dial level on {full['symmetry']} is "
                f"t* = {full['t_star']:.2f} (1 = no symmetry), and exact symmetry raises the "
                f"cross-fitted risk from {full['risk'][-1]:.3g} to {full['risk'][0]:.3g}."
            )
    else:
        what = (
            f"the full group {group['name']}"
            if size == group["size"]
            else f"{rec['symmetry']} ({size} of the {group['size']} elements)"
        )
        how = (
            (
                "exactly (average over it, Q_H f)"
                if group["is_group"]
                else "(average over it, Q_ν f)"
            )
            if rec["strictness"] == "exact"
            else f"softly, at dial level t* = {rec['t_star']:.2f}, i.e. an equivariance error "
            f"budget ε* = {rec['eps_star']:.3g} (d_2 units)"
        )
        parts.append(f"Build in {what} {how}.")
        choice = [p for p in predictive.values() if p["symmetry"] == rec["symmetry"]]
        if choice:
            p = choice[0]
            best = p["risk"][int(np.argmin(p["risk"]))]
            parts.append(
                f"Cross-fitted risk of the dialed random-features model: {best:.3g} at the best "
                f"level vs {p['risk'][-1]:.3g} without symmetry and {p['risk'][0]:.3g} with "
                f"exact symmetry (t* = {p['t_star']:.2f})."
            )
    if not group["is_group"]:
        parts.append(
            f"{group['name']} is not a group: averaging over it (Q_ν) is only approximately "
            "equivariant, and t* is the cross-fitted minimizer without the bias correction "
            "(docs/theory.md §3, §8)."
        )
    stabs = results["stabilizers"]
    if stabs:
        s = stabs[1] if len(stabs) > 1 else stabs[0]
        parts.append(
            f"The data's ε-stabilizer at ε = {s['tolerance']:.3g} keeps "
            f"{len(s['elements'])} of {group['size']} elements (λ = {s['measure']:.2f})."
        )
    subset = results["bound"].get("subset")
    if subset is not None:
        constants = results["bound"]["constants"]
        best = float(np.min(subset["total"]))
        vacuous = " (vacuous: above the loss range)" if best >= constants["loss_range"] else ""
        parts.append(
            f"The certified bound with estimated constants prefers {subset['symmetry']} "
            f"(total {best:.3g}{vacuous}, loss range B = {constants['loss_range']:.3g})."
        )
    rows = [r for r in results["training"] if r["available"]]
    if rows:
        key = "accuracy" if results["data"]["task"] == "classification" else "mse"
        parts.append(
            "Training sweep on the test split: "
            + "; ".join(f"{r['method']} {key} {_num(r[key], '.3g')}" for r in rows)
            + "."
        )
    return " ".join(parts)


# ----------------------------------------------------------------------------- files
