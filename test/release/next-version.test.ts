/*
 * The next version comes from release/version.json and the conventional commits since it, with or without tags
 * (issue 31): each case builds a repository in a temporary directory, tags v0.1.0 there, and computes the version in
 * a `git clone --no-tags` of it, where the tag is absent. The changelog generator (commit-and-tag-version with the
 * project's versionrcOptions, as projen's bump passes them) leaves hidden types out.
 */
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const root = path.join(__dirname, '..', '..');
const script = path.join(root, 'scripts', 'release', 'next-version.js');
const checkCommit = path.join(root, 'scripts', 'release', 'check-release-commit.js');
const env = {
  ...process.env,
  GIT_AUTHOR_NAME: 't',
  GIT_AUTHOR_EMAIL: 't@127.0.0.1',
  GIT_COMMITTER_NAME: 't',
  GIT_COMMITTER_EMAIL: 't@127.0.0.1',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
};
const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, env, encoding: 'utf8' }).trim();
const tmp: string[] = [];
afterAll(() => tmp.forEach(d => fs.rmSync(d, { recursive: true, force: true })));

/** A repository whose first commits are a 0.1.0 release (version file, tag v0.1.0), then `messages`, one commit each. */
function origin(messages: string[], record: { version: string; withCommit?: boolean } = { version: '0.1.0', withCommit: true }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'next-version-'));
  tmp.push(dir);
  git(dir, 'init', '-q', '-b', 'main');
  fs.writeFileSync(path.join(dir, 'a.txt'), 'first\n');
  git(dir, 'add', '.');
  git(dir, 'commit', '-q', '-m', 'feat: the first feature');
  fs.mkdirSync(path.join(dir, 'release'));
  const released = git(dir, 'rev-parse', 'HEAD');
  fs.writeFileSync(path.join(dir, 'release', 'version.json'),
    JSON.stringify(record.withCommit ? { version: record.version, commit: released } : { version: record.version }));
  git(dir, 'add', '.');
  git(dir, 'commit', '-q', '-m', `chore(release): ${record.version}`);
  git(dir, 'tag', `v${record.version}`);
  messages.forEach((m, i) => {
    fs.writeFileSync(path.join(dir, 'a.txt'), `change ${i}\n`);
    git(dir, 'commit', '-q', '-a', '-m', m);
  });
  return dir;
}

function clone(dir: string): string {
  const to = fs.mkdtempSync(path.join(os.tmpdir(), 'next-version-clone-'));
  tmp.push(to);
  git(os.tmpdir(), 'clone', '-q', '--no-tags', '--no-local', dir, to);
  expect(git(to, 'tag', '--list')).toBe('');
  return to;
}

const explain = (cwd: string) => JSON.parse(execFileSync('node', [script, '--explain'], { cwd, env, encoding: 'utf8' }));
const projenMode = (cwd: string) => spawnSync('node', [script], { cwd, env, encoding: 'utf8' });

test.each([
  ['a feat! gives a minor version below 1.0', ['fix: one', 'feat!: a removed member'], '0.2.0'],
  ['a BREAKING CHANGE footer gives a minor version below 1.0', ['feat(batch): a queue\n\nBREAKING CHANGE: the prop is gone'], '0.2.0'],
  ['only fixes give a patch', ['fix(agent): one', 'docs: two', 'fix: three'], '0.1.1'],
  ['a feat gives a patch below 1.0 (docs/DEVELOPMENT.md)', ['feat: a new prop', 'test: a test'], '0.1.1'],
  ['perf and revert are releasable', ['perf: faster synth'], '0.1.1'],
  ['a fix(ci) is not releasable, a fix(release) is', ['fix(ci): a leg', 'fix(release): the tarball ships its notices'], '0.1.1'],
])('%s, in a clone without tags', (_name, messages, expected) => {
  const dir = clone(origin(messages));
  expect(explain(dir).next).toBe(expected);
  const out = projenMode(dir);
  expect(out.status).toBe(0);
  expect(out.stdout).toBe(expected);
});

test('from 1.0: breaking is major, feat minor, fix patch', () => {
  expect(explain(clone(origin(['fix: a', 'feat: b'], { version: '1.2.3', withCommit: true }))).next).toBe('1.3.0');
  expect(explain(clone(origin(['fix: a'], { version: '1.2.3', withCommit: true }))).next).toBe('1.2.4');
  expect(explain(clone(origin(['refactor!: a'], { version: '1.2.3', withCommit: true }))).next).toBe('2.0.0');
});

test('only docs, test, ci, chore, build, refactor and style commits: no release, and projen\'s command fails saying so', () => {
  const dir = clone(origin(['docs: a', 'test: b', 'ci: c', 'chore: d', 'build: e', 'refactor: f', 'style: g', 'fix(test): h']));
  expect(explain(dir).next).toBeNull();
  const out = projenMode(dir);
  expect(out.status).toBe(1);
  expect(out.stdout).toBe('');
  expect(out.stderr).toMatch(/nothing to release since 0\.1\.0 .*9 commit\(s\)/);
});

test('the commits counted are those after the recorded commit, or after the version file\'s last change', () => {
  // Recorded: the commit before `chore(release)`, so that commit itself is counted (a chore: not releasable).
  const withCommit = clone(origin(['docs: x']));
  expect(explain(withCommit).commits.map((c: { header: string }) => c.header)).toEqual(['docs: x', 'chore(release): 0.1.0']);
  // Not recorded: since the last change of release/version.json.
  const without = clone(origin(['fix: y'], { version: '0.1.0' }));
  expect(explain(without).commits.map((c: { header: string }) => c.header)).toEqual(['fix: y']);
  // A recorded commit this clone does not have (a squashed history): the file's last change.
  const dir = origin(['fix: z']);
  fs.writeFileSync(path.join(dir, 'release', 'version.json'), JSON.stringify({ version: '0.1.0', commit: '0'.repeat(40) }));
  git(dir, 'commit', '-q', '-a', '-m', 'chore: record');
  expect(explain(clone(dir)).next).toBeNull();
});

test('--restore-tag makes the recorded version\'s tag, locally, at the base; --record writes the file', () => {
  const dir = clone(origin(['fix: a']));
  const base = explain(dir).base;
  execFileSync('node', [script, '--restore-tag'], { cwd: dir, env });
  expect(git(dir, 'rev-parse', 'v0.1.0^{commit}')).toBe(base);
  execFileSync('node', [script, '--restore-tag'], { cwd: dir, env }); // a second run keeps it
  execFileSync('node', [script, '--record', '0.1.1'], { cwd: dir, env });
  expect(JSON.parse(fs.readFileSync(path.join(dir, 'release', 'version.json'), 'utf8')))
    .toEqual({ version: '0.1.1', commit: git(dir, 'rev-parse', 'HEAD') });
  expect(spawnSync('node', [script, '--record', 'v0.1.1'], { cwd: dir, env }).status).toBe(1);
});

test('this repository records its last release, and the version file\'s commit is in its history', () => {
  const record = JSON.parse(fs.readFileSync(path.join(root, 'release', 'version.json'), 'utf8'));
  expect(record.version).toMatch(/^\d+\.\d+\.\d+$/);
  expect(JSON.parse(fs.readFileSync(path.join(root, 'release', 'baseline', 'package.json'), 'utf8')).version).toBe(record.version);
});

// projen's bump passes VERSIONRCOPTIONS to commit-and-tag-version, which writes the entry with it.
test('the changelog generator leaves ci, test, chore, build, refactor, style and docs commits out, and keeps scopes whole', () => {
  const bump = JSON.parse(fs.readFileSync(path.join(root, '.projen', 'tasks.json'), 'utf8')).tasks.bump;
  const rc = JSON.parse(bump.env.VERSIONRCOPTIONS);
  const dir = clone(origin([
    'feat(agent): the run agent (docs/RUNS.md): checkpoints',
    'fix: a user-visible fix',
    'fix(ci): lint the leg table',
    'perf(ci): faster lanes',
    'perf(tools): a faster tool cache',
    'test: more tests',
    'ci: a new leg',
    'chore: tidy',
    'build: re-record the baseline',
    'refactor: move code',
    'style: format',
    'docs: explain',
  ]));
  execFileSync('node', [script, '--restore-tag'], { cwd: dir, env });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'x', version: '0.1.0' }));
  fs.writeFileSync(path.join(dir, '.versionrc.json'), JSON.stringify({
    packageFiles: [{ filename: 'package.json', type: 'json' }],
    bumpFiles: [{ filename: 'package.json', type: 'json' }],
    infile: 'changelog.md',
    header: '',
    releaseAs: '0.1.1',
    skip: { commit: true, tag: true },
    ...rc,
  }));
  execFileSync('node', [require.resolve('commit-and-tag-version/bin/cli.js')], { cwd: dir, env, stdio: 'pipe' });
  const changelog = fs.readFileSync(path.join(dir, 'changelog.md'), 'utf8');
  expect(changelog).toMatch(/\*\*agent:\*\* the run agent \(docs\/RUNS\.md\): checkpoints/);
  expect(changelog).toMatch(/a user-visible fix/);
  const hiddenOnes = ['lint the leg table', 'faster lanes', 'faster tool cache', 'more tests', 'a new leg', 'tidy', 're-record', 'move code', 'format', 'explain'];
  for (const hidden of hiddenOnes) {
    expect(changelog).not.toContain(hidden);
  }
  expect(changelog).not.toMatch(/BREAKING/);
});

test('check-release-commit accepts a complete chore(release) commit and names what one lacks', () => {
  const dir = origin([]);
  const write = (f: string, s: string) => {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), s);
  };
  const released = git(dir, 'rev-parse', 'HEAD');
  write('release/baseline/.jsii', JSON.stringify({ version: '0.2.0' }));
  write('release/baseline/package.json', JSON.stringify({ version: '0.2.0' }));
  write('release/baseline/template.json', '{}');
  write('CHANGELOG.md', '## [0.2.0](https://x) (2026-12-07)\n');
  write('release/version.json', JSON.stringify({ version: '0.2.0', commit: released }));
  git(dir, 'add', '.');
  git(dir, 'commit', '-q', '-m', 'chore(release): 0.2.0');
  expect(spawnSync('node', [checkCommit], { cwd: dir, env, encoding: 'utf8' }).status).toBe(0);
  // The same release without the version file (what the release path made before issue 31).
  git(dir, 'reset', '-q', '--soft', 'HEAD^');
  git(dir, 'reset', '-q', 'release/version.json');
  git(dir, 'commit', '-q', '-m', 'chore(release): 0.2.0');
  const out = spawnSync('node', [checkCommit], { cwd: dir, env, encoding: 'utf8' });
  expect(out.status).toBe(1);
  expect(out.stderr).toMatch(/release\/version\.json is not in the release commit/);
});

test('CHANGELOG.md\'s 0.1.0 entry is a user\'s: no breaking changes on a first release, no ci/test/release entries, no broken scopes', () => {
  const changelog = fs.readFileSync(path.join(root, 'CHANGELOG.md'), 'utf8');
  const first = changelog.slice(changelog.indexOf('## 0.1.0'));
  expect(first).not.toMatch(/BREAKING/);
  expect(first).not.toMatch(/\*\*(ci|test|release|build|chore)\b/);
  // A scope the old header pattern broke reads "**agent): ...:**".
  expect(first).not.toMatch(/\*\*[^*]*\)[^*]*:\*\*/);
  expect(first).not.toMatch(/\/issues\//);
});
