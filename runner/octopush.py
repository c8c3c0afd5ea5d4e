"""The Octopush HTTP client: one pool, bounded retries, one outcome per send (DESIGN.md §1, §7).

A send is retried only where it is safe: the body (and so its request_id) is identical on every
attempt, and the provider refuses a repeat with code 120, which is reported as "duplicate".

urllib3 is used directly, not through requests: the send phase is CPU-bound here, and requests'
session layer (prepare, cookies, hooks, response building) cost as much CPU as all the rest.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import re
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Literal, TypeGuard

import certifi
import urllib3
from requests.utils import get_auth_from_url, get_environ_proxies, select_proxy
from urllib3.exceptions import (
    ClosedPoolError,
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

from runner.errors import RunnerError
from runner.wire import encode_payload

log = logging.getLogger("runner.octopush")

Status = Literal["sent", "duplicate", "rejected", "unknown", "not-sent", "cancelled"]

DUPLICATE_CODE = 120
# Refusals about the account, not the batch: every later batch would meet them too.
ACCOUNT_CODES = frozenset({101, 104})
ACCOUNT_STATUSES = frozenset({401, 403})
# Retry-After is honoured up to this many seconds (DESIGN.md §7); past it, the send is unknown.
MAX_RETRY_AFTER = 120.0

# The provider's known codes, with what a user should read (DESIGN.md §1).
ERROR_MESSAGES: dict[int, str] = {
    101: "Invalid credentials: check OCTOPUSH_API_LOGIN and OCTOPUSH_API_KEY.",
    102: "Text too long: at most 1224 characters.",
    104: "Not enough credit on the Octopush account: top it up, then apply again.",
    106: "Invalid sender: use 3 to 11 letters or digits.",
    117: "No valid phone number among the recipients.",
    119: "Text too long for this kind of message.",
    120: "A request with the same request_id was already sent.",
    442: "Voice language not supported.",
}

# A message that clearly says this request_id was sent before; a refusal that merely mentions
# request_id with "used" or "same" ("a request_id may be used once") is not one.
_ID = r"request[_ -]?id"
_DONE = r"(?:sent|processed|used|submitted|received|accepted)"
_REPEATED_REQUEST_ID = re.compile(
    rf"{_ID}\b(?:(?!\bnot\b|n't)[^.;:]){{0,40}}?\b(?:(?:was|were|has\s+been|is)\s+)?already\s+(?:been\s+)?{_DONE}\b"
    rf"|\b(?:duplicated?|repeated)\s+{_ID}\b"
    rf"|{_ID}\s+(?:is\s+a\s+)?(?:duplicated?|repeated)\b",
    re.IGNORECASE,
)
_SECRET_HEADERS = frozenset({"api-key", "api-login"})
# Network errors after which the request may or may not have reached the provider: retried with
# the same body, as requests' ConnectionError, Timeout and ChunkedEncodingError were before.
_RETRYABLE_ERRORS = (
    NewConnectionError,  # refused, unreachable, name not resolved
    ConnectTimeoutError,
    ReadTimeoutError,
    ProtocolError,  # reset, or closed before or in the middle of the answer
    SSLError,  # but not a certificate that fails verification: see _certificate_problem
    ProxyError,
    ClosedPoolError,
)
# Of those, the ones raised before a byte of the request could leave: nothing was sent.
_NOTHING_SENT_ERRORS = (NewConnectionError, ConnectTimeoutError)
_URL_EXAMPLE = "write it like https://api.octopush.com/v1/public"


class OctopushError(RunnerError):
    """The API could not be used at all (bad URL, balance refused or unreachable)."""


class CertificateError(OctopushError):
    """The server's TLS certificate failed verification: no request left the machine."""


@dataclass(frozen=True)
class SendOutcome:
    status: Status
    ticket: str | None = None
    contacts: int | None = None
    cost: float | None = None
    residual_credit: float | None = None
    code: int | None = None
    message: str = ""
    attempts: int = 0
    account: bool = False  # a refusal about the account or the endpoint: stop the apply
    warning: str = ""  # something to tell the user about a send that did succeed


@dataclass(frozen=True)
class Balance:
    """GET wallet/check-balance: the credit in euros, and the provider's time (Date header)."""

    amount: float
    provider_time: float | None  # seconds since the epoch, by the provider's clock
    local_time: float  # time.time() halfway through the request, to compare with it


@dataclass(frozen=True)
class _Answer:
    """An HTTP answer, read whole (so that its connection went back to the pool)."""

    status: int
    headers: Mapping[str, str]  # urllib3's HTTPHeaderDict: names in any case
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class _Exchange:
    """How a retried request ended: the last answer, or the last network error."""

    response: _Answer | None
    error: str
    attempts: int
    uncertain: bool = False  # an attempt before the last may have been accepted
    note: str = ""  # why the retries stopped early


class OctopushClient:
    def __init__(
        self,
        base_url: str,
        login: str,
        key: str,
        *,
        timeout: tuple[float, float] = (5.0, 30.0),
        max_attempts: int = 6,
        backoff: float = 0.2,
        max_backoff: float = 10.0,
        max_retry_after: float = MAX_RETRY_AFTER,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = _checked_url(base_url)
        self._timeout = urllib3.Timeout(connect=timeout[0], read=timeout[1])
        self._max_attempts = max(1, max_attempts)
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._max_retry_after = max_retry_after
        self._sleep = sleep
        self._jitter = random.Random()
        self._headers = _headers(login, key)
        # by value: a server (or a proxy) that echoes them must not put them in a message,
        # a ticket, the state or a log; short values would blank out ordinary words
        self._secrets = tuple(s.encode() for s in sorted({login, key}, key=len) if len(s) >= 4)
        self._pool = _new_pool(self.base_url)

    def __repr__(self) -> str:
        return f"OctopushClient(base_url={self.base_url!r})"

    def __enter__(self) -> OctopushClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._pool.clear()

    def send(self, payload: Mapping[str, Any]) -> SendOutcome:
        """POST voice-campaign/send, retrying what is safe to retry, and say how it ended."""
        return self.send_encoded(encode_payload(payload), len(payload.get("recipients", ())))

    def send_encoded(self, body: bytes, recipients: int) -> SendOutcome:
        """send(), for a payload already encoded as encode_payload does (Batch.payload_json)."""
        try:
            exchange = self._exchange("POST", f"{self.base_url}/voice-campaign/send", body)
        except CertificateError as e:  # at the handshake: the request never left
            return SendOutcome("not-sent", message=str(e), attempts=1, account=True)
        return _outcome_of(exchange, recipients)

    def cancel(self, ticket: str) -> SendOutcome:
        """DELETE voice-campaign/cancel: "cancelled" (204), "rejected" or "unknown".

        Any refusal is "could not cancel": the provider's reasons (too close to send_at, too
        many recipients, a monthly limit) are not told apart, and never guessed.
        """
        body = json.dumps({"ticket_number": ticket}).encode()
        try:
            exchange = self._exchange("DELETE", f"{self.base_url}/voice-campaign/cancel", body)
        except CertificateError as e:  # at the handshake: the request never left
            return SendOutcome("not-sent", message=str(e), attempts=1, account=True)
        return _cancel_outcome(exchange)

    def balance(self) -> float:
        """The account's credit, in euros."""
        return self.check_balance().amount

    def check_balance(self) -> Balance:
        """GET wallet/check-balance: credentials, credit in euros and the provider's clock.

        Without product_name the answer is `{"amount": 12.54, "unit": "euros"}`; with one it
        would count that product's units (and need country_code), which is not money.
        """
        url = f"{self.base_url}/wallet/check-balance"
        before = time.time()
        exchange = self._exchange("GET", url, None)
        local = (before + time.time()) / 2
        response = exchange.response
        if response is None or not response.ok:
            raise OctopushError(f"cannot read the balance at {url}: {_failure_text(exchange)}")
        data = _json_object(response)
        amount, unit = data.get("amount"), str(data.get("unit", "euros")).lower()
        if not _is_finite(amount) or unit not in ("euros", "euro", "eur"):
            raise OctopushError(f"unexpected balance answer from {url}: {response.text[:200]!r}")
        return Balance(float(amount), _http_date(response.headers.get("Date")), local)

    def _exchange(self, method: str, url: str, body: bytes | None) -> _Exchange:
        uncertain = False
        for attempt in range(1, self._max_attempts + 1):
            try:
                response, error, arrived = self._attempt(method, url, body, attempt)
            except CertificateError as e:
                if not uncertain:
                    raise
                return _Exchange(None, str(e), attempt, uncertain)
            if response is not None and not _is_retryable(response.status):
                return _Exchange(response, "", attempt, uncertain)
            uncertain = uncertain or arrived
            delay = self._delay(attempt, response)
            if delay is None:
                note = f"Retry-After asks for more than {self._max_retry_after:.0f} s"
                return _Exchange(response, error, attempt, uncertain, note)
            if attempt < self._max_attempts:
                self._sleep(delay)
        return _Exchange(response, error, self._max_attempts, uncertain)

    def _attempt(
        self, method: str, url: str, body: bytes | None, attempt: int
    ) -> tuple[_Answer | None, str, bool]:
        """The answer or the error, and whether the request may have reached the provider."""
        debug = log.isEnabledFor(logging.DEBUG)
        if debug:
            headers = redacted(self._headers)
            total = self._max_attempts
            log.debug("%s %s attempt %d/%d headers=%s", method, url, attempt, total, headers)
        try:
            raw = self._pool.urlopen(
                method,
                url,
                body=body,
                headers=self._headers,
                retries=False,  # every retry is decided (and logged) here
                redirect=False,  # a redirect is an answer (rejected): the key stays with the API
                timeout=self._timeout,
                preload_content=True,  # read whole: the connection goes back to the pool
            )
        except HTTPError as error:
            cause = error.reason if isinstance(error, MaxRetryError) and error.reason else error
            problem = _certificate_problem(cause)
            if problem:
                raise CertificateError(_certificate_text(url, problem)) from error
            if not isinstance(cause, _RETRYABLE_ERRORS):
                raise OctopushError(f"cannot send to {url}: {cause}; check the API URL") from error
            log.debug("%s %s attempt %d failed: %s", method, url, attempt, type(cause).__name__)
            arrived = not isinstance(cause, _NOTHING_SENT_ERRORS)
            return None, f"{type(cause).__name__}: {cause}", arrived
        response = self._scrubbed(raw)
        if debug:
            log.debug(
                "%s %s -> %d attempt %d headers=%s",
                *(method, url, response.status, attempt, dict(response.headers)),
            )
        # a 429 is refused before processing; a 5xx may come after the send was accepted
        return response, f"HTTP {response.status}", response.status >= 500

    def _scrubbed(self, raw: urllib3.BaseHTTPResponse) -> _Answer:
        """The answer with the login and key replaced by *** wherever it echoes them: every
        string runner derives from it (message, ticket, Location, log line) is then clean."""
        body, headers = raw.data, raw.headers
        values = [value for _, value in headers.items()]
        if any(s in body or any(s.decode() in v for v in values) for s in self._secrets):
            for secret in reversed(self._secrets):  # the longer first: one may hold the other
                body = body.replace(secret, b"***")
            headers = urllib3.HTTPHeaderDict()
            for name, value in raw.headers.items():
                headers.add(name, _scrub_text(value, self._secrets))
        return _Answer(raw.status, headers, body)

    def _delay(self, attempt: int, response: _Answer | None) -> float | None:
        """Retry-After when the server gives one, else exponential backoff with full jitter.

        None when Retry-After asks for longer than max_retry_after: waiting that long would
        hold the apply (and its lock) for a provider that said it is not ready.
        """
        asked = _retry_after(response)
        if asked is not None:
            return asked if asked <= self._max_retry_after else None
        ceiling = min(self._max_backoff, self._backoff * 2 ** (attempt - 1))
        return self._jitter.uniform(0.0, ceiling)


def _check_credential(name: str, value: str) -> None:
    """Refuse what http.client would refuse later, in an error that quotes the whole value."""
    if not (value.isascii() and value.isprintable() and value == value.strip()):
        raise OctopushError(
            f"{name} has spaces at its ends, line breaks or non-ASCII characters: "
            "copy it again from the Octopush account"
        )


def _headers(login: str, key: str) -> dict[str, str]:
    _check_credential("OCTOPUSH_API_LOGIN", login)
    _check_credential("OCTOPUSH_API_KEY", key)
    return {"api-login": login, "api-key": key, "Content-Type": "application/json"}


def _checked_url(base_url: str) -> str:
    """The API base without its trailing slash; urllib3 would take a URL without scheme as http."""
    url = base_url.rstrip("/")
    try:
        parts = urllib3.util.parse_url(url)
    except ValueError as e:
        raise OctopushError(f"cannot use the API URL {base_url!r}: {e}; {_URL_EXAMPLE}") from e
    if parts.scheme not in ("http", "https") or not parts.host:
        raise OctopushError(f"cannot use the API URL {base_url!r}: {_URL_EXAMPLE}")
    return url


def _new_pool(base_url: str) -> urllib3.PoolManager:
    """Connections kept alive for every thread, with the environment's proxy and CA bundle.

    Both are read once, here, as requests did (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, *_PROXY,
    NO_PROXY, with requests' own rules). No netrc: the key is ours.
    """
    options: dict[str, Any] = {"maxsize": 32, "block": False, **_ca_options(base_url)}
    proxy = select_proxy(base_url, get_environ_proxies(base_url))
    if proxy is None:
        return urllib3.PoolManager(**options)
    try:
        proxy = proxy if "://" in proxy else f"http://{proxy}"  # as curl and requests do
        return urllib3.ProxyManager(proxy, proxy_headers=_proxy_auth(proxy), **options)
    except UnicodeError:  # not quoted either
        raise OctopushError(
            f"the proxy's user name or password set in the environment for {base_url} has "
            "characters proxy authentication cannot carry (outside Latin-1, like €): "
            "use proxy credentials without them"
        ) from None
    except ValueError:  # not quoted: a proxy URL may hold a password
        raise OctopushError(
            f"the proxy set in the environment for {base_url} is not an http:// or https:// "
            "URL (SOCKS is not supported): correct HTTPS_PROXY, HTTP_PROXY or ALL_PROXY"
        ) from None


def _proxy_auth(proxy: str) -> dict[str, str]:
    username, password = get_auth_from_url(proxy)
    return urllib3.make_headers(proxy_basic_auth=f"{username}:{password}") if username else {}


def _ca_options(base_url: str) -> dict[str, str]:
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    bundle = bundle or certifi.where()
    if base_url.lower().startswith("https:") and not os.path.exists(bundle):
        raise OctopushError(
            f"the CA bundle {bundle} (REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE) does not exist: "
            "correct the variable or unset it"
        )
    where = "ca_cert_dir" if os.path.isdir(bundle) else "ca_certs"
    return {"cert_reqs": "CERT_REQUIRED", where: bundle}


def _scrub_text(text: str, secrets: tuple[bytes, ...]) -> str:
    for secret in reversed(secrets):
        text = text.replace(secret.decode(), "***")
    return text


def redacted(headers: Mapping[str, Any]) -> dict[str, Any]:
    """Headers fit for a log: credential values replaced by ***."""
    return {k: "***" if k.lower() in _SECRET_HEADERS else v for k, v in headers.items()}


def _is_retryable(status: int) -> bool:
    return status == 429 or status >= 500


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_finite(value: Any) -> TypeGuard[int | float]:
    return _is_number(value) and math.isfinite(value)


def _http_date(value: str | None) -> float | None:
    """An HTTP date (`Wed, 21 Oct 2026 07:28:00 GMT`) as seconds since the epoch, or None."""
    try:
        moment = parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError, IndexError):
        return None
    return moment.timestamp() if moment is not None and moment.tzinfo is not None else None


def _retry_after(response: _Answer | None) -> float | None:
    """Seconds to wait, from Retry-After in seconds or as an HTTP date (RFC 9110 §10.2.3)."""
    value = response.headers.get("Retry-After") if response is not None else None
    if value is None or response is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        when = _http_date(value)
        if when is None:
            return None
        # measured against the server's own Date when it gives one: clocks differ
        now = _http_date(response.headers.get("Date")) or time.time()
        seconds = max(0.0, when - now)
    return seconds if 0 <= seconds < float("inf") else None


def _certificate_problem(cause: BaseException) -> str:
    """Why the server's certificate was refused, or "" for any other error."""
    if not isinstance(cause, SSLError):
        return ""
    inner = cause.args[0] if cause.args else None
    if isinstance(inner, ssl.SSLCertVerificationError):
        return str(inner.verify_message or inner.reason or inner)
    text = str(cause)
    return text if "CERTIFICATE_VERIFY_FAILED" in text else ""


def _certificate_text(url: str, problem: str) -> str:
    host = urllib3.util.parse_url(url).host
    return (
        f"the TLS certificate of {host} failed verification ({problem}); nothing was sent: "
        "check the API URL, or name your CA bundle in REQUESTS_CA_BUNDLE"
    )


def _json_object(response: _Answer) -> dict[str, Any]:
    try:
        data = json.loads(response.body)
    except ValueError:  # not JSON, empty, or not UTF-8
        return {}
    return data if isinstance(data, dict) else {}


def _failure_text(exchange: _Exchange) -> str:
    response = exchange.response
    if response is None:
        return f"no answer after {exchange.attempts} attempt(s) ({exchange.error})"
    data = _json_object(response)
    problems = _nested_problems(data) or _bare_problem(data)
    detail = "; ".join(_describe(code, text) for code, text in problems) or response.text[:200]
    note = f"; {exchange.note}" if exchange.note else ""
    return f"HTTP {response.status} after {exchange.attempts} attempt(s): {detail}{note}"


def _outcome_of(exchange: _Exchange, recipients: int) -> SendOutcome:
    response = exchange.response
    if response is not None and response.ok:
        return _sent(response, recipients, exchange.attempts)
    if response is None or _is_retryable(response.status):
        message = f"{_failure_text(exchange)}; the request may have been accepted"
        return SendOutcome("unknown", message=message, attempts=exchange.attempts)
    outcome = _refused(response, exchange.attempts)
    if outcome.status == "rejected" and exchange.uncertain:
        # the refusal of a retry says nothing of the attempt whose answer was lost
        message = f"{outcome.message}; refused after an attempt that may have been accepted"
        return replace(outcome, status="unknown", message=message)
    return outcome


def _cancel_outcome(exchange: _Exchange) -> SendOutcome:
    response = exchange.response
    if response is not None and response.ok:
        return SendOutcome(
            "cancelled", message=f"HTTP {response.status}", attempts=exchange.attempts
        )
    if response is None or _is_retryable(response.status):
        message = f"{_failure_text(exchange)}; the cancel may have been made"
        return SendOutcome("unknown", message=message, attempts=exchange.attempts)
    refused = _refused(response, exchange.attempts)
    outcome = replace(
        refused, status="rejected", message=refused.message or _failure_text(exchange)
    )
    if exchange.uncertain:  # a refusal of a retry says nothing of the attempt whose answer was lost
        message = f"{outcome.message}; refused after an attempt that may have cancelled it"
        return replace(outcome, status="unknown", message=message)
    return outcome


def _sent(response: _Answer, recipients: int, attempts: int) -> SendOutcome:
    data = _json_object(response)
    problem = _malformed_success(response, data)
    if problem:
        message = f"HTTP {response.status} with {problem}; the request may have been accepted"
        return SendOutcome("unknown", message=message, attempts=attempts)
    ticket = data.get("ticket_number") or data.get("vocal_ticket")
    contacts = data.get("number_of_contacts")
    counted = int(contacts) if contacts is not None else recipients
    warning = (
        f"the provider counted {counted} of the batch's {recipients} contacts"
        if counted < recipients
        else ""
    )
    return SendOutcome(
        "sent",
        ticket=str(ticket) if ticket else None,
        contacts=counted,
        cost=_float_or_none(data.get("total_cost")),
        residual_credit=_float_or_none(data.get("residual_credit")),
        message=f"HTTP {response.status}",
        attempts=attempts,
        warning=warning,
    )


def _malformed_success(response: _Answer, data: Mapping[str, Any]) -> str:
    """What makes a 2xx answer unreadable as the provider's receipt, or "" when it is one."""
    if not data:
        return f"a body that is not the provider's receipt ({response.text[:80]!r})"
    contacts = data.get("number_of_contacts")
    if contacts is not None and not (_is_finite(contacts) and contacts >= 0 and contacts % 1 == 0):
        return f"a malformed number_of_contacts ({str(contacts)[:40]})"
    for name in ("total_cost", "residual_credit"):
        value = data.get(name)
        if value is not None and not _is_finite(value):
            return f"a malformed {name} ({str(value)[:40]})"
    return ""


def _refused(response: _Answer, attempts: int) -> SendOutcome:
    data = _json_object(response)
    nested, bare = _nested_problems(data), _bare_problem(data)
    if any(_is_repeat(code, text) for code, text in [*nested, *bare]):
        message = ERROR_MESSAGES[DUPLICATE_CODE]
        return SendOutcome("duplicate", code=DUPLICATE_CODE, message=message, attempts=attempts)
    problems = nested or bare
    codes = {code for code, _ in [*nested, *bare]}
    account = response.status in ACCOUNT_STATUSES or bool(codes & ACCOUNT_CODES)
    if not problems:
        message = _unexplained(response)
        return SendOutcome("rejected", message=message, attempts=attempts, account=account)
    code = _most_specific([*nested, *bare])
    message = "; ".join(_describe(c, text) for c, text in problems)
    return SendOutcome("rejected", code=code, message=message, attempts=attempts, account=account)


def _unexplained(response: _Answer) -> str:
    location = response.headers.get("Location")
    if 300 <= response.status < 400 and location:  # not followed: the key stays with the API
        return f"HTTP {response.status}: the API URL moved to {location[:200]}; use that one"
    return f"HTTP {response.status}: {response.text[:200]}"


def _nested_problems(data: Mapping[str, Any]) -> list[tuple[int | None, str]]:
    """{code, message} objects in any list of the answer: the list's name is not documented."""
    items = [item for value in data.values() if isinstance(value, list) for item in value]
    return [_problem(item) for item in items if _looks_like_problem(item)]


def _bare_problem(data: Mapping[str, Any]) -> list[tuple[int | None, str]]:
    return [_problem(data)] if _looks_like_problem(data) else []


def _looks_like_problem(item: Any) -> bool:
    return isinstance(item, Mapping) and ("code" in item or "message" in item)


def _problem(item: Mapping[str, Any]) -> tuple[int | None, str]:
    code = item.get("code")
    if isinstance(code, str) and code.strip().isdigit():
        code = int(code)
    number = code if isinstance(code, int) and not isinstance(code, bool) else None
    return number, str(item.get("message") or "")


def _is_repeat(code: int | None, text: str) -> bool:
    return code == DUPLICATE_CODE or _REPEATED_REQUEST_ID.search(text) is not None


def _most_specific(problems: list[tuple[int | None, str]]) -> int | None:
    codes = [code for code, _ in problems if code is not None]
    known = [code for code in codes if code in ERROR_MESSAGES]
    chosen = known or codes
    return chosen[0] if chosen else None


def _describe(code: int | None, text: str) -> str:
    known = ERROR_MESSAGES.get(code) if code is not None else None
    described = known or text or "no message"
    return f"{described} (code {code})" if code is not None else described


def _float_or_none(value: Any) -> float | None:
    return float(value) if _is_number(value) else None
