"""`runner plan` vs `terraform plan` on the same 500 campaigns (W1, the peer).

Terraform models each campaign as a built-in `terraform_data` resource whose `input` holds
the rendered payload, so it needs no provider and works offline; its state starts fresh each
run, as runner's does. Both commands are timed end to end, interleaved, medians of N.

Usage: python benchmarks/terraform_peer.py [--campaigns 500] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import fictional_number, interleaved, timed, write_project


def write_terraform(folder: Path, campaigns: int, per_campaign: int = 3) -> Path:
    """The same campaigns as write_project's, as terraform_data resources."""
    folder.mkdir(parents=True)
    resources = {}
    for i in range(campaigns):
        text = (
            f"Hello from ACME Energy. Campaign {i} reminds you that maintenance number {i} "
            f"happens on Saturday. Call us back if you have questions about notice {i}."
        )
        numbers = [fictional_number(i * per_campaign + k) for k in range(per_campaign)]
        resources[f"campaign_{i:05d}"] = {
            "input": {
                "name": f"campaign-{i:05d}",
                "text": text,
                "purpose": "alert",
                "voice_gender": "female",
                "voice_language": "en-US",
                "sender": "ACME",
                "recipients": [{"phone_number": n} for n in numbers],
            }
        }
    config = {"resource": {"terraform_data": resources}}
    (folder / "main.tf.json").write_text(json.dumps(config, indent=1))
    init = subprocess.run(
        ["terraform", "init", "-input=false", "-no-color"], cwd=folder, capture_output=True
    )
    if init.returncode != 0:
        sys.exit(f"terraform init failed:\n{init.stderr.decode()[-2000:]}")
    return folder


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--campaigns", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    if shutil.which("terraform") is None:
        sys.exit("terraform is not on PATH")
    with tempfile.TemporaryDirectory() as folder:
        root = write_project(Path(folder) / "runner", args.campaigns)
        terraform = write_terraform(Path(folder) / "terraform", args.campaigns)
        medians = interleaved(
            args.runs,
            terraform=lambda: timed(
                ["terraform", "plan", "-input=false", "-no-color", "-lock=false"], cwd=terraform
            ),
            runner=lambda: timed([sys.executable, "-m", "runner", "-C", str(root), "plan"]),
        )
    speedup = medians["terraform"] / medians["runner"]
    print(f"campaigns: {args.campaigns}, fresh state for both")
    print(f"terraform plan (terraform_data), median of {args.runs}: {medians['terraform']:.2f} s")
    print(f"runner plan, median of {args.runs}: {medians['runner']:.2f} s")
    print(f"runner is {speedup:.1f}x faster than terraform (target >= 50x)")
    return {**medians, "speedup": speedup}


if __name__ == "__main__":
    main()
