#!/usr/bin/env node
// The API half of the breaking-change guard: jsii-diff (pinned in .projenrc.ts) between the
// last release's assembly (release/baseline/, recorded by `npx projen release:baseline`) and
// the current build (`.jsii` at the project root, after `npx projen compile`).
//
//   node scripts/release/api-guard.js [--baseline DIR] [--updated DIR] [--allow FILE]
//
// Every change counts (`--error-on all`: with `stability: 'experimental'` jsii-diff's default
// only warns). An intended break is allowed by adding the key jsii-diff prints (e.g.
// `removed:@chronos/training-infra.TrainingBucket.environment`) to
// release/allowed-breaking-changes.txt. Exits 0 when compatible, 1 on an unallowed break,
// 2 when the comparison could not run (jsii-diff "Skipping analysis" counts as that).
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..', '..');
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? path.resolve(args[i + 1]) : fallback;
};
const baseline = option('--baseline', path.join(root, 'release', 'baseline'));
const updated = option('--updated', root);
const allow = option('--allow', path.join(root, 'release', 'allowed-breaking-changes.txt'));

function fail(message) {
  console.error(`api-guard: ${message}`);
  process.exit(2);
}
for (const dir of [baseline, updated]) {
  for (const file of ['.jsii', 'package.json']) {
    if (!fs.existsSync(path.join(dir, file))) {
      fail(`${path.join(dir, file)} is missing (baseline: \`npx projen release:baseline\`; build: \`npx projen compile\`)`);
    }
  }
}
// jsii-diff resolves the baseline's dependencies (aws-cdk-lib, constructs) from its directory:
// lend it the project's node_modules (gitignored).
const modules = path.join(baseline, 'node_modules');
if (!fs.existsSync(modules)) fs.symlinkSync(path.join(root, 'node_modules'), modules, 'dir');

const version = dir => JSON.parse(fs.readFileSync(path.join(dir, '.jsii'), 'utf8')).version;
console.log(`api-guard: ${path.relative(root, baseline) || '.'} (${version(baseline)}) -> ${path.relative(root, updated) || '.'} (${version(updated)}), allowed: ${path.relative(root, allow)}`);
const jsiiDiff = path.join(root, 'node_modules', '.bin', 'jsii-diff');
const run = spawnSync(jsiiDiff, [baseline, updated, '--error-on', 'all', '--keys', '--ignore-file', allow], { encoding: 'utf8' });
const output = `${run.stdout}${run.stderr}`;
process.stdout.write(output);
if (run.error) fail(`could not run jsii-diff: ${run.error.message}`);
if (/Skipping analysis/.test(output)) fail('jsii-diff skipped the analysis: treated as a failure');
if (run.status === 0) {
  console.log('api-guard: no unallowed API change');
  process.exit(0);
}
if (run.status === 1) {
  console.error('api-guard: the public API breaks compatibility with the last release. If intended, add the keys above to '
    + `${path.relative(root, allow)} and release it as a breaking change (feat!:)`);
  process.exit(1);
}
fail(`jsii-diff exited ${run.status}`);
