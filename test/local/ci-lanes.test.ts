import * as fs from 'fs';
import * as path from 'path';

const ROOT = path.join(__dirname, '..', '..');
const tasks = JSON.parse(fs.readFileSync(path.join(ROOT, '.projen', 'tasks.json'), 'utf8')).tasks;

/** The lanes of `ci` as scripts/ci/leg.js runs them (`node scripts/ci/leg.js lanes '<json>'`): lanes of [name, command]. */
function lanes(): Array<Array<[string, string]>> {
  return tasks.ci.steps.map((s: { exec?: string }) => /^node scripts\/ci\/leg\.js lanes '(.*)'$/.exec(s.exec ?? '')?.[1])
    .filter((j: string | undefined) => j !== undefined).flatMap((j: string) => JSON.parse(j));
}

describe('ci', () => {
  // Issue 28: the launcher is the Python run package's; its suite (scripts/test-run-package.sh) is a leg of CI in the
  // lane of the other emulator tests, and nothing of the TypeScript launcher is left to run.
  test('runs the Python run package\'s suite as a leg, beside the agent\'s, and no TypeScript launcher leg', () => {
    expect(tasks['test:run-package'].steps).toEqual([{ exec: 'bash scripts/test-run-package.sh', receiveArgs: true }]);
    const lane = lanes().find(l => l.some(([name]) => name === 'test:agent'))!;
    expect(lane.map(([name]) => name)).toEqual(['test:agent', 'test:run-package', 'scan']);
    expect(lane[1][1]).toBe('nice -n 5 projen test:run-package');
    expect(JSON.stringify(tasks)).not.toMatch(/bundle:cli|test:cli|assets\/cli/);
  });
});
