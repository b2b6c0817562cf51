import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';
import { validateEnvironment } from './conventions';

/**
 * Properties of a `TrainingEgressSecurityGroup`.
 */
export interface TrainingEgressSecurityGroupProps {
  /** The VPC the security group belongs to. */
  readonly vpc: ec2.IVpc;

  /** The environment name, used in the group's description. */
  readonly environmentName: string;
}

/**
 * A security group for training instances: no inbound rule at all, and outbound
 * only HTTPS (TCP 443) for S3, AWS APIs and package repositories.
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
      description: `Security group for Chronos Training instances (${this.environmentName}) - egress HTTPS only`,
      allowAllOutbound: false,
    });
    securityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS to AWS services and package repos');
    this.securityGroup = securityGroup;
    this.connections = securityGroup.connections;
  }
}
