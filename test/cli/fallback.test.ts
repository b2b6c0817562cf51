/*
 * The launcher's fallback through zones, instance types and markets, and its vCPU quota message. Moto never returns
 * capacity or quota errors, so they are injected at the SDK client (aws-sdk-client-mock). What each error means is
 * EC2's: "Error codes for the Amazon EC2 API" (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html)
 * lists InsufficientInstanceCapacity ("not enough capacity to fulfill your request"), InsufficientHostCapacity,
 * InsufficientFreeAddressesInSubnet, MaxSpotInstanceCountExceeded, SpotMaxPriceTooLow, Unsupported,
 * UnfulfillableCapacity, ReservationCapacityExceeded and VcpuLimitExceeded; the EC2 User Guide's "Troubleshoot
 * Amazon EC2 instance launch issues" advises another zone or type after InsufficientInstanceCapacity. That a type
 * missing in a zone may answer InvalidParameterCombination is not documented by AWS (graded U in run-facts.md).
 */
import { DescribeInstanceTypeOfferingsCommand, DescribeInstanceTypesCommand, EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { awsError } from './helpers';
import { Clients } from '../../src/cli/context';
import { Foundation } from '../../src/cli/foundation';
import { launchWithFallback, LaunchRequest, quotaFor, quotaMessage } from '../../src/cli/launch';

const ec2 = mockClient(EC2Client);
const clients = { ec2: new EC2Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } }) } as unknown as Clients;

const foundation: Foundation = {
  environment: 'dev',
  bucket: 'b',
  launchTemplateId: 'lt-0123456789abcdef0',
  subnets: [{ subnetId: 'subnet-a', zone: 'us-east-1a' }, { subnetId: 'subnet-b', zone: 'us-east-1b' }],
  costCenter: 'train',
  maxLifetimeSeconds: 4 * 3600,
  templateIsSpot: false,
  source: 'SSM parameters',
};
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

// The codes after which the launcher moves on, listed literally rather than taken from NEXT_ON (a code removed from
// the product's list would otherwise remove its own case). EC2 API Reference, "Error codes for the Amazon EC2 API"
// (above): capacity and market answers that another zone, type or market may not give; InvalidParameterCombination is
// graded U in run-facts.md.
test.each([
  'InsufficientInstanceCapacity',
  'InsufficientCapacity',
  'InsufficientHostCapacity',
  'InsufficientFreeAddressesInSubnet',
  'MaxSpotInstanceCountExceeded',
  'SpotMaxPriceTooLow',
  'Unsupported',
  'InvalidParameterCombination',
  'UnfulfillableCapacity',
  'ReservationCapacityExceeded',
])('moves on after %s', async (code) => {
  runInstances((_m, _t, subnet) => (subnet === 'subnet-a' ? code : undefined));
  const won = await launchWithFallback(clients, foundation, request, () => {});
  expect(tries).toEqual(['spot g5.xlarge subnet-a', 'spot g5.xlarge subnet-b']);
  expect(won.zone).toBe('us-east-1b');
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

test('a vCPU quota error stops at once and names the quota and how to ask for more', async () => {
  runInstances(market => (market === 'spot' ? 'InsufficientInstanceCapacity' : 'VcpuLimitExceeded'));
  await expect(launchWithFallback(clients, foundation, request, () => {})).rejects.toThrow(
    'the vCPU quota "Running On-Demand G and VT instances" (L-DB2E81BA) of this region is too small for on-demand g5.xlarge (4 vCPUs) ' +
    '(EC2: VcpuLimitExceeded (injected)). Ask for more: aws service-quotas request-service-quota-increase --service-code ec2 ' +
    '--quota-code L-DB2E81BA --desired-value <your current quota + 4>');
  expect(tries).toHaveLength(5);
});

test('any other error stops at once', async () => {
  runInstances(() => 'UnauthorizedOperation');
  await expect(launchWithFallback(clients, foundation, request, () => {}))
    .rejects.toThrow('launching spot g5.xlarge in us-east-1a (subnet-a) failed: UnauthorizedOperation: UnauthorizedOperation (injected)');
  expect(tries).toHaveLength(1);
});

test.each([
  ['g5.xlarge', 'on-demand', 'L-DB2E81BA'],
  ['g6e.12xlarge', 'spot', 'L-3819A6DF'],
  ['vt1.3xlarge', 'spot', 'L-3819A6DF'],
  ['p4d.24xlarge', 'on-demand', 'L-417A185B'],
  ['p5.48xlarge', 'spot', 'L-7212CCBC'],
  ['m5.large', 'on-demand', 'L-1216C47A'],
  ['c7i.large', 'spot', 'L-34B43A08'],
])('the quota of %s %s is %s', (type, market, code) => {
  expect(quotaFor(type, market as any).code).toBe(code);
});

test('a family without a known quota code gets the quota by name and the general way to find its code', () => {
  const message = quotaMessage('inf2.xlarge', 'on-demand', 'limit');
  expect(message).toContain('"Running On-Demand INF instances"');
  expect(message).toContain('aws service-quotas list-service-quotas --service-code ec2');
});

// EC2 API Reference, "Error codes for the Amazon EC2 API": MaxSpotInstanceCountExceeded means the account's Spot
// request limit is reached; Spot limits are the vCPU quotas "All G and VT Spot Instance Requests" (L-3819A6DF) and its
// kin (EC2 User Guide, "Spot Instance quotas"). The launcher moves on, and says which quota may be full.
test('after MaxSpotInstanceCountExceeded, the log names the spot vCPU quota that may be full', async () => {
  runInstances(market => (market === 'spot' ? 'MaxSpotInstanceCountExceeded' : undefined));
  log.length = 0;
  const won = await launchWithFallback(clients, foundation, request, collect);
  expect(won.market).toBe('on-demand');
  expect(log.filter(l => l.includes('may be full'))).toEqual([
    '  (the spot vCPU quota "All G and VT Spot Instance Requests" L-3819A6DF may be full)',
    '  (the spot vCPU quota "All G and VT Spot Instance Requests" L-3819A6DF may be full)',
    '  (the spot vCPU quota "All G and VT Spot Instance Requests" L-3819A6DF may be full)',
    '  (the spot vCPU quota "All G and VT Spot Instance Requests" L-3819A6DF may be full)',
  ]);
});
