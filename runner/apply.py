"""Stage 5: the only stage that touches the world.

For every batch: an intent is durable before the request leaves, and the outcome after the
answer. A crash between the two leaves a pending intent that the next plan re-sends with the
same request_id (the provider refuses a repeat within 24 h) or refuses until a person resolves.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from runner.errors import StateError
from runner.octopush import OctopushClient, SendOutcome
from runner.plan import Batch
from runner.state import Backend
from runner.state.model import Intent, Outcome


@dataclass(frozen=True)
class BatchResult:
    batch: Batch
    status: str  # sent, duplicate, simulated, rejected, unknown, skipped
    outcome: SendOutcome | None = None
    error: str = ""

    @property
    def delivered(self) -> bool:
        return self.status in ("sent", "duplicate", "simulated")


@dataclass(frozen=True)
class ApplyResult:
    results: tuple[BatchResult, ...]
    blocked: tuple[str, ...] = ()
    residual_credit: float | None = None

    @property
    def failures(self) -> tuple[BatchResult, ...]:
        return tuple(r for r in self.results if not r.delivered)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.blocked


class Sender:
    """Sends batches concurrently; stops starting new ones once the state cannot record."""

    def __init__(
        self,
        backend: Backend,
        client: OctopushClient,
        concurrency: int,
        on_done: Callable[[BatchResult], None] = lambda r: None,
    ) -> None:
        self.backend = backend
        self.client = client
        self.concurrency = max(1, concurrency)
        self.on_done = on_done
        self._broken: str | None = None
        self._guard = threading.Lock()

    def send_all(self, batches: Iterable[Batch]) -> list[BatchResult]:
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="send") as pool:
            return list(pool.map(self._send_one, batches))

    def _send_one(self, batch: Batch) -> BatchResult:
        result = self._send(batch)
        self.on_done(result)
        return result

    def _send(self, batch: Batch) -> BatchResult:
        if self._broken:
            return BatchResult(batch, "skipped", error=self._broken)
        intent = Intent(
            batch.request_id,
            batch.campaign,
            batch.fingerprint,
            dict(batch.body),
            batch.digests(),
            time.time(),
            batch.simulate,
        )
        try:
            self.backend.record(intent)
        except StateError as e:
            self._stop(str(e))
            return BatchResult(batch, "skipped", error=f"not sent: {e}")
        outcome = self.client.send(batch.payload())
        status = "simulated" if batch.simulate and outcome.status == "sent" else outcome.status
        try:
            self.backend.record(
                Outcome(
                    batch.request_id,
                    status,
                    time.time(),
                    outcome.ticket,
                    outcome.contacts,
                    outcome.cost,
                    outcome.code,
                    outcome.message,
                )
            )
        except StateError as e:
            self._stop(str(e))
            return BatchResult(batch, "unknown", outcome, f"sent, but not recorded: {e}")
        return BatchResult(batch, status, outcome, outcome.message)

    def _stop(self, reason: str) -> None:
        with self._guard:
            self._broken = self._broken or reason
