"""Where receipts are kept: beside the project's state, append-only, never under the apply lock.

A receipt arrives while an apply may be running for an hour: the receiver must never wait for
the state lock, nor the apply for the receiver. So receipts live apart from the state, in the
same place: a local state file X keeps them in `X.receipts` (JSON lines), a PostgreSQL state in
a table keyed by project. Both are idempotent: storing a receipt again changes nothing.

The file is written by any number of receiver processes at once. Each batch is one write() of
whole lines on an O_APPEND descriptor, under a short flock of the receipts file itself (not the
state's lock) during which the writer first reads what the others appended since it last
looked: a receipt already there is not written again. A writer killed mid-line leaves a torn
last line: readers skip it, and the next writer starts a new line before its own.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

from runner import files
from runner.errors import StateError
from runner.receipts.model import Receipt, receipt_from_dict, receipt_json
from runner.state import is_postgres, psycopg_missing, shared_project

RECEIPTS_LIMIT = files.STATE_LIMIT
_CHUNK = 1024 * 1024


class ReceiptStore(Protocol):
    def describe(self) -> str: ...
    def append(self, receipts: Sequence[Receipt]) -> int: ...  # how many were new
    def read(self) -> Iterator[Receipt]: ...  # arrival order, no repeats


def open_receipts(location: str, root: Path, project: str | None = None) -> ReceiptStore:
    """The receipts kept with the state at `location` (a file path relative to `root`, or a
    postgresql:// URL with the project's key), as `runner.state.open_state` reads it."""
    if is_postgres(location):
        return _open_postgres(location, project)
    path = Path(location)
    path = path if path.is_absolute() else root / path
    try:
        placed = files.place(path, root)
    except files.Refused as e:
        raise StateError(f"state {path} {e}") from e
    return FileReceipts(placed.with_name(placed.name + ".receipts"))


def _open_postgres(url: str, project: str | None) -> ReceiptStore:
    key = shared_project(project)
    try:
        from runner.receipts.pg_store import PostgresReceipts
    except ModuleNotFoundError as e:
        raise psycopg_missing(e, "receipts in a PostgreSQL state") from None
    return PostgresReceipts(url, key)


def _key(receipt: Receipt) -> bytes:
    """A receipt's identity in 16 bytes: a million of them stay small in memory."""
    text = "\t".join(receipt.key).encode()
    return hashlib.blake2b(text, digest_size=16).digest()


class FileReceipts:
    """Receipts as JSON lines in one append-only file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mutex = threading.Lock()  # one batch at a time in this process
        self._fd: int | None = None
        self._seen: set[bytes] = set()
        self._offset = 0  # the file up to here has been read into _seen

    def describe(self) -> str:
        return str(self.path)

    def read(self) -> Iterator[Receipt]:
        """Every receipt stored, in arrival order, each once; a torn last line is skipped."""
        try:
            fd = files.open_to_read(self.path)
        except FileNotFoundError:
            return
        except (files.Refused, OSError) as e:
            raise self._error("read", e) from e
        try:
            seen: set[bytes] = set()
            for receipt, _ in _scan(fd, 0, self.path):
                key = b"" if receipt is None else _key(receipt)
                if receipt is not None and key not in seen:
                    seen.add(key)
                    yield receipt
        finally:
            os.close(fd)

    def append(self, receipts: Sequence[Receipt]) -> int:
        """Store the receipts not stored yet, durably (fsync'd) before returning their count."""
        with self._mutex:
            fd = self._open()
            try:
                data, count = self._write_new(fd, receipts)
                if data:
                    os.fsync(fd)
            except OSError as e:
                self._seen, self._offset = set(), 0  # read the file again: trust only what it holds
                raise self._error("write", e) from e
            return count

    def _write_new(self, fd: int, receipts: Sequence[Receipt]) -> tuple[bytes, int]:
        fcntl.flock(fd, fcntl.LOCK_EX)  # the receipts file's own lock, held for one write
        try:
            torn = self._catch_up(fd)
            fresh: dict[bytes, Receipt] = {}
            for receipt in receipts:
                key = _key(receipt)
                if key not in self._seen and key not in fresh:
                    fresh[key] = receipt
            if not fresh:
                return b"", 0
            lines = b"".join(receipt_json(receipt) + b"\n" for receipt in fresh.values())
            data = (b"\n" if torn else b"") + lines
            self._offset = _write_all(fd, data)
            self._seen.update(fresh)  # only once written: a failed write is stored next time
            return data, len(fresh)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _catch_up(self, fd: int) -> bool:
        """Read what other writers appended since; True if the file ends in a torn line."""
        for receipt, offset in _scan(fd, self._offset, self.path):
            if receipt is not None:
                self._seen.add(_key(receipt))
            self._offset = offset
        return os.fstat(fd).st_size > self._offset  # bytes after the last whole line: a writer died

    def _open(self) -> int:
        if self._fd is not None and not self._still_there(self._fd):
            self.close()  # moved or removed (archived?): write to the file at the path again
            self._seen, self._offset = set(), 0
        if self._fd is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = files.create(self.path, append=True)
            except (files.Refused, OSError) as e:
                raise self._error("open", e) from e
        return self._fd

    def _still_there(self, fd: int) -> bool:
        try:
            found = os.lstat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (found.st_dev, found.st_ino) == (mine.st_dev, mine.st_ino)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _error(self, action: str, e: Exception) -> StateError:
        if isinstance(e, files.Refused):
            return StateError(f"cannot {action} receipts {self.path}: it {e}")
        hint = {errno.ENOSPC: "the disk is full; free some space"}.get(
            getattr(e, "errno", 0) or 0, getattr(e, "strerror", None) or str(e)
        )
        return StateError(f"cannot {action} receipts {self.path}: {hint}")


def _write_all(fd: int, data: bytes) -> int:
    """One write() of whole lines; if the disk takes only part, take that part back."""
    start = os.fstat(fd).st_size
    try:
        written = os.write(fd, data)
        if written != len(data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    except OSError:
        os.ftruncate(fd, start)  # safe: the flock keeps other writers out
        raise
    return start + written


def _scan(fd: int, start: int, path: Path) -> Iterator[tuple[Receipt | None, int]]:
    """Each whole line's receipt from `start`, with the offset just after it. A line that is
    not JSON is a tear (a writer died mid-line; the next one began a new line): None."""
    offset, rest = start, b""
    while True:
        chunk = os.pread(fd, _CHUNK, offset + len(rest))
        if not chunk:
            return
        if offset + len(rest) + len(chunk) > RECEIPTS_LIMIT:
            raise StateError(f"{path} is larger than {files.size_text(RECEIPTS_LIMIT)}")
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            offset += len(line) + 1
            yield _parse_line(line, path, offset), offset


def _parse_line(line: bytes, path: Path, offset: int) -> Receipt | None:
    if not line:
        return None
    try:
        data = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None  # a torn line
    except RecursionError:  # whole JSON nested past Python's limit: no receiver wrote it
        data = None
    try:
        return receipt_from_dict(data)
    except (ValueError, TypeError) as e:
        raise StateError(
            f"{path}: corrupt receipt in the line ending at byte {offset} ({e}); "
            "remove that line or restore the file from a backup"
        ) from e
