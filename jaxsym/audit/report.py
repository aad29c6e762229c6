"""The audit's report: printed tables, the recommendation paragraph, ``report.json``.

The ``report.json`` schema, version :data:`SCHEMA_VERSION`, is the JSON Schema
(draft 2020-12) file ``jaxsym/audit/report.schema.json``, shipped with the
package (:func:`schema` loads it; its ``$id`` and ``schema_version`` carry the
same version). That file is the source of truth: it lists every key, its type,
which keys are required, and closes every object whose keys are fixed
(``additionalProperties: false``), so a key it does not describe is a schema
change; the tests validate every report they write against it. In summary
(a JSON object; NaN and infinities are written as ``null``; arrays are lists;
element indices refer to the order of the given group, element 0 being the
identity):

* ``schema_version``, ``jaxsym_version``, ``command``;
* ``recommendation`` — the answer, decided by held-out certificate
  (docs/theory.md §9): the recommended set, ``t_star``, ``strictness``, the
  training row it is (``method``), its ``certificate`` (``{bound, empirical, n,
  delta, options, method}``: with probability ≥ 1 − delta the model's mean loss
  on new data is at most ``bound``), the screen's pick, the tie, and ``text``
  (the paragraph);
* ``data``, ``model`` (the reference model), ``group``;
* ``profile`` (the kNN data profile, §6), ``stabilizers`` (ε-stabilizers, §2),
  ``screen`` (:func:`jaxsym.choose_symmetry` on the training split, §8–9);
* ``training`` (one row per trained option, with its certificate and test
  metrics), ``loss`` (the certified loss and its range B);
* ``candidates``, ``covering``, ``bound`` (the theory bound of §4: reported,
  decides nothing);
* ``settings`` (the run's sizes, δ and fold count), ``seed``, ``quick``,
  ``timings`` (wall and CPU seconds per step), ``plots`` (file names).

Files are written atomically (:func:`jaxsym.audit.output.write_atomically`).
"""

from __future__ import annotations

import json
import math
import textwrap
from typing import Any

import numpy as np

__all__ = [
    "SCHEMA_FILE",
    "SCHEMA_VERSION",
    "format_tables",
    "recommendation_text",
    "schema",
    "to_json",
]

SCHEMA_VERSION = "3.0"  # = the version in report.schema.json's $id and schema_version const
SCHEMA_FILE = "report.schema.json"
"""The schema's file name in the :mod:`jaxsym.audit` package (package data)."""


def schema() -> dict[str, Any]:
    """The ``report.json`` JSON Schema (draft 2020-12), read from :data:`SCHEMA_FILE`."""
    from importlib import resources

    text = resources.files("jaxsym.audit").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    return json.loads(text)


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
    """The ``report.json`` text, ``results`` under the schema's header keys.

    The document follows :data:`SCHEMA_FILE` (:func:`schema`) when ``results`` is
    the pipeline's dict completed as the CLI completes it (the recommendation's
    ``text``, ``plots``, the ``total`` timings).
    """
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


def _members(labels) -> str:
    text = "{" + ", ".join(map(str, labels)) + "}"
    return text if len(text) <= 60 else text[:57] + "…}"


def _percent(delta) -> str:
    return f"{100 * (1 - float(delta)):.4g}%"


def _certified(rec: dict[str, Any], task: str, loss_range: float | None = None) -> str:
    """ "With probability ≥ 95%, its error on new data is at most 0.04" and the tightness."""
    cert = rec["certificate"]
    what = "error rate" if task == "classification" else "mean squared error"
    text = (
        f"With probability ≥ {_percent(cert['delta'])}, its {what} on new data is at most "
        f"{cert['bound']:.3g} (held-out certificate on n = {cert['n']} examples used neither "
        f"to train nor to choose, union bound over the K = {cert['options']} models trained; "
        f"{'exact binomial tail' if cert['method'] == 'binomial' else 'Chernoff kl inversion'}"
        f", measured {cert['empirical']:.3g} there)."
    )
    if rec.get("test_error") is not None:
        text += f" On the test split it measured {rec['test_error']:.3g}."
    if loss_range is not None and cert["bound"] > 5 * max(cert["empirical"], 1e-12):
        text += (
            f" The certificate is loose here: at a small held-out error it scales like "
            f"B · ln(K/δ) / n with the loss range B = {loss_range:.3g} and n = {cert['n']}; "
            "more held-out data tightens it."
        )
    return text


def _standing(rec: dict[str, Any]) -> str:
    """ "the lowest held-out certificate", or the tie within noise that it won."""
    lowest = rec.get("lowest_certificate")
    if lowest is None or lowest["method"] == rec["method"]:
        return "the lowest held-out certificate"
    why = (
        "the screen's choice among the tied models"
        if rec.get("agrees_with_screen")
        else "the most symmetric of the tied models"
    )
    return (
        f"a held-out certificate tied within noise (two paired standard errors of the certify "
        f"losses) with the lowest, {lowest['method']}'s {lowest['bound']:.3g}, and is {why}"
    )


def _theory_text(results: dict[str, Any]) -> str:
    bound = results["bound"]
    loss_range = bound["constants"]["loss_range"]
    if bound["vacuous"]:
        return (
            f"The theory bound (covering numbers, docs/theory.md §4, estimated constants) is "
            f"vacuous at n = {bound['n']}: no information about the choice (smallest "
            f"Gen_n = {min(bound['total']):.3g} ≥ loss range B = {loss_range:.3g})."
        )
    parts = ", ".join(
        f"{name} {value:.3g}" for name, value in zip(bound["symmetry"], bound["total"], strict=True)
    )
    return (
        f"The theory bound (covering numbers, docs/theory.md §4) on R − R̂_n at n = {bound['n']}: "
        f"{parts} (loss range B = {loss_range:.3g}); its constants are estimated, so it is an "
        "estimate, and it does not decide."
    )


def format_tables(results: dict[str, Any]) -> str:
    """The steps as plain-text tables."""
    data, group, profile = results["data"], results["group"], results["profile"]
    out = [
        f"jaxsym audit — {data['source']}: {data['num_train']} training / "
        f"{data['num_certify']} certify / {data['num_test']} test examples "
        f"(test: {data['test_source']}), input shape {tuple(data['input_shape'])}, "
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
            f"{'one-hot labels, ' if data['task'] == 'classification' else ''}RMS units; "
            f"baseline {_num(profile['baseline'])}, radius {_num(profile['radius'])})",
            ["k", "element", "RMS ‖Δy‖", "excess", "± stderr", "E_2 (RMS)", "matched"],
            rows,
        )
    )
    rows = [
        [_num(s["tolerance"]), f"{s['measure']:.3f}", _members(s["labels"])]
        for s in results["stabilizers"]
    ]
    out.append(
        _table(
            "\n2. ε-stabilizers of the data, Stab_ε = {g : E_2(g) ≤ ε} (docs/theory.md §2)",
            ["ε", "λ(Stab_ε)", "elements"],
            rows,
        )
    )
    screen = results["screen"]
    rows = []
    for entry in screen["sets"]:
        risk = np.asarray(entry["risk"], np.float64)
        best = int(np.argmin(risk))
        mark = "←" if entry["symmetry"] == screen["symmetry"] else ""
        rows.append(
            [entry["symmetry"], str(entry["size"]), _num(risk[0], ".4g"),
             _num(entry["stderr"][0], ".2g"), _num(entry["t"][best], ".2f"),
             _num(risk[best], ".4g"), mark]
        )  # fmt: skip
    out.append(
        _table(
            "\n3. Screen: cross-fitted "
            f"{'error rate' if screen['loss'] == 'zero_one' else 'squared error'} of the "
            "reference model trained at each (set H, level t) on the training split "
            f"(estimates, docs/theory.md §8b–9; {screen['num_options']} options; "
            "← = the screened set)",
            ["set H", "|H|", "risk t=0", "± SE", "best t", "risk", ""],
            rows,
        )
        + "\n   "
        + textwrap.fill(screen["reason"], 85, subsequent_indent="   ")
    )
    classification = data["task"] == "classification"
    rows = []
    for r in results["training"]:
        cert = r.get("certificate") or {}
        rows.append(
            [r["method"], _num(cert.get("bound"), ".3g"), _num(cert.get("empirical"), ".3g")]
            + (
                [_num(r["error"], ".3f"), _num(r["ece"], ".3f")]
                if classification
                else [_num(r["mse"], ".4g")]
            )
            + [r["note"]]
        )
    loss = results["loss"]
    out.append(
        _table(
            f"\n4. The reference model ({results['model']['description']}) trained in each "
            f"candidate's class on the training split, and held-out certificates on the certify "
            f"split ({loss['name']}; δ = "
            f"{results['settings']['delta']}, union over the models trained)",
            [
                "method",
                "certificate",
                "certify",
                *(["test error", "ECE"] if classification else ["test MSE"]),
                "note",
            ],
            rows,
        )
    )
    radii, counts = (
        np.asarray(results["covering"]["radii"]),
        np.asarray(results["covering"]["counts"]),
    )
    picks = np.unique(np.linspace(0, len(radii) - 1, 6).round().astype(int))
    bound = results["bound"]
    rows = [
        [c["name"], str(c["size"]), _num(bound["total"][k])]
        + [str(int(counts[k, j])) for j in picks]
        for k, c in enumerate(results["candidates"])
    ]
    constants = bound["constants"]
    out.append(
        _table(
            f"\n5. The theory bound Gen_n(S, ε = 0) from orbit covering numbers N_S(X_n, r) "
            f"(docs/theory.md §4; estimated constants L={constants['lipschitz']:.3g}, "
            f"M={constants['output_bound']:.3g}, B={constants['loss_range']:.3g})",
            ["set S", "|S|", "Gen_n"] + [f"N(r={radii[j]:.3g})" for j in picks],
            rows,
        )
        + "\n   "
        + textwrap.fill(_theory_text(results), 85, subsequent_indent="   ")
    )
    out.append("\n6. Recommendation\n" + textwrap.fill(results["recommendation"]["text"], 88))
    return "\n".join(out)


# ----------------------------------------------------------------------------- paragraph


def recommendation_text(results: dict[str, Any]) -> str:
    """The one-paragraph recommendation, with its certificate and the numbers behind it."""
    rec, group, data = results["recommendation"], results["group"], results["data"]
    size = len(rec["elements"])
    parts = []
    if rec["strictness"] == "none":
        parts.append(
            f"Do not build {group['name']} or part of it into the model: the model without "
            f"symmetry has {_standing(rec)} among the models trained."
        )
    else:
        what = (
            f"the full {'group' if group['is_group'] else 'set'} {group['name']}"
            if size == group["size"]
            else f"{rec['symmetry']} ({size} of the {group['size']} elements)"
        )
        if rec["strictness"] == "exact":
            average = "Q_G f" if size == group["size"] else "Q_H f"
            how = f"exactly (average over it, {average})"
            if not group["is_group"]:
                how = "(average over it, Q_ν f)"
        else:
            how = (
                f"softly, at dial level t* = {rec['t_star']:.2f} (the model trained in that "
                f"class has d_2 = {rec['eps_star']:.3g}; for your own network, "
                "jaxsym.bound_regularizer(choice) trains to that budget)"
            )
        parts.append(f"Build in {what} {how}: it has {_standing(rec)}.")
    parts.append(_certified(rec, data["task"], results.get("loss", {}).get("loss_range")))
    others = [
        f"{r['method']} {r['certificate']['bound']:.3g}"
        for r in results["training"]
        if r["available"] and r["method"] != rec["method"]
    ]
    if others:
        parts.append("Certificates of the other models trained: " + "; ".join(others) + ".")
    screen = results["screen"]
    screened = "no symmetry" if screen["symmetry"] == "none" else (
        f"{screen['symmetry']} at t = {screen['t_star']:.2g}")  # fmt: skip
    agree = "the same option" if rec.get("agrees_with_screen") else "a different option"
    parts.append(
        f"The screen on the training split (cross-fitted loss of the reference model trained "
        f"at each option, one-standard-error rule) chose {screened}: {agree}."
    )
    parts.append(
        f"The reference model is a {results['model']['name']}; a different model (a CNN) "
        "can prefer a different level: screen it with jaxsym.choose_symmetry(..., fit=your_fit)."
    )
    if not group["is_group"]:
        parts.append(
            f"{group['name']} is not a group: averaging over it (Q_ν) is only approximately "
            "equivariant (docs/theory.md §3)."
        )
    parts.append(_theory_text(results))
    return " ".join(parts)


# ----------------------------------------------------------------------------- files
