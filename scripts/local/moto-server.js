'use strict';
/**
 * Start / stop a moto server (the Python `moto_server` from the pinned venv) on a free
 * 127.0.0.1 port. Clients use http://localhost:<port>.
 *
 *   MOTO_SERVER  path to a moto_server executable (default: <repo>/.venv-moto/bin/moto_server,
 *                created on demand by scripts/local/setup-moto.sh)
 *
 * A server left running by `deploy.js --keep-running` is recorded in <repo>/.tools/moto-server.json
 * (pid, port, endpoint, log file) so that `deploy.js --stop` can stop it.
 */
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { isLoopback } = require('./aws-env');

const ROOT = path.resolve(__dirname, '..', '..');
const VENV_BIN = path.join(ROOT, '.venv-moto', 'bin', 'moto_server');
const PIDFILE = path.join(ROOT, '.tools', 'moto-server.json');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Make sure a moto_server executable exists: runs setup-moto.sh (idempotent; instant when the
 * venv matches requirements-moto.txt). Returns its path.
 */
async function ensureMoto({ log = (m) => process.stderr.write(`${m}\n`) } = {}) {
  if (process.env.MOTO_SERVER) return process.env.MOTO_SERVER;
  const t0 = Date.now();
  await new Promise((resolve, reject) => {
    const p = spawn('bash', [path.join(__dirname, 'setup-moto.sh')], { stdio: ['ignore', 'inherit', 'inherit'] });
    p.once('error', reject);
    p.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`scripts/local/setup-moto.sh failed (exit ${code})`))));
  });
  if (Date.now() - t0 > 2000) log(`moto venv ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return VENV_BIN;
}

/** Ask the kernel for a free loopback port. */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function ping(endpoint) {
  try {
    const res = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(2000) });
    return res.ok;
  } catch {
    return false;
  }
}

async function waitForHttp(endpoint, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await ping(endpoint)) return;
    await sleep(200);
  }
  throw new Error(`moto server did not answer at ${endpoint}/moto-api/ within ${timeoutMs / 1000} s`);
}

function isAlive(pid) {
  try { process.kill(pid, 0); return true; } catch (e) { return e.code === 'EPERM'; }
}

async function killAndWait(pid, { graceMs = 5000 } = {}) {
  if (!isAlive(pid)) return;
  try { process.kill(pid, 'SIGTERM'); } catch { return; }
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(100);
  if (isAlive(pid)) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    while (isAlive(pid)) await sleep(50);
  }
}

/**
 * Start moto on 127.0.0.1. Returns { port, endpoint, pid, logFile, stop() }.
 * Always call stop() (finally / after hook). With detached: true the server gets its own
 * process group and outlives this process once `release()` is called (for --keep-running).
 */
async function startMoto({ port, logFile, detached = false, timeoutMs = 60000 } = {}) {
  const bin = await ensureMoto();
  port = port || (await freePort());
  const out = logFile ? fs.openSync(logFile, 'a') : 'ignore';
  const child = spawn(bin, ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', out, out],
    detached,
    env: { ...process.env, AWS_EC2_METADATA_DISABLED: 'true' },
  });
  if (typeof out === 'number') fs.closeSync(out); // the child has its own copy
  let exited = false;
  const died = new Promise((_, reject) => {
    child.once('error', (e) => { exited = true; reject(new Error(`cannot start ${bin}: ${e.message}`)); });
    child.once('exit', (code, sig) => {
      exited = true;
      reject(new Error(`${bin} exited early (code ${code}, signal ${sig})${logFile ? `; see ${logFile}` : ''}`));
    });
  });
  died.catch(() => {}); // only observed during startup
  const endpoint = `http://localhost:${port}`;
  const stop = async () => {
    if (exited || !child.pid) return;
    await killAndWait(child.pid);
    exited = true;
  };
  try {
    await Promise.race([waitForHttp(endpoint, timeoutMs), died]);
  } catch (e) {
    await stop();
    throw e;
  }
  /** Let the server outlive this process (detached servers only). */
  const release = () => { child.unref(); child.removeAllListeners('exit'); };
  return { port, endpoint, pid: child.pid, logFile, stop, release };
}

function writePidfile(info) {
  fs.mkdirSync(path.dirname(PIDFILE), { recursive: true });
  fs.writeFileSync(PIDFILE, `${JSON.stringify({ ...info, startedAt: new Date().toISOString() }, null, 2)}\n`);
}

function removePidfile() {
  fs.rmSync(PIDFILE, { force: true });
}

/**
 * The server recorded in the pidfile, if its process is alive and answers as moto on loopback;
 * otherwise undefined (a stale pidfile is removed).
 */
async function runningFromPidfile() {
  let info;
  try { info = JSON.parse(fs.readFileSync(PIDFILE, 'utf8')); } catch { return undefined; }
  // Never ping anything but loopback, whatever the file says.
  if (info && info.pid && isLoopback(info.endpoint) && isAlive(info.pid) && (await ping(info.endpoint))) return info;
  removePidfile();
  return undefined;
}

/** Stop the server recorded in the pidfile. Returns its info, or undefined if none was running. */
async function stopFromPidfile() {
  const info = await runningFromPidfile();
  if (!info) return undefined;
  await killAndWait(info.pid);
  removePidfile();
  return info;
}

module.exports = {
  PIDFILE, ensureMoto, freePort, ping, startMoto, writePidfile, removePidfile, runningFromPidfile, stopFromPidfile,
};
