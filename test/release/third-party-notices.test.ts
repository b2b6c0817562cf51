/*
 * Code bundled into the package ships its license notices (issue 31): scripts/release/third-party-notices.js writes
 * THIRD-PARTY-NOTICES.txt beside each bundle in assets/ with the license text of every package esbuild inlined.
 * Each case bundles a handler with the project's esbuild in a temporary project.
 */
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const root = path.join(__dirname, '..', '..');
const script = path.join(root, 'scripts', 'release', 'third-party-notices.js');
const esbuild = path.join(root, 'node_modules', '.bin', 'esbuild');
const tmp: string[] = [];
afterAll(() => tmp.forEach(d => fs.rmSync(d, { recursive: true, force: true })));

function project(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'notices-'));
  tmp.push(dir);
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  // esbuild's own license, for its runtime helpers.
  fs.cpSync(path.join(root, 'node_modules', 'esbuild'), path.join(dir, 'node_modules', 'esbuild'), { recursive: true, dereference: true });
  return dir;
}
const lib = (name: string, license: string, licenseFile?: string) => ({
  [`node_modules/${name}/package.json`]: JSON.stringify({ name, version: '1.2.3', license, main: 'index.js' }),
  [`node_modules/${name}/index.js`]: `exports.hello = () => '${name}';\n`,
  ...(licenseFile ? { [`node_modules/${name}/LICENSE`]: licenseFile } : {}),
});
const bundle = (dir: string, extra: string[] = []) => execFileSync(esbuild,
  ['--bundle', 'src/h.lambda.ts', '--platform=node', '--outfile=assets/h.lambda/index.js', '--external:@aws-sdk/*', ...extra],
  { cwd: dir, stdio: 'pipe' });
const notices = (dir: string) => spawnSync('node', [script, dir], { encoding: 'utf8' });

test('a bundle that inlines a package ships that package\'s license text, and esbuild\'s for its helpers', () => {
  const dir = project({
    ...lib('left-pad-x', 'MIT', 'MIT License\n\nCopyright (c) 2026 Left Pad X authors\n'),
    ...lib('@scope/util-y', 'ISC', 'ISC License\n\nCopyright (c) 2026 Util Y\n'),
    'src/h.lambda.ts': "import { hello } from 'left-pad-x';\nimport * as y from '@scope/util-y';\nimport { EC2Client } from '@aws-sdk/client-ec2';\n" +
      'export const handler = async () => [hello(), y.hello(), EC2Client.name];\n',
  });
  bundle(dir);
  const out = notices(dir);
  expect(out.stderr).toBe('');
  expect(out.status).toBe(0);
  const text = fs.readFileSync(path.join(dir, 'assets', 'h.lambda', 'THIRD-PARTY-NOTICES.txt'), 'utf8');
  expect(text).toContain('=== left-pad-x 1.2.3 (MIT) ===');
  expect(text).toContain('Copyright (c) 2026 Left Pad X authors');
  expect(text).toContain('=== @scope/util-y 1.2.3 (ISC) ===');
  expect(text).toContain('Copyright (c) 2026 Util Y');
  expect(text).toMatch(/=== esbuild [\d.]+ \(MIT\) \(its runtime helpers/);
  expect(text).not.toMatch(/client-ec2 /); // external: not bundled
});

test('a bundled package without a license file, and a minified bundle, fail', () => {
  const dir = project({ ...lib('no-license-z', 'MIT'), 'src/h.lambda.ts': "export { hello as handler } from 'no-license-z';\n" });
  bundle(dir);
  let out = notices(dir);
  expect(out.status).toBe(1);
  expect(out.stderr).toMatch(/bundles no-license-z@1\.2\.3 \(MIT\), whose package has no license file/);
  fs.writeFileSync(path.join(dir, 'node_modules', 'no-license-z', 'LICENSE.md'), 'MIT License\n');
  bundle(dir, ['--minify']);
  out = notices(dir);
  expect(out.status).toBe(1);
  expect(out.stderr).toMatch(/no esbuild module comments \(minified\?\)/);
});

test('the bundle task writes the notices after every bundle step, and the reaper\'s says what it contains', () => {
  const tasks = JSON.parse(fs.readFileSync(path.join(root, '.projen', 'tasks.json'), 'utf8')).tasks;
  const steps = tasks.bundle.steps;
  expect(steps[steps.length - 1]).toEqual({ exec: 'node scripts/release/third-party-notices.js' });
  const reaper = path.join(root, 'assets', 'guardrails', 'training-run-reaper.lambda', 'THIRD-PARTY-NOTICES.txt');
  // jest runs after `bundle` (the test task's first step), which wrote it.
  expect(fs.readFileSync(reaper, 'utf8')).toMatch(/^Third-party notices for index\.js .*\nThe AWS SDK for JavaScript v3 it imports is not bundled/);
});
