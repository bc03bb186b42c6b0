"""Run records: ``metrics.jsonl`` (kept consistent with the checkpoints) and the progress bar."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Mapping

from tqdm import tqdm

from unigen.errors import StorageError
from unigen.training.rundir import finite_or_null


def to_python(value: Any) -> Any:
    """A JSON-ready Python number from a scalar array (NaN and Inf become None: JSON ``null``)."""
    number = float(value)
    return number if math.isfinite(number) else None


class MetricsLog:
    """Appends one JSON object per logged step to ``path`` (a context manager that closes it).

    On resume from step ``s`` the rows after ``s`` (written by the interrupted run after its last
    checkpoint) and a half-written last line are dropped, so the file reads exactly as the
    uninterrupted run's would; the rows kept are :attr:`kept`. The file is rewritten through a
    temporary file and a rename, so a kill during the cut leaves the old or the new file whole.
    """

    def __init__(self, path: str | os.PathLike, resume_step: int | None = None):
        self.path = Path(path)
        self.kept: list[dict[str, Any]] = []
        try:
            if resume_step is not None and self.path.exists():
                lines = self.path.read_text().splitlines()
                rows = [(line, _row(line)) for line in lines]
                self.kept = [row for line, row in rows if row is not None and row["step"] <= resume_step]
                text = "".join(line + "\n" for line, row in rows if row is not None and row["step"] <= resume_step)
                temporary = self.path.with_name(self.path.name + ".tmp")
                temporary.write_text(text)
                os.replace(temporary, self.path)
            self._file = open(self.path, "a", buffering=1)
        except OSError as error:
            raise StorageError.of(self.path, error) from None

    def write(self, row: Mapping[str, Any]) -> None:
        """Writes one row and flushes it (line buffered), so a killed run loses nothing logged."""
        try:
            self._file.write(json.dumps(finite_or_null(dict(row)), allow_nan=False) + "\n")
        except OSError as error:
            raise StorageError.of(self.path, error) from None

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "MetricsLog":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _row(line: str) -> dict[str, Any] | None:
    """The row of one line, or None for a line that is not a whole row (cut by a kill)."""
    try:
        row = json.loads(line)
    except ValueError:
        return None
    if not isinstance(row, dict) or not isinstance(row.get("step"), int):
        return None
    return row


def progress_bar(total: int, initial: int, enabled: bool | None, unit: str = "step") -> tqdm:
    """A tqdm bar on a terminal; silent when ``enabled`` is False, or None and stderr is no tty."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    return tqdm(total=total, initial=initial, disable=not enabled, unit=unit, dynamic_ncols=True)
