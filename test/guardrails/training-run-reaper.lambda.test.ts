import { DescribeInstancesCommand, EC2Client, Instance, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { configFromEnvironment, reap, ReaperConfig, TERMINATE_BATCH } from '../../src/guardrails/training-run-reaper.lambda';

const ec2 = mockClient(EC2Client);
const client = new EC2Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });

const NOW = new Date('2026-11-27T12:00:00.000Z');
const HOUR = 3600 * 1000;
const config: ReaperConfig = {
  filterTags: { Project: 'Chronos-Training', Environment: 'dev' },
  excludeTags: { ManagedBy: 'chronos-batch' },
  lifetimeTagKey: 'MaxLifetimeHours',
  defaultLifetimeSeconds: 6 * 3600,
  dryRun: false,
};

/** An instance launched `ageMs` before NOW, with a MaxLifetimeHours tag unless `lifetime` is undefined. */
function instance(id: string, ageMs: number, lifetime?: string, state = 'running', extraTags: Record<string, string> = {}): Instance {
  return {
    InstanceId: id,
    LaunchTime: new Date(NOW.getTime() - ageMs),
    State: { Name: state as any },
    Tags: [
      { Key: 'Project', Value: 'Chronos-Training' },
      { Key: 'Environment', Value: 'dev' },
      ...(lifetime === undefined ? [] : [{ Key: 'MaxLifetimeHours', Value: lifetime }]),
      ...Object.entries(extraTags).map(([Key, Value]) => ({ Key, Value })),
    ],
  };
}

/** Tokens of each DescribeInstances call, recorded when made (the paginator reuses its input object). */
let requestedTokens: Array<string | undefined> = [];

function describing(...pages: Instance[][]): void {
  ec2.on(DescribeInstancesCommand).callsFake(input => {
    requestedTokens.push(input.NextToken);
    const i = input.NextToken === undefined ? 0 : Number(input.NextToken.replace('page-', ''));
    return { Reservations: [{ Instances: pages[i] }], NextToken: i + 1 < pages.length ? `page-${i + 1}` : undefined };
  });
}

function terminatedIds(): string[] {
  return ec2.commandCalls(TerminateInstancesCommand).flatMap(c => c.args[0].input.InstanceIds ?? []);
}

beforeEach(() => {
  ec2.reset();
  requestedTokens = [];
  ec2.on(TerminateInstancesCommand).callsFake(input => ({
    TerminatingInstances: input.InstanceIds.map((InstanceId: string) => ({ InstanceId })),
  }));
  jest.spyOn(console, 'log').mockImplementation(() => undefined);
});

afterEach(() => jest.restoreAllMocks());

describe('the run reaper handler', () => {
  test('asks EC2 only for this project and environment, in states that bill', async () => {
    describing([]);
    await reap(client, config, NOW);
    expect(ec2.commandCalls(DescribeInstancesCommand)[0].args[0].input.Filters).toEqual([
      { Name: 'tag:Project', Values: ['Chronos-Training'] },
      { Name: 'tag:Environment', Values: ['dev'] },
      { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] },
    ]);
    expect(ec2.commandCalls(TerminateInstancesCommand)).toHaveLength(0);
  });

  test('terminates instances older than their MaxLifetimeHours tag, keeps younger ones', async () => {
    describing([
      instance('i-old', 5 * HOUR, '4'),
      instance('i-young', 3 * HOUR, '4'),
      instance('i-stopped', 5 * HOUR, '4', 'stopped'),
      instance('i-long', 5.5 * HOUR, '6'),
    ]);
    const result = await reap(client, config, NOW);
    expect(terminatedIds()).toEqual(['i-old', 'i-stopped']);
    expect(result.terminated).toEqual(['i-old', 'i-stopped']);
    expect(result.examined).toBe(4);
  });

  test('never terminates an AWS Batch instance (ManagedBy=chronos-batch), however old and whatever its lifetime tag', async () => {
    describing([
      instance('i-batch-untagged', 30 * HOUR, undefined, 'running', { 'ManagedBy': 'chronos-batch', 'aws:batch:compute-environment': 'ce' }),
      instance('i-batch-tagged', 30 * HOUR, '1', 'running', { ManagedBy: 'chronos-batch' }),
      instance('i-launcher', 30 * HOUR, '4', 'running', { ManagedBy: 'chronos-launch-template' }),
    ]);
    const result = await reap(client, config, NOW);
    expect(terminatedIds()).toEqual(['i-launcher']);
    expect(result.excluded).toEqual(['i-batch-untagged', 'i-batch-tagged']);
    expect(result.examined).toBe(3);
  });

  test('excludes nothing when no exclusion tags are configured', async () => {
    describing([instance('i-batch', 30 * HOUR, undefined, 'running', { ManagedBy: 'chronos-batch' })]);
    await reap(client, { ...config, excludeTags: {} }, NOW);
    expect(terminatedIds()).toEqual(['i-batch']);
  });

  // The ceiling (issue 27, item 18): a MaxLifetimeHours tag is set by whoever launches (EC2 User Guide, "Tag your
  // resources": RunInstances TagSpecifications), and IAM cannot cap a tag's value numerically (aws:RequestTag is a
  // String key: Service Authorization Reference, Amazon EC2, condition keys), so the reaper never trusts a tag above
  // the foundation's lifetime plus the margin: it counts such an instance's lifetime as the ceiling.
  test('never trusts a tag above the ceiling (the default lifetime): such an instance lives the ceiling', async () => {
    describing([
      instance('i-greedy-old', 6 * HOUR + 1000, '1000'),
      instance('i-greedy-young', 5 * HOUR, '1000'),
      instance('i-at-ceiling', 6 * HOUR, '6'),
    ]);
    const result = await reap(client, config, NOW);
    expect(terminatedIds()).toEqual(['i-greedy-old']);
    expect(result.expired).toEqual([expect.objectContaining({ instanceId: 'i-greedy-old', lifetimeSeconds: 6 * 3600, lifetimeFrom: 'ceiling (tag above it)' })]);
  });

  test('a tag equal to the ceiling is the tag, to the millisecond (0.54 h is 1944 s, not 1944.0000000000002)', async () => {
    describing([instance('i-short', 1944 * 1000 + 1, '0.54'), instance('i-short-kept', 1944 * 1000, '0.54')]);
    const result = await reap(client, { ...config, defaultLifetimeSeconds: 1944 }, NOW);
    expect(terminatedIds()).toEqual(['i-short']);
    expect(result.expired.map(e => [e.lifetimeSeconds, e.lifetimeFrom])).toEqual([[1944, 'tag']]);
  });

  test('accepts a fractional tag', async () => {
    describing([instance('i-a', 2 * HOUR, '1.5'), instance('i-b', 1 * HOUR, '1.5')]);
    await reap(client, config, NOW);
    expect(terminatedIds()).toEqual(['i-a']);
  });

  test('reads every page of DescribeInstances', async () => {
    describing([instance('i-p1', 9 * HOUR, '4')], [instance('i-p2', 1 * HOUR, '4')], [instance('i-p3', 9 * HOUR)]);
    const result = await reap(client, config, NOW);
    expect(requestedTokens).toEqual([undefined, 'page-1', 'page-2']);
    expect(result.examined).toBe(3);
    expect(terminatedIds()).toEqual(['i-p1', 'i-p3']);
  });

  test('uses the default lifetime when the tag is missing', async () => {
    describing([instance('i-untagged-old', 6 * HOUR + 1000), instance('i-untagged-young', 5 * HOUR)]);
    const result = await reap(client, config, NOW);
    expect(terminatedIds()).toEqual(['i-untagged-old']);
    expect(result.expired[0]).toEqual(expect.objectContaining({ lifetimeSeconds: 6 * 3600, lifetimeFrom: 'default (tag missing)' }));
  });

  test.each(['abc', '', '-2', '0', '4h', 'Infinity', '1e9', '  '])('uses the default lifetime when the tag is malformed: %p', async tag => {
    describing([instance('i-bad-old', 6 * HOUR + 1000, tag), instance('i-bad-young', 5 * HOUR, tag)]);
    const result = await reap(client, config, NOW);
    expect(terminatedIds()).toEqual(['i-bad-old']);
    expect(result.expired.map(e => e.lifetimeFrom)).toEqual(['default (tag malformed)']);
  });

  test('keeps an instance whose age equals its lifetime exactly, terminates one a millisecond older', async () => {
    describing([instance('i-exact', 4 * HOUR, '4'), instance('i-over', 4 * HOUR + 1, '4'), instance('i-exact-default', 6 * HOUR)]);
    await reap(client, config, NOW);
    expect(terminatedIds()).toEqual(['i-over']);
  });

  test('terminates in batches', async () => {
    const many = Array.from({ length: TERMINATE_BATCH + 3 }, (_, i) => instance(`i-${i}`, 9 * HOUR, '4'));
    describing(many);
    const result = await reap(client, config, NOW);
    expect(ec2.commandCalls(TerminateInstancesCommand).map(c => c.args[0].input.InstanceIds!.length)).toEqual([TERMINATE_BATCH, 3]);
    expect(result.terminated).toHaveLength(TERMINATE_BATCH + 3);
  });

  test('in a dry run, asks EC2 with DryRun and terminates nothing', async () => {
    describing([instance('i-old', 5 * HOUR, '4')]);
    const dryRunOperation = Object.assign(new Error('Request would have succeeded, but DryRun flag is set.'), { name: 'DryRunOperation' });
    ec2.on(TerminateInstancesCommand).rejects(dryRunOperation);
    const result = await reap(client, { ...config, dryRun: true }, NOW);
    const calls = ec2.commandCalls(TerminateInstancesCommand);
    expect(calls.map(c => c.args[0].input)).toEqual([{ InstanceIds: ['i-old'], DryRun: true }]);
    expect(result).toEqual(expect.objectContaining({ dryRun: true, terminated: ['i-old'] }));
  });

  test('in a dry run, a permission error is a failure', async () => {
    describing([instance('i-old', 5 * HOUR, '4')]);
    ec2.on(TerminateInstancesCommand).rejects(Object.assign(new Error('not authorized'), { name: 'UnauthorizedOperation' }));
    await expect(reap(client, { ...config, dryRun: true }, NOW)).rejects.toThrow(/i-old: UnauthorizedOperation: not authorized/);
  });

  test('tries every batch, instance by instance after a failed batch, then fails the invocation so that it is retried', async () => {
    const many = Array.from({ length: TERMINATE_BATCH + 1 }, (_, i) => instance(`i-${i}`, 9 * HOUR, '4'));
    describing(many);
    const throttled = Object.assign(new Error('throttled'), { name: 'RequestLimitExceeded' });
    ec2.on(TerminateInstancesCommand).callsFake(input => {
      if (input.InstanceIds.length > 1 || input.InstanceIds[0] === 'i-7') {
        throw throttled;
      }
      return { TerminatingInstances: input.InstanceIds.map((InstanceId: string) => ({ InstanceId })) };
    });
    await expect(reap(client, config, NOW)).rejects.toThrow(/TerminateInstances failed for 1 expired instance\(s\).*: i-7: RequestLimitExceeded: throttled$/);
    // The batch of 50, its 50 instances one by one, then the last batch of one.
    expect(ec2.commandCalls(TerminateInstancesCommand)).toHaveLength(TERMINATE_BATCH + 2);
  });

  test('logs one JSON line with what it examined and did', async () => {
    describing([instance('i-old', 5 * HOUR, '4')]);
    await reap(client, config, NOW);
    const logged = JSON.parse((console.log as jest.Mock).mock.calls[0][0]);
    expect(logged).toEqual(expect.objectContaining({ examined: 1, terminated: ['i-old'], dryRun: false }));
  });
});

describe('the handler configuration', () => {
  const env = {
    FILTER_TAGS: '{"Project":"Chronos-Training","Environment":"dev"}',
    EXCLUDE_TAGS: '{"ManagedBy":"chronos-batch"}',
    LIFETIME_TAG_KEY: 'MaxLifetimeHours',
    DEFAULT_LIFETIME_SECONDS: '21600',
    DRY_RUN: 'false',
  };

  test('is read from the environment', () => {
    expect(configFromEnvironment(env)).toEqual({ ...config });
    expect(configFromEnvironment({ ...env, DRY_RUN: 'true' }).dryRun).toBe(true);
  });

  test('excludes nothing when EXCLUDE_TAGS is not set (a function deployed before it existed)', () => {
    expect(configFromEnvironment({ ...env, EXCLUDE_TAGS: undefined }).excludeTags).toEqual({});
  });

  test.each<[string, Record<string, string | undefined>, RegExp]>([
    ['a missing variable', { LIFETIME_TAG_KEY: undefined }, /environment variable LIFETIME_TAG_KEY is not set/],
    ['empty filter tags', { FILTER_TAGS: '{}' }, /FILTER_TAGS must be a non-empty JSON object/],
    ['exclusion tags that are not an object', { EXCLUDE_TAGS: '["ManagedBy"]' }, /EXCLUDE_TAGS must be a JSON object/],
    ['a bad default lifetime', { DEFAULT_LIFETIME_SECONDS: 'soon' }, /DEFAULT_LIFETIME_SECONDS must be a positive number, got 'soon'/],
  ])('rejects %s', (_name, change, message) => {
    expect(() => configFromEnvironment({ ...env, ...change })).toThrow(message);
  });
});

// Pinned literally (issue 32): EC2 API Reference, TerminateInstances, InstanceIds: "Up to 1000 instance IDs. We recommend
// breaking up this request into smaller batches", and "If you specify multiple instances and the request fails (for
// example, because of a single incorrect instance ID), none of the instances are terminated": batches of 50 keep one
// bad ID from holding back more than 49 others. A test that read the product's constant would follow any change of it.
test('the reaper terminates 53 expired instances in two calls, of 50 and 3 IDs', async () => {
  describing(Array.from({ length: 53 }, (_, i) => instance(`i-${i}`, 9 * HOUR, '4')));
  const result = await reap(client, config, NOW);
  expect(ec2.commandCalls(TerminateInstancesCommand).map(c => c.args[0].input.InstanceIds!.length)).toEqual([50, 3]);
  expect(result.terminated).toHaveLength(53);
});
