"""The markdown plan is a PR comment: nothing from the files or the state may become markup.

A folder name with a backtick run, a text, and a crafted state's campaign name and old text
try to close the ```diff block, the table cell or the <summary>, then render a heading, HTML,
an @mention, an image, a link and a fake "All checks passed". The comment is parsed with a
CommonMark parser (markdown-it-py, with GFM tables) and every token checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from conftest import ProjectDir
from crafted import FAKE_MARKDOWN, FAKE_NAME, NUMBER, write_crafted_state

markdown_it = pytest.importorskip("markdown_it")

OUR_TAGS = re.compile(r"</?(details|summary|code)>")
MENTION = re.compile(r"(?<![\w`])@[A-Za-z0-9]")
# GSM 03.38 has no backtick, so a text cannot close a fence; a folder name and the state can
TEXT = (
    "Hi.\n# All checks passed\n<img src=x onerror=alert(1)>\n@admins ![p](https://e.example/p.png)"
)
FOLDER = "x```\n\n# All checks passed\n<img src=x> @admins [a](e.example) ![i](i.png)\n```"


def tokens(markdown: str) -> Iterator[markdown_it.token.Token]:
    parser = markdown_it.MarkdownIt("commonmark").enable("table")
    for token in parser.parse(markdown):
        yield token
        yield from token.children or []


def assert_inert(markdown: str) -> None:
    """One heading (ours), our HTML tags only, no link, image or @mention outside code."""
    found = list(tokens(markdown))
    headings = [t for t in found if t.type == "heading_open"]
    assert len(headings) == 1, [t.map for t in headings]
    for token in found:
        assert token.type not in ("link_open", "image", "html_inline"), token
        if token.type == "html_block":  # <details><summary><code>...</code>: ...</summary>
            outside_code = re.sub(r"<code>.*?</code>", "", token.content, flags=re.DOTALL)
            assert "<" not in OUR_TAGS.sub("", outside_code), token.content
            assert not MENTION.search(outside_code), token.content
        if token.type == "text":  # text tokens are outside code by construction
            assert not MENTION.search(token.content), token.content
            assert "checks passed" not in token.content, token.content
    rows = [t for t in found if t.type == "tr_open"]
    cells = [t for t in found if t.type in ("td_open", "th_open")]
    assert len(cells) == 6 * len(rows), "a name split a table row"


def test_hostile_folder_text_and_state_stay_inside_code(project: ProjectDir) -> None:
    project.write(
        f"campaigns/{FOLDER}/notice.yaml",
        f'name: notice\ntext: {json.dumps(TEXT)}\nrecipients: ["{NUMBER}"]\n',
    )
    project.write("campaigns/plain.yaml", f'name: plain\ntext: "Hi."\nrecipients: ["{NUMBER}"]\n')
    write_crafted_state(project, "plain", FAKE_MARKDOWN, FAKE_NAME)
    result = project.run("plan", "--format", "markdown")
    assert result.code == 0, result
    assert "changed" in result.out and "campaign removed" in result.out  # all three reached it
    assert_inert(result.out)


@pytest.mark.parametrize("backticks", [3, 4, 10])
def test_a_fence_is_longer_than_any_backtick_run(project: ProjectDir, backticks: int) -> None:
    run = "`" * backticks
    campaign = f'name: notice\ntext: "Hi."\nrecipients: ["{NUMBER}"]\n'
    project.write(f"campaigns/{run}/notice.yaml", campaign)
    result = project.run("plan", "--format", "markdown")
    assert result.code == 0, result
    assert "`" * (backticks + 1) + "diff\n" in result.out
    assert_inert(result.out)
