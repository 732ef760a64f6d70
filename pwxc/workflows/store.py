"""Results file: one JSON object per line (JSON lines), appended point by point.

Each finished calculation is appended as a single line with one ``write`` on a file opened with
O_APPEND, then flushed and fsync'ed: a crash or Ctrl-C loses at most the point in flight, and a line
cut by a crash mid-write is skipped (with a warning) when the file is read back.

Records carry a ``key``: a SHA-256 of everything that determines the energy — the settings (engine,
xc, pseudopotentials, ecut, k-grid, smearing, ...) and the geometry (lattice in Bohr, fractional
positions, species; floats rounded to 1e-9 relative). Rerunning a workflow with the same file looks
up each planned point by key and skips the ones already there (resume).
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np


def _canonical(value):
    """JSON-able, rounding-stable version of settings/geometry (floats to 10 significant digits)."""
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_canonical(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return 0.0 if abs(v) < 1e-12 else float(f"{v:.10g}")
    if isinstance(value, (np.integer,)):
        return int(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return repr(value)


def point_key(settings: dict, lattice_bohr, positions, species) -> str:
    """SHA-256 (hex, first 24 characters) of settings + geometry; identical physics ⇒ identical key."""
    payload = dict(settings=_canonical(settings), lattice=_canonical(np.asarray(lattice_bohr, dtype=float)),
                   positions=_canonical(np.asarray(positions, dtype=float) % 1.0), species=list(species))
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


class ResultsStore:
    """A JSON-lines results file with atomic appends and lookup by key.

    Args:
        path: file name; created (with parent folders) on the first append.
    """

    def __init__(self, path):
        self.path = Path(path)
        self._records = None

    def _load(self) -> list[dict]:
        records = []
        if self.path.exists():
            lines = self.path.read_text().splitlines()
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    warnings.warn(f"{self.path}:{number}: skipping an unreadable (truncated?) line", RuntimeWarning)
                    continue
                if isinstance(record, dict):
                    records.append(record)
        return records

    def records(self, **match) -> list[dict]:
        """All records (in file order) whose fields equal the given values."""
        if self._records is None:
            self._records = self._load()
        return [r for r in self._records if all(r.get(k) == v for k, v in match.items())]

    def find(self, key: str) -> dict | None:
        """The last record with this key, or None."""
        found = [r for r in self.records() if r.get("key") == key]
        return found[-1] if found else None

    def append(self, record: dict) -> None:
        """Append one record as one line: single O_APPEND write, then fsync."""
        record = dict(record)
        record.setdefault("time", datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
        line = json.dumps(_canonical_output(record), separators=(",", ":")) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            # a previous crash may have left a partial line without newline: start on a fresh line
            size = os.fstat(fd).st_size
            if size:
                with open(self.path, "rb") as fh:
                    fh.seek(size - 1)
                    if fh.read(1) != b"\n":
                        line = "\n" + line
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        if self._records is not None:
            self._records.append(record)

    def __len__(self):
        return len(self.records())

    def __repr__(self):
        return f"ResultsStore({str(self.path)!r}, {len(self)} records)"


def _canonical_output(value):
    """Make numpy/torch scalars and arrays JSON-serialisable without rounding."""
    if isinstance(value, dict):
        return {str(k): _canonical_output(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical_output(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "item") and hasattr(value, "numel") and value.numel() == 1:   # torch scalar
        return float(value.item())
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)
