"""The floor: what any tool must do at least. Load every file with libyaml, render each text
with one cached Jinja2 environment, and hash each payload. No checks, no messages."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import jinja2
import yaml

root = Path(sys.argv[1])
env = jinja2.Environment()
config = yaml.load((root / "runner.yaml").read_bytes(), Loader=yaml.CSafeLoader)
digests = []
for path in sorted((root / "campaigns").rglob("*.yaml")):
    for doc in yaml.load_all(path.read_bytes(), Loader=yaml.CSafeLoader):
        text = env.from_string(doc["text"]).render({**config["vars"], **doc.get("vars", {})})
        payload = {
            **config["defaults"],
            "text": text,
            "recipients": [{"phone_number": n} for n in doc["recipients"]],
        }
        digests.append(hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest())
print(len(digests))
