"""Files: JSON read with addressed errors, text (and CSV) written whole or not at all."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import InstanceError, Problem


def read_json(path: Path) -> Any:
    """Parse a JSON file; InstanceError naming the file and the line if it cannot be read."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InstanceError([Problem("$", "an existing file", f"no file {str(path)!r}")]) from None
    except OSError as exc:
        raise InstanceError([Problem("$", "a readable file", str(exc))], str(path)) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InstanceError(
            [Problem(f"$ (line {exc.lineno}, column {exc.colno})", "valid JSON", exc.msg)],
            str(path),
        ) from None


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Write ``path`` through ``write(temporary path)`` in the same folder, then rename: the old
    file stays whole until the new one is complete. Folders are made; the file gets the mode a
    plain write would give (the umask's), or keeps the mode of the file it replaces."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        if path.exists():
            mode = path.stat().st_mode & 0o777
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see `atomic_write`)."""
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_csv(path: str | Path, rows: list[dict[str, Any]]) -> Path:
    """Write ``rows`` as CSV (columns: every key, in first-seen order; None as empty; fields
    with commas or quotes quoted) atomically (see `atomic_write`)."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return write_text(path, buf.getvalue())
