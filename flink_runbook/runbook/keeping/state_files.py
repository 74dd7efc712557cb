"""Opening the runbook's own state files (recovery locks, job lineage), never through a symbolic link.

The state directory may be shared or writable by others; a link planted where a lock or lineage file
goes would make the runbook write (truncate, replace) whatever file it points at, or read a lineage
someone else wrote. O_NOFOLLOW makes the kernel refuse the link; the error says so and what to do.
Only the last part of the path is checked: the state directory itself is the operator's choice.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path


class UnsafeStateFile(OSError):
    """A state file of the runbook is a symbolic link: refused, not followed."""


def open_no_follow(path: str | os.PathLike[str], flags: int, mode: int = 0o666) -> int:
    """os.open with O_NOFOLLOW; also an `opener` for open(). A link at `path` is an UnsafeStateFile."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        try:
            target = f" (to {os.readlink(path)})"
        except OSError:
            target = ""
        raise UnsafeStateFile(
            f"{path} is a symbolic link{target}: the runbook does not follow links for its state files (it "
            "would write or read whatever file the link names); remove the link, the runbook creates the file"
        ) from None


def read_state_file(path: Path) -> str:
    """The text of a state file, read without following a link."""
    with open(path, encoding="utf-8", opener=open_no_follow) as file:
        return file.read()
