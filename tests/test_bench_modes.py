"""``unigen bench modes`` / unigen.bench_modes: aggregation over seeds and bad names."""

import json
import math

import numpy as np
import pytest

from unigen import bench_modes
from unigen import data as datasets
from unigen.cli import main
from unigen.errors import ConfigError


def _coverage_by_hand(samples, centres, sigma):
    """Modes captured and high-quality fraction, recomputed without unigen.metrics."""
    d = np.sqrt(((samples[:, None, :] - centres[None, :, :]) ** 2).sum(-1))
    nearest, dist = d.argmin(1), d.min(1)
    good = dist <= 3 * sigma
    return len(set(nearest[good].tolist())), float(good.mean())


def test_aggregation_matches_per_seed_summaries_recomputed(tmp_path):
    record = bench_modes.run_modes("ring8", ["gan"], 2, 50, keep_samples=False)
    assert [r["seed"] for r in record["runs"]] == [0, 1]
    ring = datasets.load("ring8", "train", seed=0)
    per_seed = []
    for seed in (0, 1):  # retrain independently: the run is a pure function of the seed
        one = bench_modes.train_one("ring8", "gan", seed, 50)
        modes, hq = _coverage_by_hand(one["samples"], ring.centres, ring.sigma)
        assert one["summary"]["modes_captured"] == modes == record["runs"][seed]["modes_captured"]
        assert one["summary"]["high_quality_fraction"] == pytest.approx(hq)
        per_seed.append((modes, hq, one["summary"]["reverse_kl"]))
    for index, metric in enumerate(("modes_captured", "high_quality_fraction", "reverse_kl")):
        values = np.array([p[index] for p in per_seed], float)
        mean = values.mean()
        se = math.sqrt(((values - mean) ** 2).sum() / (len(values) - 1)) / math.sqrt(len(values))
        got = record["results"]["gan"][metric]
        assert got["mean"] == pytest.approx(mean, rel=1e-6, abs=1e-12)
        assert got["se"] == pytest.approx(se, rel=1e-6, abs=1e-12)
    assert record["n_samples"] == 2500 and record["steps"] == 50 and record["modes"] == 8


def test_aggregate_single_seed_has_zero_se():
    assert bench_modes.aggregate([3.0]) == {"mean": 3.0, "se": 0.0}
    assert bench_modes.aggregate([1.0, 3.0]) == {"mean": 2.0, "se": pytest.approx(1.0)}


@pytest.mark.parametrize("names", ["gan,bogus", "wgan", ","])
def test_bad_algorithm_names_exit_2_listing_valid(names, capsys):
    assert main(["bench", "modes", "--data", "ring8", "--algorithms", names, "--seeds", "1", "--steps", "5"]) == 2
    err = capsys.readouterr().err
    assert "gan,gan-minimax,gan-r1,pacgan,infogan,vae" in err and "Traceback" not in err


def test_bad_data_exits_2(capsys):
    assert main(["bench", "modes", "--data", "digits", "--seeds", "1", "--steps", "5"]) == 2
    assert "ring8|grid25" in capsys.readouterr().err


def test_cli_json_and_out(tmp_path, capsys):
    out = tmp_path / "modes"
    assert main(["bench", "modes", "--data", "grid25", "--algorithms", "vae", "--seeds", "1", "--steps", "20",
                 "--json", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["results"]["vae"]["modes_captured"]["se"] == 0.0
    assert json.loads((out / "results.json").read_text()) == printed
    assert (out / "samples.png").stat().st_size > 0


def test_rows_build_their_variant(key):
    """pacgan packs 4 examples into the discriminator; gan-r1 adds the R1 penalty (reported as a
    metric) and plain gan does not; unknown settings are refused."""
    import jax

    model, algorithm = bench_modes.build("pacgan", 8, hidden=(8,))
    assert model.pack == 4
    assert algorithm.init(key)["phi"]["discriminator"]["linear0"]["kernel"].shape == (8, 8)
    batch = {"x": jax.random.normal(key, (8, 2))}
    for name, penalized in (("gan-r1", True), ("gan", False)):
        model, algorithm = bench_modes.build(name, 8, hidden=(8,))
        assert model.pack == 1
        _, metrics = algorithm.phases[0].loss(algorithm.init(key), key, batch)
        assert ("gradient_penalty" in metrics) == penalized
    with pytest.raises(ConfigError, match="settings: unknown \\['widths'\\]"):
        bench_modes.train_one("ring8", "gan", 0, 5, widths=(8,))
