"""Read `gh api --paginate .../comments` (JSON arrays one after another) on stdin; print the id
of the first comment that starts with the marker given as argument, or nothing."""

import json
import sys


def pages(text: str):
    decoder, at = json.JSONDecoder(), 0
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        page, at = decoder.raw_decode(text, at)
        yield page


def main() -> None:
    marker = sys.argv[1]
    for page in pages(sys.stdin.read()):
        for comment in page:
            if (comment.get("body") or "").startswith(marker):
                print(comment["id"])
                return


main()
