"""The package as a user meets it: checks the packed npm tarball and wheel in dist/.

Run by scripts/release/check-artifacts.sh (`npx projen release:artifacts`) with the release
venv's Python (it has twine). Prints what it checked and the sizes; exits 1 on any failure.

`python check_artifacts.py --assets-only TGZ_OR_WHL ...` runs only the synthesis-asset check (the
rehearsal runs it on what it publishes). Its test: scripts/release/test_check_artifacts.py.
"""
import io
import json
import posixpath
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
            "package/lib/index.js", "package/lib/index.d.ts",
            # The launcher (the package's bin, docs/RUNS.md) and the run agent the launch template embeds at synthesis.
            "package/assets/cli/chronos-training.js", "package/agent/chronos_run_agent.py"]
FORBIDDEN = re.compile(r"^package/(src|test|test-python|test-e2e|integ|scripts|docs|release|chronos-training|\.ci|\.github|\.projen|\.tools|"
                       r"\.venv[^/]*|node_modules|coverage|dist)/|\.snapshot/|\.snap$|/tsconfig[^/]*\.json$|\.projenrc|\.tgz$|\.whl$")

# The project bundles Lambda handlers (src/**/*.lambda.ts, projen's `bundle` task, into assets/): then the shipped
# lib/ must load at least one asset at synthesis, or the discovery below has stopped seeing the references.
HAS_LAMBDA_SOURCES = any((ROOT / "src").rglob("*.lambda.ts"))

# A file the library loads at synthesis: a path built from the module's own directory with literal segments,
# e.g. `lambda.Code.fromAsset(path.join(__dirname, '../assets/training-run-reaper.lambda'))` in lib/**/*.js.
DIRNAME_PATH = re.compile(r"""path\.(?:join|resolve)\(\s*__dirname\s*((?:,\s*(?:'[^'\n]*'|"[^"\n]*")\s*)+)\)""")
DIRNAME_ANY = re.compile(r"path\.(?:join|resolve)\(\s*__dirname\b")
SEGMENT = re.compile(r"'([^'\n]*)'|\"([^\"\n]*)\"")


def synth_asset_refs(js_files):
    """{resolved path in the package: [referencing files]} and the references it cannot resolve (not literal)
    for {package path: JavaScript source} of lib/**/*.js."""
    refs, unresolved = {}, []
    for name, source in sorted(js_files.items()):
        literal = 0
        for m in DIRNAME_PATH.finditer(source):
            literal += 1
            segments = [a or b for a, b in SEGMENT.findall(m.group(1))]
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), *segments))
            refs.setdefault(target, []).append(name)
        if len(DIRNAME_ANY.findall(source)) > literal:
            unresolved.append(name)
    return refs, unresolved


def missing_synth_assets(tar):
    """Check an npm tarball (an open tarfile): every path that its lib/**/*.js builds from __dirname exists in it,
    as a file or as a directory with files. Returns (refs, missing, unresolved)."""
    members = [m for m in tar.getmembers() if m.isfile()]
    names = {m.name for m in members}
    js = {m.name: tar.extractfile(m).read().decode("utf-8", "replace") for m in members
          if re.match(r"^package/lib/.*\.js$", m.name)}
    refs, unresolved = synth_asset_refs(js)
    missing = {t: users for t, users in refs.items()
               if t not in names and not any(n.startswith(t + "/") for n in names)}
    return refs, missing, unresolved


def embedded_tarball(wheel_zip):
    """The npm tarball a jsii wheel embeds (<module>/_jsii/*.tgz), opened."""
    found = [n for n in wheel_zip.namelist() if re.search(r"/_jsii/[^/]+\.tgz$", n)]
    if len(found) != 1:
        raise ValueError(f"expected one _jsii/*.tgz in the wheel, found {found}")
    return found[0], tarfile.open(fileobj=io.BytesIO(wheel_zip.read(found[0])), mode="r:gz")


def check_synth_assets(label, tar, check):
    refs, missing, unresolved = missing_synth_assets(tar)
    for target, users in sorted(refs.items()):
        check(target not in missing, f"{label} ships {target.removeprefix('package/')} (loaded at synthesis by "
              f"{', '.join(u.removeprefix('package/') for u in users)})")
    check(not unresolved, f"{label}: every path.join/resolve(__dirname, ...) in lib/ has literal segments {unresolved[:5]}")
    return refs


def check_assets_of(path, check):
    """The synthesis-asset check of one npm tarball (.tgz) or jsii wheel (.whl)."""
    path = Path(path)
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as z:
            inner, tar = embedded_tarball(z)
            with tar:
                return check_synth_assets(f"wheel {path.name} ({inner.rsplit('/', 1)[-1]})", tar, check)
    with tarfile.open(path) as tar:
        return check_synth_assets(f"tarball {path.name}", tar, check)


def make_check(failures):
    def check(ok, message):
        print(f"{'ok  ' if ok else 'FAIL'} {message}")
        if not ok:
            failures.append(message)
    return check


def only(pattern):
    found = sorted((ROOT / "dist").glob(pattern))
    if len(found) != 1:
        sys.exit(f"release:artifacts: expected one dist/{pattern}, found {len(found)}: run `npx projen package-all`")
    return found[0]


def main(argv):
    failures = []
    check = make_check(failures)
    if argv[:1] == ["--assets-only"]:
        for path in argv[1:]:
            refs = check_assets_of(path, check)
            check(bool(refs) or not HAS_LAMBDA_SOURCES, f"{Path(path).name}: lib/ loads {len(refs)} asset path(s) at synthesis")
        print(f"release:artifacts (synthesis assets): {len(failures)} failed")
        return 1 if failures else 0
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
    check(packed_pkg.get("bin") == {"chronos-training": "assets/cli/chronos-training.js"},
          f"tarball package.json has the chronos-training bin {packed_pkg.get('bin')}")
    with tarfile.open(tgz) as t:
        cli = t.getmember("package/assets/cli/chronos-training.js")
        check(bool(cli.mode & 0o111), f"the chronos-training bin is executable ({oct(cli.mode)})")
    refs = check_assets_of(tgz, check)
    check(bool(refs) or not HAS_LAMBDA_SOURCES, f"tarball lib/ loads {len(refs)} asset path(s) at synthesis (src/ has *.lambda.ts)")
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
    # jsii-pacmak turns each npm bin into a setup.py script: pip puts `chronos-training` on PATH.
    scripts = [n for n in wheel_files if re.search(r"\.data/scripts/chronos-training$", n)]
    check(bool(scripts), f"wheel installs the chronos-training command ({scripts})")
    wheel_refs = check_assets_of(whl, check)
    check(bool(wheel_refs) or not HAS_LAMBDA_SOURCES, f"wheel's tarball lib/ loads {len(wheel_refs)} asset path(s) at synthesis")
    print(f"     wheel {whl.name}: {whl.stat().st_size} bytes ({whl.stat().st_size / 1024:.1f} KB), {len(wheel_files)} files")

    twine = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", str(whl)], capture_output=True, text=True)
    print(twine.stdout.strip())
    check(twine.returncode == 0, "twine check --strict passes (the README renders on PyPI)")

    print(f"release:artifacts: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
