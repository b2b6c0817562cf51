import { ArnFormat, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { IConstruct } from 'constructs';
import { terminateStatements } from '../compute/instance-access';
import { BATCH_MANAGED_BY, TAG_MANAGED_BY } from '../private/tags';
import { TrainingBucketGrants } from '../storage/training-bucket-grants';

/*
 * What `chronos-training` (the launcher, docs/RUNS.md) does with AWS, as one grant: the foundation's parameters, the
 * run's S3 prefixes, RunInstances from the foundation's launch template only, tags at launch only, passing the
 * instance role to EC2 only, the describes it reads, and terminating this project's and environment's instances.
 *
 * References:
 * - Service Authorization Reference, "Actions, resources, and condition keys for Amazon EC2"
 *   (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html): `ec2:LaunchTemplate`
 *   on RunInstances' instance, volume, network-interface, security-group, subnet, image, key-pair and launch-template
 *   resources (not on spot-instances-request), `ec2:CreateAction`, `ec2:ResourceTag/${TagKey}`, `ec2:Region`.
 * - EC2 User Guide, "Grant permission to tag Amazon EC2 resources during creation"
 *   (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/supported-iam-actions-tagging.html): tags in RunInstances need
 *   `ec2:CreateTags`, narrowed to launches with `ec2:CreateAction`.
 * - IAM User Guide, "Grant a user permissions to pass a role to an AWS service"
 *   (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html): `iam:PassRole` with `iam:PassedToService`.
 * - EC2 User Guide, "IAM permissions required for Amazon EC2 launch templates"
 *   (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/permissions-for-launch-templates.html): whoever launches from
 *   a template needs the permissions for the resources the template specifies.
 * - EC2 User Guide, "Use a Systems Manager parameter instead of an AMI ID"
 *   (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/using-systems-manager-parameter-to-find-AMI.html): an ImageId
 *   `resolve:ssm:NAME` is resolved at launch, and the caller needs `ssm:GetParameters` on the parameter. The launcher's
 *   default image is the Deep Learning AMI's public parameter (AWS Deep Learning AMIs Developer Guide, "Finding the ID
 *   of a DLAMI": `/aws/service/deeplearning/ami/$architecture/$ami_type/latest/ami-id`); a public parameter's ARN has
 *   no account (`arn:aws:ssm:us-east-1::parameter/aws/service/...`), matched here by an account wildcard, which reaches
 *   no account's parameter (names starting with "aws" are reserved). The image itself is one of the resources of
 *   RunInstancesFromTheLaunchTemplate.
 */

/** The describes the launcher calls; none supports resource-level permissions. */
const DESCRIBE_ACTIONS = [
  'ec2:DescribeInstances', 'ec2:DescribeSubnets', 'ec2:DescribeLaunchTemplates', 'ec2:DescribeLaunchTemplateVersions',
  'ec2:DescribeInstanceTypeOfferings', 'ec2:DescribeInstanceTypes',
];

/** What a launch creates or uses, by ARN resource type (the image is an AWS or other account's: no account in its ARN). */
const LAUNCH_RESOURCE_TYPES = ['instance', 'volume', 'network-interface', 'security-group', 'subnet', 'key-pair'];

/** The statements of the launcher's grant on one foundation. */
export function launchStatements(scope: IConstruct, props: {
  environmentName: string;
  launchTemplate: ec2.ILaunchTemplate;
  role: iam.IRole;
  bucketGrants: TrainingBucketGrants;
}): iam.PolicyStatement[] {
  const stack = Stack.of(scope);
  const env = props.environmentName;
  const ec2Arn = (resource: string, resourceName: string, account?: string) =>
    stack.formatArn({ service: 'ec2', resource, resourceName, arnFormat: ArnFormat.SLASH_RESOURCE_NAME, ...(account !== undefined ? { account } : {}) });
  const templateArn = ec2Arn('launch-template', props.launchTemplate.launchTemplateId!);
  const parameterArn = (name: string) =>
    stack.formatArn({ service: 'ssm', resource: 'parameter', resourceName: name, arnFormat: ArnFormat.SLASH_RESOURCE_NAME });
  const [describeInstances, terminate] = terminateStatements(scope, env, 'TerminateProjectEnvironmentInstances', {
    // The instances of a Batch compute environment are AWS Batch's to scale in.
    StringNotEquals: { [`ec2:ResourceTag/${TAG_MANAGED_BY}`]: BATCH_MANAGED_BY },
  });
  return [
    new iam.PolicyStatement({
      sid: 'RunInstancesFromTheLaunchTemplate',
      actions: ['ec2:RunInstances'],
      resources: [...LAUNCH_RESOURCE_TYPES.map(type => ec2Arn(type, '*')), ec2Arn('image', '*', ''), templateArn],
      conditions: { ArnLike: { 'ec2:LaunchTemplate': templateArn } },
    }),
    // A spot launch creates a spot-instances-request, which ec2:LaunchTemplate does not describe.
    new iam.PolicyStatement({
      sid: 'RunSpotInstances',
      actions: ['ec2:RunInstances'],
      resources: [ec2Arn('spot-instances-request', '*')],
    }),
    new iam.PolicyStatement({
      sid: 'TagOnLaunch',
      actions: ['ec2:CreateTags'],
      resources: ['instance', 'volume', 'spot-instances-request'].map(type => ec2Arn(type, '*')),
      conditions: { StringEquals: { 'ec2:CreateAction': 'RunInstances' } },
    }),
    new iam.PolicyStatement({
      sid: 'PassTheInstanceRole',
      actions: ['iam:PassRole'],
      resources: [props.role.roleArn],
      conditions: { StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } },
    }),
    new iam.PolicyStatement({
      sid: 'ReadTheFoundationParameters',
      actions: ['ssm:GetParameter', 'ssm:GetParameters', 'ssm:GetParametersByPath'],
      resources: [parameterArn(`chronos-training/${env}`), parameterArn(`chronos-training/${env}/*`)],
    }),
    new iam.PolicyStatement({
      sid: 'ResolveTheDeepLearningAmiParameters',
      actions: ['ssm:GetParameters'],
      resources: [stack.formatArn({
        service: 'ssm', account: '*', resource: 'parameter', resourceName: 'aws/service/deeplearning/ami/*', arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
      })],
    }),
    new iam.PolicyStatement({
      sid: 'Describe',
      actions: [...new Set([...describeInstances.actions, ...DESCRIBE_ACTIONS])],
      resources: ['*'],
    }),
    terminate,
    ...props.bucketGrants.launcherStatements(),
  ];
}

/** Adds statements to a grantee's principal policy, as one `iam.Grant`. */
export function grantStatements(grantee: iam.IGrantable, statements: iam.PolicyStatement[]): iam.Grant {
  return statements
    .map(st => iam.Grant.addToPrincipal({ grantee, actions: st.actions, resourceArns: st.resources, conditions: st.conditions }))
    .reduce((all, g) => all.combine(g));
}
