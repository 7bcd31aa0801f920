"""Files: JSON read with addressed errors, text (and CSV) written whole or not at all.

Reading is guarded so that no input file can hang, exhaust memory or end in a traceback:
only a regular file is read (a FIFO, a device such as /dev/zero, a folder is named, never
opened for reading in a way that blocks), at most `MAX_JSON_BYTES`, as UTF-8 (a UTF-16/32 byte
order mark or a byte that is not UTF-8 is named with its line and column), nested at most
`MAX_JSON_DEPTH` deep, with integers of at most Python's digit limit (4300) and no NaN or
Infinity (not JSON). Each of these is an InstanceError naming the problem."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import stat
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import InstanceError, Problem

# The largest JSON file read: a 100,000-device instance is about 30 MB; parsing a file holds
# several times its size in Python objects, so a larger cap would only trade a named error for
# a machine out of memory.
MAX_JSON_BYTES = 256 * 2**20
# The deepest nesting read: instances and plans are at most about 6 deep; far below Python's
# recursion limit (1000), which the json parser and every later recursive walk share.
MAX_JSON_DEPTH = 500

_BOMS = ((b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe\x00\x00", "UTF-32"),
         (b"\xfe\xff", "UTF-16"), (b"\xff\xfe", "UTF-16"))


def _kind(mode: int) -> str:
    """What a file that is not a regular file is, in words."""
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def read_bytes(path: Path, max_bytes: int = MAX_JSON_BYTES) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; InstanceError naming the file
    otherwise (missing, unreadable, a folder, FIFO or device, too large). Never blocks: a FIFO
    is opened without waiting for a writer and refused."""
    source = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise InstanceError([Problem("$", "an existing file", f"no file {source!r}")]) from None
    except IsADirectoryError:
        raise InstanceError([Problem("$", "a regular file", "a folder")], source) from None
    except OSError as exc:
        raise InstanceError([Problem("$", "a readable file", exc.strerror or str(exc))],
                            source) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise InstanceError([Problem("$", "a regular file", _kind(info.st_mode))], source)
    with os.fdopen(fd, "rb") as f:
        too_big = Problem("$", f"a file of at most {max_bytes:,} bytes",
                          f"{info.st_size:,} bytes")
        if info.st_size > max_bytes:
            raise InstanceError([too_big], source)
        try:
            data = f.read(max_bytes + 1)  # the file may have grown since fstat
        except OSError as exc:
            raise InstanceError([Problem("$", "a readable file", exc.strerror or str(exc))],
                                source) from None
        if len(data) > max_bytes:
            raise InstanceError([Problem("$", too_big.expected, "more")], source)
    return data


def _where(data: bytes, pos: int) -> str:
    line = data.count(b"\n", 0, pos) + 1
    column = pos - data.rfind(b"\n", 0, pos)  # rfind is -1 on the first line
    return f"$ (line {line}, column {column})"


def _decode(data: bytes, source: str) -> str:
    """UTF-8 text (a UTF-8 byte order mark is dropped); InstanceError naming another encoding."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            raise InstanceError([Problem("$", "UTF-8 text (JSON files are UTF-8)",
                                         f"{name} (byte order mark {bom.hex(' ')}); save the "
                                         "file as UTF-8")], source)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad = data[exc.start:exc.start + 1].hex()
        raise InstanceError([Problem(_where(data, exc.start), "UTF-8 text",
                                     f"byte 0x{bad}, not UTF-8 ({exc.reason})")],
                            source) from None


class _NotJson(ValueError):
    """NaN or Infinity in the text: Python's parser accepts them, JSON does not."""


def _constant(name: str) -> Any:
    raise _NotJson(name)


def _too_deep(value: Any, limit: int) -> bool:
    """Whether ``value`` nests deeper than ``limit`` (iteratively: no recursion to overflow)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def parse_json(text: str, source: str | None = None, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON text; InstanceError (line and column where known) for invalid JSON, NaN or
    Infinity, an integer beyond Python's digit limit, or nesting deeper than ``max_depth``."""
    deep = Problem("$", f"JSON nested at most {max_depth} deep", "deeper nesting")
    try:
        value = json.loads(text, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise InstanceError(
            [Problem(f"$ (line {exc.lineno}, column {exc.colno})", "valid JSON", exc.msg)],
            source) from None
    except _NotJson as exc:
        raise InstanceError([Problem("$", "JSON numbers (NaN and Infinity are not JSON)",
                                     str(exc))], source) from None
    except RecursionError:
        raise InstanceError([deep], source) from None
    except ValueError as exc:  # an integer of more digits than int() converts
        limit = sys.get_int_max_str_digits()
        raise InstanceError([Problem("$", f"integers of at most {limit} digits",
                                     "a longer integer")], source) from exc
    # depth <= the number of opening brackets: most files need no walk
    if text.count("[") + text.count("{") > max_depth and _too_deep(value, max_depth):
        raise InstanceError([deep], source)
    return value


def read_json(path: Path, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Parse a JSON file; InstanceError naming the file and the problem (see the module's
    docstring: missing, not a regular file, too large, not UTF-8, invalid, too deep)."""
    path = Path(path)
    return parse_json(_decode(read_bytes(path, max_bytes), str(path)), str(path))


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
