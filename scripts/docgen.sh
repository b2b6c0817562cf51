#!/usr/bin/env bash
# API.md from this build's .jsii. jsii-docgen documents the assembly named like this package that it
# finds last below its working directory, and release/baseline/.jsii (the last release: same name, and
# the same version until the next bump) is one of them; so it runs where only this build's package.json,
# .jsii and node_modules (for aws-cdk-lib's and constructs' assemblies) are.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cp "$root/package.json" "$root/.jsii" "$tmp/"
ln -s "$root/node_modules" "$tmp/node_modules"
(cd "$tmp" && "$root/node_modules/.bin/jsii-docgen" -o API.md)
cp "$tmp/API.md" "$root/API.md"
