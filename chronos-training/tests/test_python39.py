"""The package needs Python 3.9 or later and nothing newer (pyproject.toml, requires-python): Amazon Linux 2023's and
many notebooks' python3 is 3.9. ast's feature_version checks the grammar (no `match`, no `X | Y` annotations at run
time); vermin the library APIs, as the agent's suite checks the agent."""
import ast
import glob
import os
import subprocess
import sys

import chronos_training.cli

PACKAGE = os.path.dirname(chronos_training.cli.__file__)
SOURCES = sorted(glob.glob(os.path.join(PACKAGE, "*.py")))


def test_parses_with_python_3_9_grammar():
    assert len(SOURCES) > 10
    for path in SOURCES:
        with open(path, encoding="utf-8") as f:
            ast.parse(f.read(), filename=path, feature_version=(3, 9))


def test_vermin_finds_nothing_above_python_3_9():
    run_vermin = "import sys; from vermin import main; sys.exit(main())"
    r = subprocess.run([sys.executable, "-c", run_vermin, "-t=3.9-", "--no-tips", "--violations", "--eval-annotations"]
                       + SOURCES, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


# The package ships py.typed (PEP 561, "Packaging Type Information"): its hints are part of its API, so they must
# check. mypy runs on this interpreter (mypy no longer targets 3.9); vermin above covers 3.9. The agent the wheel
# carries (chronos_training/agent/) is the agent suite's.
def test_types():
    r = subprocess.run([sys.executable, "-m", "mypy", "--ignore-missing-imports", "--no-incremental"] + SOURCES,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert os.path.exists(os.path.join(PACKAGE, "py.typed"))
