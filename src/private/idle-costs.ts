import { Token } from 'aws-cdk-lib';

/*
 * The idle-cost table of `ZeroIdleCostChecker`: which CloudFormation resource types bill while no training run is
 * active, in which case, what they cost and where the figure comes from. Internal, so that a price table is not
 * frozen into the public API: users extend the checker with `addBilledWhileIdle`, and docs/IDLE-COSTS.md shows the
 * table (test/guardrails/zero-idle-cost-checker.test.ts fails when the two differ).
 */

/**
 * One row of the idle-cost table: a CloudFormation resource type, the case in
 * which it bills while nothing runs, what it costs and where that figure comes from.
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

  /** What it costs while idle (us-east-1 list prices, November 2026). */
  readonly idleCost: string;

  /**
   * Where the figure comes from: `V` verified on an AWS page, `S` a secondary
   * source, `U` unverified (standard pricing, exact rate not checked).
   */
  readonly source: string;
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

/** Standard pricing, exact rate not checked. */
const STANDARD = 'U: standard hourly or GB-month pricing, exact rate not checked';

/** The one table of what bills while idle, with the source of each figure. */
export const BILLED_WHILE_IDLE: IdleCostRule[] = [
  // Network
  { resourceType: 'AWS::EC2::NatGateway', idleCost: '$0.045/h (~$32/month) + $0.045/GB', source: 'S: chime/terraform-aws-alternat README' },
  { resourceType: 'AWS::EC2::EIP', idleCost: '$0.005/h per public IPv4 address (~$3.60/month)', source: 'V: AWS re:Post, public IPv4 charge from 2024-02-01' },
  {
    resourceType: 'AWS::EC2::VPCEndpoint',
    condition: '`VpcEndpointType` `Interface` or `GatewayLoadBalancer` (`Gateway`, the default, is free)',
    idleCost: '~$0.01/h per AZ (~$7.30/month) + per GB',
    source: 'V: aws.amazon.com/privatelink/pricing (billed per provisioned hour per AZ); rate S',
    bills: p => oneOf(p.VpcEndpointType, ['Interface', 'GatewayLoadBalancer'], 'Gateway'),
  },
  { resourceType: 'AWS::EC2::TransitGateway', idleCost: '$0.05/h per attachment', source: 'S: factualminds' },
  { resourceType: 'AWS::EC2::TransitGatewayAttachment', idleCost: '$0.05/h', source: 'S: factualminds' },
  { resourceType: 'AWS::EC2::TransitGatewayVpcAttachment', idleCost: '$0.05/h', source: 'S: factualminds' },
  { resourceType: 'AWS::EC2::VPNConnection', idleCost: '$0.05/h', source: 'S: factualminds' },
  { resourceType: 'AWS::EC2::ClientVpnEndpoint', idleCost: 'per associated subnet-hour', source: STANDARD },
  { resourceType: 'AWS::NetworkFirewall::Firewall', idleCost: 'per endpoint-hour', source: STANDARD },
  { resourceType: 'AWS::Route53Resolver::ResolverEndpoint', idleCost: 'per ENI-hour', source: STANDARD },
  { resourceType: 'AWS::GlobalAccelerator::Accelerator', idleCost: 'per hour', source: STANDARD },
  { resourceType: 'AWS::ElasticLoadBalancingV2::LoadBalancer', idleCost: 'ALB $0.0225/h (~$16/month) + LCU', source: 'S: transcription of the ELB pricing page' },
  { resourceType: 'AWS::ElasticLoadBalancing::LoadBalancer', idleCost: 'per hour + per GB', source: STANDARD },
  { resourceType: 'AWS::Route53::HostedZone', idleCost: '$0.50/month per zone (first 25)', source: 'S: ns1.com' },
  // Compute and storage
  { resourceType: 'AWS::EC2::Instance', idleCost: 'its instance type\'s hourly rate (g4dn.2xlarge ~$540/month) + its volumes', source: STANDARD },
  { resourceType: 'AWS::EC2::Volume', idleCost: 'per GB-month (gp3 $0.08)', source: STANDARD },
  { resourceType: 'AWS::EC2::CapacityReservation', idleCost: 'the reserved instance type\'s hourly rate, used or not', source: STANDARD },
  { resourceType: 'AWS::EC2::Host', idleCost: 'the dedicated host\'s hourly rate', source: STANDARD },
  {
    resourceType: 'AWS::AutoScaling::AutoScalingGroup',
    condition: '`MinSize` or `DesiredCapacity` above 0',
    idleCost: 'the instances it keeps running',
    source: STANDARD,
    bills: p => anyAboveZero([p.MinSize, p.DesiredCapacity]),
  },
  {
    resourceType: 'AWS::Batch::ComputeEnvironment',
    condition: '`ComputeResources.MinvCpus` or `DesiredvCpus` above 0 (a managed compute environment keeps that many vCPUs of instances running)',
    idleCost: 'the instances it keeps running',
    source: 'V: AWS Batch User Guide, compute environment parameters (minvCpus: instances kept even with no job)',
    bills: p => anyAboveZero([p.ComputeResources?.MinvCpus, p.ComputeResources?.DesiredvCpus]),
  },
  ...['AWS::Lambda::Version', 'AWS::Lambda::Alias'].map((resourceType): IdleCostRule => ({
    resourceType,
    condition: '`ProvisionedConcurrencyConfig` above 0',
    idleCost: 'per GB-second provisioned',
    source: STANDARD,
    bills: p => anyAboveZero([p.ProvisionedConcurrencyConfig?.ProvisionedConcurrentExecutions]),
  })),
  { resourceType: 'AWS::DLM::LifecyclePolicy', idleCost: 'the snapshots it keeps, per GB-month', source: STANDARD },
  { resourceType: 'AWS::EFS::FileSystem', idleCost: 'per GB-month stored', source: STANDARD },
  { resourceType: 'AWS::FSx::FileSystem', idleCost: 'per GB-month provisioned + throughput', source: STANDARD },
  { resourceType: 'AWS::SageMaker::NotebookInstance', idleCost: 'its instance type\'s hourly rate while InService', source: STANDARD },
  { resourceType: 'AWS::SageMaker::Endpoint', idleCost: 'its instances\' hourly rate', source: STANDARD },
  { resourceType: 'AWS::EKS::Cluster', idleCost: '$0.10/h per cluster', source: STANDARD },
  // Databases and caches
  { resourceType: 'AWS::RDS::DBInstance', idleCost: 'instance-hours + GB-month', source: STANDARD },
  { resourceType: 'AWS::RDS::DBCluster', idleCost: 'instance-hours (or ACUs) + GB-month', source: STANDARD },
  { resourceType: 'AWS::ElastiCache::CacheCluster', idleCost: 'node-hours', source: STANDARD },
  { resourceType: 'AWS::ElastiCache::ReplicationGroup', idleCost: 'node-hours', source: STANDARD },
  { resourceType: 'AWS::ElastiCache::ServerlessCache', idleCost: 'minimum GB-hours of data stored', source: STANDARD },
  { resourceType: 'AWS::OpenSearchService::Domain', idleCost: 'instance-hours + GB-month', source: STANDARD },
  { resourceType: 'AWS::Elasticsearch::Domain', idleCost: 'instance-hours + GB-month', source: STANDARD },
  {
    resourceType: 'AWS::DynamoDB::Table',
    condition: '`BillingMode` `PROVISIONED` (the default; `PAY_PER_REQUEST` bills storage only)',
    idleCost: 'provisioned read and write capacity per hour',
    source: STANDARD,
    bills: p => oneOf(p.BillingMode, ['PROVISIONED'], 'PROVISIONED'),
  },
  // Security and configuration
  { resourceType: 'AWS::KMS::Key', idleCost: '$1/month per key (+$1 per rotation)', source: 'V: aws.amazon.com/kms/pricing' },
  { resourceType: 'AWS::KMS::ReplicaKey', idleCost: '$1/month per key', source: 'V: aws.amazon.com/kms/pricing' },
  { resourceType: 'AWS::SecretsManager::Secret', idleCost: '$0.40/month per secret', source: 'S: awsready.net' },
  {
    resourceType: 'AWS::SSM::Parameter',
    condition: '`Tier` `Advanced` (`Standard`, the default, is free)',
    idleCost: '$0.05/month per parameter',
    source: 'S; standard parameters free: V (SSM parameter tiers doc)',
    bills: p => oneOf(p.Tier, ['Advanced'], 'Standard'),
  },
  { resourceType: 'AWS::CloudTrail::Trail', idleCost: 'first copy of management events free; $2 per 100k events per extra copy', source: 'V: aws.amazon.com/cloudtrail/pricing' },
  { resourceType: 'AWS::Config::ConfigurationRecorder', idleCost: '$0.003 per configuration item recorded', source: 'S: vantage.sh' },
  { resourceType: 'AWS::GuardDuty::Detector', idleCost: 'per event and GB analysed, with no workload running', source: 'U' },
  // Monitoring
  { resourceType: 'AWS::CloudWatch::Dashboard', idleCost: '$3/month per dashboard', source: 'S: factualminds' },
  { resourceType: 'AWS::CloudWatch::Alarm', idleCost: '~$0.10/month per alarm', source: 'U' },
  { resourceType: 'AWS::CloudWatch::CompositeAlarm', idleCost: '~$0.50/month per alarm', source: 'U' },
];

/** Resource types this library creates or recommends that cost nothing while idle (documentation only). */
export const FREE_WHILE_IDLE: IdleCostEntry[] = [
  ...['VPC', 'Subnet', 'RouteTable', 'InternetGateway', 'SecurityGroup', 'NetworkAcl'].map(t => ({
    resourceType: `AWS::EC2::${t}`, idleCost: '$0', source: 'S: usage.ai, factualminds',
  })),
  { resourceType: 'AWS::EC2::VPCEndpoint', condition: '`VpcEndpointType` `Gateway` (S3, DynamoDB)', idleCost: '$0', source: 'S: usage.ai; consistent with the PrivateLink pricing page' },
  { resourceType: 'AWS::EC2::LaunchTemplate', idleCost: '$0 (no rate exists)', source: 'U' },
  ...['Role', 'Policy', 'ManagedPolicy', 'InstanceProfile'].map(t => ({
    resourceType: `AWS::IAM::${t}`, idleCost: '$0 (no rate exists)', source: 'U',
  })),
  { resourceType: 'AWS::S3::Bucket', idleCost: 'storage and requests only', source: 'U' },
  { resourceType: 'AWS::SSM::Parameter', condition: '`Tier` `Standard`', idleCost: '$0', source: 'V: SSM parameter tiers doc' },
  { resourceType: 'AWS::Lambda::Function', condition: 'without provisioned concurrency', idleCost: 'per request and GB-second only', source: 'U' },
  { resourceType: 'AWS::Events::Rule', condition: 'a 15-minute schedule (~2,900 invocations/month)', idleCost: '$0', source: 'V: EventBridge pricing (AWS events free); scheduled rules U' },
  { resourceType: 'AWS::Logs::LogGroup', idleCost: 'ingestion and storage only', source: 'U' },
  { resourceType: 'AWS::SQS::Queue', idleCost: 'per request only', source: 'U' },
  { resourceType: 'AWS::Budgets::Budget', idleCost: '$0', source: 'V: AWS Price List AWSBudgets.csv ("$0.00 for Budget-days")' },
  {
    resourceType: 'AWS::Budgets::BudgetsAction',
    condition: 'not flagged: the first 62 action-enabled budget-days a month are free',
    idleCost: '$0 for about two action-enabled budgets per account, then $0.10/day (~$3/month) each',
    source: 'V: AWS Price List AWSBudgets.csv',
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
