import { Stack } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { acknowledgeTerminateFindings, terminateStatements } from './instance-access';
import { acknowledgeNag, nagResourceFinding, skipCheckov } from '../private/compliance';
import { instanceProfileName, regionForNames } from '../private/naming';
import { SHARED_ACCESS_PREFIXES } from '../private/prefixes';
import { secretsParameterArn, secretsParameterPrefix, secretsParameterStatement } from '../private/run-secrets';
import { BATCH_MANAGED_BY, TAG_MANAGED_BY } from '../private/tags';
import { validateEnvironment } from '../private/validation';
import { TrainingBucket } from '../storage/training-bucket';
import { TrainingBucketGrants } from '../storage/training-bucket-grants';

/**
 * Options of a `TrainingInstanceRole`, without the bucket and environment name
 * (the foundation supplies them).
 */
export interface TrainingInstanceRoleOptions {
  /**
   * Whether an instance may terminate only itself.
   *
   * When `true`, `ec2:TerminateInstances` is allowed only when the request is
   * signed with the instance's own role credentials (`ec2:SourceInstanceARN`)
   * for that same instance, and the instance is tagged `Project=Chronos-Training`
   * and `Environment={environmentName}`. When `false`, any instance with those two
   * tags may be terminated (for example by a supervisor instance).
   *
   * @default true
   */
  readonly terminateSelfOnly?: boolean;

  /**
   * Whether Session Manager may open a shell on the instance (`aws ssm
   * start-session --target i-...`), with no SSH key and no inbound port. Adds an
   * inline policy `SessionManager` with exactly the five actions the SSM Agent
   * needs for sessions: `ssm:UpdateInstanceInformation` and
   * `ssmmessages:CreateControlChannel`, `CreateDataChannel`,
   * `OpenControlChannel`, `OpenDataChannel` (narrower than the managed policy
   * `AmazonSSMManagedInstanceCore`: no Run Command, no parameters, no
   * inventory). The agent reaches the `ssm` and `ssmmessages` endpoints over
   * HTTPS through the public IP, so the egress security group needs no change
   * and no interface endpoint is created. Session logging to S3 or KMS-encrypted
   * sessions need more actions, which this option does not add.
   *
   * @default false
   */
  readonly sessionManager?: boolean;

  /**
   * The customer managed KMS key that encrypts the run secrets, the SSM SecureString parameters
   * `/chronos-training/{environmentName}/secrets/*`; store them with it: `chronos-training secret set NAME
   * --key-id KEY`. The role may `kms:Decrypt` with this key only
   * through SSM (`kms:ViaService`) and for those parameters only (`kms:EncryptionContext:PARAMETER_ARN`).
   * Without it, the parameters use the AWS managed key `aws/ssm`, whose key policy lets every principal of the
   * account that may read a parameter decrypt it: a customer key separates who may read the secrets.
   *
   * @default - the AWS managed key `aws/ssm`
   */
  readonly secretsKey?: kms.IKey;

  /**
   * ECR repositories the instances may pull images from (`--container`, or `container:` in chronos.yaml):
   * `repository.grantPull(role)`, that is `ecr:BatchCheckLayerAvailability`, `ecr:GetDownloadUrlForLayer` and
   * `ecr:BatchGetImage` on each repository, and `ecr:GetAuthorizationToken`, which has no resource-level
   * permissions and is granted on `*`.
   *
   * @default - none: only public images can be pulled
   */
  readonly containerRepositories?: ecr.IRepository[];
}

/**
 * Properties of a `TrainingInstanceRole`.
 */
export interface TrainingInstanceRoleProps extends TrainingInstanceRoleOptions {
  /**
   * The training bucket the instances read from and write to. When it is the
   * `bucket` of a `TrainingBucket`, its environment must be `environmentName`.
   */
  readonly bucket: s3.IBucket;

  /**
   * The environment name: the bucket prefix the role may write, the
   * `Environment` tag it may terminate, and the instance profile's name
   * (`ChronosTrainingInstanceProfile-{environmentName}`).
   */
  readonly environmentName: string;

  /**
   * Whether the instance profile's name carries the region,
   * `ChronosTrainingInstanceProfile-{environmentName}-{region}`: instance profile
   * names are account-wide, so the same environment in a second region needs it.
   * Needs a concrete region in the stack.
   *
   * @default false
   */
  readonly regionalNames?: boolean;
}

/**
 * The role and instance profile of a training instance, trusted by EC2, with
 * three inline policies, and a fourth with `sessionManager`:
 *
 * - `S3ReadAccess`: read (and list) `cached-datasets/`, `runtime/python-env/` and
 *   `runtime/scripts/`, shared by all environments;
 * - `S3WriteAccess`: read, write, delete (and list) `{environmentName}/` only;
 * - `EC2SelfManagement`: describe instances, and terminate only itself (or, with
 *   `terminateSelfOnly: false`, instances of this project and environment);
 * - `SessionManager`, only with `sessionManager: true`: the five actions a
 *   Session Manager shell needs;
 * - `ReadRunSecrets`: `ssm:GetParameter(s)` of `/chronos-training/{environmentName}/secrets/*`
 *   only, and `kms:Decrypt` of those parameters through SSM (the run agent reads a run's
 *   secrets at each attempt's start).
 *
 * With `containerRepositories`, it may also pull from those ECR repositories.
 *
 * It cannot create tags, run instances, pass roles or change the bucket.
 *
 * It is an `iam.IGrantable`: `otherBucket.grantRead(trainingRole)` adds to the role.
 */
export class TrainingInstanceRole extends Construct implements iam.IGrantable {
  /** The IAM role assumed by training instances: this construct's `node.defaultChild`. */
  public readonly role: iam.IRole;

  /** The instance profile `ChronosTrainingInstanceProfile-{environmentName}` that carries the role. */
  public readonly instanceProfile: iam.IInstanceProfile;

  /** The environment whose prefix the role may write and whose instances it may terminate. */
  public readonly environmentName: string;

  /** The principal to grant permissions to: the role. */
  public readonly grantPrincipal: iam.IPrincipal;

  /**
   * @param scope the parent construct
   * @param id the construct id (part of every logical ID below it: keep it stable)
   * @param props the properties; see the props interface for defaults
   */
  constructor(scope: Construct, id: string, props: TrainingInstanceRoleProps) {
    super(scope, id);
    const environment = validateEnvironment(props.environmentName);
    const bucket = props.bucket;
    // A bucket created by a TrainingBucket is that construct's child: its lifecycle rules manage one
    // environment's prefix, and a role of another environment would write where nothing expires.
    const owner = bucket.node.scope;
    if (owner instanceof TrainingBucket && owner.environmentName !== environment) {
      throw new Error(`TrainingInstanceRole ${this.node.path}: environmentName '${environment}' does not match the bucket's ` +
        `environment '${owner.environmentName}' (${owner.node.path}); a ${environment} role on the ${owner.environmentName} ` +
        'bucket would read and write the wrong prefixes');
    }
    const writePrefix = `${environment}/`;

    const grants = new TrainingBucketGrants(bucket, environment);
    const role = new iam.Role(this, 'Resource', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: `IAM role for Chronos Training instances (${environment})`,
      inlinePolicies: {
        S3ReadAccess: document(grants.readSharedStatements()),
        S3WriteAccess: document(grants.readWriteEnvironmentStatements()),
        EC2SelfManagement: document(terminateStatements(this, environment,
          props.terminateSelfOnly === false ? 'TerminateProjectEnvironmentInstances' : 'TerminateSelf',
          // ec2:SourceInstanceARN is set on requests signed with an instance's
          // role credentials; ${ec2:InstanceID} is the target instance.
          // A supervisor may terminate the environment's instances, but not those of a
          // TrainingBatchQueue's compute environments (same tags): AWS Batch owns their lifetime.
          props.terminateSelfOnly === false ? {
            StringNotEquals: { [`ec2:ResourceTag/${TAG_MANAGED_BY}`]: BATCH_MANAGED_BY },
          } : {
            ArnEquals: { 'ec2:SourceInstanceARN': instanceArn(this, '${ec2:InstanceID}') },
          })),
        ...(props.sessionManager ? { SessionManager: document([sessionManagerStatement()]) } : {}),
        ReadRunSecrets: document(readSecretsStatements(this, environment, props.secretsKey)),
      },
    });
    for (const repository of props.containerRepositories ?? []) {
      repository.grantPull(role);
    }

    // The remaining wildcards are object keys under one prefix, and instance ARNs
    // narrowed by tag and source-instance conditions; each is acknowledged by name.
    const cfnRole = role.node.defaultChild as iam.CfnRole;
    for (const prefix of SHARED_ACCESS_PREFIXES) {
      acknowledgeNag(cfnRole, `AwsSolutions-IAM5[${nagResourceFinding(this, bucket.arnForObjects(`${prefix}*`))}]`,
        `Read-only access to the objects under the shared '${prefix}' prefix, which every training run reads`);
    }
    acknowledgeNag(cfnRole, `AwsSolutions-IAM5[${nagResourceFinding(this, bucket.arnForObjects(`${writePrefix}*`))}]`,
      `Read-write access to the objects under this environment's own '${writePrefix}' prefix, where runs write outputs`);
    acknowledgeNag(cfnRole, `AwsSolutions-IAM5[${nagResourceFinding(this, secretsParameterStatement(this, environment).resource)}]`,
      `Read-only access to this environment's run secrets, the parameters under /${secretsParameterPrefix(environment)}`);
    if (!props.secretsKey) {
      acknowledgeNag(cfnRole, `AwsSolutions-IAM5[Resource::${ANY_KMS_KEY}]`,
        'kms:Decrypt of the AWS managed key aws/ssm, whose ARN is not known at synthesis, narrowed to calls through SSM ' +
        '(kms:ViaService) for this environment\'s run secrets (kms:EncryptionContext:PARAMETER_ARN)');
    }
    acknowledgeTerminateFindings(cfnRole, 'Project and Environment tags, and by default the calling instance itself ' +
      '(ec2:SourceInstanceARN)', props.sessionManager ? 'the four ssmmessages channel actions support no resource-level ' +
      'permissions either, and ssm:UpdateInstanceInformation is the SSM Agent\'s heartbeat, granted on "*" as in AWS\'s own ' +
      'Session Manager instance policies' : undefined);

    if (props.sessionManager) {
      skipCheckov(cfnRole, 'CKV_AWS_111',
        'ssm:UpdateInstanceInformation (access level Write) is the SSM Agent\'s heartbeat for Session Manager, opted into with ' +
        'sessionManager; granted on "*" as in AWS\'s own Session Manager instance policies. All other writes are prefix-scoped');
    }

    this.role = role;
    this.grantPrincipal = role;
    this.environmentName = environment;
    this.instanceProfile = new iam.InstanceProfile(this, 'InstanceProfile', {
      role,
      instanceProfileName: instanceProfileName(environment, regionForNames(this, props.regionalNames)),
    });
  }
}

// `minimize` set explicitly so the consumer's `@aws-cdk/aws-iam:minimizePolicies`
// flag cannot merge or reorder the statements.
function document(statements: iam.PolicyStatement[]): iam.PolicyDocument {
  return new iam.PolicyDocument({ statements, minimize: false });
}

/** The SSM Agent's actions for Session Manager shells, as in AWS's AWSCloud9SSMInstanceProfile policy. */
const SESSION_MANAGER_ACTIONS = [
  'ssm:UpdateInstanceInformation',
  'ssmmessages:CreateControlChannel',
  'ssmmessages:CreateDataChannel',
  'ssmmessages:OpenControlChannel',
  'ssmmessages:OpenDataChannel',
];

function sessionManagerStatement(): iam.PolicyStatement {
  // The ssmmessages actions have no resource types in the Service Authorization Reference, so only "*" matches them.
  return new iam.PolicyStatement({ sid: 'SessionManagerAgent', actions: SESSION_MANAGER_ACTIONS, resources: ['*'] });
}

/**
 * Any KMS key (the AWS managed key aws/ssm, whose ARN is not known at synthesis), for a statement narrowed by
 * kms:ViaService (this region's SSM) and kms:EncryptionContext:PARAMETER_ARN (this account's parameters).
 */
const ANY_KMS_KEY = 'arn:*:kms:*:*:key/*';

/*
 * Reading a SecureString parameter with decryption needs ssm:GetParameter on the parameter and kms:Decrypt on its key
 * (AWS Systems Manager User Guide, "Restricting decryption of SecureString parameter values"). Parameter Store calls
 * KMS with the encryption context PARAMETER_ARN = the parameter's ARN, and as SSM (kms:ViaService
 * ssm.{region}.amazonaws.com; AWS KMS Developer Guide, "kms:ViaService"), so the decrypt is narrowed to these
 * parameters. With the AWS managed key aws/ssm, its key policy already lets the account's principals decrypt through
 * SSM, and the key's ARN is not known at synthesis: the statement names any key of the account and region, with both
 * conditions.
 */
function readSecretsStatements(scope: Construct, environment: string, key?: kms.IKey): iam.PolicyStatement[] {
  const stack = Stack.of(scope);
  return [
    new iam.PolicyStatement({
      sid: 'ReadTheRunSecrets',
      actions: ['ssm:GetParameter', 'ssm:GetParameters'],
      resources: [secretsParameterStatement(scope, environment).resource],
      conditions: secretsParameterStatement(scope, environment).conditions,
    }),
    new iam.PolicyStatement({
      sid: 'DecryptTheRunSecrets',
      actions: ['kms:Decrypt'],
      resources: [key ? key.keyArn : ANY_KMS_KEY],
      conditions: {
        StringEquals: { 'kms:ViaService': `ssm.${stack.region}.${stack.urlSuffix}` },
        StringLike: { 'kms:EncryptionContext:PARAMETER_ARN': secretsParameterArn(scope, environment) },
      },
    }),
  ];
}

function instanceArn(scope: Construct, instanceId: string): string {
  return Stack.of(scope).formatArn({ service: 'ec2', resource: 'instance', resourceName: instanceId });
}
