import { ContextProvider, Fn, Stack, Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as cxschema from 'aws-cdk-lib/cloud-assembly-schema';
import { Construct } from 'constructs';
import { S3EndpointRestrictionOptions } from './s3-endpoint-restriction';
import { acknowledgeNag, skipCfnLint } from '../private/compliance';
import { amazonLinux2023RepositoryBucket } from '../private/naming';

/**
 * Options of a `TrainingNetwork` that a foundation user sets: addresses and zones.
 */
export interface TrainingNetworkOptions {
  /**
   * The IPv4 CIDR block of the VPC (a prefix length from /16 to /28, as VPCs allow).
   *
   * @default '10.0.0.0/16'
   */
  readonly vpcCidr?: string;

  /**
   * The prefix length of each public subnet (from /16 to /28, not shorter than
   * the VPC's prefix length, and small enough that one subnet per zone fits in
   * the VPC).
   *
   * @default 24
   */
  readonly subnetCidrMask?: number;

  /**
   * The number of Availability Zones, with one public subnet in each. More zones
   * cost nothing and give a launch script other zones to try when one has no
   * capacity for a GPU instance type (InsufficientInstanceCapacity). The zones
   * are the region's first ones: `Fn::GetAZs` in an environment-agnostic stack
   * (so a region with fewer zones fails at deploy time), a context lookup in a
   * stack with account and region (fewer zones there is a synthesis error).
   * Must equal the number of zones in `availabilityZones` when both are given.
   *
   * @default 1 - or the number of zones in `availabilityZones`
   */
  readonly maxAzs?: number;

  /**
   * The Availability Zones, one public subnet in each, in this order (the
   * first holds `publicSubnets[0]`). Zone names, for example `['us-east-1a']`
   * when the GPU instance type you launch is offered only in some zones of
   * the region, or `['us-east-1a', 'us-east-1d']`.
   *
   * @default - the region's first `maxAzs` zones
   */
  readonly availabilityZones?: string[];
}

/**
 * Properties of a `TrainingNetwork`.
 */
export interface TrainingNetworkProps extends TrainingNetworkOptions {
  /**
   * Where to deliver VPC flow logs of all traffic (for example
   * `FlowLogDestination.toS3(bucket, 'vpc-flow-logs/')`; the foundation's `flowLogs`
   * delivers them into its training bucket). Flow logs are billed
   * per GB delivered, so they cost nothing while no instance runs.
   *
   * @default - no flow logs
   */
  readonly flowLogDestination?: ec2.FlowLogDestination;
}

/**
 * A VPC with one public subnet per Availability Zone (one zone by default), no
 * NAT gateway, and one S3 gateway endpoint on every subnet's route table: the
 * network of ephemeral training instances, at no cost while idle.
 *
 * Instances get a public IP on launch and reach package repositories through the
 * internet gateway; S3 traffic stays on the gateway endpoint at no transfer cost.
 */
export class TrainingNetwork extends Construct {
  /** The VPC: this construct's `node.defaultChild`. */
  public readonly vpc: ec2.IVpc;

  /** The public subnets, one per Availability Zone, in zone order; the first is the one the `PublicSubnetId` export names. */
  public readonly publicSubnets: ec2.ISubnet[];

  /** The S3 gateway endpoint, attached to every public subnet's route table. */
  public readonly s3Endpoint: ec2.IGatewayVpcEndpoint;

  private readonly gatewayEndpoint: ec2.GatewayVpcEndpoint;
  private restricted = false;

  /**
   * @param scope the parent construct
   * @param id the construct id (part of every logical ID below it: keep it stable)
   * @param props the properties; see the props interface for defaults
   */
  constructor(scope: Construct, id: string, props: TrainingNetworkProps = {}) {
    super(scope, id);

    const vpcCidr = props.vpcCidr ?? '10.0.0.0/16';
    const subnetCidrMask = props.subnetCidrMask ?? 24;
    validateCidrs(vpcCidr, subnetCidrMask);
    const zones = zoneSelection(this, props);
    const zoneCount = zones.availabilityZones?.length ?? zones.maxAzs!;
    const subnetsThatFit = 2 ** (subnetCidrMask - Number(vpcCidr.split('/')[1]));
    if (zoneCount > subnetsThatFit) {
      throw new Error(`maxAzs ${zoneCount} needs ${zoneCount} /${subnetCidrMask} subnets, but vpcCidr '${vpcCidr}' holds only ` +
        `${subnetsThatFit}: use a larger VPC CIDR or a longer subnetCidrMask`);
    }

    const vpc = new ec2.Vpc(this, 'Resource', {
      ipAddresses: ec2.IpAddresses.cidr(vpcCidr),
      ...zones,
      natGateways: 0,
      subnetConfiguration: [
        {
          name: 'Public',
          subnetType: ec2.SubnetType.PUBLIC,
          cidrMask: subnetCidrMask,
          mapPublicIpOnLaunch: true,
        },
      ],
      enableDnsHostnames: true,
      enableDnsSupport: true,
      // Set explicitly so the template does not depend on the consumer's feature
      // flags: `true` would add a custom resource with a Lambda function (assets,
      // bootstrap). Training instances never use the default security group.
      restrictDefaultSecurityGroup: false,
    });

    if (props.flowLogDestination) {
      vpc.addFlowLog('FlowLog', { destination: props.flowLogDestination, trafficType: ec2.FlowLogTrafficType.ALL });
    } else {
      acknowledgeNag(vpc.node.defaultChild as ec2.CfnVPC, 'AwsSolutions-VPC7',
        'VPC flow logs are opt-in (flowLogDestination, or flowLogs on the foundation): the VPC carries only short-lived, ' +
        'egress-only training instances, and monitoring resources stay out of the foundation, which bills nothing while idle, unless asked for');
    }

    // cfn-lint W3010 ("avoid hardcoding availability zones"): literal zones come from availabilityZones, which pin
    // them on purpose (GPU types are offered in some zones only), or from CDK's lookup of the account's zones.
    for (const subnet of vpc.publicSubnets) {
      if (!Token.isUnresolved(subnet.availabilityZone)) {
        skipCfnLint(subnet.node.defaultChild as ec2.CfnSubnet, 'W3010');
      }
    }

    this.vpc = vpc;
    this.publicSubnets = vpc.publicSubnets;
    this.gatewayEndpoint = vpc.addGatewayEndpoint('S3Endpoint', {
      service: ec2.GatewayVpcEndpointAwsService.S3,
      subnets: [{ subnets: this.publicSubnets }],
    });
    this.s3Endpoint = this.gatewayEndpoint;
  }

  /**
   * Replaces the S3 gateway endpoint's allow-all policy: requests through it
   * reach only `bucket` (any action; the instance role narrows it) and, read-only
   * (`s3:GetObject`, `s3:ListBucket`), the Amazon Linux 2023 repositories and the
   * buckets `restriction` names. Anything else an instance fetches from S3 in this
   * region then fails with AccessDenied. Requests to buckets in other regions do
   * not use the endpoint and are not restricted by it.
   *
   * @param bucket the training bucket
   * @param restriction what else the endpoint admits
   */
  public restrictS3Endpoint(bucket: s3.IBucket, restriction: S3EndpointRestrictionOptions = {}): void {
    if (this.restricted) {
      throw new Error('restrictS3Endpoint was already called on this network: give every bucket in one call');
    }
    const names = [...restriction.readOnlyBucketNames ?? []];
    for (const name of names) {
      if (Token.isUnresolved(name)) {
        continue;
      }
      if (name.replace(/\*/g, '').length === 0) {
        throw new Error(`restrictS3Endpoint.readOnlyBucketNames contains '${name}', which would admit every bucket`);
      }
      if (!/^[a-z0-9*][a-z0-9.*-]{2,62}$/.test(name)) {
        throw new Error(`restrictS3Endpoint.readOnlyBucketNames contains '${name}', which is not an S3 bucket name ` +
          '(3 to 63 lowercase letters, digits, dots and hyphens; * as a wildcard)');
      }
    }
    const stack = Stack.of(this);
    if (restriction.amazonLinuxRepositories ?? true) {
      names.unshift(amazonLinux2023RepositoryBucket(stack.region));
    }
    // No principal condition: dnf's requests to the repositories are anonymous.
    this.gatewayEndpoint.addToPolicy(new iam.PolicyStatement({
      sid: 'TrainingBucket',
      principals: [new iam.AnyPrincipal()],
      actions: ['s3:*'],
      resources: [bucket.bucketArn, bucket.arnForObjects('*')],
    }));
    if (names.length > 0) {
      const arn = (resource: string) => `arn:${stack.partition}:s3:::${resource}`;
      this.gatewayEndpoint.addToPolicy(new iam.PolicyStatement({
        sid: 'ReadOnlyBuckets',
        principals: [new iam.AnyPrincipal()],
        actions: ['s3:GetObject', 's3:ListBucket'],
        resources: names.flatMap(name => [arn(name), arn(`${name}/*`)]),
      }));
    }
    this.restricted = true;
  }
}

// What ec2.Vpc needs to place one public subnet in each zone: `maxAzs` when the stack
// resolves the zones itself, else an explicit list. An environment-agnostic stack
// knows only two zones at synthesis (Fn::GetAZs indices 0 and 1), so more are
// selected from Fn::GetAZs here.
function zoneSelection(scope: Construct, props: TrainingNetworkProps): { maxAzs?: number; availabilityZones?: string[] } {
  const { maxAzs, availabilityZones: given } = props;
  if (maxAzs !== undefined && (!Number.isInteger(maxAzs) || maxAzs < 1)) {
    throw new Error(`maxAzs ${maxAzs} is invalid; it must be a whole number of at least 1`);
  }
  if (given !== undefined) {
    const prop = 'availabilityZones';
    if (given.length === 0) {
      throw new Error('availabilityZones must not be empty: give at least one zone name, or leave it unset');
    }
    if (given.some(az => !Token.isUnresolved(az) && az.trim().length === 0)) {
      throw new Error(`${prop} must not be empty: give a zone name such as 'us-east-1a', or leave it unset`);
    }
    const literal = given.filter(az => !Token.isUnresolved(az));
    if (new Set(literal).size !== literal.length) {
      throw new Error(`availabilityZones [${given.join(', ')}] names a zone twice; each zone gets one subnet`);
    }
    if (maxAzs !== undefined && maxAzs !== given.length) {
      throw new Error(`maxAzs ${maxAzs} contradicts ${prop} [${given.join(', ')}] (${given.length} zone(s)); ` +
        'leave maxAzs unset or make it match');
    }
    return { availabilityZones: given };
  }
  const count = maxAzs ?? 1;
  if (count === 1) {
    return { maxAzs: 1 };
  }
  const stack = Stack.of(scope);
  if (Token.isUnresolved(stack.account) || Token.isUnresolved(stack.region)) {
    return { availabilityZones: Array.from({ length: count }, (_, i) => Fn.select(i, Fn.getAzs())) };
  }
  // The same lookup as `stack.availabilityZones` (same provider and key), with a placeholder of our own, so that
  // a lookup still pending is told apart without relying on aws-cdk-lib's placeholder zone names.
  const pending: string[] = [];
  const known = ContextProvider.getValue(stack, { provider: cxschema.ContextProvider.AVAILABILITY_ZONE_PROVIDER, dummyValue: pending }).value;
  if (known !== pending && Array.isArray(known) && known.length < count) {
    throw new Error(`maxAzs ${count} is more than the ${known.length} Availability Zones of ${stack.region} ` +
      `(${known.join(', ')}); use at most ${known.length}`);
  }
  return { maxAzs: count };
}

function validateCidrs(vpcCidr: string, subnetCidrMask: number): void {
  if (Token.isUnresolved(vpcCidr)) {
    throw new Error('vpcCidr must be a literal CIDR block, not a token: the subnet is carved from it at synthesis');
  }
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(vpcCidr);
  const octets = match ? match.slice(1, 5).map(Number) : [];
  if (!match || octets.some(o => o > 255)) {
    throw new Error(`vpcCidr '${vpcCidr}' is not an IPv4 CIDR block such as '10.0.0.0/16'`);
  }
  const prefix = Number(match[5]);
  if (prefix < 16 || prefix > 28) {
    throw new Error(`vpcCidr '${vpcCidr}' has prefix length /${prefix}; a VPC's must be from /16 to /28`);
  }
  if (!Number.isInteger(subnetCidrMask) || subnetCidrMask < 16 || subnetCidrMask > 28) {
    throw new Error(`subnetCidrMask ${subnetCidrMask} is invalid; a subnet's prefix length must be a whole number from 16 to 28`);
  }
  if (subnetCidrMask < prefix) {
    throw new Error(`subnetCidrMask ${subnetCidrMask} is shorter than the VPC's prefix length /${prefix} in vpcCidr '${vpcCidr}'; the subnet must fit inside the VPC`);
  }
}
