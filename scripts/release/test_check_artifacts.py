"""Tests of check_artifacts.py (stdlib unittest; run by release:artifacts with the release venv, which has packaging):
    python3 -m unittest discover -s scripts/release -p 'test_check_artifacts.py'
The synthesis-asset check must fail on a tarball, and on a wheel embedding a tarball, whose lib/ loads an asset the
package lacks; the run package's check must fail on a wheel that lacks, or gets wrong, any one thing it checks."""
import contextlib
import io
import sys
import tarfile
import tempfile
import unittest
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_artifacts as ca  # noqa: E402

FUNCTION_JS = """"use strict";
const path = require("path");
class Fn extends lambda.Function {
    constructor(scope, id, props) {
        super(scope, id, { ...props, code: lambda.Code.fromAsset(path.join(__dirname, '%s')) });
    }
}
"""


def tarball(files, notices=True):
    """An npm tarball (bytes) holding {path under package/: text}; with `notices`, a THIRD-PARTY-NOTICES.txt beside
    each assets/**/index.js, as the bundle task writes it."""
    if notices:
        files = {**files, **{n.rsplit("/", 1)[0] + "/THIRD-PARTY-NOTICES.txt": "notices" for n in files
                             if n.startswith("assets/") and n.endswith("/index.js")}}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def wheel_with(tgz_bytes):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("chronos_training_infra/__init__.py", "")
        z.writestr("chronos_training_infra/_jsii/training-infra@0.1.0.jsii.tgz", tgz_bytes)
    return buf.getvalue()


def run_check(path):
    failures = []
    with contextlib.redirect_stdout(io.StringIO()):  # the FAIL lines these cases expect stay out of CI's log
        refs = ca.check_assets_of(path, ca.make_check(failures))
    return refs, failures


class SynthAssets(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp())

    def write(self, name, data):
        p = self.tmp / name
        p.write_bytes(data)
        return p

    def test_passes_when_the_asset_is_shipped(self):
        files = {"package.json": "{}", "lib/fn.js": FUNCTION_JS % "../assets/fn.lambda",
                 "assets/fn.lambda/index.js": "exports.handler = 1;"}
        refs, failures = run_check(self.write("ok.tgz", tarball(files)))
        self.assertEqual(list(refs), ["package/assets/fn.lambda"])
        self.assertEqual(failures, [])

    def test_fails_on_a_tarball_without_the_asset(self):
        files = {"package.json": "{}", "lib/fn.js": FUNCTION_JS % "../assets/fn.lambda"}
        refs, failures = run_check(self.write("missing.tgz", tarball(files)))
        self.assertEqual(list(refs), ["package/assets/fn.lambda"])
        self.assertEqual(len(failures), 1)
        self.assertIn("assets/fn.lambda", failures[0])

    def test_fails_on_an_empty_asset_directory_name_match(self):
        # assets/fn.lambda-old/ does not stand in for assets/fn.lambda/.
        files = {"lib/fn.js": FUNCTION_JS % "../assets/fn.lambda", "assets/fn.lambda-old/index.js": ""}
        _, failures = run_check(self.write("prefix.tgz", tarball(files)))
        self.assertEqual(len(failures), 1)

    def test_resolves_nested_modules(self):
        # After a move into concern folders: lib/guardrails/fn.js loads ../../assets/guardrails/fn.lambda.
        files = {"lib/guardrails/fn.js": FUNCTION_JS % "../../assets/guardrails/fn.lambda",
                 "assets/guardrails/fn.lambda/index.js": ""}
        refs, failures = run_check(self.write("nested.tgz", tarball(files)))
        self.assertEqual(list(refs), ["package/assets/guardrails/fn.lambda"])
        self.assertEqual(failures, [])
        del files["assets/guardrails/fn.lambda/index.js"]
        _, failures = run_check(self.write("nested-missing.tgz", tarball(files)))
        self.assertEqual(len(failures), 1)

    def test_fails_on_a_wheel_whose_tarball_lacks_the_asset(self):
        good = tarball({"lib/fn.js": FUNCTION_JS % "../assets/fn.lambda", "assets/fn.lambda/index.js": ""})
        bad = tarball({"lib/fn.js": FUNCTION_JS % "../assets/fn.lambda"})
        self.assertEqual(run_check(self.write("good.whl", wheel_with(good)))[1], [])
        refs, failures = run_check(self.write("bad.whl", wheel_with(bad)))
        self.assertEqual(list(refs), ["package/assets/fn.lambda"])
        self.assertEqual(len(failures), 1)

    def test_fails_on_a_reference_it_cannot_resolve(self):
        files = {"lib/fn.js": "const p = path.join(__dirname, dir, 'x');"}
        refs, failures = run_check(self.write("dynamic.tgz", tarball(files)))
        self.assertEqual(refs, {})
        self.assertEqual(len(failures), 1)

    def test_fails_on_a_bundle_without_its_notices(self):
        files = {"lib/fn.js": FUNCTION_JS % "../assets/fn.lambda", "assets/fn.lambda/index.js": "",
                 "assets/other.lambda/index.js": ""}
        refs, failures = run_check(self.write("no-notices.tgz", tarball(files, notices=False)))
        self.assertEqual(len(failures), 1)
        self.assertIn("assets/other.lambda/index.js", failures[0])
        _, failures = run_check(self.write("notices.tgz", tarball(files)))
        self.assertEqual(failures, [])
        # In the wheel's embedded tarball too.
        _, failures = run_check(self.write("no-notices.whl", wheel_with(tarball(files, notices=False))))
        self.assertEqual(len(failures), 1)

    def test_the_cli_exits_1_on_a_missing_asset(self):
        bad = self.write("bad.tgz", tarball({"lib/fn.js": FUNCTION_JS % "../assets/fn.lambda"}))
        with contextlib.redirect_stdout(io.StringIO()):
            self.assertEqual(ca.main(["--assets-only", str(bad)]), 1)
        good = self.write("good.tgz", tarball({"lib/fn.js": FUNCTION_JS % "../assets/fn.lambda",
                                               "assets/fn.lambda/index.js": ""}))
        with contextlib.redirect_stdout(io.StringIO()):
            self.assertEqual(ca.main(["--assets-only", str(good)]), 0)


AGENT = b"#!/usr/bin/env python3\n# the run agent\n"


def run_wheel(version="1.2.0", requires_python=">=3.9", requires=("boto3>=1.35.2", "PyYAML>=6.0.2,<7"),
              entry_points="[console_scripts]\nchronos-training = chronos_training.cli:main\n", drop=(), extra=None):
    """A chronos-training wheel (bytes) as hatchling builds it; `drop` leaves files out, `extra` adds {path: text}."""
    dist_info = f"chronos_training-{version}.dist-info"
    meta = ["Metadata-Version: 2.4", "Name: chronos-training", f"Version: {version}"]
    meta += [f"Requires-Python: {requires_python}"] if requires_python is not None else []
    meta += [f"Requires-Dist: {r}" for r in requires]
    files = {"chronos_training/__init__.py": "", "chronos_training/cli.py": "def main(): pass\n",
             "chronos_training/py.typed": "", ca.RUN_AGENT: AGENT,
             f"{dist_info}/METADATA": "\n".join(meta) + "\n\n# chronos-training\n",
             f"{dist_info}/entry_points.txt": entry_points, f"{dist_info}/WHEEL": "Wheel-Version: 1.0\n"}
    files.update(extra or {})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            if name not in drop:
                z.writestr(name, data)
    return buf.getvalue()


class RunWheel(unittest.TestCase):
    """check_run_wheel on the run package's wheel (chronos-training). References: the PyPA "Core metadata
    specifications" (Name, Version, Requires-Python, Requires-Dist), "Entry points specification" (a console_scripts
    entry point in .dist-info/entry_points.txt becomes a command when pip installs the wheel), PEP 561 "Packaging Type
    Information" (a package that ships its type hints has a py.typed marker), and publib's publib-pypi (`twine upload *`
    in dist/python/: every wheel and sdist there is published)."""

    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp())
        self.agent = self.tmp / "chronos_run_agent.py"
        self.agent.write_bytes(AGENT)

    def failures(self, data, npm_version="1.2.0"):
        path = self.tmp / "chronos_training-1.2.0-py3-none-any.whl"
        path.write_bytes(data)
        failures = []
        with contextlib.redirect_stdout(io.StringIO()):
            ca.check_run_wheel(path, npm_version, ca.make_check(failures), self.agent)
        return failures

    def assertFailsOn(self, data, words, npm_version="1.2.0"):
        failures = self.failures(data, npm_version)
        self.assertEqual(len(failures), 1, failures)
        self.assertIn(words, failures[0])

    def test_passes_on_the_wheel_hatchling_builds(self):
        self.assertEqual(self.failures(run_wheel()), [])
        # An npm pre-release is the wheel's PEP 440 spelling of it.
        self.assertEqual(self.failures(run_wheel(version="1.2.0rc1"), npm_version="1.2.0-rc.1"), [])

    def test_fails_on_a_version_other_than_the_npm_packages(self):
        self.assertFailsOn(run_wheel(version="1.1.0"), "Version 1.1.0 (npm 1.2.0)")

    def test_fails_unless_it_installs_on_python_3_9_and_not_before(self):
        for spec in (">=3.10", ">=3.8", None, "~=3.11"):
            with self.subTest(spec=spec):
                self.assertFailsOn(run_wheel(requires_python=spec), "Requires-Python")

    def test_fails_without_boto3_or_with_a_node_or_cdk_dependency(self):
        self.assertFailsOn(run_wheel(requires=()), "requires boto3 and PyYAML and nothing else")
        self.assertFailsOn(run_wheel(requires=("PyYAML>=6.0.2",)), "requires boto3 and PyYAML and nothing else")
        self.assertFailsOn(run_wheel(requires=("boto3>=1.35.2", "PyYAML>=6.0.2", "aws-cdk-lib==2.257.0")),
                           "requires boto3 and PyYAML and nothing else")
        self.assertFailsOn(run_wheel(requires=("boto3>=1.35.2", "PyYAML>=6.0.2", "jsii>=1.0; python_version>='3.9'")),
                           "nothing else")

    def test_fails_without_the_console_script_or_its_module(self):
        self.assertFailsOn(run_wheel(entry_points=""), "installs the chronos-training command")
        self.assertFailsOn(run_wheel(entry_points="[gui_scripts]\nchronos-training = chronos_training.cli:main\n"),
                           "installs the chronos-training command")
        self.assertFailsOn(run_wheel(drop=("chronos_training/cli.py",)), "ships its module")

    def test_fails_without_py_typed(self):
        self.assertFailsOn(run_wheel(drop=("chronos_training/py.typed",)), "py.typed")

    def test_fails_without_the_agent_or_with_another_agent(self):
        self.assertFailsOn(run_wheel(drop=(ca.RUN_AGENT,)), "ships the run agent")
        self.assertFailsOn(run_wheel(extra={ca.RUN_AGENT: b"# an older agent\n"}), "its run agent is the repository's")

    def test_fails_on_shipped_tests(self):
        for name in ("chronos_training/tests/test_api.py", "tests/conftest.py", "chronos_training/test_cli.py"):
            with self.subTest(name=name):
                self.assertFailsOn(run_wheel(extra={name: ""}), "ships no tests")


class JsiiCommands(unittest.TestCase):
    """The jsii wheel's commands follow package.json's bin (jsii-pacmak writes each as a script of the wheel's
    .data/scripts/, which the wheel specification, "Binary distribution format", installs into the scripts directory)."""

    SCRIPT = ["chronos_training_infra-1.2.0.data/scripts/chronos-training", "chronos_training_infra/__init__.py"]

    def failures(self, files, bin_):
        failures = []
        with contextlib.redirect_stdout(io.StringIO()):
            ca.check_jsii_commands(files, bin_, ca.make_check(failures))
        return failures

    def test_the_bin_while_package_json_has_it(self):
        bin_ = {"chronos-training": "assets/cli/chronos-training.js"}
        self.assertEqual(self.failures(self.SCRIPT, bin_), [])
        self.assertEqual(len(self.failures(self.SCRIPT[1:], bin_)), 1)

    def test_no_second_chronos_training_once_the_bin_is_gone(self):
        self.assertEqual(self.failures(self.SCRIPT[1:], {}), [])
        self.assertEqual(len(self.failures(self.SCRIPT, {})), 1)


if __name__ == "__main__":
    unittest.main()
