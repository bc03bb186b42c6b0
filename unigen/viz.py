"""Plots written to PNG: sample grids, 2-D samples over mixture modes, training curves.

Nothing here needs a display. Image grids are built with NumPy and written with Pillow; figures
use :class:`matplotlib.figure.Figure` with the Agg canvas directly, so importing this module
never selects a GUI backend and never touches ``pyplot``'s global state.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from unigen.errors import ConfigError, DataError, describe

SEPARATOR = 0.5
"""Grey level of the 1-pixel lines between tiles (and of unused cells), in [0, 1]."""

_PIXELS_PER_TILE_SIDE = 64  # the default upscale aims for tiles about this many pixels wide


def image_grid(
    images: Any, image_shape: Sequence[int], *, columns: int | None = None
) -> np.ndarray:
    """Tiles flat images into one picture, rows first, with a 1-pixel separator between tiles.

    Args:
        images: ``[N, D]`` array of pixel intensities, expected in ``[0, 1]``; values outside are
            clipped, NaN is refused.
        image_shape: ``(H, W)`` or ``(H, W, C)`` with ``C`` in ``{1, 3}`` and ``H * W * C == D``;
            a ``Dataset.image_shape`` fits as is.
        columns: tiles per row; default ``ceil(sqrt(N))``.

    Returns:
        float32 array of shape ``(R*H + R-1, K*W + K-1)`` (or ``(..., 3)`` for ``C == 3``),
        with ``K`` columns and ``R = ceil(N / K)`` rows. Separator lines and unused cells hold
        :data:`SEPARATOR`.

    Raises:
        DataError: ``images`` is not 2-D, is empty, or holds NaN.
        ConfigError: ``image_shape`` does not match ``D``, or ``columns`` is not positive.
    """
    pixels = _check_images(images)
    height, width, channels = _check_image_shape(image_shape, pixels.shape[1])
    count = pixels.shape[0]
    columns = _check_columns(columns, count)
    rows = math.ceil(count / columns)
    tiles = pixels.reshape(count, height, width, channels)
    grid = np.full(
        (rows * (height + 1) - 1, columns * (width + 1) - 1, channels), SEPARATOR, np.float32
    )
    for index, tile in enumerate(tiles):
        top = (index // columns) * (height + 1)
        left = (index % columns) * (width + 1)
        grid[top : top + height, left : left + width] = tile
    return grid[..., 0] if channels == 1 else grid


def save_image_grid(
    images: Any,
    image_shape: Sequence[int],
    path: str | os.PathLike,
    *,
    columns: int | None = None,
    scale: int | None = None,
) -> Path:
    """Writes :func:`image_grid` of ``images`` as an 8-bit PNG, upscaled by nearest neighbour.

    Each grid pixel ``v`` becomes a ``scale × scale`` block of value ``round(255 * v)``, so small
    images (8×8 digits) stay sharp and visible.

    Args:
        images: ``[N, D]`` array in ``[0, 1]`` (see :func:`image_grid`).
        image_shape: ``(H, W)`` or ``(H, W, C)``.
        path: the PNG to write; missing parent directories are created.
        columns: tiles per row; default ``ceil(sqrt(N))``.
        scale: integer upscale factor; default ``max(1, 64 // max(H, W))`` (8 for 8×8 digits,
            2 for 28×28 MNIST).

    Returns:
        ``path`` as a :class:`pathlib.Path`.

    Raises:
        DataError, ConfigError: as :func:`image_grid`; ConfigError also for a bad ``scale``.
    """
    from PIL import Image

    grid = image_grid(images, image_shape, columns=columns)
    if scale is None:
        scale = max(1, _PIXELS_PER_TILE_SIDE // max(int(image_shape[0]), int(image_shape[1])))
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ConfigError(f"scale must be a positive integer, got {describe(scale)}")
    levels = np.round(grid * 255.0).astype(np.uint8)
    levels = np.repeat(np.repeat(levels, scale, axis=0), scale, axis=1)
    path = _prepare(path)
    Image.fromarray(levels).save(path, format="PNG")
    return path


def save_mode_scatter(
    samples: Any,
    centres: Any,
    path: str | os.PathLike,
    *,
    sigma: float | None = None,
    title: str | None = None,
    figsize: tuple[float, float] = (4.0, 4.0),
    dpi: int = 100,
) -> Path:
    """Scatters 2-D samples over the true mode centres of a mixture (ring8, grid25).

    Samples are small translucent dots; centres are red crosses; with ``sigma`` each centre gets
    a dashed circle of radius ``3 sigma`` -- the "high quality" region of the mode-coverage metric.
    The view spans the centres (and their circles) and the central 99% of the samples, so a few
    far outliers do not shrink the picture to a dot.

    Args:
        samples: ``[N, 2]`` finite points, ``N >= 1``.
        centres: ``[M, 2]`` finite mode centres, ``M >= 1`` (``Dataset.centres``).
        path: the PNG to write; missing parent directories are created.
        sigma: the mixture's standard deviation (``Dataset.sigma``); positive, or None for no
            circles.
        title: figure title.
        figsize: figure size in inches; the PNG is ``figsize * dpi`` pixels.
        dpi: dots per inch.

    Returns:
        ``path`` as a :class:`pathlib.Path`.

    Raises:
        DataError: ``samples`` or ``centres`` is not a non-empty ``[N, 2]`` array of finite values.
        ConfigError: ``sigma``, ``figsize`` or ``dpi`` is not positive.
    """
    from matplotlib.patches import Circle

    points = _check_points(samples, "samples")
    modes = _check_points(centres, "centres")
    if sigma is not None and not (_is_number(sigma) and math.isfinite(sigma) and sigma > 0):
        raise ConfigError(f"sigma must be a positive finite number or None, got {describe(sigma)}")
    figure, axes = _figure(figsize, dpi)
    axes.scatter(points[:, 0], points[:, 1], s=5, alpha=0.5, color="tab:blue", linewidths=0,
                 label="samples")
    axes.scatter(modes[:, 0], modes[:, 1], s=60, marker="x", color="tab:red", linewidths=2,
                 label="mode centres")
    if sigma is not None:
        for centre in modes:
            axes.add_patch(Circle(tuple(centre), 3 * sigma, fill=False, linestyle="--",
                                  linewidth=0.8, color="tab:red"))
    _set_view(axes, points, modes, 3 * sigma if sigma is not None else 0.0)
    axes.set_aspect("equal")
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2, fontsize="small",
                frameon=False)
    if title is not None:
        axes.set_title(title)
    return _save(figure, path)


def save_curve(
    history_rows: Iterable[Mapping[str, Any]],
    key: str,
    path: str | os.PathLike,
    *,
    title: str | None = None,
    figsize: tuple[float, float] = (5.0, 3.5),
    dpi: int = 100,
) -> Path:
    """Plots one logged metric against the step, e.g. ``"elbo/elbo"`` from ``FitResult.history``.

    Rows without ``key`` are skipped (not every row logs every metric). Values may be numbers,
    scalar arrays, ``None`` (the ``null`` that ``metrics.jsonl`` stores for a non-finite value) or
    the strings ``"nan"``/``"inf"``; non-finite values leave a gap in the line. Rows without ``"step"`` are placed at
    their index.

    Args:
        history_rows: the trainer's history, or the parsed rows of a ``metrics.jsonl``.
        key: the metric to plot.
        path: the PNG to write; missing parent directories are created.
        title: figure title; default ``key``.
        figsize: figure size in inches; the PNG is ``figsize * dpi`` pixels.
        dpi: dots per inch.

    Returns:
        ``path`` as a :class:`pathlib.Path`.

    Raises:
        ConfigError: no row holds ``key`` (the message lists the keys the rows do hold).
    """
    rows = list(history_rows)
    steps, values = [], []
    for index, row in enumerate(rows):
        if key in row:
            steps.append(float(row.get("step", index)))
            values.append(_as_float(row[key], key, index))
    if not values:
        seen = sorted({name for row in rows for name in row})
        raise ConfigError(f"key {key!r} is in none of the {len(rows)} history rows; "
                          f"expected one of {seen}")
    figure, axes = _figure(figsize, dpi)
    axes.plot(steps, values, marker="." if len(values) < 50 else None, linewidth=1.2)
    axes.set_xlabel("step")
    axes.set_ylabel(key)
    axes.grid(True, alpha=0.3)
    axes.set_title(key if title is None else title)
    return _save(figure, path)


def _check_images(images: Any) -> np.ndarray:
    pixels = np.asarray(images, dtype=np.float32)
    if pixels.ndim != 2 or pixels.shape[0] == 0:
        raise DataError(f"images must be a non-empty [N, D] array, got {describe(pixels)}")
    if np.isnan(pixels).any():
        raise DataError(f"images hold {int(np.isnan(pixels).sum())} NaN values; expected values "
                        f"in [0, 1]")
    return np.clip(pixels, 0.0, 1.0)


def _check_image_shape(image_shape: Sequence[int], size: int) -> tuple[int, int, int]:
    shape = tuple(int(side) for side in image_shape)
    if len(shape) == 2:
        shape = shape + (1,)
    if len(shape) != 3 or shape[2] not in (1, 3) or min(shape) < 1:
        raise ConfigError(f"image_shape must be (H, W) or (H, W, C) with C in {{1, 3}}, "
                          f"got {tuple(image_shape)}")
    if math.prod(shape) != size:
        raise ConfigError(f"image_shape {tuple(image_shape)} holds {math.prod(shape)} pixels but "
                          f"the images have D={size} values each; expected prod(image_shape) == D")
    return shape


def _check_columns(columns: int | None, count: int) -> int:
    if columns is None:
        return math.ceil(math.sqrt(count))
    if isinstance(columns, bool) or not isinstance(columns, (int, np.integer)) or columns < 1:
        raise ConfigError(f"columns must be a positive integer or None, got {describe(columns)}")
    return int(columns)


def _check_points(points: Any, name: str) -> np.ndarray:
    array = np.asarray(points, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 2 or array.shape[0] == 0:
        raise DataError(f"{name} must be a non-empty [N, 2] array, got {describe(array)}")
    if not np.isfinite(array).all():
        raise DataError(f"{name} hold {int((~np.isfinite(array)).sum())} non-finite values; "
                        f"expected finite 2-D points")
    return array


def _as_float(value: Any, key: str, index: int) -> float:
    if value is None:  # metrics.jsonl's null: a non-finite value
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DataError(f"history row {index} holds {key}={describe(value)}; expected a number "
                        f"or 'nan'/'inf'") from None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _set_view(axes: Any, points: np.ndarray, modes: np.ndarray, radius: float) -> None:
    low = np.minimum(modes.min(axis=0) - radius, np.quantile(points, 0.005, axis=0))
    high = np.maximum(modes.max(axis=0) + radius, np.quantile(points, 0.995, axis=0))
    pad = 0.05 * np.maximum(high - low, 1e-6) + 1e-6
    axes.set_xlim(low[0] - pad[0], high[0] + pad[0])
    axes.set_ylim(low[1] - pad[1], high[1] + pad[1])


def _figure(figsize: tuple[float, float], dpi: int) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if len(figsize) != 2 or not all(_is_number(side) and side > 0 for side in figsize):
        raise ConfigError(f"figsize must be two positive numbers (inches), got {figsize!r}")
    if not _is_number(dpi) or dpi <= 0:
        raise ConfigError(f"dpi must be a positive number, got {describe(dpi)}")
    figure = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _save(figure: Any, path: str | os.PathLike) -> Path:
    path = _prepare(path)
    figure.savefig(path, format="png", dpi=figure.dpi)
    return path


def _prepare(path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
