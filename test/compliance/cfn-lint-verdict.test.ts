/*
 * scripts/scan/cfn_lint_verdict.py, which decides whether the scan's cfn-lint run can be trusted (issue 32: with
 * `|| true`, a cfn-lint that crashed counted as zero findings). cfn-lint's README, "Exit Codes": the exit code is the
 * bitwise OR of 2 (error), 4 (warning) and 8 (informational); its source (cfnlint/runner/cli.py) exits 1 on a
 * configuration error or an exception and 32 on an unsupported region, and with --info logs "Run scan of template
 * FILE" for each template it lints (cfnlint/runner/template/runner.py).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const SCRIPT = path.join(__dirname, '..', '..', 'scripts', 'scan', 'cfn_lint_verdict.py');
const TEMPLATES = ['/t/dev.template.json', '/t/stage.template.json', '/t/prod.template.json'];
const scanned = (templates: string[]) =>
  templates.map(t => `2026-12-07 17:00:00,000 - cfnlint.runner.template.runner - INFO - Run scan of template ${t}\n`).join('');
const FINDING = '/t/dev.template.json:3:5:3:9:W3010:Don\'t hardcode us-east-1a for AvailabilityZones';

function verdict(rc: number, findings: string, log: string, templates = TEMPLATES) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cfn-lint-verdict-'));
  try {
    fs.writeFileSync(path.join(dir, 'lint.txt'), findings);
    fs.writeFileSync(path.join(dir, 'lint.log'), log);
    const run = spawnSync('python3', [SCRIPT, String(rc), path.join(dir, 'lint.txt'), path.join(dir, 'lint.log'), ...templates], { encoding: 'utf8' });
    return { status: run.status, stderr: run.stderr };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('every template linted, no finding, exit 0: trusted', () => {
  expect(verdict(0, '', scanned(TEMPLATES))).toEqual({ status: 0, stderr: '' });
});

test.each([
  [2, 'an error'], [4, 'a warning'], [6, 'an error and a warning'], [8, 'an informational finding'], [14, 'all three'],
])('exit %d (%s) with its findings printed: trusted (the findings themselves fail the scan)', (rc) => {
  expect(verdict(rc, `${FINDING}\n`, scanned(TEMPLATES)).status).toBe(0);
});

test.each([
  [1, 'a crash or a configuration error'], [32, 'an unsupported region'], [3, 'an odd code'], [16, 'a bit cfn-lint does not document'],
])('exit %d (%s) is not a lint, whatever it printed', (rc) => {
  const r = verdict(rc, '', scanned(TEMPLATES));
  expect(r.status).toBe(1);
  expect(r.stderr).toBe(`scan: cfn-lint exited ${rc}, not a documented code (0, or an OR of 2 error, 4 warning, 8 informational): it did not lint\n`);
});

test('findings by the exit code but none printed, or printed with exit 0, are not trusted', () => {
  expect(verdict(2, '', scanned(TEMPLATES)).stderr).toBe('scan: cfn-lint exited 2 (findings) but printed none\n');
  expect(verdict(0, `${FINDING}\n`, scanned(TEMPLATES)).stderr).toBe('scan: cfn-lint printed 1 finding(s) but exited 0\n');
});

test('a template its log does not name was not linted', () => {
  const r = verdict(0, '', scanned(TEMPLATES.slice(0, 2)));
  expect(r.status).toBe(1);
  expect(r.stderr).toBe('scan: cfn-lint linted 2 of the 3 templates (not: /t/prod.template.json)\n');
  expect(verdict(0, '', '', []).stderr).toBe('scan: no templates to lint\n');
});

test('the scan runs cfn-lint with --info and without `|| true`, through the verdict', () => {
  const script = fs.readFileSync(path.join(__dirname, '..', '..', 'scripts', 'scan', 'run.sh'), 'utf8');
  const lint = script.split('\n').filter(l => l.includes('/bin/cfn-lint"'));
  expect(lint).toHaveLength(1);
  expect(lint[0]).toMatch(/--info .*\|\| lint_rc=\$\?$/);
  expect(script).toMatch(/python3 scripts\/scan\/cfn_lint_verdict\.py "\$lint_rc" "\$out\/lint\.txt" "\$out\/lint\.log" "\$\{templates\[@\]\}"/);
});
