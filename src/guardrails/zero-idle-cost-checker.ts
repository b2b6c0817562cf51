import { Annotations, CfnResource, IAspect, Stack, Token } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';

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

/**
 * Properties of a `ZeroIdleCostChecker`.
 */
export interface ZeroIdleCostCheckerProps {
  /**
   * CloudFormation resource types that may bill while idle without an error,
   * for example `['AWS::KMS::Key']` for a deliberate customer-managed key.
   *
   * @default - none: every resource that bills while idle is an error
   */
  readonly allowedResourceTypes?: string[];
}

/** How one billed resource type is recognised: always, or by a property. */
interface Rule extends IdleCostEntry {
  /**
   * Whether a resource of this type bills, from its resolved CloudFormation
   * properties: `true`, `false`, or `undefined` when a property that decides it is
   * not known at synthesis. Absent: it always bills.
   */
  readonly bills?: (properties: Record<string, any>) => boolean | undefined;
}

const ALLOWED_METADATA = 'chronos:zeroIdleCost:allowed';

/** Standard pricing, exact rate not checked. */
const STANDARD = 'U: standard hourly or GB-month pricing, exact rate not checked';

/**
 * The one table of what bills while idle, with the source of each figure. The
 * table of docs/IDLE-COSTS.md is a copy of it, kept by hand and checked by a
 * test (test/guardrails/zero-idle-cost-checker.test.ts) that fails when the two differ.
 */
const RULES: Rule[] = [
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
  ...['AWS::Lambda::Version', 'AWS::Lambda::Alias'].map((resourceType): Rule => ({
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
const FREE: IdleCostEntry[] = [
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

/**
 * A CDK Aspect that fails synthesis on resources that bill while no training
 * instance runs: NAT gateways, Elastic IPs, interface endpoints, instances,
 * volumes, KMS keys, secrets, load balancers, databases, alarms and the like,
 * and the property cases (an advanced-tier SSM parameter, an Auto Scaling group
 * with a minimum or desired size above 0, provisioned concurrency, a
 * provisioned-capacity DynamoDB table).
 *
 * Each one gets an error annotation naming its path, its CloudFormation type and
 * its idle cost, so `cdk synth` fails. Where a deciding property is a token that
 * is unknown at synthesis, the resource gets a warning instead.
 *
 * `ChronosTrainingStack` and `ChronosTrainingFoundation` apply one to
 * themselves unless a scope above them already has a checker (so a foundation
 * in a `ChronosTrainingStack` is checked once, by the stack's); apply it
 * anywhere else with `Aspects.of(scope).add(new ZeroIdleCostChecker())`, before
 * the foundation is created if it should be the only one.
 *
 * @example
 * import { App, Aspects } from 'aws-cdk-lib';
 * import { ZeroIdleCostChecker } from '@chronos/training-infra';
 *
 * const app = new App();
 * Aspects.of(app).add(new ZeroIdleCostChecker({ allowedResourceTypes: ['AWS::KMS::Key'] }));
 */
export class ZeroIdleCostChecker implements IAspect {
  /**
   * Every resource type (and property case) the checker reports, with its idle
   * cost and source.
   */
  public static readonly BILLED_WHILE_IDLE: IdleCostEntry[] = RULES.map(({ bills, ...entry }) => entry);

  /** Resource types that cost nothing while idle (documentation; the checker ignores every type not billed). */
  public static readonly FREE_WHILE_IDLE: IdleCostEntry[] = FREE;

  /**
   * Allows resources of a type that bill while idle in a scope (and below it),
   * for every checker, including those `ChronosTrainingStack` and
   * `ChronosTrainingFoundation` apply. The reason is kept in the construct's metadata.
   *
   * @param scope the resource, or a construct above it
   * @param resourceType the CloudFormation type, for example `AWS::KMS::Key`
   * @param reason why it is worth its idle cost
   */
  public static allowResourceType(scope: IConstruct, resourceType: string, reason: string): void {
    validateResourceType('resourceType', resourceType);
    if (reason.trim().length === 0) {
      throw new Error(`reason must not be empty: say why '${resourceType}' is worth its idle cost`);
    }
    scope.node.addMetadata(ALLOWED_METADATA, { resourceType, reason });
  }

  private readonly allowed: Set<string>;

  /**
   * @param props the properties; see the props interface for defaults
   */
  constructor(props: ZeroIdleCostCheckerProps = {}) {
    for (const type of props.allowedResourceTypes ?? []) {
      validateResourceType('allowedResourceTypes', type);
    }
    this.allowed = new Set(props.allowedResourceTypes ?? []);
  }

  /**
   * Reports `node` if it is a CloudFormation resource that bills while idle.
   */
  public visit(node: IConstruct): void {
    if (!CfnResource.isCfnResource(node)) {
      return;
    }
    const type = node.cfnResourceType;
    const rule = RULES.find(r => r.resourceType === type);
    if (!rule || this.allowed.has(type) || allowedInScope(node, type)) {
      return;
    }
    const properties = rule.bills ? propertiesOf(node) : {};
    const bills = rule.bills ? (properties ? rule.bills(properties) : undefined) : true;
    if (bills === false) {
      return;
    }
    const allowHint = `allow it with new ZeroIdleCostChecker({ allowedResourceTypes: ['${type}'] }) ` +
      `or ZeroIdleCostChecker.allowResourceType(scope, '${type}', reason)`;
    if (bills === undefined) {
      Annotations.of(node).addWarningV2('@chronos/training-infra:idleCostUnknown', `${node.node.path} (${type}) may bill while no training run is active: ${rule.condition} ` +
        `is not known at synthesis. If it is, it costs ${rule.idleCost} [${rule.source}]; ${allowHint}`);
      return;
    }
    Annotations.of(node).addError(`${node.node.path} (${type}) bills while no training run is active: ` +
      `${rule.idleCost}${rule.condition ? ` (${rule.condition})` : ''} [${rule.source}]. ` +
      `The foundation promises $0 while idle: remove it, or ${allowHint}`);
  }
}

/**
 * The resource's CloudFormation properties as they will be synthesized
 * (overrides applied); tokens that refer to other resources stay objects.
 *
 * No public aws-cdk-lib API gives them: the typed L1 properties (what
 * aws-cdk-lib's own `InstanceRequireImdsv2Aspect` reads) miss escape-hatch
 * overrides (`addPropertyOverride` writes to a private `rawOverrides`), and a
 * gateway endpoint overridden to `Interface` would then bill unreported. So this
 * calls the internal `_toCloudFormation()`, as cdk-nag does for the same
 * reason. Should a future aws-cdk-lib drop it, the deciding property is
 * reported as unknown (a warning), never silently as free.
 */
function propertiesOf(node: CfnResource): Record<string, any> | undefined {
  const render = (node as any)._toCloudFormation;
  if (typeof render !== 'function') {
    return undefined;
  }
  try {
    const rendered = Stack.of(node).resolve(render.call(node));
    return Object.values<any>(rendered.Resources ?? {})[0]?.Properties ?? {};
  } catch {
    // A lazy value that cannot be produced yet: the deciding property is unknown.
    return undefined;
  }
}

function validateResourceType(prop: string, type: string): void {
  if (!/^[A-Za-z0-9]+::[A-Za-z0-9]+::[A-Za-z0-9]+$/.test(type)) {
    throw new Error(`${prop}: '${type}' is not a CloudFormation resource type such as 'AWS::KMS::Key'`);
  }
}

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

function allowedInScope(node: IConstruct, type: string): boolean {
  return node.node.scopes.some(scope => scope.node.metadata.some(m =>
    m.type === ALLOWED_METADATA && (m.data as { resourceType: string }).resourceType === type));
}

