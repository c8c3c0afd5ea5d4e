"""Every file runner reads or writes goes through here.

A pull request controls the project's files, so a path it names (a template, a `file:` CSV, a
campaign, runner.yaml, a `state:` in runner.yaml) is read only inside the project: resolved,
then opened component by component from the project folder with O_NOFOLLOW, so what is opened
is what was checked. A symlink that stays inside the project (and out of dot-folders) is
followed; one that leads out, or into `.git`, is refused. A path the operator names (--state,
RUNNER_STATE, --config, --var-file, a saved plan) may lie anywhere, but its last component is
never followed either. Whatever the path, only a regular file is read (a FIFO or a device would
never end), and never more than its limit: the opened descriptor is checked, and the read stops
one byte past the limit.

Files runner writes are created with O_NOFOLLOW (O_EXCL for temp names), and a symlink where a
file is renamed into place is an error: nothing is written through a planted link.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

KIB, MIB, GIB = 1024, 1024 * 1024, 1024 * 1024 * 1024
TEMPLATE_LIMIT = 256 * KIB
CSV_LIMIT = 256 * MIB
STATE_LIMIT = 2 * GIB  # a million digests take ~70 MB: a real state is far below
PLAN_LIMIT = 2 * GIB

_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_FOLDER = os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC
_WRITE = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class Refused(Exception):
    """A file runner will not touch; the message says why and what to do, to follow a name."""


class Outside(Refused):
    def __init__(self) -> None:
        super().__init__("leads outside the project; use a path inside it")


class TooLarge(Refused):
    def __init__(self, limit: int) -> None:
        super().__init__(f"is larger than {size_text(limit)}; make it smaller")
        self.limit = limit


def size_text(size: int) -> str:
    for unit, name in ((GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {name}"
    return f"{size:,} bytes"


def _hidden(parts: tuple[str, ...], hidden_ok: bool) -> str | None:
    """The first component that must not be read: `.git` always, other dot-names unless allowed."""
    for part in parts:
        if part == ".git" or (not hidden_ok and part.startswith(".") and part not in (".", "..")):
            return part
    return None


def project_path(root: Path, name: str, *, hidden_ok: bool = False) -> Path:
    """Where `name` really is, relative to the real project folder; Refused if it leads out."""
    if "\0" in name:
        raise Refused("contains a NUL byte; fix the name")
    top = Path(os.path.realpath(root))
    real = Path(os.path.realpath(top / name))
    if not real.is_relative_to(top):
        raise Outside()
    part = _hidden(Path(name).parts, hidden_ok) or _hidden(real.relative_to(top).parts, hidden_ok)
    if part is not None:
        raise Refused(f"is in '{part}', which runner never reads; keep it out of dot-folders")
    return real.relative_to(top)


def read_project_file(root: Path, name: str, limit: int, *, hidden_ok: bool = False) -> bytes:
    """The bytes of a file the project names (relative to `root`), confined and bounded."""
    inside = project_path(root, name, hidden_ok=hidden_ok)
    if not inside.parts:
        raise Refused("is a folder, not a file; name a file")
    fd = _open_under(root, inside.parts)
    try:
        return _read_regular(fd, limit)
    finally:
        os.close(fd)


def _open_under(root: Path, parts: tuple[str, ...]) -> int:
    """Open root/parts with no symlink anywhere: each folder is opened from the one above it."""
    folder = os.open(os.path.realpath(root), _FOLDER)
    try:
        for part in parts[:-1]:
            inner = _open_at(part, _FOLDER, folder)
            os.close(folder)
            folder = inner
        return _open_at(parts[-1], _READ, folder)
    finally:
        os.close(folder)


def _open_at(name: str, flags: int, folder: int) -> int:
    try:
        return os.open(name, flags, dir_fd=folder)
    except OSError as e:
        if e.errno == errno.ELOOP:  # a link appeared since the path was resolved
            raise Refused("changed while it was read (a symbolic link); try again") from e
        raise


def read_file(path: Path, limit: int, root: Path | None = None, *, hidden_ok: bool = True) -> bytes:
    """The bytes of a file the operator named: anywhere, but never through a last symlink.

    A path that lies in the project (`root`) is the pull request's, whoever named it: it is
    read as the project's own files are (`.git` never, other dot-folders if `hidden_ok`).
    """
    if root is not None:
        relative = _lexically_under(root, path)
        if relative is not None:
            return read_project_file(root, relative, limit, hidden_ok=hidden_ok)
    if "\0" in str(path):
        raise Refused("contains a NUL byte; fix the name")
    fd = open_to_read(path)
    try:
        return _read_regular(fd, limit)
    finally:
        os.close(fd)


def open_to_read(path: Path) -> int:
    """A read-only descriptor on a regular file the operator named, for a caller that reads
    it in pieces (and bounds what it reads); never through a last symlink."""
    try:
        fd = os.open(path, _READ)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise Refused("is a symbolic link; name the file itself") from e
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise Refused("is not a regular file (a device, FIFO or folder); use a plain file")
    return fd


def _lexically_under(root: Path, path: Path) -> str | None:
    absolute, top = Path(os.path.abspath(path)), Path(os.path.abspath(root))
    if absolute == top or not absolute.is_relative_to(top):
        return None
    return str(absolute.relative_to(top))


def _read_regular(fd: int, limit: int) -> bytes:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise Refused("is not a regular file (a device, FIFO or folder); use a plain file")
    if info.st_size > limit:
        raise TooLarge(limit)
    chunks, left = [], limit + 1  # the size can grow after fstat: never read past the limit
    while left > 0:
        chunk = os.read(fd, min(left, max(info.st_size + 1, 65536)))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    data = b"".join(chunks)
    if len(data) > limit:
        raise TooLarge(limit)
    return data


# writing -------------------------------------------------------------------------------------
_LINK = "is a symbolic link; runner never writes through one: remove it"


def create(path: Path, *, exclusive: bool = False, append: bool = False) -> int:
    """A read-write descriptor on `path`, created if missing, never through a symlink, and
    only on a regular file (a FIFO would block, a device would take anything)."""
    flags = _WRITE | (os.O_EXCL if exclusive else 0) | (os.O_APPEND if append else 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP or (e.errno == errno.EEXIST and os.path.islink(path)):
            raise Refused(_LINK) from e
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise Refused("is not a regular file (a device, FIFO or folder); remove it")
    return fd


def refuse_link(path: Path) -> None:
    """Before renaming onto `path`: a symlink there was planted, and is an error."""
    if os.path.islink(path):
        raise Refused(_LINK)


def write_new(path: Path, data: bytes) -> None:
    """Create `path` (it must not exist yet), write all of `data` and fsync it."""
    fd = create(path, exclusive=True)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def place(path: Path, root: Path | None = None) -> Path:
    """Where to write `path`: its folder resolved, so the files beside it are named without a
    symlink. A path in the project (`root`) must stay in it, and out of `.git`."""
    if root is not None:
        relative = _lexically_under(root, path)
        if relative is not None:
            project_path(root, relative, hidden_ok=True)
    return Path(os.path.realpath(path.parent)) / path.name
