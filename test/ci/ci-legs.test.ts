/*
 * The legs of `npm run ci` (.projen/tasks.json, made from .projenrc.ts): the suites that run nowhere else are legs
 * of their own, so that none can leave CI unnoticed (issue 32). scripts/ci/leg.js runs each `[name, command]` of a
 * `lanes` step and each `run NAME -- COMMAND` step.
 */
import * as fs from 'fs';
import * as path from 'path';

const tasks = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '.projen', 'tasks.json'), 'utf8')).tasks;

/** Every leg of the ci task, by name, with its command. */
function ciLegs(): Map<string, string> {
  const legs = new Map<string, string>();
  for (const step of tasks.ci.steps as Array<{ exec?: string }>) {
    const lanes = /^node scripts\/ci\/leg\.js lanes '(.*)'$/.exec(step.exec ?? '');
    if (lanes) {
      for (const lane of JSON.parse(lanes[1]) as Array<Array<[string, string]>>) for (const [name, command] of lane) legs.set(name, command);
    }
    const run = /^node scripts\/ci\/leg\.js run (\S+) -- (.*)$/.exec(step.exec ?? '');
    if (run) legs.set(run[1], run[2]);
  }
  return legs;
}

test('the Python suite, the agent\'s scenarios and the run package\'s suite (the launcher) are legs of their own', () => {
  const legs = ciLegs();
  expect(legs.get('test:python')).toBe('projen test:python');
  expect(legs.get('test:run-package')).toMatch(/projen test:run-package$/);
  expect(legs.get('scan')).toMatch(/projen scan$/);
});

// Issue 28: the launcher is the Python run package's (scripts/test-run-package.sh runs its suite); nothing of the
// TypeScript launcher is left to run.
test('the run package\'s leg runs its suite, and no TypeScript launcher task is left', () => {
  expect(tasks['test:run-package'].steps).toEqual([{ exec: 'bash scripts/test-run-package.sh', receiveArgs: true }]);
  expect(JSON.stringify(tasks)).not.toMatch(/bundle:cli|test:cli|assets\/cli/);
});

test('the agent\'s leg runs with CI=true, which requires its scenarios under Python 3.9', () => {
  expect(ciLegs().get('test:agent')).toMatch(/^CI=true (nice -n \d+ )?projen test:agent$/);
  expect(tasks['test:agent'].steps).toEqual([{ exec: 'bash scripts/test-agent.sh', receiveArgs: true }]);
});

test('the Python suite\'s leg runs the suite of test-python/', () => {
  expect(tasks['test:python'].steps).toEqual([{ exec: 'bash scripts/test-python.sh' }]);
  const script = fs.readFileSync(path.join(__dirname, '..', '..', 'scripts', 'test-python.sh'), 'utf8');
  expect(script).toMatch(/-m pytest test-python /);
});
