"""What a training process runs on: JAX's persistent compilation cache and the devices it uses.

* :func:`enable_compilation_cache` points JAX's on-disk cache of compiled programs at a
  directory (default ``$XDG_CACHE_HOME/unigen/jax``, else ``~/.cache/unigen/jax``), so that a second
  ``unigen train`` with the same shapes loads its compiled steps instead of compiling them again.
  ``UNIGEN_COMPILATION_CACHE=0`` turns it off; any other non-empty value other than ``1`` is
  taken as the directory. A cache directory already given to JAX (``JAX_COMPILATION_CACHE_DIR``
  or ``jax.config``) is left as it is. Entries are written whole or not at all, and one that
  cannot be read is removed so that it is written again (:func:`keep_cache_entries_whole`).
* :func:`device_line` says in one line which platform and devices the process computes on.
* :func:`matmul_precision` sets the precision of every matrix product of the programs traced
  inside it (:data:`PRECISIONS`).

Neither imports JAX before it is called.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType

ENVIRONMENT_VARIABLE = "UNIGEN_COMPILATION_CACHE"
PRECISIONS: Mapping[str, str] = MappingProxyType({"float32": "float32", "bfloat16": "BF16_BF16_F32"})
"""``--precision`` -> JAX's ``default_matmul_precision``: ``float32`` is full float32 products
(``Precision.HIGHEST``: no TensorFloat-32 on GPUs, six bfloat16 passes on TPUs); ``bfloat16``
is the dot algorithm ``BF16_BF16_F32``: operands rounded to bfloat16, products accumulated and
returned in float32 (GPU tensor cores, one TPU pass). XLA's CPU backend ignores the algorithm and
computes in float32 either way."""
_OFF = ("0", "false", "off", "no")


def default_cache_directory() -> Path:
    """``$XDG_CACHE_HOME/unigen/jax``, or ``~/.cache/unigen/jax`` when that is not set."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "unigen" / "jax"


def enable_compilation_cache(directory: str | os.PathLike | None = None) -> Path | None:
    """Turns on JAX's persistent compilation cache; returns its directory (None: off).

    Every compiled program is cached, however small or quick to compile (the minimum entry
    size and compile time are set to zero): a short run's time is mostly many small compiles.
    Call it before the first compilation; JAX reads the setting once per process.

    Args:
      directory: where to keep the cache (None: ``$UNIGEN_COMPILATION_CACHE`` if it names a
        directory, else :func:`default_cache_directory`). ``UNIGEN_COMPILATION_CACHE=0`` wins
        over this argument.
    """
    setting = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    if setting.lower() in _OFF:
        return None
    import jax

    if jax.config.jax_compilation_cache_dir:  # the user configured JAX's cache: theirs to keep
        return Path(jax.config.jax_compilation_cache_dir)
    if directory is None:
        directory = setting if setting and setting.lower() not in ("1", "true", "on", "yes") else None
    path = Path(directory) if directory is not None else default_cache_directory()
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    keep_cache_entries_whole()
    return path


def keep_cache_entries_whole() -> bool:
    """Makes a process killed while JAX writes a cache entry leave no damaged entry behind.

    JAX (0.10) writes an entry in place and never replaces an existing one: a SIGKILL in the
    middle of a write leaves a truncated file that every later run fails to read (a warning, and
    the program compiled again), for ever. With this, an entry is written to a hidden temporary
    file beside it and renamed into place (a rename within a directory is atomic), and an entry
    that fails to decompress is deleted as it is read, so JAX's usual fallback (warn once,
    compile) writes it again. Only JAX's local-disk cache without size limit is changed; any
    other cache, or a JAX whose internals differ, keeps JAX's own behaviour (returns False).
    """
    try:
        from jax._src import compilation_cache, lru_cache

        cache_class, suffix = lru_cache.LRUCache, lru_cache._CACHE_SUFFIX
        read = compilation_cache.get_executable_and_time
        is_local = lru_cache._is_local_filesystem
    except (ImportError, AttributeError):
        return False
    if getattr(cache_class.put, "_unigen_whole", False):
        return True
    jax_put = cache_class.put

    def local_directory(cache: object) -> Path | None:
        path = getattr(cache, "path", None)
        if path is None or getattr(cache, "eviction_enabled", True) or not is_local(os.fspath(path)):
            return None
        return Path(os.fspath(path).removeprefix("file://"))

    def put(self, key: str, value: bytes) -> None:
        path = local_directory(self)
        if not key or path is None:
            return jax_put(self, key, value)
        final = path / f"{key}{suffix}"
        if final.exists():
            return None
        partial = path / f".{final.name}.{os.getpid()}.{threading.get_ident()}.partial"  # per writer
        try:
            partial.write_bytes(value)
            os.replace(partial, final)
        finally:
            partial.unlink(missing_ok=True)
        return None

    def read_or_forget(cache_key: str, *args, **kwargs):
        try:
            return read(cache_key, *args, **kwargs)
        except Exception:
            path = local_directory(getattr(compilation_cache, "_cache", None))
            if path is not None:
                (path / f"{cache_key}{suffix}").unlink(missing_ok=True)
            raise

    put._unigen_whole = True  # type: ignore[attr-defined]
    cache_class.put = put
    compilation_cache.get_executable_and_time = read_or_forget
    return True


def device_line() -> str:
    """One line: the platform, the devices (all processes'), and this process's share, e.g.
    ``platform cpu: 1 device (cpu x1); process 0 of 1 with 1 local device``."""
    import jax

    devices = jax.devices()
    kinds: dict[str, int] = {}
    for device in devices:
        kinds[device.device_kind] = kinds.get(device.device_kind, 0) + 1
    described = ", ".join(f"{kind} x{count}" for kind, count in kinds.items())
    plural = "s" if len(devices) != 1 else ""
    local = jax.local_device_count()
    return (f"platform {jax.default_backend()}: {len(devices)} device{plural} ({described}); "
            f"process {jax.process_index()} of {jax.process_count()} with {local} local "
            f"device{'s' if local != 1 else ''}")


@contextlib.contextmanager
def matmul_precision(name: str) -> Iterator[None]:
    """Traces the block's programs with the matrix-product precision ``name`` (:data:`PRECISIONS`).

    The setting is part of JAX's compilation cache key, so a function compiled under one
    precision is compiled again under another.
    """
    import jax

    with jax.default_matmul_precision(PRECISIONS[name]):
        yield
