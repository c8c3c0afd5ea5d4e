"""The webhook receiver: Starlette on uvicorn, storing each receipt durably before answering.

Starlette and uvicorn because they are small, well kept and async: one process holds thousands
of open requests while a single writer thread makes them durable together. Every request puts
its receipt on a queue and waits; the writer takes everything queued, stores it in one append
(one write and one fsync, or one INSERT) and answers them all. An fsync then costs once per
batch, not once per receipt (group commit), and no receipt is answered before it is stored.

The URL carries the only credential the provider can send (its receipts are unsigned), so it is
never logged: uvicorn's access log is off, and the receiver's own lines never show a path, a
token or a phone number.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import queue
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from runner.errors import RunnerError, UsageError
from runner.receipts.model import MAX_BODY, Receipt, parse_receipt
from runner.receipts.store import ReceiptStore

TOKEN_VARIABLE = "RUNNER_RECEIPTS_TOKEN"
MIN_TOKEN = 32
_TOKEN_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
MAX_BATCH = 2000
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
log = logging.getLogger("runner.receipts")


@dataclass(frozen=True)
class Listen:
    host: str
    port: int


def token_from_environment() -> str:
    """The URL's secret, or UsageError saying how to make one."""
    token = os.environ.get(TOKEN_VARIABLE, "")
    make = "e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'"
    if not token:
        raise UsageError(f"set {TOKEN_VARIABLE} to a secret for the receipts URL ({make})")
    if len(token) < MIN_TOKEN or not set(token) <= _TOKEN_CHARACTERS:
        raise UsageError(
            f"{TOKEN_VARIABLE} must be at least {MIN_TOKEN} characters of A-Z a-z 0-9 - _ . ~ "
            f"to be a secret in a URL ({make})"
        )
    return token


Waiting = tuple[Receipt, asyncio.AbstractEventLoop, "asyncio.Future[None]"]


class GroupCommit:
    """One writer thread storing whatever receipts are waiting, in one append per batch."""

    def __init__(self, store: ReceiptStore) -> None:
        self.store = store
        self._queue: queue.SimpleQueue[Waiting | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="receipts-writer", daemon=True)
        self.failing = False  # the last attempt to store failed: health says so

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def healthy(self) -> bool:
        return self._thread.is_alive() and not self.failing

    async def store_one(self, receipt: Receipt) -> None:
        """Returns once the receipt is durable; raises what the store raised."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._queue.put((receipt, loop, done))
        await done

    def _run(self) -> None:
        try:  # open the store now (read the file, connect), not when a receipt is waiting
            self.store.append([])
        except Exception as e:
            self.failing = True
            log.error("receipts store not ready (requests will retry it): %s", _reason(e))
        while batch := self._take():
            error: Exception | None = None
            try:
                self.store.append([receipt for receipt, _, _ in batch])
            except Exception as e:  # answered as 503: the provider sends it again later
                error = e
            self.failing = error is not None
            by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
            for _, loop, done in batch:
                by_loop.setdefault(loop, []).append(done)
            for loop, waiting in by_loop.items():  # one wake-up per loop, not per receipt
                loop.call_soon_threadsafe(_settle, waiting, error)

    def _take(self) -> list[Waiting]:
        """What is waiting (blocking for the first): an empty list means stop."""
        first = self._queue.get()
        if first is None:
            return []
        batch = [first]
        while len(batch) < MAX_BATCH:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # stop after this batch
                break
            batch.append(item)
        return batch


def _settle(waiting: list[asyncio.Future[None]], error: Exception | None) -> None:
    for done in waiting:
        if done.cancelled():
            continue
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)


class Receiver:
    """The two endpoints, around one writer."""

    def __init__(self, store: ReceiptStore, token: str) -> None:
        self.writer = GroupCommit(store)
        self._secret = token.encode()

    async def receive(self, request: Request) -> Response:
        if not hmac.compare_digest(request.path_params["token"].encode(), self._secret):
            return PlainTextResponse("Not Found", status_code=404)
        if request.method != "POST":
            return PlainTextResponse("POST receipts here", status_code=405, headers=_ALLOW)
        try:
            body = await _bounded_body(request)
        except ClientDisconnect:  # gone before its body arrived: nothing to answer or store
            return Response(status_code=400)
        if body is None:
            return PlainTextResponse(f"body: larger than {MAX_BODY} bytes\n", status_code=413)
        try:
            receipt = parse_receipt(request.headers.get("content-type", ""), body)
        except ValueError as e:
            log.warning("receipt refused (400): %s", e)
            return PlainTextResponse(f"{e}\n", status_code=400)
        return await self._store(receipt)

    async def _store(self, receipt: Receipt) -> Response:
        try:
            await self.writer.store_one(receipt)
        except Exception as e:  # a full disk, a database gone: the provider will retry
            log.error("receipt not stored (503, the provider will retry): %s", _reason(e))
            return PlainTextResponse("not stored; try again later\n", status_code=503)
        return JSONResponse({"stored": True})

    async def health(self, request: Request) -> Response:
        if self.writer.healthy():
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "cannot store receipts; see the log"}, status_code=503)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.writer.start()
        try:
            yield
        finally:
            await asyncio.to_thread(self.writer.stop)


_ALLOW = {"Allow": "POST"}


def create_app(store: ReceiptStore, token: str) -> Starlette:
    """The ASGI app: POST /receipts/<token>, GET /health, 404 for anything else."""
    receiver = Receiver(store, token)
    routes = [
        Route("/health", receiver.health, methods=["GET"]),
        Route("/receipts/{token}", receiver.receive, methods=ALL_METHODS),
    ]
    app = Starlette(routes=routes, lifespan=receiver.lifespan)
    app.router.redirect_slashes = False  # a redirect would answer a wrong path with its token
    return app


def _reason(error: Exception) -> str:
    return str(error) if isinstance(error, RunnerError) else type(error).__name__


async def _bounded_body(request: Request) -> bytes | None:
    """The body, or None past MAX_BODY (read no further than that)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _log_to_stderr() -> None:
    """A timestamped line per event for the receiver and uvicorn (a service's log, not a CLI's)."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("runner.receipts", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False
    logging.getLogger("uvicorn.access").disabled = True  # its lines show the URL, token included


def serve(store: ReceiptStore, token: str, listen: Listen) -> None:
    """Run the receiver until SIGINT or SIGTERM; requests in flight are answered first."""
    _log_to_stderr()
    log.info("receipts go to %s", store.describe())
    log.info("listening on http://%s:%d/receipts/<token> and /health", listen.host, listen.port)
    config = uvicorn.Config(
        create_app(store, token),
        host=listen.host,
        port=listen.port,
        access_log=False,  # it would print each URL, token included
        log_config=None,
        server_header=False,
        proxy_headers=False,  # addresses are never logged: nothing to read from a proxy
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(config).run()
