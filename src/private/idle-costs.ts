import { Token } from 'aws-cdk-lib';

/*
 * The idle-cost table of `ZeroIdleCostChecker`: which CloudFormation resource types bill while no training run is
 * active, in which case, and what they bill for. No prices: an error says what bills while idle and why, and the
 * prices, dated and with their sources, live in docs/IDLE-COSTS.md, whose table has a row per entry here
 * (test/guardrails/zero-idle-cost-checker.test.ts fails when the two differ). Internal: users extend the checker
 * with `addBilledWhileIdle`.
 */

/**
 * One row of the idle-cost table: a CloudFormation resource type, the case in
 * which it bills while nothing runs, and what it bills for.
 */
export interface IdleCostEntry {
  /** The CloudFormation resource type, for example `AWS::EC2::NatGateway`. */
  readonly resourceType: string;

  /**
   * When the resource bills while idle, if only in some configurations.
   *
   * @default - always
   */
  readonly condition?: string;

  /**
   * What bills while idle and why, without a price: for example 'every hour it exists, and every GB it processes'.
   * Prices change and differ by region; docs/IDLE-COSTS.md has them, with the date they were checked.
   */
  readonly billedFor: string;
}

/** How one billed resource type is recognised: always, or by a property. */
export interface IdleCostRule extends IdleCostEntry {
  /**
   * Whether a resource of this type bills, from its resolved CloudFormation
   * properties: `true`, `false`, or `undefined` when a property that decides it is
   * not known at synthesis. Absent: it always bills.
   */
  readonly bills?: (properties: Record<string, any>) => boolean | undefined;
}

/** The one table of what bills while idle, and what it bills for (the prices, dated, are in docs/IDLE-COSTS.md). */
export const BILLED_WHILE_IDLE: IdleCostRule[] = [
  // Network
  { resourceType: 'AWS::EC2::NatGateway', billedFor: 'every hour it exists, and every GB it processes' },
  { resourceType: 'AWS::EC2::EIP', billedFor: 'every hour of its public IPv4 address, attached or not' },
  {
    resourceType: 'AWS::EC2::VPCEndpoint',
    condition: '`VpcEndpointType` `Interface` or `GatewayLoadBalancer` (`Gateway`, the default, is free)',
    billedFor: 'every hour per Availability Zone it is provisioned in, and every GB it processes',
    bills: p => oneOf(p.VpcEndpointType, ['Interface', 'GatewayLoadBalancer'], 'Gateway'),
  },
  { resourceType: 'AWS::EC2::TransitGateway', billedFor: 'every hour per attachment' },
  { resourceType: 'AWS::EC2::TransitGatewayAttachment', billedFor: 'every hour it exists' },
  { resourceType: 'AWS::EC2::TransitGatewayVpcAttachment', billedFor: 'every hour it exists' },
  { resourceType: 'AWS::EC2::VPNConnection', billedFor: 'every hour it exists' },
  { resourceType: 'AWS::EC2::ClientVpnEndpoint', billedFor: 'every hour per associated subnet' },
  { resourceType: 'AWS::NetworkFirewall::Firewall', billedFor: 'every hour per firewall endpoint' },
  { resourceType: 'AWS::Route53Resolver::ResolverEndpoint', billedFor: 'every hour per network interface' },
  { resourceType: 'AWS::GlobalAccelerator::Accelerator', billedFor: 'every hour it exists' },
  { resourceType: 'AWS::ElasticLoadBalancingV2::LoadBalancer', billedFor: 'every hour it exists, and capacity units used' },
  { resourceType: 'AWS::ElasticLoadBalancing::LoadBalancer', billedFor: 'every hour it exists, and every GB it processes' },
  { resourceType: 'AWS::Route53::HostedZone', billedFor: 'every month per hosted zone' },
  // Compute and storage
  { resourceType: 'AWS::EC2::Instance', billedFor: 'its instance type\'s hourly rate while running, and its volumes' },
  { resourceType: 'AWS::EC2::Volume', billedFor: 'every GB-month provisioned, attached or not' },
  { resourceType: 'AWS::EC2::CapacityReservation', billedFor: 'the reserved instance type\'s hourly rate, used or not' },
  { resourceType: 'AWS::EC2::Host', billedFor: 'the dedicated host\'s hourly rate' },
  {
    resourceType: 'AWS::AutoScaling::AutoScalingGroup',
    condition: '`MinSize` or `DesiredCapacity` above 0',
    billedFor: 'the instances it keeps running',
    bills: p => anyAboveZero([p.MinSize, p.DesiredCapacity]),
  },
  {
    resourceType: 'AWS::Batch::ComputeEnvironment',
    condition: '`ComputeResources.MinvCpus` or `DesiredvCpus` above 0 (a managed compute environment keeps that many vCPUs of instances running)',
    billedFor: 'the instances it keeps running',
    bills: p => anyAboveZero([p.ComputeResources?.MinvCpus, p.ComputeResources?.DesiredvCpus]),
  },
  ...['AWS::Lambda::Version', 'AWS::Lambda::Alias'].map((resourceType): IdleCostRule => ({
    resourceType,
    condition: '`ProvisionedConcurrencyConfig` above 0',
    billedFor: 'every GB-second of provisioned concurrency',
    bills: p => anyAboveZero([p.ProvisionedConcurrencyConfig?.ProvisionedConcurrentExecutions]),
  })),
  { resourceType: 'AWS::DLM::LifecyclePolicy', billedFor: 'the snapshots it keeps, per GB-month' },
  { resourceType: 'AWS::EFS::FileSystem', billedFor: 'every GB-month stored' },
  { resourceType: 'AWS::FSx::FileSystem', billedFor: 'every GB-month provisioned, and its throughput capacity' },
  { resourceType: 'AWS::SageMaker::NotebookInstance', billedFor: 'its instance type\'s hourly rate while InService' },
  { resourceType: 'AWS::SageMaker::Endpoint', billedFor: 'its instances\' hourly rate' },
  { resourceType: 'AWS::EKS::Cluster', billedFor: 'every hour per cluster (the control plane)' },
  // Databases and caches
  { resourceType: 'AWS::RDS::DBInstance', billedFor: 'instance-hours and GB-month of storage' },
  { resourceType: 'AWS::RDS::DBCluster', billedFor: 'instance-hours (or capacity units) and GB-month of storage' },
  { resourceType: 'AWS::ElastiCache::CacheCluster', billedFor: 'node-hours' },
  { resourceType: 'AWS::ElastiCache::ReplicationGroup', billedFor: 'node-hours' },
  { resourceType: 'AWS::ElastiCache::ServerlessCache', billedFor: 'a minimum of GB-hours of data stored' },
  { resourceType: 'AWS::OpenSearchService::Domain', billedFor: 'instance-hours and GB-month of storage' },
  { resourceType: 'AWS::Elasticsearch::Domain', billedFor: 'instance-hours and GB-month of storage' },
  {
    resourceType: 'AWS::DynamoDB::Table',
    condition: '`BillingMode` `PROVISIONED` (the default; `PAY_PER_REQUEST` bills storage only)',
    billedFor: 'provisioned read and write capacity, every hour',
    bills: p => oneOf(p.BillingMode, ['PROVISIONED'], 'PROVISIONED'),
  },
  // Security and configuration
  { resourceType: 'AWS::KMS::Key', billedFor: 'every month per key, and per rotation' },
  { resourceType: 'AWS::KMS::ReplicaKey', billedFor: 'every month per key' },
  { resourceType: 'AWS::SecretsManager::Secret', billedFor: 'every month per secret' },
  {
    resourceType: 'AWS::SSM::Parameter',
    condition: '`Tier` `Advanced` (`Standard`, the default, is free)',
    billedFor: 'every month per advanced parameter',
    bills: p => oneOf(p.Tier, ['Advanced'], 'Standard'),
  },
  { resourceType: 'AWS::CloudTrail::Trail', billedFor: 'management events beyond the first copy, and data events' },
  { resourceType: 'AWS::Config::ConfigurationRecorder', billedFor: 'every configuration item recorded' },
  { resourceType: 'AWS::GuardDuty::Detector', billedFor: 'the events and GB it analyses, with no workload running' },
  // Monitoring
  { resourceType: 'AWS::CloudWatch::Dashboard', billedFor: 'every month per dashboard' },
  { resourceType: 'AWS::CloudWatch::Alarm', billedFor: 'every month per alarm' },
  { resourceType: 'AWS::CloudWatch::CompositeAlarm', billedFor: 'every month per alarm' },
];

/** Resource types this library creates or recommends that cost nothing while idle (documentation only). */
export const FREE_WHILE_IDLE: IdleCostEntry[] = [
  ...['VPC', 'Subnet', 'RouteTable', 'InternetGateway', 'SecurityGroup', 'NetworkAcl'].map(t => ({
    resourceType: `AWS::EC2::${t}`, billedFor: 'nothing',
  })),
  { resourceType: 'AWS::EC2::VPCEndpoint', condition: '`VpcEndpointType` `Gateway` (S3, DynamoDB)', billedFor: 'nothing' },
  { resourceType: 'AWS::EC2::LaunchTemplate', billedFor: 'nothing' },
  ...['Role', 'Policy', 'ManagedPolicy', 'InstanceProfile'].map(t => ({
    resourceType: `AWS::IAM::${t}`, billedFor: 'nothing',
  })),
  { resourceType: 'AWS::S3::Bucket', billedFor: 'storage and requests only' },
  { resourceType: 'AWS::SSM::Parameter', condition: '`Tier` `Standard`', billedFor: 'nothing' },
  { resourceType: 'AWS::Lambda::Function', condition: 'without provisioned concurrency', billedFor: 'requests and GB-seconds only' },
  { resourceType: 'AWS::Events::Rule', condition: 'a 15-minute schedule (~2,900 invocations/month)', billedFor: 'nothing' },
  { resourceType: 'AWS::Logs::LogGroup', billedFor: 'ingestion and storage only' },
  { resourceType: 'AWS::SQS::Queue', billedFor: 'requests only' },
  { resourceType: 'AWS::Scheduler::ScheduleGroup', billedFor: 'nothing (its schedules bill per invocation)' },
  { resourceType: 'AWS::SNS::Topic', billedFor: 'requests and deliveries only' },
  { resourceType: 'AWS::Budgets::Budget', billedFor: 'nothing' },
  {
    resourceType: 'AWS::Budgets::BudgetsAction',
    condition: 'not flagged: the first 62 action-enabled budget-days a month are free',
    billedFor: 'nothing for the first 62 action-enabled budget-days a month, then every budget-day',
  },
];

/** `true`/`false` for a literal value among/outside `billed` (absent: `absentAs`); `undefined` for a token. */
function oneOf(value: unknown, billed: string[], absentAs: string): boolean | undefined {
  const v = value ?? absentAs;
  if (typeof v !== 'string' || Token.isUnresolved(v)) {
    return undefined;
  }
  return billed.includes(v);
}

/** Whether any literal number (or numeric string) is above 0; `undefined` if none is and one is a token. */
function anyAboveZero(values: unknown[]): boolean | undefined {
  let unknown = false;
  for (const value of values) {
    if (value === undefined || value === null) {
      continue;
    }
    const literal = typeof value === 'number' || (typeof value === 'string' && !Token.isUnresolved(value));
    const n = literal ? Number(value) : NaN;
    if (!literal || Number.isNaN(n)) {
      unknown = true;
    } else if (n > 0) {
      return true;
    }
  }
  return unknown ? undefined : false;
}
