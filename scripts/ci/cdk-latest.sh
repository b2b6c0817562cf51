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
trap 'rm -f "$config"' EXIT
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
# test/cdk-version.test.ts checks that the tests run with that version (CDK_EXPECTED_VERSION).
CDK_EXPECTED_VERSION="$cdk" npx jest --config "$config" "$@"
