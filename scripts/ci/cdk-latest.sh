#!/usr/bin/env bash
# The construct tests against the newest aws-cdk-lib 2.x in the npm registry (and the newest constructs 10.x), beside
# the pinned one the rest of CI uses (package.json): a CDK release that breaks this library, or changes what it
# synthesizes (the stateful-resource guard runs too), fails here before users meet it. The versions are installed once
# per version into the machine's tool cache (scripts/tool-cache.sh), outside node_modules (which stays as installed),
# and jest maps every `aws-cdk-lib` and `constructs` import, the library's and its dev dependencies' (cdk-nag,
# integ-tests-alpha), to them.
# Usage: bash scripts/ci/cdk-latest.sh [JEST ARGS]    (CDK_LATEST_VERSION=2.x.y picks a version instead)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
# shellcheck source=scripts/tool-cache.sh
source scripts/tool-cache.sh
# The highest version of a range in the registry (npm lists them in publishing order, not by version).
newest() { npm view "$1" version --json | node -p 'const s = require("semver"); [].concat(JSON.parse(require("fs").readFileSync(0, "utf8"))).sort(s.compare).pop()'; }
cdk="${CDK_LATEST_VERSION:-$(newest 'aws-cdk-lib@2')}"
constructs="$(newest 'constructs@10')"
pinned="$(node -p "require('./package.json').devDependencies['aws-cdk-lib']")"
echo "cdk-latest: aws-cdk-lib $cdk and constructs $constructs (pinned: aws-cdk-lib $pinned)"
install() { npm install --prefix "$TOOL_DIR" --no-save --no-audit --no-fund --loglevel=error "aws-cdk-lib@$cdk" "constructs@$constructs"; }
dir="$(cached_tool "cdk-latest-$cdk-constructs-$constructs" install)/node_modules"
config="$(mktemp "${TMPDIR:-/tmp}/cdk-latest-jest-XXXXXX.json")"
node - "$root" "$dir" > "$config" <<'JS'
const [root, dir] = process.argv.slice(2);
const jest = require(`${root}/package.json`).jest;
console.log(JSON.stringify({
  ...jest,
  rootDir: root,
  reporters: ['default'],
  moduleNameMapper: {
    '^aws-cdk-lib$': `${dir}/aws-cdk-lib`, '^aws-cdk-lib/(.*)$': `${dir}/aws-cdk-lib/$1`,
    '^constructs$': `${dir}/constructs`, '^constructs/(.*)$': `${dir}/constructs/$1`,
  },
  // The construct tests (and the stateful-resource guard); not the tests of this repository's scripts and release tools.
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/ci/', '<rootDir>/test/release/(?!template-guard)'],
}));
JS
# test/cdk-version.test.ts checks that the tests run with that version (CDK_EXPECTED_VERSION). The leg fails on a
# failing test that scripts/ci/cdk-latest-known-failures.txt does not list (or when jest writes no result).
result="${config%.json}-result.json"
trap 'rm -f "$config" "$result"' EXIT
CDK_EXPECTED_VERSION="$cdk" npx jest --config "$config" --json --outputFile="$result" "$@" || true
node - "$result" scripts/ci/cdk-latest-known-failures.txt "$cdk" <<'JS'
const fs = require('fs');
const [resultFile, knownFile, cdk] = process.argv.slice(2);
if (!fs.existsSync(resultFile)) { console.error('cdk-latest: jest wrote no result'); process.exit(1); }
const result = JSON.parse(fs.readFileSync(resultFile, 'utf8'));
const known = new Set(fs.readFileSync(knownFile, 'utf8').split('\n').map(l => l.trim()).filter(l => l && !l.startsWith('#')));
const tests = result.testResults.flatMap(f => f.assertionResults.map(a => ({ name: [...a.ancestorTitles, a.title].join(' › '), status: a.status })));
const failed = tests.filter(t => t.status === 'failed').map(t => t.name);
const unexpected = failed.filter(n => !known.has(n));
const fixed = [...known].filter(n => tests.some(t => t.name === n && t.status === 'passed'));
// A test file that failed to run at all (a syntax or import error) has no assertion results.
const broken = result.testResults.filter(f => f.status === 'failed' && f.assertionResults.length === 0).map(f => f.name);
console.log(`cdk-latest: aws-cdk-lib ${cdk}: ${tests.length} tests, ${failed.length} failed (${failed.length - unexpected.length} known)`);
for (const n of fixed) console.log(`cdk-latest: now passes, remove it from ${knownFile}: ${n}`);
for (const n of [...unexpected, ...broken]) console.error(`cdk-latest: FAILED, not a known failure: ${n}`);
process.exit(unexpected.length || broken.length || tests.length === 0 ? 1 : 0);
JS
