"""Reading policy files from disk, within bounds: the file half of policy loading.

Owns which entries are read and how: ``*.yaml``/``*.yml`` found recursively (dot-entries skipped,
sorted); only regular files are opened (a FIFO, device, socket or directory named like a policy is
refused by its type from ``stat`` and never opened, so nothing can block or stream forever), opened
non-blocking and checked again after opening (a file swapped for a FIFO in between cannot block
either), and at most ``MAX_FILE_BYTES`` (1 MiB) read. Every failure is an ``Unreadable`` with a
message for people; ``loading.py`` turns it into a problem or, for a non-regular entry found in a
directory, a warning. It must not parse anything.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

MAX_FILE_BYTES = 1 << 20  # 1 MiB: a policy is a few KiB
SUFFIXES = (".yaml", ".yml")
_KINDS: tuple[tuple[Callable[[int], bool], str], ...] = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)


class Unreadable(Exception):
    """A policy file that was not read; ``irregular`` when it is not a regular file at all."""

    def __init__(self, message: str, *, irregular: bool = False) -> None:
        super().__init__(message)
        self.message, self.irregular = message, irregular


def yaml_files(directory: Path, unreadable: Callable[[str, str], None]) -> list[Path]:
    """Every policy-named entry under ``directory``, sorted; ``unreadable(path, why)`` for subdirectories
    that cannot be listed."""

    def failed(error: OSError) -> None:
        unreadable(str(error.filename or directory), f"cannot read this directory: {error.strerror or error}")

    found: list[Path] = []
    for root, dirs, files in os.walk(directory, onerror=failed):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(Path(root) / f for f in files if f.endswith(SUFFIXES) and not f.startswith("."))
    return sorted(found)


def read_policy_file(path: Path) -> bytes:
    """The file's bytes; raises ``Unreadable`` for anything but a readable regular file of at most 1 MiB."""
    try:
        info = os.stat(path)  # follows symlinks: what a read would reach
        _check(info.st_mode, info.st_size)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise Unreadable("no such file or directory") from None
    except PermissionError:
        raise Unreadable("permission denied: cannot read this file") from None
    except OSError as e:
        raise Unreadable(f"cannot read this file: {e.strerror or e}") from None
    try:
        _check(os.fstat(fd).st_mode, 0)
        chunks, left = [], MAX_FILE_BYTES + 1
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 16))):
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as e:
        raise Unreadable(f"cannot read this file: {e.strerror or e}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > MAX_FILE_BYTES:
        raise Unreadable(too_large(len(data), exact=False))
    return data


def too_large(size: int, *, exact: bool = True) -> str:
    amount = f"{size:,} bytes" if exact else "more than 1 MiB"
    return f"{amount}; a policy file may hold at most 1 MiB ({MAX_FILE_BYTES:,} bytes)"


def _check(mode: int, size: int) -> None:
    if not stat.S_ISREG(mode):
        kind = next((text for test, text in _KINDS if test(mode)), "not a regular file")
        raise Unreadable(f"{kind}, not a regular file: skipped without reading it", irregular=True)
    if size > MAX_FILE_BYTES:
        raise Unreadable(too_large(size))
