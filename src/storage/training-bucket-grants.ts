import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { environmentPrefix, SHARED_ACCESS_PREFIXES } from '../private/prefixes';

/*
 * The one implementation of the training bucket's prefix-scoped access, as
 * aws-cdk-lib's BucketGrants serves a Bucket and an imported bucket alike. The
 * instance role's inline policies, TrainingBucket's grant methods and the
 * foundation's (defined or imported) are all built from it, so all grant
 * exactly the same actions.
 */

const READ_ACTIONS = ['s3:GetObject'];
const WRITE_ACTIONS = ['s3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'];

/*
 * What S3 asks of the caller on the bucket's KMS key, when it has one (SSE-KMS).
 * Amazon S3 User Guide, "Using server-side encryption with AWS KMS keys (SSE-KMS)"
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html):
 * downloading an object needs kms:Decrypt, uploading needs kms:GenerateDataKey;
 * "Multipart upload API and permissions"
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html#mpuAndPermissions):
 * a multipart upload needs kms:Decrypt as well, because S3 decrypts the data key
 * to encrypt each part. Narrower than aws-cdk-lib's bucket grants (which add
 * kms:Encrypt, kms:ReEncrypt* and kms:DescribeKey): S3 calls none of them for these actions.
 */
const KEY_READ_ACTIONS = ['kms:Decrypt'];
const KEY_WRITE_ACTIONS = ['kms:Decrypt', 'kms:GenerateDataKey'];

/**
 * The prefix-scoped grants of one environment on a training bucket, created
 * or imported: read of the shared prefixes, write of the shared prefixes, and
 * read-write of `{environmentName}/`, each with the KMS key permissions S3
 * needs when the bucket has an `encryptionKey`.
 */
export class TrainingBucketGrants {
  constructor(private readonly bucket: s3.IBucket, private readonly environmentName: string) {}

  /** Statements for read (and list) of the shared prefixes. */
  public readSharedStatements(): iam.PolicyStatement[] {
    return [...this.prefixStatements(SHARED_ACCESS_PREFIXES, false, 'SharedDatasetsAndRuntime'),
      ...this.keyStatements(KEY_READ_ACTIONS, 'KeyReadSharedDatasetsAndRuntime')];
  }

  /** Statements for put and delete (no read, no list) under the shared prefixes. */
  public writeSharedStatements(): iam.PolicyStatement[] {
    return [new iam.PolicyStatement({
      sid: 'WriteSharedDatasetsAndRuntime',
      actions: WRITE_ACTIONS,
      resources: SHARED_ACCESS_PREFIXES.map(p => this.bucket.arnForObjects(`${p}*`)),
    }), ...this.keyStatements(KEY_WRITE_ACTIONS, 'KeyWriteSharedDatasetsAndRuntime')];
  }

  /** Statements for read, write, delete and list under `{environmentName}/`. */
  public readWriteEnvironmentStatements(): iam.PolicyStatement[] {
    return [...this.prefixStatements([environmentPrefix(this.environmentName)], true, 'EnvironmentPrefix'),
      ...this.keyStatements(KEY_WRITE_ACTIONS, 'KeyReadWriteEnvironmentPrefix')];
  }

  /**
   * What the launcher (`chronos-training`, docs/RUNS.md) needs under `{environmentName}/`: read and write of the
   * runs' documents and the code (`runs/`, `code/`), read of the logs and checkpoints (`logs/`, `checkpoints/`), and
   * ListBucket of those four prefixes; no delete.
   */
  public launcherStatements(): iam.PolicyStatement[] {
    const env = environmentPrefix(this.environmentName);
    const readWrite = ['runs/', 'code/'].map(p => `${env}${p}`);
    const read = ['logs/', 'checkpoints/'].map(p => `${env}${p}`);
    return [
      new iam.PolicyStatement({
        sid: 'LauncherReadWriteRunsAndCode',
        actions: ['s3:GetObject', 's3:PutObject'],
        resources: readWrite.map(p => this.bucket.arnForObjects(`${p}*`)),
      }),
      new iam.PolicyStatement({
        sid: 'LauncherReadLogsAndCheckpoints',
        actions: READ_ACTIONS,
        resources: read.map(p => this.bucket.arnForObjects(`${p}*`)),
      }),
      new iam.PolicyStatement({
        sid: 'LauncherListRunsCodeLogsAndCheckpoints',
        actions: ['s3:ListBucket'],
        resources: [this.bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [...readWrite, ...read].map(p => `${p}*`) } },
      }),
      ...this.keyStatements(KEY_WRITE_ACTIONS, 'KeyLauncher'),
    ];
  }

  /** Read (and list) of the shared prefixes, as one grant. */
  public grantReadShared(grantee: iam.IGrantable): iam.Grant {
    return grant(grantee, this.readSharedStatements());
  }

  /** Put and delete under the shared prefixes, as one grant. */
  public grantWriteShared(grantee: iam.IGrantable): iam.Grant {
    return grant(grantee, this.writeSharedStatements());
  }

  /** Read, write, delete and list under `{environmentName}/`, as one grant. */
  public grantReadWriteEnvironment(grantee: iam.IGrantable): iam.Grant {
    return grant(grantee, this.readWriteEnvironmentStatements());
  }

  /** Get (and Put/Delete) on the objects under `prefixes`, and ListBucket limited to them by `s3:prefix`. */
  private prefixStatements(prefixes: string[], write: boolean, sid: string): iam.PolicyStatement[] {
    return [
      new iam.PolicyStatement({
        sid: `${write ? 'ReadWrite' : 'Read'}${sid}`,
        actions: write ? [...READ_ACTIONS, ...WRITE_ACTIONS] : READ_ACTIONS,
        resources: prefixes.map(p => this.bucket.arnForObjects(`${p}*`)),
      }),
      new iam.PolicyStatement({
        sid: `List${sid}`,
        actions: ['s3:ListBucket'],
        resources: [this.bucket.bucketArn],
        // ListBucket is a bucket-level action: scope it by the listed prefix.
        conditions: { StringLike: { 's3:prefix': prefixes.map(p => `${p}*`) } },
      }),
    ];
  }

  /** The KMS statement for the bucket's key; none for an SSE-S3 bucket. */
  private keyStatements(actions: string[], sid: string): iam.PolicyStatement[] {
    const key = this.bucket.encryptionKey;
    return key ? [new iam.PolicyStatement({ sid, actions, resources: [key.keyArn] })] : [];
  }
}

/**
 * Adds statements to a grantee's principal policy, as one `iam.Grant`. The key
 * statements go to the principal too: a key's default policy delegates to IAM in
 * its account, and a key that does not is its owner's to open.
 */
function grant(grantee: iam.IGrantable, statements: iam.PolicyStatement[]): iam.Grant {
  return statements
    .map(st => iam.Grant.addToPrincipal({
      grantee,
      actions: st.actions,
      resourceArns: st.resources,
      conditions: st.conditions,
    }))
    .reduce((all, g) => all.combine(g));
}
