import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { SHARED_ACCESS_PREFIXES } from '../private/prefixes';

/*
 * The prefix-scoped S3 statements shared by the instance role's inline policies
 * and the TrainingBucket grants, so that both grant exactly the same access.
 */

const READ_ACTIONS = ['s3:GetObject'];
const WRITE_ACTIONS = ['s3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'];

/** Get on the objects under `prefixes`, and ListBucket limited to those prefixes by `s3:prefix`. */
export function prefixStatements(bucket: s3.IBucket, prefixes: string[], write: boolean, sid: string): iam.PolicyStatement[] {
  return [
    new iam.PolicyStatement({
      sid: `${write ? 'ReadWrite' : 'Read'}${sid}`,
      actions: write ? [...READ_ACTIONS, ...WRITE_ACTIONS] : READ_ACTIONS,
      resources: prefixes.map(p => bucket.arnForObjects(`${p}*`)),
    }),
    new iam.PolicyStatement({
      sid: `List${sid}`,
      actions: ['s3:ListBucket'],
      resources: [bucket.bucketArn],
      // ListBucket is a bucket-level action: scope it by the listed prefix.
      conditions: { StringLike: { 's3:prefix': prefixes.map(p => `${p}*`) } },
    }),
  ];
}

/** Read of the shared prefixes (`cached-datasets/`, `runtime/python-env/`, `runtime/scripts/`). */
export function sharedReadStatements(bucket: s3.IBucket): iam.PolicyStatement[] {
  return prefixStatements(bucket, SHARED_ACCESS_PREFIXES, false, 'SharedDatasetsAndRuntime');
}

/** Write and delete (no read, no list) under the shared prefixes. */
export function sharedWriteStatements(bucket: s3.IBucket): iam.PolicyStatement[] {
  return [new iam.PolicyStatement({
    actions: WRITE_ACTIONS,
    resources: SHARED_ACCESS_PREFIXES.map(p => bucket.arnForObjects(`${p}*`)),
  })];
}

/** Read, write and delete under one environment's own prefix. */
export function environmentStatements(bucket: s3.IBucket, environmentName: string): iam.PolicyStatement[] {
  return prefixStatements(bucket, [`${environmentName}/`], true, 'EnvironmentPrefix');
}

/** Adds statements to a grantee's principal policy, as one `iam.Grant`. */
export function grantStatements(grantee: iam.IGrantable, statements: iam.PolicyStatement[]): iam.Grant {
  return statements
    .map(st => iam.Grant.addToPrincipal({
      grantee,
      actions: st.actions,
      resourceArns: st.resources,
      conditions: st.conditions,
    }))
    .reduce((all, grant) => all.combine(grant));
}
