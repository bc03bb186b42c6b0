r"""Check that two objectives are equal on a user's model: ``verify(lhs, rhs, bindings, params)``.

:func:`verify` compiles both sides with :func:`unigen.algebra.compile` for the same bindings and
evaluates them, and their gradients with respect to named parameter groups, at one point
``params`` (a pytree; groups may be nested dicts), on one ``batch`` (any keys). Three methods:

=================  ===============================================================================
``"exact"``        every expectation a finite sum (float64): discrete distributions enumerated,
                   the data the batch mean, KLs and entropies in closed form or enumerated.
``"quadrature"``   as exact, and each expectation over a continuous Normal latent (``Normal``,
                   ``Independent(Normal)``, ``MultivariateNormal``; dimension d) replaced by the
                   tensor Gauss-Hermite rule with ``nodes`` points per dimension: exact for
                   polynomial integrands of degree ≤ 2·nodes − 1 (Gaussian log-densities are
                   quadratics), and accurate for smooth ones; needs nodes^d ≤ 4096.
``"monte_carlo"``  ``replicas`` independent estimates of each side (the compiled estimator, one
                   draw per expectation, both sides with the same key); the identity holds when
                   the mean difference of every compared number is within ``k`` standard errors
                   (the largest over the compared numbers, plus ``tolerance``).
``"auto"``         exact when every expectation is finite, else quadrature when every continuous
                   latent is Normal and small, else Monte Carlo (also for implicit samplers).
=================  ===============================================================================

The quadrature is written in the algebra itself: :math:`\mathbb{E}_{q(z \mid x)}[f]` becomes
:math:`\mathbb{E}_{w(i)}\,\mathbb{E}_{\delta(z \mid x, i)}[f]` with ``w`` the categorical of the
rule's weights over node indices (enumerated) and ``δ`` the point mass at node i moved to q's
location and scale (one pathwise draw), so ``compile`` does the rest and gradients flow through
the nodes; :math:`\mathrm{KL}(q \| p)` and :math:`\mathrm{H}(q)` become
:math:`\mathbb{E}_q[\log q - \log p]` and :math:`\mathbb{E}_q[-\log q]` first.

Example, the ELBO decomposition on a user's model (``per_example``: for every row of the batch)::

    result = verify(log(marginal), E(q, log(joint) - log(q)) + KL(q, posterior),
                    bindings, params, {"pixels": x}, wrt=("theta", "eta"), per_example=True)
    print(result)

``verify("lemma1", seed=0)`` checks one of the lecture's four identities on its finite model
(:func:`unigen.algebra.identities.check_identity`); the rest of this module holds those finite
models, written directly in ``jnp`` (independent of the algebra), and their hand-written sides,
kept as oracles for :func:`check`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as numpyro_dist

from unigen.algebra import expr as algebra
from unigen.algebra.compiler import MAX_ENUMERATION, Binding, compile, explicit
from unigen.algebra.expr import (
    E,
    Dist,
    Node,
    Product,
    Term,
    Var,
    dist,
    log,
)
from unigen.errors import ConfigError, describe

Params = dict[str, jax.Array]
Side = Callable[[Params], jax.Array]

TOLERANCE = 1e-9
"""An exact check holds when its value and gradient errors are both below this."""

QUADRATURE_TOLERANCE = 1e-6
"""The default tolerance of a quadrature check (Gauss-Hermite is exact only for polynomials)."""

DEFAULT_SIZES: Mapping[str, int] = {"x": 5, "z": 3}
"""Default sizes of the finite spaces of the built-in identities: K = ``|x|`` and M = ``|z|``."""

METHODS = ("auto", "exact", "quadrature", "monte_carlo")
"""How :func:`verify` evaluates expectations (see the module docstring)."""


class Verification(NamedTuple):
    """The result of a check; ``print(result)`` shows it in three lines.

    Attributes:
      identity: the identity's name, or ``"lhs = rhs"`` as the algebra prints it.
      holds: both errors are within their tolerances (the value error is not compared when
        the identity holds only up to a constant).
      sense: in what sense the equality is claimed (values, up to a constant, gradients w.r.t.
        named groups, for every row of the batch).
      max_abs_error_value: ``max |lhs − rhs|`` over the compared values (a mean over replicas
        for Monte Carlo).
      max_abs_error_grad: ``max |∇lhs − ∇rhs|`` over every leaf of the groups in ``wrt``
        (0 when no group is named).
      space: sizes of the finite spaces of a built-in identity, ``{"x": K, "z": M, "y": 2}``;
        empty for a user's check.
      method: ``"exact"``, ``"quadrature"`` or ``"monte_carlo"``.
      tolerance_value: the bound the value error is compared with (``inf`` up to a constant).
      tolerance_grad: the bound the gradient error is compared with.
      k: Monte Carlo only: the number of standard errors in the tolerances (else ``None``).
    """

    identity: str
    holds: bool
    sense: str
    max_abs_error_value: float
    max_abs_error_grad: float
    space: dict[str, int]
    method: str = "exact"
    tolerance_value: float = TOLERANCE
    tolerance_grad: float = TOLERANCE
    k: float | None = None

    def __str__(self) -> str:
        verdict = "holds" if self.holds else "DOES NOT HOLD"
        how = self.method if self.k is None else f"{self.method}, {self.k:g} standard errors"
        value = f"values {self.max_abs_error_value:.3g} (tolerance {self.tolerance_value:.3g})"
        grad = f"gradients {self.max_abs_error_grad:.3g} (tolerance {self.tolerance_grad:.3g})"
        return (f"{self.identity}: {verdict} ({how})\n  in the sense: {self.sense}\n"
                f"  max |error|: {value}, {grad}")


# ---------------------------------------------------------------------------------------------
# verify


def verify(
    lhs: Term | str,
    rhs: Term | None = None,
    bindings: Mapping[Dist, Any] | None = None,
    params: Any = None,
    batch: Mapping[str, Any] | None = None,
    *,
    wrt: str | tuple[str, ...] = (),
    up_to_constant: bool = False,
    per_example: bool = False,
    method: str = "auto",
    tolerance: float | None = None,
    nodes: int = 16,
    replicas: int = 256,
    k: float = 4.0,
    seed: int = 0,
    sizes: Mapping[str, int] | None = None,
) -> Verification:
    r"""Check ``lhs == rhs`` for the given bindings at the point ``params``.

    Args:
      lhs: the left side, a scalar term; or the name of a built-in identity
        (``"elbo-decomposition"``, ``"lemma1"``, ``"lemma2"``, ``"wake-sleep"``), checked on its
        finite model at random points from ``seed`` and ``sizes`` (the other arguments unused).
      rhs: the right side, over the same bindings.
      bindings: what each distribution is, as for :func:`unigen.algebra.compile`.
      params: the point, a dict of parameter groups (each any pytree, e.g.
        ``{"eta": {"enc": {"w": w}}}``); floating leaves are evaluated in float64.
      batch: the arrays the data distributions read (``data("pixels")`` reads
        ``batch["pixels"]``); ``None`` for none.
      wrt: the groups (keys of ``params``) whose gradients must agree; ``()`` for values only.
      up_to_constant: the sides may differ by a constant: compare gradients only (name ``wrt``).
      per_example: compare the sides on every row of the batch separately (each row a batch of
        one), for identities that hold for every x and not only on average.
      method: one of :data:`METHODS`.
      tolerance: the absolute tolerance (default :data:`TOLERANCE` exact and Monte Carlo,
        :data:`QUADRATURE_TOLERANCE` quadrature); Monte Carlo adds ``k`` standard errors.
      nodes: Gauss-Hermite points per dimension of a Normal latent (quadrature).
      replicas: independent estimates (Monte Carlo).
      k: standard errors allowed (Monte Carlo).
      seed: the keys of the Monte Carlo replicas (or of a built-in identity's points).
      sizes: a built-in identity's finite spaces, ``{"x": K, "z": M}``.

    Returns:
      The :class:`Verification`; ``print`` it to read it.

    Raises:
      ConfigError: a bad argument (unknown method or group, a method the model does not allow).
      ExpressionError: a side is not a scalar term.
    """
    if isinstance(lhs, str):
        if rhs is not None:
            raise ConfigError(
                f"rhs: got {describe(rhs)} with the built-in identity {lhs!r}, expected None")
        from unigen.algebra.identities import check_identity

        return check_identity(lhs, seed=seed, sizes=sizes)
    for side, term in (("lhs", lhs), ("rhs", rhs)):
        if not isinstance(term, Term):
            raise algebra.ExpressionError(
                f"{side}: got {describe(term)}, expected a scalar term (E, log, KL, ...)")
    if not isinstance(params, Mapping):
        raise ConfigError(f"params: got {describe(params)}, expected a dict of parameter groups")
    batch = {} if batch is None else batch
    if not isinstance(batch, Mapping):
        raise ConfigError(f"batch: got {describe(batch)}, expected a dict of arrays or None")
    groups = (wrt,) if isinstance(wrt, str) else tuple(wrt) if isinstance(wrt, list) else wrt
    if not isinstance(groups, tuple) or any(g not in params for g in groups):
        raise ConfigError(
            f"wrt: got {describe(wrt)}, expected a tuple of keys of params {sorted(params)}")
    if up_to_constant and not groups:
        raise ConfigError("wrt: got (), expected groups to compare when up_to_constant=True")
    if method not in METHODS:
        raise ConfigError(f"method: got {describe(method)}, expected one of {METHODS}")
    for argument, value, low in (("nodes", nodes, 1), ("replicas", replicas, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{argument}: got {describe(value)}, expected an int >= {low}")
    if tolerance is not None and not (isinstance(tolerance, (int, float)) and tolerance >= 0):
        raise ConfigError(f"tolerance: got {describe(tolerance)}, expected a number >= 0")
    if isinstance(k, bool) or not isinstance(k, (int, float)) or k <= 0:
        raise ConfigError(f"k: got {describe(k)}, expected a positive number")
    with jax.enable_x64(True):
        params = jax.tree.map(_float64, dict(params))
        batch = jax.tree.map(_float64, dict(batch))
        used, difference = prepare(lhs, rhs, bindings, params, batch, per_example=per_example,
                                   method=method, nodes=nodes)
        errors = measure(used, difference, groups, seed=seed, replicas=replicas)(params)
    return result(f"{lhs} = {rhs}", used, errors, groups, up_to_constant=up_to_constant,
                  per_example=per_example, tolerance=tolerance, k=k)


def prepare(lhs: Term, rhs: Term, bindings: Mapping[Dist, Any], params: Any,
            batch: Mapping[str, Any], *, per_example: bool, method: str,
            nodes: int) -> tuple[str, Callable[[Any, jax.Array], jax.Array]]:
    """The method chosen and the pure ``difference(params, key) -> lhs − rhs`` (one value per
    row with ``per_example``), for :func:`measure` (arguments as :func:`verify`, already
    checked; call inside ``enable_x64``)."""
    if per_example:
        _check_rows(batch)
    plan = _plan(lhs, rhs, bindings, params, batch, method, nodes)
    losses = [compile(side, plan.bindings, estimator=plan.estimators(side), maximize=False)
              for side in plan.sides]
    return plan.method, _difference(*losses, batch=plan.batch, per_example=per_example)


def measure(method: str, difference: Callable[[Any, jax.Array], jax.Array],
            wrt: tuple[str, ...], *, seed: int = 0,
            replicas: int = 256) -> Callable[[Any], Errors]:
    """A jit-compiled ``errors(params)`` of ``difference``, reusable at points of the same
    structure: its largest value and gradient (w.r.t. the groups ``wrt``) in absolute value,
    and for Monte Carlo their largest standard errors over ``replicas`` keys from ``seed``."""
    build = _monte_carlo if method == "monte_carlo" else _deterministic
    return build(difference, wrt, seed=seed, replicas=replicas)


def _float64(leaf: Any) -> Any:
    array = jnp.asarray(leaf)
    return array.astype(jnp.float64) if jnp.issubdtype(array.dtype, jnp.floating) else array


def _check_rows(batch: Mapping[str, Any]) -> None:
    rows = {name: jnp.shape(value)[0] if jnp.ndim(value) else None
            for name, value in batch.items()}
    if not rows or None in rows.values() or len(set(rows.values())) != 1:
        raise ConfigError(
            f"batch: got leading sizes {rows}, expected arrays with one common number of rows "
            "(per_example=True compares every row)")


# ---------------------------------------------------------------------------------------------
# Planning: which method, and the sides and bindings it compiles.


class _Plan(NamedTuple):
    method: str
    sides: tuple[Term, Term]
    bindings: dict[Dist, Any]
    batch: dict[str, Any]
    points: frozenset[Dist]  # the point masses δ of the quadrature (one pathwise draw each)

    def estimators(self, side: Term) -> str | dict[Dist, str]:
        """Enumerate every distribution of ``side`` but draw the point masses (Monte Carlo:
        compile's own choice, ``"auto"``)."""
        if self.method == "monte_carlo":
            return "auto"
        dists = {_unreversed(n) for n in algebra.nodes(side) if isinstance(n, Dist)}
        return {d: "reparameterized" if d in self.points else "enumerate" for d in dists}


def _unreversed(d: Dist) -> Dist:
    return dataclasses.replace(d, reversed=False) if d.reversed else d


def _free(d: Dist) -> Dist:
    return dataclasses.replace(d, given=tuple(Var(v.name) for v in d.given))


class _Kind(NamedTuple):
    kind: str  # "discrete", "normal", "continuous" (not Normal) or "implicit" (sampled only)
    shape: tuple[int, ...]  # the shape of one value


def _classify(built: Any) -> _Kind:
    shape = tuple(built.batch_shape) + tuple(built.event_shape)
    base = built.base_dist if isinstance(built, numpyro_dist.Independent) else built
    if built.is_discrete:
        return _Kind("discrete", shape)
    if isinstance(base, (numpyro_dist.Normal, numpyro_dist.MultivariateNormal)):
        return _Kind("normal", shape)
    return _Kind("continuous", shape)


def _probe(sides: tuple[Term, Term], bindings: Any, params: Any,
           batch: Any) -> dict[Dist, set[_Kind]]:
    """What each binding builds, found by tracing both sides once (``jax.eval_shape``)."""
    if not isinstance(bindings, Mapping):
        raise ConfigError(f"bindings: got {describe(bindings)}, expected a dict Dist -> binding")
    seen: dict[Dist, set[_Kind]] = {}
    recording = {}
    for d, b in bindings.items():
        b = b if isinstance(b, Binding) or not callable(b) else explicit(b)
        if isinstance(b, Binding) and b.kind == "explicit":
            def fn(params: Any, given: Any, d: Dist = d, user: Callable = b.fn) -> Any:
                built = user(params, given)
                seen.setdefault(d, set()).add(_classify(built))
                return built
            recording[d] = explicit(fn)
        else:
            if isinstance(b, Binding) and b.kind != "data":  # implicit, or any other sampler
                seen.setdefault(d, set()).add(_Kind("implicit", ()))
            recording[d] = b
    for side in sides:
        loss = compile(side, recording, maximize=False)
        jax.eval_shape(loss, params, jax.random.key(0), batch)
    return seen


def _integrated_over(term: Term) -> set[Dist]:
    """The distributions ``term`` integrates over (expectations, KL's and H's first argument,
    both sides of a JSD, the proposal of a bound), freed of fixed values."""
    out: set[Dist] = set()
    for node in algebra.nodes(term):
        over: tuple[Any, ...] = ()
        if isinstance(node, algebra.Expectation):
            over = (node.dist,)
        elif isinstance(node, algebra.KLDivergence):
            over = (node.a,)
        elif isinstance(node, algebra.Entropy):
            over = (node.dist,)
        elif isinstance(node, algebra.JSDivergence):
            over = (node.a, node.b)
        elif isinstance(node, algebra.ImportanceWeightedBound):
            over = (node.proposal,)
        out.update(_free(_unreversed(f)) for d in over for f in _factors(d))
    return out


def _plan(lhs: Term, rhs: Term, bindings: Any, params: Any, batch: Any, method: str,
          nodes: int) -> _Plan:
    seen = _probe((lhs, rhs), bindings, params, batch)
    integrated = _integrated_over(lhs) | _integrated_over(rhs)
    used = {_free(_unreversed(n)) for side in (lhs, rhs) for n in algebra.nodes(side)
            if isinstance(n, Dist)}
    kinds: dict[Dist, set[_Kind]] = {}
    for d, found in seen.items():
        if _free(d) in used:
            kinds.setdefault(_free(d), set()).update(found)
    implicit = sorted(str(d) for d, found in kinds.items()
                      if any(x.kind == "implicit" for x in found))
    continuous = {d: found for d, found in kinds.items()
                  if d in integrated and any(x.kind in ("normal", "continuous") for x in found)}
    plain = _Plan("exact", (lhs, rhs), dict(bindings), batch, frozenset())
    if method == "monte_carlo" or (method == "auto" and implicit):
        return plain._replace(method="monte_carlo")
    if implicit:
        raise ConfigError(
            f"method: got {method!r}, but {implicit} are implicit (sample only); expected "
            "'monte_carlo' or 'auto'")
    if not continuous:
        return plain
    if method == "exact":
        raise ConfigError(
            f"method: got 'exact', but {sorted(str(d) for d in continuous)} are continuous; "
            "expected 'quadrature', 'monte_carlo' or 'auto'")
    problem = _quadrature_problem(lhs, rhs, continuous, nodes)
    if problem is not None:
        if method == "auto":
            return plain._replace(method="monte_carlo")
        raise ConfigError(f"method: got 'quadrature', but {problem}; expected 'monte_carlo'")
    return _quadrature_plan(lhs, rhs, dict(bindings), batch, continuous, nodes)


def _quadrature_problem(lhs: Term, rhs: Term, continuous: Mapping[Dist, set[_Kind]],
                        nodes: int) -> str | None:
    """Why the quadrature cannot be used, or None."""
    for d, found in continuous.items():
        if len(found) != 1 or next(iter(found)).kind != "normal":
            return f"{d} is {sorted(x.kind for x in found)}, not Normal of one shape"
        size = math.prod(next(iter(found)).shape)
        if nodes ** size > MAX_ENUMERATION:
            return f"{d} has dimension {size}: {nodes}^{size} nodes exceed {MAX_ENUMERATION}"
    for node in algebra.nodes(lhs) + algebra.nodes(rhs):
        inner: tuple[Any, ...] = ()
        if isinstance(node, algebra.JSDivergence):
            inner = (node.a, node.b)
        elif isinstance(node, algebra.ImportanceWeightedBound):
            inner = (node.proposal,)
        if any(_free(_unreversed(f)) in continuous for d in inner for f in _factors(d)):
            return f"{node} is over a continuous variable (no quadrature rule for it here)"
    return None


# ---------------------------------------------------------------------------------------------
# Quadrature as a rewrite of the expression.


def _factors(d: Any) -> tuple[Dist, ...]:
    return d.factors if isinstance(d, Product) else (d,)


def _hermite(nodes: int, size: int) -> tuple[jax.Array, jax.Array]:
    """Tensor Gauss-Hermite rule for N(0, I_size): points ``[nodes^size, size]``, probabilities."""
    t, w = np.polynomial.hermite.hermgauss(nodes)
    points = np.array(list(itertools.product(t * math.sqrt(2.0), repeat=size)))
    weights = np.array([math.prod(c) for c in itertools.product(w / math.sqrt(math.pi),
                                                                repeat=size)])
    return jnp.asarray(points.reshape(len(weights), size)), jnp.asarray(weights / weights.sum())


def _index_names(taken: frozenset[str], count: int) -> list[str]:
    """Names for the node-index variables, unused by the expression."""
    out: list[str] = []
    candidates = itertools.chain((f"i{j}" for j in range(count)),
                                 getattr(algebra, "VARIABLES", ()))
    for name in candidates:
        if len(out) == count:
            break
        if name in taken or name in out:
            continue
        try:
            Var(name)
        except ConfigError:
            continue
        out.append(name)
    if len(out) < count:
        raise ConfigError(
            f"method: 'quadrature' needs {count} unused variable names for node indices, found "
            f"{len(out)}; expected 'monte_carlo'")
    return out


def _moved(built: Any, standard: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """A standard normal point moved to the Normal ``built``: ``loc + scale · point``."""
    if isinstance(built, numpyro_dist.MultivariateNormal):
        return built.loc + built.scale_tril @ standard
    base = built.base_dist if isinstance(built, numpyro_dist.Independent) else built
    return jnp.broadcast_to(base.loc + base.scale * standard.reshape(shape), shape)


def _user_fn(table: Mapping[Dist, Any], d: Dist, given: Mapping[str, Any]) -> Callable:
    """The user's function for ``d`` at ``given``: a binding for fixed values first, as compile."""
    fixed = tuple(Var(v.name, int(given[v.name])) if isinstance(given.get(v.name), int)
                  else Var(v.name) for v in d.given)
    for candidate in (dataclasses.replace(d, given=fixed), d):
        if candidate in table:
            b = table[candidate]
            return (b if isinstance(b, Binding) else explicit(b)).fn
    raise ConfigError(f"bindings: no binding for {d} with {sorted(given)}")


def _quadrature_plan(lhs: Term, rhs: Term, bindings: dict[Dist, Any], batch: dict[str, Any],
                     continuous: Mapping[Dist, set[_Kind]], nodes: int) -> _Plan:
    taken = frozenset(algebra.variables(lhs) | algebra.variables(rhs))
    ordered = sorted(continuous, key=str)
    names = dict(zip(ordered, _index_names(taken, len(ordered))))
    user = dict(bindings)
    weights = {d: dist("w", over=names[d]) for d in ordered}  # one object each: a binding key
    for d in ordered:
        (kind,) = continuous[d]  # one Normal shape (checked by _quadrature_problem)
        points, probabilities = _hermite(nodes, math.prod(kind.shape))
        name = names[d]

        def mass(params: Any, given: Any, d: Dist = d, name: str = name,
                 points: jax.Array = points, shape: tuple[int, ...] = kind.shape) -> Any:
            rest = {n: v for n, v in given.items() if n != name}
            value = _moved(_user_fn(user, d, rest)(params, rest), points[given[name]], shape)
            return numpyro_dist.Delta(value, event_dim=len(shape))

        bindings[weights[d]] = explicit(
            lambda params, given, p=probabilities: numpyro_dist.CategoricalProbs(p))
        bindings[_point(d, name)] = explicit(mass)
    sides = tuple(_integrated(side, names, weights) for side in (lhs, rhs))
    index = frozenset(names.values())
    points = frozenset(n for side in sides for n in algebra.nodes(side)
                       if isinstance(n, Dist) and index & {v.name for v in n.given})
    # compile draws as many samples as the batch has rows outside a data expectation: a point
    # mass needs one, and an empty batch would give none.
    batch = batch or {"rows": jnp.zeros((1,))}
    return _Plan("quadrature", sides, bindings, batch, points)


def _point(d: Dist, name: str) -> Dist:
    """``δ(over | given, name)``: the point mass at node ``name`` of the rule for ``d``."""
    return dataclasses.replace(d, given=d.given + (Var(name),))


def _integrated(node: Node, names: Mapping[Dist, str], weights: Mapping[Dist, Dist]) -> Node:
    """``node`` with every expectation over a continuous latent ``d`` (a key of ``names``, its
    node-index variable) replaced by the rule: ``weights[d]`` over the index, then the point."""
    def continuous(d: Any) -> bool:
        return any(_free(_unreversed(f)) in names for f in _factors(d))

    if isinstance(node, algebra.KLDivergence) and continuous(node.a):
        return _integrated(E(node.a, log(node.a) - log(node.b)), names, weights)
    if isinstance(node, algebra.Entropy) and continuous(node.dist):
        return _integrated(E(node.dist, -log(node.dist)), names, weights)
    if isinstance(node, algebra.Expectation) and continuous(node.dist):
        factors: list[Dist] = []
        for f in _factors(node.dist):
            d = _free(f)
            factors.extend((weights[d], _point(f, names[d])) if d in names else (f,))
        return E(Product(tuple(factors)), _integrated(node.body, names, weights))
    if not isinstance(node, Term):
        return node
    return _rebuilt(node, lambda child: _integrated(child, names, weights))


def _rebuilt(node: Node, fn: Callable[[Node], Node]) -> Node:
    """``node`` with ``fn`` applied to each of its direct sub-nodes (any node kind)."""
    if not dataclasses.is_dataclass(node):
        return node
    changes = {}
    for field in dataclasses.fields(node):
        value = getattr(node, field.name)
        if isinstance(value, Node):
            changes[field.name] = fn(value)
        elif isinstance(value, tuple) and value and all(isinstance(v, Node) for v in value):
            changes[field.name] = tuple(fn(v) for v in value)
    same = all(changes[k] is getattr(node, k) or changes[k] == getattr(node, k) for k in changes)
    return node if same else dataclasses.replace(node, **changes)


def substitute(node: Node, mapping: Mapping[Node, Node]) -> Node:
    """``node`` with every sub-node that is a key of ``mapping`` replaced by its value, e.g. a
    joint :math:`p_\\theta(x, z)` by the product :math:`p(z)\\,p_\\theta(x \\mid z)` that compile
    binds factor by factor."""
    if node in mapping:
        return mapping[node]
    return _rebuilt(node, lambda child: substitute(child, mapping))


# ---------------------------------------------------------------------------------------------
# Evaluation.


def _difference(left: Callable, right: Callable, *, batch: Mapping[str, Any],
                per_example: bool) -> Callable[[Any, jax.Array], jax.Array]:
    """``(params, key) -> lhs − rhs``, a scalar, or one value per row with ``per_example``."""
    def on(rows: Mapping[str, Any], params: Any, key: jax.Array) -> jax.Array:
        return left(params, key, rows)[0] - right(params, key, rows)[0]

    if not per_example:
        return lambda params, key: on(batch, params, key)
    return lambda params, key: jax.vmap(
        lambda row: on(jax.tree.map(lambda a: a[None], row), params, key))(batch)


def _gradient_error(jacobian: Any, groups: tuple[str, ...]) -> jax.Array:
    leaves = [jnp.abs(leaf) for g in groups for leaf in jax.tree.leaves(jacobian[g])]
    return jnp.max(jnp.stack([jnp.max(leaf) for leaf in leaves])) if leaves else jnp.zeros(())


class Errors(NamedTuple):
    """The measured errors of one check (see :class:`Verification`)."""

    value: float
    grad: float
    value_se: float = 0.0  # Monte Carlo: the largest standard error of a compared value
    grad_se: float = 0.0  # ... and of a compared gradient component


def _deterministic(difference: Callable, groups: tuple[str, ...], *, seed: int,
                   replicas: int) -> Callable[[Any], Errors]:
    del replicas
    key = jax.random.key(seed)

    @jax.jit
    def errors(params: Any) -> tuple[jax.Array, jax.Array]:
        value = jnp.max(jnp.abs(difference(params, key)))
        if not groups:
            return value, jnp.zeros(())
        return value, _gradient_error(jax.jacrev(difference)(params, key), groups)

    def at(params: Any) -> Errors:
        value, grad = errors(params)
        return Errors(float(value), float(grad))

    return at


def _monte_carlo(difference: Callable, groups: tuple[str, ...], *, seed: int,
                 replicas: int) -> Callable[[Any], Errors]:
    keys = jax.random.split(jax.random.key(seed), replicas)

    @jax.jit
    def estimates(params: Any) -> tuple[jax.Array, Any]:
        values = jax.vmap(lambda k: difference(params, k))(keys)
        if not groups:
            return values, {}
        jacobians = jax.vmap(lambda k: jax.jacrev(difference)(params, k))(keys)
        return values, {g: jacobians[g] for g in groups}

    def summary(samples: list[jax.Array]) -> tuple[float, float]:
        if not samples:
            return 0.0, 0.0
        means = [jnp.max(jnp.abs(jnp.mean(s, axis=0))) for s in samples]
        errors = [jnp.max(jnp.std(s, axis=0, ddof=1)) / math.sqrt(replicas) for s in samples]
        return float(max(means)), float(max(errors))

    def at(params: Any) -> Errors:
        values, jacobians = estimates(params)
        value, value_se = summary([values])
        grad, grad_se = summary(jax.tree.leaves(jacobians))
        return Errors(value, grad, value_se, grad_se)

    return at


def result(identity: str, method: str, errors: Errors, wrt: tuple[str, ...], *,
           up_to_constant: bool = False, per_example: bool = False,
           tolerance: float | None = None, k: float = 4.0, sense: str | None = None,
           space: Mapping[str, int] | None = None) -> Verification:
    """The :class:`Verification` of measured ``errors`` (``sense`` default: stated from the
    options; arguments as :func:`verify`)."""
    floor = tolerance if tolerance is not None else (
        QUADRATURE_TOLERANCE if method == "quadrature" else TOLERANCE)
    monte_carlo = method == "monte_carlo"
    tolerance_value = math.inf if up_to_constant else (
        floor + (k * errors.value_se if monte_carlo else 0.0))
    tolerance_grad = floor + (k * errors.grad_se if monte_carlo else 0.0)
    if sense is None:
        names = ", ".join(algebra.PARAMS.get(g, g) for g in wrt)
        if up_to_constant:
            sense = f"gradients w.r.t. {names} (values up to a constant)"
        else:
            sense = "values" + (f" and gradients w.r.t. {names}" if wrt else "")
        if per_example:
            sense += ", for every row of the batch"
    holds = errors.grad <= tolerance_grad and errors.value <= tolerance_value
    return Verification(
        identity=identity,
        holds=bool(holds),
        sense=sense,
        max_abs_error_value=errors.value,
        max_abs_error_grad=errors.grad,
        space=dict(space or {}),
        method=method,
        tolerance_value=tolerance_value,
        tolerance_grad=tolerance_grad,
        k=float(k) if monte_carlo else None,
    )


class Identity(NamedTuple):
    """A hand-written identity ``left(params) + constant(params) == right(params)`` on a finite
    space, an oracle for :func:`check` (the algebra's are in :mod:`unigen.algebra.identities`).

    Attributes:
      name: the identity's name.
      sense: in what sense the equality holds (the statement, copied into the result).
      left: the left-hand side, a scalar or a vector of identities (one per component).
      right: the right-hand side, same shape as ``left``.
      constant: the named constant by which the values differ; it has zero gradient
        w.r.t. the groups in ``wrt`` (``zero`` when the values agree exactly).
      wrt: the parameter groups whose gradients (Jacobians) of ``left`` and ``right`` must agree.
      points: ``points(key, sizes)`` gives the parameter points at which the identity is checked.
    """

    name: str
    sense: str
    left: Side
    right: Side
    constant: Side
    wrt: tuple[str, ...]
    points: Callable[[jax.Array, Mapping[str, int]], tuple[Params, ...]]


# ---------------------------------------------------------------------------------------------
# The finite models of the lecture's identities, written directly in jnp (oracles).
#


def zero(params: Params) -> jax.Array:
    """The constant 0 (an identity whose values agree exactly)."""
    del params
    return jnp.zeros((), dtype=jnp.float64)


def kl(log_p: jax.Array, log_q: jax.Array) -> jax.Array:
    r""":math:`\mathrm{KL}(p \| q) = \sum_i p_i (\log p_i - \log q_i)` along the last axis."""
    return jnp.sum(jnp.exp(log_p) * (log_p - log_q), axis=-1)


def entropy(log_p: jax.Array) -> jax.Array:
    r""":math:`H(p) = -\sum_i p_i \log p_i` along the last axis."""
    return -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)


def jsd(log_p: jax.Array, log_q: jax.Array) -> jax.Array:
    r""":math:`\mathrm{JSD}(p \| q) = \tfrac12 \mathrm{KL}(p \| m) + \tfrac12 \mathrm{KL}(q \| m)`,
    :math:`m = \tfrac12 (p + q)` (natural logarithm, so :math:`0 \le \mathrm{JSD} \le \log 2`)."""
    log_m = jnp.logaddexp(log_p, log_q) - jnp.log(2.0)
    return 0.5 * kl(log_p, log_m) + 0.5 * kl(log_q, log_m)


def log_prior(params: Params) -> jax.Array:
    """``log p(z)``, shape ``(M,)``."""
    return jax.nn.log_softmax(params["prior"])


def log_decoder(params: Params) -> jax.Array:
    """``log p_θ(x|z)`` indexed ``[x, z]``, shape ``(K, M)``."""
    return jax.nn.log_softmax(params["theta"], axis=-1).T


def log_joint(params: Params) -> jax.Array:
    """``log p_θ(x, z) = log p_θ(x|z) + log p(z)`` indexed ``[x, z]``, shape ``(K, M)``."""
    return log_decoder(params) + log_prior(params)[None, :]


def log_marginal(params: Params) -> jax.Array:
    """``log p_θ(x) = log Σ_z p_θ(x, z)``, shape ``(K,)``."""
    return jax.nn.logsumexp(log_joint(params), axis=1)


def log_posterior(params: Params) -> jax.Array:
    """``log p_θ(z|x)`` indexed ``[x, z]``, shape ``(K, M)``."""
    return log_joint(params) - log_marginal(params)[:, None]


def log_encoder(params: Params) -> jax.Array:
    """``log q_η(z|x)`` indexed ``[x, z]``, shape ``(K, M)``."""
    return jax.nn.log_softmax(params["eta"], axis=-1)


def log_data(params: Params) -> jax.Array:
    """``log p_data(x) = log p_θ(x|y=1)``, shape ``(K,)``."""
    return jax.nn.log_softmax(params["data"])


def elbo(params: Params) -> jax.Array:
    """``L(θ, η; x) = E_{q_η(z|x)}[log p_θ(x, z) − log q_η(z|x)]`` for every x, shape ``(K,)``."""
    log_q = log_encoder(params)
    return jnp.sum(jnp.exp(log_q) * (log_joint(params) - log_q), axis=1)


def vae_objective(params: Params) -> jax.Array:
    r""":math:`\mathcal{L}^\text{vae} = E_{p_\text{data}(x)}[E_{q_\eta(z|x)}[\log p_\theta(x|z)]
    - \mathrm{KL}(q_\eta(z|x) \| p(z))]` (§3.3), a scalar."""
    log_q = log_encoder(params)
    reconstruction = jnp.sum(jnp.exp(log_q) * log_decoder(params), axis=1)
    per_x = reconstruction - kl(log_q, log_prior(params)[None, :])
    return jnp.sum(jnp.exp(log_data(params)) * per_x)


def wake_objective(params: Params) -> jax.Array:
    r"""The wake phase (§2.2, §3.4).

    :math:`E_{q_\eta(z|x) p_\text{data}(x)}[\log p_\theta(x, z)]`, a scalar.
    """
    weights = jnp.exp(log_encoder(params) + log_data(params)[:, None])
    return jnp.sum(weights * log_joint(params))


def log_discriminator(params: Params) -> jax.Array:
    """``log q_φ(y|x)`` indexed ``[x, y]``, shape ``(K, 2)``; ``q_φ(y=1|x) = σ(φ_x)``."""
    phi = params["phi"]
    return jnp.stack([jax.nn.log_sigmoid(-phi), jax.nn.log_sigmoid(phi)], axis=1)


def reversed_discriminator(log_q_y_given_x: jax.Array) -> jax.Array:
    """``log q^r(y|x) = log q(1−y|x)``: swap the two columns of a ``[x, y]`` table."""
    return log_q_y_given_x[:, ::-1]


def log_gan_generator(params: Params) -> jax.Array:
    """``log p_θ(x|y=0) = log p_{g_θ}(x) = log softmax(θ)``, shape ``(K,)`` (Lemma 1)."""
    return jax.nn.log_softmax(params["theta"])


def sleep_objective(log_p_h: jax.Array, log_p_x_given_h: jax.Array,
                    log_q_h_given_x: jax.Array) -> jax.Array:
    r"""The sleep phase, :math:`E_{p_\theta(x|h) p(h)}[\log q(h|x)]` (§3.4), by enumeration.

    Args:
      log_p_h: ``log p(h)``, shape ``(H,)``.
      log_p_x_given_h: ``log p_θ(x|h)`` indexed ``[h, x]``, shape ``(H, K)``.
      log_q_h_given_x: ``log q(h|x)`` indexed ``[x, h]``, shape ``(K, H)``.
    """
    weights = jnp.exp(log_p_h[:, None] + log_p_x_given_h)
    return jnp.sum(weights * log_q_h_given_x.T)


# ---------------------------------------------------------------------------------------------
# Random points.


def _logits(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    return 1.5 * jax.random.normal(key, shape, dtype=jnp.float64)


def latent_point(key: jax.Array, sizes: Mapping[str, int]) -> Params:
    """Random float64 logit tables ``{"theta" (M, K), "eta" (K, M), "prior" (M,), "data" (K,),
    "phi" (K,)}`` for the finite spaces of sizes ``{"x": K, "z": M}``."""
    k, m = sizes["x"], sizes["z"]
    keys = jax.random.split(key, 5)
    return {
        "theta": _logits(keys[0], (m, k)),
        "eta": _logits(keys[1], (k, m)),
        "prior": _logits(keys[2], (m,)),
        "data": _logits(keys[3], (k,)),
        "phi": _logits(keys[4], (k,)),
    }


def optimal_discriminator_logits(log_p_data: jax.Array, log_p_generator: jax.Array) -> jax.Array:
    """Logits of ``D*(x) = p_data(x) / (p_data(x) + p_g(x))``: ``φ*_x = log p_data − log p_g``."""
    return log_p_data - log_p_generator


# ---------------------------------------------------------------------------------------------
# §2.1 ELBO decomposition.


def elbo_decomposition_left(params: Params) -> jax.Array:
    """``[log p_θ(x), F(θ, η; x)]`` for every x, shape ``(2K,)``.

    The free energy is ``F = −log p_θ(x) + KL(q_η(z|x) ‖ p_θ(z|x))``.
    """
    log_p_x = log_marginal(params)
    free_energy = -log_p_x + kl(log_encoder(params), log_posterior(params))
    return jnp.concatenate([log_p_x, free_energy])


def elbo_decomposition_right(params: Params) -> jax.Array:
    """``[KL(q_η(z|x) ‖ p_θ(z|x)) + L(θ, η; x), −L(θ, η; x)]`` for every x."""
    bound = elbo(params)
    return jnp.concatenate([kl(log_encoder(params), log_posterior(params)) + bound, -bound])


ELBO_DECOMPOSITION = Identity(
    name="elbo-decomposition",
    sense=(
        "exact values and gradients w.r.t. θ and η, for every x: "
        "log p_θ(x) = KL(q_η(z|x) ‖ p_θ(z|x)) + L(θ, η; x) and "
        "F(θ, η; x) = −log p_θ(x) + KL(q_η(z|x) ‖ p_θ(z|x)) = −L(θ, η; x), "
        "with L = E_{q_η(z|x)}[log p_θ(x, z) − log q_η(z|x)] (§2.1)"
    ),
    left=elbo_decomposition_left,
    right=elbo_decomposition_right,
    constant=zero,
    wrt=("theta", "eta"),
    points=lambda key, sizes: tuple(latent_point(k, sizes) for k in jax.random.split(key, 2)),
)


# ---------------------------------------------------------------------------------------------
# §3.2 Lemma 1.


def log_mixture0(params: Params) -> jax.Array:
    """``log p_{θ0}(x) = log E_{p(y)} p_{θ0}(x|y)``, the frozen mixture.

    θ0 is ``params["theta0"]`` when given, else ``stop_gradient(params["theta"])`` (θ = θ0).
    """
    theta0 = params.get("theta0", jax.lax.stop_gradient(params["theta"]))
    frozen = {**params, "theta": jax.lax.stop_gradient(theta0)}
    return jnp.logaddexp(log_gan_generator(frozen), log_data(frozen)) - jnp.log(2.0)


def lemma1_tables(params: Params) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The tables of Lemma 1.

    Returns ``log p_θ(x|y)`` ``[y, x]``, ``log q^r_{φ0}(y|x)`` ``[x, y]`` and
    ``log q^r(x|y) = log q^r_{φ0}(y|x) + log p_{θ0}(x) − log Z_y`` ``[y, x]``.
    """
    log_p_x_given_y = jnp.stack([log_gan_generator(params), log_data(params)])
    log_reversed = reversed_discriminator(log_discriminator(params))
    log_mixture = log_mixture0(params)
    unnormalized = log_reversed.T + log_mixture[None, :]
    log_qr_x_given_y = unnormalized - jax.nn.logsumexp(unnormalized, axis=1, keepdims=True)
    return log_p_x_given_y, log_reversed, log_qr_x_given_y


def lemma1_left(params: Params) -> jax.Array:
    """The generator loss ``−E_{p_θ(x|y)p(y)}[log q^r_{φ0}(y|x)]``."""
    log_p_x_given_y, log_reversed, _ = lemma1_tables(params)
    log_p_y = jnp.full((2,), -jnp.log(2.0), dtype=jnp.float64)
    return -sleep_objective(log_p_y, log_p_x_given_y, log_reversed)


def lemma1_right(params: Params) -> jax.Array:
    """``E_{p(y)}[KL(p_θ(x|y) ‖ q^r(x|y))] − JSD(p_θ(x|y=0) ‖ p_θ(x|y=1))``."""
    log_p_x_given_y, _, log_qr_x_given_y = lemma1_tables(params)
    expected_kl = jnp.mean(kl(log_p_x_given_y, log_qr_x_given_y))
    return expected_kl - jsd(log_p_x_given_y[0], log_p_x_given_y[1])


def lemma1_constant(params: Params) -> jax.Array:
    """``E_{p(y)}[log Z_y]`` with ``Z_y = Σ_x q^r_{φ0}(y|x) p_{θ0}(x)``; ``−log 2`` at ``D*``."""
    log_mixture = log_mixture0(params)
    log_reversed = reversed_discriminator(log_discriminator(params))
    return jnp.mean(jax.nn.logsumexp(log_reversed.T + log_mixture[None, :], axis=1))


def lemma1_remainder(params: Params) -> jax.Array:
    """``KL(p_θ(x) ‖ p_{θ0}(x))`` between the mixtures: ``right − left − constant`` at any θ.

    Zero, with zero gradient, at θ = θ0; checked away from θ0 by giving ``params["theta0"]``.
    """
    mixture = jnp.logaddexp(log_gan_generator(params), log_data(params)) - jnp.log(2.0)
    return kl(mixture, log_mixture0(params))


def _lemma1_points(key: jax.Array, sizes: Mapping[str, int]) -> tuple[Params, ...]:
    k = sizes["x"]
    keys = jax.random.split(key, 3)
    random_point = {"theta": _logits(keys[0], (k,)), "data": _logits(keys[1], (k,)),
                    "phi": _logits(keys[2], (k,))}
    optimal = optimal_discriminator_logits(log_data(random_point),
                                           log_gan_generator(random_point))
    return random_point, {**random_point, "phi": optimal}


LEMMA1 = Identity(
    name="lemma1",
    sense=(
        "gradients w.r.t. θ at θ = θ0, for ANY discriminator φ0 (checked at a random φ0 and at "
        "D* = p_data/(p_data + p_g)): ∇_θ[−E_{p_θ(x|y)p(y)} log q^r_{φ0}(y|x)] = "
        "∇_θ[E_{p(y)} KL(p_θ(x|y) ‖ q^r(x|y)) − JSD(p_θ(x|y=0) ‖ p_θ(x|y=1))], with p(y) uniform, "
        "q^r(x|y) = q^r_{φ0}(y|x) p_{θ0}(x) / Z_y, p_{θ0}(x) = E_{p(y)} p_{θ0}(x|y). "
        "Values: right = left + E_{p(y)}[log Z_y] + KL(p_θ(x) ‖ p_{θ0}(x)), Z_y = "
        "Σ_x q^r_{φ0}(y|x) p_{θ0}(x); at θ0 the last term and its gradient vanish, so the values "
        "differ by the constant E_{p(y)}[log Z_y] (= −log 2 at D*)"
    ),
    left=lemma1_left,
    right=lemma1_right,
    constant=lemma1_constant,
    wrt=("theta",),
    points=_lemma1_points,
)


# ---------------------------------------------------------------------------------------------
# §3.3 Lemma 2.


def lemma2_right(params: Params) -> jax.Array:
    """``−KL(q_η(z|x) p_data(x) ‖ p_θ(x, z))``, a KL between joints on (x, z)."""
    log_q_joint = log_encoder(params) + log_data(params)[:, None]
    return -kl(log_q_joint.reshape(-1), log_joint(params).reshape(-1))


def data_entropy(params: Params) -> jax.Array:
    """``H(p_data) = −E_{p_data}[log p_data(x)]``, the constant of Lemma 2."""
    return entropy(log_data(params))


LEMMA2 = Identity(
    name="lemma2",
    sense=(
        "exact values up to the data entropy, and exact gradients w.r.t. θ and η: "
        "L^vae(θ, η) = E_{p_data(x)}[E_{q_η(z|x)} log p_θ(x|z) − KL(q_η(z|x) ‖ p(z))] = "
        "−KL(q_η(z|x) p_data(x) ‖ p_θ(x, z)) − H(p_data), H(p_data) = −E_{p_data} log p_data(x). "
        "This is the y = 0 branch of §3.3 with the degenerate discriminator (q^r_* puts y = 0 on "
        "data x, so 2·E_{p_θ0(x)}[...] reduces to E_{p_data(x)}[...]); the model sits on the right "
        "of the KL. With the normalized posterior p_θ(z|x) in place of the joint, as the "
        "lecture's second line reads, it holds only up to E_{p_data}[log p_θ(x)], "
        "which depends on θ"
    ),
    left=vae_objective,
    right=lemma2_right,
    constant=data_entropy,
    wrt=("theta", "eta"),
    points=lambda key, sizes: tuple(latent_point(k, sizes) for k in jax.random.split(key, 2)),
)


# ---------------------------------------------------------------------------------------------
# §3.4 Wake-sleep correspondence.


def _gan_joint(params: Params) -> tuple[jax.Array, jax.Array]:
    """``log p(y)`` and ``log p_θ(x|y)`` ``[y, x]`` with ``p_θ(x|y=0) = Σ_z p(z) p_θ(x|z)``."""
    log_p_y = jnp.full((2,), -jnp.log(2.0), dtype=jnp.float64)
    return log_p_y, jnp.stack([log_marginal(params), log_data(params)])


def wake_sleep_left(params: Params) -> jax.Array:
    """``[L^vae(θ, η), E_{p_θ(x, h)}[log q_φ(h|x)] with h := y]`` (VAE; sleep phase)."""
    log_p_y, log_p_x_given_y = _gan_joint(params)
    sleep = sleep_objective(log_p_y, log_p_x_given_y, log_discriminator(params))
    return jnp.stack([vae_objective(params), sleep])


def gan_discriminator_objective(params: Params) -> jax.Array:
    """``½ E_{p_data}[log D_φ(x)] + ½ E_{p_g}[log(1 − D_φ(x))]``, the conventional GAN form."""
    log_d = jax.nn.log_sigmoid(params["phi"])
    log_not_d = jax.nn.log_sigmoid(-params["phi"])
    p_data = jnp.exp(log_data(params))
    p_g = jnp.exp(log_marginal(params))
    return 0.5 * jnp.sum(p_data * log_d) + 0.5 * jnp.sum(p_g * log_not_d)


def wake_sleep_right(params: Params) -> jax.Array:
    """``[E_{q_η(z|x)p_data(x)}[log p_θ(x, z)], GAN discriminator objective]`` (wake; GAN)."""
    return jnp.stack([wake_objective(params), gan_discriminator_objective(params)])


def wake_sleep_constant(params: Params) -> jax.Array:
    """``[−E_{p_data}[H(q_η(z|x))], 0]``: the VAE adds the encoder entropy to the wake objective."""
    encoder_entropy = jnp.sum(jnp.exp(log_data(params)) * entropy(log_encoder(params)))
    return jnp.stack([-encoder_entropy, jnp.zeros((), dtype=jnp.float64)])


WAKE_SLEEP = Identity(
    name="wake-sleep",
    sense=(
        "component 0 (VAE = wake, §3.4): gradients w.r.t. θ (and φ, trivially) at every point: "
        "∇_θ L^vae(θ, η) = ∇_θ E_{q_η(z|x)p_data(x)}[log p_θ(x, z)]; values differ by the "
        "encoder entropy, L^vae = wake + E_{p_data}[H(q_η(z|x))], constant in θ (not in η, so no "
        "η-gradient claim). Component 1 (GAN discriminator = sleep with h := y): exact values "
        "and gradients w.r.t. φ and θ: E_{p_θ(x, h)}[log q_φ(h|x)] with p_θ(x, y) = p(y) p_θ(x|y), "
        "p(y) uniform, p_θ(x|y=0) = Σ_z p(z) p_θ(x|z), equals "
        "½ E_{p_data}[log D_φ(x)] + ½ E_{p_θ(x|y=0)}[log(1 − D_φ(x))], i.e. half the §3 "
        "discriminator objective L_D"
    ),
    left=wake_sleep_left,
    right=wake_sleep_right,
    constant=wake_sleep_constant,
    wrt=("theta", "phi"),
    points=lambda key, sizes: tuple(latent_point(k, sizes) for k in jax.random.split(key, 2)),
)


IDENTITIES: Mapping[str, Identity] = {
    identity.name: identity
    for identity in (ELBO_DECOMPOSITION, LEMMA1, LEMMA2, WAKE_SLEEP)
}
"""The named identities :func:`verify` knows, by name."""


# ---------------------------------------------------------------------------------------------
# Checking.


def _errors(identity: Identity, params: Params) -> tuple[jax.Array, jax.Array]:
    value_error = jnp.max(jnp.abs(identity.left(params) + identity.constant(params)
                                  - identity.right(params)))
    left_jacobian = jax.jacrev(identity.left)(params)
    right_jacobian = jax.jacrev(identity.right)(params)
    grad_error = jnp.zeros((), dtype=jnp.float64)
    for group in identity.wrt:
        difference = jnp.abs(left_jacobian[group] - right_jacobian[group])
        grad_error = jnp.maximum(grad_error, jnp.max(difference))
    return value_error, grad_error


_jitted_errors = jax.jit(_errors, static_argnums=0)


def _space(params: Params) -> dict[str, int]:
    space = {"x": int(params["data"].shape[0])}
    if "prior" in params:
        space["z"] = int(params["prior"].shape[0])
    space["y"] = 2
    return space


def check(identity: Identity, *points: Params) -> Verification:
    """Evaluate ``identity`` exactly (float64) at each point; the errors are maxima over points.

    Args:
      identity: the identity to check (one of :data:`IDENTITIES`, or a variant built with
        ``_replace``).
      *points: parameter points (dicts of logits tables), at least one.

    Returns:
      The :class:`Verification` record; ``holds`` when both errors are below :data:`TOLERANCE`.
    """
    if not points:
        raise ConfigError("points: expected at least one parameter point, saw none")
    value_error, grad_error = 0.0, 0.0
    with jax.enable_x64(True):
        for params in points:
            params = {name: jnp.asarray(value, dtype=jnp.float64)
                      for name, value in params.items()}
            value, grad = _jitted_errors(identity, params)
            value_error = max(value_error, float(value))
            grad_error = max(grad_error, float(grad))
    return Verification(
        identity=identity.name,
        holds=bool(value_error < TOLERANCE and grad_error < TOLERANCE),
        sense=identity.sense,
        max_abs_error_value=value_error,
        max_abs_error_grad=grad_error,
        space=_space(points[0]),
    )


def checked_sizes(sizes: Mapping[str, int] | None) -> dict[str, int]:
    """``sizes`` merged into :data:`DEFAULT_SIZES`, or a ConfigError naming the bad entry."""
    if sizes is None:
        return dict(DEFAULT_SIZES)
    if not isinstance(sizes, Mapping):
        raise ConfigError(
            f"sizes: expected a mapping like {{'x': 5, 'z': 3}}, saw {describe(sizes)}")
    unknown = sorted(set(sizes) - set(DEFAULT_SIZES))
    if unknown:
        raise ConfigError(
            f"sizes: unknown space(s) {unknown}, expected keys among {sorted(DEFAULT_SIZES)}")
    merged = {**DEFAULT_SIZES, **sizes}
    for name, size in merged.items():
        if isinstance(size, bool) or not isinstance(size, int) or size < 2:
            raise ConfigError(
                f"sizes[{name!r}]: expected an integer >= 2, saw {describe(size)}")
    return merged
