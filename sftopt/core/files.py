"""Files: JSON read with addressed errors, text written whole or not at all."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
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


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (a temporary file in the same folder, renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path
