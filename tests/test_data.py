"""Tests of unigen.data against independent oracles.

Oracles: scikit-learn's raw digits, the closed-form mixture centres, binomial / Gaussian sampling
bounds (each bound is 5 standard errors, so a correct implementation fails with probability
below about 1e-6 per check, and the seeds are fixed anyway), records read directly through
``tfds.data_source``, IDX files written here byte by byte, and the published statistics of the
real MNIST test set (per-class counts and mean pixel, /work/shared/data/README.md).
"""

from __future__ import annotations

import gzip
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from unigen import data
from unigen.errors import ConfigError, DataError

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TFDS_DIR = SHARED_DATA / "tfds"
MNIST_IDX_DIR = SHARED_DATA / "mnist_idx"
needs_tfds_data = pytest.mark.skipif(
    not (TFDS_DIR / "binarized_mnist").is_dir(), reason=f"{TFDS_DIR} is absent"
)
needs_mnist_idx = pytest.mark.skipif(
    not MNIST_IDX_DIR.is_dir(), reason=f"{MNIST_IDX_DIR} is absent"
)

MNIST_TEST_CLASS_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
MNIST_TEST_MEAN_PIXEL = 0.1325  # four decimals, as published in the shared data README


def _sklearn_digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return np.asarray(bunch.data), np.asarray(bunch.target)


# ----------------------------------------------------------------------------------------------
# digits


def test_digits_equal_sklearn_raw_over_16_in_documented_split():
    raw, target = _sklearn_digits()
    in_test = np.arange(raw.shape[0]) % 6 == 5
    train, test = data.load("digits", "train"), data.load("digits", "test")
    assert train.x.shape == (1498, 64) and test.x.shape == (299, 64)
    assert train.x.dtype == np.float32
    np.testing.assert_array_equal(train.x, raw[~in_test] / 16.0)
    np.testing.assert_array_equal(test.x, raw[in_test] / 16.0)
    np.testing.assert_array_equal(train.labels, target[~in_test])
    np.testing.assert_array_equal(test.labels, target[in_test])
    assert train.image_shape == (8, 8, 1) and train.kind == "image"
    assert train.centres is None and train.sigma is None and train.binarize is None
    assert train.source == "sklearn.datasets.load_digits"
    # Every class is in both splits.
    assert set(np.unique(test.labels)) == set(range(10))


def test_digits_split_does_not_depend_on_seed_and_n_takes_the_first():
    np.testing.assert_array_equal(data.load("digits", seed=3).x, data.load("digits", seed=0).x)
    first = data.load("digits", "test", n=10)
    np.testing.assert_array_equal(first.x, data.load("digits", "test").x[:10])
    assert first.labels.shape == (10,)


def test_digits_static_binarization_thresholds_at_one_half():
    raw, _ = _sklearn_digits()
    in_test = np.arange(raw.shape[0]) % 6 == 5
    static = data.load("digits", "test", binarize="static")
    np.testing.assert_array_equal(static.x, (raw[in_test] > 8).astype(np.float32))
    assert static.binarize == "static"


def test_digits_errors():
    with pytest.raises(DataError, match=r"split='validation'.*\['train', 'test'\]"):
        data.load("digits", "validation")
    with pytest.raises(ConfigError, match=r"binarize='sometimes'.*'static', 'dynamic'"):
        data.load("digits", binarize="sometimes")
    with pytest.raises(ConfigError, match=r"sigma=0\.1: only ring8/grid25"):
        data.load("digits", sigma=0.1)
    with pytest.raises(ConfigError, match=r"data_dir='/tmp'.*only tfds"):
        data.load("digits", data_dir="/tmp")
    with pytest.raises(ConfigError, match=r"n=0: expected an integer >= 1"):
        data.load("digits", n=0)
    with pytest.raises(DataError, match=r"n=5000: split 'test'.*only 299"):
        data.load("digits", "test", n=5000)


def test_unknown_name_lists_the_known_names():
    known = r"name='cifar'.*'digits', 'ring8', 'grid25'.*tfds:NAME.*idx:DIR"
    with pytest.raises(ConfigError, match=known):
        data.load("cifar")
    with pytest.raises(ConfigError, match=r"write 'tfds:binarized_mnist'"):
        data.load("binarized_mnist")
    with pytest.raises(ConfigError, match=r"name='tfds:'"):
        data.load("tfds:")


# ----------------------------------------------------------------------------------------------
# ring8 / grid25


def test_ring8_centres_are_the_closed_form_points_on_the_circle():
    h = np.sqrt(0.5)
    expected = np.array([[1, 0], [h, h], [0, 1], [-h, h], [-1, 0], [-h, -h], [0, -1], [h, -h]])
    ring = data.load("ring8", n=10)
    np.testing.assert_allclose(ring.centres, expected, atol=1e-6)
    wide = data.load("ring8", n=10, radius=2.5)
    np.testing.assert_allclose(wide.centres, 2.5 * expected, atol=1e-6)
    assert ring.sigma == 0.01 and ring.image_shape is None and ring.kind == "points"


def test_grid25_centres_are_the_grid():
    grid = data.load("grid25", n=10)
    levels = [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert grid.centres.shape == (25, 2)
    assert {tuple(c) for c in grid.centres.tolist()} == {(a, b) for a in levels for b in levels}
    assert grid.sigma == 0.05
    small = data.load("grid25", n=10, spacing=1.0).centres
    np.testing.assert_array_equal(small, grid.centres / 2)


@pytest.mark.parametrize(("name", "sigma"), [("ring8", 0.01), ("grid25", 0.05)])
def test_mixture_samples_match_their_components(name, sigma):
    mixture = data.load(name)  # 50,000 training points
    n, m = mixture.x.shape[0], mixture.centres.shape[0]
    assert mixture.x.shape == (50_000, 2) and mixture.x.dtype == np.float32
    counts = np.bincount(mixture.labels, minlength=m)
    # Uniform weights: each count is Binomial(n, 1/m); 5 standard deviations.
    p = 1.0 / m
    assert np.all(np.abs(counts - n * p) < 5 * np.sqrt(n * p * (1 - p))), counts
    for k in range(m):
        points = mixture.x[mixture.labels == k].astype(np.float64)
        size = points.shape[0]
        # Mean: standard error sigma / sqrt(size); std: relative standard error 1 / sqrt(2 size).
        np.testing.assert_allclose(
            points.mean(0), mixture.centres[k], atol=5 * sigma / np.sqrt(size)
        )
        np.testing.assert_allclose(points.std(0), sigma, rtol=5 / np.sqrt(2 * size))
    # Modes are far apart compared with sigma, so the nearest centre is the component.
    distances = np.linalg.norm(mixture.x[:, None, :] - mixture.centres[None], axis=-1)
    np.testing.assert_array_equal(distances.argmin(1), mixture.labels)


def test_mixture_sigma_argument_sets_the_spread():
    ring = data.load("ring8", n=20_000, sigma=0.1)
    spread = ring.x - ring.centres[ring.labels]
    # Relative standard error of a std estimated from 40,000 values: 1 / sqrt(80,000).
    np.testing.assert_allclose(spread.std(), 0.1, rtol=5 / np.sqrt(80_000))
    assert ring.sigma == 0.1


def test_mixtures_are_reproducible_and_splits_and_seeds_differ():
    a, b = data.load("ring8", seed=1), data.load("ring8", seed=1)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.labels, b.labels)
    test = data.load("ring8", "test", seed=1)
    assert test.x.shape == (2_500, 2)
    assert not np.array_equal(test.x, a.x[:2_500])
    assert not np.array_equal(data.load("ring8", seed=2).x, a.x)
    assert data.load("grid25", "validation").x.shape == (2_500, 2)


def test_mixture_errors():
    with pytest.raises(ConfigError, match=r"binarize='static'.*2-D points; expected None"):
        data.load("ring8", binarize="static")
    with pytest.raises(ConfigError, match=r"radius=-1\.0: expected a finite number > 0"):
        data.load("ring8", radius=-1.0)
    with pytest.raises(ConfigError, match=r"sigma=0\.0: expected a finite number > 0"):
        data.load("grid25", sigma=0.0)
    with pytest.raises(ConfigError, match=r"seed=-1: expected an integer >= 0"):
        data.load("grid25", seed=-1)
    with pytest.raises(DataError, match=r"split='dev'.*'train', 'validation', 'test'"):
        data.load("grid25", "dev")


# ----------------------------------------------------------------------------------------------
# check_array / from_array


@pytest.mark.parametrize(
    ("x", "kwargs", "pattern"),
    [
        (np.array([["a", "b"]]), {}, r"dtype <U1.*expected a real numeric dtype.*not str"),
        (np.array([[object()]]), {}, r"expected a real numeric dtype.*not object"),
        (np.ones((2, 3), np.complex64), {}, r"expected a real numeric dtype.*not complex64"),
        (np.ones(5), {}, r"shape \(5,\).*rank 1.*expected rank 2, \[N, D\]"),
        (np.ones((2, 3, 4)), {}, r"rank 3.*expected rank 2.*image_shape"),
        (np.ones((0, 4)), {}, r"shape \(0, 4\).*at least one example"),
        (np.ones((3, 0)), {}, r"shape \(3, 0\).*at least one example"),
        ([[1.0, 2.0], [3.0]], {}, r"could not convert.*rectangular numeric array"),
        (np.ones((2, 4, 4, 1)), {"image_shape": (4, 5, 1)}, r"expected \[N, 4, 5, 1\] or \[N, 20\]"),
        (np.ones((2, 4, 4)), {"image_shape": (4, 4, 3)},
         r"\(2, 4, 4\).*expected \[N, 4, 4, 3\] or \[N, 48\]"),
        (np.full((2, 2), 2.0), {"bernoulli": True}, r"4 value\(s\) outside \[0, 1\] \(min 2, max 2"),
        (np.array([[0.5, -0.1]]), {"bernoulli": True}, r"1 value\(s\).*index \(0, 1\).*Bernoulli"),
        (np.array([1e300, 0.0])[None], {}, r"1 NaN or Inf value\(s\) \(in float32\)"),
    ],
)
def test_check_array_refuses_bad_input(x, kwargs, pattern):
    with pytest.raises(DataError, match="my_array: .*" + pattern):
        data.check_array(x, source="my_array", **kwargs)


def test_check_array_nan_message_counts_and_locates():
    x = np.zeros((4, 5))
    x[1, 3] = np.nan
    x[2, 0] = np.inf
    pattern = r"batch\.npy: 2 NaN or Inf value\(s\).*index \(1, 3\); expected finite"
    with pytest.raises(DataError, match=pattern):
        data.check_array(x, source="batch.npy")


def test_check_array_flattens_images_row_major_and_converts_to_float32():
    images = np.arange(2 * 3 * 4 * 2, dtype=np.uint8).reshape(2, 3, 4, 2)
    out = data.check_array(images, source="images", image_shape=(3, 4, 2))
    assert out.dtype == np.float32 and out.shape == (2, 24)
    np.testing.assert_array_equal(out[1], np.arange(24, 48))
    grey = np.arange(2 * 3 * 4).reshape(2, 3, 4) / 24.0
    np.testing.assert_array_equal(data.check_array(grey, source="g", image_shape=(3, 4, 1)),
                                  grey.reshape(2, 12).astype(np.float32))
    np.testing.assert_array_equal(data.check_array(np.array([[True, False]]), source="b"), [[1.0, 0.0]])
    with pytest.raises(ConfigError, match=r"image_shape=\(3, 4\): expected a tuple \(H, W, C\)"):
        data.check_array(grey, source="g", image_shape=(3, 4))


def test_from_array_infers_image_shape_and_binarizes():
    rng = np.random.default_rng(0)
    grey = rng.random((6, 5, 4, 1)).astype(np.float32)
    dataset = data.from_array(grey, name="mine", binarize="static")
    assert dataset.image_shape == (5, 4, 1) and dataset.kind == "image" and dataset.name == "mine"
    np.testing.assert_array_equal(dataset.x, (grey.reshape(6, 20) > 0.5).astype(np.float32))
    assert data.from_array(grey[..., 0]).image_shape == (5, 4, 1)
    points = data.from_array(rng.normal(size=(7, 2)), split="test")
    assert points.kind == "points" and points.split == "test" and points.labels is None


def test_from_array_errors():
    with pytest.raises(DataError, match=r"from_array \(name='neg'\): 1 value\(s\) outside \[0, 1\]"):
        data.from_array(np.array([[0.5, -1.0]]), name="neg", binarize="dynamic")
    with pytest.raises(ConfigError, match=r"binarize=True"):
        data.from_array(np.ones((2, 2)), binarize=True)
    with pytest.raises(ConfigError, match=r"image_shape=\(2, 0, 1\)"):
        data.from_array(np.ones((2, 2)), image_shape=(2, 0, 1))


# ----------------------------------------------------------------------------------------------
# Batches


def _indexed(n: int) -> data.Dataset:
    """A data set whose row i is (i, -i), so a batch shows which examples it holds."""
    ids = np.arange(n, dtype=np.float32)
    return data.from_array(np.stack([ids, -ids], axis=1))


def _ids(batch: dict[str, np.ndarray]) -> np.ndarray:
    return batch["x"][..., 0].astype(np.int64)


@pytest.mark.parametrize(("n", "batch_size"), [(12, 3), (10, 3), (7, 7)])
def test_every_example_appears_once_per_epoch(n, batch_size):
    batches = data.Batches(_indexed(n), batch_size, seed=4)
    steps = batches.steps_per_epoch
    assert steps == n // batch_size
    for epoch in range(3):
        seen = np.concatenate([_ids(batches.at(epoch * steps + i)) for i in range(steps)])
        assert len(np.unique(seen)) == steps * batch_size  # no example twice
        assert seen.min() >= 0 and seen.max() < n


def test_batches_are_a_pure_function_of_seed_and_step():
    dataset = _indexed(20)
    batches = data.Batches(dataset, 4, seed=7)
    iterated = [b for _, b in zip(range(12), batches)]
    fresh = data.Batches(dataset, 4, seed=7)
    for t in (11, 0, 5, 11, 3):  # any order, after other calls
        np.testing.assert_array_equal(fresh.at(t)["x"], iterated[t]["x"])
    stacked = batches.stack(2, 4)
    assert stacked["x"].shape == (4, 4, 2)
    np.testing.assert_array_equal(stacked["x"], np.stack([iterated[t]["x"] for t in range(2, 6)]))
    other = data.Batches(dataset, 4, seed=8)
    assert not all(np.array_equal(other.at(t)["x"], iterated[t]["x"]) for t in range(5))
    # The order changes from epoch to epoch.
    first = np.concatenate([_ids(batches.at(t)) for t in range(5)])
    second = np.concatenate([_ids(batches.at(t)) for t in range(5, 10)])
    assert sorted(first) == sorted(second) and not np.array_equal(first, second)


@pytest.mark.parametrize("binarize", [None, "dynamic"])
def test_process_slices_concatenate_to_the_global_batch(binarize):
    dataset = data.load("digits", "test", binarize=binarize)
    batches = data.Batches(dataset, 8, seed=1)
    for step in (0, 3, 40):
        whole = batches.at(step)["x"]
        for count in (2, 4, 8):
            parts = [
                batches.at(step, process_index=i, process_count=count)["x"] for i in range(count)
            ]
            assert parts[0].shape == (8 // count, 64)
            np.testing.assert_array_equal(np.concatenate(parts), whole)
    stacked = batches.stack(0, 3, process_index=1, process_count=2)["x"]
    np.testing.assert_array_equal(stacked[2], batches.at(2)["x"][4:])


def test_dynamic_binarization_is_bernoulli_of_the_grey_levels_and_reproducible():
    grey = data.load("digits")
    dynamic = data.load("digits", binarize="dynamic")
    np.testing.assert_array_equal(dynamic.x, grey.x)  # x keeps the grey levels
    grey_batches = data.Batches(grey, 128, seed=3)
    binary_batches = data.Batches(dynamic, 128, seed=3)
    total, expected, variance = 0.0, 0.0, 0.0
    for step in range(20):
        g, b = grey_batches.at(step)["x"], binary_batches.at(step)["x"]  # same examples
        assert b.dtype == np.float32 and set(np.unique(b)) <= {0.0, 1.0}
        np.testing.assert_array_equal(b[g == 0.0], 0.0)  # Bernoulli(0) and Bernoulli(1) are sure
        np.testing.assert_array_equal(b[g == 1.0], 1.0)
        total += b.sum()
        expected += g.sum()
        variance += (g * (1 - g)).sum()
    # The sum of independent Bernoulli(g) draws has mean sum(g) and variance sum(g(1-g)).
    assert abs(total - expected) < 5 * np.sqrt(variance)
    again = data.Batches(dynamic, 128, seed=3)
    np.testing.assert_array_equal(again.at(5)["x"], binary_batches.at(5)["x"])
    next_epoch = 5 + binary_batches.steps_per_epoch
    assert not np.array_equal(binary_batches.at(5)["x"], binary_batches.at(next_epoch)["x"])
    assert not np.array_equal(data.Batches(dynamic, 128, seed=4).at(5)["x"], again.at(5)["x"])


def test_batches_errors():
    dataset = _indexed(12)
    with pytest.raises(DataError, match=r"batch_size=0: split 'train' of array has 12 examples"):
        data.Batches(dataset, 0)
    with pytest.raises(DataError, match=r"batch_size=13: split 'train'.*12 examples.*<= 12"):
        data.Batches(dataset, 13)
    with pytest.raises(ConfigError, match=r"batch_size=2\.0: expected an integer"):
        data.Batches(dataset, 2.0)
    pattern = r"dataset=array of shape \(12, 2\).*expected a unigen\.data\.Dataset"
    with pytest.raises(ConfigError, match=pattern):
        data.Batches(dataset.x, 2)
    batches = data.Batches(dataset, 6)
    with pytest.raises(ConfigError, match=r"process_count=4: expected a divisor of batch_size=6"):
        batches.at(0, process_count=4)
    pattern = r"process_index=3: expected 0 <= process_index < process_count=3"
    with pytest.raises(ConfigError, match=pattern):
        batches.at(0, process_index=3, process_count=3)
    with pytest.raises(ConfigError, match=r"step=-1: expected an integer >= 0"):
        batches.at(-1)
    with pytest.raises(ConfigError, match=r"count=0"):
        batches.stack(0, 0)


# ----------------------------------------------------------------------------------------------
# idx:DIR


def _idx_bytes(magic: int, array: np.ndarray) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write(path: Path, content: bytes, gzipped: bool) -> None:
    if gzipped:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(content))
    else:
        path.write_bytes(content)


IMAGES = np.random.default_rng(0).integers(0, 256, size=(5, 4, 3), dtype=np.uint8)
LABELS = np.array([3, 1, 4, 1, 5], dtype=np.uint8)


@pytest.mark.parametrize("gzipped", [False, True])
def test_idx_reads_files_with_known_contents(tmp_path, gzipped):
    _write(tmp_path / "t10k-images-idx3-ubyte", _idx_bytes(0x803, IMAGES), gzipped)
    _write(tmp_path / "t10k-labels-idx1-ubyte", _idx_bytes(0x801, LABELS), gzipped)
    dataset = data.load(f"idx:{tmp_path}", "test")
    assert dataset.image_shape == (4, 3, 1) and dataset.x.shape == (5, 12)
    np.testing.assert_allclose(dataset.x, IMAGES.reshape(5, 12) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(dataset.labels, LABELS)
    assert dataset.name == f"idx:{tmp_path}" and dataset.source.endswith(".gz") == gzipped
    static = data.load(f"idx:{tmp_path}", "test", binarize="static")
    np.testing.assert_array_equal(static.x, (IMAGES.reshape(5, 12) > 127).astype(np.float32))


def test_idx_without_labels_file_has_no_labels(tmp_path):
    _write(tmp_path / "train-images-idx3-ubyte", _idx_bytes(0x803, IMAGES), False)
    assert data.load(f"idx:{tmp_path}", "train").labels is None


@pytest.mark.parametrize(
    ("images", "labels", "pattern"),
    [
        (_idx_bytes(0x801, LABELS), None,
         r"t10k-images-idx3-ubyte: magic number 0x00000801; expected 0x00000803"),
        (_idx_bytes(0x803, IMAGES)[:-7], None, r"t10k-images-idx3-ubyte: truncated: 69 bytes; expected 76"),
        (_idx_bytes(0x803, IMAGES) + b"\0", None, r"trailing bytes: 77 bytes; expected 76"),
        (_idx_bytes(0x803, IMAGES)[:9], None, r"truncated header of 9 bytes; expected 16"),
        (b"\0\0", None, r"2 bytes; expected an IDX header"),
        (_idx_bytes(0x803, IMAGES), _idx_bytes(0x801, LABELS[:3]),
         r"t10k-labels-idx1-ubyte: 3 labels; expected 5, the number of images"),
        (_idx_bytes(0x803, IMAGES), _idx_bytes(0x803, IMAGES),
         r"t10k-labels-idx1-ubyte: magic number 0x00000803; expected 0x00000801"),
        (_idx_bytes(0x803, IMAGES[:0]), None, r"t10k-images-idx3-ubyte: the split is empty"),
    ],
)
def test_idx_refuses_malformed_files(tmp_path, images, labels, pattern):
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(images)
    if labels is not None:
        (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(labels)
    with pytest.raises(DataError, match=pattern):
        data.load(f"idx:{tmp_path}", "test")


def test_idx_directory_errors(tmp_path):
    with pytest.raises(DataError, match=r"idx:.*nowhere: no such directory"):
        data.load(f"idx:{tmp_path / 'nowhere'}", "test")
    pattern = r"no t10k-images-idx3-ubyte or t10k-images-idx3-ubyte\.gz.*holds nothing"
    with pytest.raises(DataError, match=pattern):
        data.load(f"idx:{tmp_path}", "test")
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz: could not read the IDX file"):
        data.load(f"idx:{tmp_path}", "test")
    with pytest.raises(DataError, match=r"split='validation'.*\['train', 'test'\]"):
        data.load(f"idx:{tmp_path}", "validation")


@needs_mnist_idx
def test_idx_real_mnist_test_set():
    mnist = data.load(f"idx:{MNIST_IDX_DIR}", "test")
    assert mnist.x.shape == (10_000, 784) and mnist.image_shape == (28, 28, 1)
    assert np.bincount(mnist.labels).tolist() == MNIST_TEST_CLASS_COUNTS
    assert abs(float(mnist.x.mean(dtype=np.float64)) - MNIST_TEST_MEAN_PIXEL) <= 5e-5
    assert mnist.x.min() == 0.0 and mnist.x.max() == 1.0
    with pytest.raises(DataError, match=r"no train-images-idx3-ubyte.*t10k-images-idx3-ubyte\.gz"):
        data.load(f"idx:{MNIST_IDX_DIR}", "train")


# ----------------------------------------------------------------------------------------------
# tfds:NAME


@pytest.fixture
def tfds_module(monkeypatch):
    """tensorflow_datasets with an empty in-process cache and a working mocked __getitems__.

    TFDS's mock assigns ``functools.partial(_getitems, generator=...)`` as an instance attribute,
    so it is called without ``self`` and fails; this shim accepts the call either way.
    """
    tfds = pytest.importorskip("tensorflow_datasets")
    from tensorflow_datasets.testing import mocking

    def getitems(*args, generator, serialized=False):
        assert not serialized
        return [generator[k] for k in args[-1]]

    monkeypatch.setattr(mocking, "_getitems", getitems)
    monkeypatch.delenv("TFDS_DATA_DIR", raising=False)
    data._read_tfds.cache_clear()
    yield tfds
    data._read_tfds.cache_clear()


def test_tfds_mocked_data_source_matches_direct_records(tfds_module, tmp_path):
    tfds = tfds_module
    with tfds.testing.mock_data(num_examples=9, policy=tfds.testing.MockPolicy.USE_CODE):
        dataset = data.load("tfds:mnist", "test", data_dir=str(tmp_path))
        direct = tfds.data_source("mnist", split="test", download=False)
        images = np.stack([direct[i]["image"] for i in range(9)]).reshape(9, -1)
        labels = np.array([direct[i]["label"] for i in range(9)])
    assert images.max() > 1  # the mock draws grey levels 0..254, so they are divided by 255
    assert dataset.x.shape == (9, 784) and dataset.image_shape == (28, 28, 1)
    assert dataset.name == "tfds:mnist"
    np.testing.assert_allclose(dataset.x, images / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(dataset.labels, labels)
    assert "tensorflow" not in sys.modules


def _records_source(records):
    """``as_data_source_fn`` for mock_data: a plain list (no __getitems__) of given records."""
    return lambda *args, **kwargs: list(records)


@pytest.mark.parametrize(("high", "scale"), [(256, 255.0), (2, 1.0)])
def test_tfds_plain_sequence_source_with_known_records(tfds_module, tmp_path, high, scale):
    """Grey levels 0..255 are divided by 255; uint8 values all in {0, 1} are kept as they are."""
    tfds = tfds_module
    images = np.random.default_rng(1).integers(0, high, size=(3, 2, 5), dtype=np.uint8)
    records = [{"id": np.array([7]), "image": im, "label": np.int64(i)} for i, im in enumerate(images)]
    with tfds.testing.mock_data(as_data_source_fn=_records_source(records)):
        dataset = data.load("tfds:mnist", "train", data_dir=str(tmp_path), binarize="dynamic")
    assert dataset.image_shape == (2, 5, 1) and dataset.binarize == "dynamic"
    np.testing.assert_allclose(dataset.x, images.reshape(3, 10) / scale, rtol=1e-6)
    np.testing.assert_array_equal(dataset.labels, [0, 1, 2])


@pytest.mark.parametrize(
    ("records", "n", "pattern"),
    [
        ([], None, r"tfds:mnist split 'train'.*the split is empty"),
        ([{"text": np.array([1.0])}], None, r"no image feature; expected a uint8 array.*'text'"),
        ([{"image": np.zeros((2, 2), np.uint8)}, {"image": np.zeros((3, 2), np.uint8)}], None,
         r"record 1 has image shape \(3, 2\); expected \(2, 2\)"),
        ([{"image": np.zeros((2, 2), np.uint8)}], 5, r"n=5: .*has only 1 examples"),
    ],
)
def test_tfds_refuses_bad_records(tfds_module, tmp_path, records, n, pattern):
    with tfds_module.testing.mock_data(as_data_source_fn=_records_source(records)):
        with pytest.raises(DataError, match=pattern):
            data.load("tfds:mnist", "train", data_dir=str(tmp_path), n=n)


def test_tfds_missing_or_unprepared_data_dir(tfds_module, tmp_path, monkeypatch):
    with pytest.raises(DataError, match=r"data_dir='.*nowhere': no such directory; expected a TFDS"):
        data.load("tfds:binarized_mnist", data_dir=str(tmp_path / "nowhere"))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "elsewhere"))
    with pytest.raises(DataError, match=r"TFDS_DATA_DIR='.*elsewhere': no such directory"):
        data.load("tfds:binarized_mnist")
    (tmp_path / "other_dataset").mkdir()
    pattern = r"tfds:binarized_mnist: not prepared in data_dir .*\['other_dataset'\]"
    with pytest.raises(DataError, match=pattern):
        data.load("tfds:binarized_mnist", data_dir=str(tmp_path))
    (tmp_path / "binarized_mnist" / "1.0.0").mkdir(parents=True)  # a folder, but no data
    with pytest.raises(DataError, match=r"no array_record files for split='train'.*array_record"):
        data.load("tfds:binarized_mnist", data_dir=str(tmp_path))


@needs_tfds_data
def test_tfds_real_binarized_mnist_test_split(tfds_module):
    start = time.perf_counter()
    test = data.load("tfds:binarized_mnist", "test", data_dir=str(TFDS_DIR))
    seconds = time.perf_counter() - start
    assert test.x.shape == (10_000, 784) and test.image_shape == (28, 28, 1)
    assert set(np.unique(test.x)) == {0.0, 1.0} and test.labels is None
    # The Larochelle-Murray images are Bernoulli draws of the MNIST grey levels, so their mean is
    # the grey mean 0.1325 up to sampling noise (< 2e-4 over 7.84 million pixels) and rounding.
    assert abs(float(test.x.mean(dtype=np.float64)) - MNIST_TEST_MEAN_PIXEL) < 1e-3
    assert "tensorflow" not in sys.modules
    again = data.load("tfds:binarized_mnist", "test", data_dir=str(TFDS_DIR))
    np.testing.assert_array_equal(again.x, test.x)
    assert data._read_tfds.cache_info().hits == 1
    print(f"binarized_mnist test split: {seconds:.2f} s")


@needs_tfds_data
def test_tfds_real_data_dir_from_environment_and_unknown_split(tfds_module, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(TFDS_DIR))
    first = data.load("tfds:binarized_mnist", "validation", n=100)
    assert first.x.shape == (100, 784)
    assert first.source.startswith("tfds:binarized_mnist split 'validation'")
    with pytest.raises(DataError, match=r"split='nope'.*'train', 'validation', 'test'"):
        data.load("tfds:binarized_mnist", "nope")
    with pytest.raises(DataError, match=r"n=20000: .*has only 10000 examples"):
        data.load("tfds:binarized_mnist", "test", n=20_000)


@needs_tfds_data
@pytest.mark.slow
def test_tfds_real_binarized_mnist_train_and_validation_sizes(tfds_module):
    start = time.perf_counter()
    train = data.load("tfds:binarized_mnist", "train", data_dir=str(TFDS_DIR))
    seconds = time.perf_counter() - start
    assert train.x.shape == (50_000, 784) and set(np.unique(train.x[:1000])) == {0.0, 1.0}
    validation = data.load("tfds:binarized_mnist", "validation", data_dir=str(TFDS_DIR))
    assert validation.x.shape == (10_000, 784)
    print(f"binarized_mnist train split: {seconds:.2f} s")
