"""A rename whose old campaign has a send of unknown outcome (#15 items 5 and 7).

The re-send must carry the request_id the provider saw, made under the old name: the provider
then refuses it as a duplicate and nobody is called twice. Calls are counted in the emulators'
records; `--remember` makes the second emulator the same provider a little later.
"""

from __future__ import annotations

from collections.abc import Callable

from conftest import EmulatorProcess, ProjectDir, us_numbers, write_campaign
from delivery import assert_exactly_once, crash_after_the_provider_accepted, pairs_of, run_later

TEXT = "The water is off on Saturday from 9 AM."


def test_a_renamed_campaign_resends_its_pending_batch_with_the_id_the_provider_saw(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    numbers = us_numbers(4)
    write_campaign(project, "water", TEXT, numbers[:3])
    first = crash_after_the_provider_accepted(project, emulators)
    [accepted] = first.sends()
    (project.root / "campaigns" / "water.yaml").unlink()
    write_campaign(project, "water-saturday", TEXT, numbers)  # renamed, one recipient added
    path = project.root / "campaigns" / "water-saturday.yaml"
    path.write_text(path.read_text() + "moved_from: [water]\n")

    saved = str(project.root / "rename.plan")  # from a saved plan: its ids are checked too
    plan = run_later(project, 1, "plan", "--out", saved)
    assert "~ moved: water → water-saturday" in plan.out, plan
    assert f"pending {accepted['request_id']}, 3 contacts" in plan.out
    assert "will be re-sent with the same request_id" in plan.out
    later = emulators("--remember", str(first.record), "--clock-offset", "3600")
    result = run_later(project, 1, "apply", "--auto-approve", "--api-url", later.url, saved)
    assert result.code == 0, result
    assert_exactly_once(pairs_of([first.pairs(), later.pairs()]), {(TEXT, n) for n in numbers})
    assert [len(s["recipients"]) for s in later.sends()] == [1]  # the added one alone
    assert "No changes" in run_later(project, 1, "plan").out
