import * as zlib from 'zlib';
import { RUN_AGENT_LOADER } from './run-agent-loader';

/** Seconds the backstop waits beyond the run lifetime before it powers the instance off (docs/RUNS.md). */
export const BACKSTOP_MARGIN_SECONDS = 300;

/**
 * The transient systemd units of the agent and the backstop, when `systemd-run` works: ordered after
 * `network-online.target`, so that at shutdown systemd stops them before the network ("systemd.unit(5)": stop order
 * is the reverse of start order); `KillMode=mixed` sends the SIGTERM to the agent alone, which drains its command, and
 * the SIGKILL to what is left after `TimeoutStopSec` ("systemd.kill(5)"); 100 s covers the agent's SIGTERM drain (its
 * uploads end 80 s after the signal). cloud-init's leftover processes, by contrast, are signalled only after the
 * network units stop (`cloud-final.service`, `KillMode=process`).
 */
export const SYSTEMD_UNIT_PROPERTIES = ['After=network-online.target', 'Wants=network-online.target', 'KillMode=mixed',
  'TimeoutStopSec=100', 'StandardOutput=journal+console'];

/** Where cloud-init runs a script on every boot (`scripts-per-boot`, before `scripts-user` in `cloud_final_modules`). */
export const PER_BOOT_DIR = '/var/lib/cloud/scripts/per-boot';

/** The heredoc delimiter of the loader (`RUN_AGENT_LOADER`; no line of it may be it: checked). */
export const LOADER_DELIMITER = 'CHRONOS_BOOT_EOF';

/** The key of a run's agent in the bucket (the launcher uploads it: `contract.agent_key` of the run package). */
export const RUN_AGENT_KEY = '{env}/runs/{runId}/agent/chronos_run_agent.py';

export interface RunAgentUserDataOptions {
  /** The environment name, the bucket prefix `{env}/`. */
  readonly environmentName: string;
  /** The foundation's run lifetime: the agent uses the smaller of it and the spec's. */
  readonly maxRunLifetimeSeconds: number;
  /**
   * How the boot script is given: `gzip-base64` (gzipped and base64-encoded inside a script that writes it out and
   * runs it, for a user data that is not compressed as a whole) or `raw` (the boot script itself, the loader in a
   * quoted heredoc, for a user data gzip-compressed as a whole).
   * @default 'gzip-base64'
   */
  readonly embed?: 'gzip-base64' | 'raw';
}

/**
 * The run agent's part of the launch template's user data (docs/RUNS.md, "On the instance"): a bash script that
 * 1. writes the loader (`RUN_AGENT_LOADER`, a small standard-library Python script) to `/opt/chronos/chronos_boot.py`;
 * 2. reads the `ChronosRunId` instance tag through IMDSv2 (curl): a 404 is not a run (exit 0); any other failure (a
 *    timeout, a 401, a 5xx) is retried for about 30 s, and if it persists, the backstop still starts (fail safe);
 * 3. checks python3 >= 3.9, else says so on the console and powers off;
 * 4. installs a per-boot hook: on any later boot of the instance, `rebooted` writes that the attempt ended, then the
 *    power-off (user-data scripts run once per instance: a reboot would leave the instance with no agent);
 * 5. starts the backstop (the loader's: power-off at the lifetime plus five minutes, whatever the agent does);
 * 6. fetches the run's agent from the bucket (`RUN_AGENT_KEY`, which the launcher uploads when the run starts) with
 *    the loader, which retries briefly; if it cannot, the loader writes the status `failed` if S3 takes it, and the
 *    script powers off;
 * 7. starts the agent. The backstop and the agent each run as a transient systemd unit (`SYSTEMD_UNIT_PROPERTIES`),
 *    or, where `systemd-run` fails (no systemd), detached with `setsid`; their output goes to the console.
 *
 * EC2 takes at most 16 KB of user data before base64 (EC2 User Guide, "Run commands when you launch an EC2
 * instance with user data input": "User data is limited to 16 KB, in raw form, before it is base64-encoded"),
 * and this script shares it with the user's own part: the agent is not in it (docs/DESIGN.md, "The run on the
 * instance"), which leaves the user's part most of the 16 KB (test/private/run-agent-user-data.test.ts).
 * It names no bucket (a CDK token would keep the user data from being gzipped at synthesis): the loader and the agent
 * read the `ChronosBucket` instance tag, which the launcher sets (docs/RUNS.md).
 *
 * For tests only, the environment may set CHRONOS_HOME, CHRONOS_CONSOLE, CHRONOS_BACKSTOP_SECONDS,
 * CHRONOS_POWEROFF_COMMAND, CHRONOS_PER_BOOT_DIR, CHRONOS_AGENT_FETCH_SECONDS and AWS_EC2_METADATA_SERVICE_ENDPOINT
 * (cloud-init runs the script without them).
 */
export function runAgentUserData(options: RunAgentUserDataOptions): string {
  const lifetime = options.maxRunLifetimeSeconds;
  if (!Number.isInteger(lifetime) || lifetime <= 0) {
    throw new Error(`maxRunLifetimeSeconds must be a positive integer, got ${lifetime}`);
  }
  if (!/^[A-Za-z0-9._-]+$/.test(options.environmentName)) {
    throw new Error(`environmentName must be letters, digits, '.', '_' or '-', got '${options.environmentName}'`);
  }
  if (RUN_AGENT_LOADER.split('\n').includes(LOADER_DELIMITER)) {
    throw new Error(`the run agent's loader has a line '${LOADER_DELIMITER}', its heredoc delimiter in the user data`);
  }
  const poweroff = '${CHRONOS_POWEROFF_COMMAND:-systemctl poweroff}';
  const script = [
    '#!/bin/bash',
    `export CHRONOS_ENVIRONMENT='${options.environmentName}'`,
    `export CHRONOS_MAX_RUN_LIFETIME_SECONDS=${lifetime}`,
    'home="${CHRONOS_HOME:-/opt/chronos}" con="${CHRONOS_CONSOLE:-/dev/console}"',
    'imds="${AWS_EC2_METADATA_SERVICE_ENDPOINT:-http://169.254.169.254}/latest"',
    'say() { echo "chronos-user-data: $*" | tee -a "$con" >&2; }',
    // A transient unit (item 7 of docs/RUNS.md "On the instance"), else detached; $1 names it, $2 is the script, the rest its arguments.
    `start() { n=$1; shift; systemd-run -q --unit=chronos-$n ${SYSTEMD_UNIT_PROPERTIES.map(p => `-p ${p}`).join(' ')} -d ` +
      '-E CHRONOS_ENVIRONMENT -E CHRONOS_MAX_RUN_LIFETIME_SECONDS "$(command -v python3)" "$@" 2> /dev/null ||',
    '  { setsid python3 "$@" >> "$con" 2>&1 < /dev/null & echo $! > $n.pid; }; }',
    'mkdir -p "$home" && cd "$home" || exit 1',
    `cat > chronos_boot.py.tmp <<'${LOADER_DELIMITER}' && mv chronos_boot.py.tmp chronos_boot.py`,
    RUN_AGENT_LOADER + LOADER_DELIMITER,
    // Only a 404 means no such tag; a timeout (000), a 401 or a 5xx is retried.
    'for i in 1 2 3 4 5 6; do',
    '  t=$(curl -s -m 5 -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 300" "$imds/api/token")',
    '  c=$(curl -s -m 5 -o run-id -w "%{http_code}" -H "X-aws-ec2-metadata-token: $t" "$imds/meta-data/tags/instance/ChronosRunId")',
    '  case $c in 200|404) break; esac; sleep $i',
    'done',
    '[ "$c" = 404 ] && { say "no ChronosRunId instance tag: not a run"; exit 0; }',
    `backstop() { start backstop chronos_boot.py backstop "\${CHRONOS_BACKSTOP_SECONDS:-${lifetime + BACKSTOP_MARGIN_SECONDS}}"; }`,
    '[ "$c" = 200 ] || { say "IMDS failed (HTTP $c): only the backstop starts"; backstop; exit 1; }',
    'run=$(cat run-id)',
    'if ! python3 -c "import sys; sys.exit(sys.version_info < (3, 9))"; then',
    '  say "run $run: cannot run the agent (it needs python3 3.9 or later, found: $(python3 --version 2>&1)); powering off"',
    `  ${poweroff}; exit 1`,
    'fi',
    // A later boot: this script again, as the per-boot hook (cloud-init runs user data once per instance).
    `[ -e booted ] && { python3 chronos_run_agent.py rebooted >> "$con" 2>&1 || ${poweroff}; exit; }`,
    `touch booted; pb="\${CHRONOS_PER_BOOT_DIR:-${PER_BOOT_DIR}}"; mkdir -p "$pb" && cp "$0" "$pb/chronos-run-agent.sh" && chmod +x "$pb/chronos-run-agent.sh"`,
    'backstop',
    // The run's agent, as the launcher uploaded it; failing that, the loader wrote the status: the power-off.
    `python3 chronos_boot.py fetch "$run" 2>&1 | tee -a "$con" >&2; [ "\${PIPESTATUS[0]}" = 0 ] || { say "run $run: no run agent; powering off"; ${poweroff}; exit 1; }`,
    'start agent chronos_run_agent.py run',
    'say "run $run: agent started"',
    '',
  ].join('\n');
  if (options.embed === 'raw') {
    return script;
  }
  // The same script, gzipped and base64-encoded, in a script that writes it out and runs it.
  return [
    '#!/bin/bash',
    '# Chronos run agent (docs/RUNS.md): the boot script, gzipped.',
    'h="${CHRONOS_HOME:-/opt/chronos}"; mkdir -p "$h" && base64 -d <<\'EOF\' | gzip -dc > "$h/boot.sh" && exec bash "$h/boot.sh"',
    zlib.gzipSync(script, { level: 9 }).toString('base64'),
    'EOF',
    '',
  ].join('\n');
}
