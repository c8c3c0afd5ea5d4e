"""Fuzzing: random and mutated campaigns, YAML garbage, hostile templates and CSV files.

For every input, `validate`, `plan` and `apply` (against a real emulator on loopback) end with
exit 0 or 1, no traceback, within a time bound. When validate refuses the input, plan and apply
refuse it too, the emulator receives nothing, and no file of the project or its state changes.
When validate accepts it, apply delivers it. Most examples run in-process through the `runner`
entry point; a few go through real processes.
"""

from __future__ import annotations

import json
import shutil
import string
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import figures
import pytest
import yaml
from conftest import API_ENV, BASIC_CONFIG, Result, run_cli
from hostile import assert_clean, digest_files, run_in_process
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.emulator import Emulator, EmulatorOptions

BASE = 'name: base\ntext: "Delivered before the fuzz."\nrecipients: ["+12025550143"]\n'
TEXT = (
    "text: |\n"
    "  Hello {{ recipient.first_name | default('there') }}, {{ what }} starts at {{ hour }}.\n"
)
VALID = (
    "name: fuzz\n"
    f"{TEXT}"
    "vars: {what: maintenance, hour: 9 PM}\n"
    "recipients:\n"
    '  - "+12025550187"\n'
    "  - {phone_number: '+12025550144', first_name: Ana}\n"
    "  - {file: contacts/fuzz.csv}\n"
    "sender: ACME\n"
    'send_at: "2031-12-04T09:00:00+01:00"\n'
    "purpose: wholesale\n"
    "voice_gender: male\n"
    "voice_language: en-GB\n"
)
CSV = "phone_number,first_name\n+12025550111,Bo\n(202) 555-0122,Cy\n"
FIELDS = [
    "name", "text", "template", "vars", "recipients", "sender", "send_at", "purpose",
    "voice_gender", "voice_language", "simulation_mode", "auto_remove_blacklisted_numbers",
    "request_id", "recipient", "file", "phone_number", "",
]  # fmt: skip
JINJA = [
    "{{", "}}", "{%", "%}", "{#", "#}", " ", "x", "recipient", ".", "__class__", "__globals__",
    "first_name", "phone_number", "|", "upper", "join", "attr('__class__')", "format", "*",
    "**", "%", "~", "10**9", "9", "'a'", "(", ")", "[", "]", "range(", "for i in", "endfor",
    "if", "endif", "macro m()", "endmacro", "m()", "include 'x.j2'", "set y =", "y", "lipsum",
    "cycler", "self", "default(", "\n", "é", "€", "\x00", "what",
]  # fmt: skip
CELLS = [
    "+12025550143", "2025550187", "(202) 555-0199", "+33612345678", "", " ", "=cmd|' /C calc'!A0",
    "=SUM(1,2)", "@x", '"', '""', ",", "\x00", "\ufeff", "\r", "é", "a" * 300, "+1" * 40,
    "0", "-1", "1e9", "None", "phone_number",
]  # fmt: skip
COMMON = {
    "max_examples": 100,
    "derandomize": True,
    "deadline": None,
    "database": None,
    "suppress_health_check": [
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=40)
    | st.sampled_from(["+12025550143", "en-US", "alert", "male", "{{ x }}", "contacts/fuzz.csv"]),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=15,
)
random_documents = st.dictionaries(
    st.sampled_from(FIELDS) | st.text(max_size=10), json_values, max_size=12
).map(lambda d: yaml.safe_dump(d, allow_unicode=True))
mutated_documents = st.lists(
    st.tuples(
        st.integers(0, len(VALID)), st.integers(0, 6), st.characters(codec="utf-8") | st.just("\n")
    ),
    min_size=1,
    max_size=6,
).map(lambda edits: mutate(VALID, edits))
yaml_garbage = st.text(alphabet=st.characters(codec="utf-8"), max_size=300) | st.text(
    alphabet=":-[]{}&*!|>'\"#%@`, \n\t?", max_size=200
)
templates = st.lists(st.sampled_from(JINJA), max_size=25).map("".join)
csv_files = st.lists(
    st.lists(st.sampled_from(CELLS) | st.text(string.printable, max_size=12), max_size=4),
    max_size=8,
).map(lambda rows: "\n".join(",".join(row) for row in [["phone_number", "first_name"], *rows]))


def mutate(text: str, edits: list[tuple[int, int, str]]) -> str:
    """Delete, insert, replace or duplicate a character, or cut the text: like a bad merge."""
    for position, kind, char in edits:
        at = min(position, len(text))
        if kind == 0:
            text = text[:at] + text[at + 1 :]
        elif kind in (1, 2):
            text = text[:at] + char + text[at:]
        elif kind == 3:
            text = text[:at] + char + text[at + 1 :]
        elif kind == 4:
            text = text[:at] + text[at : at + 20] + text[at:]
        elif kind == 5:
            text = text[:at]
        else:
            text = text[:at] + "\n" + text[at:]
    return text


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(EmulatorOptions(credit=1e9)) as running:
        yield running


@pytest.fixture(scope="module")
def seeded_state(tmp_path_factory: pytest.TempPathFactory, emulator: Emulator) -> bytes:
    """A state in which `base` was delivered: every fuzzed project starts from it."""
    root = tmp_path_factory.mktemp("seed")
    write_project(root, {})
    result = run_in_process(
        "-C", str(root), "apply", "--auto-approve", "--api-url", emulator.url, env=API_ENV
    )
    assert result.code == 0, result
    return (root / "runner.state.json").read_bytes()


def write_project(root: Path, files: dict[str, str | bytes], state: bytes | None = None) -> None:
    contents: dict[str, str | bytes] = {
        "runner.yaml": BASIC_CONFIG,
        "campaigns/base.yaml": BASE,
        "contacts/fuzz.csv": CSV,
        "templates/x.j2": "included {{ what | default('') }}",
        **files,
    }
    for name, content in contents.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", errors="surrogatepass")
    if state is not None:
        (root / "runner.state.json").write_bytes(state)


Runner = Callable[..., Result]


def check_input(
    files: dict[str, str | bytes], state: bytes, emulator: Emulator, run: Runner = run_in_process
) -> None:
    folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
    try:
        write_project(folder, files, state)
        check_project(folder, emulator, run)
    finally:
        shutil.rmtree(folder)
    figures.add("fuzzed inputs")


def check_project(root: Path, emulator: Emulator, run: Runner) -> None:
    validated = run("-C", str(root), "validate")
    assert_clean(validated)
    before, sent = digest_files(root), len(emulator.sends())
    planned = run("-C", str(root), "plan")
    assert_clean(planned)
    assert planned.code == validated.code, (validated, planned)
    applied = run(
        "-C", str(root), "apply", "--auto-approve", "--api-url", emulator.url, env=API_ENV
    )
    assert_clean(applied)
    if validated.code == 1:
        assert applied.code == 1, applied
        assert len(emulator.sends()) == sent, "a request went out for invalid input"
        assert digest_files(root) == before, "a refused run changed a file"
        figures.add("fuzzed inputs refused")
    else:
        assert applied.code == 0, applied  # what validate accepts, the API accepts


@settings(**COMMON)
@given(document=random_documents)
def test_random_documents(document: str, seeded_state: bytes, emulator: Emulator) -> None:
    check_input({"campaigns/fuzz.yaml": document}, seeded_state, emulator)


@settings(**{**COMMON, "max_examples": 200})
@given(document=mutated_documents)
def test_mutated_documents(document: str, seeded_state: bytes, emulator: Emulator) -> None:
    check_input({"campaigns/fuzz.yaml": document}, seeded_state, emulator)


@settings(**COMMON)
@given(garbage=yaml_garbage | st.binary(max_size=300))
def test_yaml_garbage(garbage: str | bytes, seeded_state: bytes, emulator: Emulator) -> None:
    check_input({"campaigns/fuzz.yaml": garbage}, seeded_state, emulator)


@settings(**{**COMMON, "max_examples": 150})
@given(source=templates, as_file=st.booleans())
def test_hostile_templates(
    source: str, as_file: bool, seeded_state: bytes, emulator: Emulator
) -> None:
    reference = "template: t.j2" if as_file else f"text: {json.dumps(source)}"
    document = VALID.replace(TEXT, reference + "\n")
    check_input({"campaigns/fuzz.yaml": document, "templates/t.j2": source}, seeded_state, emulator)


@settings(**COMMON)
@given(csv=csv_files | st.binary(max_size=200))
def test_hostile_csv_files(csv: str | bytes, seeded_state: bytes, emulator: Emulator) -> None:
    check_input({"campaigns/fuzz.yaml": VALID, "contacts/fuzz.csv": csv}, seeded_state, emulator)


def run_process(*args: str, env: dict[str, str] | None = None) -> Result:
    try:
        return run_cli(*args, env=env, timeout=60)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"runner {' '.join(args)} hung") from e


@settings(**{**COMMON, "max_examples": 10})
@given(
    files=st.one_of(
        mutated_documents.map(lambda d: {"campaigns/fuzz.yaml": d}),
        yaml_garbage.map(lambda d: {"campaigns/fuzz.yaml": d}),
        csv_files.map(lambda c: {"campaigns/fuzz.yaml": VALID, "contacts/fuzz.csv": c}),
    )
)
def test_through_real_processes(
    files: dict[str, str | bytes], seeded_state: bytes, emulator: Emulator
) -> None:
    check_input(files, seeded_state, emulator, run_process)


def test_the_valid_document_is_valid(
    tmp_path: Path, seeded_state: bytes, emulator: Emulator
) -> None:
    """The mutations start from a document that works: otherwise they test nothing."""
    write_project(tmp_path, {"campaigns/fuzz.yaml": VALID}, seeded_state)
    result = run_in_process("-C", str(tmp_path), "validate")
    assert result.out.strip() == "ok: 2 campaigns, 5 recipients, 5 messages", result
