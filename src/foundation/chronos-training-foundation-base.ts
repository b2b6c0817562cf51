import { Stack } from 'aws-cdk-lib';
import type * as batch from 'aws-cdk-lib/aws-batch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { IChronosTrainingFoundation } from './foundation-reference';
import { grantStatements, launchStatements } from './launch-grant';
import { grantBatchSubmit } from '../batch/batch-grants';
import { secretsParameterArn, secretsParameterStatement } from '../private/run-secrets';
import { TrainingBucketGrants } from '../storage/training-bucket-grants';

/**
 * What a foundation defined here and an imported one have in common: the
 * prefix-scoped grants, which work on any bucket (aws-cdk-lib's `VpcBase`
 * pattern: a hidden base class, not exported from the library's index).
 *
 * @internal
 */
export abstract class ChronosTrainingFoundationBase extends Construct implements IChronosTrainingFoundation {
  public abstract readonly environmentName: string;
  public abstract readonly vpc: ec2.IVpc;
  public abstract readonly publicSubnets: ec2.ISubnet[];
  public abstract readonly bucket: s3.IBucket;
  public abstract readonly role: iam.IRole;
  public abstract readonly instanceProfile: iam.IInstanceProfile;
  public abstract readonly securityGroup: ec2.ISecurityGroup;
  public abstract readonly launchTemplate?: ec2.ILaunchTemplate;
  public abstract readonly launchTemplateVersion?: string;
  public abstract readonly batchJobQueue?: batch.IJobQueue;
  public abstract readonly batchJobDefinition?: batch.IJobDefinition;
  public abstract readonly batchMultiNodeJobQueue?: batch.IJobQueue;
  public abstract readonly batchMultiNodeJobDefinition?: batch.IJobDefinition;
  public abstract readonly connections: ec2.Connections;
  public abstract readonly secretsKey?: kms.IKey;

  /**
   * Lets `grantee` read (and list) the prefixes every environment shares:
   * `cached-datasets/`, `runtime/python-env/` and `runtime/scripts/`, with
   * `kms:Decrypt` on the bucket's key when it has one.
   *
   * @param grantee the principal, for example a data pipeline's role
   */
  public grantReadShared(grantee: iam.IGrantable): iam.Grant {
    return this.grants().grantReadShared(grantee);
  }

  /**
   * Lets `grantee` put and delete objects (and abort multipart uploads) under
   * the shared prefixes, with `kms:GenerateDataKey` and `kms:Decrypt` on the
   * bucket's key when it has one. It grants no read or list: add
   * `grantReadShared` for tools such as `aws s3 sync` that list first.
   *
   * @param grantee the principal that uploads datasets or the runtime, for example a CI role
   */
  public grantWriteShared(grantee: iam.IGrantable): iam.Grant {
    return this.grants().grantWriteShared(grantee);
  }

  /**
   * Lets `grantee` read, write, delete and list under `{environmentName}/`, as
   * the training instances may, with `kms:Decrypt` and `kms:GenerateDataKey` on
   * the bucket's key when it has one.
   *
   * @param grantee the principal, for example an evaluation job's role
   */
  public grantReadWriteEnvironment(grantee: iam.IGrantable): iam.Grant {
    return this.grants().grantReadWriteEnvironment(grantee);
  }

  /**
   * Lets `grantee` submit AWS Batch jobs to the foundation's job queues (single-node and,
   * when there is one, multi-node) with their job definitions only (by name or any
   * revision), tag them at submission, and describe, list, cancel and terminate jobs:
   * what `TrainingBatchQueue.grantSubmit` grants, for a foundation defined here or
   * imported. It acknowledges no cdk-nag finding on the grantee.
   *
   * @param grantee the principal, for example a launcher's role
   * @throws when the foundation has no Batch queue
   * @throws when the grantee has no policy this app can change (a role imported with `mutable: false`, an account principal): these resources have no resource policy to hold the grant instead
   */
  public grantSubmitBatchJob(grantee: iam.IGrantable): iam.Grant {
    if (!this.batchJobQueue || !this.batchJobDefinition) {
      throw new Error(`grantSubmitBatchJob: the foundation of '${this.environmentName}' has no Batch queue; create it with the batch ` +
        'prop, or import it with fromEnvironment(..., { batch: true })');
    }
    // The names, not the ARNs: a defined job definition's ARN names one revision, and the grant covers all of them.
    const queues = [this.batchJobQueue, this.batchMultiNodeJobQueue].filter((q): q is batch.IJobQueue => q !== undefined);
    const definitions = [this.batchJobDefinition, this.batchMultiNodeJobDefinition].filter((d): d is batch.IJobDefinition => d !== undefined);
    return grantBatchSubmit('grantSubmitBatchJob', this, grantee, queues.map(q => q.jobQueueArn), definitions.map(d => d.jobDefinitionName));
  }

  /**
   * Lets `grantee` launch and manage training runs with `chronos-training` (the launcher; docs/RUNS.md):
   * `ec2:RunInstances` from this foundation's launch template only (`ec2:LaunchTemplate`), in its VPC's subnets
   * (`ec2:Vpc`) and its security group, of instances and volumes tagged at launch with this project, environment,
   * `ManagedBy=chronos-training` and a `MaxLifetimeHours` tag (`aws:RequestTag`); tags at launch only
   * (`ec2:CreateTags` with `ec2:CreateAction=RunInstances`); `iam:CreateServiceLinkedRole` of the Spot role
   * `AWSServiceRoleForEC2Spot` only (a first spot launch in an account needs it); `iam:PassRole` of the instance role
   * to EC2 only; reading the foundation's SSM parameters, and its exports (`cloudformation:ListExports`, for a
   * foundation without parameters); read and write of `{environmentName}/runs/` and `{environmentName}/code/`, read of
   * `{environmentName}/logs/` and `{environmentName}/checkpoints/`; the EC2 describes the launcher reads;
   * `ec2:DescribeSpotPriceHistory` and `pricing:GetProducts` (the estimated run cost `status` prints); and
   * `ec2:TerminateInstances` of this project's and environment's instances in this region (`stop --now`).
   *
   * @param grantee the principal that runs `chronos-training`, for example a developers' role or a CI role
   * @throws if the foundation has no launch template (`launchTemplate: false`)
   * @throws when the grantee has no policy this app can change (a role imported with `mutable: false`, an account principal): these resources have no resource policy to hold the grant instead
   */
  public grantLaunch(grantee: iam.IGrantable): iam.Grant {
    if (!this.launchTemplate) {
      throw new Error(`grantLaunch: the foundation of '${this.environmentName}' has no launch template (launchTemplate: false), and ` +
        'chronos-training launches only from it: deploy the foundation with its launch template (the default), or import it ' +
        'with fromEnvironment(..., { launchTemplate: true })');
    }
    return grantStatements('grantLaunch', grantee, launchStatements(this, {
      environmentName: this.environmentName,
      launchTemplate: this.launchTemplate,
      role: this.role,
      vpc: this.vpc,
      securityGroup: this.securityGroup,
      bucketGrants: this.grants(),
    }));
  }

  /**
   * Lets `grantee` store, replace and delete this environment's run secrets, the SSM SecureString parameters
   * `/chronos-training/{environmentName}/secrets/*` (`chronos-training secret set NAME`: `ssm:PutParameter`,
   * `ssm:DeleteParameter`), and list them (`chronos-training secret list`: `ssm:DescribeParameters`, which has no
   * resource-level permissions and is granted on `*`; it returns names and metadata, never values). With the
   * foundation's `secretsKey`, also `kms:Encrypt` with that key through SSM for those parameters; with the AWS
   * managed key `aws/ssm` (the default) its key policy already allows it. `grantLaunch` lets its grantee check that a
   * run's secrets exist (`ssm:GetParameter`), which reads no value without `kms:Decrypt`.
   *
   * @param grantee the principal that stores secrets, for example a developers' role
   * @throws when the grantee has no policy this app can change (a role imported with `mutable: false`, an account principal)
   */
  public grantManageSecrets(grantee: iam.IGrantable): iam.Grant {
    const parameters = secretsParameterArn(this, this.environmentName);
    const scoped = secretsParameterStatement(this, this.environmentName);
    const statements = [
      new iam.PolicyStatement({ actions: ['ssm:PutParameter', 'ssm:DeleteParameter'], resources: [scoped.resource], conditions: scoped.conditions }),
      new iam.PolicyStatement({ actions: ['ssm:DescribeParameters'], resources: ['*'] }),
    ];
    if (this.secretsKey) {
      statements.push(new iam.PolicyStatement({
        actions: ['kms:Encrypt'],
        resources: [this.secretsKey.keyArn],
        conditions: {
          StringEquals: { 'kms:ViaService': `ssm.${Stack.of(this).region}.${Stack.of(this).urlSuffix}` },
          StringLike: { 'kms:EncryptionContext:PARAMETER_ARN': parameters },
        },
      }));
    }
    return grantStatements('grantManageSecrets', grantee, statements);
  }

  private grants(): TrainingBucketGrants {
    return new TrainingBucketGrants(this.bucket, this.environmentName);
  }
}
