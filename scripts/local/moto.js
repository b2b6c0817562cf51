'use strict';
/**
 * The local AWS API emulator: moto_server from .venv-moto/ (created with uv on first use from the pinned
 * requirements-moto.txt; PyPI, no Docker) on a free 127.0.0.1 port, used as http://localhost:PORT (moto
 * parses path-style S3 URLs only with "localhost"). --keep-running records it in .tools/moto-server.json.
 */
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const VENV = path.join(ROOT, '.venv-moto');
const PIDFILE = path.join(ROOT, '.tools', 'moto-server.json');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Only http://localhost / 127.x / [::1] endpoints are ever used. */
function assertLoopback(endpoint) {
  const host = URL.canParse(endpoint) ? new URL(endpoint).hostname.replace(/^\[|\]$/g, '') : '';
  if (!/^(localhost|::1|127\.\d+\.\d+\.\d+)$/.test(host)) {
    throw new Error(`refusing endpoint ${JSON.stringify(endpoint)}: only a local emulator on loopback is allowed`);
  }
  return endpoint;
}

/** The caller's environment minus every AWS_* variable: { env, removed } (removed: their names). */
function withoutAws(base = process.env) {
  const removed = Object.keys(base).filter((k) => k.startsWith('AWS_')).sort();
  return { env: Object.fromEntries(Object.entries(base).filter(([k]) => !k.startsWith('AWS_'))), removed };
}

/**
 * Create .venv-moto from requirements-moto.txt with uv (scripts/local/moto-venv.sh) unless it was made from the
 * same file; waits for a creation already running (another leg's). Returns seconds.
 */
function ensureVenv() {
  const t0 = Date.now();
  execFileSync('bash', [path.join(__dirname, 'moto-venv.sh')], { stdio: ['ignore', 2, 2], env: withoutAws().env });
  return (Date.now() - t0) / 1000;
}

const freePort = () => new Promise((resolve, reject) => {
  const srv = net.createServer().once('error', reject);
  srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
});
const ping = (endpoint) => fetch(`${assertLoopback(endpoint)}/moto-api/`, { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false);
const alive = (pid) => { try { process.kill(pid, 0); return true; } catch { return false; } };

async function kill(pid) {
  try { process.kill(pid, 'SIGTERM'); } catch { return; }
  for (let i = 0; i < 50 && alive(pid); i++) await sleep(100);
  if (alive(pid)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone meanwhile */ }
}

/** Start moto: { endpoint, pid, logFile, venvSeconds, startSeconds, stop(), keep() }; keep(): outlive this process. */
async function start({ logFile, detached = false }) {
  const venvSeconds = ensureVenv();
  const t0 = Date.now();
  const endpoint = `http://localhost:${await freePort()}`;
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const out = fs.openSync(logFile, 'a');
  // moto_server, with one fix for stack updates (scripts/local/moto_server.py).
  const child = spawn(path.join(VENV, 'bin', 'python'), [path.join(__dirname, 'moto_server.py'), '-H', '127.0.0.1', '-p', new URL(endpoint).port],
    { stdio: ['ignore', out, out], detached, env: { ...withoutAws().env, AWS_EC2_METADATA_DISABLED: 'true' } });
  fs.closeSync(out);
  let exited = false;
  child.once('exit', () => { exited = true; });
  const stop = () => (exited ? Promise.resolve() : kill(child.pid));
  for (let i = 0; !(await ping(endpoint)); i++) {
    if (exited || i > 300) { await stop(); throw new Error(`moto did not start on ${endpoint}; see ${logFile}`); }
    await sleep(200);
  }
  const keep = () => {
    child.unref();
    fs.writeFileSync(PIDFILE, `${JSON.stringify({ pid: child.pid, endpoint, logFile })}\n`);
  };
  return { endpoint, pid: child.pid, logFile, venvSeconds, startSeconds: (Date.now() - t0) / 1000, stop, keep };
}

/** The server kept by --keep-running, if it is alive and answers on loopback (else the pidfile goes). */
async function kept() {
  const info = fs.existsSync(PIDFILE) ? JSON.parse(fs.readFileSync(PIDFILE, 'utf8')) : undefined;
  if (info && alive(info.pid) && (await ping(info.endpoint))) return info;
  fs.rmSync(PIDFILE, { force: true });
  return undefined;
}

async function stopKept() {
  const info = await kept();
  if (info) await kill(info.pid);
  fs.rmSync(PIDFILE, { force: true });
  return info;
}

module.exports = { ROOT, assertLoopback, withoutAws, freePort, start, kept, stopKept };
