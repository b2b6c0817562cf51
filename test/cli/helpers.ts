/* Helpers of the launcher's tests: an Io that records, and clients for a moto server on loopback. */
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { EC2Client } from '@aws-sdk/client-ec2';
import { S3Client } from '@aws-sdk/client-s3';
import { SSMClient } from '@aws-sdk/client-ssm';
import { Clients, Io } from '../../src/cli/context';
import { Foundation } from '../../src/cli/foundation';

export const REGION = 'us-east-1';

/** An Io that records what the launcher prints; `onSleep` runs at each poll (the test's clock hand). */
export function recordingIo(onSleep: () => Promise<void> | void = () => {}, start = new Date('2026-12-01T12:00:00Z')) {
  const out: string[] = [];
  const err: string[] = [];
  const controller = new AbortController();
  let now = start.getTime();
  const io: Io = {
    out: t => { out.push(t); },
    err: t => { err.push(t); },
    sleep: async (ms) => {
      now += ms;
      await onSleep();
    },
    now: () => new Date(now),
    interrupted: controller.signal,
  };
  return { io, out, err, stdout: () => out.join(''), stderr: () => err.join(''), detach: () => controller.abort() };
}

/** Clients of a moto server; every request is counted by command name in `calls`. */
export function motoClients(endpoint: string) {
  const config = { endpoint, region: REGION, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
  const calls: Array<{ command: string; input: any }> = [];
  const clients: Clients = {
    ec2: new EC2Client(config),
    // As createClients makes it: RunInstances without SDK retries.
    ec2Launch: new EC2Client({ ...config, maxAttempts: 1 }),
    s3: new S3Client({ ...config, forcePathStyle: true }),
    ssm: new SSMClient(config),
    cfn: new CloudFormationClient(config),
  };
  for (const client of Object.values(clients)) {
    (client as any).middlewareStack.add((next: any, context: any) => async (args: any) => {
      calls.push({ command: context.commandName, input: args.input });
      return next(args);
    }, { step: 'initialize', name: 'recordCalls' });
  }
  return { clients, calls };
}

/** An AWS SDK service error as the SDK raises it (its `name` is the code). */
export function awsError(code: string, message = `${code} (injected)`): Error {
  return Object.assign(new Error(message), { name: code, $fault: 'client', $metadata: { httpStatusCode: 400 } });
}

/** A foundation of two zones (subnet-a in us-east-1a, subnet-b in us-east-1b) whose template is at `version`. */
export function twoZoneFoundation(version: string): Foundation {
  return {
    environment: 'dev',
    bucket: 'b',
    launchTemplateId: 'lt-0123456789abcdef0',
    launchTemplateVersion: version,
    subnets: [{ subnetId: 'subnet-a', zone: 'us-east-1a' }, { subnetId: 'subnet-b', zone: 'us-east-1b' }],
    costCenter: 'train',
    maxLifetimeSeconds: 4 * 3600,
    templateIsSpot: false,
    source: 'SSM parameters',
  };
}
