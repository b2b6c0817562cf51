"""The package as a user meets it: checks the packed npm tarball and wheel in dist/.

Run by scripts/release/check-artifacts.sh (`npx projen release:artifacts`) with the release
venv's Python (it has twine). Prints what it checked and the sizes; exits 1 on any failure.
"""
import json
import re
import subprocess
import sys
import tarfile
import zipfile
from email.parser import HeaderParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PKG = json.loads((ROOT / "package.json").read_text())
DIST_NAME = PKG["jsii"]["targets"]["python"]["distName"]
REPOSITORY = PKG["repository"]["url"].removeprefix("git+").removesuffix(".git")

# What a user needs in the npm tarball, and what must never reach it.
REQUIRED = ["package/package.json", "package/.jsii", "package/README.md", "package/LICENSE", "package/API.md",
            "package/lib/index.js", "package/lib/index.d.ts"]
FORBIDDEN = re.compile(r"^package/(src|test|test-python|test-e2e|integ|scripts|docs|release|\.ci|\.github|\.projen|\.tools|"
                       r"\.venv[^/]*|node_modules|coverage|dist)/|\.snapshot/|\.snap$|/tsconfig[^/]*\.json$|\.projenrc|\.tgz$|\.whl$")

failures = []


def check(ok, message):
    print(f"{'ok  ' if ok else 'FAIL'} {message}")
    if not ok:
        failures.append(message)


def only(pattern):
    found = sorted((ROOT / "dist").glob(pattern))
    if len(found) != 1:
        sys.exit(f"release:artifacts: expected one dist/{pattern}, found {len(found)}: run `npx projen package-all`")
    return found[0]


# --- npm tarball ----------------------------------------------------------------
tgz = only("js/*.tgz")
with tarfile.open(tgz) as tar:
    members = [m for m in tar.getmembers() if m.isfile()]
    names = [m.name for m in members]
    unpacked = sum(m.size for m in members)
    packed_pkg = json.load(tar.extractfile("package/package.json"))
    jsii = json.load(tar.extractfile("package/.jsii"))
for name in REQUIRED:
    check(name in names, f"tarball ships {name.removeprefix('package/')}")
libs = [n for n in names if n.startswith("package/lib/")]
check(all(n.endswith((".js", ".d.ts")) for n in libs), f"tarball lib/ has only .js and .d.ts ({len(libs)} files)")
bad = [n for n in names if FORBIDDEN.search(n)]
check(not bad, f"tarball ships no tests, integ, scripts, snapshots, release records or sources {bad[:5]}")
check(packed_pkg["name"] == PKG["name"] and packed_pkg["version"] == jsii["version"],
      f"tarball package.json is {packed_pkg['name']}@{packed_pkg['version']} (the .jsii's version)")
check(set(packed_pkg.get("peerDependencies", {})) == {"aws-cdk-lib", "constructs"} and not packed_pkg.get("dependencies"),
      f"tarball depends only on its peers {packed_pkg.get('peerDependencies')}")
print(f"     tarball {tgz.name}: {tgz.stat().st_size} bytes packed ({tgz.stat().st_size / 1024:.1f} KB), "
      f"{len(names)} files, {unpacked} bytes unpacked")

# --- wheel ------------------------------------------------------------------------
whl = only("python/*.whl")
with zipfile.ZipFile(whl) as z:
    metadata_name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
    meta = HeaderParser().parsestr(z.read(metadata_name).decode())
    wheel_files = z.namelist()
urls = meta.get_all("Project-URL") or []
version = jsii["version"]
check(meta["Name"] == DIST_NAME, f"wheel Name {meta['Name']}")
check(meta["Version"] == version, f"wheel Version {meta['Version']} (npm {version})")
check("Apache-2.0" in (meta.get("License-Expression") or meta.get("License") or ""),
      f"wheel license {meta.get('License-Expression') or meta.get('License')}")
requires_python = meta.get("Requires-Python") or ""
check(bool(re.search(r">=?\s*3\.\d+", requires_python)), f"wheel Requires-Python {requires_python!r}")
check(any(REPOSITORY in u for u in urls), f"wheel Project-URL {urls}")
check(meta.get("Description-Content-Type") == "text/markdown", f"wheel README is markdown ({meta.get('Description-Content-Type')})")
requires = meta.get_all("Requires-Dist") or []
check(any(r.startswith("aws-cdk-lib") for r in requires) and any(r.startswith("constructs") for r in requires),
      f"wheel requires aws-cdk-lib and constructs ({len(requires)} Requires-Dist)")
check(not [n for n in wheel_files if re.search(r"(^|/)(test|tests|integ)/", n)], "wheel ships no tests")
print(f"     wheel {whl.name}: {whl.stat().st_size} bytes ({whl.stat().st_size / 1024:.1f} KB), {len(wheel_files)} files")

twine = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", str(whl)], capture_output=True, text=True)
print(twine.stdout.strip())
check(twine.returncode == 0, "twine check --strict passes (the README renders on PyPI)")

print(f"release:artifacts: {len(failures)} failed")
sys.exit(1 if failures else 0)
