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
from unigen.estimators.control_variates import delta_method_control_variate
from unigen.estimators.leave_one_out import leave_one_out
from unigen.estimators.pathwise import pathwise
from unigen.estimators.problems import PROBLEMS, Problem, make_problem
from unigen.estimators.relaxed import concrete
from unigen.estimators.report import ESTIMATORS, Report, format_table, variance_report
from unigen.estimators.score_function import score_function

__all__ = [
    "ESTIMATORS",
    "MovingAverage",
    "PROBLEMS",
    "Problem",
    "Report",
    "concrete",
    "delta_method_control_variate",
    "fit_learned_baseline",
    "format_table",
    "leave_one_out",
    "learned_baseline_apply",
    "learned_baseline_init",
    "make_problem",
    "moving_average_init",
    "moving_average_update",
    "optimal_baseline",
    "pathwise",
    "score_function",
    "score_function_learned_baseline",
    "score_function_moving_average",
    "score_function_optimal_baseline",
    "variance_report",
]
