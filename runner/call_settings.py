"""When and how a campaign's calls go out: the settings a reviewer checks before approving.

Read from the bodies the plan will send, so what is shown is what is sent: the send time in the
file's own offset and in UTC (or now), the sender, the voice and the purpose. Raw values: the
reporters escape them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

DEFAULT_SENDER = "(the provider's default)"


class CallSettings(NamedTuple):
    send_at: str | None  # as written in the file, with its offset; None: at once
    send_at_utc: str | None
    sender: str | None  # None: the provider's default
    voice_gender: str | None
    voice_language: str | None
    purpose: str | None
    recipients: int = 0
    messages: int = 0  # distinct texts with these settings

    def when(self) -> str:
        if self.send_at is None:
            return "now"
        return f"at {self.send_at} ({self.send_at_utc or '?'} UTC)"

    def text(self) -> str:
        """One line: `calls go out at ... (... UTC); sender ...; voice ...; purpose ...`."""
        voice = " ".join(v for v in (self.voice_gender, self.voice_language) if v) or "(unset)"
        return (
            f"calls go out {self.when()}; sender {self.sender or DEFAULT_SENDER}; "
            f"voice {voice}; purpose {self.purpose or '(unset)'}"
        )

    def as_dict(self) -> dict[str, Any]:
        data = self._asdict()
        data["send_now"] = self.send_at is None
        return data


def settings_of(body: Mapping[str, Any]) -> CallSettings:
    send_at = body.get("send_at")
    return CallSettings(
        None if send_at is None else str(send_at),
        None if send_at is None else utc_text(str(send_at)),
        _text(body.get("sender")),
        _text(body.get("voice_gender")),
        _text(body.get("voice_language")),
        _text(body.get("purpose")),
    )


def call_settings(batches: Iterable[Any]) -> list[CallSettings]:
    """One entry per distinct setting among the batches (a campaign has one, unless a saved
    plan or a template made its messages differ), with how many recipients and texts it has."""
    found: dict[CallSettings, tuple[int, set[str]]] = {}
    for batch in batches:
        key = settings_of(batch.body)
        count, texts = found.get(key, (0, set()))
        found[key] = (count + len(batch.numbers), texts | {batch.fingerprint})
    return [
        key._replace(recipients=count, messages=len(texts)) for key, (count, texts) in found.items()
    ]


def utc_text(value: str) -> str | None:
    """The same instant in UTC, e.g. 2026-12-04T08:00:00Z; None if it is not a date-time."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
