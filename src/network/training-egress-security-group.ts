import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';
import { validateEnvironment } from '../private/validation';

/**
 * Rules a `TrainingEgressSecurityGroup` adds to its HTTPS-only egress, without
 * the VPC and environment name (the foundation supplies them).
 */
export interface TrainingEgressSecurityGroupOptions {
  /**
   * Whether to allow egress TCP 80 to 0.0.0.0/0, for apt on Ubuntu AMIs: their
   * EC2 mirrors (`<region>.ec2.archive.ubuntu.com`) are served over HTTP. The
   * alternatives keep port 80 closed: an HTTPS apt mirror (cloud-init
   * `apt.primary`), or Amazon Linux 2023, whose repositories are HTTPS on S3
   * and reached through the S3 gateway endpoint.
   *
   * @default false
   */
  readonly allowHttp?: boolean;

  /**
   * Whether instances in the group may exchange all traffic with each other
   * (ingress and egress, all protocols, to and from the group itself), as
   * multi-node training with NCCL over EFA requires. Instances of one
   * multi-node job must also share one Availability Zone.
   *
   * @default false
   */
  readonly allowTrafficWithinGroup?: boolean;
}

/**
 * Properties of a `TrainingEgressSecurityGroup`.
 */
export interface TrainingEgressSecurityGroupProps extends TrainingEgressSecurityGroupOptions {
  /** The VPC the security group belongs to. */
  readonly vpc: ec2.IVpc;

  /** The environment name, used in the group's description. */
  readonly environmentName: string;
}

/**
 * A security group for training instances: no inbound rule from outside the
 * group, and outbound only HTTPS (TCP 443) for S3, AWS APIs and package
 * repositories. Options add HTTP egress (apt) and all traffic within the group
 * (multi-node NCCL/EFA: the only ingress it ever has is from itself).
 *
 * Its description names the rules it was created with (by default `... -
 * egress HTTPS only`). EC2 cannot change a security group's description, so
 * CloudFormation replaces the group when `allowHttp` or
 * `allowTrafficWithinGroup` changes on a deployed stack: change them while no
 * instance uses the group, or the old group stays behind (a group in use
 * cannot be deleted).
 *
 * It is an `ec2.IConnectable`: `database.connections.allowDefaultPortFrom(trainingSg)`
 * opens a port of another resource to training instances (and adds the matching
 * egress rule here).
 */
export class TrainingEgressSecurityGroup extends Construct implements ec2.IConnectable {
  /** The security group: this construct's `node.defaultChild`. */
  public readonly securityGroup: ec2.ISecurityGroup;

  /** The connections of the security group. */
  public readonly connections: ec2.Connections;

  /** The environment named in the group's description. */
  public readonly environmentName: string;

  /**
   * @param scope the parent construct
   * @param id the construct id (part of every logical ID below it: keep it stable)
   * @param props the properties
   */
  constructor(scope: Construct, id: string, props: TrainingEgressSecurityGroupProps) {
    super(scope, id);
    this.environmentName = validateEnvironment(props.environmentName);

    const securityGroup = new ec2.SecurityGroup(this, 'Resource', {
      vpc: props.vpc,
      description: securityGroupDescription(this.environmentName, props),
      allowAllOutbound: false,
    });
    securityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS to AWS services and package repos');
    if (props.allowHttp) {
      securityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(80), 'HTTP to apt mirrors that serve no HTTPS');
    }
    if (props.allowTrafficWithinGroup) {
      securityGroup.addIngressRule(securityGroup, ec2.Port.allTraffic(), 'All traffic from the group (multi-node NCCL/EFA)');
      securityGroup.addEgressRule(securityGroup, ec2.Port.allTraffic(), 'All traffic to the group (multi-node NCCL/EFA)');
    }
    this.securityGroup = securityGroup;
    this.connections = securityGroup.connections;
  }
}

/** What the group allows, in its description: the default one is the design's, `... - egress HTTPS only`. */
function securityGroupDescription(environmentName: string, options: TrainingEgressSecurityGroupOptions): string {
  const egress = options.allowHttp ? 'egress HTTPS and HTTP only' : 'egress HTTPS only';
  const within = options.allowTrafficWithinGroup ? ', all traffic within the group' : '';
  return `Security group for Chronos Training instances (${environmentName}) - ${egress}${within}`;
}
