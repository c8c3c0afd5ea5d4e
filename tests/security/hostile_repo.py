"""A whole hostile pull request's project, laid out in tmp_path, and the scan that judges a run.

Each `trap_*` method plants one way a PR could try to read a secret, hang the job or write
outside the project; add yours beside them. Symlinks are made here, at test time: a committed
link to `/` would send pytest and ruff walking the whole disk.

Secrets live where a CI job keeps them: the API key and login and a database password in the
environment, a token in `.git/config` (as actions/checkout writes it), and files beside the
project. A run passes when none of them shows in its output or in any file it wrote, and
nothing outside the project changed.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from conftest import BASIC_CONFIG, Result, run_cli

SECRETS = {
    "OCTOPUSH_API_KEY": "sk-live-4f9a1c2e7b3d5e8f",
    "OCTOPUSH_API_LOGIN": "ops-login-7c1e9a2b@acme.example",
    "PGPASSWORD": "pg-pass-8d2f6b1a9c3e",
    "GITHUB_TOKEN": "ghs_Q1w2E3r4T5y6U7i8O9p0",
}
GIT_TOKEN = "eC1hY2Nlc3MtdG9rZW46Z2hzX1NFQ1JFVA=="  # the extraheader actions/checkout writes
OUTSIDE_SECRET = "OUTSIDE-SECRET-5b7d9f1e"
ONE = '["+12025550143"]'


class HostileRepo:
    """The project (`root`), its `.git`, and a folder beside it (`outside`) holding secrets."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.root = tmp_path / "proj"
        self.outside = tmp_path / "outside"
        self.outside.mkdir()
        (self.outside / "secret.txt").write_text(OUTSIDE_SECRET + "\n")
        (self.outside / "secret.csv").write_text(f"phone_number\n+1202555{OUTSIDE_SECRET}\n")
        (self.outside / "victim").write_text("")  # what a planted link would write into
        self.write("runner.yaml", BASIC_CONFIG)
        self.write("campaigns/ok.yaml", f"name: ok\ntext: Hello.\nrecipients: {ONE}\n")
        self.write(
            ".git/config",
            f'[http "https://github.com/"]\n\textraheader = AUTHORIZATION: basic {GIT_TOKEN}\n',
        )

    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def link(self, name: str, target: str | Path) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)

    def campaign(self, name: str, body: str) -> None:
        self.write(f"campaigns/{name}.yaml", f"name: {name}\n{body}recipients: {ONE}\n")

    def include(self, name: str, template: str, after: str = "") -> None:
        """A campaign whose text is `template`, or the 40 characters after `after` in it (what
        an attacker would pick out: NUL separators and other characters would stop the text)."""
        text = f'{{% set s %}}{{% include "{template}" %}}{{% endset %}}'
        text += (
            f'{{{{ s.split("{after}")[1][:40] | replace("\\x00", " ") }}}}' if after else "{{ s }}"
        )
        self.campaign(name, f"text: |\n  {text}\n")

    # traps: each one is a hole that was open once ---------------------------------------
    def trap_default_templates_to_root(self) -> None:
        """`templates -> /`: the default folder, unchecked, opened the whole disk."""
        self.link("templates", "/")
        self.include("environ", "proc/self/environ", after="OCTOPUSH_API_KEY=")

    def trap_dot_git_through_templates(self) -> None:
        """`templates: .` made `.git/config` (the job's token) a template."""
        self.write("runner.yaml", BASIC_CONFIG + "templates: .\n")
        self.include("gitconfig", ".git/config", after="basic ")
        self.include("gitlink", "templates-link.j2", after="basic ")
        self.link("templates-link.j2", ".git/config")

    def trap_dot_folders_as_campaigns(self) -> None:
        """A campaign file linked into a dot-folder, or kept in one under campaigns/."""
        self.write(
            ".drafts/secret.yaml", f"name: drafts\ntext: {OUTSIDE_SECRET}\nrecipients: {ONE}\n"
        )
        self.link("campaigns/drafts.yaml", "../.drafts/secret.yaml")
        self.write(
            "campaigns/.hidden/secret.yaml",
            (self.root / ".drafts/secret.yaml").read_text().replace("drafts", "hidden"),
        )

    def trap_dot_git_as_contacts(self) -> None:
        """`.git/config` as a contact list, or as a campaign file."""
        self.link("contacts/git.csv", "../.git/config")
        self.link("campaigns/git.yaml", "../.git/config")
        files = (".git/config", "contacts/../.git/config", "contacts/git.csv")
        self.contacts("gitcsv", *files)

    def contacts(self, name: str, *files: str) -> None:
        items = "".join(f'  - {{file: "{f}"}}\n' for f in files)
        self.write(f"campaigns/{name}.yaml", f"name: {name}\ntext: Hi\nrecipients:\n{items}")

    def trap_links_out(self) -> None:
        self.write("templates/fine.j2", "fine")
        self.link("templates/out.j2", self.outside / "secret.txt")
        self.link("contacts/out.csv", self.outside / "secret.csv")
        self.link("campaigns/out.yaml", self.outside / "secret.txt")
        self.campaign("tplout", "template: out.j2\n")
        self.contacts("csvout", "contacts/out.csv")

    def trap_endless_reads(self) -> None:
        """A FIFO, a device and a huge file as templates: each read would never end."""
        self.write("templates/fine.j2", "fine")
        os.mkfifo(self.root / "templates/fifo.j2")
        self.link("templates/zero.j2", "/dev/zero")
        with (self.root / "templates/huge.j2").open("wb") as f:
            f.truncate(1 << 30)  # sparse: 1 GiB to read, nothing on disk
        for name in ("fifo", "zero", "huge"):
            self.campaign(name, f"template: {name}.j2\n")

    def trap_nul_in_names(self) -> None:
        self.write("templates/fine.j2", "fine")
        self.contacts("nul", "contacts/a\\0b.csv")
        self.campaign("nultemplate", 'template: "a\\0b.j2"\n')

    def trap_write_links(self) -> None:
        """Links where runner creates files: each one once overwrote its target."""
        self.link(".plan.json.tmp", ".git/config")
        self.link("linked-plan.json", self.outside / "victim")
        self.link("runner.state.json.lock", self.outside / "victim")
        self.link("runner.state.json.backup", self.outside / "victim")

    def trap_markup_and_escapes(self) -> None:
        """Markup and terminal escapes from a folder name, a text and a crafted state file: a
        valid project, so its plan is printed and must render as runner meant it."""
        from crafted import ESC_LINK, FAKE_MARKDOWN, FAKE_NAME, write_crafted_state

        folder = "x```\n\n# All checks passed\n<img src=x> @admins [a](e.example) ![i](i.png)\n```"
        text = "Hi.\n# All checks passed\n<img src=x onerror=alert(1)>\n@admins ![p](https://e.example/p.png)"
        self.write(
            f"campaigns/{folder}/notice.yaml",
            f"name: notice\ntext: {json.dumps(text)}\nrecipients: {ONE}\n",
        )
        self.write(
            f"campaigns/{ESC_LINK}/esc.yaml", f"name: esc\ntext: Hello.\nrecipients: {ONE}\n"
        )
        write_crafted_state(self, "ok", FAKE_MARKDOWN, FAKE_NAME)  # type: ignore[arg-type]

    def trap_costly_templates(self) -> None:
        """Templates that cost minutes and gigabytes to compile, and one that differs per run."""
        self.campaign("parens", f'text: "{{{{ {"(" * 3000}1{")" * 3000} }}}}"\n')
        self.campaign("ifs", 'text: "' + "{% if 1 %}" * 2000 + "x" + "{% endif %}" * 2000 + '"\n')
        self.write("templates/big.j2", "{{x}}" * 200_000)
        self.campaign("big", "template: big.j2\nvars: {x: 1}\n")
        self.campaign("random", 'text: "{{ [1, 2, 3] | random }}"\n')
        self.campaign("hugeint", f'text: "{{{{ n }}}}"\nvars: {{n: {"9" * 5000}}}\n')

    # judging -----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, str]:
        """Every file under tmp_path, by path and content (links by their target)."""
        found = {}
        for path in sorted(self.tmp.rglob("*")):
            if path.is_symlink():
                found[str(path)] = "-> " + os.readlink(path)
            elif path.is_file():
                found[str(path)] = hashlib.sha256(read_plainly(path)).hexdigest()
        return found

    def run(self, *args: str) -> Result:
        result = run_cli("-C", str(self.root), *args, env=SECRETS, timeout=60)
        assert result.code in (0, 1), result
        assert "Traceback" not in result.output, result
        assert "internal error" not in result.output, result
        return result


def secret_values() -> list[str]:
    return [*SECRETS.values(), GIT_TOKEN, OUTSIDE_SECRET]


def read_plainly(path: Path) -> bytes:
    """A regular file's bytes; a FIFO or a 1 GiB trap stands for itself."""
    if not path.is_file() or path.stat().st_size > 1 << 20:
        return f"<{path.stat().st_size} bytes>".encode()
    return path.read_bytes()


def assert_no_secret(text: str, where: str) -> None:
    for secret in secret_values():
        assert secret not in text, f"{secret!r} leaked into {where}"


def assert_nothing_leaked(repo: HostileRepo, before: dict[str, str], result: Result) -> None:
    """No secret in the output or in a file the run wrote; nothing outside the project changed."""
    assert_no_secret(result.output, "the output")
    after = repo.snapshot()
    changed = [p for p in after if before.get(p) != after[p]]
    project = str(repo.root) + os.sep
    outside = [
        p for p in changed + [p for p in before if p not in after] if not p.startswith(project)
    ]
    assert not outside, f"changed outside the project: {outside}"
    for path in changed:
        assert_no_secret(read_plainly(Path(path)).decode(errors="replace"), path)
