"""Data sets and a stateless, seeded batch iterator.

Everything here is NumPy: a data set is a small :class:`Dataset` record holding one split as a
``float32`` array ``x`` of shape ``[N, D]`` (images flattened row-major), and :class:`Batches`
turns it into a pure function ``step -> batch`` so that a resumed run sees exactly the batches
of the uninterrupted one.

Names accepted by :func:`load`:

``digits``
    scikit-learn's ``load_digits``: 1,797 real 8×8 handwritten digits, grey levels 0..16
    scaled to [0, 1] by ÷16, ``image_shape=(8, 8, 1)``, labels 0..9. The split is fixed and
    independent of ``seed``: example ``i`` (in scikit-learn's order) is in ``"test"`` when
    ``i % 6 == 5`` (299 examples) and in ``"train"`` otherwise (1,498); both splits keep
    scikit-learn's order.
``ring8``
    A uniform mixture of 8 Gaussians with centres ``radius·(cos 2πi/8, sin 2πi/8)``,
    ``i = 0..7``, and per-mode standard deviation ``sigma`` (default 0.01).
``grid25``
    A uniform mixture of 25 Gaussians with centres ``(a·spacing, b·spacing)`` for
    ``a, b ∈ {-2, -1, 0, 1, 2}`` (``a`` the slow index), per-mode standard deviation ``sigma``
    (default 0.05). With the default ``spacing=2`` the centres are ``{-4, -2, 0, 2, 4}²``.
    Both mixtures use PacGAN's settings (VEEGAN Table 1, PacGAN Table 1); their labels are
    the component index of each point.
``tfds:NAME``
    A TFDS data set read with ``tensorflow_datasets.data_source`` (no TensorFlow needed),
    e.g. ``tfds:binarized_mnist``. See :func:`load` for the feature and scaling rules.
``idx:DIR``
    MNIST-format IDX files in ``DIR`` (``train-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``,
    ..., each plain or gzipped), grey levels ÷255.

Binarization (``binarize=``) applies to image data sets: ``None`` keeps grey levels,
``"static"`` thresholds once (``x > 0.5`` becomes 1, anything else 0), ``"dynamic"`` keeps the
grey levels in ``x`` and :class:`Batches` draws a fresh ``Bernoulli(x)`` sample for every batch
from a generator seeded by ``(seed, step)``.
"""

from __future__ import annotations

import functools
import gzip
import itertools
import math
import os
import zlib
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from unigen.errors import ConfigError, DataError, brief, describe

__all__ = ["Batches", "Dataset", "check_array", "from_array", "load"]

BINARIZE_MODES = (None, "static", "dynamic")
"""Accepted values of ``binarize=``."""

STATIC_THRESHOLD = 0.5
"""Static binarization maps a grey level ``g`` to ``1.0 if g > STATIC_THRESHOLD else 0.0``."""

BUILTIN_NAMES = ("digits", "ring8", "grid25")
PREFIXES = ("tfds:", "idx:")

DIGITS_SPLITS = ("train", "test")
MIXTURE_SPLITS = ("train", "validation", "test")
MIXTURE_DEFAULT_N = {"train": 50_000, "validation": 2_500, "test": 2_500}
MIXTURE_DEFAULT_SIGMA = {"ring8": 0.01, "grid25": 0.05}

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions (count, rows, columns)
IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension (count)

TFDS_CHUNK = 2048  # records per ``__getitems__`` call
TFDS_LABEL_FEATURE = "label"

# Separate random streams of one Batches seed: the epoch permutation and the dynamic binarization.
_SHUFFLE_STREAM = 0
_BINARIZE_STREAM = 1


class Dataset(NamedTuple):
    """One split of a data set, as NumPy arrays.

    Attributes:
        name: ``"digits"``, ``"ring8"``, ``"grid25"``, ``"tfds:NAME"``, ``"idx:DIR"`` or the name
            given to :func:`from_array`.
        split: ``"train"``, ``"test"``, ...
        x: ``float32 [N, D]``, ``N >= 1``; images flattened row-major from ``[H, W, C]``.
        labels: ``int64 [N]`` where the source has labels (digit class, or the mixture
            component for ``ring8``/``grid25``), else ``None``.
        image_shape: ``(H, W, C)`` for images, ``None`` for points.
        centres: ``[M, 2]`` mode centres of ``ring8``/``grid25``, else ``None``.
        sigma: per-mode standard deviation of ``ring8``/``grid25``, else ``None``.
        binarize: ``None``, ``"static"`` or ``"dynamic"`` (``x`` then holds grey levels in
            [0, 1] and :class:`Batches` samples ``Bernoulli(x)``).
        source: where the data came from (file path, ``"sklearn.datasets.load_digits"``, ...),
            for error messages.
    """

    name: str
    split: str
    x: np.ndarray
    labels: np.ndarray | None
    image_shape: tuple[int, int, int] | None
    centres: np.ndarray | None
    sigma: float | None
    binarize: str | None
    source: str

    @property
    def kind(self) -> str:
        """``"image"`` when the data set has an ``image_shape``, else ``"points"``."""
        return "points" if self.image_shape is None else "image"

    def __repr__(self) -> str:
        labels = None if self.labels is None else f"int[{self.labels.shape[0]}]"
        return (
            f"Dataset(name={self.name!r}, split={self.split!r}, "
            f"x=float32{list(self.x.shape)}, labels={labels}, image_shape={self.image_shape}, "
            f"binarize={self.binarize!r}, source={self.source!r})"
        )


# ----------------------------------------------------------------------------------------------
# Validation


def first_index(mask: np.ndarray) -> tuple[int, ...]:
    """The index (row first) of the first ``True`` entry of ``mask``."""
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(mask)), mask.shape))


def _check_image_shape(image_shape: Any, argument: str = "image_shape") -> tuple[int, int, int]:
    """Validates ``(H, W, C)`` with positive integer entries."""
    ok = (
        isinstance(image_shape, (tuple, list))
        and len(image_shape) == 3
        and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in image_shape)
        and all(s >= 1 for s in image_shape)
    )
    if not ok:
        raise ConfigError(
            f"{argument}={image_shape!r}: expected a tuple (H, W, C) of three positive integers"
        )
    return tuple(int(s) for s in image_shape)


def check_array(
    x: Any, *, source: str, bernoulli: bool = False, image_shape: Any = None
) -> np.ndarray:
    """Validates a data array and returns it as ``float32 [N, D]``.

    Used by :func:`load` and :func:`from_array`, and by trainers and models on the arrays they
    are given.

    Args:
        x: array-like of a real dtype (bool, integer or float). Without ``image_shape`` it must
            be ``[N, D]``; with ``image_shape=(H, W, C)`` it may be ``[N, H, W, C]``, ``[N, H, W]``
            (when ``C == 1``) or ``[N, H·W·C]``, and is flattened row-major.
        source: what ``x`` is (file name, argument name), used in error messages.
        bernoulli: also require every value in [0, 1] (data for a Bernoulli likelihood).
        image_shape: optional ``(H, W, C)``.

    Returns:
        ``float32 [N, D]`` with ``N >= 1``, C-contiguous; it may share memory with ``x`` when
        ``x`` already is such an array.

    Raises:
        DataError: the dtype is not real and numeric (strings, objects, complex, ...), the rank
            or shape is wrong, ``N == 0`` or ``D == 0``, some values are NaN or Inf (after
            conversion to float32), or, with ``bernoulli=True``, some values lie outside [0, 1].
        ConfigError: ``image_shape`` is not three positive integers.
    """
    try:
        array = np.asarray(x)
    except (ValueError, TypeError) as err:  # ragged nested lists and the like
        raise DataError(
            f"{source}: could not convert {describe(x)} to an array ({err}); "
            f"expected a rectangular numeric array"
        ) from err
    if array.dtype.kind not in "biuf":
        raise DataError(
            f"{source}: got {describe(array)}; expected a real numeric dtype "
            f"(bool, integer or float), not {array.dtype.name}"
        )
    if image_shape is None:
        if array.ndim != 2:
            raise DataError(
                f"{source}: got {describe(array)} (rank {array.ndim}); expected rank 2, [N, D] "
                f"(pass image_shape=(H, W, C) for image arrays)"
            )
    else:
        image_shape = _check_image_shape(image_shape)
        height, width, channels = image_shape
        accepted = [(height, width, channels), (height * width * channels,)]
        if channels == 1:
            accepted.append((height, width))
        if array.ndim < 2 or tuple(array.shape[1:]) not in accepted:
            expected = " or ".join(f"[N, {', '.join(map(str, s))}]" for s in accepted)
            raise DataError(
                f"{source}: got {describe(array)}; expected {expected} "
                f"for image_shape {image_shape}"
            )
        array = array.reshape(array.shape[0], -1)
    count, dim = array.shape
    if count == 0 or dim == 0:
        raise DataError(
            f"{source}: got {describe(array)}; expected at least one example (N >= 1) "
            f"with at least one value (D >= 1)"
        )
    with np.errstate(over="ignore"):  # values beyond float32's range become Inf, reported below
        array = np.ascontiguousarray(array, dtype=np.float32)
    finite = np.isfinite(array)
    if not finite.all():
        bad = int(array.size - np.count_nonzero(finite))
        raise DataError(
            f"{source}: {bad} NaN or Inf value(s) (in float32), the first at index "
            f"{first_index(~finite)}; expected finite values"
        )
    if bernoulli:
        outside = (array < 0.0) | (array > 1.0)
        if outside.any():
            raise DataError(
                f"{source}: {int(np.count_nonzero(outside))} value(s) outside [0, 1] "
                f"(min {float(array.min()):g}, max {float(array.max()):g}; the first at index "
                f"{first_index(outside)}); expected values in [0, 1] for a Bernoulli likelihood"
            )
    return array


def _check_binarize(binarize: Any) -> None:
    if binarize not in BINARIZE_MODES:
        raise ConfigError(f"binarize={binarize!r}: expected one of {list(BINARIZE_MODES)}")


def _check_int(value: Any, argument: str, minimum: int) -> int:
    """An integer ``>= minimum`` (bools refused), else ConfigError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{argument}={value!r}: expected an integer >= {minimum}")
    return int(value)


def _check_split(split: Any, known: tuple[str, ...], name: str) -> None:
    if split not in known:
        raise DataError(f"split={split!r}: data set {name!r} has splits {list(known)}")


def _binarized(x: np.ndarray, binarize: str | None) -> np.ndarray:
    """Applies the static threshold; ``None`` and ``"dynamic"`` keep grey levels."""
    if binarize == "static":
        return (x > STATIC_THRESHOLD).astype(np.float32)
    return x


def _first(
    array: np.ndarray | None, n: int | None, *, split: str, source: str
) -> np.ndarray | None:
    """The first ``n`` rows of ``array`` (all when ``n`` is None)."""
    if array is None or n is None:
        return array
    if n > array.shape[0]:
        raise DataError(f"n={n}: split {split!r} of {source} has only {array.shape[0]} examples")
    return array[:n]


def _image_dataset(
    *,
    name: str,
    split: str,
    x: Any,
    labels: np.ndarray | None,
    image_shape: tuple[int, int, int],
    binarize: str | None,
    source: str,
    n: int | None,
) -> Dataset:
    """Validates grey levels in [0, 1], keeps the first ``n`` rows and binarizes."""
    x = check_array(x, source=source, bernoulli=True, image_shape=image_shape)
    x = _first(x, n, split=split, source=source)
    labels = _first(labels, n, split=split, source=source)
    return Dataset(
        name=name,
        split=split,
        x=_binarized(x, binarize),
        labels=None if labels is None else np.array(labels, dtype=np.int64),
        image_shape=image_shape,
        centres=None,
        sigma=None,
        binarize=binarize,
        source=source,
    )


# ----------------------------------------------------------------------------------------------
# Public constructors


def load(
    name: str,
    split: str = "train",
    *,
    data_dir: str | None = None,
    binarize: str | None = None,
    n: int | None = None,
    radius: float = 1.0,
    spacing: float = 2.0,
    sigma: float | None = None,
    seed: int = 0,
) -> Dataset:
    """Loads one split of a named data set (see the module docstring for the names).

    ``tfds:NAME`` reads every record of the split with ``tensorflow_datasets.data_source(NAME,
    split=split, data_dir=..., download=False)``, in TFDS's stored order, in chunks of
    ``__getitems__``. The image is the first feature, in record order, whose value is a
    ``uint8`` array of rank 3 ``[H, W, C]`` (or rank 2, read as ``C = 1``); a feature named
    ``"label"`` holding integer scalars becomes ``labels``. Scaling is decided from the values
    read: when every value is 0 or 1 (binary data such as ``binarized_mnist``) they are used as
    they are, otherwise they are grey levels 0..255 and divided by 255. Records are cached in
    process (a few entries, keyed by name, split, directory and ``n``), so loading the same
    split again is fast; nothing is written to disk.

    Args:
        name: ``"digits"``, ``"ring8"``, ``"grid25"``, ``"tfds:NAME"`` or ``"idx:DIR"``.
        split: ``"train"`` or ``"test"`` (digits, idx), also ``"validation"`` (ring8, grid25),
            any split the TFDS data set has (tfds).
        data_dir: TFDS data directory (tfds only); defaults to ``$TFDS_DATA_DIR``, else TFDS's
            own default.
        binarize: ``None``, ``"static"`` or ``"dynamic"`` (image data sets only).
        n: number of examples. ring8/grid25: points to draw (default 50,000 for train, 2,500
            otherwise); other data sets: keep the first ``n`` of the split (default: all).
        radius: ring8's circle radius.
        spacing: grid25's distance between neighbouring centres.
        sigma: per-mode standard deviation of ring8 (default 0.01) or grid25 (default 0.05).
        seed: ring8/grid25 draw from ``np.random.default_rng([seed, crc32(split)])``, so the
            splits differ and every draw is reproducible. The other data sets are fixed.

    Returns:
        The split as a :class:`Dataset`.

    Raises:
        ConfigError: unknown name or binarize mode, an argument the data set does not use
            (``binarize`` for points, ``data_dir`` outside tfds, mixture parameters elsewhere),
            or an out-of-range number.
        DataError: unknown split, missing or empty directory or file, malformed file, data set
            not prepared in ``data_dir``, empty split, ``n`` larger than the split, bad values.
    """
    if not isinstance(name, str):
        raise ConfigError(f"name={name!r}: expected a string")
    _check_binarize(binarize)
    if n is not None:
        n = _check_int(n, "n", 1)
    mixture = name in MIXTURE_DEFAULT_SIGMA
    if not mixture:
        for argument, value, default in (
            ("radius", radius, 1.0),
            ("spacing", spacing, 2.0),
            ("sigma", sigma, None),
        ):
            if value != default:
                raise ConfigError(
                    f"{argument}={value!r}: only ring8/grid25 use it; data set {name!r} expects "
                    f"the default {default!r}"
                )
    if data_dir is not None and not name.startswith("tfds:"):
        raise ConfigError(
            f"data_dir={data_dir!r}: only tfds: data sets use it; for {name!r} expected None"
        )

    if name == "digits":
        return _load_digits(split, binarize=binarize, n=n)
    if mixture:
        if binarize is not None:
            raise ConfigError(
                f"binarize={binarize!r}: {name} holds real-valued 2-D points; expected None"
            )
        return _load_mixture(
            name, split, n=n, radius=radius, spacing=spacing, sigma=sigma, seed=seed
        )
    if name.startswith("tfds:") and len(name) > len("tfds:"):
        return _load_tfds(name[len("tfds:"):], split, data_dir=data_dir, binarize=binarize, n=n)
    if name.startswith("idx:") and len(name) > len("idx:"):
        return _load_idx(name[len("idx:"):], split, binarize=binarize, n=n)
    hint = ""
    if not name.startswith(PREFIXES) and ":" not in name and name not in ("", "array"):
        hint = f" (for a TFDS data set write 'tfds:{name}')"
    raise ConfigError(
        f"name={name!r}: unknown data set; expected one of {list(BUILTIN_NAMES)}, "
        f"'tfds:NAME' or 'idx:DIR'{hint}"
    )


def from_array(
    x: Any,
    *,
    name: str = "array",
    split: str = "train",
    image_shape: Any = None,
    binarize: str | None = None,
) -> Dataset:
    """Wraps a user array as a validated :class:`Dataset`.

    Args:
        x: ``[N, D]`` data, or images ``[N, H, W, C]`` / ``[N, H, W]`` (then ``image_shape`` is
            taken from the array when not given).
        name: the data set's name, used in messages.
        split: the split's name.
        image_shape: ``(H, W, C)`` for images; ``None`` with 2-D ``x`` means points.
        binarize: ``None``, ``"static"`` or ``"dynamic"``; anything but ``None`` requires values
            in [0, 1].

    Returns:
        A :class:`Dataset` with ``labels``, ``centres`` and ``sigma`` set to ``None``.

    Raises:
        ConfigError: unknown ``binarize`` or a malformed ``image_shape``.
        DataError: see :func:`check_array`.
    """
    _check_binarize(binarize)
    source = f"array passed to from_array (name={name!r})"
    ndim = np.ndim(x)
    if image_shape is None and ndim == 4:
        image_shape = tuple(np.shape(x)[1:])
    elif image_shape is None and ndim == 3:
        image_shape = (*np.shape(x)[1:], 1)
    if image_shape is not None:
        image_shape = _check_image_shape(image_shape)
    array = check_array(x, source=source, bernoulli=binarize is not None, image_shape=image_shape)
    return Dataset(
        name=name,
        split=split,
        x=_binarized(array, binarize),
        labels=None,
        image_shape=image_shape,
        centres=None,
        sigma=None,
        binarize=binarize,
        source=source,
    )


# ----------------------------------------------------------------------------------------------
# digits


@functools.lru_cache(maxsize=1)
def _digits_raw() -> tuple[np.ndarray, np.ndarray]:
    # The file scikit-learn's load_digits reads (8x8 pixel values 0-16, then the label, per row),
    # read here without importing scikit-learn, which takes 1-3 s.
    import importlib.util  # noqa: PLC0415

    spec = importlib.util.find_spec("sklearn")  # finds the package without running it
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz" if spec else None
    if path is not None and path.is_file():
        table = np.loadtxt(path, delimiter=",")
        data, target = table[:, :-1], table[:, -1].astype(np.int64)
    else:  # another layout of scikit-learn: ask it
        from sklearn.datasets import load_digits  # noqa: PLC0415

        bunch = load_digits()
        data, target = np.asarray(bunch.data), np.asarray(bunch.target, dtype=np.int64)
    data.flags.writeable = False
    target.flags.writeable = False
    return data, target


def _load_digits(split: str, *, binarize: str | None, n: int | None) -> Dataset:
    _check_split(split, DIGITS_SPLITS, "digits")
    data, target = _digits_raw()
    in_test = np.arange(data.shape[0]) % 6 == 5
    keep = in_test if split == "test" else ~in_test
    return _image_dataset(
        name="digits",
        split=split,
        x=data[keep] / 16.0,
        labels=target[keep],
        image_shape=(8, 8, 1),
        binarize=binarize,
        source="sklearn.datasets.load_digits",
        n=n,
    )


# ----------------------------------------------------------------------------------------------
# ring8 / grid25


def _mixture_centres(name: str, *, radius: float, spacing: float) -> np.ndarray:
    """Mode centres ``[M, 2]`` (float64) in component-index order."""
    if name == "ring8":
        angles = 2.0 * np.pi * np.arange(8) / 8
        return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    levels = spacing * np.arange(-2, 3, dtype=np.float64)
    return np.array([(a, b) for a in levels for b in levels])


def _load_mixture(
    name: str,
    split: str,
    *,
    n: int | None,
    radius: float,
    spacing: float,
    sigma: float | None,
    seed: int,
) -> Dataset:
    _check_split(split, MIXTURE_SPLITS, name)
    seed = _check_int(seed, "seed", 0)
    sigma = MIXTURE_DEFAULT_SIGMA[name] if sigma is None else sigma
    for argument, value in (("radius", radius), ("spacing", spacing), ("sigma", sigma)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and value > 0
        ):
            raise ConfigError(f"{argument}={value!r}: expected a finite number > 0")
    count = MIXTURE_DEFAULT_N[split] if n is None else n
    centres = _mixture_centres(name, radius=float(radius), spacing=float(spacing))
    rng = np.random.default_rng([seed, zlib.crc32(split.encode())])
    labels = rng.integers(0, centres.shape[0], size=count)
    x = centres[labels] + float(sigma) * rng.standard_normal((count, 2))
    return Dataset(
        name=name,
        split=split,
        x=x.astype(np.float32),
        labels=labels.astype(np.int64),
        image_shape=None,
        centres=centres.astype(np.float32),
        sigma=float(sigma),
        binarize=None,
        source=f"synthetic {name} (seed={seed}, split={split!r})",
    )


# ----------------------------------------------------------------------------------------------
# tfds:NAME


def _resolve_tfds_dir(data_dir: str | None) -> str | None:
    """``data_dir``, else ``$TFDS_DATA_DIR``, else None (TFDS's default); must exist if set."""
    argument = "data_dir"
    if data_dir is None and os.environ.get("TFDS_DATA_DIR"):
        data_dir, argument = os.environ["TFDS_DATA_DIR"], "TFDS_DATA_DIR"
    if data_dir is None:
        return None
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        raise DataError(
            f"{argument}={str(data_dir)!r}: no such directory; expected a TFDS data directory "
            f"holding NAME/VERSION/ folders prepared in array_record format"
        )
    return str(path.resolve())


def _tfds_open_error(name: str, split: str, data_dir: str | None, err: Exception) -> DataError:
    """A DataError explaining why ``tfds.data_source`` failed."""
    where = "TFDS's default data directory" if data_dir is None else f"data_dir {data_dir!r}"
    folder = None if data_dir is None else Path(data_dir) / name.split(":")[0]
    # TFDS reports a data set prepared without array_record, or not prepared at all, as a
    # NotImplementedError about random access to TFRECORD files; say what is expected instead.
    no_random_access = isinstance(err, NotImplementedError)
    detail = str(err).strip().splitlines()[0].rstrip(":") if str(err).strip() else ""
    said = "" if no_random_access or not detail else f" (TFDS said: {detail})"
    if folder is not None and not folder.is_dir():
        present = sorted(p.name for p in folder.parent.iterdir() if p.is_dir())
        return DataError(
            f"tfds:{name}: not prepared in {where} (it holds {present or 'nothing'}); expected "
            f"{folder}/VERSION/ with dataset_info.json and array_record files{said}"
        )
    if no_random_access:
        return DataError(
            f"tfds:{name}: no array_record files for split={split!r} in {where}; expected the "
            f"data set prepared with file_format='array_record' (tfds.data_source needs random "
            f"access)"
        )
    return DataError(
        f"tfds:{name}: could not open split={split!r} in {where}: {detail or type(err).__name__}"
    )


def _pick_image_feature(record: dict[str, Any], source: str) -> str:
    for key, value in record.items():
        if isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.ndim in (2, 3):
            return key
    seen = {key: describe(value) for key, value in record.items()}
    raise DataError(
        f"{source}: no image feature; expected a uint8 array [H, W, C] or [H, W], got {seen}"
    )


def _is_label(value: Any) -> bool:
    return np.ndim(value) == 0 and np.asarray(value).dtype.kind in "iu"


@functools.lru_cache(maxsize=4)
def _read_tfds(
    name: str, split: str, data_dir: str | None, n: int | None
) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Reads the image feature of a TFDS split as uint8 ``[N, H, W, C]`` (read-only, cached)."""
    import tensorflow_datasets as tfds  # noqa: PLC0415 (slow import, tfds: only)

    try:
        source = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
    except Exception as err:  # TFDS raises ValueError, NotImplementedError, AssertionError, ...
        raise _tfds_open_error(name, split, data_dir, err) from err
    where = f"tfds:{name} split {split!r} in " + (data_dir or "TFDS's default data directory")
    try:
        total = len(source)
        if total == 0:
            raise DataError(f"{where}: the split is empty; expected at least one example")
        if n is not None and n > total:
            raise DataError(f"n={n}: {where} has only {total} examples")
        count = total if n is None else n
        records: list[Any] = []
        batched = getattr(source, "__getitems__", None)
        for start in range(0, count, TFDS_CHUNK):
            keys = list(range(start, min(start + TFDS_CHUNK, count)))
            records.extend(batched(keys) if batched else [source[k] for k in keys])
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001 - a missing, truncated or corrupt array_record file, in any words
        raise DataError(f"{where}: its records cannot be read ({brief(err)}); expected the complete files "
                        "TFDS prepared (prepare the data set again)") from None
    feature = _pick_image_feature(records[0], where)
    shape = records[0][feature].shape
    bad = next((i for i, r in enumerate(records) if r[feature].shape != shape), None)
    if bad is not None:
        raise DataError(
            f"{where}: record {bad} has image shape {records[bad][feature].shape}; expected "
            f"{shape} like record 0"
        )
    images = np.stack([r[feature] for r in records])
    if images.ndim == 3:
        images = images[..., None]
    labels = None
    if TFDS_LABEL_FEATURE in records[0] and _is_label(records[0][TFDS_LABEL_FEATURE]):
        labels = np.array([r[TFDS_LABEL_FEATURE] for r in records], dtype=np.int64)
        labels.flags.writeable = False
    images.flags.writeable = False
    return images, labels, where


def _load_tfds(
    name: str, split: str, *, data_dir: str | None, binarize: str | None, n: int | None
) -> Dataset:
    images, labels, where = _read_tfds(name, split, _resolve_tfds_dir(data_dir), n)
    binary = int(images.max()) <= 1
    x = images.reshape(images.shape[0], -1).astype(np.float32)
    if not binary:
        x /= 255.0
    return _image_dataset(
        name=f"tfds:{name}",
        split=split,
        x=x,
        labels=labels,
        image_shape=tuple(int(s) for s in images.shape[1:]),
        binarize=binarize,
        source=where,
        n=None,
    )


# ----------------------------------------------------------------------------------------------
# idx:DIR


def _find_idx_file(directory: Path, stem: str) -> Path | None:
    """``stem`` if present, else ``stem.gz``, else None."""
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _read_idx(path: str | os.PathLike, expected_magic: int) -> np.ndarray:
    """Parses one IDX file (plain or gzipped) of unsigned bytes.

    The format: a big-endian 32-bit magic number ``0x00 0x00 TYPE NDIM`` (``TYPE = 0x08`` for
    unsigned bytes), ``NDIM`` big-endian 32-bit sizes, then the values in row-major order.

    Args:
        path: the file; a name ending in ``.gz`` is decompressed.
        expected_magic: ``0x00000803`` for images, ``0x00000801`` for labels.

    Returns:
        ``uint8`` array with the shape the header gives.

    Raises:
        DataError: unreadable or corrupt gzip, wrong magic number, truncated header or data,
            or bytes after the data; the message names the file.
    """
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                content = handle.read()
        else:
            content = path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path}: could not read the IDX file ({err})") from err
    if len(content) < 4:
        raise DataError(f"{path}: {len(content)} bytes; expected an IDX header of at least 4")
    magic = int.from_bytes(content[:4], "big")
    if magic != expected_magic:
        raise DataError(
            f"{path}: magic number 0x{magic:08x}; expected 0x{expected_magic:08x} "
            f"(unsigned bytes, {expected_magic & 0xFF} dimension(s))"
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(content) < header:
        raise DataError(f"{path}: truncated header of {len(content)} bytes; expected {header}")
    shape = tuple(int.from_bytes(content[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + math.prod(shape)
    if len(content) != expected:
        problem = "truncated" if len(content) < expected else "has trailing bytes"
        raise DataError(
            f"{path}: {problem}: {len(content)} bytes; expected {expected} for the header's "
            f"shape {shape}"
        )
    return np.frombuffer(content, dtype=np.uint8, offset=header).reshape(shape)


def _load_idx(directory: str, split: str, *, binarize: str | None, n: int | None) -> Dataset:
    _check_split(split, tuple(IDX_FILES), f"idx:{directory}")
    folder = Path(directory).expanduser()
    if not folder.is_dir():
        raise DataError(f"idx:{directory}: no such directory; expected a folder of IDX files")
    images_stem, labels_stem = IDX_FILES[split]
    images_path = _find_idx_file(folder, images_stem)
    if images_path is None:
        present = sorted(p.name for p in folder.iterdir())
        raise DataError(
            f"idx:{directory}: no {images_stem} or {images_stem}.gz for split {split!r} "
            f"(the folder holds {present or 'nothing'})"
        )
    images = _read_idx(images_path, IDX_IMAGES_MAGIC)
    labels = None
    labels_path = _find_idx_file(folder, labels_stem)
    if labels_path is not None:
        labels = _read_idx(labels_path, IDX_LABELS_MAGIC)
        if labels.shape[0] != images.shape[0]:
            raise DataError(
                f"{labels_path}: {labels.shape[0]} labels; expected {images.shape[0]}, the "
                f"number of images in {images_path}"
            )
    if images.shape[0] == 0:
        raise DataError(f"{images_path}: the split is empty; expected at least one image")
    return _image_dataset(
        name=f"idx:{directory}",
        split=split,
        x=images.reshape(images.shape[0], -1) / np.float32(255.0),
        labels=labels,
        image_shape=(images.shape[1], images.shape[2], 1),
        binarize=binarize,
        source=str(images_path),
        n=n,
    )


# ----------------------------------------------------------------------------------------------
# Batches


class Batches:
    """A seeded batch iterator whose batch ``t`` is a pure function of ``(seed, t)``.

    Epoch ``e`` visits the examples in the order ``np.random.default_rng([seed, 0, e])
    .permutation(N)``, cut into ``steps_per_epoch = N // batch_size`` batches (the remainder
    is dropped); step ``t`` is batch ``t % steps_per_epoch`` of epoch ``t // steps_per_epoch``.
    For ``binarize="dynamic"`` data sets the global batch is replaced by a Bernoulli draw with
    uniforms from ``np.random.default_rng([seed, 1, t])``. Nothing depends on earlier calls, so a
    resumed run reproduces the batches of an uninterrupted one.

    Attributes:
        dataset: the :class:`Dataset`.
        batch_size: the global batch size ``B``.
        seed: the seed.
        steps_per_epoch: ``N // B``.
    """

    def __init__(self, dataset: Dataset, batch_size: int, *, seed: int = 0):
        """Validates the sizes.

        Args:
            dataset: the split to iterate over.
            batch_size: the global batch size, ``1 <= batch_size <= N``.
            seed: a non-negative integer.

        Raises:
            ConfigError: ``dataset`` is not a Dataset, ``batch_size`` or ``seed`` not an integer.
            DataError: ``batch_size`` is below 1 or larger than the split.
        """
        if not isinstance(dataset, Dataset):
            raise ConfigError(f"dataset={describe(dataset)}: expected a unigen.data.Dataset")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise ConfigError(f"batch_size={batch_size!r}: expected an integer")
        size = dataset.x.shape[0]
        if not 1 <= batch_size <= size:
            raise DataError(
                f"batch_size={batch_size}: split {dataset.split!r} of {dataset.name} has "
                f"{size} examples; expected 1 <= batch_size <= {size}"
            )
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.seed = _check_int(seed, "seed", 0)
        self.steps_per_epoch = size // self.batch_size
        self._permutation: tuple[int, np.ndarray] | None = None  # memo of the last epoch

    def __repr__(self) -> str:
        return (
            f"Batches({self.dataset.name}:{self.dataset.split}, batch_size={self.batch_size}, "
            f"seed={self.seed}, steps_per_epoch={self.steps_per_epoch})"
        )

    def _epoch_order(self, epoch: int) -> np.ndarray:
        memo = self._permutation
        if memo is None or memo[0] != epoch:
            order = np.random.default_rng([self.seed, _SHUFFLE_STREAM, epoch]).permutation(
                self.dataset.x.shape[0]
            )
            memo = (epoch, order)
            self._permutation = memo
        return memo[1]

    def at(
        self, step: int, *, process_index: int = 0, process_count: int = 1
    ) -> dict[str, np.ndarray]:
        """Batch number ``step`` (this process's share of it).

        Args:
            step: a non-negative integer.
            process_index: which contiguous slice of the global batch to return.
            process_count: how many processes share the global batch; must divide
                ``batch_size``.

        Returns:
            ``{"x": float32 [batch_size // process_count, D]}``; the slices of processes
            ``0 .. process_count - 1`` concatenate to the global batch.

        Raises:
            ConfigError: bad ``step``, ``process_index`` or ``process_count``.
        """
        step = _check_int(step, "step", 0)
        process_count = _check_int(process_count, "process_count", 1)
        if self.batch_size % process_count:
            raise ConfigError(
                f"process_count={process_count}: expected a divisor of batch_size="
                f"{self.batch_size}"
            )
        process_index = _check_int(process_index, "process_index", 0)
        if process_index >= process_count:
            raise ConfigError(
                f"process_index={process_index}: expected 0 <= process_index < "
                f"process_count={process_count}"
            )
        epoch, position = divmod(step, self.steps_per_epoch)
        local = self.batch_size // process_count
        start = position * self.batch_size + process_index * local
        index = self._epoch_order(epoch)[start: start + local]
        x = self.dataset.x[index]
        if self.dataset.binarize == "dynamic":
            uniform = np.random.default_rng([self.seed, _BINARIZE_STREAM, step]).random(
                (self.batch_size, x.shape[1]), dtype=np.float32
            )
            rows = slice(process_index * local, (process_index + 1) * local)
            x = (uniform[rows] < x).astype(np.float32)
        return {"x": x}

    def stack(self, start: int, count: int, **kw: int) -> dict[str, np.ndarray]:
        """``count`` consecutive batches from ``start``, stacked: ``{"x": [count, B', D]}``.

        Args:
            start: the first step.
            count: how many steps, at least 1.
            **kw: ``process_index`` / ``process_count`` as in :meth:`at`.
        """
        count = _check_int(count, "count", 1)
        start = _check_int(start, "start", 0)
        return {"x": np.stack([self.at(start + i, **kw)["x"] for i in range(count)])}

    def __iter__(self):
        """Yields ``at(0)``, ``at(1)``, ... forever."""
        return (self.at(step) for step in itertools.count())
