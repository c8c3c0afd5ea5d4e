"""The local backend: a JSON snapshot, an fsync'd append-only journal, and an flock'd lock file.

Each durable record is one appended, fsync'd line: O(1) however large the state is. The journal
is folded into the snapshot (temp file, fsync, rename, backup kept) when a command ends, and
replayed by whoever reads the state if the writer died first.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from runner import files
from runner.errors import LockError, StateError
from runner.state.lock import LockInfo
from runner.state.model import Entry, Intent, State, entry_from_dict, entry_json
from runner.state.snapshot import dump_state, load_state


def _explain(e: OSError, action: str, path: Path) -> StateError:
    hints = {
        errno.ENOSPC: "the disk is full; free some space",
        errno.EACCES: "permission denied; check the folder's permissions",
        errno.EROFS: "the file system is read-only; use a writable state location",
    }
    hint = hints.get(e.errno or 0, e.strerror or str(e))
    return StateError(f"cannot {action} {path}: {hint}")


def fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalState:
    """State in `runner.state.json` beside `.journal`, `.lock` and `.backup` files."""

    def __init__(self, path: Path, root: Path | None = None) -> None:
        try:
            self.path = files.place(path, root)  # its folder resolved once: no symlink after
        except files.Refused as e:
            raise StateError(f"state {path} {e}") from e
        self.journal = path.with_name(path.name + ".journal")
        self.lock_path = path.with_name(path.name + ".lock")
        self.backup = path.with_name(path.name + ".backup")
        self._lock_fd: int | None = None
        self._journal_fd: int | None = None
        self._write_lock = threading.Lock()
        self._failed: StateError | None = None
        # While this process holds the lock: the state its files held when it last read or
        # wrote them, and the records it has written since, to fold when asked. The end of a
        # big apply then reads nothing back (a 74 MB snapshot, a 66 MB journal), and the
        # sends pay nothing for it (folding as they go took the send phase 0.3 s longer).
        self._live: State | None = None
        self._since: list[Entry] = []

    def describe(self) -> str:
        return str(self.path)

    # reading ---------------------------------------------------------------------------------
    def read(self) -> State:
        """The current state: the snapshot plus any journal a writer left. Never writes."""
        state = self._snapshot()
        for entry in self._journal_entries():
            state.fold(entry)
        return state

    def _snapshot(self) -> State:
        try:
            raw = _read(self.path)
        except FileNotFoundError:
            return State(lineage="")
        return load_state(raw, str(self.path))

    def _journal_entries(self) -> Iterator[Entry]:
        try:
            raw = _read(self.journal)
        except FileNotFoundError:
            return
        lines = raw.split(b"\n")
        for number, line in enumerate(lines, 1):
            if not line:
                continue
            try:
                yield entry_from_dict(json.loads(line))
            except (ValueError, KeyError, TypeError, RecursionError) as e:
                torn = isinstance(e, json.JSONDecodeError) and number >= len(lines) - 1
                if torn:  # the writer died mid-append, before acting on it; a whole record
                    return  # of the wrong shape is no tear, but a crafted or corrupt journal
                raise StateError(
                    f"{self.journal}:{number}: corrupt journal record ({e}); "
                    f"restore {self.path} and its journal from a backup"
                ) from e

    # locking ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self, operation: str) -> Iterator[LockInfo]:
        info = self._acquire(operation)
        try:
            yield info
        finally:
            self._release()

    def _acquire(self, operation: str) -> LockInfo:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = files.create(self.lock_path)
        except files.Refused as e:
            raise StateError(f"cannot lock {self.lock_path}: it {e}") from e
        except OSError as e:
            raise _explain(e, "lock", self.lock_path) from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_info(fd)
            for _ in range(50):  # the holder may have the flock and not yet have said who it is
                if holder is not None:
                    break
                time.sleep(0.01)
                holder = _read_info(fd)
            os.close(fd)
            raise LockError(
                f"the state is locked: {holder.describe() if holder else 'by another process'}"
            ) from None
        info = LockInfo.mine(operation)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, info.to_json().encode(), 0)
        except OSError as e:  # a full disk: nothing could be recorded either
            os.close(fd)
            raise _explain(e, "lock", self.lock_path) from e
        self._lock_fd = fd
        for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            if stale.name[len(self.path.name) + 2 : -4].isdigit():  # .NAME.PID.tmp, not NAME.x's
                with contextlib.suppress(OSError):
                    stale.unlink()  # a snapshot a killed writer never finished
        return info

    def _release(self) -> None:
        self._close_journal()
        self._forget()  # others may write once the lock is gone
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._lock_fd, 0)
            os.close(self._lock_fd)  # closing drops the flock
            self._lock_fd = None

    def force_unlock(self, lock_id: str) -> str:
        if not self.lock_path.exists():
            raise LockError("the state is not locked")
        try:
            fd = files.create(self.lock_path)
        except files.Refused as e:
            raise StateError(f"cannot unlock {self.lock_path}: it {e}") from e
        try:
            holder = _read_info(fd)
            if holder is None or holder.id != lock_id:
                raise LockError(
                    f"lock {lock_id} is not the current lock"
                    + (f" ({holder.describe()})" if holder else "")
                )
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LockError(
                    f"lock {lock_id} is held by a live process ({holder.describe()}); "
                    "stop that process first: its lock ends with it"
                ) from None
            os.ftruncate(fd, 0)
            return f"lock {lock_id} removed (its holder had exited)"
        finally:
            os.close(fd)

    # writing ---------------------------------------------------------------------------------
    def ensure_created(self) -> State:
        """Give a new state its lineage on first write; return the current state.

        Like commit's, the state returned is this backend's own while it holds the lock:
        the records written after move it on.
        """
        with self._write_lock:
            self._close_journal()
            state = self._current()
            if not state.lineage:  # keep what a journal without snapshot knows
                state.lineage = State.new().lineage
                self._write_snapshot(state)
                self.journal.unlink(missing_ok=True)
            self._keep(state)
            return state

    def _current(self) -> State:
        live, since, self._live, self._since = self._live, self._since, None, []
        if live is None or self._failed:
            return self.read()
        for entry in since:
            live.fold(entry)
        return live

    def _forget(self) -> None:
        self._live, self._since = None, []

    def _keep(self, state: State) -> None:
        """Keep `state`, which the files now hold, with the records to come."""
        self._live = state if self._lock_fd is not None and not self._failed else None

    def record(self, entry: Entry) -> None:
        """Make one record durable before returning (the caller holds the lock)."""
        self.record_all((entry,))

    def record_all(self, entries: Sequence[Entry]) -> None:
        """Append records, then make them durable with one fsync (the caller holds the lock).

        The intents must reach the disk before their requests leave. Outcomes are not synced:
        an outcome lost to a power cut only leaves its intent pending, and the next apply
        re-sends the same request_id, which the provider refuses as a duplicate.
        """
        data = b"".join(entry_json(e) + b"\n" for e in entries)
        with self._write_lock:
            if self._failed:
                raise self._failed
            try:
                if self._journal_fd is None:
                    self._journal_fd = self._open_journal()
                fd = self._journal_fd
                _append(fd, data)
            except OSError as e:
                self._forget()
                error = _explain(e, "write", self.journal)
                if isinstance(e, _TornWrite):  # later records would be glued to its half
                    self._failed = error
                raise error from e
            if self._live is not None:
                self._since += entries
        if any(isinstance(e, Intent) for e in entries):
            try:  # outside the lock: other threads append while this waits for the disk
                os.fsync(fd)
            except OSError as e:
                # What was written may or may not be on disk; record nothing more. Intents
                # that survive are pending: their batches were never sent, and are re-sent.
                self._failed = _explain(e, "write", self.journal)  # commit reads the files
                raise self._failed from e

    def _open_journal(self) -> int:
        try:
            fd = files.create(self.journal, append=True)
        except files.Refused as e:
            raise StateError(f"cannot write {self.journal}: it {e}") from e
        _drop_torn_tail(fd)  # readers skip such a line: the live state never had it
        return fd

    def commit(self) -> State:
        """Fold the journal into a new snapshot; the journal goes only once that is durable."""
        with self._write_lock:
            self._close_journal()
            state = self._current()
            try:
                records = self.journal.stat().st_size > 0
            except FileNotFoundError:
                self._keep(state)
                return state
            if records:  # an empty journal changes nothing: keep the snapshot and its backup
                self._write_snapshot(state)
            self.journal.unlink()
            fsync_folder(self.path.parent)
            self._keep(state)
            return state

    def replace(self, state: State) -> None:
        """Make `state` the whole state, lineage and serial included (the caller holds the lock)."""
        with self._write_lock:
            self._close_journal()
            self._forget()
            self._write_snapshot(state)
            if self.journal.exists():
                self.journal.unlink()
                fsync_folder(self.path.parent)

    def _close_journal(self) -> None:
        if self._journal_fd is not None:
            os.close(self._journal_fd)
            self._journal_fd = None

    def _write_snapshot(self, state: State) -> None:
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        for target in (self.path, self.backup, temp):
            try:
                files.refuse_link(target)
            except files.Refused as e:
                raise StateError(f"cannot write {target}: it {e}; nothing was written") from e
        try:
            files.write_new(temp, dump_state(state))
        except OSError as e:
            temp.unlink(missing_ok=True)
            raise _explain(e, "write", self.path) from e
        try:
            if os.path.lexists(self.path):
                backup_temp = self.backup.with_name(self.backup.name + ".tmp")
                backup_temp.unlink(missing_ok=True)
                os.link(self.path, backup_temp, follow_symlinks=False)
                os.replace(backup_temp, self.backup)
            os.replace(temp, self.path)
            fsync_folder(self.path.parent)
        except OSError as e:
            temp.unlink(missing_ok=True)
            raise _explain(e, "write", self.path) from e


def _read(path: Path) -> bytes:
    """A state file, never through a symlink, never a device, never past its limit."""
    try:
        return files.read_file(path, files.STATE_LIMIT)
    except files.Refused as e:
        raise StateError(f"cannot read {path}: it {e}") from e
    except FileNotFoundError:
        raise
    except OSError as e:
        raise _explain(e, "read", path) from e


def _read_info(fd: int) -> LockInfo | None:
    try:
        return LockInfo.from_json(os.pread(fd, 4096, 0).decode())
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None


def _append(fd: int, data: bytes) -> None:
    """Write all of `data` or none of it: a nearly full disk takes part of a write and says
    nothing. A partial intent would be dropped by readers after its request had left, and a
    later record glued to it would make the journal unreadable. The caller holds the lock."""
    start = os.fstat(fd).st_size
    try:
        view = memoryview(data)
        while view:
            count = os.write(fd, view)
            if count == 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            view = view[count:]
    except OSError as e:
        try:
            os.ftruncate(fd, start)
        except OSError:
            raise _TornWrite(e.errno, e.strerror) from e
        raise


class _TornWrite(OSError):
    """Part of a record was written and could not be taken back."""


def _drop_torn_tail(fd: int) -> None:
    """Cut a partial last line (a writer died mid-append) so the next record is not glued to it.

    Readers already skip such a line; appended after it, a new record would be read as part
    of one corrupt line and lost, or make every later read fail.
    """
    end = os.fstat(fd).st_size
    if end == 0 or os.pread(fd, 1, end - 1) == b"\n":
        return
    while end > 0:
        start = max(0, end - 65536)
        cut = os.pread(fd, end - start, start).rfind(b"\n")
        if cut >= 0:
            os.ftruncate(fd, start + cut + 1)
            return
        end = start
    os.ftruncate(fd, 0)
