import { ArnFormat, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { IConstruct } from 'constructs';
import { inRegion } from './batch-roles';
import { assertPrincipalGranted } from '../private/grants';

/*
 * The job-submission grant, in one place: `TrainingBatchQueue.grantSubmit` and the
 * foundation's `grantSubmitBatchJob` (defined here or imported) grant exactly this.
 * Internal: not exported from the library's index.
 */

/**
 * `arn:*:batch:*:*:{type}/{name}`, the IAM resource of the grants: wildcard partition, region and account,
 * with an `aws:RequestedRegion` condition beside it. A stack-scoped ARN would hold `<AWS::Partition>`, and
 * aws-cdk-lib's `Validations.acknowledge` rejects a finding ID with more than one `::`, so the grantee's owner
 * could not acknowledge its cdk-nag finding by ID. Batch has no resource policies: no other account's queue
 * or job definition is reachable.
 */
function batchResource(type: string, name: string): string {
  return `arn:*:batch:*:*:${type}/${name}`;
}

/**
 * A job definition's ARN without its revision, which SubmitJob resolves to the latest
 * ACTIVE revision ("jobDefinition ... the ARN for the job definition, with or without the
 * revision ... If the revision is not specified, then the latest active revision is used":
 * SubmitJob, AWS Batch API Reference, https://docs.aws.amazon.com/batch/latest/APIReference/API_SubmitJob.html).
 * CloudFormation deregisters the previous revision on every update, so a stored ARN with a
 * revision goes stale (cloudformation-coverage-roadmap #1761).
 */
export function jobDefinitionArnWithoutRevision(scope: IConstruct, name: string): string {
  return Stack.of(scope).formatArn({ service: 'batch', resource: 'job-definition', resourceName: name, arnFormat: ArnFormat.SLASH_RESOURCE_NAME });
}

/** The IAM resources of job definitions: by name (the latest revision) and every revision (`name:*`). */
export function jobDefinitionResources(names: string[]): string[] {
  return names.flatMap(name => [batchResource('job-definition', name), batchResource('job-definition', `${name}:*`)]);
}

/**
 * Lets `grantee` submit jobs to `queueArns` with the job definitions `definitionNames`
 * (by name or any revision), tag them at submission, and describe, list, cancel and
 * terminate jobs. Why each resource (Service Authorization Reference, AWS Batch,
 * https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsbatch.html):
 *
 * - `batch:SubmitJob` authorizes on the job queue, the job definition and the new job
 *   (`job/*`: its ID is random);
 * - `batch:TagResource` is what a `SubmitJob` with `tags` (or `propagateTags`) also needs,
 *   on the same three; the reference defines no `batch:CreateAction`-style key that would
 *   limit it to tagging at creation, so it also lets the grantee tag these queues and job
 *   definitions, and jobs, directly (nothing else);
 * - `CancelJob`/`TerminateJob` authorize on the job only (a job ARN names no queue);
 * - `DescribeJobs`, `ListJobs`, `DescribeJobQueues` and `DescribeJobDefinitions` support no
 *   resource-level permissions (`*`).
 *
 * It acknowledges no cdk-nag finding on the grantee: a grant adds permissions, and the
 * grantee's policy belongs to the user (docs/COMPLIANCE.md says why each wildcard is needed).
 * Batch has no resource policies: a grantee without a policy this app can change is an error
 * naming `method`.
 */
export function grantBatchSubmit(method: string, scope: IConstruct, grantee: iam.IGrantable, queueArns: string[],
  definitionNames: string[]): iam.Grant {
  const job = batchResource('job', '*');
  const conditions = inRegion(scope);
  const targets = [...queueArns, ...jobDefinitionResources(definitionNames), job];
  const grant = iam.Grant.addToPrincipal({ grantee, actions: ['batch:SubmitJob', 'batch:TagResource'], resourceArns: targets, conditions })
    .combine(iam.Grant.addToPrincipal({ grantee, actions: ['batch:CancelJob', 'batch:TerminateJob'], resourceArns: [job], conditions }))
    .combine(iam.Grant.addToPrincipal({
      grantee, actions: ['batch:DescribeJobs', 'batch:ListJobs', 'batch:DescribeJobQueues', 'batch:DescribeJobDefinitions'], resourceArns: ['*'],
    }));
  return assertPrincipalGranted(method, grantee, grant, 'AWS Batch job queues and job definitions');
}
