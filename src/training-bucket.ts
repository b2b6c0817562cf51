import { Annotations, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { bucketName, DEFAULT_ENVIRONMENT, validateEnvironment, wholeDays } from './conventions';

/**
 * Lifecycle and retention options of a `TrainingBucket`, without the environment
 * (the foundation supplies it).
 */
export interface TrainingBucketOptions {
  /**
   * How long training logs under `{environment}/logs/` are kept.
   *
   * @default Duration.days(14)
   */
  readonly logRetention?: Duration;

  /**
   * When objects under `{environment}/` (model artifacts and checkpoints) move to
   * S3 Standard-IA. S3 requires at least 30 days.
   *
   * @default Duration.days(30)
   */
  readonly artifactTransition?: Duration;

  /**
   * When objects under `{environment}/` expire. Must be later than
   * `artifactTransition`.
   *
   * @default Duration.days(90)
   */
  readonly artifactExpiration?: Duration;

  /**
   * What happens to the bucket when it leaves the stack or the stack is deleted.
   * `RemovalPolicy.DESTROY` deletes it only when it is empty.
   *
   * @default RemovalPolicy.RETAIN - deleting the stack never deletes training data
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * Properties of a `TrainingBucket`.
 */
export interface TrainingBucketProps extends TrainingBucketOptions {
  /**
   * The environment name: part of the bucket name and of the lifecycle prefixes.
   *
   * @default 'dev'
   */
  readonly environment?: string;
}

/**
 * The training bucket: `chronos-training-{environment}-{account}-{region}`,
 * SSE-S3 encrypted, all public access blocked, TLS enforced, unversioned, with
 * lifecycle rules that expire logs and age out artifacts of one environment.
 *
 * Shared prefixes (`cached-datasets/`, `runtime/`) have no lifecycle rule.
 */
export class TrainingBucket extends Construct {
  /** The S3 bucket. */
  public readonly bucket: s3.IBucket;

  /** The environment whose prefixes the lifecycle rules manage. */
  public readonly environment: string;

  /**
   * @param scope the parent construct
   * @param id the construct id (part of every logical ID below it: keep it stable)
   * @param props the properties; see the props interface for defaults
   */
  constructor(scope: Construct, id: string, props: TrainingBucketProps = {}) {
    super(scope, id);

    const environment = validateEnvironment(props.environment ?? DEFAULT_ENVIRONMENT);
    const logDays = wholeDays('logRetention', props.logRetention ?? Duration.days(14), 1,
      'S3 expires objects at least one day after creation');
    const transitionDays = wholeDays('artifactTransition', props.artifactTransition ?? Duration.days(30), 30,
      'S3 moves objects to STANDARD_IA no earlier than 30 days after creation');
    const expirationDays = wholeDays('artifactExpiration', props.artifactExpiration ?? Duration.days(90), 1,
      'S3 expires objects at least one day after creation');
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

    const stack = Stack.of(this);
    this.environment = environment;
    this.bucket = new s3.Bucket(this, 'Bucket', {
      bucketName: bucketName(environment, stack.account, stack.region),
      versioned: false,
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
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
      ],
    });
  }
}
