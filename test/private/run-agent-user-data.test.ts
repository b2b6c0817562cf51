import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { BACKSTOP_MARGIN_SECONDS, compactPython, PER_BOOT_DIR, RAW_AGENT_DELIMITER, RUN_AGENT_SOURCE, runAgentUserData, SYSTEMD_UNIT_PROPERTIES } from '../../src/private/run-agent-user-data';

const OPTIONS = { environmentName: 'dev', maxRunLifetimeSeconds: 14400 };

/** The boot script the gzip-base64 script carries: the line between `base64 -d <<'EOF'` and `EOF`, gunzipped. */
function embedded(script: string): string {
  const lines = script.split('\n');
  const start = lines.findIndex(l => l.includes("base64 -d <<'EOF' | gzip -dc > \"$h/boot.sh\" && exec bash \"$h/boot.sh\""));
  expect(lines[start + 2]).toBe('EOF');
  return zlib.gunzipSync(Buffer.from(lines[start + 1], 'base64')).toString('utf-8');
}

/** The agent in a raw script: the lines of its quoted heredoc. */
function rawAgent(script: string): string {
  const lines = script.split('\n');
  const start = lines.indexOf(`cat > chronos_run_agent.py.tmp <<'${RAW_AGENT_DELIMITER}' && mv chronos_run_agent.py.tmp chronos_run_agent.py`);
  expect(start).toBeGreaterThan(0);
  return lines.slice(start + 1, lines.indexOf(RAW_AGENT_DELIMITER)).join('\n') + '\n';
}

describe('runAgentUserData', () => {
  // The construct package must not read a path outside its npm tarball at synthesis (issue 28): the agent it embeds
  // is its copy in assets/, which .npmignore keeps in the tarball ("!/assets/"; npm-packlist's rules: with a
  // .npmignore and no `files` list, every file it does not ignore is packed), and which the `bundle` task refreshes
  // from the Python run package's source (scripts/agent/embed.sh): the copy must be that source, byte for byte.
  test('embeds the agent from the package\'s own assets/, a current copy of the Python run package\'s agent', () => {
    const root = path.resolve(__dirname, '..', '..');
    expect(path.relative(root, RUN_AGENT_SOURCE)).toBe(path.join('assets', 'agent', 'chronos_run_agent.py'));
    const npmignore = fs.readFileSync(path.join(root, '.npmignore'), 'utf-8').split('\n');
    expect(npmignore).toContain('!/assets/');
    expect(npmignore.filter(l => /^\/?assets(\/agent(\/chronos_run_agent\.py)?)?\/?$/.test(l))).toEqual([]);
    const source = path.join(root, 'chronos-training', 'src', 'chronos_training', 'agent', 'chronos_run_agent.py');
    expect(fs.readFileSync(RUN_AGENT_SOURCE, 'utf-8')).toBe(fs.readFileSync(source, 'utf-8'));
  });

  // EC2 takes at most 16 KB of user data, "in raw form, before it is base64-encoded" (EC2 User Guide, "Run commands
  // when you launch an EC2 instance with user data input", https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/user-data.html).
  // The agent's part shares it with the user's own part and the MIME headers: 14.25 KB at most leaves them 1.75 KB
  // (test/compute checks the user's budget: at least 1,000 bytes).
  test('stays under 14.25 KB of the 16 KB of user data EC2 takes', () => {
    const script = runAgentUserData(OPTIONS);
    expect(Buffer.byteLength(script)).toBeLessThanOrEqual(14.25 * 1024);
  });

  test('gzip-base64: a script that writes the raw boot script, gzipped and base64-encoded, and runs it', () => {
    const script = runAgentUserData(OPTIONS);
    expect(script.split('\n')[0]).toBe('#!/bin/bash');
    expect(embedded(script)).toBe(runAgentUserData({ ...OPTIONS, embed: 'raw' }));
    const agent = rawAgent(embedded(script));
    const source = fs.readFileSync(RUN_AGENT_SOURCE, 'utf-8');
    expect(agent).toBe(compactPython(source));
    expect(agent).toMatch(/^#!\/usr\/bin\/env python3\n/);
    expect(agent).toContain('def sigv4(');
    // The compacted form drops only comments, docstrings and spaces (test/agent checks the syntax trees match).
    expect(agent.length).toBeGreaterThan(source.length * 0.6);
  });

  test('sets the environment and the lifetime, not the bucket (the ChronosBucket tag), and the backstop at the lifetime plus five minutes', () => {
    const script = runAgentUserData({ ...OPTIONS, embed: 'raw' });
    expect(script.startsWith('#!/bin/bash\n')).toBe(true);
    expect(script).toContain("export CHRONOS_ENVIRONMENT='dev'\n");
    expect(script.replace(rawAgent(script), '')).not.toContain('CHRONOS_BUCKET');
    expect(script).toContain('export CHRONOS_MAX_RUN_LIFETIME_SECONDS=14400');
    expect(script).toContain(`backstop --deadline-seconds "\${CHRONOS_BACKSTOP_SECONDS:-${14400 + BACKSTOP_MARGIN_SECONDS}}"`);
    expect(BACKSTOP_MARGIN_SECONDS).toBe(300);
  });

  // IMDSv2: "If you request a metadata item that doesn't exist, you get 404 Not Found"; a bad token is 401 (EC2 User
  // Guide, "Use the Instance Metadata Service to access instance metadata", "Retrieve instance metadata" and
  // "IMDSv2"). Only the 404 of the tag means "no ChronosRunId tag"; test/agent runs the script against a metadata
  // server that answers 503 and 401.
  test('reads the run tag through IMDSv2: only a 404 is "not a run"; other answers are retried, then the backstop alone starts', () => {
    const script = runAgentUserData({ ...OPTIONS, embed: 'raw' });
    const tagRead = script.indexOf('tags/instance/ChronosRunId');
    expect(script).toContain('-X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 300"');
    expect(script).toContain('-w "%{http_code}"');
    expect(script).not.toContain('curl -sf'); // -f would fold a 401 or a 5xx into the 404's empty answer
    expect(script).toMatch(/case \$c in 200\|404\) break; esac; sleep \$i\ndone\n\[ "\$c" = 404 \] && \{ say "no ChronosRunId instance tag: not a run"; exit 0; \}/);
    expect(script).toMatch(/\[ "\$c" = 200 \] \|\| \{ say "IMDS failed \(HTTP \$c\): only the backstop starts"; backstop; exit 1; \}/);
    expect(script.indexOf('not a run"; exit 0')).toBeGreaterThan(tagRead);
    expect(script.indexOf('sys.version_info < (3, 9)')).toBeGreaterThan(script.indexOf('only the backstop starts'));
    expect(script.indexOf('\nstart agent run\n')).toBeGreaterThan(script.indexOf('sys.version_info < (3, 9)'));
  });

  // systemd-run(1): "-E NAME[=VALUE], --setenv=NAME[=VALUE] ... When "=" and VALUE are omitted, the value of the
  // variable with the same name in the program environment will be used"; "-d, --same-dir" (the working directory);
  // systemd.kill(5): "If set to mixed, the SIGTERM signal is sent to the main process while the subsequent SIGKILL
  // signal is sent to all remaining processes of the unit's control group"; systemd.unit(5), After=: "When two units
  // with an ordering dependency between them are shut down, the inverse of the start-up order is applied": the agent
  // stops before network-online.target, so its SIGTERM drain still has the network. cloud-init's leftover processes
  // (cloud-final.service, KillMode=process) are signalled only after the network units stop.
  test('starts the backstop and the agent as transient systemd units ordered after the network, else detached with setsid', () => {
    const script = runAgentUserData({ ...OPTIONS, embed: 'raw' });
    expect(SYSTEMD_UNIT_PROPERTIES).toEqual(['After=network-online.target', 'Wants=network-online.target', 'KillMode=mixed',
      'TimeoutStopSec=100', 'StandardOutput=journal+console']);
    const start = script.split('\n').findIndex(l => l.startsWith('start() {'));
    expect(script.split('\n')[start]).toBe('start() { n=$1; shift; systemd-run -q --unit=chronos-$n -p After=network-online.target ' +
      '-p Wants=network-online.target -p KillMode=mixed -p TimeoutStopSec=100 -p StandardOutput=journal+console -d ' +
      '-E CHRONOS_ENVIRONMENT -E CHRONOS_MAX_RUN_LIFETIME_SECONDS "$(command -v python3)" chronos_run_agent.py "$@" 2> /dev/null ||');
    expect(script.split('\n')[start + 1]).toBe('  { setsid python3 chronos_run_agent.py "$@" >> "$con" 2>&1 < /dev/null & echo $! > $n.pid; }; }');
    expect(script).toMatch(/\nbackstop\nstart agent run\n/);
    expect(script).toContain('backstop() { start backstop backstop --deadline-seconds');
    // The agent's SIGTERM drain (uploads until 80 s after the signal) fits the unit's stop timeout.
    expect(fs.readFileSync(RUN_AGENT_SOURCE, 'utf-8')).toContain('"the agent received SIGTERM", 20, time.time() + 80)');
  });

  // cloud-init runs user-data scripts once per instance (scripts-user) and the scripts in
  // /var/lib/cloud/scripts/per-boot on every boot, scripts-per-boot before scripts-user (cloud-init's
  // config/cloud.cfg.tmpl, cloud_final_modules; "Run per-boot scripts", cc_scripts_per_boot).
  test('installs itself as a per-boot hook that, on a later boot, writes the status (rebooted) and powers off', () => {
    const script = runAgentUserData({ ...OPTIONS, embed: 'raw' });
    expect(PER_BOOT_DIR).toBe('/var/lib/cloud/scripts/per-boot');
    expect(script).toContain('[ -e booted ] && { python3 chronos_run_agent.py rebooted >> "$con" 2>&1 || ${CHRONOS_POWEROFF_COMMAND:-systemctl poweroff}; exit; }\n' +
      'touch booted; pb="${CHRONOS_PER_BOOT_DIR:-/var/lib/cloud/scripts/per-boot}"; mkdir -p "$pb" && cp "$0" "$pb/chronos-run-agent.sh" && chmod +x "$pb/chronos-run-agent.sh"\n');
    // after the tag and the Python check, before anything starts
    expect(script.indexOf('[ -e booted ]')).toBeGreaterThan(script.indexOf('sys.version_info < (3, 9)'));
    expect(script.indexOf('[ -e booted ]')).toBeLessThan(script.indexOf('\nbackstop\n'));
  });

  test('embedded raw, the agent is the file, compacted, in a quoted heredoc; gzipped as a whole, it is smaller than gzip-base64', () => {
    const raw = runAgentUserData({ ...OPTIONS, embed: 'raw' });
    expect(rawAgent(raw)).toBe(compactPython(fs.readFileSync(RUN_AGENT_SOURCE, 'utf-8')));
    expect(zlib.gzipSync(raw, { level: 9 }).length).toBeLessThan(Buffer.byteLength(runAgentUserData(OPTIONS)) * 0.76);
  });

  test('fits EC2\'s 16 KB as a raw MIME part beside a user part of 1 KB; base64-encoded (MultipartBody.fromUserData) it would not', () => {
    const stack = new Stack();
    const script = runAgentUserData(OPTIONS);
    const userPart = ec2.UserData.forLinux();
    userPart.addCommands(`echo '${'x'.repeat(700)}'`);
    const raw = new ec2.MultipartUserData();
    raw.addPart(ec2.MultipartBody.fromRawBody({ contentType: ec2.MultipartBody.SHELL_SCRIPT, body: script }));
    raw.addPart(ec2.MultipartBody.fromUserData(userPart));
    const rendered = stack.resolve(raw.render());
    // The user part is base64-encoded by CDK (Fn::Base64): count its encoded size.
    const size = (rendered['Fn::Join'][1] as any[]).reduce((n: number, p: any) =>
      n + (typeof p === 'string' ? Buffer.byteLength(p) : Math.ceil(Buffer.byteLength(p['Fn::Base64']) / 3) * 4), 0);
    expect(size).toBeLessThanOrEqual(16 * 1024);
    expect(Math.ceil(Buffer.byteLength(script) / 3) * 4).toBeGreaterThan(16 * 1024);
  });

  test('refuses a lifetime that is not a positive integer and an environment name that would need quoting', () => {
    expect(() => runAgentUserData({ ...OPTIONS, maxRunLifetimeSeconds: 0 })).toThrow(/positive integer/);
    expect(() => runAgentUserData({ ...OPTIONS, maxRunLifetimeSeconds: 1.5 })).toThrow(/positive integer/);
    expect(() => runAgentUserData({ ...OPTIONS, environmentName: "dev'; rm -rf /" })).toThrow(/environmentName/);
  });
});

describe('compactPython', () => {
  test('drops comments, docstrings, blank lines and spaces next to punctuation, joins bracketed lines and one-statement blocks, indents one space a level, and calls self o', () => {
    const source = [
      '#!/usr/bin/env python3',
      '# a comment',
      'def f(self, x):',
      '    """One line."""',
      '    y = "a # b, c"  # trailing, with "quotes"',
      '',
      '    if x and self.y:',
      '        """Two',
      '        lines."""',
      '        return (y +',
      '                x)  # why',
      "    return '#' if x else -1",
      '',
    ].join('\n');
    expect(compactPython(source)).toBe(['#!/usr/bin/env python3', 'def f(o,x):', ' y="a # b, c"', ' if x and o.y:return(y+x)',
      " return '#' if x else-1", ''].join('\n'));
  });

  test('refuses a source that uses the name it gives self', () => {
    expect(() => compactPython('def f(self):\n    o = 1\n')).toThrow(/uses the name 'o'/);
    expect(compactPython('x = 0o644\n')).toBe('x=0o644\n');
    // a block of one compound statement stays on its own line
    expect(compactPython('if a:\n    if b:\n        c()\n')).toBe('if a:\n if b:c()\n');
  });
});
