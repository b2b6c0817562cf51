#!/usr/bin/env node
// The version of the next release, from release/version.json (the last released version, committed on main by
// every release: docs/DEVELOPMENT.md, "Releasing") and the conventional commits since it. No tag is read, so a clone
// without tags (`git clone --no-tags`, a shallow CI checkout) computes the same version as one with them.
//
//   node scripts/release/next-version.js             projen's nextVersionCommand (`bump:next-version`): prints the
//                                                    next version (x.y.z), or fails when nothing since the last
//                                                    release is releasable (only docs, test, ci, chore... commits)
//   node scripts/release/next-version.js --explain   prints {version, base, next, bump, commits} as JSON
//   node scripts/release/next-version.js --restore-tag
//                                                    makes the local tag v<version> at the base commit when no such
//                                                    tag exists (`bump` runs it first), so that projen and the
//                                                    changelog generator see the same range as this script
//   node scripts/release/next-version.js --record VERSION
//                                                    writes release/version.json {version: VERSION, commit: HEAD}
//                                                    (release:tag, before the `chore(release)` commit)
//
// The base: the recorded `commit` (the last commit the release contains) when this clone has it, else the last
// commit that changed release/version.json. The commits: `git log --no-merges base..HEAD`. The rule (the types in
// scripts/release/commit-types.json; a hidden type neither appears in the changelog nor makes a release):
//   below 1.0: a breaking change (`type!:` or a `BREAKING CHANGE:` footer) gives a minor version, any other
//              releasable commit (feat, fix, perf, revert) a patch;
//   from 1.0:  breaking gives a major, feat a minor, the other releasable ones a patch.
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const VERSION_FILE = 'release/version.json';
const TYPES = JSON.parse(fs.readFileSync(path.join(__dirname, 'commit-types.json'), 'utf8')).types;

const git = (cwd, ...args) => execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
const gitOk = (cwd, ...args) => {
  try { git(cwd, ...args); return true; } catch { return false; }
};

/** A commit message's type, scope and whether it is breaking (the conventionalcommits preset's rules). */
function parseCommit(message) {
  const header = message.split('\n', 1)[0];
  const m = /^(\w+)(?:\(([^()]*)\))?(!)?: \S/.exec(header);
  const breaking = /^BREAKING[ -]CHANGE: /m.test(message.slice(header.length)) || Boolean(m && m[3]);
  if (/^revert\b/i.test(header)) return { type: 'revert', scope: undefined, breaking, header };
  return { type: m ? m[1].toLowerCase() : undefined, scope: m ? m[2] : undefined, breaking, header };
}

/** 'major' | 'minor' | 'patch' | undefined (not releasable), for one commit at the current major version. */
function bumpOf(commit, major) {
  if (commit.breaking) return major === 0 ? 'minor' : 'major';
  const entry = TYPES.find(t => t.type === commit.type && (!t.scope || t.scope === commit.scope));
  if (!entry || entry.hidden) return undefined;
  return commit.type === 'feat' && major > 0 ? 'minor' : 'patch';
}

function readRecord(cwd) {
  const file = path.join(cwd, VERSION_FILE);
  if (!fs.existsSync(file)) throw new Error(`${VERSION_FILE} is missing: it records the last released version`);
  const record = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (!/^\d+\.\d+\.\d+$/.test(record.version ?? '')) throw new Error(`${VERSION_FILE}: version ${JSON.stringify(record.version)} is not x.y.z`);
  return record;
}

function baseCommit(cwd, record) {
  if (record.commit && gitOk(cwd, 'cat-file', '-e', `${record.commit}^{commit}`) && gitOk(cwd, 'merge-base', '--is-ancestor', record.commit, 'HEAD')) {
    return git(cwd, 'rev-parse', record.commit);
  }
  const changed = git(cwd, 'log', '-1', '--format=%H', '--', VERSION_FILE);
  if (!changed) throw new Error(`no commit of this clone changed ${VERSION_FILE} (a shallow clone? fetch the history)`);
  return changed;
}

function nextVersion(cwd) {
  const record = readRecord(cwd);
  const base = baseCommit(cwd, record);
  const log = git(cwd, 'log', '--no-merges', '--format=%H%x00%B%x1e', `${base}..HEAD`);
  const [major, minor, patch] = record.version.split('.').map(Number);
  const rank = { patch: 1, minor: 2, major: 3 };
  let bump;
  const commits = [];
  for (const entry of log.split('\x1e').map(s => s.trim()).filter(Boolean)) {
    const [sha, message] = entry.split('\x00');
    const commit = parseCommit(message);
    const b = bumpOf(commit, major);
    commits.push({ sha: sha.slice(0, 7), header: commit.header, bump: b ?? null });
    if (b && (!bump || rank[b] > rank[bump])) bump = b;
  }
  const next = bump === 'major' ? `${major + 1}.0.0` : bump === 'minor' ? `${major}.${minor + 1}.0`
    : bump === 'patch' ? `${major}.${minor}.${patch + 1}` : null;
  return { version: record.version, base, next, bump: bump ?? null, commits };
}

function main(argv) {
  const cwd = process.cwd();
  if (argv[0] === '--record') {
    const version = argv[1];
    if (!/^\d+\.\d+\.\d+$/.test(version ?? '')) throw new Error(`--record: ${JSON.stringify(version)} is not x.y.z`);
    const record = { version, commit: git(cwd, 'rev-parse', 'HEAD') };
    fs.writeFileSync(path.join(cwd, VERSION_FILE), JSON.stringify(record, undefined, 2) + '\n');
    process.stderr.write(`next-version: ${VERSION_FILE} records ${version} at ${record.commit}\n`);
    return;
  }
  const result = nextVersion(cwd);
  if (argv[0] === '--explain') {
    process.stdout.write(JSON.stringify(result, undefined, 2) + '\n');
  } else if (argv[0] === '--restore-tag') {
    const tag = `v${result.version}`;
    if (!gitOk(cwd, 'rev-parse', '--verify', '--quiet', `refs/tags/${tag}`)) {
      git(cwd, 'tag', tag, result.base);
      process.stderr.write(`next-version: no tag ${tag} in this clone: made it (local) at ${result.base.slice(0, 7)}, the last commit of ${result.version} (${VERSION_FILE})\n`);
    }
  } else if (argv.length === 0) {
    if (!result.next) {
      throw new Error(`nothing to release since ${result.version} (${VERSION_FILE}, base ${result.base.slice(0, 7)}): ` +
        `${result.commits.length} commit(s), none a feat, fix, perf, revert or breaking change`);
    }
    process.stderr.write(`next-version: ${result.version} + ${result.bump} (${result.commits.filter(c => c.bump).length} releasable of ${result.commits.length} commits since ${result.base.slice(0, 7)}) = ${result.next}\n`);
    process.stdout.write(result.next);
  } else {
    throw new Error(`unknown arguments: ${argv.join(' ')}`);
  }
}

if (require.main === module) {
  try {
    main(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`next-version: ${e.message}\n`);
    process.exit(1);
  }
}
module.exports = { nextVersion, parseCommit, bumpOf };
