"""Stage 5: the only stage that touches the world.

For every batch: an intent is durable before the request leaves, and the outcome after the
answer. A crash between the two leaves a pending intent that the next plan re-sends with the
same request_id (the provider refuses a repeat within 24 h) or refuses until a person resolves.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path

from runner import planfile
from runner.bulk import paused_gc
from runner.cancelling import (
    Canceller,
    CancelResult,
    still_ahead,
    taken_as_made,
    taken_as_past,
    unconfirmed,
)
from runner.emulator import Emulator, EmulatorOptions
from runner.errors import RunnerError, StateError, UsageError
from runner.moves import Moved
from runner.octopush import OctopushClient, OctopushError, SendOutcome
from runner.operations import backend_for, planned
from runner.plan import Batch, Plan
from runner.project import Project
from runner.state import Backend, state_location
from runner.state.local import LocalState
from runner.state.model import Intent, Move, Outcome, State, body_for_state
from runner.stopping import stopped_by_signals
from runner.target import Target
from runner.window import ProviderClock, SendWindow


@dataclass(frozen=True)
class BatchResult:
    batch: Batch
    status: str  # sent, duplicate, simulated, rejected, not-sent, unknown, skipped, blocked
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
    send_seconds: float = 0.0  # first intent to last outcome recorded
    state_error: str | None = None  # why the state stopped recording, if it did
    stopped: str | None = None  # why no more batches were started, if sending stopped early
    notices: tuple[str, ...] = ()  # lines to show before the summary (a clock off, ...)
    interrupted: str = ""  # the signal that stopped the sending, if one did
    held: tuple[tuple[str, str], ...] = ()  # (campaign, why) for those blocked by the files
    cancels: tuple[CancelResult, ...] = ()  # booked calls cancelled (or not) before the sends
    moved: tuple[tuple[str, str], ...] = ()  # (old, new): histories carried by moved_from

    @property
    def real(self) -> tuple[BatchResult, ...]:
        return tuple(r for r in self.results if not r.batch.simulate)

    @property
    def simulated(self) -> tuple[BatchResult, ...]:
        return tuple(r for r in self.results if r.batch.simulate)

    @property
    def failures(self) -> tuple[BatchResult, ...]:
        return tuple(r for r in self.results if not r.delivered)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.blocked and all(c.done for c in self.cancels)


class Sender:
    """Sends batches concurrently; stops starting new ones once told why (`stop`).

    It stops by itself when the state cannot record, or when the provider refuses something
    about the account (credentials, credit, the endpoint's certificate): every later batch
    would meet the same refusal. A re-send of a pending batch leaves only while the provider
    still remembers its first attempt (`SendWindow`), checked right before it leaves.

    Intents are written ahead of the sends, a few at a time with one fsync for the group, so
    that waiting for the disk overlaps the requests in flight instead of delaying each one.
    At most `2 x concurrency` batches are recorded and not yet answered; after a crash they
    are pending, and the next apply re-sends them with the same request_ids.
    """

    def __init__(
        self,
        backend: Backend,
        client: OctopushClient,
        concurrency: int,
        on_done: Callable[[BatchResult], None] = lambda r: None,
        window: SendWindow | None = None,
        gave_up: Callable[[], bool] = lambda: False,
    ) -> None:
        self.backend = backend
        self.client = client
        self.concurrency = max(1, concurrency)
        self.on_done = on_done
        self.window = window or SendWindow()
        self.gave_up = gave_up  # after a stop: True once the answers in flight had their time
        self._broken: str | None = None
        self.state_error: str | None = None
        self._guard = threading.RLock()  # a signal handler may stop us while it is held

    @property
    def stopped(self) -> str | None:
        """Why no new batch starts any more, or None while they do."""
        return self._broken

    def stop(self, reason: str) -> None:
        """Start no new batch; those in flight finish and are recorded. The first reason stays."""
        self._stop(reason)

    def send_all(self, batches: Sequence[Batch]) -> list[BatchResult]:
        results: list[BatchResult | None] = [None] * len(batches)
        slots = threading.Semaphore(2 * self.concurrency)
        futures: dict[Future[None], int] = {}
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="send")
        try:
            for group in self._groups(len(batches), slots):
                for index in self._record_intents(group, batches, results, slots):
                    futures[pool.submit(self._finish, index, batches[index], results, slots)] = (
                        index
                    )
            self._wait(futures, batches, results)
        finally:  # after a stop, a request still hanging is left to its thread: it is pending
            pool.shutdown(wait=not self._broken, cancel_futures=True)
        return [
            result or BatchResult(batches[i], "unknown", error="no answer before the stop")
            for i, result in enumerate(results)
        ]

    def _wait(
        self,
        futures: dict[Future[None], int],
        batches: Sequence[Batch],
        results: list[BatchResult | None],
    ) -> None:
        """Wait for every answer; after a stop, only until `gave_up` says so."""
        waiting = set(futures)
        while waiting:
            done, waiting = wait(waiting, timeout=0.1)
            for future in done:
                future.result()  # an unexpected error in a sender surfaces here
            if waiting and self._broken and self.gave_up():
                break
        for future in waiting:
            if future.cancel():  # its turn never came: nothing left, say so in the state
                batch = batches[futures[future]]
                results[futures[future]] = self._skip(batch, self._broken or "stopped")

    def _groups(self, total: int, slots: threading.Semaphore) -> Iterator[list[int]]:
        """Wait for one free slot, then take every other free slot: one fsync for them all."""
        index = 0
        while index < total:
            while not slots.acquire(timeout=0.1) and not self._broken:
                pass  # after a stop, the rest are skipped without waiting for a slot
            group = [index]
            index += 1
            while index < total and len(group) < self.concurrency and slots.acquire(False):
                group.append(index)
                index += 1
            yield group

    def _record_intents(
        self,
        group: list[int],
        batches: Sequence[Batch],
        results: list[BatchResult | None],
        slots: threading.Semaphore,
    ) -> list[int]:
        error = self._broken
        if error is None:
            group = self._within_window(group, batches, results, slots)
            try:  # a simulation reaches nobody: it leaves nothing durable, not even an intent
                intents = [self._intent(batches[i]) for i in group if not batches[i].simulate]
                if intents:
                    self.backend.record_all(intents)
                return group
            except StateError as e:
                self._stop(str(e), state=True)
                error = f"not sent: {e}"
        for i in group:
            self._done(i, BatchResult(batches[i], "skipped", error=error), results, slots)
        return []

    def _within_window(
        self,
        group: list[int],
        batches: Sequence[Batch],
        results: list[BatchResult | None],
        slots: threading.Semaphore,
    ) -> list[int]:
        """The group without the re-sends that may no longer leave (each reported blocked)."""
        kept = []
        for i in group:
            refusal = self.window.refusal(batches[i].campaign, batches[i].request_id)
            if refusal is None:
                kept.append(i)
            else:
                self._done(i, BatchResult(batches[i], "blocked", error=refusal), results, slots)
        return kept

    def _finish(
        self,
        index: int,
        batch: Batch,
        results: list[BatchResult | None],
        slots: threading.Semaphore,
    ) -> None:
        result = BatchResult(batch, "unknown", error="interrupted before its answer")
        try:
            if self._broken:  # recorded ahead, but sending stopped before it left
                result = self._skip(batch, self._broken)
                return
            refusal = self.window.refusal(batch.campaign, batch.request_id)
            if refusal is not None:  # it waited for a slot past the window: stays pending
                result = BatchResult(batch, "blocked", error=refusal)
                return
            result = self._send(batch)
        except RunnerError as e:
            self._stop(str(e))
            result = BatchResult(batch, "unknown", error=str(e))
        finally:  # never leave a slot taken: the producer would wait for it forever
            self._done(index, result, results, slots)

    def _done(
        self,
        index: int,
        result: BatchResult,
        results: list[BatchResult | None],
        slots: threading.Semaphore,
    ) -> None:
        results[index] = result
        slots.release()
        self.on_done(result)

    def _skip(self, batch: Batch, reason: str) -> BatchResult:
        """A batch whose intent is recorded but which never left: say so in the state too."""
        if self.state_error is None and not batch.simulate:  # a simulation records nothing
            try:  # a first attempt is settled as not sent; a re-send stays pending (the fold)
                self.backend.record(Outcome(batch.request_id, "skipped", self.window.clock.now()))
            except StateError as e:
                self._stop(str(e), state=True)
        return BatchResult(batch, "skipped", error=f"not sent: {reason}")

    def _send(self, batch: Batch) -> BatchResult:
        outcome = self.client.send_encoded(batch.payload_json(), len(batch.numbers))
        if outcome.account:
            self._stop(outcome.message)
        if batch.simulate:
            simulated = "simulated" if outcome.status == "sent" else outcome.status
            return BatchResult(batch, simulated, outcome, outcome.message)
        resend = batch.resend or self.window.is_resend(batch.request_id)
        if outcome.status in ("rejected", "not-sent") and resend:
            outcome = replace(
                outcome,
                status="unknown",
                message=f"{outcome.message}; a refused re-send says nothing of the first "
                "attempt, which may have been accepted: still pending",
            )
        status = outcome.status
        try:
            self.backend.record(
                Outcome(
                    batch.request_id,
                    status,
                    self.window.clock.now(),
                    outcome.ticket,
                    outcome.contacts,
                    outcome.cost,
                    outcome.code,
                    outcome.message,
                )
            )
        except StateError as e:
            self._stop(str(e), state=True)
            return BatchResult(batch, "unknown", outcome, f"sent, but not recorded: {e}")
        return BatchResult(batch, status, outcome, outcome.message)

    def _intent(self, batch: Batch) -> Intent:
        return Intent(
            batch.request_id,
            batch.campaign,
            batch.fingerprint,
            body_for_state(batch.body, batch.numbers),
            batch.digests,
            self.window.clock.now(),
            batch.simulate,
            call=batch.call,
        )

    def _stop(self, reason: str, state: bool = False) -> None:
        with self._guard:
            self._broken = self._broken or reason
            if state:
                self.state_error = self.state_error or reason


EMULATOR_LOGIN = "emulator"


@dataclass(frozen=True)
class ApplyRequest:
    """What the user asked `apply` to do."""

    plan_file: Path | None
    auto_approve: bool
    api_url: str | None
    emulator: bool
    simulate: bool
    max_cost: float | None
    concurrency: int


def refuse_plan_overrides(plan_file: str | None, simulate: bool, variables: Sequence[str]) -> None:
    """A saved plan fixes its payloads: an option that would change them is refused, not ignored."""
    if plan_file is None or not (simulate or variables):
        return
    flags = "--simulate" if simulate else "--var/--var-file"
    remedy = (
        "run `runner apply --simulate` without a plan file"
        if simulate
        else "plan again with them (`runner plan --var ... --out FILE`)"
    )
    raise UsageError(f"{flags} cannot change a saved plan's payloads; {remedy}; nothing was sent")


def credentials(request: ApplyRequest) -> tuple[str, str]:
    if request.emulator:
        return EMULATOR_LOGIN, EMULATOR_LOGIN
    login, key = os.environ.get("OCTOPUSH_API_LOGIN"), os.environ.get("OCTOPUSH_API_KEY")
    if not login or not key:
        raise RunnerError(
            "set OCTOPUSH_API_LOGIN and OCTOPUSH_API_KEY in the environment "
            "(or try `runner apply --emulator`)"
        )
    return login, key


@contextlib.contextmanager
def api_target(
    request: ApplyRequest, project: Project, state_option: str | None, target: Target
) -> Iterator[tuple[str, Backend]]:
    """The API base URL and the state to use; the emulator gets its own throwaway state."""
    if not request.emulator:
        yield target.api_url, backend_for(project, state_option)
        return
    with (
        tempfile.TemporaryDirectory(prefix="runner-emulator-") as folder,
        Emulator(EmulatorOptions(login=EMULATOR_LOGIN, key=EMULATOR_LOGIN)) as emulator,
    ):
        yield emulator.url, LocalState(Path(folder) / "state.json")


def batches_to_send(
    request: ApplyRequest, project: Project, state: State, receipts_at: str | None = None
) -> tuple[Plan | None, list[Batch], Shown]:
    """The plan to act on (None for a saved plan), its batches, and what to show."""
    if request.plan_file is None:
        plan = planned(project, state, request.simulate, receipts_at)
        return plan, list(plan.batches), Shown(plan)
    with paused_gc():  # a million numbers in JSON: the collector would walk them at each send
        data = planfile.load_plan(request.plan_file)
        planfile.check_fresh(data, state, request.plan_file)
        batches = planfile.saved_batches(data)
        shown = Shown(planfile.saved_plan(data, batches), planfile.saved_target(data))
        return None, batches, shown


@dataclass(frozen=True)
class Shown:
    """What apply shows before asking: the plan, and for a saved plan where it was made."""

    plan: Plan
    saved_target: Target | None = None


def check_budget(batches: list[Batch], max_cost: float | None) -> None:
    cost = round(sum(b.cost for b in batches), 6)  # 3 x 0.05 must not be over 0.15
    if max_cost is not None and cost > max_cost:
        raise RunnerError(
            f"the estimated cost {cost:,.2f} € is over --max-cost "
            f"{max_cost:,.2f} €; nothing was sent"
        )


def run_apply(
    request: ApplyRequest,
    project: Project,
    state_option: str | None,
    show: Callable[[Shown, list[Batch]], None],
    confirm: Callable[[], bool],
    on_done: Callable[[BatchResult], None],
    target: Target,
) -> ApplyResult | None:
    """Plan (or load a saved plan), ask, then send; the lock is held from plan to last record."""
    login, key = credentials(request)
    with (
        stopped_by_signals() as stop,
        api_target(request, project, state_option, target) as (url, backend),
        backend.locked("apply"),
    ):
        state = backend.commit()  # fold what a killed apply left, even if nothing is sent now
        receipts_at = (
            None if request.emulator else state_location(state_option, project.config.state)
        )
        _, batches, shown = batches_to_send(request, project, state, receipts_at)
        # a saved plan records its blocked campaigns too: apply FILE gives the same verdict
        blocked = tuple(c.campaign for c in shown.plan.changes if c.blocked)
        held = tuple(
            (c.campaign, why) for c in shown.plan.changes if (why := c.held or c.cancel_blocked)
        )
        cancels = shown.plan.cancels
        moves = () if request.simulate else shown.plan.carried
        moved = tuple((m.old, m.new) for m in moves)
        # a clock ahead of the provider's takes a removed campaign's booking for made: apply
        # asks the provider's clock, and cancels those still to come (a renamed one's stands)
        removed = () if request.simulate else removed_names(shown.plan) - {m.old for m in moves}
        late = taken_as_past(state, removed, cancels, time.time())
        show(shown, batches)
        if not batches and not cancels and not late:  # a pure rename: the state changes
            if moves and not request.auto_approve and not confirm():
                raise RunnerError("apply cancelled; nothing was recorded")
            if moves:
                record_moves(backend, moves)
            return ApplyResult((), blocked, held=held, moved=moved)
        check_budget(batches, request.max_cost)
        with OctopushClient(url, login, key) as client:
            clock = preflight(client, batches, request.simulate)
            missed, uncancellable = still_ahead(late, clock)
            cancels = (*cancels, *missed)
            if not batches and not cancels and not moves:  # made by the provider's clock too
                return ApplyResult((), blocked, held=held, notices=tuple(uncancellable))
            if not request.auto_approve and not confirm():
                raise RunnerError("apply cancelled; nothing was sent")
            if cancels or not all(b.simulate for b in batches):  # a simulation creates no state
                backend.ensure_created()
            if moves:  # before any send: the re-sends and the window find the moved history
                state = record_moves(backend, moves)
            started = time.perf_counter()
            window = SendWindow.of(state, clock)
            sender = Sender(backend, client, request.concurrency, on_done, window, stop.gave_up)
            canceller = Canceller(backend, client, clock, lambda: sender.stopped)
            stop.while_sending(sender.stop)  # a signal stops the cancels too
            try:
                cancelled = canceller.cancel_all(cancels)  # before any booking: never both calls
                if canceller.state_error or canceller.account_error:
                    sender.stop(str(canceller.state_error or canceller.account_error))
                skewed = taken_as_made(state, (b.campaign for b in batches), cancels, clock)
                kept, batches = kept_back(batches, {**skewed, **unconfirmed(cancelled)})
                results = kept + sender.send_all(batches)
            except BaseException:  # every exit folds, an unexpected one too
                with contextlib.suppress(StateError):
                    backend.commit()
                raise
            elapsed = time.perf_counter() - started
        state_error = canceller.state_error or sender.state_error
        try:
            backend.commit()
        except StateError as e:  # the journal keeps every record; say what was sent first
            state_error = state_error or str(e)
        stopped = None if state_error or stop.reason else sender.stopped
        notices = tuple(n for n in [clock.notice(), *uncancellable] if n)
        credit = residual_credit(results)
        return ApplyResult(
            tuple(results),
            blocked,
            credit,
            elapsed,
            state_error,
            stopped,
            notices,
            interrupted=stop.reason,
            held=held,
            cancels=tuple(cancelled),
            moved=moved,
        )


def removed_names(plan: Plan) -> set[str]:
    """The campaigns the plan found in the state but no longer in the files."""
    return {name for name, _ in plan.removed_campaigns} | {
        c.campaign for c in plan.changes if c.removed_from_files
    }


def kept_back(
    batches: Sequence[Batch], refused: dict[str, str]
) -> tuple[list[BatchResult], list[Batch]]:
    """Batches of campaigns whose bookings were not all cancelled are not booked (blocked)."""
    if not refused:
        return [], list(batches)
    kept = [
        BatchResult(b, "blocked", error=refused[b.campaign])
        for b in batches
        if b.campaign in refused
    ]
    return kept, [b for b in batches if b.campaign not in refused]


def record_moves(backend: Backend, moves: Sequence[Moved]) -> State:
    """Each carried rename as one durable record, folded at once; the state as it now is."""
    backend.ensure_created()
    now = time.time()
    backend.record_all([Move(m.new, m.old, now) for m in moves])
    return backend.commit()


def residual_credit(results: Sequence[BatchResult]) -> float | None:
    """The credit the provider's last answer left, if one said."""
    for result in reversed(results):
        if result.outcome and result.outcome.residual_credit is not None:
            return result.outcome.residual_credit
    return None


def preflight(client: OctopushClient, batches: Sequence[Batch], simulate: bool) -> ProviderClock:
    """Before anything is sent: the credentials work, the credit covers the estimate, and the
    provider's clock (its Date header) is known, to measure the 24 h window by."""
    try:
        balance = client.check_balance()
    except OctopushError as e:
        message = str(e)
        raise RunnerError(
            message if "nothing was sent" in message else f"{message}; nothing was sent"
        ) from e
    cost = round(sum(b.cost for b in batches), 6)
    if not simulate and cost > balance.amount:
        raise RunnerError(
            f"the estimated cost {cost:,.2f} € is over the account's balance "
            f"{balance.amount:,.2f} €; nothing was sent: top up the Octopush account, then "
            "apply again (--max-cost AMOUNT caps what an apply may cost)"
        )
    return ProviderClock.of(balance)
