"""The algebra of objectives: expressions, printing, identities and their exact verification."""

from unigen.algebra.expr import (
    E,
    FROZEN,
    H,
    JSD,
    KL,
    LOG2,
    PARAMS,
    VARIABLES,
    Constant,
    Dist,
    Distribution,
    Entropy,
    Expectation,
    ExpressionError,
    Coefficient,
    ImportanceWeightedBound,
    ImportanceWeightedExpectation,
    JSDivergence,
    KLDivergence,
    Log,
    Neg,
    Node,
    Product,
    Scale,
    StopGradient,
    Sum,
    Term,
    Var,
    coefficient,
    coefficients,
    constant,
    dist,
    free_params,
    importance_weighted,
    importance_weighted_bound,
    log,
    reverse,
    sg,
    variables,
)
from unigen.algebra.printing import to_latex, to_unicode
from unigen.algebra.declaration import SENSES, Declaration, Figure5, PhaseObjective
from unigen.algebra.direction import Direction, direction, direction_of
from unigen.algebra.table import table
from unigen.algebra.compiler import (
    Binding, compile, data, explicit, implicit, marginal, self_normalized, uniform_indicator,
)
from unigen.algebra.estimator import Estimator, EstimatorContext, ScoreFunction
from unigen.algebra.discrete_estimators import ARM, VIMCO, Concrete, DisARM, MuProp, Rebar, Relax, StraightThrough
from unigen.algebra.assembly import algorithm
from unigen.algebra.symbols import symbol
from unigen.algebra.verify import Verification, verify
