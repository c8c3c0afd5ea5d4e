"""`runner receipts serve` in its own process, for tests that post receipts to it over loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

TOKEN = "t0ken-for-tests-" + "k" * 24  # distinctive, so a test can look for it in any output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ReceiverProcess:
    """The receiver for a project; its stderr (the service's log) is kept in a file."""

    def __init__(
        self,
        root: Path,
        *options: str,
        port: int | None = None,
        token: str = TOKEN,
        env: dict[str, str] | None = None,
    ) -> None:
        self.root, self.options, self.token, self.env = root, options, token, env or {}
        self.port = port or _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/receipts/{token}"
        self.log_path = root.parent / f"receiver-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        command = [sys.executable, "-m", "runner", "-C", str(self.root), "receipts", "serve"]
        command += ["--port", str(self.port), *self.options]
        env = {**os.environ, "RUNNER_RECEIPTS_TOKEN": self.token, "NO_COLOR": "1", **self.env}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the receiver exited at start: {self.log()}"
            try:
                requests.get(f"{self.base}/health", timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.02)
        raise AssertionError("the receiver did not start listening")

    def post(self, body: dict[str, Any] | str, path: str | None = None) -> requests.Response:
        """A receipt as JSON (a dict) or as a form (a str already encoded)."""
        url = path if path is not None else self.url
        url = url if url.startswith("http") else self.base + url
        if isinstance(body, str):
            kind = "application/x-www-form-urlencoded"
            return requests.post(url, data=body, headers={"Content-Type": kind}, timeout=10)
        return requests.post(url, data=json.dumps(body), timeout=10, headers=JSON)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)


JSON = {"Content-Type": "application/json"}
