import { Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';
import { acknowledgeNag } from './compliance';

/**
 * Properties of a `TrainingNetwork`.
 */
export interface TrainingNetworkProps {
  /**
   * The IPv4 CIDR block of the VPC (a prefix length from /16 to /28, as VPCs allow).
   *
   * @default '10.0.0.0/16'
   */
  readonly vpcCidr?: string;

  /**
   * The prefix length of the single public subnet (from /16 to /28, and not
   * shorter than the VPC's prefix length).
   *
   * @default 24
   */
  readonly subnetCidrMask?: number;

  /**
   * The Availability Zone of the public subnet. Set it when the GPU instance type
   * you launch is offered only in some zones of the region.
   *
   * @default - the region's first Availability Zone (`Fn::GetAZs` for an
   * environment-agnostic stack, a context lookup for a stack with account and region)
   */
  readonly availabilityZone?: string;

  /**
   * Where to deliver VPC flow logs of all traffic (for example
   * `FlowLogDestination.toS3(bucket, 'vpc-flow-logs/')`). Flow logs are billed
   * per GB delivered, so they cost nothing while no instance runs.
   *
   * @default - no flow logs
   */
  readonly flowLogDestination?: ec2.FlowLogDestination;
}

/**
 * A one-AZ VPC with a single public subnet, no NAT gateway, and an S3 gateway
 * endpoint on the subnet's route table: the network of an ephemeral training
 * instance, at no cost while idle.
 *
 * Instances get a public IP on launch and reach package repositories through the
 * internet gateway; S3 traffic stays on the gateway endpoint at no transfer cost.
 */
export class TrainingNetwork extends Construct {
  /** The VPC: this construct's `node.defaultChild`. */
  public readonly vpc: ec2.IVpc;

  /** The single public subnet training instances are launched into. */
  public readonly publicSubnet: ec2.ISubnet;

  /** The S3 gateway endpoint, attached to the public subnet's route table. */
  public readonly s3Endpoint: ec2.IGatewayVpcEndpoint;

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
    if (props.availabilityZone !== undefined && !Token.isUnresolved(props.availabilityZone)
      && props.availabilityZone.trim().length === 0) {
      throw new Error("availabilityZone must not be empty: give a zone name such as 'us-east-1a', or leave it unset");
    }

    const vpc = new ec2.Vpc(this, 'Resource', {
      ipAddresses: ec2.IpAddresses.cidr(vpcCidr),
      ...(props.availabilityZone !== undefined
        ? { availabilityZones: [props.availabilityZone] }
        : { maxAzs: 1 }),
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
        'egress-only training instances, and monitoring resources stay out of the $0-idle foundation unless asked for');
    }

    this.vpc = vpc;
    this.publicSubnet = vpc.publicSubnets[0];
    this.s3Endpoint = vpc.addGatewayEndpoint('S3Endpoint', {
      service: ec2.GatewayVpcEndpointAwsService.S3,
      subnets: [{ subnets: [this.publicSubnet] }],
    });
  }
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
