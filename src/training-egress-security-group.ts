import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';
import { DEFAULT_ENVIRONMENT, validateEnvironment } from './conventions';

/**
 * Properties of a `TrainingEgressSecurityGroup`.
 */
export interface TrainingEgressSecurityGroupProps {
  /** The VPC the security group belongs to. */
  readonly vpc: ec2.IVpc;

  /**
   * The environment name, used in the group's description.
   *
   * @default 'dev'
   */
  readonly environment?: string;
}

/**
 * A security group for training instances: no inbound rule at all, and outbound
 * only HTTPS (TCP 443) for S3, AWS APIs and package repositories.
 */
export class TrainingEgressSecurityGroup extends Construct {
  /** The security group. */
  public readonly securityGroup: ec2.ISecurityGroup;

  /**
   * @param scope the parent construct
   * @param id the construct id (part of every logical ID below it: keep it stable)
   * @param props the properties; see the props interface for defaults
   */
  constructor(scope: Construct, id: string, props: TrainingEgressSecurityGroupProps) {
    super(scope, id);
    const environment = validateEnvironment(props.environment ?? DEFAULT_ENVIRONMENT);

    const securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: `Security group for Chronos Training instances (${environment}) - egress HTTPS only`,
      allowAllOutbound: false,
    });
    securityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS to AWS services and package repos');
    this.securityGroup = securityGroup;
  }
}
