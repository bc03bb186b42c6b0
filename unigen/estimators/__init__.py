r"""Monte Carlo gradient estimators and their variance (lecture §2.2–2.3; Mohamed et al. 2020).

Each estimator takes the distribution family, its parameters, the integrand, a key and a sample
count, and returns the estimate of :math:`\nabla_\lambda \mathbb{E}_{q_\lambda}[f]` as a pytree
like the parameters (see :mod:`unigen.estimators._common` for the shared signature); all are pure,
jit-able and vmap-able.

* :func:`score_function` — the log-derivative trick, optionally with a fixed baseline.
* :func:`score_function_moving_average`, :func:`score_function_optimal_baseline`,
  :func:`score_function_learned_baseline` — baselines (:mod:`~unigen.estimators.baselines`).
* :func:`delta_method_control_variate` — a second-order Taylor control variate.
* :func:`pathwise` — the reparameterization trick.
* :func:`concrete` — the Concrete / Gumbel-softmax relaxation for discrete draws (biased).
* :func:`leave_one_out` — the multi-sample leave-one-out baseline (VIMCO-style).

For Bernoulli and categorical latents (each refuses other families with a named error):

* :func:`muprop` — a first-order Taylor control variate around the mean (Gu et al. 2016).
* :func:`rebar`, :func:`relax` — the Concrete relaxation as a control variate, and a learned one
  (Tucker et al. 2017; Grathwohl et al. 2018); their control parameters are explicit
  (:func:`rebar_init`, :func:`relax_init`), each call also returns their variance gradient, and
  :func:`fit_control_variate` tunes them.
* :func:`arm`, :func:`disarm` — augment-REINFORCE-merge and its antithetic refinement, binary
  latents only (Yin & Zhou 2019; Dong et al. 2020).
* :func:`straight_through` — the straight-through Gumbel-softmax (Jang et al. 2017; biased).
* :func:`vimco` — the gradient of the K-sample bound :math:`\mathbb{E}[\log\frac1K\sum_k e^{f}]`
  with per-sample leave-one-out baselines (Mnih & Rezende 2016); any family.

:func:`variance_report` measures them on the :mod:`~unigen.estimators.problems`, against the
exact references of :mod:`~unigen.estimators.exact`.
"""

from unigen.estimators.baselines import (
    MovingAverage,
    fit_learned_baseline,
    learned_baseline_apply,
    learned_baseline_init,
    moving_average_init,
    moving_average_update,
    optimal_baseline,
    score_function_learned_baseline,
    score_function_moving_average,
    score_function_optimal_baseline,
)
from unigen.estimators.arm import arm, disarm
from unigen.estimators.control_variates import delta_method_control_variate
from unigen.estimators.leave_one_out import leave_one_out
from unigen.estimators.muprop import muprop
from unigen.estimators.pathwise import pathwise
from unigen.estimators.problems import PROBLEMS, Problem, make_problem
from unigen.estimators.rebar import fit_control_variate, rebar, rebar_init
from unigen.estimators.relax import relax, relax_init
from unigen.estimators.relaxed import concrete
from unigen.estimators.report import ESTIMATORS, Report, format_table, variance_report
from unigen.estimators.score_function import score_function
from unigen.estimators.straight_through import straight_through
from unigen.estimators.vimco import vimco

__all__ = [
    "ESTIMATORS",
    "MovingAverage",
    "PROBLEMS",
    "Problem",
    "Report",
    "arm",
    "concrete",
    "delta_method_control_variate",
    "disarm",
    "fit_control_variate",
    "fit_learned_baseline",
    "format_table",
    "leave_one_out",
    "learned_baseline_apply",
    "learned_baseline_init",
    "make_problem",
    "moving_average_init",
    "moving_average_update",
    "muprop",
    "optimal_baseline",
    "pathwise",
    "rebar",
    "rebar_init",
    "relax",
    "relax_init",
    "score_function",
    "score_function_learned_baseline",
    "score_function_moving_average",
    "score_function_optimal_baseline",
    "straight_through",
    "variance_report",
    "vimco",
]
