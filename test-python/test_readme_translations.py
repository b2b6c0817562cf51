"""The Python that the package's README shows on PyPI: jsii-rosetta's translations of the README's TypeScript
examples, read from the tablet `jsii-rosetta extract --strict` wrote at compile time (.jsii.tabl.json), each run
as a script. Each must synthesize stacks with the eight exports of their environment."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support import check_foundation_exports, read_json

ROOT = Path(__file__).resolve().parent.parent
TABLET = ROOT / ".jsii.tabl.json"


def readme_snippets():
    if not TABLET.exists():
        return []
    snippets = json.loads(TABLET.read_text(encoding="utf-8"))["snippets"].values()
    readme = [s for s in snippets if s["location"]["api"]["api"] == "moduleReadme"]
    return sorted(readme, key=lambda s: s["location"]["field"]["line"])


SNIPPETS = readme_snippets()


def test_the_tablet_holds_the_readme_examples():
    assert TABLET.exists(), f"{TABLET} is missing: `npx projen compile` runs jsii-rosetta extract"
    assert len(SNIPPETS) >= 2


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[f"README line {s['location']['field']['line']}" for s in SNIPPETS])
def test_translated_example_runs(snippet, tmp_path):
    code = snippet["translations"]["python"]["source"]
    (tmp_path / "app.py").write_text(code, encoding="utf-8")
    outdir = tmp_path / "cdk.out"
    run = subprocess.run([sys.executable, "app.py"], cwd=tmp_path, text=True, capture_output=True, timeout=300,
                         env=dict(os.environ, CDK_OUTDIR=str(outdir), PYTHONDONTWRITEBYTECODE="1"),
                         stdin=subprocess.DEVNULL)
    assert run.returncode == 0, f"--- code ---\n{code}\n--- stderr ---\n{run.stderr}"
    manifest = read_json(outdir / "manifest.json")
    stacks = [a for a in manifest["artifacts"].values() if a["type"] == "aws:cloudformation:stack"]
    assert stacks, "the example synthesized no stack"
    for stack in stacks:
        template = read_json(outdir / stack["properties"]["templateFile"])
        check_foundation_exports(template)
