import { Annotations, Duration, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { TrainingBucketGrants } from './training-bucket-grants';
import { acknowledgeNag, skipCheckov } from '../private/compliance';
import { bucketName } from '../private/naming';
import { SHARED_ACCESS_PREFIXES, SHARED_PREFIXES } from '../private/prefixes';
import { validateEnvironment, wholeDays } from '../private/validation';

/**
 * Lifecycle, retention and logging options of a `TrainingBucket`, without the
 * environment name (the foundation supplies it).
 */
export interface TrainingBucketOptions {
  /**
   * How long training logs under `{environmentName}/logs/` (and the VPC flow
   * logs of the foundation's `flowLogs` option) are kept. Whole days, at least 1.
   *
   * @default Duration.days(14)
   */
  readonly logRetention?: Duration;

  /**
   * When objects under `{environmentName}/` (model artifacts and checkpoints) move to
   * S3 Standard-IA. Whole days; S3 requires at least 30.
   *
   * @default Duration.days(30)
   */
  readonly artifactTransition?: Duration;

  /**
   * When objects under `{environmentName}/` expire. Whole days, later than
   * `artifactTransition`.
   *
   * @default Duration.days(90)
   */
  readonly artifactExpiration?: Duration;

  /**
   * When the parts of multipart uploads that were never completed (an
   * interrupted checkpoint upload, say) are deleted, anywhere in the bucket.
   * Such parts are invisible in listings but billed as storage. Whole days, at least 1.
   *
   * @default Duration.days(7)
   */
  readonly incompleteUploadExpiration?: Duration;

  /**
   * What happens to the bucket when it leaves the stack or the stack is deleted.
   * `RemovalPolicy.DESTROY` deletes it only when it is empty.
   *
   * @default RemovalPolicy.RETAIN - deleting the stack never deletes training data
   */
  readonly removalPolicy?: RemovalPolicy;

  /**
   * Empty the bucket (every object and version) when it is deleted, so that
   * `RemovalPolicy.DESTROY` can delete it: CloudFormation cannot delete a bucket
   * that still holds objects, and the stack deletion ends in DELETE_FAILED. Only
   * with `removalPolicy: RemovalPolicy.DESTROY`, for environments whose data may
   * be lost (integration tests, sandboxes). It adds aws-cdk-lib's
   * `Custom::S3AutoDeleteObjects` custom resource: a Lambda function and its role
   * (free while idle), and a bucket policy statement letting that role list and
   * delete objects.
   *
   * @default false
   */
  readonly autoDeleteObjects?: boolean;

  /**
   * A separate bucket to receive S3 server access logs of the training bucket.
   * It must be another bucket: access logs delivered into the logged bucket
   * itself produce records of their own delivery, so the bucket would never be idle.
   *
   * @default - no server access logs
   */
  readonly serverAccessLogsBucket?: s3.IBucket;

  /**
   * The key prefix of server access logs in `serverAccessLogsBucket`.
   *
   * @default - 's3-access-logs/' followed by the bucket name and '/'
   */
  readonly serverAccessLogsPrefix?: string;

  /**
   * Makes overwritten and deleted objects recoverable for this long: the bucket
   * is versioned, noncurrent versions expire after this duration (whole days),
   * and delete markers left without versions are removed. A bad
   * `aws s3 rm --recursive` or an overwritten checkpoint can then be restored
   * from its previous version. Cost: the bytes overwritten or deleted in the last
   * `recoverableOutputs` stay billed at S3 Standard rates (docs/IDLE-COSTS.md, "Prices");
   * objects expired by the lifecycle rules are kept that much longer.
   *
   * @default - unversioned: overwritten and deleted objects are gone at once
   */
  readonly recoverableOutputs?: Duration;
}

/**
 * Properties of a `TrainingBucket`.
 */
export interface TrainingBucketProps extends TrainingBucketOptions {
  /**
   * The environment name (for example `dev`): part of the bucket name, and the
   * prefix `{environmentName}/` its lifecycle rules manage.
   */
  readonly environmentName: string;
}

/**
 * The training bucket: `chronos-training-{environment}-{account}-{region}`,
 * SSE-S3 encrypted, all public access blocked, TLS enforced, unversioned unless
 * `recoverableOutputs` is set, with lifecycle rules that expire logs and age out
 * artifacts of one environment.
 *
 * Shared prefixes (`cached-datasets/`, `runtime/`) have no lifecycle rule that
 * expires or transitions current objects. The `grant*` methods give other principals
 * (a data pipeline, a CI job) access to one group of prefixes, not the whole bucket.
 */
export class TrainingBucket extends Construct {
  /** The S3 bucket: this construct's `node.defaultChild` (its own `node.defaultChild` is the `CfnBucket`). */
  public readonly bucket: s3.IBucket;

  /** The environment whose prefix (`{environmentName}/`) the lifecycle rules manage. */
  public readonly environmentName: string;

  /** How long logs are kept before they expire. */
  public readonly logRetention: Duration;

  private readonly concreteBucket: s3.Bucket;
  private readonly grants: TrainingBucketGrants;
  private readonly ruleIds = new Set<string>();

  /**
   * @param scope the parent construct
   * @param id the construct id (part of every logical ID below it: keep it stable)
   * @param props the properties; see the props interface for defaults
   */
  constructor(scope: Construct, id: string, props: TrainingBucketProps) {
    super(scope, id);

    const environment = validateEnvironment(props.environmentName);
    const logDays = wholeDays('logRetention', props.logRetention ?? Duration.days(14), 1,
      'S3 expires objects at least one day after creation');
    const transitionDays = wholeDays('artifactTransition', props.artifactTransition ?? Duration.days(30), 30,
      'S3 moves objects to STANDARD_IA no earlier than 30 days after creation');
    const expirationDays = wholeDays('artifactExpiration', props.artifactExpiration ?? Duration.days(90), 1,
      'S3 expires objects at least one day after creation');
    const uploadDays = wholeDays('incompleteUploadExpiration', props.incompleteUploadExpiration ?? Duration.days(7), 1,
      'S3 aborts incomplete multipart uploads at least one day after they start');
    const recoverableDays = props.recoverableOutputs === undefined ? undefined
      : wholeDays('recoverableOutputs', props.recoverableOutputs, 1, 'S3 expires noncurrent versions at least one day after they become noncurrent');
    if (expirationDays <= transitionDays) {
      throw new Error(
        `artifactExpiration (${expirationDays} days) must be later than artifactTransition (${transitionDays} days); ` +
        'S3 rejects a rule whose expiration is not after its transition',
      );
    }
    if (logDays > expirationDays) {
      Annotations.of(this).addWarningV2('@chronos/training-infra:logRetentionExceedsArtifacts',
        `logRetention (${logDays} days) is longer than artifactExpiration (${expirationDays} days): ` +
        `logs under ${environment}/logs/ also match the artifact rule and expire after ${expirationDays} days`);
    }
    if (props.serverAccessLogsPrefix !== undefined && props.serverAccessLogsBucket === undefined) {
      throw new Error(`serverAccessLogsPrefix '${props.serverAccessLogsPrefix}' needs serverAccessLogsBucket: ` +
        'access logs are delivered only to a separate bucket');
    }

    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const autoDeleteObjects = props.autoDeleteObjects ?? false;
    if (autoDeleteObjects && removalPolicy !== RemovalPolicy.DESTROY) {
      throw new Error(`autoDeleteObjects is true but removalPolicy is ${removalPolicy}; autoDeleteObjects empties the bucket ` +
        'only so that RemovalPolicy.DESTROY can delete it: set removalPolicy to RemovalPolicy.DESTROY, or leave autoDeleteObjects out');
    }

    const stack = Stack.of(this);
    const name = bucketName(environment, stack.account, stack.region);
    this.environmentName = environment;
    this.logRetention = Duration.days(logDays);
    const bucket = new s3.Bucket(this, 'Resource', {
      bucketName: name,
      versioned: recoverableDays !== undefined,
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      removalPolicy,
      // "For Amazon S3 buckets, you must delete all objects in the bucket for deletion to succeed"
      // ("DeletionPolicy attribute", AWS CloudFormation User Guide,
      // https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-deletionpolicy.html).
      autoDeleteObjects,
      serverAccessLogsBucket: props.serverAccessLogsBucket,
      serverAccessLogsPrefix: props.serverAccessLogsBucket ? (props.serverAccessLogsPrefix ?? `s3-access-logs/${name}/`) : undefined,
      lifecycleRules: [
        {
          id: 'TrainingLogs',
          enabled: true,
          prefix: `${environment}/logs/`,
          expiration: Duration.days(logDays),
        },
        {
          id: 'ModelArtifacts',
          enabled: true,
          prefix: `${environment}/`,
          expiration: Duration.days(expirationDays),
          transitions: [
            {
              storageClass: s3.StorageClass.INFREQUENT_ACCESS,
              transitionAfter: Duration.days(transitionDays),
            },
          ],
        },
        {
          // Deletes only unfinished upload parts, never an object.
          id: 'AbortIncompleteMultipartUploads',
          enabled: true,
          abortIncompleteMultipartUploadAfter: Duration.days(uploadDays),
        },
      ],
    });
    this.concreteBucket = bucket;
    this.grants = new TrainingBucketGrants(bucket, environment);
    this.bucket = bucket;
    ['TrainingLogs', 'ModelArtifacts', 'AbortIncompleteMultipartUploads'].forEach(rule => this.ruleIds.add(rule));
    if (recoverableDays !== undefined) {
      // Bucket-wide, so the cost of recoverability stays bounded everywhere; it removes only
      // previous versions (which exist only because of versioning), never a current object.
      bucket.addLifecycleRule({
        id: 'RecoverableOutputs',
        enabled: true,
        noncurrentVersionExpiration: Duration.days(recoverableDays),
        expiredObjectDeleteMarker: true,
      });
      this.ruleIds.add('RecoverableOutputs');
    }

    const cfnBucket = bucket.node.defaultChild as s3.CfnBucket;
    if (recoverableDays === undefined) {
      skipCheckov(cfnBucket, 'CKV_AWS_21',
        'Unversioned by default: checkpoints are rewritten often and lifecycle rules, not versions, bound retention; ' +
        'versions of every overwritten checkpoint would be billed storage (opt in with recoverableOutputs)');
    }
    if (!props.serverAccessLogsBucket) {
      const reason = 'Server access logs are opt-in (serverAccessLogsBucket): they need a second bucket, since logs delivered ' +
        'into this bucket would log their own delivery and the bucket would never be idle';
      acknowledgeNag(cfnBucket, 'AwsSolutions-S1', reason);
      skipCheckov(cfnBucket, 'CKV_AWS_18', reason);
    }
  }

  /**
   * Lets `grantee` read (and list) the prefixes every environment shares:
   * `cached-datasets/`, `runtime/python-env/` and `runtime/scripts/`, with
   * `kms:Decrypt` on the bucket's key when it has one.
   *
   * @param grantee the principal, for example a data pipeline's role
   */
  public grantReadShared(grantee: iam.IGrantable): iam.Grant {
    return this.grants.grantReadShared(grantee);
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
    return this.grants.grantWriteShared(grantee);
  }

  /**
   * Lets `grantee` read, write, delete and list under `{environmentName}/`, as
   * the training instances may, with `kms:Decrypt` and `kms:GenerateDataKey` on
   * the bucket's key when it has one.
   *
   * @param grantee the principal, for example an evaluation job's role
   */
  public grantReadWriteEnvironment(grantee: iam.IGrantable): iam.Grant {
    return this.grants.grantReadWriteEnvironment(grantee);
  }

  /**
   * Adds a lifecycle rule to the bucket, as `s3.Bucket.addLifecycleRule` does,
   * after checking at synthesis what S3 would only reject at deploy time, or
   * what would lose shared data:
   *
   * - the rule's `id` is unique in the bucket (S3 rejects duplicates);
   * - its durations are whole days: at least 1 for expirations and for aborting
   *   incomplete uploads (a 0-day expiration would be dropped, leaving a rule
   *   without an action), at least 30 for transitions to Standard-IA or One
   *   Zone-IA, at least 0 for the other transitions;
   * - a rule that expires or transitions objects has a literal prefix ending in
   *   '/' that neither contains nor lies inside `cached-datasets/` or `runtime/`.
   *
   * @param rule the rule; `id` is required
   */
  public addLifecycleRule(rule: s3.LifecycleRule): void {
    if (rule.id === undefined || Token.isUnresolved(rule.id) || rule.id.length === 0) {
      throw new Error('addLifecycleRule: rule.id must be a literal, non-empty ID (S3 identifies rules by it)');
    }
    if (this.ruleIds.has(rule.id)) {
      throw new Error(`addLifecycleRule: rule.id '${rule.id}' is already used in this bucket ` +
        `(${[...this.ruleIds].join(', ')}); S3 rejects duplicate rule IDs at deploy time`);
    }
    const removesObjects = rule.expiration !== undefined || rule.expirationDate !== undefined
      || (rule.transitions?.length ?? 0) > 0 || rule.noncurrentVersionExpiration !== undefined
      || (rule.noncurrentVersionTransitions?.length ?? 0) > 0;
    if (removesObjects) {
      const prefix = rule.prefix;
      const overlaps = prefix === undefined ? SHARED_PREFIXES
        : SHARED_PREFIXES.filter(p => prefix.startsWith(p) || p.startsWith(prefix));
      if (prefix === undefined || Token.isUnresolved(prefix) || !prefix.endsWith('/') || prefix.startsWith('/')
        || overlaps.length > 0) {
        throw new Error(`addLifecycleRule: rule '${rule.id}' prefix ${prefix === undefined ? '(none: the whole bucket)' : `'${prefix}'`} ` +
          "is invalid for a rule that expires or transitions objects: it must be a literal key prefix ending in '/' " +
          `that neither contains nor lies inside ${SHARED_PREFIXES.map(p => `'${p}'`).join(' or ')}, which hold shared data ` +
          `(${SHARED_ACCESS_PREFIXES.join(', ')})`);
      }
    }
    checkRuleDurations(rule);
    this.ruleIds.add(rule.id);
    this.concreteBucket.addLifecycleRule(rule);
  }
}

/*
 * What S3 accepts in a lifecycle rule, in days (Amazon S3 API Reference: "LifecycleExpiration", Days: "The value must
 * be a non-zero positive integer", https://docs.aws.amazon.com/AmazonS3/latest/API/API_LifecycleExpiration.html;
 * "NoncurrentVersionExpiration", NoncurrentDays: the same,
 * https://docs.aws.amazon.com/AmazonS3/latest/API/API_NoncurrentVersionExpiration.html; "Transition", Days: "0 or
 * positive integers" for INTELLIGENT_TIERING, GLACIER_IR, GLACIER and DEEP_ARCHIVE, "positive integers greater than
 * 30" for STANDARD_IA and ONEZONE_IA, https://docs.aws.amazon.com/AmazonS3/latest/API/API_Transition.html).
 * aws-cdk-lib renders a 0-day expiration as no expiration at all, and a 0-day noncurrent expiration as is.
 */
const INFREQUENT_ACCESS_CLASSES = [s3.StorageClass.INFREQUENT_ACCESS, s3.StorageClass.ONE_ZONE_INFREQUENT_ACCESS].map(c => c.value);

function checkRuleDurations(rule: s3.LifecycleRule): void {
  const label = (field: string) => `addLifecycleRule: rule '${rule.id}' ${field}`;
  const positive = 'S3 requires a positive whole number of days';
  if (rule.expiration !== undefined) {
    wholeDays(label('expiration'), rule.expiration, 1, positive);
  }
  if (rule.noncurrentVersionExpiration !== undefined) {
    wholeDays(label('noncurrentVersionExpiration'), rule.noncurrentVersionExpiration, 1, positive);
  }
  if (rule.abortIncompleteMultipartUploadAfter !== undefined) {
    wholeDays(label('abortIncompleteMultipartUploadAfter'), rule.abortIncompleteMultipartUploadAfter, 1, positive);
  }
  const transitions: Array<[string, s3.StorageClass, Duration | undefined]> = [
    ...(rule.transitions ?? []).map((t, i): [string, s3.StorageClass, Duration | undefined] =>
      [`transitions[${i}].transitionAfter`, t.storageClass, t.transitionAfter]),
    ...(rule.noncurrentVersionTransitions ?? []).map((t, i): [string, s3.StorageClass, Duration | undefined] =>
      [`noncurrentVersionTransitions[${i}].transitionAfter`, t.storageClass, t.transitionAfter]),
  ];
  for (const [field, storageClass, after] of transitions) {
    if (after === undefined) {
      continue;
    }
    const infrequent = INFREQUENT_ACCESS_CLASSES.includes(storageClass.value);
    wholeDays(label(field), after, infrequent ? 30 : 0,
      infrequent ? `S3 moves objects to ${storageClass.value} no earlier than 30 days after creation` : 'S3 takes 0 or more whole days');
  }
}
