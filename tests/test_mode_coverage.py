"""mode_coverage (issue [4], part 6's metric): samples of the true mixtures, of one mode, and a
hand-computed case.

Oracle for the high-quality fraction of true-mixture samples: a 2-D isotropic Gaussian sample is
within 3σ of its centre with probability P(χ²₂ ≤ 9) = 1 − e^{−4.5} = 0.98889 (the modes are
≥ 0.76 apart for ring8 and 2 apart for grid25, ≥ 15σ, so the nearest centre is the own centre);
the fraction of 2,500 samples is binomial, standard deviation 0.0021, and the tests allow 4 of
them. The reverse KL of a multinomial histogram against uniform is ≈ χ²_{M−1} / (2N): mean
0.0014 (ring8) and 0.0048 (grid25) for N = 2,500; the bound 0.02 is above the 99.99% quantile.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from unigen import data
from unigen.errors import ConfigError, DataError
from unigen.metrics import mode_coverage

INSIDE = 1.0 - math.exp(-4.5)
SPREAD = 4.0 * math.sqrt(INSIDE * (1.0 - INSIDE) / 2500)


@pytest.mark.parametrize(("name", "modes"), [("ring8", 8), ("grid25", 25)])
def test_samples_of_the_true_mixture_capture_every_mode(name, modes):
    dataset = data.load(name, "validation", n=2500, seed=3)
    result = mode_coverage(dataset.x, dataset.centres, dataset.sigma)
    assert result.modes_captured == modes
    assert abs(result.high_quality_fraction - INSIDE) < SPREAD, result.high_quality_fraction
    assert 0.0 <= result.reverse_kl < 0.02
    np.testing.assert_array_equal(result.counts, np.bincount(dataset.labels, minlength=modes))


@pytest.mark.parametrize(("name", "modes"), [("ring8", 8), ("grid25", 25)])
def test_samples_of_one_mode_capture_one_mode(name, modes):
    dataset = data.load(name, "validation", n=2500, seed=3)
    rng = np.random.default_rng(0)
    samples = dataset.centres[5] + dataset.sigma * rng.standard_normal((2500, 2))
    result = mode_coverage(samples, dataset.centres, dataset.sigma)
    assert result.modes_captured == 1
    assert abs(result.high_quality_fraction - INSIDE) < SPREAD
    np.testing.assert_allclose(result.reverse_kl, math.log(modes), rtol=1e-12)
    assert result.counts[5] == 2500


def test_a_mode_needs_a_high_quality_sample():
    """Centres (0, 0) and (10, 0), σ = 1: (0.5, 0) is high quality for mode 0; (6, 0) is nearest
    to mode 1 but 4 > 3σ away; (20, 0) too. Mode 1 is not captured; h = (1/3, 2/3)."""
    centres = np.array([[0.0, 0.0], [10.0, 0.0]])
    samples = np.array([[0.5, 0.0], [6.0, 0.0], [20.0, 0.0]])
    result = mode_coverage(samples, centres, 1.0)
    assert result.modes_captured == 1
    assert result.high_quality_fraction == pytest.approx(1.0 / 3.0)
    expected = (1 / 3) * math.log(2 / 3) + (2 / 3) * math.log(4 / 3)
    assert result.reverse_kl == pytest.approx(expected, rel=1e-12)
    assert mode_coverage(samples, centres, 3.5).modes_captured == 2


def test_bad_inputs_are_named():
    centres = np.zeros((3, 2))
    with pytest.raises(DataError, match=r"samples: expected shape \(N, 2\)"):
        mode_coverage(np.zeros((4, 3)), centres, 0.1)
    with pytest.raises(DataError, match="samples: expected finite values, got 1 rows"):
        mode_coverage(np.array([[0.0, np.nan], [0.0, 0.0]]), centres, 0.1)
    with pytest.raises(DataError, match=r"centres: expected shape \(M, D\)"):
        mode_coverage(np.zeros((4, 2)), np.zeros(2), 0.1)
    with pytest.raises(ConfigError, match="sigma: expected a positive finite number, got -1.0"):
        mode_coverage(np.zeros((4, 2)), centres, -1.0)
