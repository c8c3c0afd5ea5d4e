"""Who holds a state lock: enough for a person to find the holder and decide."""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass

from runner.state.shape import is_time


@dataclass(frozen=True)
class LockInfo:
    id: str
    holder: str
    host: str
    pid: int
    time: float
    operation: str

    @classmethod
    def mine(cls, operation: str) -> LockInfo:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = str(os.getuid())
        return cls(
            str(uuid.uuid4()), user, socket.gethostname(), os.getpid(), time.time(), operation
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LockInfo:
        """The holder a lock file names; ValueError if it is not one (a crafted file, say,
        whose time could not even be shown)."""
        info = cls(**json.loads(text))
        texts = (info.id, info.holder, info.host, info.operation)
        if not all(isinstance(t, str) for t in texts) or type(info.pid) is not int:
            raise ValueError("not a lock record")
        if not is_time(info.time):
            raise ValueError("not a lock record")
        return info

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.time))
        return (
            f"held by {self.holder}@{self.host} (pid {self.pid}, {self.operation}) since "
            f"{since}, lock id {self.id}; if that process is gone, run "
            f"`runner force-unlock {self.id}`"
        )
