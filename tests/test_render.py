"""`runner render` and the render stage: texts, templates, variables and batches."""

from __future__ import annotations

import json
import os

import pytest
from conftest import ProjectDir
from expect import assert_refused

GSM = "1 character of the rendered text is not in the GSM 03.38 alphabet (replace or remove it)"


def campaign(name: str, text: str, *numbers: str, extra: str = "") -> str:
    listed = ", ".join(f'"{n}"' for n in numbers or ("+12025550143",))
    return f"name: {name}\ntext: {text}\nrecipients: [{listed}]\n{extra}"


def test_render_masks_numbers_unless_asked(project: ProjectDir) -> None:
    project.write(
        "campaigns/drill.yaml",
        campaign("drill", "Drill at noon.", "+12025550143", "+13125550199"),
    )
    masked = project.run("render")
    assert masked.code == 0, masked
    assert masked.out.splitlines() == [
        "drill  (campaigns/drill.yaml:1)",
        "  2 recipients, 1 message, 1 batch",
        f"  message 1 of 1 [{masked.out.split('[')[1][:12]}]: 2 recipients, 1 batch; "
        "purpose=alert, voice_gender=female, voice_language=en-US",
        "    | Drill at noon.",
        "    to: +1 2••-•••-••43, +1 3••-•••-••99",
    ]
    assert "5550143" not in masked.output and "5550199" not in masked.output

    shown = project.run("render", "--show-recipients")
    assert shown.code == 0, shown
    assert "    to: +12025550143, +13125550199\n" in shown.out


def test_duplicates_are_dropped_and_reported(project: ProjectDir) -> None:
    project.write("contacts/team.csv", "phone_number\n(202) 555-0143\n+1 202 555 0144\n")
    project.write(
        "campaigns/dups.yaml",
        """
        name: dups
        text: Hello
        recipients:
          - "+12025550143"
          - {phone_number: "202-555-0143", first_name: Ana}
          - file: contacts/team.csv
        """,
    )
    notes = (
        "campaigns/dups.yaml:5: recipients: +1 2••-•••-••43 is already listed at "
        "campaigns/dups.yaml:4; dups calls it once\n"
        "contacts/team.csv:2: phone_number: +1 2••-•••-••43 is already listed at "
        "campaigns/dups.yaml:4; dups calls it once\n"
        "campaigns/dups.yaml:1: recipients: 2 duplicate numbers dropped\n"
    )
    result = project.run("render")
    assert result.code == 0, result
    assert result.err == notes
    assert "  2 recipients (2 duplicates dropped), 1 message, 1 batch\n" in result.out
    validate = project.run("validate")
    assert validate.out == notes + "ok: 1 campaign, 2 recipients, 1 message\n"


def test_duplicates_in_a_csv_are_located_at_their_rows(project: ProjectDir) -> None:
    """The first ten, at their CSV rows (blank lines counted), then how many in all."""
    rows = [f"+1202555{i:04d},Person {i}" for i in range(30)]
    project.write("contacts/all.csv", "\n".join(["phone_number,first_name", *rows, "", *rows]))
    project.write(
        "campaigns/all.yaml", "name: all\ntext: Hello\nrecipients:\n  - file: contacts/all.csv\n"
    )
    validate = project.run("validate")
    assert validate.code == 0, validate
    assert validate.out.splitlines() == [
        *(
            f"contacts/all.csv:{33 + i}: phone_number: +1 2••-•••-••{i:02d} is already listed "
            f"at contacts/all.csv:{2 + i}; all calls it once"
            for i in range(10)
        ),
        "campaigns/all.yaml:1: recipients: 30 duplicate numbers dropped",
        "ok: 1 campaign, 30 recipients, 1 message",
    ]


def test_1200_numbers_from_a_csv_make_3_batches(project: ProjectDir) -> None:
    npas = [201, 202, 203, 205, 206, 207, 208, 209, 210, 212, 213, 214]
    numbers = [f"+1{npa}55501{i:02d}" for npa in npas for i in range(100)]
    project.write("contacts/all.csv", "phone_number\n" + "\n".join(numbers) + "\n")
    project.write(
        "campaigns/outage.yaml",
        "name: outage\ntext: Power is back.\nrecipients:\n  - file: contacts/all.csv\n",
    )
    result = project.run("render")
    assert result.code == 0, result
    assert "  1,200 recipients, 1 message, 3 batches\n" in result.out
    assert "1,200 recipients, 3 batches" in result.out
    assert "and 1,190 more" in result.out


def test_personal_texts_group_recipients_by_identical_words(project: ProjectDir) -> None:
    project.write(
        "contacts/oncall.csv",
        "phone_number,first_name\n+12025550143,Ana\n+12025550144,Ben\n+12025550145,Ana\n"
        "+12025550146,\n",
    )
    project.write(
        "campaigns/oncall.yaml",
        campaign(
            "oncall",
            "\"Hi {{ recipient.first_name | default('there') }}\"",
            extra="recipients: [{file: contacts/oncall.csv}]\n",
        ).replace('recipients: ["+12025550143"]\n', ""),
    )
    result = project.run("render", "--show-recipients")
    assert result.code == 0, result
    assert "  4 recipients, 3 messages, 3 batches\n" in result.out
    body = result.out.split("\n", 2)[2]
    assert "    | Hi Ana\n    to: +12025550143, +12025550145\n" in body
    assert "    | Hi Ben\n    to: +12025550144\n" in body
    assert "    | Hi there\n    to: +12025550146\n" in body


def test_vars_override_in_documented_order(project: ProjectDir) -> None:
    project.write(
        "runner.yaml",
        """
        default_region: US
        defaults: {purpose: alert, voice_gender: female, voice_language: en-US}
        vars: {a: config, b: config, c: config, d: config, e: config}
        """,
    )
    project.write(
        "campaigns/vars.yaml",
        campaign(
            "vars",
            '"{{ a }} {{ b }} {{ c }} {{ d }} {{ e }}"',
            extra="vars: {b: campaign, c: campaign, d: campaign, e: campaign}\n",
        ),
    )
    first = project.write("vars/first.yaml", "c: first-file\nd: first-file\ne: first-file\n")
    second = project.write("vars/second.yaml", "d: second-file\ne: second-file\n")
    result = project.run(
        "render",
        "--var-file",
        str(first),
        "--var-file",
        str(second),
        "--var",
        "e=cli-1",
        "--var",
        "e=cli-2",
    )
    assert result.code == 0, result
    assert "    | config campaign first-file second-file cli-2\n" in result.out
    plain = project.run("render")
    assert "    | config campaign campaign campaign campaign\n" in plain.out


def test_bad_var_options(project: ProjectDir) -> None:
    project.write("campaigns/a.yaml", campaign("a", "Hello"))
    project.write("vars.yaml", "- not\n- a mapping\n")
    result = project.run(
        "validate", "--var", "novalue", "--var-file", str(project.root / "vars.yaml")
    )
    assert result.code == 1, result
    assert "Traceback" not in result.output
    assert f"{project.root / 'vars.yaml'}:1: expected a mapping of variables" in result.err
    assert "--var: 'novalue' is not KEY=VALUE" in result.err


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('""', "text: is empty; write the message"),
        ('"   "', "text: renders to an empty message; write some text"),
        ("\"{{ '' }}\"", "text: renders to an empty message; write some text"),
        (
            "\"{{ 'Hello. ' * 200 }}\"",
            "text: renders to 1399 characters, more than 1224; shorten it",
        ),
        (
            "\"{{ 'x' * 1225 }}\"",
            "text: renders to 1225 characters, more than 1224; shorten it",
        ),
    ],
    ids=["empty", "blank", "renders-empty", "long-phrase", "1225"],
)
def test_empty_or_too_long_texts(project: ProjectDir, text: str, problem: str) -> None:
    project.write("campaigns/t.yaml", campaign("t", text))
    assert_refused(project.run("validate"), f"campaigns/t.yaml:2: {problem}")


def test_exactly_1224_characters_pass(project: ProjectDir) -> None:
    project.write("campaigns/t.yaml", campaign("t", "\"{{ 'x' * 1224 }}\""))
    result = project.run("validate")
    assert result.code == 0, result


def test_non_gsm_characters_are_named_with_their_position(project: ProjectDir) -> None:
    project.write("campaigns/emoji.yaml", campaign("emoji", '"Power is back 🎉 enjoy"'))
    project.write("campaigns/quote.yaml", campaign("quote", "It’s back"))
    project.write(
        "campaigns/var.yaml",
        campaign("var", '"Hello {{ name }}!"', extra="vars: {name: Zoë}\n"),
    )
    project.write(
        "campaigns/fine.yaml",
        campaign("fine", '"Ça coûte 5 € [approx] {ok} ~ Ñ ß"'.replace("û", "u")),
    )
    assert_refused(
        project.run("validate"),
        f"campaigns/emoji.yaml:2: text: {GSM}: '🎉' (U+1F389) at position 15, no lookalike",
        f"campaigns/quote.yaml:2: text: {GSM}: '’' (U+2019) at position 3, use \"'\"",
        f"campaigns/var.yaml:2: text: {GSM}: 'ë' (U+00EB) at position 9, use 'e'",
    )


def test_every_non_gsm_character_is_listed_with_a_suggestion(project: ProjectDir) -> None:
    text = "Don’t panic… the outage – 10\u00a0pm – is over ☃. It’s “fixed”.\u200b"
    project.write("campaigns/paste.yaml", campaign("paste", json.dumps(text)))
    assert_refused(
        project.run("validate"),
        "campaigns/paste.yaml:2: text: 10 characters of the rendered text are not in the "
        "GSM 03.38 alphabet (replace or remove them): '’' (U+2019) at positions 4, 48, "
        "use \"'\"; '…' (U+2026) at position 12, use '...'; '–' (U+2013) at positions 25, 33, "
        "use '-'; U+00A0 at position 29, use ' '; '☃' (U+2603) at position 43, no lookalike; "
        "'“' (U+201C) at position 51, use '\"'; '”' (U+201D) at position 57, use '\"'; "
        "U+200B at position 59, invisible, remove it",
    )
    project.write("campaigns/paste.yaml", campaign("paste", json.dumps("’" * 2000)))
    assert_refused(
        project.run("validate"),
        "campaigns/paste.yaml:2: text: renders to 2000 characters, more than 1224; shorten it",
    )
    project.write("campaigns/paste.yaml", campaign("paste", json.dumps("’" * 1000)))
    assert_refused(
        project.run("validate"),
        "campaigns/paste.yaml:2: text: 1,000 characters of the rendered text are not in the "
        "GSM 03.38 alphabet (replace or remove them): '’' (U+2019) at positions 1, 2, 3, 4, 5 "
        'and 995 more, use "\'"',
    )


def test_undefined_variables(project: ProjectDir) -> None:
    project.write("campaigns/a.yaml", campaign("a", '"Hello {{ first_name }}"'))
    project.write(
        "campaigns/b.yaml",
        campaign("b", '"Hello {{ recipient.param2 }}"', "+12025550143"),
    )
    assert_refused(
        project.run("validate"),
        "campaigns/a.yaml:2: text: 'first_name' is undefined; "
        "define it in vars, runner.yaml vars or --var",
        "campaigns/b.yaml:2: text: 'dict object' has no attribute 'param2'; give it a default, "
        "e.g. {{ value | default('') }} (recipient +1 2••-•••-••43)",
    )


def test_template_syntax_errors(project: ProjectDir) -> None:
    project.write("templates/broken.j2", "Hi {% if x %}")
    project.write("campaigns/a.yaml", campaign("a", '"Hi {{ name"'))
    project.write(
        "campaigns/b.yaml", "name: b\ntemplate: broken.j2\nrecipients: ['+12025550143']\n"
    )
    project.write("campaigns/c.yaml", campaign("c", "\"{% include 'broken.j2' %}\""))
    project.write(
        "campaigns/d.yaml", "name: d\ntemplate: missing.j2\nrecipients: ['+12025550143']\n"
    )
    (project.root / "templates/latin.j2").write_bytes(b"Caf\xe9")
    project.write("campaigns/e.yaml", "name: e\ntemplate: latin.j2\nrecipients: ['+12025550143']\n")
    assert_refused(
        project.run("validate"),
        "campaigns/a.yaml:2: text: template syntax error (line 1): unexpected end of template, "
        "expected 'end of print statement'; fix the template",
        "campaigns/b.yaml:2: template: template syntax error (broken.j2, line 1): "
        "Unexpected end of template. Jinja was looking for the following tags: 'elif' or 'else' "
        "or 'endif'. The innermost block that needs to be closed is 'if'; fix the template",
        "campaigns/c.yaml:2: text: template syntax error (broken.j2, line 1): "
        "Unexpected end of template. Jinja was looking for the following tags: 'elif' or 'else' "
        "or 'endif'. The innermost block that needs to be closed is 'if'; fix the template",
        "campaigns/d.yaml:2: template: template 'missing.j2' not found in templates/; "
        "create it or fix the name",
        "campaigns/e.yaml:2: template: a template is not UTF-8 text; save it as UTF-8",
    )


@pytest.mark.parametrize("style", ["dotdot", "absolute", "symlink"])
def test_templates_and_includes_cannot_leave_the_templates_folder(
    project: ProjectDir, style: str
) -> None:
    secret = project.root.parent / "secret.j2"
    secret.write_text("the secret")
    project.write("templates/ok.j2", "fine")
    name = {"dotdot": "../../secret.j2", "absolute": str(secret), "symlink": "link.j2"}[style]
    if style == "symlink":
        os.symlink(secret, project.root / "templates/link.j2")
    project.write("campaigns/t.yaml", f"name: t\ntemplate: {name}\nrecipients: ['+12025550143']\n")
    project.write("campaigns/i.yaml", campaign("i", f"\"{{% include '{name}' %}}\""))
    outside = f"template '{name}' leads outside templates/; keep templates inside it"
    assert_refused(
        project.run("validate"),
        f"campaigns/t.yaml:2: template: {outside}",
        f"campaigns/i.yaml:2: text: {outside}",
    )
