import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';

/**
 * The run agent's source, `agent/chronos_run_agent.py` at the package root: the same path from `src/private`
 * (ts-jest) and `lib/private` (compiled), and shipped in the npm tarball (hence in the Python wheel's).
 */
export const RUN_AGENT_SOURCE = path.join(__dirname, '..', '..', 'agent', 'chronos_run_agent.py');

/** Seconds the backstop waits beyond the run lifetime before it powers the instance off (docs/RUNS.md). */
export const BACKSTOP_MARGIN_SECONDS = 300;

/** The heredoc delimiter of the agent embedded raw (no line of the agent may be it: checked). */
export const RAW_AGENT_DELIMITER = 'CHRONOS_RUN_AGENT_EOF';

export interface RunAgentUserDataOptions {
  /** The environment name, the bucket prefix `{env}/`. */
  readonly environmentName: string;
  /** The foundation's run lifetime: the agent uses the smaller of it and the spec's. */
  readonly maxRunLifetimeSeconds: number;
  /**
   * How the agent is embedded: `gzip-base64` (gzipped and base64-encoded, for a user data that is not compressed as
   * a whole) or `raw` (as text in a quoted heredoc, for a user data gzip-compressed as a whole, which compresses it
   * better than the inner gzip would and without base64's third more).
   * @default 'gzip-base64'
   */
  readonly embed?: 'gzip-base64' | 'raw';
}

/**
 * The agent as embedded: the same code without what only a reader needs (comment lines, trailing comments,
 * docstrings, blank lines) and with one space per indentation level, to save about 2 KB of user data.
 * A line-based rewrite for the agent's own style (4-space indents, double-quoted strings); the agent's test suite
 * checks that its result parses to the same syntax tree as the file, docstrings aside.
 */
export function compactPython(source: string): string {
  const out: string[] = [];
  let inDocstring = false;
  for (const line of source.split('\n')) {
    const text = line.trim();
    if (inDocstring) {
      inDocstring = !text.endsWith('"""');
      continue;
    }
    if (text.startsWith('"""') && out.length > 0) { // a docstring (the agent has no other line starting with one)
      inDocstring = text.length < 6 || !text.endsWith('"""');
      continue;
    }
    if (text === '' || (text.startsWith('#') && !line.startsWith('#!'))) {
      continue;
    }
    let code = line.trimStart();
    const comment = code.search(/\s+# [^"']*$/);
    if (comment > 0 && (code.slice(0, comment).split('"').length - 1) % 2 === 0) {
      code = code.slice(0, comment);
    }
    out.push(' '.repeat(Math.floor((line.length - line.trimStart().length) / 4)) + code);
  }
  return out.join('\n') + '\n';
}

/**
 * The run agent's part of the launch template's user data (docs/RUNS.md, "On the instance"): a bash script that
 * 1. writes the agent (embedded gzipped and base64-encoded, or raw: `embed`) to `/opt/chronos/chronos_run_agent.py`;
 * 2. reads the `ChronosRunId` instance tag through IMDSv2 (curl); without it, exits 0: not a run;
 * 3. checks python3 >= 3.9 and that the agent runs (`--version`), else says so on the console and powers off;
 * 4. starts the backstop detached (power-off at the lifetime plus five minutes, whatever the agent does);
 * 5. starts the agent detached, its output to the console.
 *
 * EC2 takes at most 16 KB of user data before base64 (EC2 User Guide, "Run commands when you launch an EC2
 * instance with user data input": "User data is limited to 16 KB, in raw form, before it is base64-encoded"),
 * and this script shares it with the user's own part: test/private/run-agent-user-data.test.ts keeps it small.
 * It names no bucket (a CDK token would keep the user data from being gzipped at synthesis): the agent reads the
 * `ChronosBucket` instance tag, which the launcher sets (docs/RUNS.md).
 *
 * For tests only, the environment may set CHRONOS_HOME, CHRONOS_CONSOLE, CHRONOS_BACKSTOP_SECONDS,
 * CHRONOS_POWEROFF_COMMAND and AWS_EC2_METADATA_SERVICE_ENDPOINT (cloud-init runs the script without them).
 */
export function runAgentUserData(options: RunAgentUserDataOptions): string {
  const lifetime = options.maxRunLifetimeSeconds;
  if (!Number.isInteger(lifetime) || lifetime <= 0) {
    throw new Error(`maxRunLifetimeSeconds must be a positive integer, got ${lifetime}`);
  }
  if (!/^[A-Za-z0-9._-]+$/.test(options.environmentName)) {
    throw new Error(`environmentName must be letters, digits, '.', '_' or '-', got '${options.environmentName}'`);
  }
  const source = compactPython(fs.readFileSync(RUN_AGENT_SOURCE, 'utf-8'));
  let write: string[];
  if (options.embed === 'raw') {
    if (source.split('\n').includes(RAW_AGENT_DELIMITER)) {
      throw new Error(`the run agent has a line '${RAW_AGENT_DELIMITER}', its heredoc delimiter in the user data`);
    }
    write = [`cat > chronos_run_agent.py.tmp <<'${RAW_AGENT_DELIMITER}' && mv chronos_run_agent.py.tmp chronos_run_agent.py`,
      source + RAW_AGENT_DELIMITER];
  } else {
    write = ['base64 -d <<\'EOF\' | gzip -dc > chronos_run_agent.py.tmp && mv chronos_run_agent.py.tmp chronos_run_agent.py',
      zlib.gzipSync(source, { level: 9 }).toString('base64'), 'EOF'];
  }
  return [
    '#!/bin/bash',
    '# Chronos run agent (docs/RUNS.md): a run is an instance with a ChronosRunId tag.',
    `export CHRONOS_ENVIRONMENT='${options.environmentName}'`,
    `export CHRONOS_MAX_RUN_LIFETIME_SECONDS=${lifetime}`,
    'home="${CHRONOS_HOME:-/opt/chronos}" con="${CHRONOS_CONSOLE:-/dev/console}"',
    'imds="${AWS_EC2_METADATA_SERVICE_ENDPOINT:-http://169.254.169.254}/latest"',
    'say() { echo "chronos-user-data: $*" | tee -a "$con" >&2; }',
    'mkdir -p "$home" && cd "$home" || exit 1',
    ...write,
    't=$(curl -sf -m 5 --retry 5 --retry-connrefused -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 300" "$imds/api/token")',
    'run=$(curl -sf -m 5 --retry 3 -H "X-aws-ec2-metadata-token: $t" "$imds/meta-data/tags/instance/ChronosRunId")',
    '[ -n "$run" ] || { say "no ChronosRunId instance tag: not a run"; exit 0; }',
    'if ! python3 -c "import sys; sys.exit(sys.version_info < (3, 9))" || ! python3 chronos_run_agent.py --version; then',
    '  say "run $run: cannot run the agent (it needs python3 3.9 or later, found: $(python3 --version 2>&1)); powering off"',
    '  ${CHRONOS_POWEROFF_COMMAND:-systemctl poweroff}; exit 1',
    'fi',
    `setsid python3 chronos_run_agent.py backstop --deadline-seconds "\${CHRONOS_BACKSTOP_SECONDS:-${lifetime + BACKSTOP_MARGIN_SECONDS}}" >> "$con" 2>&1 < /dev/null &`,
    'setsid python3 chronos_run_agent.py run >> "$con" 2>&1 < /dev/null &',
    'echo $! > run-agent.pid',
    'say "run $run: agent started (pid $!)"',
    '',
  ].join('\n');
}
