"""`runner validate`: schema and config problems, each located at `path:line: field: message`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import API_ENV, BASIC_CONFIG, REPO, EmulatorProcess, ProjectDir, run_cli
from expect import assert_refused, assert_reports

from runner.voices import VOICES

LANGUAGES = ", ".join(VOICES)

DRILL = """
name: drill
text: The failover drill starts in ten minutes.
recipients:
  - "+12025550143"
"""


def drill(name: str, extra: str = "") -> str:
    """DRILL under another name, with extra fields from line 5 on."""
    return DRILL.replace("name: drill", f"name: {name}") + extra


def test_a_valid_project_passes(project: ProjectDir) -> None:
    project.write("campaigns/drill.yaml", DRILL)
    result = project.run("validate")
    assert result.code == 0, result
    assert result.out == "ok: 1 campaign, 1 recipient, 1 message\n"
    assert result.err == ""


def test_json_output_is_versioned(project: ProjectDir) -> None:
    project.write("campaigns/drill.yaml", DRILL)
    valid = project.run("validate", "--format", "json")
    assert valid.code == 0, valid
    data = json.loads(valid.out)
    assert data["format_version"] == 1
    assert data["valid"] is True
    assert data["problems"] == []
    assert data["campaigns"] == [
        {
            "name": "drill",
            "path": "campaigns/drill.yaml",
            "line": 1,
            "recipients": 1,
            "messages": 1,
            "duplicates_dropped": 0,
        }
    ]

    project.write("campaigns/drill.yaml", DRILL + "sender: AB\n")
    invalid = project.run("validate", "--format", "json")
    assert invalid.code == 1, invalid
    assert "Traceback" not in invalid.output
    data = json.loads(invalid.out)
    assert data["format_version"] == 1
    assert data["valid"] is False
    assert data["problems"] == [
        {
            "path": "campaigns/drill.yaml",
            "line": 5,
            "field": "sender",
            "message": "'AB' must be 3 to 11 characters, letters and digits only",
        }
    ]


def test_the_repository_examples_pass() -> None:
    result = run_cli("-C", str(REPO), "validate")
    assert result.code == 0, result
    assert result.out.endswith("ok: 5 campaigns, 1,209 recipients, 9 messages\n")
    assert "Traceback" not in result.output


def test_malformed_yaml(project: ProjectDir) -> None:
    project.write(
        "campaigns/broken.yaml",
        """
        name: broken
        text: "The quote never closes
        recipients: ["+12025550143"]
        """,
    )
    project.write(
        "campaigns/indent.yaml",
        """
        name: indent
        text: Hello
          recipients: ["+12025550143"]
        """,
    )
    assert_refused(
        project.run("validate"),
        "campaigns/broken.yaml:3: malformed YAML: did not find expected key; fix the syntax there",
        "campaigns/indent.yaml:3: malformed YAML: mapping values are not allowed in this context; "
        "fix the syntax there",
    )


def test_misspelled_campaign_fields_suggest_the_right_one(project: ProjectDir) -> None:
    project.write(
        "campaigns/typo.yaml",
        """
        name: typo
        txet: Hello
        recipients:
          - {phone_number: "+12025550143", frist_name: Ana}
        voice_lang: en-US
        colour: blue
        """,
    )
    assert_refused(
        project.run("validate"),
        "campaigns/typo.yaml:2: txet: unknown field; did you mean 'text'?",
        "campaigns/typo.yaml:4: recipients[0].frist_name: unknown field; "
        "did you mean 'first_name'?",
        "campaigns/typo.yaml:5: voice_lang: unknown field; did you mean 'voice_language'?",
        "campaigns/typo.yaml:6: colour: unknown field; known fields: name, text, template, vars, "
        "recipients, sender, send_at, purpose, voice_gender, voice_language, simulation_mode, "
        "auto_remove_blacklisted_numbers, moved_from, request_id, retry",
    )


def test_misspelled_config_keys_suggest_the_right_one(project: ProjectDir) -> None:
    project.write(
        "runner.yaml",
        """
        default_regoin: US
        defaults:
          purpose: alert
          voice_gendr: female
        varz: {company: ACME}
        """,
    )
    project.write("campaigns/drill.yaml", DRILL)
    assert_refused(
        project.run("validate"),
        "runner.yaml:1: default_regoin: unknown field; did you mean 'default_region'?",
        "runner.yaml:4: defaults.voice_gendr: unknown field; did you mean 'voice_gender'?",
        "runner.yaml:5: varz: unknown field; did you mean 'vars'?",
    )


def test_wrong_types(project: ProjectDir) -> None:
    project.write(
        "campaigns/types.yaml",
        """
        name: 2026
        text: 123
        recipients: "+12025550143"
        ---
        name: types
        text: Hello
        recipients:
          - 12025550143
        simulation_mode: "yes"
        vars: [a, b]
        sender: 12345
        """,
    )
    where = "campaigns/types.yaml"
    assert_refused(
        project.run("validate"),
        f"{where}:1: name: expected a string, got a number; put it in quotes",
        f"{where}:2: text: expected a string, got a number; put it in quotes",
        f"{where}:3: recipients: expected a list, got a string; write one '- item' per line",
        f"{where}:8: recipients[0]: expected a phone number in quotes, a contact mapping or "
        "{file: ...}, got a number; quote phone numbers",
        f"{where}:9: simulation_mode: expected true or false, got a string; "
        "write true or false, without quotes",
        f"{where}:10: vars: expected a mapping, got a list; write one 'key: value' per line",
        f"{where}:11: sender: expected a string, got a number; put it in quotes",
    )


def test_a_document_that_is_not_a_mapping(project: ProjectDir) -> None:
    project.write("campaigns/list.yaml", "- name: drill\n")
    assert_refused(
        project.run("validate"),
        "campaigns/list.yaml:1: expected a campaign (a mapping of fields), got a list",
    )


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("voice_language", "xx-XX", LANGUAGES),
        ("voice_gender", "robot", "male, female"),
        ("purpose", "marketing", "alert, wholesale"),
    ],
)
def test_a_value_outside_its_enum(
    project: ProjectDir, field: str, value: str, allowed: str
) -> None:
    project.write("campaigns/drill.yaml", DRILL + f"{field}: {value}\n")
    assert_refused(
        project.run("validate"),
        f"campaigns/drill.yaml:5: {field}: '{value}' is not allowed; use one of: {allowed}",
    )


def test_an_enum_in_config_defaults(project: ProjectDir) -> None:
    project.write("runner.yaml", "defaults:\n  voice_language: xx-XX\n")
    project.write("campaigns/drill.yaml", DRILL)
    assert_refused(
        project.run("validate"),
        f"runner.yaml:2: defaults.voice_language: 'xx-XX' is not allowed; use one of: {LANGUAGES}",
    )


def test_sender_length_and_characters(project: ProjectDir) -> None:
    senders = ["AB", "ACMEENERGYCO", "ACME-1", "ACMÉ", "AC ME"]
    for index, sender in enumerate(senders):
        project.write(
            f"campaigns/s{index}.yaml",
            drill(f"s{index}", f'sender: "{sender}"\n'),
        )
    project.write("campaigns/ok.yaml", drill("ok") + "sender: ACME2026\n")
    assert_refused(
        project.run("validate"),
        *[
            f"campaigns/s{i}.yaml:5: sender: '{s}' must be 3 to 11 characters, "
            "letters and digits only"
            for i, s in enumerate(senders)
        ],
    )


def test_a_user_written_request_id(project: ProjectDir) -> None:
    project.write("campaigns/drill.yaml", DRILL + "request_id: my-id-1\n")
    assert_refused(
        project.run("validate"),
        "campaigns/drill.yaml:5: request_id: is derived by runner for each batch; remove it",
    )


def test_send_at_needs_an_offset_and_a_real_date(project: ProjectDir) -> None:
    project.write("campaigns/a.yaml", drill("a") + 'send_at: "2027-01-01T10:00:00"\n')
    project.write("campaigns/b.yaml", drill("b") + 'send_at: "2027-02-30T10:00:00+01:00"\n')
    project.write("campaigns/c.yaml", drill("c") + "send_at: tomorrow\n")
    assert_refused(
        project.run("validate"),
        "campaigns/a.yaml:5: send_at: '2027-01-01T10:00:00' needs an ISO 8601 date-time "
        "with an offset, e.g. 2026-12-04T09:00:00+01:00",
        "campaigns/b.yaml:5: send_at: '2027-02-30T10:00:00+01:00' is not a valid date-time; "
        "write it like 2026-12-04T09:00:00+01:00",
        "campaigns/c.yaml:5: send_at: 'tomorrow' needs an ISO 8601 date-time with an offset, "
        "e.g. 2026-12-04T09:00:00+01:00",
    )


def test_a_past_send_at_is_valid_input_and_blocks_the_campaign_in_plan(
    project: ProjectDir, emulator: EmulatorProcess
) -> None:
    """Whether anyone is still to call is the state's to say, and validate reads no state."""
    project.write("campaigns/drill.yaml", DRILL + 'send_at: "2020-01-01T09:00:00+00:00"\n')
    assert project.run("validate").code == 0
    reason = (
        "campaigns/drill.yaml:5: send_at 2020-01-01T09:00:00+00:00 is in the past with 1 "
        "recipient still to call; set a future send_at, or remove it to call them now"
    )
    plan = project.run("plan", "--detailed-exitcode")
    assert plan.code == 2, plan
    assert f"    blocked: {reason}\n" in plan.out
    assert "Plan: 0 campaigns, 0 calls" in plan.out
    assert "Blocked until resolved: drill." in plan.out
    held = json.loads(project.run("plan", "--format", "json").out)["campaigns"][0]["held"]
    assert held == reason
    project.write("campaigns/other.yaml", drill("other"))  # not blocked: it is sent
    apply = project.run("apply", "--auto-approve", "--api-url", emulator.url, env=API_ENV)
    assert apply.code == 1, apply
    assert f"blocked: drill: {reason}" in apply.out
    assert [s["text"] for s in emulator.sends()] == ["The failover drill starts in ten minutes."]


def test_validate_reads_no_state(project: ProjectDir) -> None:
    """A corrupt state, or one in PostgreSQL without psycopg: validate checks the files."""
    project.write("campaigns/drill.yaml", DRILL)
    project.write("runner.state.json", "{ not a state")
    assert project.run("validate").code == 0
    assert project.run("plan").code == 1
    config = (project.root / "runner.yaml").read_text()
    project.write("runner.yaml", config + "project: acme\nstate: postgresql://u:p@127.0.0.1:1/db\n")
    without = {"PYTHONPATH": str(write_psycopg_blocker(project.root.parent))}
    valid = project.run("validate", env=without)
    assert (valid.code, valid.err) == (0, ""), valid
    assert "need psycopg" in project.run("plan", env=without).err


def write_psycopg_blocker(folder: Path) -> Path:
    """A folder that, first on PYTHONPATH, makes `import psycopg` fail as if not installed."""
    package = folder / "no-psycopg" / "psycopg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'psycopg'\", name='psycopg')\n"
    )
    return package.parent


def test_duplicate_campaign_names_across_files(project: ProjectDir) -> None:
    project.write("campaigns/a.yaml", DRILL)
    project.write("campaigns/team/b.yaml", "# the same name again\n" + DRILL.lstrip())
    assert_refused(
        project.run("validate"),
        "campaigns/a.yaml:1: name: 'drill' is also used at campaigns/team/b.yaml:2; "
        "names must be unique, rename one",
        "campaigns/team/b.yaml:2: name: 'drill' is also used at campaigns/a.yaml:1; "
        "names must be unique, rename one",
    )


def test_a_repeated_name_is_reported_in_the_new_file_too(project: ProjectDir) -> None:
    """A new file that sorts before the old one still gets the problem line."""
    project.write("campaigns/old.yaml", DRILL)
    project.write("campaigns/another.yaml", DRILL + "---\n" + DRILL)
    assert_refused(
        project.run("validate"),
        "campaigns/another.yaml:1: name: 'drill' is also used at campaigns/another.yaml:7, "
        "campaigns/old.yaml:1; names must be unique, rename one",
        "campaigns/another.yaml:7: name: 'drill' is also used at campaigns/another.yaml:1, "
        "campaigns/old.yaml:1; names must be unique, rename one",
        "campaigns/old.yaml:1: name: 'drill' is also used at campaigns/another.yaml:1, "
        "campaigns/another.yaml:7; names must be unique, rename one",
    )


def test_text_and_template_are_exclusive_and_one_is_needed(project: ProjectDir) -> None:
    project.write("templates/t.j2", "Hello")
    project.write("campaigns/both.yaml", drill("both") + "template: t.j2\n")
    project.write("campaigns/none.yaml", 'name: none\nrecipients: ["+12025550143"]\n')
    assert_refused(
        project.run("validate"),
        "campaigns/both.yaml:5: template: set either 'text' or 'template', not both; keep one",
        "campaigns/none.yaml:1: text: missing; set text or template in the campaign "
        "or in runner.yaml defaults",
    )


def test_config_defaults_fill_text_and_voice(project: ProjectDir) -> None:
    project.write(
        "runner.yaml",
        """
        defaults:
          text: Shared notice from the defaults.
          purpose: wholesale
          voice_gender: male
          voice_language: en-GB
        """,
    )
    project.write("campaigns/a.yaml", 'name: a\nrecipients: ["+12025550143"]\n')
    result = project.run("render")
    assert result.code == 0, result
    assert "purpose=wholesale, voice_gender=male, voice_language=en-GB" in result.out
    assert "    | Shared notice from the defaults." in result.out


def test_missing_voice_settings_without_defaults(project: ProjectDir) -> None:
    project.write("runner.yaml", "default_region: US\n")
    project.write("campaigns/drill.yaml", DRILL)
    assert_refused(
        project.run("validate"),
        *[
            f"campaigns/drill.yaml:1: {field}: missing; set it in the campaign "
            "or in runner.yaml defaults"
            for field in ("purpose", "voice_gender", "voice_language")
        ],
    )


def test_config_folders_and_region(project: ProjectDir) -> None:
    project.write(
        "runner.yaml",
        """
        default_region: XX
        campaigns: ../elsewhere
        templates: /etc
        pricing: {default: -1, france: 0.05}
        """,
    )
    assert_refused(
        project.run("validate"),
        "runner.yaml:1: default_region: 'XX' is not a known country; "
        "use an ISO 3166 code such as US",
        "runner.yaml:2: campaigns: '../elsewhere' leads outside the project; "
        "use a folder inside it",
        "runner.yaml:3: templates: '/etc' leads outside the project; use a folder inside it",
        "runner.yaml:4: pricing.default: must be at least 0; raise it",
        "runner.yaml:4: pricing.france: is not a known key; use default, a calling code such as "
        '"1", or a region such as US',
    )


def test_problems_in_several_files_are_reported_in_one_run(project: ProjectDir) -> None:
    project.write("campaigns/a_typo.yaml", drill("a") + "voice_lang: en-US\n")
    project.write("campaigns/b_broken.yaml", 'name: b\ntext: "never closed\n')
    project.write(
        "campaigns/c_csv.yaml",
        "name: c\ntext: Hello\nrecipients:\n  - file: contacts/team.csv\n",
    )
    project.write("contacts/team.csv", "phone_number,first_name\n+12025550143,Ana\n555,Ben\n")
    project.write(
        "campaigns/d_template.yaml", 'name: d\ntemplate: t.j2\nrecipients: ["+12025550144"]\n'
    )
    project.write("templates/t.j2", "Hello {{ name")
    project.write(
        "campaigns/e_text.yaml", 'name: e\ntext: "Call 😀"\nrecipients: ["+12025550145"]\n'
    )
    lines = assert_reports(
        project.run("validate"),
        "campaigns/a_typo.yaml:5: voice_lang: unknown field; did you mean 'voice_language'?",
        "campaigns/b_broken.yaml:3: malformed YAML: found unexpected end of stream; "
        "fix the syntax there",
        "contacts/team.csv:3: phone_number: '555' is not a valid phone number; "
        "write it in E.164, e.g. +12015550123",
        "campaigns/d_template.yaml:2: template: template syntax error (t.j2, line 1): "
        "unexpected end of template, expected 'end of print statement'; fix the template",
        "campaigns/e_text.yaml:2: text: 1 character of the rendered text is not in the GSM 03.38 "
        "alphabet (replace or remove it): '😀' (U+1F600) at position 6, no lookalike",
    )
    assert len(lines) == 5
    files = {line.split(":")[0] for line in lines}
    assert files == {
        "campaigns/a_typo.yaml",
        "campaigns/b_broken.yaml",
        "contacts/team.csv",
        "campaigns/d_template.yaml",
        "campaigns/e_text.yaml",
    }


@pytest.mark.parametrize("name", ["campaign", "config", "voice-send"])
def test_schema_command_prints_a_json_schema(project: ProjectDir, name: str) -> None:
    from jsonschema import Draft202012Validator

    result = project.run("schema", name)
    assert result.code == 0, result
    schema = json.loads(result.out)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(f"/{name}.schema.json")


def test_the_providers_languages_are_accepted(project: ProjectDir) -> None:
    voices = [("nl-NL", "male"), ("da-DK", "female"), ("ja-JP", "male"), ("fr-CA", "male")]
    for index, (language, gender) in enumerate(voices):
        project.write(
            f"campaigns/v{index}.yaml",
            drill(f"v{index}", f"voice_language: {language}\nvoice_gender: {gender}\n"),
        )
    result = project.run("validate")
    assert (result.code, result.out) == (0, "ok: 4 campaigns, 4 recipients, 4 messages\n")


def test_a_gender_the_language_does_not_have_is_refused(project: ProjectDir) -> None:
    project.write("campaigns/a.yaml", drill("a", "voice_language: sv-SE\nvoice_gender: male\n"))
    project.write("runner.yaml", BASIC_CONFIG.replace("female", "male"))
    project.write("campaigns/b.yaml", drill("b", "voice_language: ko-KR\n"))
    assert_refused(
        project.run("validate"),
        "campaigns/a.yaml:6: voice_gender: 'male' is not a voice of sv-SE, which has female "
        "only; use female, or another voice_language",
        "campaigns/b.yaml:5: voice_language: 'male' is not a voice of ko-KR, which has female "
        "only; use female, or another voice_language",
    )
    project.write("runner.yaml", BASIC_CONFIG.replace("en-US", "en-NZ").replace("female", "male"))
    assert_refused(
        project.run("validate"),
        "runner.yaml:4: defaults.voice_gender: 'male' is not a voice of en-NZ, which has female "
        "only; use female, or another voice_language",
    )
