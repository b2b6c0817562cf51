/*
 * The launcher against one moto server on loopback (EC2, S3, SSM, CloudFormation): a foundation made with the SDK
 * (two public subnets, a bucket, a launch template, the SSM parameters), then run, upload, logs, status, list and
 * stop as a user calls them (main() in process, with the clients pointed at moto). Moto ignores
 * InstanceMarketOptions (../shared/notes/run-facts.md, "moto 5.2.5"), so the market is checked on the request.
 */
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CreateStackCommand } from '@aws-sdk/client-cloudformation';
import {
  CreateLaunchTemplateCommand, CreateLaunchTemplateVersionCommand, CreateSubnetCommand, CreateVpcCommand, DescribeImagesCommand,
  DescribeInstancesCommand, DescribeLaunchTemplatesCommand, Instance, TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { PutParameterCommand } from '@aws-sdk/client-ssm';
import { awsError, motoClients, recordingIo, REGION } from './helpers';
import { main } from '../../src/cli/main';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const moto = require('../../scripts/local/moto');

jest.setTimeout(60_000);

/** The tests' clock starts now (moto stamps objects with the real time, which the upload compares with it). */
const START = new Date(Math.floor(Date.now() / 1000) * 1000);
const STAMP = START.toISOString().slice(0, 19).replace(/-/g, '').replace(/:/g, '').replace('T', '-');

let server: { endpoint: string; stop: () => Promise<void> };
let clients: ReturnType<typeof motoClients>['clients'];
let calls: ReturnType<typeof motoClients>['calls'];
let tmp: string;
const BUCKET = `chronos-training-dev-123456789012-${REGION}`;
let templateId: string;
let subnets: string[];

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'chronos-cli-'));
  process.env.CHRONOS_CACHE_DIR = path.join(tmp, 'cache');
  server = await moto.start({ logFile: path.join(tmp, 'moto.log') });
  ({ clients, calls } = motoClients(server.endpoint));
  const vpc = await clients.ec2.send(new CreateVpcCommand({ CidrBlock: '10.0.0.0/16' }));
  subnets = [];
  for (const [i, zone] of ['us-east-1a', 'us-east-1b'].entries()) {
    const s = await clients.ec2.send(new CreateSubnetCommand({ VpcId: vpc.Vpc!.VpcId!, CidrBlock: `10.0.${i}.0/24`, AvailabilityZone: zone }));
    subnets.push(s.Subnet!.SubnetId!);
  }
  await clients.s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  const images = await clients.ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }));
  const tags = [
    { Key: 'Project', Value: 'Chronos-Training' }, { Key: 'Environment', Value: 'dev' }, { Key: 'CostCenter', Value: 'train' },
    // The foundation's lifetime (4 h) plus the drain margin (0.25 h), as the foundation stamps it.
    { Key: 'MaxLifetimeHours', Value: '4.25' }, { Key: 'ManagedBy', Value: 'chronos-launch-template' },
  ];
  const template = await clients.ec2.send(new CreateLaunchTemplateCommand({
    LaunchTemplateName: 'ChronosTrainingLaunchTemplate-dev',
    LaunchTemplateData: {
      ImageId: images.Images![0].ImageId,
      UserData: Buffer.from('#!/bin/bash\necho agent\n').toString('base64'),
      TagSpecifications: [{ ResourceType: 'instance', Tags: tags }, { ResourceType: 'volume', Tags: tags }],
    },
  }));
  templateId = template.LaunchTemplate!.LaunchTemplateId!;
  const parameters: Record<string, string> = {
    S3BucketName: BUCKET,
    LaunchTemplateId: templateId,
    PublicSubnetIds: subnets.join(','),
    AvailabilityZones: 'us-east-1a,us-east-1b',
    CostCenter: 'train',
    Environment: 'dev',
  };
  for (const [suffix, value] of Object.entries(parameters)) {
    await clients.ssm.send(new PutParameterCommand({ Name: `/chronos-training/dev/${suffix}`, Value: value, Type: 'String' }));
  }
}, 120_000);

afterAll(async () => {
  await server?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A working directory with a .gitignore, an ignored directory, a nested .gitignore with a negation, and a .git. */
function workdir(): string {
  const dir = fs.mkdtempSync(path.join(tmp, 'code-'));
  const write = (rel: string, text: string, mode = 0o644) => {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text, { mode });
  };
  write('train.py', 'print("training")\n');
  write('run.sh', '#!/bin/sh\npython train.py\n', 0o755);
  write('lib/model.py', 'MODEL = 1\n');
  write('lib/same.py', 'MODEL = 1\n'); // same bytes as model.py: one blob
  write('.gitignore', '*.ckpt\n/data/\n__pycache__/\n');
  write('data/big.bin', 'x'.repeat(1000));
  write('lib/__pycache__/model.pyc', 'bytecode');
  write('old.ckpt', 'checkpoint');
  write('notes/.gitignore', '*.md\n!keep.md\n');
  write('notes/drop.md', 'drop');
  write('notes/keep.md', 'keep');
  write('.git/HEAD', 'ref: refs/heads/main\n');
  return dir;
}

async function cli(args: string[], onSleep?: () => Promise<void> | void) {
  const rec = recordingIo(onSleep, START);
  const code = await main(args, { io: rec.io, clients: () => clients, pollSeconds: 1 });
  return { code, ...rec };
}

async function json(key: string): Promise<any> {
  const reply = await clients.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return JSON.parse(await reply.Body!.transformToString());
}

async function put(key: string, body: unknown) {
  await clients.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: typeof body === 'string' ? body : JSON.stringify(body) }));
}

async function instancesOf(runId: string): Promise<Instance[]> {
  const reply = await clients.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:ChronosRunId', Values: [runId] }] }));
  return (reply.Reservations ?? []).flatMap(r => r.Instances ?? []);
}

const tagsOf = (i: Instance) => Object.fromEntries((i.Tags ?? []).map(t => [t.Key, t.Value]));
const blobPuts = (since: number) => calls.slice(since).filter(c => c.command === 'PutObjectCommand' && /\/code\/blobs\//.test(c.input.Key));
const runRequests = (since: number) => calls.slice(since).filter(c => c.command === 'RunInstancesCommand').map(c => c.input);

function status(runId: string, state: string, attempt: number, extra: Record<string, unknown> = {}) {
  return {
    schemaVersion: 1,
    runId,
    state,
    attempt,
    instanceId: 'i-0000000000000000a',
    instanceType: 't3.micro',
    lifecycle: 'spot',
    availabilityZone: 'us-east-1a',
    startedAt: START.toISOString(),
    updatedAt: START.toISOString(),
    endedAt: null,
    exitCode: null,
    lastCheckpoint: null,
    reason: null,
    agentVersion: 'test',
    ...extra,
  };
}

describe('run --detach', () => {
  let dir: string;
  let runId: string;
  let since: number;
  let result: Awaited<ReturnType<typeof cli>>;

  beforeAll(async () => {
    dir = workdir();
    since = calls.length;
    result = await cli(['run', '--env', 'dev', '--dir', dir, '--instance-types', 't3.micro,t3.small', '--name', 'My Model',
      '--env-var', 'EPOCHS=3', '--max-run-lifetime', '90m', '--detach', '--', 'python', 'train.py', '--epochs', '3']);
    runId = result.stdout().trim();
  });

  test('prints the run ID, in the contract\'s format, on stdout', () => {
    expect(result.stderr()).not.toContain('error');
    expect(result.code).toBe(0);
    expect(runId).toMatch(new RegExp(`^my-model-${STAMP}-[0-9a-f]{6}$`));
  });

  test('uploads the files git would keep, content-addressed, then their manifest', async () => {
    const spec = await json(`dev/runs/${runId}/spec.json`);
    const manifest = await json(spec.code.manifestKey);
    expect(manifest.files.map((f: any) => f.path)).toEqual(['.gitignore', 'lib/model.py', 'lib/same.py', 'notes/.gitignore', 'notes/keep.md', 'run.sh', 'train.py']);
    expect(manifest.files.find((f: any) => f.path === 'run.sh').mode).toBe(0o755);
    const train = manifest.files.find((f: any) => f.path === 'train.py');
    expect(train).toEqual({ path: 'train.py', sha256: expect.stringMatching(/^[0-9a-f]{64}$/), size: 18, mode: 0o644 });
    const blob = await clients.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: `dev/code/blobs/${train.sha256}` }));
    expect(await blob.Body!.transformToString()).toBe('print("training")\n');
    // model.py and same.py share a blob: 6 distinct blobs for 7 files.
    expect(blobPuts(since)).toHaveLength(6);
    // One HEAD of the manifest, one listing of the (few) blobs instead of a HEAD each.
    expect(calls.slice(since).filter(c => c.command === 'HeadObjectCommand')).toHaveLength(1);
    expect(calls.slice(since).filter(c => c.command === 'ListObjectsV2Command' && c.input.Prefix === 'dev/code/blobs/')).toHaveLength(1);
  });

  test('writes spec v1 and a pending status', async () => {
    const spec = await json(`dev/runs/${runId}/spec.json`);
    expect(spec).toEqual({
      schemaVersion: 1,
      runId,
      name: 'My Model',
      environment: 'dev',
      command: ['python', 'train.py', '--epochs', '3'],
      env: { EPOCHS: '3' },
      code: { manifestKey: expect.stringMatching(/^dev\/code\/manifests\/[0-9a-f]{64}\.json$/) },
      maxRunLifetimeSeconds: 5400,
      createdAt: START.toISOString(),
      createdBy: expect.stringMatching(/^chronos-training\//),
    });
    const s = await json(`dev/runs/${runId}/status.json`);
    expect(s).toMatchObject({ schemaVersion: 1, runId, state: 'pending', attempt: 1, instanceId: null, exitCode: null });
  });

  test('launches from the template, first type, first zone, spot, with the run\'s tags and no user data', async () => {
    const [req] = runRequests(since);
    expect(req).toEqual({
      // This foundation publishes no LaunchTemplateVersion (an older one): the latest version, never $Default.
      LaunchTemplate: { LaunchTemplateId: templateId, Version: '$Latest' },
      InstanceType: 't3.micro',
      SubnetId: subnets[0],
      MinCount: 1,
      MaxCount: 1,
      InstanceMarketOptions: { MarketType: 'spot', SpotOptions: { SpotInstanceType: 'one-time', InstanceInterruptionBehavior: 'terminate' } },
      TagSpecifications: [{ ResourceType: 'instance', Tags: expect.any(Array) }, { ResourceType: 'volume', Tags: expect.any(Array) }],
    });
    const [instance] = await instancesOf(runId);
    expect(instance.SubnetId).toBe(subnets[0]);
    expect(instance.InstanceType).toBe('t3.micro');
    expect(tagsOf(instance)).toMatchObject({
      Project: 'Chronos-Training',
      Environment: 'dev',
      CostCenter: 'train',
      ManagedBy: 'chronos-training',
      MaxLifetimeHours: '1.75',
      ChronosRunId: runId,
      ChronosAttempt: '1',
      ChronosBucket: BUCKET,
      Name: `chronos-${runId}`,
    });
    expect(result.stderr()).toContain('won after 1 try');
  });

  test('a second run of the same code uploads no blob; one changed file uploads exactly one', async () => {
    let mark = calls.length;
    const again = await cli(['run', '--env', 'dev', '--dir', dir, '--instance-types', 't3.micro', '--detach', '--', 'true']);
    expect(again.code).toBe(0);
    expect(blobPuts(mark)).toHaveLength(0);
    expect(again.stderr()).toContain('uploaded 0 of 6 blobs (0 B)');
    // The manifest, written minutes ago, vouches for its blobs: one HEAD.
    expect(calls.slice(mark).filter(c => c.command === 'HeadObjectCommand')).toHaveLength(1);
    fs.appendFileSync(path.join(dir, 'train.py'), 'print("more")\n');
    mark = calls.length;
    const changed = await cli(['run', '--env', 'dev', '--dir', dir, '--instance-types', 't3.micro', '--detach', '--', 'true']);
    expect(changed.code).toBe(0);
    expect(blobPuts(mark)).toHaveLength(1);
    expect(changed.stderr()).toContain('uploaded 1 of 6 blobs (32 B)');
    expect(calls.slice(mark).filter(c => c.command === 'HeadObjectCommand')).toHaveLength(1);
    expect(calls.slice(mark).filter(c => c.command === 'ListObjectsV2Command' && c.input.Prefix === 'dev/code/blobs/')).toHaveLength(1);
  });
});

describe('the attached launcher', () => {
  test('follows the logs and status, and resumes an interrupted attempt on-demand after one spot interruption', async () => {
    const dir = workdir();
    const since = calls.length;
    let runId = '';
    let tick = 0;
    const script = async () => {
      tick++;
      const run = runRequests(since)[0]?.TagSpecifications[0].Tags.find((t: any) => t.Key === 'ChronosRunId')?.Value;
      runId = run ?? runId;
      const logs = (attempt: number, stream: string, chunk: number) => `dev/logs/${runId}/${String(attempt).padStart(3, '0')}/${stream}/${String(chunk).padStart(10, '0')}.log`;
      if (tick === 1) {
        await put(`dev/runs/${runId}/status.json`, status(runId, 'running', 1));
        await put(logs(1, 'stdout', 0), 'epoch 1\n');
        await put(logs(1, 'agent', 0), 'restored nothing\n');
      } else if (tick === 2) {
        await put(logs(1, 'stdout', 1), 'epoch 2\n');
        await put(`dev/runs/${runId}/status.json`, status(runId, 'interrupted', 1, { reason: 'spot interruption notice: terminate at 12:05' }));
      } else if (tick === 3) {
        await put(`dev/runs/${runId}/status.json`, status(runId, 'running', 2, { lifecycle: 'on-demand' }));
        await put(logs(2, 'stdout', 0), 'epoch 3\n');
        await put(logs(2, 'stderr', 0), 'warning\n');
      } else if (tick === 4) {
        await put(`dev/runs/${runId}/status.json`, status(runId, 'succeeded', 2, { lifecycle: 'on-demand', exitCode: 0 }));
      }
    };
    const result = await cli(['run', '--env', 'dev', '--dir', dir, '--instance-types', 't3.micro', '--spot-fallback',
      '--on-demand-after-interruptions', '1', '--', 'python', 'train.py'], script);
    expect(result.stderr()).not.toContain('error');
    expect(result.code).toBe(0);
    expect(result.out.join('')).toBe(`epoch 1\nepoch 2\nepoch 3\n${runId}\n`);
    expect(result.stderr()).toContain('[agent] restored nothing');
    expect(result.stderr()).toContain('warning\n');
    expect(result.stderr()).toContain('attempt 1: interrupted on i-0000000000000000a, t3.micro, spot, us-east-1a (spot interruption notice');
    expect(result.stderr()).toContain('resuming: attempt 2 of 3');
    const requests = runRequests(since);
    expect(requests).toHaveLength(2);
    expect(requests[0].InstanceMarketOptions?.MarketType).toBe('spot');
    expect(requests[1].InstanceMarketOptions).toBeUndefined();
    const attempts = (await instancesOf(runId)).map(i => tagsOf(i).ChronosAttempt).sort();
    expect(attempts).toEqual(['1', '2']);
    // Attempt 1 said `interrupted` while its instance still ran (after a spot drain the agent leaves it for EC2 to
    // reclaim): the launcher neither waited for it nor ended it.
    const first = (await instancesOf(runId)).find(i => tagsOf(i).ChronosAttempt === '1')!;
    expect(first.State?.Name).toBe('running');
  });

  test('stops after --max-attempts interrupted attempts, and returns the command\'s exit code of a failed run', async () => {
    const dir = workdir();
    const since = calls.length;
    const script = async () => {
      const requests = runRequests(since);
      const runId = requests[0].TagSpecifications[0].Tags.find((t: any) => t.Key === 'ChronosRunId').Value;
      await put(`dev/runs/${runId}/status.json`, status(runId, 'interrupted', requests.length));
    };
    const result = await cli(['run', '--env', 'dev', '--dir', dir, '--instance-types', 't3.micro', '--max-attempts', '2', '--', 'true'], script);
    expect(result.code).toBe(1);
    expect(runRequests(since)).toHaveLength(2);
    expect(result.stderr()).toContain('--max-attempts 2 is reached');

    const failing = async () => {
      const runId = runRequests(since + 0).slice(-1)[0].TagSpecifications[0].Tags.find((t: any) => t.Key === 'ChronosRunId').Value;
      await put(`dev/runs/${runId}/status.json`, status(runId, 'failed', 1, { exitCode: 3, reason: 'exit 3' }));
    };
    const failed = await cli(['run', '--env', 'dev', '--dir', dir, '--instance-types', 't3.micro', '--', 'false'], failing);
    expect(failed.code).toBe(3);
  });

  /*
   * How an attempt ended, from EC2's StateReason (EC2 API Reference, "StateReason"): only a spot reclaim
   * (Server.SpotInstanceTermination) or the agent's own `interrupted` is worth another attempt. Moto sets
   * Client.UserInitiatedShutdown when TerminateInstances ends an instance; the other reasons, and a LaunchTime hours
   * ago, are written into moto's DescribeInstances reply by a middleware on the launcher's EC2 client.
   */
  function stubDescribe(rewrite: (i: Instance) => void) {
    (clients.ec2 as any).middlewareStack.add((next: any, context: any) => async (args: any) => {
      const out = await next(args);
      if (context.commandName === 'DescribeInstancesCommand') {
        for (const r of out.output.Reservations ?? []) for (const i of r.Instances ?? []) rewrite(i);
      }
      return out;
    }, { step: 'initialize', name: 'stubDescribe' });
  }
  afterEach(() => { (clients.ec2 as any).middlewareStack.remove('stubDescribe'); });

  /** Runs attached (polls 30 s apart) while `script(tick, runId, firstInstanceId)` plays the instance's part. */
  async function attachedRun(extra: string[], script: (tick: number, runId: string, first: string) => Promise<void>) {
    const since = calls.length;
    let tick = 0;
    const rec = recordingIo(async () => {
      tick++;
      const runId = runRequests(since)[0].TagSpecifications[0].Tags.find((t: any) => t.Key === 'ChronosRunId').Value;
      const [first] = (await instancesOf(runId)).filter(i => tagsOf(i).ChronosAttempt === '1');
      await script(tick, runId, first.InstanceId!);
    }, START);
    const code = await main(['run', '--env', 'dev', '--dir', workdir(), '--instance-types', 't3.micro', ...extra, '--', 'true'],
      { io: rec.io, clients: () => clients, pollSeconds: 30 });
    const runId = runRequests(since)[0].TagSpecifications[0].Tags.find((t: any) => t.Key === 'ChronosRunId').Value;
    return { code, rec, runId, launches: runRequests(since).length };
  }

  test('an instance terminated through the API without a final status ends the run, with the reason, and is not relaunched', async () => {
    const { code, rec, runId, launches } = await attachedRun([], async (tick, run, first) => {
      if (tick === 1) {
        await put(`dev/runs/${run}/status.json`, status(run, 'running', 1));
        await clients.ec2.send(new TerminateInstancesCommand({ InstanceIds: [first] }));
      }
    });
    expect(code).toBe(1);
    expect(launches).toBe(1);
    expect(rec.stderr()).toMatch(/run \S+ failed: attempt 1: i-[0-9a-f]+ is (terminated|shutting-down) but the run's status says running: it was terminated or stopped through the EC2 API or console \(Client\.UserInitiatedShutdown\)/);
    expect(await json(`dev/runs/${runId}/status.json`)).toMatchObject({
      state: 'failed', attempt: 1, endedAt: expect.any(String), reason: expect.stringContaining('Client.UserInitiatedShutdown'),
    });
  });

  test('a spot instance EC2 reclaimed without a final status (Server.SpotInstanceTermination) is followed by the next attempt', async () => {
    stubDescribe(i => {
      if (i.State?.Name === 'terminated' || i.State?.Name === 'shutting-down') {
        i.StateReason = { Code: 'Server.SpotInstanceTermination', Message: 'Server.SpotInstanceTermination: Spot instance termination' };
      }
    });
    let launched = 1;
    const { code, rec, launches } = await attachedRun(['--spot'], async (tick, run, first) => {
      if (tick === 1) {
        await put(`dev/runs/${run}/status.json`, status(run, 'running', 1));
        await clients.ec2.send(new TerminateInstancesCommand({ InstanceIds: [first] }));
      }
      const attempts = (await instancesOf(run)).length;
      if (attempts === 2 && launched === 1) {
        launched = 2;
        await put(`dev/runs/${run}/status.json`, status(run, 'succeeded', 2, { exitCode: 0 }));
      }
    });
    expect(rec.stderr()).toContain('EC2 reclaimed the spot instance (Server.SpotInstanceTermination); the agent wrote no final status: the attempt counts as interrupted');
    expect(code).toBe(0);
    expect(launches).toBe(2);
  });

  test('an instance EC2 ended at launch (Client.InternalError) ends the run, naming the likely KMS cause', async () => {
    stubDescribe(i => {
      i.State = { Name: 'terminated', Code: 48 };
      i.StateReason = { Code: 'Client.InternalError', Message: 'Client.InternalError: Client error on launch' };
    });
    const { code, rec, runId, launches } = await attachedRun([], async () => {});
    expect(code).toBe(1);
    expect(launches).toBe(1);
    expect(rec.stderr()).toMatch(/status says pending: EC2 ended it during launch \(Client\.InternalError: Client\.InternalError: Client error on launch\); .*KMS key/);
    expect((await json(`dev/runs/${runId}/status.json`)).state).toBe('failed');
  });

  // The run reaper terminates (TerminateInstances: Client.UserInitiatedShutdown) an instance older than its
  // MaxLifetimeHours tag, counted from LaunchTime; the agent, killed by the shutdown, drains and says `interrupted`.
  test('an attempt the run reaper ended is not relaunched: the run fails, naming the reaper', async () => {
    stubDescribe(i => { i.LaunchTime = new Date(Date.now() - 2 * 3600_000); });
    const { code, rec, runId, launches } = await attachedRun(['--max-run-lifetime', '1h'], async (tick, run, first) => {
      if (tick === 1) {
        await clients.ec2.send(new TerminateInstancesCommand({ InstanceIds: [first] }));
        await put(`dev/runs/${run}/status.json`, status(run, 'interrupted', 1, { reason: 'SIGTERM: the instance is shutting down' }));
      }
    });
    expect(code).toBe(1);
    expect(launches).toBe(1);
    expect(rec.stderr()).toContain('the run reaper terminated it (Client.UserInitiatedShutdown): it outlived its MaxLifetimeHours tag of 1.25 h');
    expect((await json(`dev/runs/${runId}/status.json`)).state).toBe('failed');
  });

  // docs/RUNS.md, "Control": the agent reads control.json while its command runs; the launcher reads it before it
  // launches a next attempt, so a stop asked for meanwhile (stop, stop --now) ends the run instead.
  test('a stop asked for while an attempt ends interrupted ends the run as stopped, with no next attempt', async () => {
    const { code, rec, runId, launches } = await attachedRun([], async (tick, run) => {
      if (tick === 1) {
        await put(`dev/runs/${run}/control.json`, { schemaVersion: 1, action: 'stop', requestedAt: START.toISOString() });
        await put(`dev/runs/${run}/status.json`, status(run, 'interrupted', 1, { reason: 'SIGTERM: the instance is shutting down' }));
      }
    });
    expect(code).toBe(1);
    expect(launches).toBe(1);
    expect(rec.stderr()).toContain(`run ${runId} stopped: stopped on request (chronos-training stop, ${START.toISOString()})`);
    expect(await json(`dev/runs/${runId}/status.json`)).toMatchObject({ state: 'stopped', attempt: 1 });
  });

  test('Ctrl-C before the launch cancels the run', async () => {
    const rec = recordingIo(undefined, START);
    rec.detach();
    const since = calls.length;
    const code = await main(['run', '--env', 'dev', '--dir', workdir(), '--instance-types', 't3.micro', '--', 'true'],
      { io: rec.io, clients: () => clients, pollSeconds: 1 });
    expect(code).toBe(130);
    expect(rec.stderr()).toMatch(/chronos-training: error: interrupted before the launch: run \S+ was not launched\n$/);
    expect(runRequests(since)).toHaveLength(0);
  });

  test('Ctrl-C detaches, prints the run ID and leaves the run going', async () => {
    const dir = workdir();
    let detach = () => {};
    const rec = recordingIo(() => detach(), START);
    detach = rec.detach;
    const code = await main(['run', '--env', 'dev', '--dir', dir, '--instance-types', 't3.micro', '--', 'sleep', '100'],
      { io: rec.io, clients: () => clients, pollSeconds: 1 });
    expect(code).toBe(0);
    const runId = rec.stdout().trim();
    expect(rec.stderr()).toContain('detached; the run goes on');
    expect((await instancesOf(runId))[0].State?.Name).toMatch(/pending|running/);
  });
});

describe('logs, status, list, stop', () => {
  let runId: string;
  beforeAll(async () => {
    const run = await cli(['run', '--env', 'dev', '--dir', workdir(), '--instance-types', 't3.micro', '--on-demand', '--detach', '--', 'true']);
    runId = run.stdout().trim();
    const key = (a: number, s: string, c: number) => `dev/logs/${runId}/${String(a).padStart(3, '0')}/${s}/${String(c).padStart(10, '0')}.log`;
    await put(key(1, 'stdout', 0), 'a1\n');
    await put(key(1, 'stdout', 1), 'a2\n');
    await put(key(1, 'stderr', 0), 'e1\n');
    await put(key(2, 'stdout', 0), 'b1\n');
    await put(`dev/runs/${runId}/status.json`, status(runId, 'succeeded', 2, { exitCode: 0, lifecycle: 'on-demand' }));
  });

  test('logs prints every attempt in order', async () => {
    const r = await cli(['logs', runId, '--env', 'dev']);
    expect(r.code).toBe(0);
    expect(r.stdout()).toBe('a1\na2\nb1\n');
    expect(r.stderr()).toBe('[chronos] --- attempt 1 ---\ne1\n[chronos] --- attempt 2 ---\n');
  });

  test('logs and stop work on a Batch job\'s run, which has a status but no spec', async () => {
    const jobId = '0f7c5e2a-1b2c-4d3e-9f00-123456789abc';
    await put(`dev/runs/${jobId}/status.json`, status(jobId, 'running', 1));
    await put(`dev/logs/${jobId}/001/stdout/0000000000.log`, 'batch\n');
    const r = await cli(['logs', jobId, '--env', 'dev']);
    expect([r.code, r.stdout()]).toEqual([0, 'batch\n']);
    expect((await cli(['stop', jobId, '--env', 'dev'])).code).toBe(0);
    expect((await json(`dev/runs/${jobId}/control.json`)).action).toBe('stop');
    const none = await cli(['logs', 'no-such-run', '--env', 'dev']);
    expect([none.code, none.stderr()]).toEqual([1, 'chronos-training: error: no run no-such-run in environment dev\n']);
  });

  test('logs --follow ends with the run', async () => {
    const r = await cli(['logs', runId, '--env', 'dev', '--follow']);
    expect(r.code).toBe(0);
    expect(r.stderr()).toContain(`run ${runId} succeeded`);
  });

  test('status shows the status file and an instance still running although the run ended', async () => {
    const r = await cli(['status', runId, '--env', 'dev']);
    expect(r.code).toBe(0);
    expect(r.stdout()).toContain('state:      succeeded');
    expect(r.stdout()).toContain('attempt:    2');
    expect(r.stdout()).toMatch(/instance:\s+i-[0-9a-f]+ attempt 1 running t3.micro on-demand us-east-1a \(still running although the status says succeeded\)/);
  });

  test('list shows the runs, newest first, with state, attempt, instance, lifecycle, zone and age', async () => {
    const r = await cli(['list', '--env', 'dev']);
    expect(r.code).toBe(0);
    const lines = r.stdout().trim().split('\n');
    expect(lines[0]).toMatch(/^RUN\s+STATE\s+ATTEMPT\s+INSTANCE\s+TYPE\s+LIFECYCLE\s+ZONE\s+AGE$/);
    const row = lines.find(l => l.startsWith(runId))!;
    expect(row).toMatch(/succeeded \(instance still running\)\s+2\s+i-0000000000000000a\s+t3.micro\s+on-demand\s+us-east-1a\s+0s/);
    const status_ = await cli(['status', '--env', 'dev']);
    expect(status_.stdout()).toBe(r.stdout());
  });

  test('stop writes control.json; --now terminates the run\'s instances', async () => {
    const r = await cli(['stop', runId, '--env', 'dev']);
    expect(r.code).toBe(0);
    expect(await json(`dev/runs/${runId}/control.json`)).toEqual({ schemaVersion: 1, action: 'stop', requestedAt: START.toISOString() });
    expect((await instancesOf(runId))[0].State?.Name).toBe('running');
    const now = await cli(['stop', runId, '--env', 'dev', '--now']);
    expect(now.code).toBe(0);
    expect(now.stderr()).toMatch(/terminated i-/);
    expect((await instancesOf(runId))[0].State?.Name).toMatch(/shutting-down|terminated/);
  });

  test('a status of a higher schemaVersion is refused with the version this launcher knows', async () => {
    await put(`dev/runs/${runId}/status.json`, { ...status(runId, 'running', 3), schemaVersion: 2 });
    const r = await cli(['status', runId, '--env', 'dev']);
    expect(r.code).toBe(1);
    expect(r.stderr()).toMatch(/^chronos-training: error: .*has schemaVersion 2; this chronos-training knows version 1/);
    const list = await cli(['list', '--env', 'dev']);
    expect(list.code).toBe(0);
    expect(list.stdout()).toMatch(new RegExp(`${runId}\\s+newer status \\(upgrade\\)`));
  });
});

describe('the foundation', () => {
  test('falls back to the CloudFormation exports without parameters', async () => {
    const exports: Record<string, string> = {
      S3BucketName: BUCKET,
      LaunchTemplateId: templateId,
      // The export the foundation adds next to the template's ID (ChronosTraining-{env}-LaunchTemplateVersion).
      LaunchTemplateVersion: '1',
      PublicSubnetIds: subnets[1],
      AvailabilityZones: 'us-east-1b',
      CostCenter: 'serve',
    };
    await clients.cfn.send(new CreateStackCommand({
      StackName: 'ChronosTraining-stage',
      TemplateBody: JSON.stringify({
        Resources: { Topic: { Type: 'AWS::SNS::Topic' } },
        Outputs: Object.fromEntries(Object.entries(exports).map(([k, v]) => [k, { Value: v, Export: { Name: `ChronosTraining-stage-${k}` } }])),
      }),
    }));
    const since = calls.length;
    const r = await cli(['run', '--env', 'stage', '--dir', workdir(), '--instance-types', 't3.micro', '--detach', '--', 'true']);
    expect(r.stderr()).toContain('(from CloudFormation exports)');
    expect(r.code).toBe(0);
    const [req] = runRequests(since);
    expect(req.SubnetId).toBe(subnets[1]);
    expect(req.LaunchTemplate).toEqual({ LaunchTemplateId: templateId, Version: '1' });
    expect(req.TagSpecifications[0].Tags).toEqual(expect.arrayContaining([{ Key: 'CostCenter', Value: 'serve' }, { Key: 'Environment', Value: 'stage' }]));
  });

  test('a foundation without a launch template is a clear error', async () => {
    for (const [suffix, value] of Object.entries({ S3BucketName: BUCKET, PublicSubnetIds: subnets[0], AvailabilityZones: 'us-east-1a' })) {
      await clients.ssm.send(new PutParameterCommand({ Name: `/chronos-training/nolt/${suffix}`, Value: value, Type: 'String' }));
    }
    const r = await cli(['run', '--env', 'nolt', '--dir', workdir(), '--', 'true']);
    expect(r.code).toBe(1);
    expect(r.stderr()).toBe('chronos-training: error: the foundation of \'nolt\' has no launch template (it was deployed with launchTemplate: false); ' +
      'chronos-training launches from the foundation\'s launch template: deploy it with the default launchTemplate\n');
  });

  test('a run whose launch fails ends failed, with the reason, instead of staying pending', async () => {
    // Moto never runs out of capacity: a middleware on the launch client (RunInstances) says it has none.
    (clients.ec2Launch as any).middlewareStack.add((next: any, context: any) => async (args: any) => {
      if (context.commandName === 'RunInstancesCommand') throw awsError('InsufficientInstanceCapacity');
      return next(args);
    }, { step: 'initialize', name: 'noCapacity' });
    let r: Awaited<ReturnType<typeof cli>>;
    try {
      r = await cli(['run', '--env', 'dev', '--dir', workdir(), '--instance-types', 't3.micro', '--spot', '--detach', '--', 'true']);
    } finally {
      (clients.ec2Launch as any).middlewareStack.remove('noCapacity');
    }
    expect(r.code).toBe(1);
    expect(r.stderr()).toContain('no capacity: all 2 tries failed');
    const runId = /\[chronos\] run (\S+)\n/.exec(r.stderr())![1];
    const s = await json(`dev/runs/${runId}/status.json`);
    expect(s).toMatchObject({ state: 'failed', attempt: 1, instanceId: null, reason: expect.stringMatching(/^launch failed: /) });
    expect(r.stderr()).toMatch(/chronos-training: error: .*\n$/);
  });

  test('an unknown environment and a lifetime longer than the foundation\'s are clear errors', async () => {
    const none = await cli(['list', '--env', 'nowhere']);
    expect(none.code).toBe(1);
    expect(none.stderr()).toMatch(/^chronos-training: error: no foundation for environment 'nowhere'/);
    const long = await cli(['run', '--env', 'dev', '--max-run-lifetime', '5h', '--instance-types', 't3.micro', '--', 'true']);
    expect(long.code).toBe(2);
    expect(long.stderr()).toContain('--max-run-lifetime 5h is longer than the foundation\'s 4 h');
  });
});

/*
 * CloudFormation adds a launch template version on each change of LaunchTemplateData and never moves the default
 * version (AWS::EC2::LaunchTemplate reference, return values DefaultVersionNumber / LatestVersionNumber;
 * cloudformation-coverage-roadmap #1518), and RunInstances without a version uses the default (EC2 API Reference,
 * LaunchTemplateSpecification, Version: "If the value is not specified, the default version is used"). So the
 * foundation publishes the latest version number (LaunchTemplateVersion) and the launcher launches and describes it.
 * Moto keeps versions and launches the one asked for (ec2/models/instances.py, _get_template_from_args).
 */
describe('the launch template version and the lifetime', () => {
  let versioned: string;
  let images: string[];
  beforeAll(async () => {
    images = (await clients.ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }))).Images!.map(i => i.ImageId!);
    const tags = (hours: string) => [
      { Key: 'Project', Value: 'Chronos-Training' }, { Key: 'Environment', Value: 'ver' }, { Key: 'MaxLifetimeHours', Value: hours },
    ];
    const v1 = await clients.ec2.send(new CreateLaunchTemplateCommand({
      LaunchTemplateName: 'ChronosTrainingLaunchTemplate-ver',
      LaunchTemplateData: {
        ImageId: images[0],
        InstanceType: 't3.nano',
        UserData: Buffer.from('#!/bin/bash\necho agent v1\n').toString('base64'),
        TagSpecifications: [{ ResourceType: 'instance', Tags: tags('4.25') }],
      },
    }));
    versioned = v1.LaunchTemplate!.LaunchTemplateId!;
    // The second deploy: a new version, the default left at 1, as CloudFormation leaves it.
    await clients.ec2.send(new CreateLaunchTemplateVersionCommand({
      LaunchTemplateId: versioned,
      LaunchTemplateData: {
        ImageId: images[1],
        InstanceType: 't3.small',
        UserData: Buffer.from('#!/bin/bash\necho agent v2\n').toString('base64'),
        TagSpecifications: [{ ResourceType: 'instance', Tags: tags('2.25') }],
      },
    }));
    const parameters: Record<string, string> = {
      S3BucketName: BUCKET,
      LaunchTemplateId: versioned,
      LaunchTemplateVersion: '2',
      PublicSubnetIds: subnets.join(','),
      AvailabilityZones: 'us-east-1a,us-east-1b',
    };
    for (const [suffix, value] of Object.entries(parameters)) {
      await clients.ssm.send(new PutParameterCommand({ Name: `/chronos-training/ver/${suffix}`, Value: value, Type: 'String' }));
    }
  });

  test('launches and describes the version the foundation published (2), not the default (1)', async () => {
    const [template] = (await clients.ec2.send(new DescribeLaunchTemplatesCommand({ LaunchTemplateIds: [versioned] }))).LaunchTemplates!;
    expect([template.DefaultVersionNumber, template.LatestVersionNumber]).toEqual([1, 2]);
    const since = calls.length;
    const r = await cli(['run', '--env', 'ver', '--dir', workdir(), '--detach', '--', 'true']);
    expect(r.stderr()).not.toContain('error');
    expect(r.code).toBe(0);
    expect(r.stderr()).toContain(`template ${versioned} version 2`);
    const described = calls.slice(since).filter(c => c.command === 'DescribeLaunchTemplateVersionsCommand').map(c => c.input.Versions);
    expect(described).toEqual([['2']]);
    const [req] = runRequests(since);
    expect(req.LaunchTemplate).toEqual({ LaunchTemplateId: versioned, Version: '2' });
    // Version 2's facts: its instance type (no --instance-types), its image, its lifetime (2.25 h tag: 2 h).
    expect(req.InstanceType).toBe('t3.small');
    const [instance] = await instancesOf(r.stdout().trim());
    expect(instance.ImageId).toBe(images[1]);
    expect(tagsOf(instance).MaxLifetimeHours).toBe('2.25');
    expect((await json(`ver/runs/${r.stdout().trim()}/spec.json`)).maxRunLifetimeSeconds).toBe(7200);
  });

  // The reaper counts from LaunchTime, the agent from its own start after boot, and the agent's backstop is its
  // lifetime + 300 s: so the tag always carries the 900 s margin (boot, drain, backstop), rounded up to 0.01 h.
  test('the MaxLifetimeHours tag is the run\'s lifetime plus 0.25 h, also at the foundation\'s own lifetime', async () => {
    for (const [flag, lifetime, tag] of [[[], 14400, '4.25'], [['--max-run-lifetime', '4h'], 14400, '4.25'],
      [['--max-run-lifetime', '1h0m1s'], 3601, '1.26']] as Array<[string[], number, string]>) {
      const r = await cli(['run', '--env', 'dev', '--dir', workdir(), '--instance-types', 't3.micro', ...flag, '--detach', '--', 'true']);
      expect(r.code).toBe(0);
      const runId = r.stdout().trim();
      expect((await json(`dev/runs/${runId}/spec.json`)).maxRunLifetimeSeconds).toBe(lifetime);
      expect(tagsOf((await instancesOf(runId))[0]).MaxLifetimeHours).toBe(tag);
    }
  });
});

describe('the bundled command', () => {
  const bundle = path.join(__dirname, '..', '..', 'assets', 'cli', 'chronos-training.js');
  beforeAll(() => {
    if (!fs.existsSync(bundle)) execFileSync('npx', ['projen', 'bundle:cli'], { cwd: path.join(__dirname, '..', '..'), stdio: 'ignore' });
  });

  test('runs with node, honours AWS_ENDPOINT_URL, and prints one error line with a non-zero exit', () => {
    const env = { ...process.env, AWS_ENDPOINT_URL: server.endpoint, AWS_REGION: REGION, AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing' };
    const list = execFileSync(bundle, ['list', '--env', 'dev'], { env, encoding: 'utf8' });
    expect(list.split('\n')[0]).toMatch(/^RUN\s+STATE/);
    expect(execFileSync(bundle, ['--version'], { encoding: 'utf8' })).toMatch(/^chronos-training \d+\.\d+\.\d+\n$/);
    let failure: any;
    try {
      execFileSync(bundle, ['logs', 'no-such-run-x', '--env', 'dev'], { env, encoding: 'utf8', stdio: 'pipe' });
    } catch (e) {
      failure = e;
    }
    expect(failure.status).toBe(1);
    expect(failure.stderr).toBe('chronos-training: error: no run no-such-run-x in environment dev\n');
  });

  test('a real Ctrl-C (SIGINT) of the attached command detaches: exit 0, the run ID on stdout', async () => {
    const env = { ...process.env, AWS_ENDPOINT_URL: server.endpoint, AWS_REGION: REGION, AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing' };
    const child = spawn(bundle, ['run', '--env', 'dev', '--dir', workdir(), '--instance-types', 't3.micro', '--', 'sleep', '60'], { env });
    let stdout = '';
    let stderr = '';
    let pressed = false;
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => {
      stderr += d;
      // One press, as a user makes it (a second one quits at once, exit 130).
      if (!pressed && /\[chronos\] attempt 1: i-/.test(stderr)) {
        pressed = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise(resolve => child.on('exit', resolve));
    expect(stderr).toContain('detached; the run goes on');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^run-\d{8}-\d{6}-[0-9a-f]{6}\n$/);
  });

  test('agent-path prints the packaged agent\'s path, or copies it', async () => {
    const root = path.join(__dirname, '..', '..');
    const agent = path.join(root, 'agent', 'chronos_run_agent.py');
    if (!fs.existsSync(agent)) {
      const r = await cli(['agent-path']);
      expect(r.code).toBe(1);
      expect(r.stderr()).toBe(`chronos-training: error: the run agent is not in this package (looked for ${agent})\n`);
      return;
    }
    expect((await cli(['agent-path'])).stdout()).toBe(`${agent}\n`);
    const copied = await cli(['agent-path', '--copy', tmp]);
    expect(copied.stdout()).toBe(`${path.join(tmp, 'chronos_run_agent.py')}\n`);
    expect(fs.readFileSync(path.join(tmp, 'chronos_run_agent.py'))).toEqual(fs.readFileSync(agent));
  });

  test('is not loaded by the library', () => {
    const index = fs.readFileSync(path.join(__dirname, '..', '..', 'src', 'index.ts'), 'utf8');
    expect(index).not.toMatch(/cli/);
  });
});

describe('run --image-id', () => {
  // The flag wins over the template's image (EC2 API Reference, RunInstances, ImageId: "must be specified here or in a
  // launch template"); moto knows the images DescribeImages lists, so the launch must really use the one given.
  test('launches the given AMI (one moto knows, not the template\'s) and says which image the launch uses', async () => {
    const images = (await clients.ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }))).Images!;
    const other = images.find(i => i.ImageId !== images[0].ImageId)!.ImageId!;
    const since = calls.length;
    const result = await cli(['run', '--env', 'dev', '--dir', workdir(), '--instance-types', 't3.micro', '--image-id', other,
      '--detach', '--', 'true']);
    expect(result.stderr()).not.toContain('error');
    expect(result.code).toBe(0);
    expect(runRequests(since).map(r => r.ImageId)).toEqual([other]);
    const [instance] = await instancesOf(result.stdout().trim());
    expect(instance.ImageId).toBe(other);
    expect(result.stderr()).toContain(`[chronos] image: --image-id ${other} (instead of the launch template's ${images[0].ImageId})`);
  });

  test('without it, a template with an image sends none, and says the template\'s is used', async () => {
    const images = (await clients.ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }))).Images!;
    const since = calls.length;
    const result = await cli(['run', '--env', 'dev', '--dir', workdir(), '--instance-types', 't3.micro', '--detach', '--', 'true']);
    expect(result.code).toBe(0);
    expect(runRequests(since).map(r => r.ImageId)).toEqual([undefined]);
    expect(result.stderr()).toContain(`[chronos] image: the launch template's ${images[0].ImageId}`);
  });

  test('a value that is not an image is refused before anything is uploaded', async () => {
    const since = calls.length;
    const result = await cli(['run', '--env', 'dev', '--dir', workdir(), '--instance-types', 't3.micro', '--image-id', 'ubuntu', '--', 'true']);
    expect(result.code).toBe(2);
    expect(result.stderr()).toContain('chronos-training: error: --image-id \'ubuntu\' is neither an AMI ID');
    expect(calls.slice(since).filter(c => c.command === 'PutObjectCommand')).toEqual([]);
  });

  test('run --help names the option, the default image and that the flag wins', async () => {
    const result = await cli(['run', '--help']);
    expect(result.stdout()).toContain('--image-id ami-…|resolve:ssm:NAME');
    expect(result.stdout()).toContain('base-oss-nvidia-driver-gpu-amazon-linux-2023');
    expect(result.stdout()).toMatch(/instead of the template's/);
  });
});

describe('issue 32 regressions', () => {
  // EC2 API Reference, TerminateInstances: every ID given is terminated. `stop --now RUN` must name only the
  // instances tagged with that ChronosRunId (docs/RUNS.md, "The run ID and the attempt"), never another run's.
  test('stop --now terminates this run\'s instance and leaves another run\'s of the same environment running', async () => {
    const start = async () => (await cli(['run', '--env', 'dev', '--dir', workdir(), '--instance-types', 't3.micro', '--on-demand',
      '--detach', '--', 'true'])).stdout().trim();
    const mine = await start();
    const other = await start();
    const r = await cli(['stop', mine, '--env', 'dev', '--now']);
    expect(r.code).toBe(0);
    expect((await instancesOf(mine)).map(i => i.State?.Name)).toEqual([expect.stringMatching(/shutting-down|terminated/)]);
    expect((await instancesOf(other)).map(i => i.State?.Name)).toEqual(['running']);
    const terminated = calls.filter(c => c.command === 'TerminateInstancesCommand').slice(-1)[0].input.InstanceIds;
    expect(terminated).toEqual((await instancesOf(mine)).map(i => i.InstanceId));
  });

  // docs/RUNS.md: `timed-out` and `stopped` are terminal states; the attached launcher exits 124 for `timed-out`
  // (as timeout(1) does: man timeout, "Exit status: 124 if COMMAND times out, and --preserve-status is not
  // specified") and 1 for `stopped`, whatever exit code the drained command had.
  test.each([
    ['timed-out', 124],
    ['stopped', 1],
  ])('the attached launcher exits with the code of a %s run', async (state, expected) => {
    const since = calls.length;
    const script = async () => {
      const runId = runRequests(since)[0].TagSpecifications[0].Tags.find((t: any) => t.Key === 'ChronosRunId').Value;
      await put(`dev/runs/${runId}/status.json`, status(runId, state as string, 1, { exitCode: 143, reason: 'drained' }));
    };
    const result = await cli(['run', '--env', 'dev', '--dir', workdir(), '--instance-types', 't3.micro', '--', 'true'], script);
    expect(result.stderr()).toContain(` ${state}\n`);
    expect(result.code).toBe(expected);
  });
});
