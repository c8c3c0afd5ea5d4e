"""Saved plans: `plan --out FILE` writes exactly what `apply FILE` will send, and nothing else."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from runner import files, schemas
from runner.bookings import Cancel
from runner.errors import PlanError
from runner.moves import Moved, RenameHint
from runner.pending import Pending
from runner.plan import SIMULATED_PREFIX, Batch, Change, Plan, derive_request_id
from runner.render import fingerprint_message
from runner.state.model import State
from runner.target import Target, target_of

PLAN_FORMAT = 1
KIND = "runner-plan"


def save_plan(
    plan: Plan, path: Path, root: Path | None = None, target: Target | None = None
) -> None:
    data = {
        "kind": KIND,
        "format_version": PLAN_FORMAT,
        "lineage": plan.lineage,
        "serial": plan.serial,
        "batches": [
            {
                "campaign": b.campaign,
                "fingerprint": b.fingerprint,
                "resend": b.resend,
                "cost": round(b.cost, 6),
                "payload": b.payload(),
                # only once the campaign was forgotten: plans of older runners read the same
                **({"generation": b.generation} if b.generation else {}),
                **({"rebooking": b.rebooking} if b.rebooking else {}),
                **({"call": b.call} if b.call > 1 else {}),  # a call again
                # its payload goes out now, without the message's send_at: kept for the check
                **({"send_at": b.body["send_at"]} if b.call > 1 and "send_at" in b.body else {}),
                **({"id_from": b.id_from} if b.id_from else {}),
            }
            for b in plan.batches
        ],
        # what `apply FILE` shows before asking, as `plan` showed it
        "target": (target or Target()).as_dict(),
        "changes": [_change_record(c) for c in plan.changes],
        "removed_campaigns": [list(r) for r in plan.removed_campaigns],
        # what apply FILE records before it sends, and the notes `plan` showed
        "moves": [list(m) for m in plan.moves],
        "rename_hints": [list(h) for h in plan.hints],
    }
    text = json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    _write(path, text.encode(), root)


def _write(path: Path, data: bytes, root: Path | None) -> None:
    """Temp file (created new, never through a symlink), fsync, rename: all or nothing."""
    try:
        target = files.place(path, root)
        temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        files.refuse_link(target)
        files.write_new(temp, data)
    except files.Refused as e:
        raise PlanError(f"cannot write plan {path}: it {e}; nothing was written") from e
    except OSError as e:
        raise PlanError(f"cannot write plan {path}: {e.strerror}") from e
    try:
        os.replace(temp, target)
    except OSError as e:
        temp.unlink(missing_ok=True)
        raise PlanError(f"cannot write plan {path}: {e.strerror}") from e


def load_plan(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(files.read_file(path, files.PLAN_LIMIT))
    except files.Refused as e:
        raise PlanError(f"cannot read plan {path}: it {e}") from e
    except OSError as e:
        raise PlanError(f"cannot read plan {path}: {e.strerror}") from e
    except (ValueError, RecursionError) as e:  # nested past Python's limit too
        raise PlanError(f"{path} is not a runner plan (invalid JSON: {e})") from e
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise PlanError(f"{path} is not a runner plan; make one with `runner plan --out FILE`")
    if data.get("format_version") != PLAN_FORMAT:
        raise PlanError(
            f"{path} has plan format {data.get('format_version')}; this runner "
            f"reads format {PLAN_FORMAT}: plan again with this runner"
        )
    return data


def check_fresh(data: dict[str, Any], state: State, path: Path) -> None:
    """Refuse a plan made against another state, or against an older version of this one."""
    lineage, serial = data.get("lineage"), data.get("serial")
    if lineage and lineage != state.lineage:
        raise PlanError(
            f"{path} was made for another state (lineage {lineage}, "
            f"this state is {state.lineage or 'new'}); plan again"
        )
    if lineage != state.lineage or serial != state.serial:
        raise PlanError(  # made before the state existed, or before its last write
            f"{path} is stale: the state changed since it was made (serial "
            f"{serial}, now {state.serial}); plan again"
        )


def saved_batches(data: dict[str, Any]) -> list[Batch]:
    batches = []
    try:
        items = list(data["batches"])
    except (KeyError, TypeError) as e:
        raise PlanError("the saved plan has no batches list; plan again") from e
    for index, item in enumerate(items, 1):
        try:
            batches.append(_batch_of(item))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise PlanError(
                f"batch {index} of the saved plan is malformed ({e!r}); plan again"
            ) from e
    return batches


def _batch_of(item: dict[str, Any]) -> Batch:
    payload = dict(item["payload"])
    numbers = tuple(r["phone_number"] for r in payload.pop("recipients"))
    simulate = bool(payload.pop("simulation_mode", False))
    request_id = payload.pop("request_id")
    if "send_at" in item:  # a call again's message, as the state knows it
        payload["send_at"] = item["send_at"]
    if simulate and request_id.startswith(SIMULATED_PREFIX):
        request_id = "rn-" + request_id.removeprefix(SIMULATED_PREFIX)
    batch = Batch(
        item["campaign"],
        item["fingerprint"],
        request_id,
        payload,
        numbers,
        simulate,
        item.get("resend", False),
        item.get("cost", 0.0),
        generation=int(item.get("generation", 0)),
        rebooking=int(item.get("rebooking", 0)),
        call=int(item.get("call", 1)),
        id_from=str(item.get("id_from", "")),
    )
    _check_batch(batch)
    return batch


def _check_batch(batch: Batch) -> None:
    """A saved plan is data a person could edit: its ids must still match its content."""
    fingerprint = fingerprint_message(batch.body)
    named = batch.id_from or batch.campaign  # a re-send's id, made under a former name
    expected = derive_request_id(
        named, fingerprint, batch.numbers, batch.generation, batch.rebooking, batch.call
    )
    if fingerprint != batch.fingerprint or expected != batch.request_id:
        raise PlanError(
            f"batch {batch.request_id} of the saved plan does not match its payload "
            "(edited or corrupt); plan again"
        )
    payload = batch.payload()
    if schemas.accepts("voice-send")(payload):
        return
    errors = list(schemas.validator("voice-send").iter_errors(payload))
    if errors:
        raise PlanError(
            f"batch {batch.request_id} of the saved plan is not a valid API body: "
            f"{errors[0].message}; plan again"
        )


def _change_record(change: Change) -> dict[str, Any]:
    """A change without its batches (saved once, above): enough to show the plan again."""
    return {
        "campaign": change.campaign,
        "path": change.path,
        "line": change.line,
        "new_campaign": change.new_campaign,
        "changed": change.changed,
        "added": change.added,
        "removed": change.removed,
        "diffs": [[dict(old), dict(new)] for old, new in change.diffs],
        "pending": [
            [p.request_id, p.contacts, round(p.age_seconds), p.blocked] for p in change.pending
        ],
        # booked calls `apply FILE` cancels before it books anything (left out when none)
        **({"cancels": [vars(c) for c in change.cancels]} if change.cancels else {}),
        **({"cancel_blocked": change.cancel_blocked} if change.cancel_blocked else {}),
        **({"removed_from_files": True} if change.removed_from_files else {}),
        **({"recalled": change.recalled} if change.recalled else {}),  # a retry policy's
    }


def saved_target(data: dict[str, Any]) -> Target | None:
    """The endpoint, state and project the plan was made with (None in older files)."""
    return target_of(data.get("target"))


def saved_plan(data: dict[str, Any], batches: list[Batch]) -> Plan:
    """The plan as `plan` showed it, rebuilt from a saved plan (only batches, if that is all
    an older file holds): campaigns, texts, diffs, pending sends, cost."""
    by_campaign: dict[str, list[Batch]] = {}
    for batch in batches:
        by_campaign.setdefault(batch.campaign, []).append(batch)
    try:
        changes = [_change_of(item, by_campaign) for item in data.get("changes") or []]
        removed = tuple((str(n), int(d)) for n, d in data.get("removed_campaigns") or [])
        moves = tuple(
            Moved(str(o), str(n), bool(k), int(r)) for o, n, k, r in data.get("moves") or []
        )
        hints = tuple(
            RenameHint(str(n), str(o), int(h)) for n, o, h in data.get("rename_hints") or []
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise PlanError(f"the saved plan's campaigns are malformed ({e!r}); plan again") from e
    shown = {c.campaign for c in changes}
    changes += [  # batches no change describes: an older file, or an edited one
        Change(name, "(saved plan)", 0, False, tuple(found))
        for name, found in by_campaign.items()
        if name not in shown
    ]
    lineage, serial = str(data.get("lineage") or ""), int(data.get("serial") or 0)
    return Plan(lineage, serial, tuple(changes), removed, moves, hints)


def _change_of(item: dict[str, Any], by_campaign: dict[str, list[Batch]]) -> Change:
    name = str(item["campaign"])
    return Change(
        name,
        str(item["path"]),
        int(item["line"]),
        bool(item["new_campaign"]),
        tuple(by_campaign.get(name, ())),
        int(item["changed"]),
        int(item["added"]),
        int(item["removed"]),
        tuple((dict(old), dict(new)) for old, new in item["diffs"]),
        tuple(
            Pending(str(r), int(n), float(age), None if why is None else str(why))
            for r, n, age, why in item["pending"]
        ),
        removed_from_files=bool(item.get("removed_from_files", False)),
        cancels=tuple(_cancel_of(c) for c in item.get("cancels") or []),
        cancel_blocked=_optional_text(item.get("cancel_blocked")),
        recalled=int(item.get("recalled", 0)),
    )


def _cancel_of(item: dict[str, Any]) -> Cancel:
    return Cancel(
        str(item["campaign"]),
        str(item["request_id"]),
        str(item["ticket"]),
        str(item["fingerprint"]),
        str(item["send_at"]),
        float(item["due"]),
        int(item["contacts"]),
        bool(item.get("retry", False)),
        str(item.get("refused", "")),
    )


def _optional_text(value: Any) -> str | None:
    return None if value is None else str(value)
