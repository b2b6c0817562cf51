"""pytest configuration of the Python leg (run by scripts/test-python.sh).

The jsii runtime starts one Node.js process at the first import of aws_cdk and
passes it this process's environment: the variables that would make stacks
environment-specific are removed here, before any test module imports aws_cdk.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from readme_examples import PYTHON_HEADING, ReadmeBlockMissing, extract_block  # noqa: E402

for _var in ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION", "CDK_CONTEXT_JSON", "CDK_OUTDIR"):
    os.environ.pop(_var, None)

README_TIMEOUT_SECONDS = 300


@dataclass
class ReadmeRun:
    """The README's Python example, run as a script (`python app.py`) in a temp directory."""
    code: str
    workdir: Path
    outdir: Path
    returncode: int = -1
    stdout: str = ""
    stderr: str = ""


def pytest_sessionstart(session: pytest.Session) -> None:
    # Started here, in parallel with the collection's own jsii start-up (several seconds each).
    session.config.readme_error = None
    session.config.readme_proc = None
    try:
        code = extract_block(PYTHON_HEADING, "python")
    except ReadmeBlockMissing as e:
        session.config.readme_error = e
        return
    workdir = Path(tempfile.mkdtemp(prefix="chronos-readme-py-"))
    (workdir / "app.py").write_text(code, encoding="utf-8")
    run = ReadmeRun(code=code, workdir=workdir, outdir=workdir / "cdk.out")
    # CDK_OUTDIR is what the CDK CLI sets for `cdk synth`: app.synth() writes there.
    env = dict(os.environ, CDK_OUTDIR=str(run.outdir), PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=workdir, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    session.config.readme_proc = (proc, run)


def pytest_sessionfinish(session: pytest.Session) -> None:
    started = getattr(session.config, "readme_proc", None)
    if started:
        proc, run = started
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        shutil.rmtree(run.workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def readme_python_run(pytestconfig: pytest.Config) -> ReadmeRun:
    if pytestconfig.readme_error is not None:
        pytest.fail(f"README Python example missing: {pytestconfig.readme_error}", pytrace=False)
    proc, run = pytestconfig.readme_proc
    try:
        run.stdout, run.stderr = proc.communicate(timeout=README_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"README Python example did not finish in {README_TIMEOUT_SECONDS} s", pytrace=False)
    run.returncode = proc.returncode
    return run
