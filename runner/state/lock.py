"""Who holds a state lock: enough for a person to find the holder and decide."""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass


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
        return cls(**json.loads(text))

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.time))
        return (
            f"held by {self.holder}@{self.host} (pid {self.pid}, {self.operation}) since "
            f"{since}, lock id {self.id}; if that process is gone, run "
            f"`runner force-unlock {self.id}`"
        )
