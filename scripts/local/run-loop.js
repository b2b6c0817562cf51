#!/usr/bin/env node
'use strict';
/**
 * The whole run loop on this machine, without an AWS account (README, "Run training"; docs/RUNS.md):
 * 1. deploy the foundation (the sample app, ChronosTraining-dev-Stack) to the local emulator (moto on loopback);
 * 2. `chronos-training run` a toy training script from a working directory, spot, up to 3 attempts;
 * 3. each instance the emulator records is played by scripts/local/instance-player.js: its user data (the run
 *    agent's part, from the launch template) runs under bash against AWS's amazon-ec2-metadata-mock;
 * 4. the first attempt gets a spot interruption notice: the agent drains (SIGTERM, the checkpoint the script saves
 *    in its handler, logs, `interrupted`) and powers off (the emulator terminates the instance); the launcher starts
 *    attempt 2, which resumes from that checkpoint and succeeds;
 * 5. the logs and the checkpoint are printed from the emulator's bucket;
 * 6. the run keeper (issue 29), with no user process: a `--detach`ed run (the launcher exits once attempt 1 is
 *    launched); attempts 1 and 2 get spot notices, drain, and are reclaimed; each reclaim's EC2 state-change event, in
 *    the shape AWS documents, goes to the keeper's handler (`chronos_training.keeper.handler`, run as a local Python
 *    process by scripts/local/keeper-invoke.py); after attempt 1 it launches attempt 2; after attempt 2 RunInstances
 *    finds no capacity (a fault the helper injects: moto never runs out), so the keeper writes `pending: waiting for
 *    capacity` and a one-time schedule; the loop fires the schedule (at once, not at its time), the keeper launches
 *    attempt 3, which resumes from the checkpoint and succeeds; its instance's end makes the keeper publish the end
 *    event, which an EventBridge rule routes to an SQS queue the loop reads.
 * Prints the time each leg takes. Usage: node scripts/local/run-loop.js [--quiet]
 */
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const moto = require('./moto');
const cdk = require('./cdk');
const { playInstances } = require('./instance-player');

const ROOT = path.resolve(__dirname, '..', '..');
const TOY = path.join(ROOT, 'test', 'agent', 'fixtures', 'toy_train.py');
const KEEPER_INVOKE = path.join(__dirname, 'keeper-invoke.py');
const REGION = 'us-east-1';
/** The toy script's steps: 0.25 s each, a checkpoint every 5, so the notice comes mid-run. */
const STEPS = 60;
/** The kept run's steps: enough that each of its first two attempts is still running at its spot notice. */
const KEPT_STEPS = 2 * STEPS;

/**
 * The `chronos-training` command of the Python run package, installed from its wheel (scripts/run-package-venv.sh:
 * a venv of the tool cache, made once per change of the package): the path of the command.
 */
function launcherCommand() {
  const venv = execFileSync('bash', [path.join(ROOT, 'scripts', 'run-package-venv.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 2] }).trim();
  return path.join(venv, 'bin', 'chronos-training');
}

/** The launcher as a user runs it (`command`, launcherCommand()), against the emulator: resolves { code, stdout }. */
function launcher(command, args, { endpoint, cwd, onLine = () => {} }) {
  return new Promise((resolve, reject) => {
    const env = {
      ...moto.withoutAws().env,
      AWS_ENDPOINT_URL: endpoint, AWS_REGION: REGION, AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_EC2_METADATA_DISABLED: 'true',
      // The launcher's upload-hash cache beside the toy project, not in the user's ~/.cache.
      CHRONOS_CACHE_DIR: path.join(path.dirname(cwd), 'launcher-cache'),
    };
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let partial = '';
    const take = (chunk) => {
      stdout += chunk;
      partial += chunk;
      const lines = partial.split('\n');
      partial = lines.pop();
      lines.forEach(onLine);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', reject);
    child.on('close', (code) => { if (partial) onLine(partial); resolve({ code, stdout }); });
  });
}

/**
 * The run's checkpoint of the highest sequence in the bucket (docs/RUNS.md, "Checkpoints": the manifest is written
 * last), with each file's content (the toy script's checkpoints are a few bytes): { manifestKey, sequence, createdAt,
 * files: [{ path, key, size, content }] }.
 */
async function latestCheckpoint(endpoint, runId) {
  const { S3Client, ListBucketsCommand, ListObjectsV2Command, GetObjectCommand } = require('@aws-sdk/client-s3');
  const s3 = new S3Client({ endpoint: moto.assertLoopback(endpoint), region: REGION, forcePathStyle: true,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  const bucket = (await s3.send(new ListBucketsCommand({}))).Buckets.map((b) => b.Name).find((n) => n.startsWith('chronos-training-dev-'));
  const read = async (Key) => (await s3.send(new GetObjectCommand({ Bucket: bucket, Key }))).Body.transformToString();
  const prefix = `dev/checkpoints/${runId}/manifests/`;
  const keys = ((await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }))).Contents ?? []).map((o) => o.Key);
  const seq = (k) => Number(k.slice(prefix.length).replace(/\.json$/, ''));
  const manifestKey = keys.sort((a, b) => seq(a) - seq(b)).pop();
  if (!manifestKey) throw new Error(`no checkpoint manifest under s3://${bucket}/${prefix}`);
  const manifest = JSON.parse(await read(manifestKey));
  const files = await Promise.all(manifest.files.map(async (f) => ({ ...f, content: await read(f.key) })));
  return { manifestKey, sequence: manifest.sequence, createdAt: manifest.createdAt, files };
}

/**
 * An AMI the emulator has. The launcher pins a `resolve:ssm:` image when the run starts (docs/RUNS.md, "The image is
 * pinned per run"), and the emulator has no DLAMI parameter (moto refuses a parameter under the reserved `/aws/`), so
 * the loop's run names an AMI ID, as a run does whose template or `--image-id` names one.
 */
async function emulatorImage(endpoint) {
  const { EC2Client, DescribeImagesCommand } = require('@aws-sdk/client-ec2');
  const ec2 = new EC2Client({ endpoint: moto.assertLoopback(endpoint), region: REGION,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  const image = ((await ec2.send(new DescribeImagesCommand({}))).Images ?? []).map((i) => i.ImageId).sort()[0];
  if (!image) throw new Error('the emulator has no image');
  return image;
}

/**
 * Runs the loop. options: log(line); workDir; spotNoticeAfterSeconds (after the first attempt's boot);
 * inspect(result), called with the emulator still up: { runId, command (the launcher's path), endpoint, booted,
 * launcherOutput, logs, status, checkpoint }.
 */
async function runLoop({ log = console.log, workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chronos-run-loop-')), spotNoticeAfterSeconds = 6,
  inspect = async () => {}, keeper = true } = {}) {
  const legs = [];
  const leg = async (name, fn) => {
    const t0 = Date.now();
    try { return await fn(); } finally { legs.push([name, (Date.now() - t0) / 1000]); }
  };
  const command = await leg('chronos-training from its wheel (a venv, made once per change of the package)', launcherCommand);
  const aemmBin = await leg('metadata mock (build once, then cached)', () =>
    execFileSync('bash', [path.join(ROOT, 'scripts', 'agent', 'aemm.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 2] }).trim());
  const server = await leg('start the emulator', () => moto.start({ logFile: path.join(workDir, 'moto.log') }));
  const { endpoint } = server;
  let player;
  try {
    await leg('cdk bootstrap + deploy ChronosTraining-dev-Stack', async () => {
      await cdk.bootstrap(endpoint, { quiet: true });
      await cdk.deploySample(endpoint, { outDir: path.join(workDir, 'cdk.out'), quiet: true });
    });
    const code = path.join(workDir, 'project');
    fs.mkdirSync(code, { recursive: true });
    fs.copyFileSync(TOY, path.join(code, 'train.py'));
    fs.writeFileSync(path.join(code, '.gitignore'), 'data/\n');
    player = playInstances({
      endpoint, region: REGION, aemmBin, workDir: path.join(workDir, 'instances'),
      // The attached run: a notice on attempt 1; the kept (detached) run: on attempts 1 and 2.
      spotNoticeAfterSeconds: (runId, attempt) => (attempt === 1 || (runId.startsWith('kept-') && attempt === 2)
        ? spotNoticeAfterSeconds : undefined),
      // The run below asks for spot only; moto does not record the market, the metadata mock serves it.
      lifecycleOf: () => 'spot',
      log: (line) => log(`  [instances] ${line}`),
    });
    const image = await emulatorImage(endpoint);
    const run = await leg('chronos-training run (attempt 1 interrupted, attempt 2 resumes)', () => launcher(command,
      ['run', '--env', 'dev', '--spot', '--instance-types', 'g6.xlarge,g5.xlarge', '--max-attempts', '3', '--image-id', image,
        '--name', 'toy', '--env-var', 'TOY_STEPS_FILE=steps.txt', '--', 'python3', 'train.py', String(STEPS), '5', '0.25'],
      { endpoint, cwd: code, onLine: (line) => log(`  [chronos-training] ${line}`) }));
    if (run.code !== 0) throw new Error(`chronos-training run exited ${run.code}`);
    const runId = /\b(toy-\d{8}-\d{6}-[0-9a-f]{6})\b/.exec(run.stdout)?.[1];
    if (!runId) throw new Error('chronos-training run printed no run ID');
    const logs = await leg('chronos-training logs', () => launcher(command, ['logs', runId, '--env', 'dev'], { endpoint, cwd: code }));
    const status = await leg('chronos-training status', () => launcher(command, ['status', runId, '--env', 'dev'], { endpoint, cwd: code }));
    log('\nLogs of every attempt, from the emulator\'s bucket:');
    log(logs.stdout.trimEnd());
    log('\nStatus:');
    log(status.stdout.trimEnd());
    const checkpoint = await latestCheckpoint(endpoint, runId);
    log('\nThe last whole checkpoint, from the emulator\'s bucket:');
    log(`  ${checkpoint.manifestKey} (sequence ${checkpoint.sequence}, ${checkpoint.createdAt})`);
    for (const f of checkpoint.files) log(`  ${f.path}  ${f.size} bytes  ${f.key}: ${JSON.stringify(f.content)}`);
    const kept = keeper ? await keeperLegs({ command, endpoint, code, leg, log, image }) : undefined;
    const result = { runId, command, launcherOutput: run.stdout, logs: logs.stdout, status: status.stdout, checkpoint, endpoint, booted: player.booted, legs, kept };
    await inspect(result);
    return result;
  } finally {
    if (player) await player.stop();
    await server.stop();
    log('\nLegs:');
    for (const [name, seconds] of legs) log(`  ${seconds.toFixed(1).padStart(6)} s  ${name}`);
  }
}

/** keeper-invoke.py (its subcommand and arguments) with the run package's Python: its JSON answer. */
async function keeperHelper(command, args, { endpoint, code }) {
  const python = path.join(path.dirname(command), 'python');
  const { code: exit, stdout } = await launcher(python, [KEEPER_INVOKE, ...args], { endpoint, cwd: code });
  const last = stdout.trimEnd().split('\n').pop();
  if (exit !== 0 || !last.startsWith('{')) throw new Error(`keeper-invoke.py ${args.join(' ')} exited ${exit}: ${stdout}`);
  return JSON.parse(last);
}

/** The keeper's legs (step 6 above): a detached run that survives two spot interruptions and a capacity wait. */
async function keeperLegs({ command, endpoint, code, leg, log, image }) {
  const helper = (...args) => keeperHelper(command, args, { endpoint, code });
  const say = (line) => log(`  [keeper] ${line}`);
  const observer = await leg('keeper: a rule routing the end event to an SQS queue', () => helper('observe', 'dev'));
  const run = await leg('chronos-training run --detach (exits once attempt 1 is launched)', () => launcher(command,
    ['run', '--env', 'dev', '--spot', '--instance-types', 'g6.xlarge,g5.xlarge', '--max-attempts', '4', '--image-id', image,
      '--name', 'kept',
      '--env-var', 'TOY_STEPS_FILE=steps.txt',
      '--detach', '--', 'python3', 'train.py', String(KEPT_STEPS), '5', '0.25'],
    { endpoint, cwd: code, onLine: (line) => log(`  [chronos-training] ${line}`) }));
  if (run.code !== 0) throw new Error(`chronos-training run --detach exited ${run.code}`);
  const runId = /\b(kept-\d{8}-\d{6}-[0-9a-f]{6})\b/.exec(run.stdout)?.[1];
  if (!runId) throw new Error('chronos-training run --detach printed no run ID');
  const events = [];
  for (const attempt of [1, 2]) {
    const ended = await leg(`attempt ${attempt}: spot notice, drain, EC2 reclaims it`, () => helper('wait-ended', runId, String(attempt), '240'));
    if (ended.state !== 'terminated') throw new Error(`attempt ${attempt} of ${runId} was not reclaimed: ${JSON.stringify(ended)}`);
    const noCapacity = attempt === 2 ? ['--no-capacity-tries', '1000'] : [];
    const reply = await leg(`keeper: the state-change event of attempt ${attempt}${attempt === 2 ? ' (no capacity: a schedule)' : ''}`,
      () => helper('event', 'dev', ended.instanceId, 'terminated', ...noCapacity));
    reply.log.forEach(say);
    events.push(reply);
  }
  const fired = await leg('keeper: the schedule fires, capacity is back: attempt 3', () => helper('fire-schedules', 'dev'));
  fired.fired.forEach((f) => f.log.forEach(say));
  const final = await leg('attempt 3 resumes and succeeds', () => helper('wait-status', runId, 'succeeded', '240'));
  const last = await leg('keeper: the end of attempt 3\'s instance publishes the end event', async () => {
    const ended = await helper('wait-ended', runId, '3', '120');
    return helper('event', 'dev', ended.instanceId, 'terminated');
  });
  last.log.forEach(say);
  const ends = await leg('the end event, from the SQS queue', () => helper('ended', observer.queueUrl));
  log(`\nThe end event of ${runId}:`);
  log(`  ${JSON.stringify(ends.events.map((e) => e.detail))}`);
  return { runId, launcherOutput: run.stdout, events, fired: fired.fired, status: final.status, last, ends: ends.events };
}

module.exports = { runLoop, launcher, launcherCommand, emulatorImage, STEPS, REGION };

if (require.main === module) {
  runLoop().catch((e) => { console.error(`run-loop: ${e.message}`); process.exit(1); });
}
