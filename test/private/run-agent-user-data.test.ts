import * as zlib from 'zlib';
import { RUN_AGENT_LOADER } from '../../src/private/run-agent-loader';
import { BACKSTOP_MARGIN_SECONDS, LOADER_DELIMITER, PER_BOOT_DIR, runAgentUserData, SYSTEMD_UNIT_PROPERTIES } from '../../src/private/run-agent-user-data';

const OPTIONS = { environmentName: 'dev', maxRunLifetimeSeconds: 14400 };

/** The boot script the gzip-base64 script carries: the line between `base64 -d <<'EOF'` and `EOF`, gunzipped. */
function embedded(script: string): string {
  const lines = script.split('\n');
  const start = lines.findIndex(l => l.includes("base64 -d <<'EOF' | gzip -dc > \"$h/boot.sh\" && exec bash \"$h/boot.sh\""));
  expect(lines[start + 2]).toBe('EOF');
  return zlib.gunzipSync(Buffer.from(lines[start + 1], 'base64')).toString('utf-8');
}

/** The loader in a raw script: the lines of its quoted heredoc. */
function rawLoader(script: string): string {
  const lines = script.split('\n');
  const start = lines.indexOf(`cat > chronos_boot.py.tmp <<'${LOADER_DELIMITER}' && mv chronos_boot.py.tmp chronos_boot.py`);
  expect(start).toBeGreaterThan(0);
  return lines.slice(start + 1, lines.indexOf(LOADER_DELIMITER)).join('\n') + '\n';
}

describe('runAgentUserData', () => {
  // The agent is not in the user data (docs/DESIGN.md, "The run on the instance"): the launcher uploads it with the
  // run, and the loader fetches it. Nothing reads the Python run package's files at synthesis.
  test('carries the loader, not the agent: the loader fetches the run\'s agent from the bucket with SigV4', () => {
    const script = runAgentUserData({ ...OPTIONS, embed: 'raw' });
    expect(rawLoader(script)).toBe(RUN_AGENT_LOADER);
    expect(RUN_AGENT_LOADER).toMatch(/^#!\/usr\/bin\/env python3\n/);
    expect(RUN_AGENT_LOADER).toContain('"%s/runs/%s/agent/chronos_run_agent.py" % (E["CHRONOS_ENVIRONMENT"], run_id)');
    expect(RUN_AGENT_LOADER).toContain('AWS4-HMAC-SHA256');
    expect(script).not.toContain('def supervise(');
  });

  // EC2 takes at most 16 KB of user data, "in raw form, before it is base64-encoded" (EC2 User Guide, "Run commands
  // when you launch an EC2 instance with user data input", https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/user-data.html).
  // The agent's part shares it with the user's own part and the MIME headers: at most 5.5 KB (gzip-base64, the
  // uncompressed archive's form) leaves the user's part over 10 KB (test/compute checks the user's budget).
  test('stays under 5.5 KB of the 16 KB of user data EC2 takes, whatever the agent\'s size', () => {
    const script = runAgentUserData(OPTIONS);
    expect(Buffer.byteLength(script)).toBeLessThanOrEqual(5.5 * 1024);
  });

  test('gzip-base64: a script that writes the raw boot script, gzipped and base64-encoded, and runs it', () => {
    const script = runAgentUserData(OPTIONS);
    expect(script.split('\n')[0]).toBe('#!/bin/bash');
    expect(embedded(script)).toBe(runAgentUserData({ ...OPTIONS, embed: 'raw' }));
    expect(rawLoader(embedded(script))).toBe(RUN_AGENT_LOADER);
  });

  test('sets the environment and the lifetime, not the bucket (the ChronosBucket tag), and the backstop at the lifetime plus five minutes', () => {
    const script = runAgentUserData({ ...OPTIONS, embed: 'raw' });
    expect(script.startsWith('#!/bin/bash\n')).toBe(true);
    expect(script).toContain("export CHRONOS_ENVIRONMENT='dev'\n");
    expect(script.replace(rawLoader(script), '')).not.toContain('CHRONOS_BUCKET');
    expect(script).toContain('export CHRONOS_MAX_RUN_LIFETIME_SECONDS=14400');
    expect(script).toContain(`backstop() { start backstop chronos_boot.py backstop "\${CHRONOS_BACKSTOP_SECONDS:-${14400 + BACKSTOP_MARGIN_SECONDS}}"; }`);
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
    expect(script.indexOf('\nstart agent chronos_run_agent.py run\n')).toBeGreaterThan(script.indexOf('sys.version_info < (3, 9)'));
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
      '-E CHRONOS_ENVIRONMENT -E CHRONOS_MAX_RUN_LIFETIME_SECONDS "$(command -v python3)" "$@" 2> /dev/null ||');
    expect(script.split('\n')[start + 1]).toBe('  { setsid python3 "$@" >> "$con" 2>&1 < /dev/null & echo $! > $n.pid; }; }');
    // The backstop first, then the fetch (which may fail: the backstop runs regardless), then the agent.
    expect(script).toMatch(/\nbackstop\npython3 chronos_boot\.py fetch "\$run" 2>&1 \| tee -a "\$con" >&2; \[ "\$\{PIPESTATUS\[0\]\}" = 0 \] \|\| \{ say "run \$run: no run agent; powering off"; \$\{CHRONOS_POWEROFF_COMMAND:-systemctl poweroff\}; exit 1; \}\nstart agent chronos_run_agent\.py run\n/);
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

  test('refuses a lifetime that is not a positive integer and an environment name that would need quoting', () => {
    expect(() => runAgentUserData({ ...OPTIONS, maxRunLifetimeSeconds: 0 })).toThrow(/positive integer/);
    expect(() => runAgentUserData({ ...OPTIONS, maxRunLifetimeSeconds: 1.5 })).toThrow(/positive integer/);
    expect(() => runAgentUserData({ ...OPTIONS, environmentName: "dev'; rm -rf /" })).toThrow(/environmentName/);
  });
});
