"""Tests for unigen.viz: PNGs are read back with Pillow and compared with the inputs."""

import numpy as np
import pytest
from PIL import Image

from unigen import viz
from unigen.errors import ConfigError, DataError


def _levels(values: np.ndarray) -> np.ndarray:
    """The independent oracle for one pixel: intensity in [0, 1] -> 8-bit level."""
    return np.floor(np.clip(values, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _tile(png: np.ndarray, row: int, column: int, side: int, scale: int) -> np.ndarray:
    """The upscaled block of tile (row, column) in a grid of side x side tiles."""
    top = row * (side + 1) * scale
    left = column * (side + 1) * scale
    return png[top : top + side * scale, left : left + side * scale]


def test_image_grid_png_tiles_equal_the_images_and_separators_are_grey(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.uniform(-0.2, 1.2, size=(7, 16)).astype(np.float32)  # 4x4 images, some clipped
    scale, columns = 3, 3
    path = viz.save_image_grid(images, (4, 4, 1), tmp_path / "sub" / "grid.png",
                               columns=columns, scale=scale)
    png = np.asarray(Image.open(path))
    assert png.dtype == np.uint8 and png.ndim == 2  # one channel: mode "L"
    assert png.shape == ((3 * 5 - 1) * scale, (3 * 5 - 1) * scale)
    separator = _levels(np.float32(viz.SEPARATOR))
    for index, image in enumerate(images):
        expected = np.kron(_levels(image.reshape(4, 4)), np.ones((scale, scale), np.uint8))
        np.testing.assert_array_equal(_tile(png, index // columns, index % columns, 4, scale),
                                      expected)
    # the separator lines (rows and columns 4 and 9 before upscaling) and the two unused cells
    for line in (4, 9):
        assert (png[line * scale : (line + 1) * scale] == separator).all()
        assert (png[:, line * scale : (line + 1) * scale] == separator).all()
    assert (_tile(png, 2, 1, 4, scale) == separator).all()
    assert (_tile(png, 2, 2, 4, scale) == separator).all()


def test_image_grid_array_layout_and_rgb():
    images = np.linspace(0, 1, 2 * 2 * 3 * 3, dtype=np.float32).reshape(3, 12)  # 2x2 RGB
    grid = viz.image_grid(images, (2, 2, 3), columns=2)
    assert grid.shape == (2 * 3 - 1, 2 * 3 - 1, 3)
    np.testing.assert_array_equal(grid[0:2, 0:2], images[0].reshape(2, 2, 3))
    np.testing.assert_array_equal(grid[0:2, 3:5], images[1].reshape(2, 2, 3))
    np.testing.assert_array_equal(grid[3:5, 0:2], images[2].reshape(2, 2, 3))
    assert (grid[2] == viz.SEPARATOR).all() and (grid[:, 2] == viz.SEPARATOR).all()


def test_image_grid_default_columns_and_default_scale_for_digits(tmp_path):
    images = np.zeros((10, 64), np.float32)
    assert viz.image_grid(images, (8, 8)).shape == (3 * 9 - 1, 4 * 9 - 1)  # ceil(sqrt(10)) = 4
    png = Image.open(viz.save_image_grid(images, (8, 8, 1), tmp_path / "d.png"))
    assert png.size == ((4 * 9 - 1) * 8, (3 * 9 - 1) * 8)  # 8x8 digits are upscaled 8 times


def test_image_grid_refuses_a_wrong_image_size():
    with pytest.raises(ConfigError, match=r"image_shape \(8, 8, 1\) holds 64 .* D=63"):
        viz.image_grid(np.zeros((2, 63)), (8, 8, 1))


def test_image_grid_refuses_nan_and_bad_arguments():
    images = np.full((2, 4), 0.5)
    images[1, 2] = np.nan
    with pytest.raises(DataError, match="1 NaN"):
        viz.image_grid(images, (2, 2))
    with pytest.raises(DataError, match=r"\[N, D\].*shape \(4,\)"):
        viz.image_grid(np.zeros(4), (2, 2))
    with pytest.raises(ConfigError, match="columns .* got 0"):
        viz.image_grid(np.zeros((2, 4)), (2, 2), columns=0)
    with pytest.raises(ConfigError, match="scale .* got 0"):
        viz.save_image_grid(np.zeros((2, 4)), (2, 2), "unused.png", scale=0)


def _rgb(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)


def _blue_spread(pixels: np.ndarray) -> float:
    """Spread (pixels) of the blue sample dots above the legend, which sits below the axes."""
    above_legend = pixels[: int(0.85 * pixels.shape[0])]
    rows, columns = np.nonzero(above_legend[..., 2] - above_legend[..., 0] > 40)
    assert rows.size > 0, "no sample dots drawn"
    return float(np.hypot(rows.std(), columns.std()))


def test_mode_scatter_png_size_content_and_sensitivity_to_samples(tmp_path):
    angles = np.arange(8) * np.pi / 4
    centres = 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)  # ring8 radius 2
    rng = np.random.default_rng(0)
    noise = 0.05 * rng.standard_normal((400, 2))
    spread = centres[rng.integers(0, 8, 400)] + noise
    collapsed = centres[0] + noise  # mode collapse onto one centre
    kwargs = dict(sigma=0.05, title="ring8", figsize=(3, 2.5), dpi=100)
    spread_pixels = _rgb(viz.save_mode_scatter(spread, centres, tmp_path / "a.png", **kwargs))
    collapsed_pixels = _rgb(viz.save_mode_scatter(collapsed, centres, tmp_path / "b.png", **kwargs))
    assert spread_pixels.shape == collapsed_pixels.shape == (250, 300, 3)  # inches * dpi
    assert spread_pixels.var() > 0 and collapsed_pixels.var() > 0
    # Same centres, so the same view: dots around eight modes spread over the ring's ~100+ px
    # diameter, dots around one mode stay within a few pixels (sd 0.05 is ~2 px here).
    assert _blue_spread(spread_pixels) > 40.0
    assert _blue_spread(collapsed_pixels) < 15.0


def test_mode_scatter_refuses_bad_points_and_sigma(tmp_path):
    centres = np.zeros((2, 2))
    with pytest.raises(DataError, match=r"samples must be a non-empty \[N, 2\].*\(5, 3\)"):
        viz.save_mode_scatter(np.zeros((5, 3)), centres, tmp_path / "x.png")
    with pytest.raises(DataError, match="samples hold 1 non-finite"):
        viz.save_mode_scatter(np.array([[0.0, np.nan]]), centres, tmp_path / "x.png")
    with pytest.raises(ConfigError, match="sigma .* got -1"):
        viz.save_mode_scatter(np.zeros((5, 2)), centres, tmp_path / "x.png", sigma=-1.0)
    assert not (tmp_path / "x.png").exists()


def test_curve_png_from_history_rows_and_jsonl_strings(tmp_path):
    rows = [{"step": s, "elbo/elbo": -100.0 + s, "wall_seconds": 0.1 * s} for s in range(1, 30)]
    rows.append({"step": 30, "elbo/elbo": "nan"})  # older metrics.jsonl files stored NaN as a string
    rows.append({"step": 30, "elbo/elbo": None})  # metrics.jsonl stores NaN as null
    rows.append({"step": 31})  # a row that did not log the key is skipped
    path = viz.save_curve(rows, "elbo/elbo", tmp_path / "elbo.png", figsize=(4, 3), dpi=50)
    pixels = _rgb(path)
    assert pixels.shape == (150, 200, 3)
    assert pixels.var() > 0
    flat = viz.save_curve([{"step": 1, "elbo/elbo": 0.0}, {"step": 2, "elbo/elbo": 0.0}],
                          "elbo/elbo", tmp_path / "flat.png", figsize=(4, 3), dpi=50)
    assert np.abs(_rgb(flat) - pixels).sum(axis=2).max() > 0  # a different curve, a different plot


def test_curve_refuses_a_missing_key(tmp_path):
    with pytest.raises(ConfigError, match=r"'elbo/elbo' is in none of the 1 .*\['elbo/loss', 'step'\]"):
        viz.save_curve([{"step": 1, "elbo/loss": 3.0}], "elbo/elbo", tmp_path / "c.png")


def test_importing_viz_does_not_select_a_pyplot_backend():
    import subprocess
    import sys

    code = "import sys, unigen, unigen.viz; assert 'matplotlib.pyplot' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_mode_scatter_draws_three_sigma_circles(tmp_path):
    centres = np.array([[-1.0, 0.0], [1.0, 0.0]])
    samples = np.array([[0.0, 0.0]])
    kwargs = dict(figsize=(3, 3), dpi=100)
    plain = _rgb(viz.save_mode_scatter(samples, centres, tmp_path / "a.png", **kwargs))
    circled = _rgb(viz.save_mode_scatter(samples, centres, tmp_path / "b.png", sigma=0.1, **kwargs))

    def red(pixels):
        return int((pixels[..., 0] - pixels[..., 2] > 60).sum())

    assert red(circled) > red(plain) + 50  # two dashed circles of radius 0.3 (~30 px) in red
