"""The packages as a user meets them: checks the packed npm tarball and the jsii wheel in dist/, and the run package
(chronos-training/, PyPI `chronos-training`: its wheel and sdist in dist/python/, scripts/release/package-run.sh).

Run by scripts/release/check-artifacts.sh (`npx projen release:artifacts`) with the release
venv's Python (it has twine). Prints what it checked and the sizes; exits 1 on any failure.

`python check_artifacts.py --assets-only TGZ_OR_WHL ...` runs only the synthesis-asset check, and
`python check_artifacts.py --run-wheel WHL NPM_VERSION` only the run package's wheel check (the rehearsal runs both on
what it publishes). Their tests: scripts/release/test_check_artifacts.py.
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

# What a user needs in the npm tarball, and what must never reach it. What lib/ loads at synthesis (the run agent the
# launch template embeds, the reaper's handler) is checked below, wherever it lives.
REQUIRED = ["package/package.json", "package/.jsii", "package/README.md", "package/LICENSE", "package/API.md",
            "package/lib/index.js", "package/lib/index.d.ts"]
# The construct package's bin (the launcher bundled with Node.js), while package.json has one: the run package's
# console script replaces it (issue 28), and then neither the tarball nor the jsii wheel may carry a chronos-training.
BIN = PKG.get("bin") or {}

# The run package: its distribution and import names, its console script and the run agent it ships.
RUN_DIST_NAME = "chronos-training"
RUN_MODULE = "chronos_training"
RUN_COMMAND = "chronos-training"
RUN_AGENT = f"{RUN_MODULE}/agent/chronos_run_agent.py"
# The agent's source: in the run package after the move (issue 28), at the repository's root before it.
AGENT_SOURCES = [ROOT / "chronos-training" / "src" / RUN_AGENT, ROOT / "agent" / "chronos_run_agent.py"]
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


def bundles_without_notices(tar):
    """The JavaScript bundles in assets/ (.../index.js, .cjs, .mjs) of an open npm tarball without a
    THIRD-PARTY-NOTICES.txt beside them (scripts/release/third-party-notices.js writes it), and all bundles."""
    names = {m.name for m in tar.getmembers() if m.isfile()}
    bundles = sorted(n for n in names if re.match(r"^package/assets/.*/index\.[cm]?js$", n))
    return [b for b in bundles if posixpath.join(posixpath.dirname(b), "THIRD-PARTY-NOTICES.txt") not in names], bundles


def check_synth_assets(label, tar, check):
    refs, missing, unresolved = missing_synth_assets(tar)
    lacking, bundles = bundles_without_notices(tar)
    check(not lacking, f"{label}: each of its {len(bundles)} bundle(s) in assets/ ships THIRD-PARTY-NOTICES.txt beside it "
          f"{[b.removeprefix('package/') for b in lacking]}")
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


def wheel_metadata(z):
    """(METADATA headers, {console script: entry point}) of an open wheel."""
    names = z.namelist()
    meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
    meta = HeaderParser().parsestr(z.read(meta_name).decode())
    scripts, section = {}, None
    for name in [n for n in names if n.endswith(".dist-info/entry_points.txt")]:
        for line in z.read(name).decode().splitlines():
            line = line.strip()
            if line.startswith("["):
                section = line.strip("[]").strip()
            elif "=" in line and section == "console_scripts":
                key, value = line.split("=", 1)
                scripts[key.strip()] = value.strip()
    return meta, scripts


def check_jsii_commands(wheel_files, bin_, check):
    """jsii-pacmak turns each npm bin into a setup.py script, which pip puts on PATH: the jsii wheel installs exactly the
    bins of package.json (BIN_), so none once the launcher has left the construct package (issue 28), and never a
    second chronos-training beside the run package's console script."""
    scripts = sorted(n.rsplit("/", 1)[1] for n in wheel_files if re.search(r"\.data/scripts/[^/]+$", n))
    check(scripts == sorted(bin_), f"wheel installs the commands of package.json's bin {sorted(bin_)}: {scripts}")


def pep440(version):
    """The npm version as a wheel spells it (PEP 440 normal form: 1.2.0-rc.1 is 1.2.0rc1)."""
    from packaging.version import Version  # twine's dependency, in the release venv
    return str(Version(version))


def agent_source():
    return next((p for p in AGENT_SOURCES if p.is_file()), None)


def check_run_wheel(whl, npm_version, check, agent=None):
    """The run package's wheel: name, the construct package's version, Python >= 3.9, and boto3 and PyYAML (the run
    file) only (no Node.js, no CDK), the console script and the module it names, py.typed, the run agent (the same bytes as AGENT when given)
    and no tests."""
    whl = Path(whl)
    with zipfile.ZipFile(whl) as z:
        meta, scripts = wheel_metadata(z)
        files = z.namelist()
        shipped_agent = z.read(RUN_AGENT) if RUN_AGENT in files else None
    label = f"run wheel {whl.name}:"
    check(meta["Name"] == RUN_DIST_NAME, f"{label} Name {meta['Name']}")
    check(meta["Version"] == pep440(npm_version), f"{label} Version {meta['Version']} (npm {npm_version})")
    requires_python = meta.get("Requires-Python") or ""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    try:
        spec = SpecifierSet(requires_python)
    except InvalidSpecifier:
        spec = None
    # 3.9 is the oldest Python the package supports (pyproject.toml): it must install there, and not on 3.8.
    check(bool(requires_python) and spec is not None and spec.contains("3.9.0") and not spec.contains("3.8.20"),
          f"{label} Requires-Python {requires_python!r} (3.9 or later)")
    requires = meta.get_all("Requires-Dist") or []
    names = sorted({re.split(r"[\s;<>=!~\[(]", r, 1)[0].lower() for r in requires})
    check(names == ["boto3", "pyyaml"], f"{label} requires boto3 and PyYAML and nothing else (no Node.js, no CDK) {requires}")
    target = scripts.get(RUN_COMMAND, "")
    module = target.split(":", 1)[0]
    check(bool(module) and f"{module.replace('.', '/')}.py" in files,
          f"{label} installs the {RUN_COMMAND} command ({RUN_COMMAND} = {target or 'missing'}) and ships its module")
    check(f"{RUN_MODULE}/py.typed" in files, f"{label} ships {RUN_MODULE}/py.typed (PEP 561: its type hints)")
    check(shipped_agent is not None, f"{label} ships the run agent {RUN_AGENT}")
    if agent is not None and shipped_agent is not None:
        check(shipped_agent == Path(agent).read_bytes(), f"{label} its run agent is the repository's ({agent})")
    tests = [n for n in files if re.search(r"(^|/)(tests?|integ)/|(^|/)(test_[^/]*|[^/]*_test|conftest)\.py$", n)]
    check(not tests, f"{label} ships no tests {tests[:5]}")
    return files


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
    if argv[:1] == ["--run-wheel"]:
        check_run_wheel(argv[1], argv[2], check, agent_source())
        print(f"release:artifacts (run wheel): {len(failures)} failed")
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
    check((packed_pkg.get("bin") or {}) == BIN, f"tarball package.json has the bin of package.json {packed_pkg.get('bin')}")
    with tarfile.open(tgz) as t:
        for command, target in BIN.items():
            cli = next((m for m in t.getmembers() if m.name == f"package/{target}"), None)
            check(cli is not None and bool(cli.mode & 0o111),
                  f"the {command} bin {target} is shipped and executable ({oct(cli.mode) if cli else 'missing'})")
    # The run keeper's Lambda code (src/keeper/, bundle:keeper): the run package's module, with its handler, no bytecode.
    check(not [n for n in names if n.startswith("package/assets/") and (n.endswith(".pyc") or "/__pycache__/" in n)],
          "tarball assets/ ship no Python bytecode")
    check(f"package/assets/keeper/{RUN_AGENT}" in names, f"tarball ships the run keeper's code, assets/keeper/{RUN_MODULE}/")
    refs = check_assets_of(tgz, check)
    check(bool(refs) or not HAS_LAMBDA_SOURCES, f"tarball lib/ loads {len(refs)} asset path(s) at synthesis (src/ has *.lambda.ts)")
    print(f"     tarball {tgz.name}: {tgz.stat().st_size} bytes packed ({tgz.stat().st_size / 1024:.1f} KB), "
          f"{len(names)} files, {unpacked} bytes unpacked")

    # --- wheel ------------------------------------------------------------------------
    whl = only(f"python/{DIST_NAME.replace('-', '_')}-[0-9]*.whl")
    with zipfile.ZipFile(whl) as z:
        meta, _ = wheel_metadata(z)
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
    check_jsii_commands(wheel_files, BIN, check)
    wheel_refs = check_assets_of(whl, check)
    check(bool(wheel_refs) or not HAS_LAMBDA_SOURCES, f"wheel's tarball lib/ loads {len(wheel_refs)} asset path(s) at synthesis")
    print(f"     wheel {whl.name}: {whl.stat().st_size} bytes ({whl.stat().st_size / 1024:.1f} KB), {len(wheel_files)} files")

    # --- the run package (chronos-training: its wheel and sdist, at the npm package's version) ----------------------
    run_whl = only(f"python/{RUN_MODULE}-[0-9]*.whl")
    run_sdist = only(f"python/{RUN_MODULE}-[0-9]*.tar.gz")
    run_files = check_run_wheel(run_whl, version, check, agent_source())
    check(run_sdist.name == f"{RUN_MODULE}-{pep440(version)}.tar.gz", f"run sdist {run_sdist.name} (npm {version})")
    print(f"     run wheel {run_whl.name}: {run_whl.stat().st_size} bytes ({run_whl.stat().st_size / 1024:.1f} KB), "
          f"{len(run_files)} files; sdist {run_sdist.stat().st_size} bytes")

    twine = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", str(whl), str(run_whl), str(run_sdist)],
                           capture_output=True, text=True)
    print(twine.stdout.strip())
    check(twine.returncode == 0, "twine check --strict passes on both wheels and the run sdist (the READMEs render on PyPI)")

    print(f"release:artifacts: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
