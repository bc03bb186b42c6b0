"""Run records: ``metrics.jsonl`` (kept consistent with the checkpoints) and the progress bar."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Mapping

from tqdm import tqdm


def to_python(value: Any) -> Any:
    """A JSON-ready Python number from a scalar array (NaN and Inf become strings)."""
    number = float(value)
    if math.isfinite(number):
        return number
    return str(number)


class MetricsLog:
    """Appends one JSON object per logged step to ``path``.

    On resume from step ``s`` the rows after ``s`` (written by the interrupted run after its last
    checkpoint) are dropped, so the file reads exactly as the uninterrupted run's would.
    """

    def __init__(self, path: str | os.PathLike, resume_step: int | None = None):
        self.path = Path(path)
        if resume_step is not None and self.path.exists():
            rows = [line for line in self.path.read_text().splitlines() if line.strip()]
            kept = [line for line in rows if _step_of(line) <= resume_step]
            self.path.write_text("".join(line + "\n" for line in kept))
        self._file = open(self.path, "a", buffering=1)

    def write(self, row: Mapping[str, Any]) -> None:
        """Writes one row and flushes it (line buffered), so a killed run loses nothing logged."""
        self._file.write(json.dumps(dict(row)) + "\n")

    def close(self) -> None:
        self._file.close()


def _step_of(line: str) -> int:
    try:
        return int(json.loads(line).get("step", -1))
    except (ValueError, AttributeError):
        return -1


def progress_bar(total: int, initial: int, enabled: bool | None, unit: str = "step") -> tqdm:
    """A tqdm bar on a terminal; silent when ``enabled`` is False, or None and stderr is no tty."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    return tqdm(total=total, initial=initial, disable=not enabled, unit=unit, dynamic_ncols=True)
