"""The Python that the package's README shows on PyPI: jsii-rosetta's translations of the README's TypeScript
examples, read from the tablet `jsii-rosetta extract --strict` wrote at compile time (.jsii.tabl.json). Each must
synthesize stacks with the eight exports of their environment.

Each translation runs as `__main__` in this process, as `python app.py` would run it but on the session's jsii kernel:
a script of its own costs an interpreter, an import of aws_cdk and a Node.js kernel start (about 7 s a snippet on two
cores). Every translation creates its own `app = App()` and calls `app.synth()`; App writes to a fresh temporary
directory (no CDK_OUTDIR here, conftest removes it), and the test reads that assembly back from `app.synth()`, which
returns the one already synthesized. The README's own Python example still runs as a script (conftest.py).
"""
import json
import shutil
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
def test_translated_example_runs(snippet):
    code = snippet["translations"]["python"]["source"]
    line = snippet["location"]["field"]["line"]
    namespace = {"__name__": "__main__"}
    exec(compile(code, f"<README line {line}, in Python>", "exec"), namespace)
    app = namespace.get("app")
    assert app is not None, f"the example defines no `app`:\n{code}"
    outdir = Path(app.synth().directory)
    try:
        manifest = read_json(outdir / "manifest.json")
        stacks = [a for a in manifest["artifacts"].values() if a["type"] == "aws:cloudformation:stack"]
        assert stacks, "the example synthesized no stack"
        for stack in stacks:
            template = read_json(outdir / stack["properties"]["templateFile"])
            check_foundation_exports(template)
    finally:
        shutil.rmtree(outdir, ignore_errors=True)
