"""Tests of check_artifacts.py's synthesis-asset check (stdlib unittest; run by release:artifacts):
    python3 -m unittest discover -s scripts/release -p 'test_check_artifacts.py'
It must fail on a tarball, and on a wheel embedding a tarball, whose lib/ loads an asset the package lacks."""
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


def tarball(files):
    """An npm tarball (bytes) holding {path under package/: text}."""
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

    def test_the_cli_exits_1_on_a_missing_asset(self):
        bad = self.write("bad.tgz", tarball({"lib/fn.js": FUNCTION_JS % "../assets/fn.lambda"}))
        with contextlib.redirect_stdout(io.StringIO()):
            self.assertEqual(ca.main(["--assets-only", str(bad)]), 1)
        good = self.write("good.tgz", tarball({"lib/fn.js": FUNCTION_JS % "../assets/fn.lambda",
                                               "assets/fn.lambda/index.js": ""}))
        with contextlib.redirect_stdout(io.StringIO()):
            self.assertEqual(ca.main(["--assets-only", str(good)]), 0)


if __name__ == "__main__":
    unittest.main()
