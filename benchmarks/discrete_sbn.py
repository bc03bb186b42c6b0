r"""Sigmoid belief nets on binarized MNIST trained by each discrete gradient estimator (issue [9] parts 4-5).

Question: trained under the protocol of RELAX (Grathwohl et al. 2018, Table 1) and DisARM (Dong,
Mnih & Tucker 2020), how do the estimators of :mod:`unigen.estimators` compare on the training
ELBO, the test 100-sample bound and the variance of the encoder's gradient, against steps and
against wall time; and how long is one training step against the same estimator and model written
in plain PyTorch (``baselines/torch_sbn_estimators.py``, CPU, 2 threads), in the same run?

Models (``--model``), the three of both papers, 200 binary latents per stochastic layer, data
TFDS ``binarized_mnist`` (the fixed binarization; the DisARM paper binarized dynamically):

* ``linear``: one layer. :math:`p(h) = \prod_d \mathrm{Bernoulli}(h_d; \sigma(a_d))`,
  :math:`p(x \mid h) = \prod_i \mathrm{Bernoulli}(x_i; \sigma(W h + b)_i)`; recognition
  :math:`q(h \mid x) = \prod_d \mathrm{Bernoulli}(h_d; \sigma(V x + c)_d)`.
* ``two-layer``: linear 200-200, :math:`p(h_2) p(h_1 \mid h_2) p(x \mid h_1)` and
  :math:`q(h_1 \mid x) q(h_2 \mid h_1)`, each conditional one affine map. The estimators are applied
  layer by layer (as in ARM's and DisARM's multi-layer experiments): layer 1's f draws h2 from
  q(h2 | h1) with fixed noise and carries layer 2's own estimate, so every layer's gradient is the
  same estimator's; VIMCO scores the joint draws. REBAR and RELAX are refused here: their control
  variate must be continuous in layer 1's noise, which a hard draw of h2 above a relaxed h1 is not.
* ``nonlinear``: one stochastic layer with two deterministic tanh layers of 200 on each side
  (RELAX's nonlinear model; DisARM's code uses LeakyReLU(0.3) instead of tanh).

Affine maps between stochastic layers start at N(0, 0.01²), tanh layers at N(0, 1/fan-in), prior
logits and hidden biases at zero, the visible biases b at the logits of the training pixel means
(:func:`init`).

Objective: the ELBO :math:`\mathbb{E}_q[f_x(h)]`, :math:`f_x(h) = \log p(h) + \log p(x \mid h) - \log q(h \mid x)`.
Every estimator is the library's ``*_surrogate`` applied per example (``jax.vmap`` over the batch):
a scalar whose gradient in the encoder logits is the estimator, and whose gradient in θ (and the
direct part in φ) is the pathwise gradient of f. The uniforms behind the draws are drawn for the
whole batch at once (:func:`draw_noise`), from ``fold_in(run key, step)`` inside the compiled step. Estimators (``--estimators``):

* ``score``: the score function, one draw, no baseline;
* ``loo``: the score function with the leave-one-out baseline, 2 draws (DisARM's "REINFORCE LOO");
* ``arm``, ``disarm``: :func:`unigen.estimators.arm.arm_surrogate` / ``disarm_surrogate`` (one antithetic pair);
* ``rebar``, ``relax``: :func:`unigen.estimators.rebar.control_variate_surrogate` with REBAR's /
  RELAX's control (:func:`~unigen.estimators.rebar.rebar_control`,
  :func:`~unigen.estimators.relax.relax_control`), its parameters (η, log λ, and RELAX's network)
  trained by Adam on the gradient of the squared norm of the encoder gradient (the papers' variance
  minimization), one draw;
* ``muprop``: :func:`unigen.estimators.muprop.muprop_surrogate`, one draw;
* ``vimco``: :func:`unigen.estimators.vimco.vimco_surrogate` with K = 2 (it maximizes the 2-sample
  bound, not the ELBO: its training ELBO is read as for the others, one draw);
* ``straight-through``: :func:`unigen.estimators.straight_through.straight_through_surrogate`, τ = 1
  (biased).

Measurements, every ``--eval-every`` steps: the training ELBO (one draw per example on the first
``--train-eval-n`` training images), the test 100-sample bound (first ``--test-n`` test images,
``--test-k`` importance samples from q), and the variance of the encoder gradient: ``--variance-draws``
independent estimates of the gradient in φ = (V, c) on one fixed training batch, the per-coordinate
variance averaged over coordinates. Training wall time excludes these evaluations.

Speed (``--speed``): seconds per training step of unigen and of the PyTorch baseline (2 threads and
1 thread), interleaved in ``--speed-repeats`` repeats of ``--speed-steps`` steps each, order
alternating. unigen has two rows: one compiled call per step (``block_until_ready`` after each), and
all ``--speed-steps`` steps of a repeat in one compiled call (:func:`make_fused_steps`, a
``lax.scan``; as unigen's trainer runs several steps per call). Both rows are against the same
PyTorch timings; a ratio is the median of per-repeat ratios (torch/unigen) with min and max.

Run::

    python benchmarks/discrete_sbn.py --quick          # ~13 min on 2 shared cores: 3 seeds x 9 estimators x 500 steps + speed
    python benchmarks/discrete_sbn.py --model two-layer --steps 800 --eval-every 200 --train-eval-n 1000 \
        --test-n 500 --variance-draws 10                   # and --model nonlinear: the budget of README's table
    python benchmarks/discrete_sbn.py --no-train --speed-repeats 7   # the speed table only (every estimator)
    python benchmarks/discrete_sbn.py --steps 100000 --seeds 5 --test-n 10000    # towards the papers' protocol
    python benchmarks/discrete_sbn.py --replot         # redraw the PNG from the JSON
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from unigen import data  # noqa: E402
from unigen.estimators import _discrete  # noqa: E402
from unigen.estimators.arm import arm_surrogate, disarm_surrogate  # noqa: E402
from unigen.estimators.muprop import muprop_surrogate  # noqa: E402
from unigen.estimators.rebar import control_variate_surrogate, rebar_control, rebar_init  # noqa: E402
from unigen.estimators.relax import relax_control, relax_init  # noqa: E402
from unigen.estimators.straight_through import straight_through_surrogate  # noqa: E402
from unigen.estimators.vimco import vimco_surrogate  # noqa: E402

DEFAULT_DATA_DIR = REPO.parent / "shared" / "data" / "tfds"
RESULTS = REPO / "benchmarks" / "results"
MODELS = ("linear", "two-layer", "nonlinear")
LABELS = {"linear": "linear SBN-200", "two-layer": "linear two-layer SBN-200-200",
          "nonlinear": "nonlinear SBN-200 (two tanh layers of 200 each side)"}
ESTIMATORS = ("score", "loo", "arm", "disarm", "rebar", "relax", "muprop", "vimco", "straight-through")
TORCH_BASELINES = ESTIMATORS  # baselines/torch_sbn_estimators.py has every one
HIDDEN = 200
DATA_DIM = 784
BERNOULLI = _discrete.BERNOULLI

# The papers' settings, recorded with where they come from. Numbers that were not read from a
# citable source are None, so that nothing unverified is printed as published.
PROTOCOL = {
    "batch_size": 50,
    "optimizer": "Adam",
    "learning_rate": 1e-4,
    "steps": 1_000_000,
    "source": ("the DisARM authors' launcher (google-research/google-research, "
               "disarm/binary/experiment_launcher_singlelayer.py, read this session): batch_size 50, Adam 1e-4 for "
               "encoder and decoder, num_steps 1e6, 100 evaluation samples; it trains the prior logits by SGD 1e-2 "
               "(here Adam 1e-4 with the rest) and its nonlinear model uses LeakyReLU(0.3) layers (here tanh, as "
               "RELAX's)"),
}
RELAX_SOURCE = ("https://github.com/duvenaud/relax/blob/e9464a13f94944dd4cba3d0215b52afdfde92cd3/paper/"
                "generalized_rebar.tex")
PUBLISHED: dict[str, dict[str, Any]] = {
    "relax_table1": {
        "source": "Grathwohl et al. 2018, Table 1, 'Highest training ELBO for discrete variational autoencoders', "
                  "MNIST rows, read from the authors' LaTeX source " + RELAX_SOURCE,
        "values": {  # model -> estimator -> highest training ELBO (nats); columns Concrete, NVIL, MuProp, REBAR, RELAX
            "linear": {"concrete": -111.3, "nvil": -112.5, "muprop": -111.7, "rebar": -111.6, "relax": -111.20},
            "two-layer": {"concrete": -99.62, "nvil": -99.6, "muprop": -99.07, "rebar": -98.22, "relax": -98.00},
            "nonlinear": {"concrete": -102.2, "nvil": -101.5, "muprop": -101.1, "rebar": -81.01, "relax": -78.13},
        },
        "note": "the repository's last stored version of the paper source, not checked against the ICLR PDF; the "
                "highest training ELBO over the papers' full runs, not a value at a step count ours reached",
    },
    "disarm_table": {"source": "Dong et al. 2020, training-ELBO table (dynamic MNIST; linear, two-layer, nonlinear)",
                     "values": None, "note": "the table's text was not reachable through the search tool (three "
                                             "sessions; only the paper's abstract and introduction are stored)"},
}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short run: 1,000 steps, 3 seeds, small evaluations")
    parser.add_argument("--model", default="linear", choices=MODELS)
    parser.add_argument("--estimators", default=",".join(ESTIMATORS))
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=PROTOCOL["batch_size"])
    parser.add_argument("--lr", type=float, default=PROTOCOL["learning_rate"])
    parser.add_argument("--control-lr", type=float, default=1e-3, help="Adam rate of REBAR/RELAX's control parameters")
    parser.add_argument("--eval-every", type=int, default=5_000)
    parser.add_argument("--train-eval-n", type=int, default=5_000)
    parser.add_argument("--test-n", type=int, default=10_000)
    parser.add_argument("--test-k", type=int, default=100)
    parser.add_argument("--variance-draws", type=int, default=100)
    parser.add_argument("--train", action=argparse.BooleanOptionalAction, default=True,
                        help="train every estimator (--no-train: the speed table only)")
    parser.add_argument("--speed", action=argparse.BooleanOptionalAction, default=None,
                        help="time unigen against PyTorch on the linear model (default: with --model linear)")
    parser.add_argument("--speed-steps", type=int, default=50)
    parser.add_argument("--speed-repeats", type=int, default=7)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="TFDS data directory")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--png", type=Path, default=None)
    parser.add_argument("--replot", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.seeds, args.eval_every = 500, 3, 125
        args.train_eval_n, args.test_n, args.variance_draws = 1_000, 500, 20
        args.speed_steps, args.speed_repeats = 10, 5
    suffix = ("" if args.model == "linear" else "_" + args.model.replace("-", "_")) + ("_quick" if args.quick else "")
    args.json = args.json or RESULTS / f"discrete_sbn{suffix}.json"
    args.png = args.png or RESULTS / f"discrete_sbn{suffix}.png"
    if args.speed is None:
        args.speed = args.model == "linear"
    if not args.train:
        args.json = RESULTS / "discrete_sbn_speed.json" if args.json == RESULTS / f"discrete_sbn{suffix}.json" else args.json
    args.estimators = tuple(e.strip() for e in args.estimators.split(",") if e.strip())
    bad = [e for e in args.estimators if e not in ESTIMATORS]
    if bad or not args.estimators:
        parser.error(f"--estimators: expected names from {','.join(ESTIMATORS)}, got {bad or 'none'}")
    if "--estimators" not in (argv if argv is not None else sys.argv[1:]):
        args.estimators = tuple(e for e in args.estimators if e in SUPPORTED[args.model])
    unsupported = [e for e in args.estimators if e not in SUPPORTED[args.model]]
    if unsupported:
        parser.error(f"--estimators: --model {args.model} expected names from {','.join(SUPPORTED[args.model])}, "
                     f"got {','.join(unsupported)}")
    for name in ("steps", "seeds", "batch_size", "eval_every", "train_eval_n", "test_n", "test_k",
                 "variance_draws", "speed_steps", "speed_repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: expected a positive integer, got {getattr(args, name)}")
    return args


# ----------------------------------------------------------------------------------------- model


def _normal(key: jax.Array, shape: tuple[int, int], scale: float) -> jax.Array:
    return scale * jax.random.normal(key, shape)


def init(model: str, key: jax.Array, pixel_mean: np.ndarray) -> dict[str, dict[str, jax.Array]]:
    """θ (generative) and φ (recognition) of ``model``; biases zero except the visible ones b, set
    at the logits of the training pixel means. Affine maps between stochastic layers start at
    N(0, 0.01²); the nonlinear model's tanh layers at N(0, 1/fan-in)."""
    keys = iter(jax.random.split(key, 8))
    bias = jnp.asarray(np.log(pixel_mean) - np.log1p(-pixel_mean), jnp.float32)
    zeros = jnp.zeros((HIDDEN,))
    if model == "nonlinear":
        def layer(n_in: int, n_out: int) -> dict[str, jax.Array]:
            return {"w": _normal(next(keys), (n_in, n_out), 1 / math.sqrt(n_in)), "b": jnp.zeros((n_out,))}
        return {"theta": {"prior": zeros, "d1": layer(HIDDEN, HIDDEN), "d2": layer(HIDDEN, HIDDEN),
                          "w": _normal(next(keys), (HIDDEN, DATA_DIM), 1 / math.sqrt(HIDDEN)), "b": bias},
                "phi": {"e1": layer(DATA_DIM, HIDDEN), "e2": layer(HIDDEN, HIDDEN),
                        "v": _normal(next(keys), (HIDDEN, HIDDEN), 1 / math.sqrt(HIDDEN)), "c": zeros}}
    params = {"theta": {"prior": zeros, "w": _normal(next(keys), (HIDDEN, DATA_DIM), 0.01), "b": bias},
              "phi": {"v": _normal(next(keys), (DATA_DIM, HIDDEN), 0.01), "c": zeros}}
    if model == "two-layer":  # h2 -> h1 -> x; q(h1 | x) q(h2 | h1)
        params["theta"].update(w2=_normal(next(keys), (HIDDEN, HIDDEN), 0.01), b1=zeros)
        params["phi"].update(v2=_normal(next(keys), (HIDDEN, HIDDEN), 0.01), c2=zeros)
    return params


def bernoulli_log_prob(logits: jax.Array, values: jax.Array) -> jax.Array:
    """Σ_i log Bernoulli(values_i; σ(logits_i)) = Σ_i values_i·l_i − softplus(l_i); values may be
    relaxed (in [0, 1])."""
    return jnp.sum(values * logits - jax.nn.softplus(logits))


def _tanh_layer(layer: dict[str, jax.Array], a: jax.Array) -> jax.Array:
    return jnp.tanh(a @ layer["w"] + layer["b"])


def encoder_logits(model: str, phi: dict[str, Any], x: jax.Array) -> jax.Array:
    """Logits of q(h | x) (of the first stochastic layer h1 for ``two-layer``)."""
    if model == "nonlinear":
        x = _tanh_layer(phi["e2"], _tanh_layer(phi["e1"], x))
    return x @ phi["v"] + phi["c"]


def decoder_logits(model: str, theta: dict[str, Any], h: jax.Array) -> jax.Array:
    if model == "nonlinear":
        h = _tanh_layer(theta["d2"], _tanh_layer(theta["d1"], h))
    return h @ theta["w"] + theta["b"]


def log_weight(model: str, params: dict[str, Any], x: jax.Array, h: jax.Array,
               logits: jax.Array | None = None) -> jax.Array:
    """f_x(h) = log p(h) + log p(x | h) − log q(h | x) of one example and one (possibly relaxed) draw
    of a one-stochastic-layer model; ``logits``: q(h | x)'s, when the caller has them (then the
    encoder runs once per example, and its backward pass once)."""
    theta = params["theta"]
    logits = encoder_logits(model, params["phi"], x) if logits is None else logits
    return (bernoulli_log_prob(theta["prior"], h) + bernoulli_log_prob(decoder_logits(model, theta, h), x)
            - bernoulli_log_prob(logits, h))


def upper_log_weight(params: dict[str, Any], h1: jax.Array, h2: jax.Array) -> jax.Array:
    """The two-layer model's upper terms log p(h2) + log p(h1 | h2) − log q(h2 | h1)."""
    theta, phi = params["theta"], params["phi"]
    return (bernoulli_log_prob(theta["prior"], h2) + bernoulli_log_prob(h2 @ theta["w2"] + theta["b1"], h1)
            - bernoulli_log_prob(h1 @ phi["v2"] + phi["c2"], h2))


def lower_log_weight(params: dict[str, Any], x: jax.Array, h1: jax.Array, logits: jax.Array | None = None) -> jax.Array:
    """The two-layer model's lower terms log p(x | h1) − log q(h1 | x) (``logits``: q(h1 | x)'s, if known)."""
    logits = encoder_logits("two-layer", params["phi"], x) if logits is None else logits
    return bernoulli_log_prob(h1 @ params["theta"]["w"] + params["theta"]["b"], x) - bernoulli_log_prob(logits, h1)


def sampled_log_weight(model: str, params: dict[str, Any], x: jax.Array, key: jax.Array) -> jax.Array:
    """f_x at one draw of every stochastic layer from q (no gradient: evaluation only)."""
    k1, k2 = jax.random.split(key)
    h1 = jax.random.bernoulli(k1, jax.nn.sigmoid(encoder_logits(model, params["phi"], x))).astype(x.dtype)
    if model != "two-layer":
        return log_weight(model, params, x, h1)
    h2 = jax.random.bernoulli(k2, jax.nn.sigmoid(h1 @ params["phi"]["v2"] + params["phi"]["c2"])).astype(x.dtype)
    return lower_log_weight(params, x, h1) + upper_log_weight(params, h1, h2)


# ------------------------------------------------------------------------------------ estimators


def loo_surrogate(f: Callable, logits: jax.Array, u: jax.Array) -> jax.Array:
    """Score function with the leave-one-out baseline over the N draws of ``u`` (N >= 2)."""
    b = _discrete.hard(BERNOULLI, _discrete.relaxed_logits(BERNOULLI, logits, u))
    values = jax.vmap(f)(b)
    n = values.shape[0]
    centred = jax.lax.stop_gradient((values - jnp.mean(values)) * (n / (n - 1)))
    log_q = jax.vmap(lambda draw: _discrete.log_mass(BERNOULLI, logits, draw))(b)
    return _discrete.estimate(values, jnp.mean(centred * log_q))


def score_surrogate(f: Callable, logits: jax.Array, u: jax.Array) -> jax.Array:
    """Score function without a baseline."""
    b = _discrete.hard(BERNOULLI, _discrete.relaxed_logits(BERNOULLI, logits, u))
    values = jax.vmap(f)(b)
    log_q = jax.vmap(lambda draw: _discrete.log_mass(BERNOULLI, logits, draw))(b)
    return _discrete.estimate(values, jnp.mean(jax.lax.stop_gradient(values) * log_q))


def vimco2_surrogate(f: Callable, logits: jax.Array, u: jax.Array) -> jax.Array:
    b = _discrete.hard(BERNOULLI, _discrete.relaxed_logits(BERNOULLI, logits, u))
    log_q = jax.vmap(lambda draw: _discrete.log_mass(BERNOULLI, logits, draw))(b)
    return vimco_surrogate(jax.vmap(f)(b), log_q)


DRAWS = {"score": 1, "loo": 2, "arm": 1, "disarm": 1, "rebar": 1, "relax": 1, "muprop": 1, "vimco": 2,
         "straight-through": 1}
CONTROLLED = ("rebar", "relax")
# Estimators applied layer by layer in the two-layer model (each layer's f draws the layers above it
# with fixed noise and carries their own estimator). REBAR/RELAX would need the upper layers relaxed
# too for their control variate to be continuous in z, and VIMCO is done jointly (one K-sample bound).
LAYERWISE = ("score", "loo", "arm", "disarm", "muprop", "straight-through")
SUPPORTED = {"linear": ESTIMATORS, "nonlinear": ESTIMATORS, "two-layer": LAYERWISE + ("vimco",)}


def control_init(name: str, key: jax.Array) -> Any:
    if name == "rebar":
        return rebar_init()
    if name == "relax":
        return relax_init(key, HIDDEN)
    return {}


def layer_surrogate(name: str, f: Callable, logits: jax.Array, u: jax.Array, v: jax.Array | None = None,
                    control: Any = None, relaxed: Callable | None = None) -> jax.Array:
    """The estimator's surrogate of E_{Bernoulli(σ(logits))}[f(h)]: value f's average at the draws,
    gradient in the logits the estimate. ``u`` (and REBAR/RELAX's ``v``): the uniforms behind the
    draws, ``[DRAWS[name], *logits.shape]``; ``relaxed``: f through stopped parameters (REBAR/RELAX)."""
    if name == "score":
        return score_surrogate(f, logits, u)
    if name == "loo":
        return loo_surrogate(f, logits, u)
    if name == "arm":
        return arm_surrogate(f, logits, u)
    if name == "disarm":
        return disarm_surrogate(f, logits, u)
    if name == "muprop":
        return muprop_surrogate(f, BERNOULLI, logits, u)
    if name == "vimco":
        return vimco2_surrogate(f, logits, u)
    if name == "straight-through":
        return straight_through_surrogate(f, BERNOULLI, logits, u, 1.0)
    make = rebar_control if name == "rebar" else relax_control
    return control_variate_surrogate(f, BERNOULLI, logits, u, v, make(relaxed, BERNOULLI, control))


def two_layer_vimco(params: Any, x: jax.Array, u1: jax.Array, u2: jax.Array) -> jax.Array:
    """VIMCO on the joint draws (h1, h2) of the two-layer model, K = 2 (``u1``, ``u2``: ``[2, HIDDEN]``)."""
    logits1 = encoder_logits("two-layer", params["phi"], x)
    h1 = _discrete.hard(BERNOULLI, _discrete.relaxed_logits(BERNOULLI, logits1, u1))
    logits2 = h1 @ params["phi"]["v2"] + params["phi"]["c2"]
    h2 = _discrete.hard(BERNOULLI, _discrete.relaxed_logits(BERNOULLI, logits2, u2))
    values = jax.vmap(lambda a, b: lower_log_weight(params, x, a, logits1) + upper_log_weight(params, a, b))(h1, h2)
    log_q = jax.vmap(lambda a, b, la: _discrete.log_mass(BERNOULLI, logits1, a) + _discrete.log_mass(BERNOULLI, la, b))(
        h1, h2, logits2)
    return vimco_surrogate(values, log_q)


def noise_shapes(model: str, name: str) -> dict[str, tuple[int, int]]:
    """The uniforms one example's estimate reads: ``u`` behind the (first) layer's draws, REBAR/RELAX's
    ``v`` behind z̃, and the two-layer model's ``u2`` behind h2 (held fixed across h1's draws)."""
    shapes = {"u": (DRAWS[name], HIDDEN)}
    if name in CONTROLLED:
        shapes["v"] = (DRAWS[name], HIDDEN)
    if model == "two-layer":
        shapes["u2"] = (DRAWS[name], HIDDEN)
    return shapes


def draw_noise(model: str, name: str, key: jax.Array, batch: int) -> dict[str, jax.Array]:
    """Every uniform of a batch's estimate from one generator call, ``[batch, total draws, HIDDEN]``
    cut into the kinds of :func:`noise_shapes`: independent across examples, draws and kinds, as
    per-example keys would give, without a ``split`` and a draw per example."""
    shapes = noise_shapes(model, name)
    sizes = [shape[0] for shape in shapes.values()]
    every = _discrete.uniform(key, batch, jnp.zeros((sum(sizes), HIDDEN)))
    parts = jnp.split(every, np.cumsum(sizes)[:-1].tolist(), axis=1)
    return dict(zip(shapes, parts))


def example_surrogate(model: str, name: str, params: Any, control: Any, x: jax.Array,
                      noise: dict[str, jax.Array]) -> jax.Array:
    """The estimator's surrogate of one example x (its gradient is the estimate); ``noise``: this
    example's uniforms (:func:`noise_shapes`)."""
    logits = encoder_logits(model, params["phi"], x)
    if model == "two-layer":
        if name == "vimco":
            return two_layer_vimco(params, x, noise["u"], noise["u2"])

        def lower(h1: jax.Array) -> jax.Array:
            upper_logits = h1 @ params["phi"]["v2"] + params["phi"]["c2"]
            upper = layer_surrogate(name, partial(upper_log_weight, params, h1), upper_logits, noise["u2"])
            return lower_log_weight(params, x, h1, logits) + upper

        return layer_surrogate(name, lower, logits, noise["u"])
    # The control sees the model through stopped parameters: c(z) then depends on φ only through
    # the noisy logits z, as the estimator assumes (f of the library's signature does not depend on
    # the parameters); with live parameters, c(z̃)·∇log q would add a biased term in θ and φ.
    stopped = jax.lax.stop_gradient
    return layer_surrogate(name, partial(log_weight, model, params, x, logits=logits), logits, noise["u"],
                           noise.get("v"), control,
                           partial(log_weight, model, stopped(params), x, logits=stopped(logits)))


def batch_loss(model: str, name: str, params: Any, control: Any, x: jax.Array, key: jax.Array) -> jax.Array:
    noise = draw_noise(model, name, key, x.shape[0])
    return -jnp.mean(jax.vmap(lambda xi, ni: example_surrogate(model, name, params, control, xi, ni))(x, noise))


def gradients(model: str, name: str, params: Any, control: Any, x: jax.Array, key: jax.Array) -> tuple[Any, Any]:
    """(gradient of the negative ELBO in params, gradient of ‖∇_φ‖² in the control parameters)."""
    if name not in CONTROLLED:
        return jax.grad(batch_loss, argnums=2)(model, name, params, control, x, key), {}

    def square(c: Any) -> tuple[jax.Array, Any]:
        g = jax.grad(batch_loss, argnums=2)(model, name, params, c, x, key)
        return sum(jnp.sum(leaf * leaf) for leaf in jax.tree.leaves(g["phi"])), g

    (_, g), control_gradient = jax.value_and_grad(square, has_aux=True)(control)
    return g, control_gradient


@functools.lru_cache(maxsize=None)
def make_step(model: str, name: str, lr: float, control_lr: float):
    optimizer, control_optimizer = optax.adam(lr), optax.adam(control_lr)

    def initial(params: Any, control: Any) -> Any:
        return optimizer.init(params), control_optimizer.init(control)

    @jax.jit
    def step(params: Any, control: Any, opt_state: Any, x: jax.Array, key: jax.Array, i: jax.Array):
        """Step i of the run whose key is ``key``: its noise from ``fold_in(key, i)``, derived in the
        compiled call (as unigen's trainer does), not by a host-side key per step."""
        g, cg = gradients(model, name, params, control, x, jax.random.fold_in(key, i))
        with jax.numpy_dtype_promotion("standard"):
            updates, state = optimizer.update(g, opt_state[0], params)
            control_updates, control_state = control_optimizer.update(cg, opt_state[1], control)
        return (optax.apply_updates(params, updates), optax.apply_updates(control, control_updates),
                (state, control_state))

    return initial, step


@functools.lru_cache(maxsize=None)
def make_fused_steps(model: str, name: str, lr: float, control_lr: float):
    """``run(params, control, opt_state, xs, key)``: the steps of :func:`make_step` over the batches
    ``xs`` (``[steps, batch, ...]``) in one compiled call (``lax.scan``), step i's key
    ``fold_in(key, i)`` (i counted from 0 in each call); returns the final (params, control, opt_state)."""
    _, step = make_step(model, name, lr, control_lr)

    @jax.jit
    def run(params: Any, control: Any, opt_state: Any, xs: jax.Array, key: jax.Array):
        def body(carry: Any, item: tuple[jax.Array, jax.Array]) -> tuple[Any, None]:
            x, i = item
            return step(*carry, x, key, i), None

        carry, _ = jax.lax.scan(body, (params, control, opt_state), (xs, jnp.arange(xs.shape[0])))
        return carry

    return run


# ------------------------------------------------------------------------------------ evaluation


@partial(jax.jit, static_argnums=0)
def elbo_one_draw(model: str, params: Any, x: jax.Array, key: jax.Array) -> jax.Array:
    keys = jax.random.split(key, x.shape[0])
    return jnp.mean(jax.vmap(partial(sampled_log_weight, model, params))(x, keys))


@partial(jax.jit, static_argnums=(0, 4))
def multi_sample_bound(model: str, params: Any, x: jax.Array, key: jax.Array, k: int) -> jax.Array:
    keys = jax.random.split(key, (k, x.shape[0]))
    w = jax.vmap(jax.vmap(partial(sampled_log_weight, model, params)))(jnp.broadcast_to(x, (k,) + x.shape), keys)
    return jnp.mean(jax.nn.logsumexp(w, axis=0) - jnp.log(k))


def chunked(fn: Callable, model: str, params: Any, x: np.ndarray, key: jax.Array, size: int, *extra: Any) -> float:
    total = 0.0
    for i, start in enumerate(range(0, x.shape[0], size)):
        part = x[start:start + size]
        total += float(fn(model, params, jnp.asarray(part), jax.random.fold_in(key, i), *extra)) * part.shape[0]
    return total / x.shape[0]


@partial(jax.jit, static_argnums=(0, 1, 6))
def encoder_gradient_variance(model: str, name: str, params: Any, control: Any, x: jax.Array, key: jax.Array,
                              draws: int) -> jax.Array:
    """Mean over φ's coordinates of the variance of ``draws`` independent estimates on batch x."""
    keys = jax.random.split(key, draws)
    g = jax.lax.map(lambda k: jax.grad(batch_loss, argnums=2)(model, name, params, control, x, k)["phi"], keys)
    flat = jnp.concatenate([leaf.reshape(draws, -1) for leaf in jax.tree.leaves(g)], axis=1)
    return jnp.mean(jnp.var(flat, axis=0, ddof=1))


# -------------------------------------------------------------------------------------- training


def train(name: str, seed: int, train_x: np.ndarray, test_x: np.ndarray, args) -> dict[str, Any]:
    pixel_mean = np.clip(train_x.mean(axis=0), 1e-3, 1 - 1e-3)
    key = jax.random.key(seed)
    k_init, k_control, k_train = jax.random.split(key, 3)
    params, control = init(args.model, k_init, pixel_mean), control_init(name, k_control)
    initial, step = make_step(args.model, name, args.lr, args.control_lr)
    opt_state = initial(params, control)
    rng = np.random.default_rng(seed)
    fixed_batch = jnp.asarray(train_x[:args.batch_size])
    train_eval, test_eval = train_x[:args.train_eval_n], test_x[:args.test_n]
    points, train_seconds, eval_key = [], 0.0, jax.random.key(10_000 + seed)

    def evaluate(at: int) -> None:
        t0 = time.perf_counter()
        elbo = chunked(elbo_one_draw, args.model, params, train_eval, jax.random.fold_in(eval_key, 2 * at), 1000)
        bound = chunked(multi_sample_bound, args.model, params, test_eval, jax.random.fold_in(eval_key, 2 * at + 1),
                        100, args.test_k)
        variance = float(encoder_gradient_variance(args.model, name, params, control, fixed_batch,
                                                   jax.random.fold_in(eval_key, 10_000_000 + at), args.variance_draws))
        points.append({"step": at, "train_seconds": train_seconds, "train_elbo": elbo, "test_bound": bound,
                       "encoder_gradient_variance": variance, "eval_seconds": time.perf_counter() - t0})
        print(f"  [{name} seed {seed}] step {at:>7,} {train_seconds:7.1f} s: train ELBO {elbo:8.2f}, "
              f"test {args.test_k}-sample bound {bound:8.2f}, Var ∇φ {variance:.3e}", flush=True)

    evaluate(0)
    order = rng.permutation(train_x.shape[0])
    cursor = 0
    for i in range(1, args.steps + 1):
        if cursor + args.batch_size > order.shape[0]:
            order, cursor = rng.permutation(train_x.shape[0]), 0
        x = jnp.asarray(train_x[order[cursor:cursor + args.batch_size]])
        cursor += args.batch_size
        t0 = time.perf_counter()
        params, control, opt_state = step(params, control, opt_state, x, k_train, i)
        if i % args.eval_every == 0 or i == args.steps:
            jax.block_until_ready(params)
            train_seconds += time.perf_counter() - t0
            evaluate(i)
        else:
            train_seconds += time.perf_counter() - t0  # dispatch only; the block at evaluations settles the rest
    finite = all(math.isfinite(p["train_elbo"]) for p in points)
    return {"estimator": name, "seed": seed, "steps": args.steps, "train_seconds": train_seconds,
            "finite": finite, "points": points,
            "control": {k: float(v) for k, v in control.items() if k != "network"} if control else {}}


# ----------------------------------------------------------------------------------------- speed


def speed(estimators: tuple[str, ...], train_x: np.ndarray, args) -> dict[str, Any]:
    import torch  # noqa: PLC0415

    from baselines import torch_sbn_estimators  # noqa: PLC0415

    pixel_mean = np.clip(train_x.mean(axis=0), 1e-3, 1 - 1e-3)
    rows = {}
    batches = [train_x[i * args.batch_size:(i + 1) * args.batch_size] for i in range(args.speed_steps)]
    for name in [e for e in estimators if e in TORCH_BASELINES]:
        params, control = init("linear", jax.random.key(0), pixel_mean), control_init(name, jax.random.key(1))
        initial, step = make_step("linear", name, args.lr, args.control_lr)
        fused = make_fused_steps("linear", name, args.lr, args.control_lr)
        opt_state = initial(params, control)
        jx = [jnp.asarray(b) for b in batches]
        stacked = jnp.stack(jx)
        params, control, opt_state = step(params, control, opt_state, jx[0], jax.random.key(0), 0)  # compile
        params, control, opt_state = fused(params, control, opt_state, stacked, jax.random.key(0))  # compile
        jax.block_until_ready(params)
        model = torch_sbn_estimators.build(name, pixel_mean, seed=0, learning_rate=args.lr,
                                           control_learning_rate=args.control_lr)
        tx = [torch.from_numpy(np.asarray(b, np.float32)) for b in batches]
        torch_sbn_estimators.train_step(model, tx[0])  # warm-up
        times: dict[str, list[float]] = {"unigen": [], "fused": [], "torch": [], "torch1": []}
        for repeat in range(args.speed_repeats):
            run_key, fused_key = jax.random.key(repeat + 1), jax.random.key(10_000 + repeat)

            def run_unigen() -> float:
                nonlocal params, control, opt_state
                t0 = time.perf_counter()
                for i, x in enumerate(jx):
                    params, control, opt_state = step(params, control, opt_state, x, run_key, i)
                    jax.block_until_ready(params)
                return (time.perf_counter() - t0) / len(jx)

            def run_fused() -> float:
                nonlocal params, control, opt_state
                t0 = time.perf_counter()
                params, control, opt_state = fused(params, control, opt_state, stacked, fused_key)
                jax.block_until_ready(params)
                return (time.perf_counter() - t0) / len(jx)

            def run_torch(threads: int = 2) -> float:
                torch.set_num_threads(threads)
                t0 = time.perf_counter()
                for x in tx:
                    torch_sbn_estimators.train_step(model, x)
                return (time.perf_counter() - t0) / len(tx)

            order = [("unigen", run_unigen), ("torch1", lambda: run_torch(1)), ("fused", run_fused),
                     ("torch", run_torch)]
            for kind, run in order[::-1] if repeat % 2 else order:
                times[kind].append(run())
        row: dict[str, Any] = {f"{kind}_ms": 1e3 * float(np.median(t)) for kind, t in times.items()}
        row.update({f"{kind}_ms_all": [1e3 * x for x in t] for kind, t in times.items()})
        for mine, theirs, key in (("unigen", "torch", "ratio"), ("unigen", "torch1", "ratio1"),
                                  ("fused", "torch", "fused_ratio"), ("fused", "torch1", "fused_ratio1")):
            ratios = np.asarray(times[theirs]) / np.asarray(times[mine])
            row.update({f"{key}_median": float(np.median(ratios)), f"{key}_min": float(ratios.min()),
                        f"{key}_max": float(ratios.max())})
        rows[name] = row
        print(f"[speed] {name:>8}: torch {row['torch_ms']:.2f} ms/step (1 thread {row['torch1_ms']:.2f}); unigen "
              f"1 step/call {row['unigen_ms']:.2f} ms, torch/unigen {row['ratio_median']:.2f} "
              f"({row['ratio_min']:.2f}-{row['ratio_max']:.2f}), 1 thread {row['ratio1_median']:.2f}; "
              f"{args.speed_steps} steps/call {row['fused_ms']:.2f} ms, {row['fused_ratio_median']:.2f} "
              f"({row['fused_ratio_min']:.2f}-{row['fused_ratio_max']:.2f}), 1 thread {row['fused_ratio1_median']:.2f}",
              flush=True)
    return {"batch_size": args.batch_size, "steps_per_repeat": args.speed_steps, "repeats": args.speed_repeats,
            "torch_threads": [2, 1], "torch_version": __import__("torch").__version__, "jax_version": jax.__version__,
            "unigen_rows": {"unigen": "one compiled call per step", "fused": f"{args.speed_steps} steps per compiled call"},
            "rows": rows}


# ------------------------------------------------------------------------------------- reporting


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for name in sorted(dict.fromkeys(r["estimator"] for r in runs), key=ESTIMATORS.index):
        mine = [r for r in runs if r["estimator"] == name]
        last = [r["points"][-1] for r in mine]
        row = {}
        for metric in ("train_elbo", "test_bound", "encoder_gradient_variance"):
            v = np.asarray([p[metric] for p in last], np.float64)
            row[metric] = {"mean": float(v.mean()), "se": float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0}
        row["seconds_per_1000_steps"] = float(np.median([1000 * r["train_seconds"] / r["steps"] for r in mine]))
        row["seeds"], row["diverged"] = len(mine), sum(not r["finite"] for r in mine)
        out[name] = row
    return out


def table(report: dict[str, Any]) -> str:
    settings = report["settings"]
    lines = [] if not report["summary"] else [
        f"{LABELS[settings['model']]}, {settings['steps']:,} steps of the papers' "
        f"{PROTOCOL['steps']:,} ({settings['seeds']} seeds, mean ± SE at the last step)",
        f"| estimator | train ELBO | test {settings['test_k']}-sample bound | Var ∇φ | s / 1000 steps |",
        "|---|---:|---:|---:|---:|"]
    for name, r in report["summary"].items():
        lines.append(f"| {name} | {r['train_elbo']['mean']:.2f} ± {r['train_elbo']['se']:.2f} "
                     f"| {r['test_bound']['mean']:.2f} ± {r['test_bound']['se']:.2f} "
                     f"| {r['encoder_gradient_variance']['mean']:.2e} | {r['seconds_per_1000_steps']:.1f} |")
    if report.get("speed"):
        steps = report["speed"]["steps_per_repeat"]
        lines += ["", f"| estimator | unigen calls | unigen ms/step | PyTorch 2 threads ms/step | ratio median (min–max) "
                  "| PyTorch 1 thread ms/step | ratio median (min–max) |", "|---|---|---:|---:|---:|---:|---:|"]
        for name, r in report["speed"]["rows"].items():
            for label, mine, key in (("1 step/call", "unigen", "ratio"), (f"{steps} steps/call", "fused", "fused_ratio")):
                if mine + "_ms" not in r:  # a JSON from before the fused row
                    continue
                lines.append(f"| {name} | {label} | {r[mine + '_ms']:.2f} | {r['torch_ms']:.2f} | "
                             f"{r[key + '_median']:.2f} ({r[key + '_min']:.2f}–{r[key + '_max']:.2f}) | "
                             f"{r['torch1_ms']:.2f} | {r[key + '1_median']:.2f} ({r[key + '1_min']:.2f}–{r[key + '1_max']:.2f}) |")
    return "\n".join(lines)


def plot(path: Path, report: dict[str, Any]) -> None:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    metrics = (("train_elbo", "train ELBO (1 draw)"), ("test_bound", f"test {report['settings']['test_k']}-sample bound"),
               ("encoder_gradient_variance", "Var of encoder gradient"))
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    names = list(report["summary"])
    for index, name in enumerate(names):
        mine = [r for r in report["runs"] if r["estimator"] == name]
        color = f"C{index % 10}"
        for col, (metric, label) in enumerate(metrics):
            values = np.asarray([[p[metric] for p in r["points"]] for r in mine])
            steps = np.asarray([p["step"] for p in mine[0]["points"]])
            seconds = np.median(np.asarray([[p["train_seconds"] for p in r["points"]] for r in mine]), axis=0)
            for row, xs in ((0, steps), (1, seconds)):
                ax = axes[row, col]
                mean = values.mean(axis=0)
                se = values.std(axis=0, ddof=1) / math.sqrt(len(mine)) if len(mine) > 1 else 0 * mean
                ax.plot(xs, mean, color=color, label=name if (row, col) == (0, 0) else None)
                ax.fill_between(xs, mean - se, mean + se, color=color, alpha=0.2)
                ax.set_xlabel("step" if row == 0 else "training wall time (s)")
                ax.set_ylabel(label)
                if metric == "encoder_gradient_variance":
                    ax.set_yscale("log")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"{LABELS[report['settings']['model']]} on binarized MNIST: {report['settings']['steps']:,} steps, "
                 f"{report['settings']['seeds']} seeds (mean ± SE)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.replot:
        report = json.loads(args.json.read_text())
        plot(args.png, report)
        print(table(report))
        return
    began = time.perf_counter()
    load_before = os.getloadavg()
    train_x = np.asarray(data.load("tfds:binarized_mnist", "train", data_dir=str(args.data_dir)).x, np.float32)
    test_x = np.asarray(data.load("tfds:binarized_mnist", "test", data_dir=str(args.data_dir)).x, np.float32)
    train_x, test_x = train_x.reshape(train_x.shape[0], -1), test_x.reshape(test_x.shape[0], -1)
    report: dict[str, Any] = {
        "question": __doc__.split("\n\n")[1], "protocol": PROTOCOL, "published": PUBLISHED,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "load_before": load_before,
    }
    if args.speed:
        report["speed"] = speed(args.estimators, train_x, args)
    runs: list[dict[str, Any]] = []
    args.json.parent.mkdir(parents=True, exist_ok=True)
    for name in args.estimators if args.train else ():
        for seed in range(args.seeds):
            runs.append(train(name, seed, train_x, test_x, args))
            report["runs"], report["summary"] = runs, summarize(runs)
            report["load_after"], report["wall_seconds"] = os.getloadavg(), time.perf_counter() - began
            args.json.write_text(json.dumps(report, indent=1))  # after every run: a cut run keeps its rows
    report["load_after"], report["wall_seconds"] = os.getloadavg(), time.perf_counter() - began
    report.setdefault("summary", {})
    args.json.write_text(json.dumps(report, indent=1))
    if runs:
        plot(args.png, report)
    print(table(report))
    print(f"wall {report['wall_seconds']:.0f} s, load {load_before} -> {report['load_after']}; wrote {args.json}"
          + (f", {args.png}" if runs else ""))


if __name__ == "__main__":
    main()
