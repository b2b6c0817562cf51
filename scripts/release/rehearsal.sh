#!/usr/bin/env bash
# `npm run release:local`: a publish rehearsal on loopback. Nothing leaves the machine but
# downloads from the npm registry and PyPI; both servers stop on any exit.
#
#   bash scripts/release/rehearsal.sh          full: what the hosted release workflow runs, in fresh
#                                              clones of HEAD (no tags needed): `CI=true npx projen
#                                              release` (bump: 0.1.0 on a first release, build with
#                                              the bundle and every test, unbump, release:tag: the new
#                                              baseline, release/version.json and CHANGELOG.md committed
#                                              and tagged there, checked by check-release-commit.js; the
#                                              commit's bundle pushed to a bare copy as release_git does),
#                                              then the publish jobs' package:js and package:python
#                                              (the jsii wheel and the run package chronos-training's
#                                              sdist and wheel) on a checkout with the release tarball
#                                              extracted
#   bash scripts/release/rehearsal.sh --fast   this build's dist/ as it is (CI)
#
# Then, in both modes:
#   1. verdaccio and pypiserver (pinned, scripts/release/tools.sh) on 127.0.0.1, and a moto server (scripts/local);
#   2. the tarball published with publib-npm, and every file of dist/python/ (both wheels, both sdists) with the twine
#      upload publib-pypi runs;
#   3. a fresh CDK app: `npm install @chronos/training-infra aws-cdk-lib constructs` by name from
#      verdaccio, where the README's TypeScript examples run (scripts/consumer-check.js --app): the
#      stack for dev, stage and prod, each with its eight exports;
#   4. a fresh venv: `pip install chronos-training-infra==X` by name from pypiserver, where the Python
#      test suite (test-python/) runs;
#   5. a fresh venv with no Node.js on PATH (`command -v node` fails there): `pip install chronos-training==X` by
#      name from pypiserver, then `chronos-training --version` (X), `--help`, `run --detach`, `list`, `status`, `logs`, `stop --now` and `agent-path`
#      against the moto server, where a foundation is deployed (scripts/release/rehearsal_foundation.py): the run
#      must launch an instance from the foundation's launch template version;
#   6. a compatible next version (version changed only) passes the API guard and is published; a
#      next version with a public property removed is refused by the guard (jsii-diff against the
#      last version published in verdaccio) and never reaches the registry.
set -euo pipefail
# shellcheck source=scripts/release/tools.sh
source "$(dirname "$0")/tools.sh"
cd "$release_root"
PATH="$(bash scripts/node-path.sh):$PATH"
export PATH
JSII_NODE="$(command -v node)"
export JSII_NODE
unset CDK_DEFAULT_ACCOUNT CDK_DEFAULT_REGION CDK_CONTEXT_JSON CDK_OUTDIR NPM_CONFIG_USERCONFIG npm_config_userconfig

mode=full
[ "${1:-}" = "--fast" ] && mode=fast
PKG_NAME="$(node -p "require('./package.json').name")"
DIST_NAME="$(node -p "require('./package.json').jsii.targets.python.distName")"
RUN_DIST_NAME=chronos-training   # the run package, chronos-training/pyproject.toml
CDK_VERSION="$(node -p "require('./package.json').devDependencies['aws-cdk-lib']")"
CONSTRUCTS_VERSION="$(node -p "require('./package.json').devDependencies.constructs")"

now() { node -p 'Date.now() / 1000'; }   # date +%s.%N is GNU-only
t_start="$(now)"; t_step="$t_start"; timings=()
step() {
  timings+=("$(awk -v a="$t_step" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')s $1")
  t_step="$(now)"
}
say() { echo "release:local: $*"; }
die() { echo "release:local: FAILED: $*" >&2; exit 1; }

# Inside the project: jsii-diff's npm: mode installs into $TMPDIR, and must resolve the project's
# pinned aws-cdk-lib from there (see release-facts).
mkdir -p .tools
work="$(mktemp -d "$release_root/.tools/rehearsal-XXXXXX")"
pids=()
cleanup() {
  local rc=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ensure_npm_tools
ensure_python_tools
step "tools (verdaccio $VERDACCIO_VERSION, publib $PUBLIB_VERSION, pypiserver $PYPISERVER_VERSION, twine $TWINE_VERSION)"

# --- the release artifacts ----------------------------------------------------------------------
if [ "$mode" = fast ]; then
  ensure_wheel
  dist="$release_root/dist"
  built="$release_root"   # the tree that was built: its README tablet (.jsii.tabl.json) and tests run below
else
  # What the hosted release workflow (.github/workflows/release.yml) runs, in fresh clones of HEAD:
  #  - job `release` (env CI=true): `npx projen release` = rm -fr dist, bump, build (default, pre-compile
  #    with the bundle into assets/, compile, post-compile, test, package: with CI=true js only), unbump,
  #    git diff --exit-code, release:tag (release/baseline/ and CHANGELOG.md committed and tagged here: no push);
  #  - jobs `release_npm` / `release_pypi`: a fresh checkout of the same commit, the release job's npm tarball
  #    extracted over it, dist/ moved away, then `npx projen package:js` / `npx projen package:python`; what they
  #    pack is what is published.
  clone="$work/clone"
  git clone --quiet --no-local "$release_root" "$clone"
  ln -s "$release_root/node_modules" "$clone/node_modules"
  (
    cd "$clone"
    git config user.name rehearsal && git config user.email rehearsal@127.0.0.1
    say "clone of $(git rev-parse --short HEAD), tags: $(git tag --list 'v*' | tr '\n' ' ')"
    CI=true npx projen release
    say "clone: tag $(git describe --tags), commit:"
    git show --stat --format='  %h %s' HEAD
    head -n 12 CHANGELOG.md
    # One commit holds the version file, the API baseline and the changelog entry of the version released.
    node "$release_root/scripts/release/check-release-commit.js" HEAD
  )
  # The hosted release_git job: a checkout of the released commit fetches the release job's bundle and pushes it to
  # main (here a bare copy of this repository), a fast-forward.
  git clone --quiet --bare --no-local "$release_root" "$work/origin.git"
  released="$(git -C "$clone" rev-parse HEAD^)"
  git -C "$work/origin.git" branch main-rehearsal "$released"
  git clone --quiet --branch main-rehearsal "$work/origin.git" "$work/release-git"
  (
    cd "$work/release-git"
    git fetch --quiet "$clone/dist/release-commit.bundle" HEAD
    git push --quiet origin FETCH_HEAD:refs/heads/main-rehearsal
  )
  [ "$(git -C "$work/origin.git" rev-parse main-rehearsal)" = "$(git -C "$clone" rev-parse HEAD)" ] \
    || die "the release commit's bundle did not push as the release commit"
  say "release_git: the bundle pushed $(git -C "$work/origin.git" log -1 --format='%h %s' main-rehearsal) onto $(git rev-parse --short "$released") (fast-forward)"
  step "full: clone, CI=true npx projen release (bump, build with tests, unbump, release:tag), release_git's push"
  repo="$work/publish-checkout"
  git clone --quiet --no-local "$release_root" "$repo"
  ln -s "$release_root/node_modules" "$repo/node_modules"
  tar --strip-components=1 -xzf "$clone"/dist/js/*.tgz -C "$repo"
  dist="$work/dist"
  built="$clone"
  mkdir -p "$dist"
  # Each job's dist/ is collected out of the checkout (the next packing would ship it otherwise).
  (cd "$repo" && CI=true npx projen package:js)
  mv "$repo/dist/js" "$dist/js" && rm -rf "$repo/dist"
  (cd "$repo" && CI=true npx projen package:python)
  mv "$repo/dist/python" "$dist/python" && rm -rf "$repo/dist"
  step "full: release_npm + release_pypi checkout: tarball extracted, package:js, package:python"
fi
tgz="$(ls "$dist"/js/*.tgz)"
whl="$(ls "$dist"/python/"${DIST_NAME//-/_}"-[0-9]*.whl)"
run_whl="$(ls "$dist"/python/"${RUN_DIST_NAME//-/_}"-[0-9]*.whl)"
VERSION="$(tar xzOf "$tgz" package/package.json | node -p "JSON.parse(require('fs').readFileSync(0, 'utf8')).version")"
say "artifacts: $(basename "$tgz"), $(basename "$whl"), $(basename "$run_whl") (version $VERSION)"
# What is published must ship every file its lib/ loads at synthesis (the reaper's bundled handler, ...), and the run
# package's wheel what release:artifacts checks (its version the npm package's, its command, its agent, ...).
"$RELEASE_VENV/bin/python" scripts/release/check_artifacts.py --assets-only "$tgz" "$whl" || die "an asset is missing from what would be published"
"$RELEASE_VENV/bin/python" scripts/release/check_artifacts.py --run-wheel "$run_whl" "$VERSION" || die "the run package's wheel is not what would be published"

# --- 1. the registries ---------------------------------------------------------------------------
free_port() { node -e "const s = require('net').createServer().listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close(); })"; }
NPM_PORT="$(free_port)"; PYPI_PORT="$(free_port)"; MOTO_PORT="$(free_port)"
REGISTRY="http://127.0.0.1:$NPM_PORT/"
INDEX="http://127.0.0.1:$PYPI_PORT/"
# moto as scripts/local/moto.js starts it (localhost: moto parses path-style S3 URLs with that host only); started here
# so that it is up by step 5.
ENDPOINT="http://localhost:$MOTO_PORT"
mkdir -p "$work/verdaccio/storage" "$work/pypi" "$work/home" "$work/tmp"
cat > "$work/verdaccio/config.yaml" <<YAML
storage: ./storage
auth:
  htpasswd:
    file: ./htpasswd
    max_users: 10
uplinks: {}
packages:
  '@chronos/*':
    access: \$all
    publish: \$authenticated
  '**':
    access: \$all
listen: 127.0.0.1:$NPM_PORT
log: { type: stdout, format: pretty, level: warn }
YAML
"$VERDACCIO_DIR/node_modules/.bin/verdaccio" --config "$work/verdaccio/config.yaml" > "$work/verdaccio.log" 2>&1 &
pids+=("$!")
"$RELEASE_VENV/bin/pypi-server" run -p "$PYPI_PORT" -i 127.0.0.1 -a . -P . --disable-fallback "$work/pypi" > "$work/pypiserver.log" 2>&1 &
pids+=("$!")
bash scripts/local/moto-venv.sh
env -u AWS_PROFILE -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN AWS_EC2_METADATA_DISABLED=true \
  .venv-moto/bin/moto_server -H 127.0.0.1 -p "$MOTO_PORT" > "$work/moto.log" 2>&1 &
pids+=("$!")
wait_for() {
  for _ in $(seq 1 100); do
    node -e "fetch(process.argv[1]).then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))" "$1" && return 0
    sleep 0.2
  done
  cat "$work"/*.log >&2
  die "$1 did not answer"
}
wait_for "${REGISTRY}-/ping"
wait_for "${INDEX}simple/"
# A throwaway user and token (what NPM_TOKEN is on a real release).
NPM_TOKEN="$(node -e "
  fetch(process.argv[1] + '-/user/org.couchdb.user:rehearsal', { method: 'PUT', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'rehearsal', password: 'rehearsal-' + Date.now() }) })
    .then(r => r.json()).then(j => { if (!j.token) throw new Error(JSON.stringify(j)); console.log(j.token); })" "$REGISTRY")"
step "verdaccio on $REGISTRY, pypiserver on $INDEX"

# --- 2. guard, then publish (what the release jobs run) ----------------------------------------------
# jsii-diff downloads the last published version with npm through /bin/sh: scoped registry and
# legacy-peer-deps in a userconfig file (dash drops npm_config_@chronos:registry).
cat > "$work/jsii-diff.npmrc" <<NPMRC
@chronos:registry=$REGISTRY
legacy-peer-deps=true
NPMRC
published_versions() { npm view "$PKG_NAME" versions --json --registry "$REGISTRY" --userconfig "$work/jsii-diff.npmrc" 2>/dev/null || echo '[]'; }

# guarded_publish DIST: refuses (exit 1) when DIST's assembly breaks the API of the latest version in verdaccio.
guarded_publish() {
  local dir="$1" latest candidate out rc=0
  latest="$(npm view "$PKG_NAME" version --registry "$REGISTRY" --userconfig "$work/jsii-diff.npmrc" 2>/dev/null || true)"
  if [ -n "$latest" ]; then
    candidate="$work/candidate-$RANDOM"
    mkdir -p "$candidate" && tar xzf "$dir"/js/*.tgz -C "$candidate"
    ln -s "$release_root/node_modules" "$candidate/package/node_modules"
    out="$(cd "$work" && TMPDIR="$work/tmp" NPM_CONFIG_USERCONFIG="$work/jsii-diff.npmrc" \
      "$release_root/node_modules/.bin/jsii-diff" "npm:$PKG_NAME@$latest" "$candidate/package" \
      --error-on all --keys --ignore-file "$release_root/release/allowed-breaking-changes.txt" 2>&1)" || rc=$?
    [ -z "$out" ] || echo "$out" | sed 's/^/  jsii-diff | /'
    if echo "$out" | grep -q "Skipping analysis"; then die "jsii-diff could not load $PKG_NAME@$latest from verdaccio"; fi
    if [ "$rc" -ne 0 ]; then say "guard: REFUSED $(basename "$dir"/js/*.tgz) (jsii-diff exit $rc against $latest)"; return 1; fi
    say "guard: $(basename "$dir"/js/*.tgz) is compatible with $latest"
  fi
  HOME="$work/home" NPM_REGISTRY="127.0.0.1:$NPM_PORT" DISABLE_HTTPS=1 NPM_TOKEN="$NPM_TOKEN" NPM_DIST_TAG=latest \
    "$VERDACCIO_DIR/node_modules/.bin/publib-npm" "$dir/js" | sed 's/^/  publib-npm | /'
  [ "${PIPESTATUS[0]}" -eq 0 ] || die "publib-npm failed"
  # publib-pypi uploads every file in dist/python/ (`twine upload --verbose --skip-existing *`): the jsii wheel and
  # sdist, and the run package's.
  if compgen -G "$dir/python/*.whl" > /dev/null; then
    (cd "$dir/python" && TWINE_USERNAME=rehearsal TWINE_PASSWORD=rehearsal TWINE_REPOSITORY_URL="$INDEX" \
      "$RELEASE_VENV/bin/python" -m twine upload --verbose --skip-existing --disable-progress-bar ./*) 2>&1 \
      | grep -E "Uploading|View at|ERROR|HTTPError" | sed 's/^/  twine | /' || true
  fi
}
guarded_publish "$dist"
[ "$(published_versions)" != "[]" ] || die "nothing was published to verdaccio"
simple_page() { node -e "fetch(process.argv[1]).then(r => r.text()).then(t => console.log(t))" "${INDEX}simple/$1/"; }
simple_page "$DIST_NAME" | grep -q "$(basename "$whl")" || die "the wheel is not on pypiserver"
run_page="$(simple_page "$RUN_DIST_NAME")"
for f in "$run_whl" "${run_whl%%-py3-*}.tar.gz"; do
  echo "$run_page" | grep -q "$(basename "$f")" || die "$(basename "$f") is not on pypiserver"
done
step "guard + publish $VERSION (publib-npm, twine upload)"

# --- 3. a new CDK app, by name from verdaccio ------------------------------------------------------
app="$work/app"
mkdir -p "$app" && cd "$app"
npm init -y > /dev/null
echo "@chronos:registry=$REGISTRY" > .npmrc
npm install --no-audit --no-fund --loglevel=error "$PKG_NAME" "aws-cdk-lib@$CDK_VERSION" "constructs@$CONSTRUCTS_VERSION"
# The lockfile omits `resolved` for this scoped registry: compare the installed bytes with the published tarball.
node -e "
  const lock = require('./package-lock.json').packages['node_modules/$PKG_NAME'];
  const sha = 'sha512-' + require('crypto').createHash('sha512').update(require('fs').readFileSync('$tgz')).digest('base64');
  if (lock.version !== '$VERSION' || lock.integrity !== sha) { console.error(lock, sha); process.exit(1); }"
say "npm installed $PKG_NAME@$VERSION (the published tarball's integrity) from $(npm view "$PKG_NAME" dist.tarball --registry "$REGISTRY" --userconfig "$work/jsii-diff.npmrc")"
# The README's TypeScript examples (the stack for dev, stage and prod) run in this app.
node "$built/scripts/consumer-check.js" --app "$app"
cd "$release_root"
step "npm install by name + the README's TypeScript examples (node)"

# --- 4. a new venv, by name from pypiserver ----------------------------------------------------------
t_py="$(now)"
# The peers and the test requirements (aws-cdk-lib, constructs, pytest, typeguard) from a venv in the machine's tool
# cache (scripts/python-env.sh: made once, bytecode compiled once, 31 s of CPU that every run paid before), on the new
# venv's path through a .pth file; then the package by name with pip, as a user installs it (pip's --report proves
# where it came from, and that it installed nothing else: the pinned peers are already there).
ensure_python_peers "$work/peers" "$built/test-python/requirements.txt"
uv="$(bash scripts/uv.sh)"
UV_PYTHON_DOWNLOADS=never "$uv" venv --quiet --seed --python "$(command -v python3)" "$work/venv"
site_of() { "$1" -c 'import sysconfig; print(sysconfig.get_path("purelib"))'; }
site_of "$work/peers/bin/python" > "$(site_of "$work/venv/bin/python")/chronos-rehearsal-peers.pth"
"$work/venv/bin/python" -m pip install --disable-pip-version-check --no-input -q --report "$work/pip-report.json" \
  --extra-index-url "${INDEX}simple/" "$DIST_NAME==$VERSION" "aws-cdk-lib==$CDK_VERSION" "constructs==$CONSTRUCTS_VERSION"
# installed_alone PYTHON REPORT NAME: pip's report lists NAME alone, at VERSION (PEP 440), from pypiserver.
installed_alone() {
  "$1" - "$2" "$3" "$INDEX" "$VERSION" <<'PY'
import json, sys
from pip._vendor.packaging.version import Version
report, name, index, npm_version = sys.argv[1:]
installed = json.load(open(report))["install"]
assert [i["metadata"]["name"] for i in installed] == [name], [i["metadata"]["name"] for i in installed]
item = installed[0]
url = item["download_info"]["url"]
assert url.startswith(index), url
assert Version(item["metadata"]["version"]) == Version(npm_version), (item["metadata"]["version"], npm_version)
print(f"release:local: pip installed {name}=={item['metadata']['version']} from {url}")
PY
}
installed_alone "$work/venv/bin/python" "$work/pip-report.json" "$DIST_NAME"
say "pip: venv + install $(awk -v a="$t_py" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')s"
# The Python test suite (test-python/: the README's Python example and the translations of its TypeScript ones,
# the stack for stage and prod, each construct) runs against the package pip installed by name.
PYTHONDONTWRITEBYTECODE=1 "$work/venv/bin/python" -m pytest "$built/test-python" -ra -p no:cacheprovider
step "pip install by name + the Python test suite (python)"

# --- 5. the run package, by name from pypiserver, in a venv with no Node.js on PATH ---------------------------------
# A user's machine with Python only: the venv's bin/ and four shell tools are the whole PATH of step 5's commands
# (`command -v node` must fail there), and no other variable of this shell reaches them (env -i). boto3 and PyYAML, the package's dependencies, at the
# versions the moto venv pins, come from a venv of the tool cache through a .pth file, as the peers of step 4 do, so pip
# installs chronos-training alone, from pypiserver only (--index-url: it cannot reach PyPI for that name).
wait_for "$ENDPOINT/moto-api/"
.venv-moto/bin/python scripts/release/rehearsal_foundation.py deploy "$ENDPOINT" dev
IMAGE="$(.venv-moto/bin/python scripts/release/rehearsal_foundation.py image "$ENDPOINT")"
ensure_venv "$work/run-peers" -- "$(grep -E '^boto3==' scripts/local/requirements-moto.txt)" \
  "$(grep -E '^PyYAML==' scripts/local/requirements-moto.txt)"
UV_PYTHON_DOWNLOADS=never "$uv" venv --quiet --seed --python "$(command -v python3)" "$work/run-venv"
site_of "$work/run-peers/bin/python" > "$(site_of "$work/run-venv/bin/python")/chronos-rehearsal-peers.pth"
mkdir -p "$work/code" "$work/no-node-bin" && echo 'print("rehearsal")' > "$work/code/train.py"
# The few shell tools the step itself uses, each by a link of its own (never a whole system directory: /usr/bin may
# hold a node).
for tool in cat grep sed wc; do ln -s "$(command -v "$tool")" "$work/no-node-bin/$tool"; done
# shellcheck disable=SC2016 # expanded by the inner bash
env -i HOME="$work/home" TMPDIR="$work/tmp" PATH="$work/run-venv/bin:$work/no-node-bin" W="$work" INDEX="$INDEX" NAME="$RUN_DIST_NAME" \
  VERSION="$VERSION" ENDPOINT="$ENDPOINT" IMAGE="$IMAGE" /bin/bash -euo pipefail -c '
  say() { echo "release:local: $*"; }
  if command -v node; then echo "release:local: FAILED: node is on PATH ($PATH)" >&2; exit 1; fi
  say "no Node.js on PATH ($PATH): command -v node fails"
  python -m pip install --disable-pip-version-check --no-input -q --report "$W/run-pip-report.json" \
    --index-url "${INDEX}simple/" "$NAME==$VERSION"
  chronos-training --version > "$W/run-version"
  say "chronos-training --version: $(cat "$W/run-version")"
  chronos-training --help > "$W/run-help.txt"
  grep -qE "^ *run " "$W/run-help.txt" || { cat "$W/run-help.txt"; exit 1; }
  say "chronos-training --help: $(wc -l < "$W/run-help.txt") lines"
  AWS_ENDPOINT_URL="$ENDPOINT" AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
    CHRONOS_CACHE_DIR="$W/run-cache" chronos-training run --env dev --detach --dir "$W/code" --instance-types t3.micro --image-id "$IMAGE" \
    -- python3 train.py > "$W/run-id" 2> "$W/run.log" || { cat "$W/run.log" >&2; exit 1; }
  sed "s/^/  chronos-training run | /" "$W/run.log"
  # The run, as the other commands see it: in the list, and its status with the instance it launched.
  export AWS_ENDPOINT_URL="$ENDPOINT" AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
  run_id="$(< "$W/run-id")"
  chronos-training list --env dev > "$W/run-list.txt"
  grep -q "^$run_id .* i-" "$W/run-list.txt" || { cat "$W/run-list.txt"; exit 1; }
  chronos-training status "$run_id" --env dev > "$W/run-status.txt"
  grep -q "^instance: *i-" "$W/run-status.txt" || { cat "$W/run-status.txt"; exit 1; }
  say "chronos-training list and status show $run_id: $(grep "^state:" "$W/run-status.txt" | sed "s/  */ /g")"
  # The other commands: logs (none yet, exit 0), stop --now (terminates the instance of the run), agent-path (the agent).
  chronos-training logs "$run_id" --env dev > "$W/run-logs.txt" 2>&1 || { cat "$W/run-logs.txt"; exit 1; }
  chronos-training stop "$run_id" --env dev --now > "$W/run-stop.txt" 2>&1 || { cat "$W/run-stop.txt"; exit 1; }
  grep -q "terminated i-" "$W/run-stop.txt" || { cat "$W/run-stop.txt"; exit 1; }
  grep -q "Chronos run agent" "$(chronos-training agent-path)" || { echo "agent-path: no agent there"; exit 1; }
  say "chronos-training logs, stop --now and agent-path: $(grep -o "terminated i-[0-9a-f]*" "$W/run-stop.txt")"
' || die "the run package without Node.js"
installed_alone "$work/run-venv/bin/python" "$work/run-pip-report.json" "$RUN_DIST_NAME"
# The version the command prints is the installed distribution's, which installed_alone compared with the npm package's.
run_version="$("$work/run-venv/bin/python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["install"][0]["metadata"]["version"])' "$work/run-pip-report.json")"
[ "$(cat "$work/run-version")" = "$RUN_DIST_NAME $run_version" ] || die "chronos-training --version printed $(cat "$work/run-version"), not $run_version"
run_id="$(cat "$work/run-id")"
[[ "$run_id" =~ ^run-[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$ ]] || die "chronos-training run printed ${run_id@Q}, not a run ID"
.venv-moto/bin/python scripts/release/rehearsal_foundation.py launched "$ENDPOINT" dev "$run_id" || die "the run launched no instance"
step "pip install chronos-training by name, no Node.js: --version, --help, run --detach, list, status, logs, stop --now, agent-path on moto (python)"

# --- 6. the next versions: a compatible one is published, a breaking one is refused -----------------------
# next_version NAME NEXT MUTATION: the published tarball repacked as version NEXT after MUTATION (on the .jsii).
patch_plus() { node -p "'$VERSION'.replace(/\\d+$/, n => +n + $1)"; }
next_version() {
  local dir="$work/$1" next="$2"
  mkdir -p "$dir/src" "$dir/js"
  tar xzf "$tgz" -C "$dir/src"
  node - "$dir/src/package" "$next" "$3" <<'JS'
const fs = require('fs');
const [pkgDir, next, mutation] = process.argv.slice(2);
const jsii = JSON.parse(fs.readFileSync(`${pkgDir}/.jsii`, 'utf8'));
const pkg = JSON.parse(fs.readFileSync(`${pkgDir}/package.json`, 'utf8'));
jsii.version = pkg.version = next;
if (mutation === 'remove-property') {
  // ChronosTrainingStack.foundation, as if a refactoring had dropped it.
  const stack = jsii.types[`${jsii.name}.ChronosTrainingStack`];
  stack.properties = stack.properties.filter(p => p.name !== 'foundation');
}
fs.writeFileSync(`${pkgDir}/.jsii`, JSON.stringify(jsii, undefined, 2));
fs.writeFileSync(`${pkgDir}/package.json`, JSON.stringify(pkg, undefined, 2));
JS
  (cd "$dir/js" && npm pack --silent "$dir/src/package" > /dev/null)
  echo "$dir"
}
good="$(next_version compatible "$(patch_plus 1)" none)"
guarded_publish "$good" || die "the guard refused a compatible version"
step "guard + publish a compatible next version"
bad="$(next_version breaking "$(patch_plus 2)" remove-property)"
bad_version="$(node -p "require('$bad/src/package/package.json').version")"
if guarded_publish "$bad" > "$work/breaking.log" 2>&1; then
  cat "$work/breaking.log"; die "the guard let a version without ChronosTrainingStack.foundation through"
fi
cat "$work/breaking.log"
grep -q "ChronosTrainingStack.foundation" "$work/breaking.log" || die "the guard did not name the removed property"
published="$(published_versions)"
if echo "$published" | grep -q "\"$bad_version\""; then die "$bad_version reached verdaccio"; fi
say "verdaccio has $(echo "$published" | tr -d '\n ') and not $bad_version"
step "guard refuses a breaking next version"

say "timings (mode $mode):"
printf '  %s\n' "${timings[@]}"
say "total $(awk -v a="$t_start" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')s: ok"
