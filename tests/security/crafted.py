"""Hostile strings and a crafted state, shared by the output-neutralisation tests.

Everything here reaches a plan from outside: a folder name, a text, and a state file whose
campaign names and old texts no schema checked (a PR can commit `runner.state.json`).
"""

from __future__ import annotations

import json
import uuid
from hashlib import sha256

from conftest import ProjectDir

NUMBER = "+12025550143"
ESC_LINK = "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\"  # an OSC 8 hyperlink
FAKE_MARKDOWN = (
    "```\n\n</details>\n\n# All checks passed\n\n<img src=x onerror=alert(1)>\n\n"
    "@octo-org/admins ![pixel](https://evil.example/p.png) [login](https://evil.example/)\n"
    "```"
)
FAKE_NAME = "old` | <b>x</b> @admins ![i](https://evil.example/i.png) ``` \n# Hi"


def message_record(text: str) -> tuple[str, dict[str, object]]:
    body = {"purpose": "alert", "text": text, "voice_gender": "female", "voice_language": "en-US"}
    fingerprint = sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    digest = sha256(NUMBER.encode()).hexdigest()
    return fingerprint, {"body": body, "delivered": [digest], "last_time": 1.0}


def campaign_record(text: str) -> dict[str, object]:
    fingerprint, message = message_record(text)
    return {"messages": {fingerprint: message}, "pending": {}, "sends": []}


def write_crafted_state(project: ProjectDir, live: str, old_text: str, removed: str) -> None:
    """`live` heard `old_text` once (so its plan shows a diff); `removed` is in no file."""
    state = {
        "campaigns": {live: campaign_record(old_text), removed: campaign_record("Bye.")},
        "lineage": str(uuid.uuid4()),
        "serial": 3,
        "version": 1,
    }
    (project.root / "runner.state.json").write_text(json.dumps(state), encoding="utf-8")
