import { Token, TokenComparison } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
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

/** The statements of one grant: on the bucket, and on its key when it has one. */
interface GrantStatements {
  readonly bucket: iam.PolicyStatement[];
  readonly key: iam.PolicyStatement[];
}

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
    return all(this.readShared());
  }

  /** Statements for put and delete (no read, no list) under the shared prefixes. */
  public writeSharedStatements(): iam.PolicyStatement[] {
    return all(this.writeShared());
  }

  /** Statements for read, write, delete and list under `{environmentName}/`. */
  public readWriteEnvironmentStatements(): iam.PolicyStatement[] {
    return all(this.readWriteEnvironment());
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

  /**
   * What the run keeper (src/keeper/) needs under `{environmentName}/`: read and write of the runs' documents
   * (`runs/`: spec, status, attempt records, the end claim), and ListBucket of that prefix only; no delete, no code,
   * logs or checkpoints.
   */
  public keeperStatements(): iam.PolicyStatement[] {
    const runs = `${environmentPrefix(this.environmentName)}runs/`;
    return [
      new iam.PolicyStatement({
        sid: 'KeeperReadWriteRuns',
        actions: ['s3:GetObject', 's3:PutObject'],
        resources: [this.bucket.arnForObjects(`${runs}*`)],
      }),
      new iam.PolicyStatement({
        sid: 'KeeperListRuns',
        actions: ['s3:ListBucket'],
        resources: [this.bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [`${runs}*`] } },
      }),
      ...this.keyStatements(KEY_WRITE_ACTIONS, 'KeyKeeper'),
    ];
  }

  /** Read (and list) of the shared prefixes, as one grant. */
  public grantReadShared(grantee: iam.IGrantable): iam.Grant {
    return this.grant('grantReadShared', grantee, this.readShared());
  }

  /** Put and delete under the shared prefixes, as one grant. */
  public grantWriteShared(grantee: iam.IGrantable): iam.Grant {
    return this.grant('grantWriteShared', grantee, this.writeShared());
  }

  /** Read, write, delete and list under `{environmentName}/`, as one grant. */
  public grantReadWriteEnvironment(grantee: iam.IGrantable): iam.Grant {
    return this.grant('grantReadWriteEnvironment', grantee, this.readWriteEnvironment());
  }

  private readShared(): GrantStatements {
    return {
      bucket: this.prefixStatements(SHARED_ACCESS_PREFIXES, false, 'SharedDatasetsAndRuntime'),
      key: this.keyStatements(KEY_READ_ACTIONS, 'KeyReadSharedDatasetsAndRuntime'),
    };
  }

  private writeShared(): GrantStatements {
    return {
      bucket: [new iam.PolicyStatement({
        sid: 'WriteSharedDatasetsAndRuntime',
        actions: WRITE_ACTIONS,
        resources: SHARED_ACCESS_PREFIXES.map(p => this.bucket.arnForObjects(`${p}*`)),
      })],
      key: this.keyStatements(KEY_WRITE_ACTIONS, 'KeyWriteSharedDatasetsAndRuntime'),
    };
  }

  private readWriteEnvironment(): GrantStatements {
    return {
      bucket: this.prefixStatements([environmentPrefix(this.environmentName)], true, 'EnvironmentPrefix'),
      key: this.keyStatements(KEY_WRITE_ACTIONS, 'KeyReadWriteEnvironmentPrefix'),
    };
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

  /**
   * Grants the statements as aws-cdk-lib's `Grant.addToPrincipalOrResource` does
   * for `Bucket.grant*`: to the principal's policy, and, when the principal is
   * not of the bucket's account (another account, a service), also in the
   * bucket's policy (and the key's, with `*` as the resource, as a key policy
   * names its key). In the bucket's account the key statements stay on the
   * principal: a key's default policy delegates to IAM in its account. Unlike
   * `addToPrincipalOrResource` the resource statements keep their conditions, so a ListBucket stays scoped to the prefixes; they carry no
   * Sid, which must be unique in a bucket policy. A bucket or key without a
   * policy this app can change (imported) makes such a grant an error, not a
   * grant that silently does nothing.
   */
  private grant(method: string, grantee: iam.IGrantable, statements: GrantStatements): iam.Grant {
    const onResource = (resource: s3.IBucket | kms.IKey, st: iam.PolicyStatement, selfArns?: string[]) => {
      const principal = iam.Grant.addToPrincipal({ grantee, actions: st.actions, resourceArns: st.resources, conditions: st.conditions });
      // The bucket's account decides for its key too: an imported key's ARN may name an account that an
      // environment-agnostic stack's cannot be compared with.
      if (principal.success && sameAccount(this.bucket, grantee)) {
        return principal;
      }
      const statement = new iam.PolicyStatement({
        actions: st.actions,
        resources: selfArns ?? st.resources,
        principals: [grantee.grantPrincipal],
        conditions: st.conditions,
      });
      // Grant.success is true for a resource statement even when the resource took none (an imported bucket or
      // key), so the resource's own answer, `statementAdded`, is recorded on the way through.
      let added = false;
      const recording: iam.IResourceWithPolicyV2 = {
        env: resource.env,
        addToResourcePolicy: (policyStatement: iam.PolicyStatement) => {
          const result = resource.addToResourcePolicy(policyStatement);
          added = result.statementAdded;
          return result;
        },
      };
      const onPolicy = iam.Grant.addStatementToResourcePolicy({
        grantee, actions: st.actions, resourceArns: st.resources, resource: recording, statement,
      });
      if (!added) {
        throw new Error(`${method}: only the policy of ${resource.node.path} could allow the grantee ` +
          `${grantee.grantPrincipal} (a principal of another account, a service principal, or one whose own policy this ` +
          'app cannot change), and an imported bucket or key has no policy this app can add to; grant in the app that ' +
          'owns the bucket, or add the statement to its policy there');
      }
      return principal.combine(onPolicy);
    };
    const key = this.bucket.encryptionKey;
    return [
      ...statements.bucket.map(st => onResource(this.bucket, st)),
      ...(key ? statements.key.map(st => onResource(key, st, ['*'])) : []),
    ].reduce((a, b) => a.combine(b));
  }
}

function all(statements: GrantStatements): iam.PolicyStatement[] {
  return [...statements.bucket, ...statements.key];
}

/** Whether the grantee's account is the resource's (both unresolved counts as the same), as aws-cdk-lib decides it. */
function sameAccount(resource: s3.IBucket, grantee: iam.IGrantable): boolean {
  const account = grantee.grantPrincipal.principalAccount;
  if (account === undefined) {
    return false;
  }
  const comparison = Token.compareStrings(resource.env.account, account);
  return comparison === TokenComparison.SAME || comparison === TokenComparison.BOTH_UNRESOLVED;
}
