/*
 * The launcher's fallback through zones, instance types and markets, and its vCPU quota message. Moto never returns
 * capacity or quota errors, so they are injected at the SDK client (aws-sdk-client-mock). What each error means is
 * EC2's: "Error codes for the Amazon EC2 API" (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html)
 * lists InsufficientInstanceCapacity ("not enough capacity to fulfill your request"), InsufficientHostCapacity,
 * InsufficientFreeAddressesInSubnet, MaxSpotInstanceCountExceeded, SpotMaxPriceTooLow, Unsupported,
 * UnfulfillableCapacity, ReservationCapacityExceeded and VcpuLimitExceeded; the EC2 User Guide's "Troubleshoot
 * Amazon EC2 instance launch issues" advises another zone or type after InsufficientInstanceCapacity.
 * InvalidParameterCombination ("an incorrect combination of parameters, or a missing parameter", same page) is a
 * configuration error: every zone and type would fail alike.
 */
import { DescribeInstanceTypeOfferingsCommand, DescribeInstanceTypesCommand, EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { awsError, twoZoneFoundation } from './helpers';
import { Clients } from '../../src/cli/context';
import { launchWithFallback, LaunchRequest, quotaFor, quotaMessage } from '../../src/cli/launch';

const ec2 = mockClient(EC2Client);
const client = new EC2Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
const clients = { ec2: client, ec2Launch: client } as unknown as Clients;

const foundation = twoZoneFoundation('3');
const request: LaunchRequest = {
  runId: 'r-20261201-120000-abcdef', attempt: 1, instanceTypes: ['g5.xlarge', 'g4dn.xlarge'], markets: ['spot', 'on-demand'], maxLifetimeHours: 4,
};

/** The tries made, as `market type zone`. */
let tries: string[] = [];
/** Makes RunInstances fail with `failWith(market, type, subnet)` (undefined: success). */
function runInstances(failWith: (market: string, type: string, subnet: string) => string | undefined) {
  ec2.on(RunInstancesCommand).callsFake(input => {
    const market = input.InstanceMarketOptions?.MarketType === 'spot' ? 'spot' : 'on-demand';
    tries.push(`${market} ${input.InstanceType} ${input.SubnetId}`);
    const code = failWith(market, input.InstanceType!, input.SubnetId!);
    if (code) throw awsError(code);
    return { Instances: [{ InstanceId: 'i-0123456789abcdef0' }] };
  });
}

beforeEach(() => {
  ec2.reset();
  tries = [];
  // No offering data (as without ec2:DescribeInstanceTypeOfferings): every pair is tried.
  ec2.on(DescribeInstanceTypeOfferingsCommand).rejects(awsError('UnauthorizedOperation'));
  ec2.on(DescribeInstanceTypesCommand).resolves({ InstanceTypes: [{ InstanceType: 'g5.xlarge', VCpuInfo: { DefaultVCpus: 4 } }] });
});

const log: string[] = [];
const collect = (line: string) => { log.push(line); };

test('tries every zone of a type, then the next type, spot before on-demand, and says which won', async () => {
  runInstances((market, type, subnet) => (market === 'on-demand' && type === 'g4dn.xlarge' && subnet === 'subnet-b' ? undefined : 'InsufficientInstanceCapacity'));
  log.length = 0;
  const won = await launchWithFallback(clients, foundation, request, collect);
  expect(tries).toEqual([
    'spot g5.xlarge subnet-a', 'spot g5.xlarge subnet-b', 'spot g4dn.xlarge subnet-a', 'spot g4dn.xlarge subnet-b',
    'on-demand g5.xlarge subnet-a', 'on-demand g5.xlarge subnet-b', 'on-demand g4dn.xlarge subnet-a', 'on-demand g4dn.xlarge subnet-b',
  ]);
  expect(won).toMatchObject({ market: 'on-demand', instanceType: 'g4dn.xlarge', subnetId: 'subnet-b', zone: 'us-east-1b', tries: 8 });
  expect(log.filter(l => l.startsWith('try '))).toHaveLength(8);
  expect(log[log.length - 1]).toBe('launched i-0123456789abcdef0: on-demand g4dn.xlarge in us-east-1b (subnet-b) (try 8)');
});

// The capacity codes, as EC2's "Error codes for the Amazon EC2 API" spells them (not the launcher's own list).
test.each([
  'InsufficientInstanceCapacity', 'InsufficientCapacity', 'InsufficientHostCapacity', 'InsufficientFreeAddressesInSubnet',
  'MaxSpotInstanceCountExceeded', 'SpotMaxPriceTooLow', 'Unsupported', 'UnfulfillableCapacity', 'ReservationCapacityExceeded',
])('moves on after %s', async (code) => {
  runInstances((_m, _t, subnet) => (subnet === 'subnet-a' ? code : undefined));
  const won = await launchWithFallback(clients, foundation, request, () => {});
  expect(tries).toEqual(['spot g5.xlarge subnet-a', 'spot g5.xlarge subnet-b']);
  expect(won.zone).toBe('us-east-1b');
});

// EC2 API Reference, "Error codes for the Amazon EC2 API": InvalidParameterCombination, "Indicates an incorrect
// combination of parameters, or a missing parameter" — a client error of the request, not of capacity.
test('InvalidParameterCombination stops at once, with EC2\'s message', async () => {
  const message = 'Network interfaces and an instance-level security groups may not be specified on the same request';
  ec2.on(RunInstancesCommand).callsFake(input => {
    tries.push(`${input.InstanceMarketOptions ? 'spot' : 'on-demand'} ${input.InstanceType} ${input.SubnetId}`);
    throw awsError('InvalidParameterCombination', message);
  });
  await expect(launchWithFallback(clients, foundation, request, () => {})).rejects.toThrow(
    `launching spot g5.xlarge in us-east-1a (subnet-a) failed: InvalidParameterCombination: ${message}`);
  expect(tries).toEqual(['spot g5.xlarge subnet-a']);
});

test('launches the template version the foundation published, not $Default', async () => {
  const sent: any[] = [];
  ec2.on(RunInstancesCommand).callsFake(input => {
    sent.push(input.LaunchTemplate);
    return { Instances: [{ InstanceId: 'i-0123456789abcdef0' }] };
  });
  await launchWithFallback(clients, foundation, request, () => {});
  expect(sent).toEqual([{ LaunchTemplateId: 'lt-0123456789abcdef0', Version: '3' }]);
});

test('spot only never tries on-demand, and says there is no capacity when every try fails', async () => {
  runInstances(() => 'InsufficientInstanceCapacity');
  await expect(launchWithFallback(clients, foundation, { ...request, markets: ['spot'] }, () => {}))
    .rejects.toThrow(/^no capacity: all 4 tries failed \(spot g5.xlarge in us-east-1a \(subnet-a\): InsufficientInstanceCapacity;.*--spot-fallback/);
  expect(tries.every(t => t.startsWith('spot '))).toBe(true);
});

test('skips the zones that do not offer a type, when EC2 says which do', async () => {
  ec2.on(DescribeInstanceTypeOfferingsCommand).resolves({
    InstanceTypeOfferings: [{ InstanceType: 'g5.xlarge', Location: 'us-east-1b' }, { InstanceType: 'g4dn.xlarge', Location: 'us-east-1a' }],
  });
  runInstances(() => 'InsufficientInstanceCapacity');
  log.length = 0;
  await expect(launchWithFallback(clients, foundation, request, collect)).rejects.toThrow(/all 4 tries failed/);
  expect(tries).toEqual(['spot g5.xlarge subnet-b', 'spot g4dn.xlarge subnet-a', 'on-demand g5.xlarge subnet-b', 'on-demand g4dn.xlarge subnet-a']);
  expect(log).toContain('skip spot g5.xlarge in us-east-1a (subnet-a): not offered in this zone');
});

// VcpuLimitExceeded: "You have requested more vCPU capacity than your current vCPU limit of N allows for the instance
// bucket that the specified instance type belongs to" (EC2's message; EC2 User Guide, "Amazon EC2 service quotas": one
// vCPU quota per family and market, per Region). So the other zones and the other types of that family are skipped.
test('a vCPU quota error skips the rest of that quota family, goes on with the other types, and names the quota', async () => {
  runInstances((_market, type) => (type === 'g5.xlarge' ? 'VcpuLimitExceeded' : type === 'm5.large' ? undefined : 'InsufficientInstanceCapacity'));
  log.length = 0;
  const won = await launchWithFallback(clients, foundation,
    { ...request, instanceTypes: ['g5.xlarge', 'gr6.4xlarge', 'm5.large'], markets: ['on-demand'] }, collect);
  // gr6 is a G and VT type: its quota is the one g5 just found full.
  expect(tries).toEqual(['on-demand g5.xlarge subnet-a', 'on-demand m5.large subnet-a']);
  expect(won.instanceType).toBe('m5.large');
  expect(log).toContain('skip on-demand gr6.4xlarge in us-east-1a (subnet-a): the vCPU quota "Running On-Demand G and VT instances" is full (VcpuLimitExceeded above)');
  expect(log).toContain('skip on-demand g5.xlarge in us-east-1b (subnet-b): the vCPU quota "Running On-Demand G and VT instances" is full (VcpuLimitExceeded above)');
});

test('when every type is out of quota or capacity, the error names the quota and how to ask for more', async () => {
  runInstances(market => (market === 'spot' ? 'InsufficientInstanceCapacity' : 'VcpuLimitExceeded'));
  await expect(launchWithFallback(clients, foundation, request, () => {})).rejects.toThrow(
    'the vCPU quota "Running On-Demand G and VT instances" (L-DB2E81BA) of this region is too small for on-demand g5.xlarge (4 vCPUs) ' +
    '(EC2: VcpuLimitExceeded (injected)). Ask for more: aws service-quotas request-service-quota-increase --service-code ec2 ' +
    '--quota-code L-DB2E81BA --desired-value <your current quota + 4>');
  // Four spot tries, then on-demand g5.xlarge once: its other zone and g4dn (also G) are skipped.
  expect(tries).toHaveLength(5);
});

// EC2 User Guide, "Service-linked role for Spot Instances": the console creates AWSServiceRoleForEC2Spot; an API caller
// must make sure it exists. Without iam:CreateServiceLinkedRole, RunInstances answers (403)
// AuthFailure.ServiceLinkedRoleCreationNotPermitted, "The provided credentials do not have permission to create the
// service-linked role for EC2 Spot Instances" (as reported in CloudSnorkel/cdk-github-runners #182, dstackai/dstack #886).
const SPOT_ROLE_MESSAGE = 'The provided credentials do not have permission to create the service-linked role for EC2 Spot Instances.';

test('without the Spot service-linked role, says how to create it once and goes on with on-demand', async () => {
  runInstances(market => (market === 'spot' ? 'AuthFailure.ServiceLinkedRoleCreationNotPermitted' : undefined));
  ec2.on(RunInstancesCommand, { InstanceMarketOptions: { MarketType: 'spot' } as any }).callsFake(input => {
    tries.push(`spot ${input.InstanceType} ${input.SubnetId}`);
    throw Object.assign(awsError('AuthFailure.ServiceLinkedRoleCreationNotPermitted', SPOT_ROLE_MESSAGE), { $metadata: { httpStatusCode: 403 } });
  });
  log.length = 0;
  const won = await launchWithFallback(clients, foundation, request, collect);
  // One spot try: the role is the account's, so no other spot try can succeed.
  expect(tries).toEqual(['spot g5.xlarge subnet-a', 'on-demand g5.xlarge subnet-a']);
  expect(won.market).toBe('on-demand');
  expect(log.find(l => l.includes('AuthFailure'))).toMatch(
    /AWSServiceRoleForEC2Spot.*aws iam create-service-linked-role --aws-service-name spot\.amazonaws\.com.*going on with on-demand/);
});

test('without the Spot service-linked role, a spot-only run stops with that explanation', async () => {
  ec2.on(RunInstancesCommand).callsFake(input => {
    tries.push(`spot ${input.InstanceType} ${input.SubnetId}`);
    throw awsError('AuthFailure.ServiceLinkedRoleCreationNotPermitted', SPOT_ROLE_MESSAGE);
  });
  await expect(launchWithFallback(clients, foundation, { ...request, markets: ['spot'] }, () => {}))
    .rejects.toThrow(/AWSServiceRoleForEC2Spot.*aws iam create-service-linked-role --aws-service-name spot\.amazonaws\.com/);
  expect(tries).toHaveLength(1);
});

// EC2 API Reference, "Request throttling": RequestLimitExceeded, retry with exponential backoff. The same try is sent
// again after a growing wait; nothing else is.
test('a throttled RunInstances is sent again after a growing wait, and only that one', async () => {
  let throttled = 2;
  ec2.on(RunInstancesCommand).callsFake(input => {
    tries.push(`${input.InstanceMarketOptions ? 'spot' : 'on-demand'} ${input.InstanceType} ${input.SubnetId}`);
    if (throttled-- > 0) throw awsError('RequestLimitExceeded', 'Request limit exceeded.');
    return { Instances: [{ InstanceId: 'i-0123456789abcdef0' }] };
  });
  const waits: number[] = [];
  const won = await launchWithFallback(clients, foundation, request, () => {}, async ms => { waits.push(ms); });
  expect(tries).toEqual(['spot g5.xlarge subnet-a', 'spot g5.xlarge subnet-a', 'spot g5.xlarge subnet-a']);
  expect(won.subnetId).toBe('subnet-a');
  expect(waits).toHaveLength(2);
  expect(waits[0]).toBeGreaterThanOrEqual(500);
  expect(waits[1]).toBeGreaterThanOrEqual(1000);
});

test('a RunInstances throttled again and again stops after a bounded number of sends', async () => {
  ec2.on(RunInstancesCommand).callsFake(input => {
    tries.push(`${input.InstanceType} ${input.SubnetId}`);
    throw awsError('RequestLimitExceeded', 'Request limit exceeded.');
  });
  await expect(launchWithFallback(clients, foundation, request, () => {}, async () => {})).rejects.toThrow(/RequestLimitExceeded/);
  expect(tries).toHaveLength(6);
});

test('any other error stops at once', async () => {
  runInstances(() => 'UnauthorizedOperation');
  await expect(launchWithFallback(clients, foundation, request, () => {}))
    .rejects.toThrow('launching spot g5.xlarge in us-east-1a (subnet-a) failed: UnauthorizedOperation: UnauthorizedOperation (injected)');
  expect(tries).toHaveLength(1);
});

// Quota codes and names: EC2 User Guide, "Amazon EC2 service quotas" (On-Demand: "Running On-Demand G and VT instances"
// L-DB2E81BA, "Running On-Demand P instances" L-417A185B, "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z)
// instances" L-1216C47A; Spot: L-3819A6DF, L-7212CCBC, L-34B43A08). gr6 is a G type; im4gn and is4gen are I types.
test.each([
  ['g5.xlarge', 'on-demand', 'L-DB2E81BA'],
  ['g6e.12xlarge', 'spot', 'L-3819A6DF'],
  ['gr6.4xlarge', 'on-demand', 'L-DB2E81BA'],
  ['gr6.8xlarge', 'spot', 'L-3819A6DF'],
  ['vt1.3xlarge', 'spot', 'L-3819A6DF'],
  ['p4d.24xlarge', 'on-demand', 'L-417A185B'],
  ['p5.48xlarge', 'spot', 'L-7212CCBC'],
  ['m5.large', 'on-demand', 'L-1216C47A'],
  ['c7i.large', 'spot', 'L-34B43A08'],
  ['im4gn.large', 'on-demand', 'L-1216C47A'],
  ['is4gen.xlarge', 'spot', 'L-34B43A08'],
  ['c7gn.large', 'on-demand', 'L-1216C47A'],
  ['inf2.xlarge', 'on-demand', undefined],
  ['dl1.24xlarge', 'on-demand', undefined],
  ['trn1.2xlarge', 'spot', undefined],
  ['hpc7g.4xlarge', 'on-demand', undefined],
])('the quota of %s %s is %s', (type, market, code) => {
  expect(quotaFor(type, market as any).code).toBe(code);
});

test('a family without a known quota code gets the quota by name and the general way to find its code', () => {
  const message = quotaMessage('inf2.xlarge', 'on-demand', 'limit');
  expect(message).toContain('"Running On-Demand INF instances"');
  expect(message).toContain('aws service-quotas list-service-quotas --service-code ec2');
});
