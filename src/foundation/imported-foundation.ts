import { Annotations, Fn } from 'aws-cdk-lib';
import type * as batch from 'aws-cdk-lib/aws-batch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { ChronosTrainingFoundationBase } from './chronos-training-foundation-base';
import { FoundationExports } from './foundation-exports';
import { ChronosTrainingFoundationImportOptions } from './foundation-reference';
import { awsBatch } from '../private/lazy';
import { validateEnvironment } from '../private/validation';

/**
 * A foundation deployed by another stack or app, read from its SSM parameters
 * (`/chronos-training/{environmentName}/{suffix}`) at deploy time: synthesis
 * needs no AWS credentials and no context lookup. (Not exported from the library's index:
 * `ChronosTrainingFoundation.fromEnvironment` returns it as an `IChronosTrainingFoundation`.)
 */
export class ImportedChronosTrainingFoundation extends ChronosTrainingFoundationBase {
  public readonly environmentName: string;
  public readonly vpc: ec2.IVpc;
  public readonly publicSubnets: ec2.ISubnet[];
  public readonly bucket: s3.IBucket;
  public readonly role: iam.IRole;
  public readonly instanceProfile: iam.IInstanceProfile;
  public readonly securityGroup: ec2.ISecurityGroup;
  public readonly connections: ec2.Connections;
  public readonly launchTemplate?: ec2.ILaunchTemplate;
  public readonly batchJobQueue?: batch.IJobQueue;
  public readonly batchJobDefinition?: batch.IJobDefinition;
  public readonly batchMultiNodeJobQueue?: batch.IJobQueue;
  public readonly batchMultiNodeJobDefinition?: batch.IJobDefinition;
  /** Not known for an imported foundation: `grantManageSecrets` grants no `kms:Encrypt` (use `key.grantEncrypt`). */
  public readonly secretsKey?: kms.IKey = undefined;

  constructor(scope: Construct, id: string, environmentName: string, options: ChronosTrainingFoundationImportOptions = {}) {
    super(scope, id);
    const environment = validateEnvironment(environmentName);
    const count = options.availabilityZoneCount ?? 1;
    if (!Number.isInteger(count) || count < 1) {
      throw new Error(`availabilityZoneCount ${count} is invalid; it must be a whole number of at least 1`);
    }
    const value = (suffix: string) =>
      ssm.StringParameter.valueForStringParameter(this, FoundationExports.parameterName(environment, suffix));

    this.environmentName = environment;
    this.vpc = ec2.Vpc.fromVpcAttributes(this, 'Vpc', {
      vpcId: value(FoundationExports.VPC_ID),
      availabilityZones: Fn.split(',', value(FoundationExports.AVAILABILITY_ZONES), count),
      publicSubnetIds: Fn.split(',', value(FoundationExports.PUBLIC_SUBNET_IDS), count),
    });
    this.publicSubnets = this.vpc.publicSubnets;
    for (const subnet of this.publicSubnets) {
      Annotations.of(subnet).acknowledgeWarning('@aws-cdk/aws-ec2:noSubnetRouteTableId',
        'The foundation publishes no route table IDs: an imported training subnet is for placing resources, not for routes');
    }
    this.bucket = s3.Bucket.fromBucketAttributes(this, 'Bucket', {
      bucketName: value(FoundationExports.S3_BUCKET_NAME),
      encryptionKey: options.bucketEncryptionKey,
    });
    this.role = iam.Role.fromRoleName(this, 'Role', value(FoundationExports.IAM_ROLE_NAME));
    this.instanceProfile = iam.InstanceProfile.fromInstanceProfileName(this, 'InstanceProfile',
      value(FoundationExports.INSTANCE_PROFILE_NAME));
    // The training group allows only HTTPS out: a connection to another resource must add its egress rule.
    this.securityGroup = ec2.SecurityGroup.fromSecurityGroupId(this, 'SecurityGroup', value(FoundationExports.SECURITY_GROUP_ID), {
      allowAllOutbound: false,
    });
    this.connections = this.securityGroup.connections;
    if (options.launchTemplate ?? true) {
      this.launchTemplate = ec2.LaunchTemplate.fromLaunchTemplateAttributes(this, 'LaunchTemplate', {
        launchTemplateId: value(FoundationExports.LAUNCH_TEMPLATE_ID),
      });
    }
    if (options.batchMultiNode && !options.batch) {
      throw new Error('batchMultiNode is true without batch: the multi-node queue is part of the foundation\'s Batch queue; set batch: true too');
    }
    if (options.batch) {
      const batch = awsBatch();
      // The parameters hold the job definitions' ARNs without revision (the latest active one).
      this.batchJobQueue = batch.JobQueue.fromJobQueueArn(this, 'BatchJobQueue', value(FoundationExports.BATCH_JOB_QUEUE_ARN));
      this.batchJobDefinition = batch.EcsJobDefinition.fromJobDefinitionArn(this, 'BatchJobDefinition',
        value(FoundationExports.BATCH_JOB_DEFINITION_ARN));
    }
    if (options.batchMultiNode) {
      const batch = awsBatch();
      this.batchMultiNodeJobQueue = batch.JobQueue.fromJobQueueArn(this, 'BatchMultiNodeJobQueue',
        value(FoundationExports.BATCH_MULTI_NODE_JOB_QUEUE_ARN));
      this.batchMultiNodeJobDefinition = batch.MultiNodeJobDefinition.fromJobDefinitionArn(this, 'BatchMultiNodeJobDefinition',
        value(FoundationExports.BATCH_MULTI_NODE_JOB_DEFINITION_ARN));
    }
  }

  /**
   * The `LaunchTemplateVersion` parameter's value, read (a template parameter of this stack) only when used: a
   * foundation deployed before it existed has no such parameter, and a stack that reads it would fail to deploy.
   */
  public get launchTemplateVersion(): string | undefined {
    if (!this.launchTemplate) {
      return undefined;
    }
    return ssm.StringParameter.valueForStringParameter(this,
      FoundationExports.parameterName(this.environmentName, FoundationExports.LAUNCH_TEMPLATE_VERSION));
  }
}
