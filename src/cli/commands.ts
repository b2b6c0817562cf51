import * as fs from 'fs';
import * as path from 'path';
import { TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { snapshot, uploadSnapshot } from './code';
import { Clients, CliError, formatAge, formatBytes, Io, packageRoot, packageVersion } from './context';
import { checkEnvName, Foundation, LIFETIME_MARGIN_SECONDS, lifetimeTagHours, resolveFoundation } from './foundation';
import { chooseImage, Launched, launchWithFallback, Market } from './launch';
import { LogPrinter } from './logs';
import {
  checkRunId, getJson, keys, listKeys, listRunIds, newRunId, pendingStatus, putJson, RUN_OVER, RunSpec, RunStatus, runInstances,
  SCHEMA_VERSION, tagOf,
} from './runs';
import { InstanceWatchdog } from './watchdog';

/** The options of `run`. */
export interface RunOptions {
  readonly env: string;
  readonly command: string[];
  readonly instanceTypes?: string[];
  /** An AMI ID or `resolve:ssm:NAME`; wins over the launch template's image (default: chooseImage). */
  readonly imageId?: string;
  /** 'spot', 'on-demand' or 'spot-fallback' (the default). */
  readonly market?: 'spot' | 'on-demand' | 'spot-fallback';
  readonly maxRunLifetime?: string;
  readonly envVars?: string[];
  readonly name?: string;
  readonly maxAttempts?: number;
  readonly onDemandAfterInterruptions?: number;
  readonly detach?: boolean;
  /** The working directory to upload (default: the current one). */
  readonly dir?: string;
  /** Seconds between two polls of the status and logs. */
  readonly pollSeconds?: number;
}

/** `2h`, `90m`, `1h30m`, `45s` → seconds. */
export function parseDuration(text: string): number {
  const m = /^(?:(\d+(?:\.\d+)?)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text.trim());
  if (!m || text.trim() === '' || (!m[1] && !m[2] && !m[3])) {
    throw new CliError(`--max-run-lifetime '${text}' is not a duration such as 2h, 90m or 1h30m`, 2);
  }
  const seconds = Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
  if (!(seconds > 0)) throw new CliError(`--max-run-lifetime '${text}' must be positive`, 2);
  return Math.round(seconds);
}

function parseEnvVars(pairs: string[] = []): Record<string, string> | undefined {
  if (pairs.length === 0) return undefined;
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const key = eq > 0 ? pair.slice(0, eq) : '';
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new CliError(`--env-var '${pair}' is not KEY=VALUE`, 2);
    if (key.startsWith('CHRONOS_')) throw new CliError(`--env-var ${key}: CHRONOS_* variables are the agent's`, 2);
    env[key] = pair.slice(eq + 1);
  }
  return env;
}

function marketsOf(choice: RunOptions['market'], foundation: Foundation): Market[] {
  const markets: Market[] = choice === 'spot' ? ['spot'] : choice === 'on-demand' ? ['on-demand'] : ['spot', 'on-demand'];
  if (foundation.templateIsSpot) {
    if (choice === 'on-demand') {
      throw new CliError(`the launch template of '${foundation.environment}' asks for spot instances (launchTemplateProps.spot), ` +
        'and a launch cannot override it to on-demand: use --spot, or a template without spot');
    }
    return ['spot'];
  }
  return markets;
}

/** The state of one run while the launcher is attached to it. */
interface Attached {
  readonly clients: Clients;
  readonly io: Io;
  readonly foundation: Foundation;
  readonly runId: string;
  readonly instanceTypes: string[];
  readonly markets: Market[];
  readonly maxAttempts: number;
  readonly onDemandAfterInterruptions: number;
  readonly maxLifetimeHours: number;
  /** The ImageId every attempt sends (undefined: the template's). */
  readonly imageId?: string;
  readonly pollSeconds: number;
  readonly name?: string;
}

/** `run`: upload the code, write the spec and `pending`, launch, then follow (or return with --detach). */
export async function runCommand(clients: Clients, io: Io, options: RunOptions): Promise<number> {
  checkEnvName(options.env);
  if (options.command.length === 0) throw new CliError('run needs a command after --, for example: -- python train.py', 2);
  const maxAttempts = options.maxAttempts ?? 3;
  const onDemandAfter = options.onDemandAfterInterruptions ?? 2;
  if (!(Number.isInteger(maxAttempts) && maxAttempts >= 1)) throw new CliError('--max-attempts must be a whole number of at least 1', 2);
  if (!(Number.isInteger(onDemandAfter) && onDemandAfter >= 0)) throw new CliError('--on-demand-after-interruptions must be a whole number', 2);
  const env = parseEnvVars(options.envVars);

  const foundation = await resolveFoundation(clients, options.env);
  io.err(`[chronos] foundation ${foundation.environment}: bucket ${foundation.bucket}, template ${foundation.launchTemplateId} ` +
    `version ${foundation.launchTemplateVersion}, ` +
    `zones ${foundation.subnets.map(s => s.zone).join(', ')} (from ${foundation.source})\n`);
  const lifetime = options.maxRunLifetime ? parseDuration(options.maxRunLifetime) : foundation.maxLifetimeSeconds;
  if (lifetime > foundation.maxLifetimeSeconds) {
    throw new CliError(`--max-run-lifetime ${options.maxRunLifetime} is longer than the foundation's ${foundation.maxLifetimeSeconds / 3600} h ` +
      `(the MaxLifetimeHours tag of its launch template, less the ${LIFETIME_MARGIN_SECONDS / 3600} h drain margin)`, 2);
  }
  const instanceTypes = options.instanceTypes?.length ? options.instanceTypes
    : foundation.templateInstanceType ? [foundation.templateInstanceType] : [];
  if (instanceTypes.length === 0) throw new CliError('--instance-types is needed: the launch template has no instance type', 2);
  const markets = marketsOf(options.market, foundation);
  const image = chooseImage(foundation, instanceTypes, options.imageId);
  io.err(`[chronos] image: ${image.description}\n`);

  const now = io.now();
  const runId = newRunId(options.name, now);
  const root = path.resolve(options.dir ?? process.cwd());
  if (!fs.statSync(root, { throwIfNoEntry: false })?.isDirectory()) throw new CliError(`${root} is not a directory`, 2);
  const started = Date.now();
  const snap = await snapshot(root);
  const hashed = Date.now();
  const upload = await uploadSnapshot(clients.s3, foundation.bucket, foundation.environment, snap, now);
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  io.err(`[chronos] code: ${upload.files} files, ${formatBytes(upload.totalBytes)}; uploaded ${upload.uploadedBlobs} of ` +
    `${upload.blobs} blobs (${formatBytes(upload.uploadedBytes)}), manifest ${upload.manifestKey} ` +
    `(hashed in ${seconds(hashed - started)}, checked and uploaded in ${seconds(Date.now() - hashed)})\n`);

  const spec: RunSpec = {
    schemaVersion: SCHEMA_VERSION,
    runId,
    ...(options.name ? { name: options.name } : {}),
    environment: foundation.environment,
    command: options.command,
    ...(env ? { env } : {}),
    code: { manifestKey: upload.manifestKey },
    maxRunLifetimeSeconds: lifetime,
    createdAt: now.toISOString(),
    createdBy: `chronos-training/${packageVersion()}`,
  };
  await putJson(clients.s3, foundation.bucket, keys.spec(foundation.environment, runId), spec);
  io.err(`[chronos] run ${runId}\n`);

  // Always the lifetime plus the drain margin: the reaper counts from LaunchTime, the agent from its own start.
  const maxLifetimeHours = lifetimeTagHours(lifetime);
  const attached: Attached = {
    clients,
    io,
    foundation,
    runId,
    instanceTypes,
    markets,
    maxAttempts,
    onDemandAfterInterruptions: onDemandAfter,
    maxLifetimeHours,
    imageId: image.imageId,
    pollSeconds: options.pollSeconds ?? 5,
    name: options.name,
  };
  // Ctrl-C before the launch cancels (nothing runs; the uploaded code stays for the next run); after it, it detaches.
  if (io.interrupted.aborted) throw new CliError(`interrupted before the launch: run ${runId} was not launched`, 130);
  const launched = await launchAttempt(attached, 1, markets);
  if (options.detach) {
    io.err(`[chronos] detached: follow with chronos-training logs ${runId} --follow --env ${foundation.environment}\n`);
    io.out(`${runId}\n`);
    return 0;
  }
  return follow(attached, launched);
}

async function launchAttempt(a: Attached, attempt: number, markets: Market[]) {
  const { foundation, runId } = a;
  const statusKey = keys.status(foundation.environment, runId);
  const pending = pendingStatus(runId, attempt, a.io.now());
  await putJson(a.clients.s3, foundation.bucket, statusKey, pending);
  let launched: Launched;
  try {
    launched = await launchWithFallback(a.clients, foundation, {
      runId, attempt, name: a.name, instanceTypes: a.instanceTypes, markets, maxLifetimeHours: a.maxLifetimeHours, imageId: a.imageId,
    }, line => a.io.err(`[chronos] ${line}\n`));
  } catch (e) {
    // No instance, so no agent will ever write: the run ends here rather than stay pending.
    const at = a.io.now().toISOString();
    await putJson(a.clients.s3, foundation.bucket, statusKey, {
      ...pending, state: 'failed', updatedAt: at, endedAt: at, reason: `launch failed: ${(e as Error).message}`,
    });
    a.io.err(`[chronos] run ${runId}: attempt ${attempt} could not be launched\n`);
    throw e;
  }
  a.io.err(`[chronos] attempt ${attempt}: ${launched.instanceId} (${launched.market} ${launched.instanceType} in ${launched.zone}) ` +
    `won after ${launched.tries} ${launched.tries === 1 ? 'try' : 'tries'}\n`);
  return launched;
}

function sleep(io: Io, ms: number): Promise<void> {
  if (io.interrupted.aborted) return Promise.resolve();
  return new Promise(resolve => {
    const done = () => {
      io.interrupted.removeEventListener('abort', done);
      resolve();
    };
    io.interrupted.addEventListener('abort', done);
    void io.sleep(ms).then(done);
  });
}

function describeStatus(s: RunStatus): string {
  const where = [s.instanceId, s.instanceType, s.lifecycle, s.availabilityZone].filter(Boolean).join(', ');
  return `attempt ${s.attempt}: ${s.state}${where ? ` on ${where}` : ''}${s.reason ? ` (${s.reason})` : ''}`;
}

/** The exit code of the launcher for a run that is over. */
function exitCodeOf(s: RunStatus): number {
  if (s.state === 'succeeded') return 0;
  if (s.state === 'failed') return s.exitCode && s.exitCode > 0 && s.exitCode < 256 ? s.exitCode : 1;
  if (s.state === 'timed-out') return 124;
  return 1;
}

/** Ends a run from the launcher (no agent will write again): its final status, the reason, exit code 1. */
async function endRun(a: Attached, status: RunStatus | undefined, attempt: number, state: 'failed' | 'stopped', reason: string): Promise<number> {
  const { clients, io, foundation, runId } = a;
  const at = io.now().toISOString();
  await putJson(clients.s3, foundation.bucket, keys.status(foundation.environment, runId), {
    ...(status?.attempt === attempt ? status : pendingStatus(runId, attempt, io.now())), state, updatedAt: at, endedAt: at, reason,
  });
  io.err(`[chronos] run ${runId} ${state}: ${reason}\n`);
  io.out(`${runId}\n`);
  return 1;
}

/** Whether `stop` asked the run to stop (control.json): then no next attempt is launched. */
async function stopRequested(a: Attached): Promise<{ requestedAt?: string } | undefined> {
  const control = await getJson<{ action?: string; requestedAt?: string }>(a.clients.s3, a.foundation.bucket,
    keys.control(a.foundation.environment, a.runId));
  return control?.action === 'stop' ? control : undefined;
}

/**
 * Follows the run: logs and status changes; returns the exit code. The next attempt is launched only after a spot
 * reclaim (the agent's `interrupted`, or an instance EC2 reclaimed without a final status), and only when no stop was
 * asked for; any other end of an instance without a final status ends the run, with its reason (watchdog.ts).
 */
async function follow(a: Attached, first: Launched): Promise<number> {
  const { clients, io, foundation, runId } = a;
  const env = foundation.environment;
  const printer = new LogPrinter(clients.s3, foundation.bucket, env, runId, io);
  const firstAttempt = 1;
  let attempt = firstAttempt;
  let lastSeen = '';
  let spotInterruptions = 0;
  let current = first;
  let currentMarket: Market = first.market;
  const watchdog = new InstanceWatchdog(clients, io);
  for (;;) {
    if (io.interrupted.aborted) {
      io.err('[chronos] detached; the run goes on (no further attempt is launched while detached). ' +
        `Follow it with: chronos-training logs ${runId} --follow --env ${env}\n`);
      io.out(`${runId}\n`);
      return 0;
    }
    let status = await getJson<RunStatus>(clients.s3, foundation.bucket, keys.status(env, runId));
    for (let n = firstAttempt; n <= attempt; n++) await printer.printNew(n);
    // An instance that ended without the agent's final status (reclaimed without notice, terminated, failed at launch,
    // the agent killed): the attempt is over all the same, and only a spot reclaim is worth another attempt.
    const stateNow = status?.attempt === attempt ? status.state : 'pending';
    const gone = await watchdog.gone(current.instanceId, stateNow);
    if (gone) {
      const what = `attempt ${attempt}: ${current.instanceId} is ${gone.state} but the run's status says ${stateNow}: ${gone.reason}`;
      await printer.printNew(attempt);
      if (!gone.resumable) {
        return (await stopRequested(a)) ? endRun(a, status, attempt, 'stopped', `stopped on request; ${what}`) : endRun(a, status, attempt, 'failed', what);
      }
      io.err(`[chronos] ${what}; the agent wrote no final status: the attempt counts as interrupted\n`);
      status = {
        ...(status ?? pendingStatus(runId, attempt, io.now())),
        attempt,
        state: 'interrupted',
        reason: `instance ${gone.state} without a final status: ${gone.reason}`,
        lifecycle: currentMarket,
      };
    }
    if (status && status.attempt === attempt) {
      const line = describeStatus(status);
      if (line !== lastSeen) {
        io.err(`[chronos] ${line}\n`);
        lastSeen = line;
      }
      if (status.lifecycle === 'spot' || status.lifecycle === 'on-demand') currentMarket = status.lifecycle;
      if (RUN_OVER.has(status.state)) {
        await printer.printNew(attempt);
        io.err(`[chronos] run ${runId} ${status.state}\n`);
        io.out(`${runId}\n`);
        return exitCodeOf(status);
      }
      if (status.state === 'interrupted') {
        await printer.printNew(attempt);
        // The agent reads control.json only while its command runs: a stop asked for since is honoured here.
        const stop = await stopRequested(a);
        if (stop) {
          return endRun(a, status, attempt, 'stopped', `stopped on request (chronos-training stop${stop.requestedAt ? `, ${stop.requestedAt}` : ''}); ` +
            `attempt ${attempt} was interrupted (${status.reason ?? 'no reason given'}) and no next attempt is launched`);
        }
        // The agent drains on SIGTERM and says `interrupted` whoever ends the instance: the reaper's kill ends the run.
        const end = gone ?? await watchdog.look(current.instanceId);
        if (end?.reaper) return endRun(a, status, attempt, 'failed', `attempt ${attempt}: ${current.instanceId}: ${end.reason}`);
        if (currentMarket === 'spot') spotInterruptions++;
        if (attempt >= a.maxAttempts) {
          io.err(`[chronos] attempt ${attempt} was interrupted and --max-attempts ${a.maxAttempts} is reached; the run's ` +
            'last checkpoint stays in S3\n');
          io.out(`${runId}\n`);
          return 1;
        }
        let markets = a.markets;
        if (a.markets.includes('on-demand') && a.markets.includes('spot') && spotInterruptions >= a.onDemandAfterInterruptions) {
          markets = ['on-demand'];
          io.err(`[chronos] ${spotInterruptions} spot interruption(s): the next attempts are on-demand\n`);
        }
        attempt++;
        io.err(`[chronos] resuming: attempt ${attempt} of ${a.maxAttempts}\n`);
        current = await launchAttempt(a, attempt, markets);
        currentMarket = current.market;
        continue;
      }
    }
    await sleep(io, a.pollSeconds * 1000);
  }
}

/** `logs RUN`: every attempt's logs, in order; with `follow`, until the run is over. */
export async function logsCommand(clients: Clients, io: Io,
  options: { env: string; runId: string; follow?: boolean; pollSeconds?: number }): Promise<number> {
  checkEnvName(options.env);
  const runId = checkRunId(options.runId);
  const foundation = await resolveFoundation(clients, options.env);
  const printer = new LogPrinter(clients.s3, foundation.bucket, options.env, runId, io);
  // A Batch job's run has a status and logs but no spec (the job definition is its spec).
  if (!(await runExists(clients, foundation.bucket, options.env, runId))) throw new CliError(`no run ${runId} in environment ${options.env}`);
  let printedAttempts = new Set<number>();
  let quietSince: number | undefined;
  for (;;) {
    const status = await getJson<RunStatus>(clients.s3, foundation.bucket, keys.status(options.env, runId));
    const attempts = new Set([...await printer.attempts(), ...(status ? [status.attempt] : [])]);
    for (const n of [...attempts].sort((x, y) => x - y)) {
      if (!printedAttempts.has(n)) {
        io.err(`[chronos] --- attempt ${n} ---\n`);
        printedAttempts.add(n);
      }
      await printer.printNew(n);
    }
    if (!options.follow || io.interrupted.aborted) return 0;
    if (status && RUN_OVER.has(status.state)) {
      io.err(`[chronos] run ${runId} ${status.state}\n`);
      return exitCodeOf(status);
    }
    // An interrupted attempt is the end unless an attached launcher starts the next one within two minutes.
    if (status?.state === 'interrupted') {
      quietSince ??= io.now().getTime();
      if (io.now().getTime() - quietSince > 120_000) {
        io.err(`[chronos] attempt ${status.attempt} was interrupted and no next attempt started\n`);
        return 1;
      }
    } else {
      quietSince = undefined;
    }
    await sleep(io, (options.pollSeconds ?? 5) * 1000);
  }
}

/** `status RUN`: the run's status file and its instances in EC2. */
export async function statusCommand(clients: Clients, io: Io, options: { env: string; runId: string }): Promise<number> {
  checkEnvName(options.env);
  const runId = checkRunId(options.runId);
  const foundation = await resolveFoundation(clients, options.env);
  const [spec, status, instances] = await Promise.all([
    getJson<RunSpec>(clients.s3, foundation.bucket, keys.spec(options.env, runId)),
    getJson<RunStatus>(clients.s3, foundation.bucket, keys.status(options.env, runId)),
    runInstances(clients, options.env, runId, true),
  ]);
  if (!spec && !status && instances.length === 0) throw new CliError(`no run ${runId} in environment ${options.env}`);
  const now = io.now().getTime();
  const lines: Array<[string, string]> = [
    ['run', runId],
    ['name', spec?.name ?? ''],
    ['command', spec ? spec.command.join(' ') : ''],
    ['state', status?.state ?? 'unknown (no status.json)'],
    ['attempt', String(status?.attempt ?? '')],
    ['instance', status?.instanceId ?? ''],
    ['type', status?.instanceType ?? ''],
    ['lifecycle', status?.lifecycle ?? ''],
    ['zone', status?.availabilityZone ?? ''],
    ['started', status?.startedAt ? `${status.startedAt} (${formatAge((now - Date.parse(status.startedAt)) / 1000)} ago)` : ''],
    ['updated', status?.updatedAt ?? ''],
    ['ended', status?.endedAt ?? ''],
    ['exit code', status?.exitCode === null || status?.exitCode === undefined ? '' : String(status.exitCode)],
    ['checkpoint', status?.lastCheckpoint ? `#${status.lastCheckpoint.sequence} at ${status.lastCheckpoint.at}` : ''],
    ['reason', status?.reason ?? ''],
  ];
  for (const [k, v] of lines) if (v !== '') io.out(`${`${k}:`.padEnd(12)}${v}\n`);
  for (const i of instances) {
    const state = i.State?.Name ?? '?';
    const ended = status && (RUN_OVER.has(status.state) || status.state === 'interrupted');
    const live = ['pending', 'running', 'stopping', 'shutting-down'].includes(state);
    io.out(`${'instance:'.padEnd(12)}${i.InstanceId} attempt ${tagOf(i, 'ChronosAttempt') ?? '?'} ${state} ${i.InstanceType} ` +
      `${i.InstanceLifecycle === 'spot' ? 'spot' : 'on-demand'} ${i.Placement?.AvailabilityZone ?? ''}` +
      `${ended && live && state !== 'shutting-down' ? ` (still ${state} although the status says ${status!.state})` : ''}\n`);
  }
  return 0;
}

/** `list`: the runs of an environment, newest first, from their status files and EC2. */
export async function listCommand(clients: Clients, io: Io, options: { env: string; limit?: number }): Promise<number> {
  checkEnvName(options.env);
  const foundation = await resolveFoundation(clients, options.env);
  const [ids, instances] = await Promise.all([
    listRunIds(clients.s3, foundation.bucket, options.env),
    runInstances(clients, options.env),
  ]);
  // Run IDs end in -yyyymmdd-hhmmss-hex: newest first.
  const stamp = (id: string) => id.slice(-22);
  const chosen = ids.sort((x, y) => (stamp(y) < stamp(x) ? -1 : stamp(y) > stamp(x) ? 1 : 0)).slice(0, options.limit ?? 20);
  // One unreadable status (a newer schemaVersion, a broken file) spoils its row, not the list.
  const unreadable = new Map<string, string>();
  const statuses = await Promise.all(chosen.map(id => getJson<RunStatus>(clients.s3, foundation.bucket, keys.status(options.env, id))
    .catch((e: Error) => {
      unreadable.set(id, e instanceof CliError && /schemaVersion/.test(e.message) ? 'newer status (upgrade)' : 'unreadable status');
      return undefined;
    })));
  const now = io.now().getTime();
  const rows = [['RUN', 'STATE', 'ATTEMPT', 'INSTANCE', 'TYPE', 'LIFECYCLE', 'ZONE', 'AGE']];
  chosen.forEach((id, n) => {
    const s = statuses[n];
    const live = instances.filter(i => tagOf(i, 'ChronosRunId') === id);
    let state = s?.state ?? unreadable.get(id) ?? '?';
    if (s && (RUN_OVER.has(s.state) || s.state === 'interrupted') && live.some(i => ['pending', 'running'].includes(i.State?.Name ?? ''))) {
      state = `${s.state} (instance still running)`;
    }
    const inst = live[0];
    rows.push([
      id, state, String(s?.attempt ?? ''), s?.instanceId ?? inst?.InstanceId ?? '', s?.instanceType ?? inst?.InstanceType ?? '',
      s?.lifecycle ?? '', s?.availabilityZone ?? inst?.Placement?.AvailabilityZone ?? '',
      s?.startedAt ? formatAge((now - Date.parse(s.startedAt)) / 1000) : '',
    ]);
  });
  const widths = rows[0].map((_, c) => Math.max(...rows.map(r => r[c].length)));
  for (const r of rows) io.out(`${r.map((v, c) => v.padEnd(widths[c])).join('  ').trimEnd()}\n`);
  return 0;
}

/** Whether a run has a spec or a status (a Batch job's run has no spec). */
async function runExists(clients: Clients, bucket: string, env: string, runId: string): Promise<boolean> {
  const found = await listKeys(clients.s3, bucket, `${env}/runs/${runId}/`);
  return found.some(k => k.endsWith('/spec.json') || k.endsWith('/status.json'));
}

/** `stop RUN`: asks the agent to drain (control.json); with `now`, terminates the run's instances. */
export async function stopCommand(clients: Clients, io: Io, options: { env: string; runId: string; now?: boolean }): Promise<number> {
  checkEnvName(options.env);
  const runId = checkRunId(options.runId);
  const foundation = await resolveFoundation(clients, options.env);
  if (!(await runExists(clients, foundation.bucket, options.env, runId))) throw new CliError(`no run ${runId} in environment ${options.env}`);
  await putJson(clients.s3, foundation.bucket, keys.control(options.env, runId),
    { schemaVersion: SCHEMA_VERSION, action: 'stop', requestedAt: io.now().toISOString() });
  io.err(`[chronos] asked run ${runId} to stop: the agent drains (final checkpoint, logs) at its next read of control.json\n`);
  if (options.now) {
    const live = (await runInstances(clients, options.env, runId)).filter(i => i.State?.Name !== 'shutting-down');
    if (live.length === 0) {
      io.err('[chronos] no instance of the run is running\n');
    } else {
      const ids = live.map(i => i.InstanceId!);
      await clients.ec2.send(new TerminateInstancesCommand({ InstanceIds: ids }));
      io.err(`[chronos] terminated ${ids.join(', ')} (no drain: what was not checkpointed is lost)\n`);
    }
  }
  io.out(`${runId}\n`);
  return 0;
}

/**
 * `agent-path`: the run agent file shipped in the package; with `copyTo`, a copy of it there (the path printed
 * from Python's console script is in the jsii kernel's temporary directory, removed when the command exits).
 */
export function agentPathCommand(io: Io, copyTo?: string): number {
  const file = path.join(packageRoot(), 'agent', 'chronos_run_agent.py');
  if (!fs.existsSync(file)) throw new CliError(`the run agent is not in this package (looked for ${file})`);
  if (copyTo === undefined) {
    io.out(`${file}\n`);
    return 0;
  }
  const target = fs.statSync(copyTo, { throwIfNoEntry: false })?.isDirectory() ? path.join(copyTo, path.basename(file)) : copyTo;
  fs.copyFileSync(file, target);
  io.out(`${path.resolve(target)}\n`);
  return 0;
}
