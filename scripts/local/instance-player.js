'use strict';
/**
 * Plays the EC2 instances of the local run loop: the emulator (moto) records a RunInstances but runs nothing, so
 * for each running instance that carries a `ChronosRunId` tag this boots what a real instance would boot:
 * - its instance metadata, served by AWS's amazon-ec2-metadata-mock (IMDSv2 only, on a free loopback port) with
 *   the instance's ID, type, zone, lifecycle and its `ChronosRunId`/`ChronosBucket` tags (AEMM serves two tags: the
 *   attempt, the instance's `ChronosAttempt` tag, goes to the agent as `CHRONOS_ATTEMPT`, which the boot script
 *   passes on and the agent prefers to the tag), and, where the scenario asks for it, a spot interruption notice
 *   after N seconds, whose `time` is SPOT_RECLAIM_LEAD_SECONDS later: at that time the player reclaims the instance
 *   as EC2 would (it terminates it in the emulator and ends its processes), since after a spot drain the agent
 *   leaves the instance for EC2 to reclaim (EC2 does not bill an instance it interrupts in its first hour);
 * - its user data, as moto returns it (DescribeInstanceAttribute userData), gunzipped when gzip-compressed (as
 *   cloud-init does): each shell-script part of the MIME multipart document, in order, under bash, as cloud-init
 *   would run them;
 * - with the settings docs/RUNS.md documents for other hosts: the metadata and S3 endpoints, `CHRONOS_HOME` (a
 *   directory per instance) and `CHRONOS_POWEROFF_COMMAND`, which terminates the instance in the emulator
 *   (`InstanceInitiatedShutdownBehavior=terminate`).
 * Nothing here reaches beyond 127.0.0.1.
 */
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');
const { assertLoopback, freePort } = require('./moto');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Seconds from a spot interruption notice to the `time` it names, when EC2 reclaims the instance (two minutes on EC2:
 * "Spot Instance interruption notices", EC2 User Guide). Shorter here, but more than the agent's 30 s before that
 * time, which it keeps for the uploads after the command's SIGTERM.
 */
const SPOT_RECLAIM_LEAD_SECONDS = 45;

/**
 * The shell-script parts of a user-data document (a Buffer or a string): a MIME multipart document, or one script,
 * gzip-compressed or not (cloud-init: "content found to be gzip compressed will be uncompressed", "User data
 * formats").
 */
function shellParts(userData) {
  let bytes = Buffer.isBuffer(userData) ? userData : Buffer.from(userData, 'utf8');
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = zlib.gunzipSync(bytes);
  const text = bytes.toString('utf8').replace(/\r\n/g, '\n');
  const boundary = /^Content-Type:\s*multipart\/mixed;\s*boundary="?([^"\n;]+)"?/im.exec(text)?.[1];
  if (!boundary) return text.startsWith('#!') ? [text] : [];
  const parts = text.split(`--${boundary}`).slice(1).filter((p) => !p.startsWith('--'));
  const scripts = [];
  for (const part of parts) {
    const split = part.replace(/^\n/, '').indexOf('\n\n');
    const body = part.replace(/^\n/, '');
    const headers = body.slice(0, split);
    let content = body.slice(split + 2);
    if (/content-transfer-encoding:\s*base64/i.test(headers)) content = Buffer.from(content, 'base64').toString('utf8');
    if (/content-type:\s*text\/x-shellscript/i.test(headers)) scripts.push(content.replace(/\n$/, ''));
  }
  return scripts;
}

/** An amazon-ec2-metadata-mock for one instance: { endpoint, stop() }. */
async function startMetadataMock({ bin, dir, instance, runId, bucket, lifecycle, spotNoticeAfterSeconds, spotTime }) {
  const port = await freePort();
  const config = {
    metadata: {
      paths: {
        // AEMM serves two instance tags, whose paths and values are configurable.
        'tags-instance-test': '/latest/meta-data/tags/instance/ChronosRunId',
        'tags-instance-name': '/latest/meta-data/tags/instance/ChronosBucket',
      },
      values: {
        'instance-id': instance.InstanceId,
        'instance-type': instance.InstanceType,
        'instance-life-cycle': lifecycle,
        'placement-availability-zone': instance.Placement?.AvailabilityZone ?? 'us-east-1a',
        'placement-region': (instance.Placement?.AvailabilityZone ?? 'us-east-1a').replace(/[a-z]$/, ''),
        'tags-instance-test': runId,
        'tags-instance-name': bucket,
      },
    },
  };
  const configFile = path.join(dir, 'aemm-config.json');
  fs.writeFileSync(configFile, JSON.stringify(config));
  const args = ['-I', '-n', '127.0.0.1', '-p', String(port), '-c', configFile];
  // Without a subcommand AEMM serves every event at once; `spot -d N` serves the notice N seconds after it starts.
  if (spotNoticeAfterSeconds !== undefined) {
    args.push('spot', '-d', String(spotNoticeAfterSeconds));
    if (spotTime) args.push('-t', spotTime.toISOString().replace(/\.\d{3}Z$/, 'Z'));
  }
  else args.push('events', '-d', '86400');
  const child = spawn(bin, args, { stdio: ['ignore', fs.openSync(path.join(dir, 'aemm.log'), 'a'), fs.openSync(path.join(dir, 'aemm.log'), 'a')] });
  const endpoint = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`${endpoint}/latest/api/token`, {
      method: 'PUT', headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '60' }, signal: AbortSignal.timeout(1000),
    }).then((r) => r.ok, () => false);
    if (ok) return { endpoint, stop: () => child.kill('SIGTERM') };
    if (child.exitCode !== null) break;
    await sleep(100);
  }
  child.kill('SIGKILL');
  throw new Error(`amazon-ec2-metadata-mock did not start on ${endpoint}: see ${path.join(dir, 'aemm.log')}`);
}

/**
 * The pids of the processes of one instance directory: those whose command line mentions `dir`, or whose working
 * directory is in it (the backstop runs as `python3 chronos_boot.py backstop` from the instance's home; /proc).
 */
function processesUnder(dir) {
  let out = '';
  try { out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' }); } catch { return []; }
  const cwdIn = (pid) => { try { return (fs.readlinkSync(`/proc/${pid}/cwd`) + path.sep).startsWith(dir + path.sep); } catch { return false; } };
  return out.split('\n').map((line) => /^\s*(\d+)\s+(.*)$/.exec(line)).filter(Boolean)
    .filter((m) => Number(m[1]) !== process.pid && (m[2].includes(dir) || cwdIn(m[1]))).map((m) => Number(m[1]));
}

/** Kills the processes of one instance directory (its detached agent and backstop): power-off ends them on EC2. */
function killMarked(dir) {
  for (const pid of processesUnder(dir)) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
  }
}

/**
 * Watches the emulator for instances to boot. options:
 * - endpoint: the emulator; region;
 * - aemmBin: the metadata mock's binary; workDir: where instance directories go;
 * - spotNoticeAfterSeconds(runId, attempt): seconds after boot for a spot notice, or undefined for none;
 * - lifecycleOf(instance): 'spot' or 'on-demand' (moto 5.2.5 ignores InstanceMarketOptions, so the instance does
 *   not say; by default its InstanceLifecycle, else on-demand);
 * - log(line): progress lines.
 * Returns { booted: [{ instanceId, runId, attempt, home, bucket, userDataGzipped }], stop() }.
 */
function playInstances({ endpoint, region = 'us-east-1', aemmBin, workDir, spotNoticeAfterSeconds = () => undefined,
  lifecycleOf = (instance) => (instance.InstanceLifecycle === 'spot' ? 'spot' : 'on-demand'), log = () => {} }) {
  const { EC2Client, DescribeInstancesCommand, DescribeInstanceAttributeCommand, TerminateInstancesCommand } = require('@aws-sdk/client-ec2');
  const ec2 = new EC2Client({ endpoint: assertLoopback(endpoint), region, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  const seen = new Map();
  const booted = [];
  let stopped = false;

  async function boot(instance) {
    const tags = Object.fromEntries((instance.Tags ?? []).map((t) => [t.Key, t.Value]));
    const runId = tags.ChronosRunId;
    const attempt = Number(tags.ChronosAttempt ?? '1');
    const home = path.join(workDir, instance.InstanceId);
    fs.mkdirSync(home, { recursive: true });
    const notice = spotNoticeAfterSeconds(runId, attempt);
    const lifecycle = lifecycleOf(instance);
    if (!tags.ChronosBucket) throw new Error(`instance ${instance.InstanceId} has no ChronosBucket tag: the launcher sets it`);
    const reclaimAt = notice === undefined ? undefined : Date.now() + (notice + SPOT_RECLAIM_LEAD_SECONDS) * 1000;
    const imds = await startMetadataMock({ bin: aemmBin, dir: home, instance, runId, bucket: tags.ChronosBucket, lifecycle,
      spotNoticeAfterSeconds: notice, spotTime: reclaimAt && new Date(reclaimAt) });
    const entry = { instanceId: instance.InstanceId, runId, attempt, home, imds, children: [] };
    seen.set(instance.InstanceId, entry);
    booted.push(entry);
    log(`instance ${instance.InstanceId} (${runId} attempt ${attempt}, ${lifecycle}) boots`
      + (notice === undefined ? '' : `; a spot interruption notice comes ${notice} s after boot, EC2 reclaims it ${SPOT_RECLAIM_LEAD_SECONDS} s later`));
    if (reclaimAt !== undefined) {
      entry.reclaim = setTimeout(() => reclaim(entry), reclaimAt - Date.now());
    }
    const attr = await ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: instance.InstanceId, Attribute: 'userData' }));
    const userData = Buffer.from(attr.UserData?.Value ?? '', 'base64');
    entry.userDataGzipped = userData[0] === 0x1f && userData[1] === 0x8b;
    entry.bucket = tags.ChronosBucket;
    const scripts = shellParts(userData);
    if (scripts.length === 0) throw new Error(`instance ${instance.InstanceId} has no shell user data: is the agent in the launch template?`);
    const poweroff = [process.execPath, path.join(__dirname, 'poweroff.js'), endpoint, region, instance.InstanceId].map((a) => `'${a}'`).join(' ');
    const env = {
      ...process.env,
      AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.endpoint,
      AWS_ENDPOINT_URL: endpoint,
      AWS_REGION: region,
      CHRONOS_HOME: home,
      CHRONOS_POWEROFF_COMMAND: poweroff,
      CHRONOS_ATTEMPT: String(attempt),
      CHRONOS_PER_BOOT_DIR: path.join(home, 'per-boot'),
    };
    // The instance role's credentials come from the metadata mock, as on EC2.
    for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_EC2_METADATA_DISABLED', 'CHRONOS_BUCKET']) delete env[k];
    scripts.forEach((script, i) => {
      const file = path.join(home, `user-data-${i}.sh`);
      fs.writeFileSync(file, script, { mode: 0o755 });
      const out = fs.openSync(path.join(home, 'console.log'), 'a');
      const child = spawn('bash', [file], { env, cwd: home, stdio: ['ignore', out, out] });
      entry.children.push(child);
    });
  }

  /** EC2 reclaims a spot instance at its notice's time: it terminates it (moto sets no spot state reason). */
  async function reclaim(entry) {
    if (entry.done) return;
    try {
      await ec2.send(new TerminateInstancesCommand({ InstanceIds: [entry.instanceId] }));
    } catch (e) {
      log(`instance player: ${e.message}`);
    }
    await shutDown(entry, 'reclaimed by EC2 at the spot notice\'s time (terminated)');
  }

  async function shutDown(entry, why) {
    if (entry.done) return;
    clearTimeout(entry.reclaim);
    entry.imds.stop();
    killMarked(entry.home);
    entry.done = true;
    log(`instance ${entry.instanceId} ${why}`);
  }

  const loop = (async () => {
    while (!stopped) {
      try {
        const out = await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag-key', Values: ['ChronosRunId'] }] }));
        for (const instance of (out.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
          const state = instance.State?.Name;
          const entry = seen.get(instance.InstanceId);
          if (!entry && (state === 'running' || state === 'pending')) {
            seen.set(instance.InstanceId, { booting: true });
            await boot(instance);
          } else if (entry && entry.imds && !entry.done && (state === 'terminated' || state === 'shutting-down')) {
            await shutDown(entry, 'terminated (powered off)');
          }
        }
      } catch (e) {
        log(`instance player: ${e.message}`);
      }
      await sleep(300);
    }
  })();

  return {
    booted,
    async stop() {
      stopped = true;
      await loop;
      for (const entry of booted) if (!entry.done) await shutDown(entry, 'stopped with the player');
    },
  };
}

module.exports = { playInstances, shellParts, startMetadataMock, processesUnder, SPOT_RECLAIM_LEAD_SECONDS };
