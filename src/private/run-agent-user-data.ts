import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';

/**
 * The run agent, as the package ships it: `assets/agent/chronos_run_agent.py` at the package root (the same path from
 * `src/private` (ts-jest) and `lib/private` (compiled)), in the npm tarball (hence in the Python wheel's). Its source
 * is the Python run package's `chronos-training/src/chronos_training/agent/chronos_run_agent.py`, outside this
 * package: projen's `bundle` task copies it here before compile and tests (`bundle:agent`, scripts/agent/embed.sh),
 * so synthesis never reads a path outside the package.
 */
export const RUN_AGENT_SOURCE = path.join(__dirname, '..', '..', 'assets', 'agent', 'chronos_run_agent.py');

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

/** Characters beside which a space outside a string literal is never needed (Python's tokenizer splits at them). */
const TIGHT = '()[]{},:=+-*/%<>!&|';

/** The name `self` takes in the embedded agent (a name the agent never uses: checked). */
const SELF = 'o';

/**
 * One line of Python without its trailing comment and the spaces next to punctuation outside its string literals,
 * `self` renamed `SELF`; `depth` is the bracket depth after it, given the depth before it.
 */
function tighten(code: string, depth: number): { text: string; depth: number } {
  let out = '';
  let quote = '';
  for (let i = 0; i < code.length; i++) {
    const c = code[i];
    if (quote) {
      out += c;
      if (c === '\\') {
        out += code[++i];
      } else if (c === quote) {
        quote = '';
      }
    } else if (c === '"' || c === "'") {
      quote = c;
      out += c;
    } else if (c === '#') {
      break;
    } else if (/[A-Za-z_0-9]/.test(c)) { // a name, a keyword or a number, whole
      const word = /^[A-Za-z_0-9.]*/.exec(code.slice(i))![0].replace(/^([A-Za-z_]\w*).*$/, '$1');
      if (word === SELF) {
        throw new Error(`the run agent uses the name '${SELF}', which compactPython gives to self`);
      }
      out += word === 'self' ? SELF : word;
      i += word.length - 1;
    } else if (c !== ' ' || !(TIGHT.includes(out[out.length - 1]) || TIGHT.includes(code[i + 1] ?? '(') || code[i + 1] === ' ')) {
      depth += '([{'.includes(c) ? 1 : ')]}'.includes(c) ? -1 : 0;
      out += c;
    }
  }
  return { text: out.trimEnd(), depth };
}

/**
 * The agent as embedded: the same code without what only a reader needs (comment lines, trailing comments,
 * docstrings, blank lines, spaces next to punctuation, line breaks inside brackets and before a block of one simple
 * statement), with one space per indentation level and `self` as `o`, to save about 4 KB of user data. A line-based rewrite for the agent's own style (4-space
 * indents, double-quoted strings, no string over several lines); the agent's test suite checks that its result
 * parses to the same syntax tree as the file, docstrings aside and `self` renamed.
 */
export function compactPython(source: string): string {
  const out: string[] = [];
  let inDocstring = false;
  let depth = 0;
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
    if (line.startsWith('#!')) {
      out.push(line);
      continue;
    }
    const tight = tighten(text, depth);
    if (depth > 0) { // inside brackets: the same logical line
      out[out.length - 1] += (/\w$/.test(out[out.length - 1]) && /^\w/.test(tight.text) ? ' ' : '') + tight.text;
    } else {
      out.push(' '.repeat(Math.floor((line.length - line.trimStart().length) / 4)) + tight.text);
    }
    depth = tight.depth;
  }
  // A block of one simple statement goes on its header's line (`if x:return y`).
  const indent = (l: string) => l.length - l.trimStart().length;
  const merged: string[] = [];
  for (let i = 0; i < out.length; i++) {
    const [header, body, next] = [out[i], out[i + 1], out[i + 2]];
    if (header.endsWith(':') && body !== undefined && indent(body) > indent(header) && (next === undefined || indent(next) <= indent(header)) &&
      !/^(if|for|while|with|def|class|try|elif|else|except|finally|async)\b/.test(body.trimStart())) {
      merged.push(header + body.trimStart());
      i++;
    } else {
      merged.push(header);
    }
  }
  return merged.join('\n') + '\n';
}

/**
 * The run agent's part of the launch template's user data (docs/RUNS.md, "On the instance"): a bash script that
 * 1. writes the agent (embedded gzipped and base64-encoded, or raw: `embed`) to `/opt/chronos/chronos_run_agent.py`;
 * 2. reads the `ChronosRunId` instance tag through IMDSv2 (curl): a 404 is not a run (exit 0); any other failure (a
 *    timeout, a 401, a 5xx) is retried for about 30 s, and if it persists, the backstop still starts (fail safe);
 * 3. checks python3 >= 3.9 and that the agent runs (`--version`), else says so on the console and powers off;
 * 4. installs a per-boot hook: on any later boot of the instance, `rebooted` writes that the attempt ended, then the
 *    power-off (user-data scripts run once per instance: a reboot would leave the instance with no agent);
 * 5. starts the backstop (power-off at the lifetime plus five minutes, whatever the agent does) and the agent, each
 *    as a transient systemd unit (`SYSTEMD_UNIT_PROPERTIES`), or, where `systemd-run` fails (no systemd), detached
 *    with `setsid`; their output goes to the console.
 *
 * EC2 takes at most 16 KB of user data before base64 (EC2 User Guide, "Run commands when you launch an EC2
 * instance with user data input": "User data is limited to 16 KB, in raw form, before it is base64-encoded"),
 * and this script shares it with the user's own part: test/private/run-agent-user-data.test.ts keeps it small.
 * It names no bucket (a CDK token would keep the user data from being gzipped at synthesis): the agent reads the
 * `ChronosBucket` instance tag, which the launcher sets (docs/RUNS.md).
 *
 * For tests only, the environment may set CHRONOS_HOME, CHRONOS_CONSOLE, CHRONOS_BACKSTOP_SECONDS,
 * CHRONOS_POWEROFF_COMMAND, CHRONOS_PER_BOOT_DIR and AWS_EC2_METADATA_SERVICE_ENDPOINT (cloud-init runs the script
 * without them).
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
  if (source.split('\n').includes(RAW_AGENT_DELIMITER)) {
    throw new Error(`the run agent has a line '${RAW_AGENT_DELIMITER}', its heredoc delimiter in the user data`);
  }
  const script = [
    '#!/bin/bash',
    `export CHRONOS_ENVIRONMENT='${options.environmentName}'`,
    `export CHRONOS_MAX_RUN_LIFETIME_SECONDS=${lifetime}`,
    'home="${CHRONOS_HOME:-/opt/chronos}" con="${CHRONOS_CONSOLE:-/dev/console}"',
    'imds="${AWS_EC2_METADATA_SERVICE_ENDPOINT:-http://169.254.169.254}/latest"',
    'say() { echo "chronos-user-data: $*" | tee -a "$con" >&2; }',
    // A transient unit (item 7 of docs/RUNS.md "On the instance"), else detached; $1 names it, the rest are the agent's arguments.
    `start() { n=$1; shift; systemd-run -q --unit=chronos-$n ${SYSTEMD_UNIT_PROPERTIES.map(p => `-p ${p}`).join(' ')} -d ` +
      '-E CHRONOS_ENVIRONMENT -E CHRONOS_MAX_RUN_LIFETIME_SECONDS "$(command -v python3)" chronos_run_agent.py "$@" 2> /dev/null ||',
    '  { setsid python3 chronos_run_agent.py "$@" >> "$con" 2>&1 < /dev/null & echo $! > $n.pid; }; }',
    'mkdir -p "$home" && cd "$home" || exit 1',
    `cat > chronos_run_agent.py.tmp <<'${RAW_AGENT_DELIMITER}' && mv chronos_run_agent.py.tmp chronos_run_agent.py`,
    source + RAW_AGENT_DELIMITER,
    // Only a 404 means no such tag; a timeout (000), a 401 or a 5xx is retried.
    'for i in 1 2 3 4 5 6; do',
    '  t=$(curl -s -m 5 -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 300" "$imds/api/token")',
    '  c=$(curl -s -m 5 -o run-id -w "%{http_code}" -H "X-aws-ec2-metadata-token: $t" "$imds/meta-data/tags/instance/ChronosRunId")',
    '  case $c in 200|404) break; esac; sleep $i',
    'done',
    '[ "$c" = 404 ] && { say "no ChronosRunId instance tag: not a run"; exit 0; }',
    `backstop() { start backstop backstop --deadline-seconds "\${CHRONOS_BACKSTOP_SECONDS:-${lifetime + BACKSTOP_MARGIN_SECONDS}}"; }`,
    '[ "$c" = 200 ] || { say "IMDS failed (HTTP $c): only the backstop starts"; backstop; exit 1; }',
    'run=$(cat run-id)',
    'if ! python3 -c "import sys; sys.exit(sys.version_info < (3, 9))" || ! python3 chronos_run_agent.py --version; then',
    '  say "run $run: cannot run the agent (it needs python3 3.9 or later, found: $(python3 --version 2>&1)); powering off"',
    '  ${CHRONOS_POWEROFF_COMMAND:-systemctl poweroff}; exit 1',
    'fi',
    // A later boot: this script again, as the per-boot hook (cloud-init runs user data once per instance).
    '[ -e booted ] && { python3 chronos_run_agent.py rebooted >> "$con" 2>&1 || ${CHRONOS_POWEROFF_COMMAND:-systemctl poweroff}; exit; }',
    `touch booted; pb="\${CHRONOS_PER_BOOT_DIR:-${PER_BOOT_DIR}}"; mkdir -p "$pb" && cp "$0" "$pb/chronos-run-agent.sh" && chmod +x "$pb/chronos-run-agent.sh"`,
    'backstop',
    'start agent run',
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
