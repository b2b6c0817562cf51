#!/usr/bin/env node
// Checks a `chore(release): X` commit (default HEAD) as the release path must make it (release:tag; the rehearsal
// runs it on the full release's clone): one commit holds the version file at X, the API baseline of X
// (release/baseline/ .jsii, package.json, template.json at version X) and CHANGELOG.md's entry for X.
//   node scripts/release/check-release-commit.js [COMMIT]
'use strict';
const { execFileSync } = require('child_process');

const git = (...args) => execFileSync('git', args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });

function checkReleaseCommit(commit) {
  const problems = [];
  const subject = git('log', '-1', '--format=%s', commit).trim();
  const m = /^chore\(release\): (\d+\.\d+\.\d+)$/.exec(subject);
  if (!m) return [`${commit}: subject "${subject}" is not chore(release): X.Y.Z`];
  const version = m[1];
  const changed = new Set(git('show', '--format=', '--name-only', commit).split('\n').filter(Boolean));
  for (const file of ['release/version.json', 'release/baseline/.jsii', 'release/baseline/package.json', 'CHANGELOG.md']) {
    if (!changed.has(file)) problems.push(`${file} is not in the release commit`);
  }
  const show = file => { try { return git('show', `${commit}:${file}`); } catch { return undefined; } };
  const record = JSON.parse(show('release/version.json') ?? '{}');
  if (record.version !== version) problems.push(`release/version.json records ${record.version}, not ${version}`);
  const parent = git('rev-parse', `${commit}^`).trim();
  if (record.commit !== parent) problems.push(`release/version.json's commit ${record.commit} is not the released commit ${parent}`);
  for (const file of ['release/baseline/.jsii', 'release/baseline/package.json']) {
    const v = JSON.parse(show(file) ?? '{}').version;
    if (v !== version) problems.push(`${file} is version ${v}, not ${version}`);
  }
  if (show('release/baseline/template.json') === undefined) problems.push('release/baseline/template.json is missing');
  const changelog = show('CHANGELOG.md') ?? '';
  if (!new RegExp(`^##+ \\[?${version.replace(/\./g, '\\.')}\\]?[ (]`, 'm').test(changelog)) problems.push(`CHANGELOG.md has no entry for ${version}`);
  return problems;
}

if (require.main === module) {
  const commit = process.argv[2] ?? 'HEAD';
  const problems = checkReleaseCommit(commit);
  if (problems.length) {
    process.stderr.write(`check-release-commit: ${commit} is not a complete release commit:\n${problems.map(p => `  - ${p}`).join('\n')}\n`);
    process.exit(1);
  }
  process.stdout.write(`check-release-commit: ${git('log', '-1', '--format=%h %s', commit).trim()} holds the version file, the API baseline and the changelog entry\n`);
}
module.exports = { checkReleaseCommit };
