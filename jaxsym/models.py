"""A reference model trained *inside* each symmetry class: random features + ridge.

``fit(x, y, *, symmetry)`` returns a batched predictor trained at a symmetry
option (docs/theory.md §8b): a set ``H`` and a dial level ``t``. For random
Fourier features ``φ`` the class at ``(H, t)`` is linear in the dialed features

``φ_t(x) = φ̄_H(x) + t (φ(x) − φ̄_H(x))``,   ``φ̄_H(x) = mean_{h ∈ H} φ(h·x)``,

so the model trained in that class is one ridge solve: ``t = 0`` is the
H-averaged model (exactly H-invariant when ``H`` is a group, the partial
average ``Q_ν`` otherwise), ``t = 1`` the plain model, and for a group the
trained model's defect is ``t (φ − φ̄_H) w``. :meth:`RandomFeaturesRidge.cross_fit_losses`
computes every option's cross-fitted held-out losses in closed form, sharing the
orbit features across options and the Gram matrices across folds.

Reference: Petrache & Trivedi, NeurIPS 2023, arXiv:2305.17592.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxsym._src.types import Model
from jaxsym._src.validation import as_float, check_finite, check_key, check_positive, positive_int
from jaxsym.groups import TransformationSet, element_indices, transform_batch
from jaxsym.losses import example_losses

__all__ = [
    "RandomFeaturesModel",
    "RandomFeaturesRidge",
    "predict",
    "predict_many",
    "random_features_ridge",
]


#: Rows per compiled call when features or predictions are computed in batches.
BATCH_SIZE = 256
#: Folds of the inner cross-fit that tunes λ when several ridges are given.
TUNING_FOLDS = 5


class RandomFeaturesModel(eqx.Module):
    """``f(x) = m + φ_t(x) w`` with ``φ_t = φ̄_H + t (φ − φ̄_H)`` and ``φ(x) = √(2/p) cos(x W + b)``.

    An equinox Module (a pytree): it passes through ``jit`` and ``vmap``.

    Attributes:
        projection: ``(d, p)`` random frequencies ``W``.
        phase: ``(p,)`` random phases ``b``.
        weights: ``(p, d_y)`` ridge weights ``w``.
        offset: ``(d_y,)`` the label mean ``m``.
        orbit: the set ``H`` the features are averaged over (``None``: no averaging).
        t: the dial level ``t`` (1 without averaging).
        output_shape: the shape of one output (static).
    """

    projection: jax.Array
    phase: jax.Array
    weights: jax.Array
    offset: jax.Array
    orbit: TransformationSet | None
    t: jax.Array
    output_shape: tuple[int, ...] = eqx.field(static=True)

    def base_features(self, x: jax.Array) -> jax.Array:
        """``φ(x)``, shape ``(n, p)`` for inputs ``(n, *input)``."""
        flat = x.reshape(x.shape[0], -1).astype(self.projection.dtype)
        scale = jnp.sqrt(2.0 / self.phase.shape[0]).astype(self.projection.dtype)
        return scale * jnp.cos(flat @ self.projection + self.phase)

    def features(self, x: jax.Array) -> jax.Array:
        """``φ_t(x)``, shape ``(n, p)``: the averaged features dialed at ``t``."""
        base = self.base_features(x)
        if self.orbit is None:
            return base
        orbit = self.orbit

        def add(total, element):
            moved = transform_batch(orbit, jax.tree_util.tree_map(lambda e: e[None], element), x)
            return total + self.base_features(moved[0]), None

        total, _ = jax.lax.scan(add, jnp.zeros_like(base), orbit.elements)
        averaged = total / orbit.size
        return averaged + self.t.astype(base.dtype) * (base - averaged)

    def __call__(self, x: jax.Array) -> jax.Array:
        out = self.features(x) @ self.weights + self.offset
        return out.reshape((x.shape[0],) + self.output_shape)


@eqx.filter_jit
def _batch_apply(model: Callable, x: jax.Array) -> jax.Array:
    return model(x)


def predict(model: Model, x: jax.Array, *, batch_size: int = BATCH_SIZE) -> jax.Array:
    """``model(x)`` in fixed-size batches, the last one padded: one compilation per model type.

    Every call sees the shape ``(batch_size, *input)``, so evaluating a model on
    sets of any size compiles once (equinox Modules of one structure share the
    compiled call); the padded rows are dropped.

    Args:
        model: a batched predictor (an equinox Module, or any callable).
        x: ``(n, *input)`` inputs.
        batch_size: rows per call.

    Returns:
        ``(n, *output)``.

    >>> import jax, jax.numpy as jnp
    >>> fit = random_features_ridge(16, 1e-3, key=jax.random.key(0))
    >>> x = jnp.linspace(-1, 1, 10).reshape(10, 1)
    >>> model = fit(x, x**2)
    >>> bool(jnp.allclose(predict(model, x, batch_size=4), model(x), atol=1e-5))
    True
    """
    batch_size = positive_int("batch_size", batch_size)
    outputs = [
        np.asarray(_batch_apply(model, chunk))[:rows]
        for chunk, rows in _padded_batches(x, batch_size)
    ]
    return jnp.asarray(np.concatenate(outputs))


def _padded_batches(x, batch_size: int):
    """``(batch, rows)`` of ``batch_size`` rows each, the last padded by repeating its last row.

    Sliced and padded on the host, so no slice or pad compiles a program of its own.
    """
    x = np.asarray(x)
    for start in range(0, x.shape[0], batch_size):
        chunk = x[start : start + batch_size]
        rows = chunk.shape[0]
        if rows < batch_size:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch_size - rows, 0)])
        yield jnp.asarray(chunk), rows


def predict_many(
    models: Sequence[Model], x: jax.Array, *, batch_size: int = BATCH_SIZE
) -> list[jax.Array]:
    """Every model's ``model(x)``, in fixed-size batches; one orbit pass for a family.

    A **family** is a list of :class:`RandomFeaturesModel` with the same random
    features (``projection``, ``phase``) whose orbits are all subsets of the
    largest one, ``U`` (the audit's candidates: every set a subset of the
    group). Each element's features ``φ(u·x)``, ``u ∈ U``, are then computed once
    per batch and every model's ``φ̄_H = mean_{h ∈ H} φ(h·x)`` is their mean over
    its own elements: ``|U|`` feature passes instead of ``Σ_j |H_j|``. Any other
    list is evaluated model by model with :func:`predict`. Both give ``model(x)``
    up to float rounding (the order of the sums).

    Args:
        models: batched predictors.
        x: ``(n, *input)`` inputs.
        batch_size: rows per call.

    Returns:
        ``[model(x) for model in models]``, each ``(n, *output)``.

    >>> import jax, jax.numpy as jnp
    >>> from jaxsym import Symmetry, groups
    >>> c4 = groups.cyclic_rotations(4)
    >>> fit = random_features_ridge(16, 1e-3, key=jax.random.key(0))
    >>> x = jax.random.normal(jax.random.key(1), (10, 2))
    >>> averaged = fit(x, x[:, :1], symmetry=Symmetry(c4, 0.0, (0, 1, 2, 3), "C4"))
    >>> plain = fit(x, x[:, :1])
    >>> outs = predict_many([plain, averaged], x, batch_size=4)
    >>> bool(jnp.allclose(outs[1], averaged(x), atol=1e-5))
    True
    """
    batch_size = positive_int("batch_size", batch_size)
    models = list(models)
    family = _orbit_family(models)
    if family is None:
        return [predict(model, x, batch_size=batch_size) for model in models]
    universe, weights = family
    outputs = [
        [np.asarray(out)[:rows] for out in _family_batch(models, universe, weights, chunk)]
        for chunk, rows in _padded_batches(x, batch_size)
    ]
    return [
        jnp.asarray(np.concatenate([batch[j] for batch in outputs])) for j in range(len(models))
    ]


def _orbit_family(models: list) -> tuple[TransformationSet, jax.Array] | None:
    """``(U, W)`` with ``W[j, u] = 1/|H_j|`` for ``u ∈ H_j`` (zero row: no orbit), or None."""
    if len(models) < 2 or not all(isinstance(m, RandomFeaturesModel) for m in models):
        return None
    first = models[0]
    projection, phase = np.asarray(first.projection), np.asarray(first.phase)
    for model in models[1:]:
        same = model.projection is first.projection or np.array_equal(model.projection, projection)
        if not (same and np.array_equal(model.phase, phase)):
            return None
    orbits = [m.orbit for m in models if m.orbit is not None]
    if not orbits:
        return None
    universe = max(orbits, key=lambda orbit: orbit.size)
    weights = np.zeros((len(models), universe.size), np.float32)
    for j, model in enumerate(models):
        if model.orbit is None:
            continue
        if type(model.orbit.action) is not type(universe.action):
            return None
        try:
            members = element_indices(universe, model.orbit.elements)
        except (ValueError, TypeError):
            return None
        if len(set(np.asarray(members).tolist())) != model.orbit.size:
            return None
        weights[j, np.asarray(members)] = 1.0 / model.orbit.size
    return universe, jnp.asarray(weights)


@eqx.filter_jit
def _family_batch(models, universe: TransformationSet, weights: jax.Array, x: jax.Array):
    first = models[0]
    base = first.base_features(x)

    def element_features(element):
        moved = transform_batch(universe, jax.tree_util.tree_map(lambda e: e[None], element), x)
        return first.base_features(moved[0])

    per_element = jax.lax.map(element_features, universe.elements)  # (|U|, B, p)
    averages = jnp.einsum("ju,ubp->jbp", weights.astype(base.dtype), per_element)
    outputs = []
    for j, model in enumerate(models):
        features = base
        if model.orbit is not None:
            features = averages[j] + model.t.astype(base.dtype) * (base - averages[j])
        out = features @ model.weights + model.offset
        outputs.append(out.reshape((x.shape[0],) + model.output_shape))
    return outputs


def _features(model: RandomFeaturesModel, x: jax.Array) -> jax.Array:
    return predict(eqx.Partial(RandomFeaturesModel.features, model), x)


@jax.jit
def _ridge_solve(features, targets, ridge):
    """``(m, w)``: ``(ΦᵀΦ/n + λI) w = Φᵀ(y − m)/n`` with ``m`` the label mean (Cholesky)."""
    n, p = features.shape
    offset = jnp.mean(targets, axis=0)
    gram = features.T @ features / n + ridge * jnp.eye(p, dtype=features.dtype)
    factor = jax.scipy.linalg.cho_factor(gram, lower=True)
    return offset, jax.scipy.linalg.cho_solve(factor, features.T @ (targets - offset) / n)


@jax.jit
def _moved_features(model: RandomFeaturesModel, element, x: jax.Array) -> jax.Array:
    """``φ(g·x)`` for one element ``g`` of the model's parent set (``model.orbit``)."""
    moved = transform_batch(model.orbit, jax.tree_util.tree_map(lambda e: e[None], element), x)
    return model.base_features(moved[0])


@functools.partial(jax.jit, static_argnames="loss_kind")
def _fold_losses(averaged, base, targets, index, weight, levels, ridges, loss_kind):
    """Held-out losses ``(R, T, K, m)`` of the ridge (each λ, each level) on each fold's complement.

    The Gram matrices of ``φ_t = φ̄ + tΔ`` on the training rows are
    ``A + t(B + Bᵀ) + t²C`` (totals minus the fold's part), one Cholesky per (t, k).
    """
    delta = base - averaged
    n = base.shape[0]
    p = base.shape[1]

    def moments(rows_a, rows_d, rows_y, w):
        wa, wd = rows_a * w[:, None], rows_d * w[:, None]
        return (
            wa.T @ rows_a, wa.T @ rows_d, wd.T @ rows_d,
            wa.T @ rows_y, wd.T @ rows_y, wa.sum(0), wd.sum(0), (rows_y * w[:, None]).sum(0),
            w.sum(),
        )  # fmt: skip

    total = moments(averaged, delta, targets, jnp.ones(n, base.dtype))
    held = jax.vmap(moments)(averaged[index], delta[index], targets[index], weight)
    train = jax.tree_util.tree_map(lambda t, h: t[None] - h, total, held)
    a, b, c, ay, dy, sa, sd, sy, count = train
    offset = sy / count[:, None]  # (K, d_y)

    def at_level(level, ridge):
        gram = (a + level * (b + jnp.swapaxes(b, 1, 2)) + level**2 * c) / count[:, None, None]
        gram = gram + ridge * jnp.eye(p, dtype=base.dtype)
        sums = sa + level * sd  # Σ φ_t over the training rows, (K, p)
        rhs = (ay + level * dy - sums[:, :, None] * offset[:, None, :]) / count[:, None, None]
        factor = jax.vmap(lambda g: jax.scipy.linalg.cho_factor(g, lower=True)[0])(gram)
        weights = jax.vmap(lambda f, r: jax.scipy.linalg.cho_solve((f, True), r))(factor, rhs)
        rows = averaged[index] + level * delta[index]  # (K, m, p)
        predictions = jnp.einsum("kmp,kpd->kmd", rows, weights) + offset[:, None, :]
        return jax.vmap(lambda pr, y: example_losses(pr, y, loss_kind))(predictions, targets[index])

    return jax.lax.map(lambda ridge: jax.lax.map(lambda t: at_level(t, ridge), levels), ridges)


class RandomFeaturesRidge:
    """``fit(x, y, *, symmetry=None)``: random Fourier features + ridge, trained in a class.

    Built by :func:`random_features_ridge`; see there.
    """

    def __init__(
        self, num_features: int, ridges: tuple[float, ...], *, key: jax.Array, lengthscale: float
    ):
        self.num_features = num_features
        self.ridges = ridges
        self.key = key
        self.lengthscale = lengthscale

    def __repr__(self) -> str:
        return (
            f"random_features_ridge({self.num_features}, {_format(self.ridges)}, "
            f"lengthscale={self.lengthscale:g})"
        )

    def _untrained(self, x: jax.Array, output_shape, orbit, t) -> RandomFeaturesModel:
        dim = int(np.prod(x.shape[1:]))
        frequency_key, phase_key = jax.random.split(self.key)
        projection = jax.random.normal(frequency_key, (dim, self.num_features), x.dtype)
        phase = jax.random.uniform(phase_key, (self.num_features,), x.dtype, maxval=2 * jnp.pi)
        d_y = int(np.prod(output_shape, dtype=np.int64))
        return RandomFeaturesModel(
            projection=projection / self.lengthscale,
            phase=phase,
            weights=jnp.zeros((self.num_features, d_y), x.dtype),
            offset=jnp.zeros(d_y, x.dtype),
            orbit=orbit,
            t=jnp.asarray(t, x.dtype),
            output_shape=tuple(output_shape),
        )

    def __call__(self, x: jax.Array, y: jax.Array, *, symmetry=None) -> RandomFeaturesModel:
        """Train at ``symmetry`` (a :class:`jaxsym.Symmetry`; ``None``: no symmetry)."""
        x = as_float(x)
        check_finite("x", x)
        y = jnp.asarray(y)
        if y.ndim < 1 or y.shape[0] != x.shape[0]:
            raise ValueError(
                f"y must have a leading axis of length {x.shape[0]} (one label per input); "
                f"got shape {y.shape}."
            )
        check_finite("y", y)
        y = y.astype(x.dtype)
        orbit, t = None, 1.0
        if symmetry is not None and symmetry.group.size > 1 and symmetry.t < 1.0:
            orbit, t = symmetry.group, float(symmetry.t)
        model = self._untrained(x, y.shape[1:], orbit, t)
        features = _features(model, x)
        targets = y.reshape(len(y), -1)
        ridge = self.ridges[0]
        if len(self.ridges) > 1:  # λ by 5-fold cross-fitting on this training set (closed form)
            ridge = self._tuned_ridge(model, features, x, targets, orbit)
        offset, weights = _ridge_solve(features, targets, jnp.asarray(ridge, x.dtype))
        return eqx.tree_at(lambda m: (m.offset, m.weights), model, (offset, weights))

    def _tuned_ridge(self, model, features, x, targets, orbit) -> float:
        """The λ of :attr:`ridges` with the lowest 5-fold squared error, in this class."""
        base = (
            features if orbit is None else _features(eqx.tree_at(lambda m: m.orbit, model, None), x)
        )
        averaged = features if orbit is None else (features - model.t * base) / (1 - model.t)
        folds = [np.arange(k, len(x), TUNING_FOLDS) for k in range(min(TUNING_FOLDS, len(x)))]
        index, weight = _padded(folds)
        out = _fold_losses(
            averaged, base, targets, jnp.asarray(index), jnp.asarray(weight, base.dtype),
            jnp.asarray([float(model.t)], base.dtype), jnp.asarray(self.ridges, base.dtype),
            loss_kind="squared",
        )  # fmt: skip
        risks = [float(jnp.sum(out[r, 0] * weight)) for r in range(len(self.ridges))]
        return self.ridges[int(np.argmin(risks))]

    def cross_fit_losses(self, problem) -> np.ndarray:
        """Held-out losses of every option of a :class:`jaxsym.SymmetryProblem`, in closed form.

        Row ``j`` holds, for every example ``i``, the loss of the model trained
        at option ``j`` on the folds that exclude ``i``: the same numbers as
        training ``self(x_train, y_train, symmetry=option)`` fold by fold, with
        the orbit features computed once for all options and the Gram
        matrices once for all folds. With several ``ridges``, each option's row
        is the λ with the lowest mean held-out loss on these folds (tuned on
        the outer folds, a mild optimism shared by every option; a fit on its
        own tunes λ by inner 5-fold cross-fitting).

        Returns:
            ``(J, n)`` float64 losses, ``J = len(problem.options)``.
        """
        x, y, group = problem.x, problem.y, problem.group
        n = x.shape[0]
        targets = y.reshape(n, -1)
        model = self._untrained(x, y.shape[1:], group, 1.0)
        base = _features(eqx.tree_at(lambda m: m.orbit, model, None), x)
        sets = [members for members in problem.candidates if len(members) > 1]
        averaged = [jnp.zeros_like(base) for _ in sets]
        for g in sorted({int(k) for members in sets for k in members}):
            element = group.element(g)
            moved = jnp.concatenate(
                [
                    _moved_features(model, element, x[start : start + BATCH_SIZE])
                    for start in range(0, n, BATCH_SIZE)
                ]
            )
            for s, members in enumerate(sets):
                if g in members:
                    averaged[s] = averaged[s] + moved / len(members)
        index, weight = _padded(problem.folds)
        index, weight = jnp.asarray(index), jnp.asarray(weight, base.dtype)
        ridges = jnp.asarray(self.ridges, base.dtype)

        def held_out(avg, levels):
            out = np.asarray(
                _fold_losses(
                    avg, base, targets, index, weight, jnp.asarray(levels, base.dtype), ridges,
                    loss_kind=problem.loss,
                ),
                np.float64,
            )  # fmt: skip
            rows = np.zeros((len(self.ridges), len(levels), n))
            for k, fold in enumerate(problem.folds):
                rows[:, :, fold] = out[:, :, k, : len(fold)]
            best = rows.mean(axis=2).argmin(axis=0)  # the best λ of each level (see docstring)
            return rows[best, np.arange(len(levels))]

        soft = [float(t) for t in problem.levels if t < 1.0]
        table = [held_out(base, [0.0])]  # none: φ̄ = φ
        table += [held_out(avg, soft) for avg in averaged]
        return np.concatenate(table)


def _padded(folds) -> tuple[np.ndarray, np.ndarray]:
    """``(index (K, m), weight (K, m))``: folds padded to one size with weight 0."""
    size = max(len(fold) for fold in folds)
    index = np.stack([np.pad(fold, (0, size - len(fold)), mode="edge") for fold in folds])
    weight = np.stack([np.arange(size) < len(fold) for fold in folds])
    return index, weight


def _format(ridges) -> str:
    return f"{ridges[0]:g}" if len(ridges) == 1 else "(" + ", ".join(f"{r:g}" for r in ridges) + ")"


def random_features_ridge(
    num_features: int, ridge, *, key: jax.Array, lengthscale: float = 1.0
) -> RandomFeaturesRidge:
    """A reference model trained in each symmetry class: random features + ridge (§8b).

    ``fit(x, y, *, symmetry=None)`` draws (from ``key``, so the same for every
    call on inputs of the same size) frequencies ``W ~ N(0, I/ℓ²)`` and phases
    ``b ~ U[0, 2π)``, builds the features of the class,
    ``φ_t = φ̄_H + t (φ − φ̄_H)`` with ``φ̄_H(x) = mean_{h∈H} φ(h·x)`` for
    ``symmetry = (H, t)``, and solves
    ``min_w mean ‖y − m − φ_t(x) w‖² + λ‖w‖²`` with ``m`` the label mean.
    Without ``symmetry`` (or at ``t = 1``) the features are plain and the fitted
    model has an anti-symmetric part; at ``t = 0`` over a group it is exactly
    H-invariant. :func:`jaxsym.choose_symmetry` uses its closed-form
    ``cross_fit_losses``.

    Args:
        num_features: ``p ≥ 1`` random features.
        ridge: ``λ > 0`` (on the mean squared loss), or a sequence of them: each
            fit then takes the λ with the lowest 5-fold cross-fitted squared
            error in its own class (so averaged features, whose best λ is
            often smaller, get their own).
        key: PRNG key for the features (keyword-only).
        lengthscale: ``ℓ > 0``, in input units.

    Returns:
        A :class:`RandomFeaturesRidge`, called as ``fit(x, y, *, symmetry=None)``.

    Raises:
        TypeError, ValueError: naming the argument at fault.

    >>> import jax, jax.numpy as jnp
    >>> from jaxsym import groups
    >>> from jaxsym.decision import Symmetry
    >>> x = jax.random.normal(jax.random.key(0), (64, 2))
    >>> y = jnp.linalg.norm(x, axis=1, keepdims=True)
    >>> fit = random_features_ridge(64, 1e-3, key=jax.random.key(1))
    >>> c4 = groups.cyclic_rotations(4)
    >>> model = fit(x, y, symmetry=Symmetry(c4, 0.0, (0, 1, 2, 3), "C4"))
    >>> bool(jnp.allclose(model(x), model(x @ jnp.array([[0.0, -1.0], [1.0, 0.0]])), atol=1e-4))
    True
    """
    num_features = positive_int("num_features", num_features)
    if isinstance(ridge, str) or np.ndim(ridge) not in (0, 1) or np.size(ridge) == 0:
        raise TypeError(f"ridge must be a number λ > 0 or a sequence of them; got {ridge!r:.60}.")
    ridges = tuple(float(r) for r in np.atleast_1d(np.asarray(ridge, np.float64)))
    for value in ridges:
        check_positive("ridge", value)
    check_positive("lengthscale", lengthscale)
    if key is None:
        raise ValueError("key is required: a PRNG key for the random features.")
    check_key(key)
    return RandomFeaturesRidge(num_features, ridges, key=key, lengthscale=float(lengthscale))
