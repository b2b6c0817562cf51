import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.join(__dirname, '..', '..');
const GUARD = path.join(ROOT, 'scripts', 'release', 'api-guard.js');

/**
 * A baseline whose assembly has one public property more than the current build (`.jsii`
 * after `npx projen compile`): to jsii-diff, the new build removed it.
 */
function baselineWithExtraProperty(dir: string, type: string, property: string): void {
  const assembly = JSON.parse(fs.readFileSync(path.join(ROOT, '.jsii'), 'utf8'));
  const fqn = `${assembly.name}.${type}`;
  expect(assembly.types[fqn]).toBeDefined();
  assembly.types[fqn].properties = [...(assembly.types[fqn].properties ?? []), {
    name: property,
    immutable: true,
    type: { primitive: 'string' },
    docs: { summary: 'A property the next build drops.' },
    locationInModule: { filename: 'src/index.ts', line: 1 },
  }];
  fs.writeFileSync(path.join(dir, '.jsii'), JSON.stringify(assembly));
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'));
}

function guard(...args: string[]) {
  const run = spawnSync(process.execPath, [GUARD, ...args], { cwd: ROOT, encoding: 'utf8' });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

describe('breaking-change guard: public API (jsii-diff --error-on all)', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'api-guard-'));
    baselineWithExtraProperty(dir, 'ChronosTrainingStack', 'retiredSetting');
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('fails (exit 1) and names the property when the build removes a public property of the baseline', () => {
    const { status, output } = guard('--baseline', dir, '--allow', path.join(dir, 'none.txt'));
    expect(output).toMatch(/removed:@chronos\/training-infra\.ChronosTrainingStack\.retiredSetting/);
    expect(output).toMatch(/has been removed/);
    expect(status).toBe(1);
  }, 60_000);

  test('passes when the break is marked as intended in the allow list', () => {
    const allow = path.join(dir, 'allowed.txt');
    fs.writeFileSync(allow, '# intended\nremoved:@chronos/training-infra.ChronosTrainingStack.retiredSetting\n');
    const { status, output } = guard('--baseline', dir, '--allow', allow);
    expect(output).toMatch(/no unallowed API change/);
    expect(status).toBe(0);
  }, 60_000);

  test('fails (exit 2), not passes, when the baseline cannot be read', () => {
    const { status, output } = guard('--baseline', path.join(dir, 'missing'));
    expect(output).toMatch(/is missing/);
    expect(status).toBe(2);
  });
});
