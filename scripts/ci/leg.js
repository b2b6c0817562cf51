#!/usr/bin/env node
'use strict';
/**
 * CI's per-leg wall-time table (`npm run ci` prints it at the end, and on the first failing leg).
 *
 *   node scripts/ci/leg.js start                 a new table (CI_LEGS_FILE, default .tools/ci-legs.tsv)
 *   node scripts/ci/leg.js run NAME -- CMD ...   runs CMD (one argument: a bash command line), records NAME's wall time and exit code; on failure
 *                                                prints the table so far and exits with CMD's code
 *   node scripts/ci/leg.js lanes JSON            runs lanes side by side, the legs of each in turn: JSON is
 *                                                [[[NAME, CMD], ...], ...] (CMD a bash command line). The first
 *                                                lane's output streams; the others' is printed as each leg ends.
 *                                                After a failure no new leg starts; the table is printed, exit 1.
 *   node scripts/ci/leg.js report                prints the table (legs in the order they started)
 *
 * Beside each leg's wall time, its CPU time: user + system of the processes it waited for (bash's `times`), so the
 * table says which legs cost the machine's two cores and which only wait. A daemon a leg detaches is not counted.
 */
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const FILE = path.resolve(ROOT, process.env.CI_LEGS_FILE || path.join('.tools', 'ci-legs.tsv'));

function read() {
  if (!fs.existsSync(FILE)) return { t0: undefined, rows: [] };
  const rows = [];
  let t0;
  for (const line of fs.readFileSync(FILE, 'utf8').split('\n').filter(Boolean)) {
    const [kind, name, start, seconds, rc, cpu] = line.split('\t');
    if (kind === 'start') t0 = Number(start);
    else rows.push({ kind, name, start: Number(start), seconds: Number(seconds), rc, cpu: cpu === undefined || cpu === '' ? undefined : Number(cpu) });
  }
  return { t0, rows };
}

function record(kind, name, start, seconds, rc, cpu) {
  fs.mkdirSync(path.dirname(FILE), { recursive: true });
  fs.appendFileSync(FILE, `${[kind, name, start, seconds.toFixed(1), rc, cpu === undefined ? '' : cpu.toFixed(1)].join('\t')}\n`);
}

/**
 * A bash command line that runs `command`, then writes bash's `times` (its children's user and system CPU on the
 * second line) to `file`, and exits with the command's code.
 */
function timed(command, file) {
  return `${command}\n__rc=$?; times > ${JSON.stringify(file)}; exit $__rc`;
}

/** The children's CPU seconds (user + system) from a `times` file, or undefined when there is none. */
function cpuOf(file) {
  try {
    const line = fs.readFileSync(file, 'utf8').split('\n')[1] ?? '';
    fs.rmSync(file, { force: true });
    const parts = [...line.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
    return parts.length === 2 ? parts[0] + parts[1] : undefined;
  } catch {
    return undefined;
  }
}

function timesFile() {
  return path.join(os.tmpdir(), `ci-leg-${process.pid}-${Math.random().toString(36).slice(2)}.times`);
}

function report(out = console.log) {
  const { t0, rows } = read();
  if (!rows.length) return out('ci legs: none recorded');
  const w = Math.max(...rows.map((r) => r.name.length), 24);
  const total = t0 ? (Date.now() / 1000 - t0) : undefined;
  const lines = ['', 'ci legs (wall seconds):',
    `  ${'leg'.padEnd(w)}  ${'start'.padStart(6)}  ${'wall'.padStart(6)}  ${'cpu'.padStart(6)}  result`];
  for (const r of rows.sort((a, b) => a.start - b.start)) {
    const at = t0 ? `+${(r.start - t0).toFixed(0)}` : '';
    lines.push(`  ${r.name.padEnd(w)}  ${at.padStart(6)}  ${r.seconds.toFixed(1).padStart(6)}  ${(r.cpu === undefined ? '' : r.cpu.toFixed(1)).padStart(6)}  ${r.rc === '0' ? 'ok' : `FAILED (exit ${r.rc})`}`);
  }
  const fgRows = rows.filter((r) => r.kind === 'fg');
  const fg = fgRows.reduce((s, r) => s + r.seconds, 0);
  const fgCpu = fgRows.reduce((s, r) => s + (r.cpu ?? 0), 0);
  lines.push(`  ${'sum of legs (foreground)'.padEnd(w)}  ${''.padStart(6)}  ${fg.toFixed(1).padStart(6)}  ${fgCpu.toFixed(1).padStart(6)}`);
  if (total !== undefined) lines.push(`  ${'ci wall (since start)'.padEnd(w)}  ${''.padStart(6)}  ${total.toFixed(1).padStart(6)}`);
  out(lines.join('\n'));
}

/** One leg in a lane: resolves to its exit code. quiet: its output is buffered and printed when it ends. */
function runLeg(name, command, quiet) {
  return new Promise((resolve) => {
    const start = Date.now() / 1000;
    const times = timesFile();
    const child = spawn('bash', ['-c', timed(command, times)], { stdio: quiet ? ['ignore', 'pipe', 'pipe'] : 'inherit' });
    const chunks = [];
    if (quiet) for (const s of [child.stdout, child.stderr]) s.on('data', (d) => chunks.push(d));
    child.on('close', (code, signal) => {
      const rc = code ?? (signal ? 128 : 1);
      const seconds = Date.now() / 1000 - start;
      record('fg', name, start, seconds, rc, cpuOf(times));
      if (quiet) {
        process.stdout.write(`\n----- ci leg ${name} (ran beside the others; ${seconds.toFixed(1)} s, exit ${rc}) -----\n`);
        process.stdout.write(Buffer.concat(chunks));
        process.stdout.write(`----- end of ci leg ${name} -----\n`);
      }
      resolve(rc);
    });
  });
}

async function lanes(plan) {
  let failed = false;
  await Promise.all(plan.map(async (lane, i) => {
    for (const [name, command] of lane) {
      if (failed) return;
      if ((await runLeg(name, command, i > 0)) !== 0) failed = true;
    }
  }));
  if (failed) { report(console.error); process.exit(1); }
}

const [cmd, name, sep, ...rest] = process.argv.slice(2);
if (cmd === 'lanes' && name) {
  lanes(JSON.parse(name));
} else if (cmd === 'start') {
  fs.mkdirSync(path.dirname(FILE), { recursive: true });
  fs.writeFileSync(FILE, `start\t\t${Date.now() / 1000}\t\t\n`);
} else if (cmd === 'report') {
  report();
} else if (cmd === 'run' && name && sep === '--' && rest.length) {
  const start = Date.now() / 1000;
  // One argument: a shell command line; several: a command and its arguments.
  const times = timesFile();
  const line = rest.length === 1 ? rest[0] : rest.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const r = spawnSync('bash', ['-c', timed(line, times)], { stdio: 'inherit' });
  const rc = r.status ?? (r.signal ? 128 : 1);
  if (r.error) console.error(`ci leg ${name}: ${r.error.message}`);
  record('fg', name, start, Date.now() / 1000 - start, rc, cpuOf(times));
  if (rc !== 0 && cmd === 'run') report(console.error);
  process.exit(rc);
} else {
  console.error('usage: leg.js start | report | run NAME -- CMD [ARG ...] | lanes JSON');
  process.exit(2);
}
