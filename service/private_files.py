"""The instance's folders and database files hold reporters' contacts and password hashes: only the service's own
user may read them. New ones are made owner-only; existing ones this process owns lose their group and other
permissions at start. Anything another user owns is left as it is (their choice, and not ours to change)."""

from __future__ import annotations

import contextlib
import itertools
import os
import stat
from pathlib import Path

OWNER_ONLY_DIR = 0o700
OWNER_ONLY_FILE = 0o600


def private_dir(path: Path) -> None:
    """`path` as a folder only its owner may enter: created 0700 with any missing parents, or tightened."""
    missing = list(itertools.takewhile(lambda folder: not folder.exists(), (path, *path.parents)))
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile: tightened below
            folder.mkdir(mode=OWNER_ONLY_DIR)
    tighten(path)


def private_file(path: Path) -> None:
    """`path` as a file only its owner may read: created empty 0600 when missing, or tightened."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY_FILE))
    tighten(path)


def tighten(path: Path) -> None:
    """Take group and other permissions off `path` when this process owns it; nothing when it is missing."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return
    mode = stat.S_IMODE(status.st_mode)
    if status.st_uid == os.geteuid() and mode & 0o077:
        os.chmod(path, mode & ~0o077)
