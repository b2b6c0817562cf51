import { ArnFormat, Aws, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { IConstruct } from 'constructs';
import { terminateStatements } from '../compute/instance-access';
import { assertPrincipalGranted } from '../private/grants';
import { BATCH_MANAGED_BY, PROJECT_TAG_VALUE, TAG_ENVIRONMENT, TAG_MANAGED_BY, TAG_MAX_LIFETIME_HOURS, TAG_PROJECT } from '../private/tags';
import { TrainingBucketGrants } from '../storage/training-bucket-grants';

/*
 * What `chronos-training` (the launcher, docs/RUNS.md) does with AWS, as one grant: the foundation's parameters and
 * exports, the run's S3 prefixes, RunInstances from the foundation's launch template only, in its VPC and security
 * group, with the launcher's tags, tags at launch only, the Spot service-linked role, passing the instance role to
 * EC2 only, the describes it reads, and terminating this project's and environment's instances.
 *
 * References:
 * - Service Authorization Reference, "Actions, resources, and condition keys for Amazon EC2"
 *   (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html): `ec2:LaunchTemplate`
 *   on RunInstances' instance, volume, network-interface, security-group, subnet, image, key-pair and launch-template
 *   resources (not on spot-instances-request), `ec2:CreateAction`, `ec2:ResourceTag/${TagKey}`, `ec2:Region`.
 * - EC2 User Guide, "Example policies to control access the Amazon EC2 API", "Launch instances (RunInstances)": tags
 *   required with `aws:RequestTag/${TagKey}` on the instance and volume resources, in a statement of their own. The
 *   Service Authorization Reference gives `aws:RequestTag/${TagKey}` the String type, and the IAM User Guide ("IAM JSON
 *   policy elements: Condition operators") says the operator depends on the key's type: no numeric cap of a tag.
 * - EC2 User Guide, "Service-linked role for Spot Instance requests": `iam:CreateServiceLinkedRole` for
 *   `AWSServiceRoleForEC2Spot`, with `iam:AWSServiceName` (Service Authorization Reference, IAM).
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
 * - `status` estimates a run's cost (docs/RUNS.md, "What a run cost") from `ec2:DescribeSpotPriceHistory` and the
 *   Price List API's `pricing:GetProducts`; the Service Authorization Reference lists no resource type and no
 *   condition key for either (Amazon EC2; AWS Price List), so `*`. Both read public prices, nothing of the account.
 */

/** The describes the launcher calls; none supports resource-level permissions. */
export const DESCRIBE_ACTIONS = [
  'ec2:DescribeInstances', 'ec2:DescribeSubnets', 'ec2:DescribeLaunchTemplates', 'ec2:DescribeLaunchTemplateVersions',
  'ec2:DescribeInstanceTypeOfferings', 'ec2:DescribeInstanceTypes',
];

/** The tags the launcher sets on what it launches, which RunInstances requires; `MaxLifetimeHours` must be present. */
const LAUNCHER_MANAGED_BY = 'chronos-training';

/** What a launch from one foundation's template needs to know of the foundation. */
export interface LaunchTarget {
  readonly environmentName: string;
  readonly launchTemplate: ec2.ILaunchTemplate;
  readonly role: iam.IRole;
  readonly vpc: ec2.IVpc;
  readonly securityGroup: ec2.ISecurityGroup;
}

/**
 * The statements of RunInstances from the foundation's template (tagged, in its VPC and security group, spot, the
 * Spot service-linked role, tags at launch, the instance role passed to EC2), of reading the foundation's parameters
 * and exports, and of resolving the default image's public parameter: what every launcher of the foundation needs,
 * `grantLaunch`'s grantee and the run keeper alike (one definition: src/keeper/training-run-keeper.ts uses it too).
 */
export function launchFromTemplateStatements(scope: IConstruct, props: LaunchTarget): {
  run: iam.PolicyStatement[];
  foundation: iam.PolicyStatement[];
  image: iam.PolicyStatement;
} {
  const stack = Stack.of(scope);
  const env = props.environmentName;
  const ec2Arn = (resource: string, resourceName: string, account?: string) =>
    stack.formatArn({ service: 'ec2', resource, resourceName, arnFormat: ArnFormat.SLASH_RESOURCE_NAME, ...(account !== undefined ? { account } : {}) });
  const templateArn = ec2Arn('launch-template', props.launchTemplate.launchTemplateId!);
  const fromTheTemplate = { ArnLike: { 'ec2:LaunchTemplate': templateArn } };
  const parameterArn = (name: string) =>
    stack.formatArn({ service: 'ssm', resource: 'parameter', resourceName: name, arnFormat: ArnFormat.SLASH_RESOURCE_NAME });
  const run = [
    // The instance and its volumes carry the launcher's tags: this project and environment (what the run reaper and
    // `stop --now` find), ManagedBy=chronos-training (so no launch can pass for a Batch instance, which the reaper
    // skips) and a MaxLifetimeHours tag. IAM cannot cap the tag's value: aws:RequestTag is a String key, so the reaper
    // never trusts a tag above the foundation's lifetime plus the margin instead (docs/DESIGN.md).
    new iam.PolicyStatement({
      sid: 'RunTaggedInstancesFromTheLaunchTemplate',
      actions: ['ec2:RunInstances'],
      resources: ['instance', 'volume'].map(type => ec2Arn(type, '*')),
      conditions: {
        ...fromTheTemplate,
        StringEquals: {
          [`aws:RequestTag/${TAG_PROJECT}`]: PROJECT_TAG_VALUE,
          [`aws:RequestTag/${TAG_ENVIRONMENT}`]: env,
          [`aws:RequestTag/${TAG_MANAGED_BY}`]: LAUNCHER_MANAGED_BY,
        },
        Null: { [`aws:RequestTag/${TAG_MAX_LIFETIME_HOURS}`]: 'false' },
      },
    }),
    // Only the foundation's network: its VPC's subnets (the public ones, in a network the foundation creates) and
    // the interfaces in them, and its security group.
    new iam.PolicyStatement({
      sid: 'RunInstancesInTheFoundationVpc',
      actions: ['ec2:RunInstances'],
      resources: ['subnet', 'network-interface'].map(type => ec2Arn(type, '*')),
      conditions: { ...fromTheTemplate, ArnEquals: { 'ec2:Vpc': ec2Arn('vpc', props.vpc.vpcId) } },
    }),
    new iam.PolicyStatement({
      sid: 'RunInstancesFromTheLaunchTemplate',
      actions: ['ec2:RunInstances'],
      resources: [ec2Arn('security-group', props.securityGroup.securityGroupId), ec2Arn('key-pair', '*'), ec2Arn('image', '*', ''), templateArn],
      conditions: fromTheTemplate,
    }),
    // A spot launch creates a spot-instances-request, which ec2:LaunchTemplate does not describe.
    new iam.PolicyStatement({
      sid: 'RunSpotInstances',
      actions: ['ec2:RunInstances'],
      resources: [ec2Arn('spot-instances-request', '*')],
    }),
    // The first spot launch of an account needs the Spot service-linked role, which only the console creates for
    // you: an API caller must make sure it exists (EC2 User Guide, "Service-linked role for Spot Instance requests").
    new iam.PolicyStatement({
      sid: 'CreateTheSpotServiceLinkedRole',
      actions: ['iam:CreateServiceLinkedRole'],
      resources: [`arn:${Aws.PARTITION}:iam::*:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot`],
      conditions: { StringEquals: { 'iam:AWSServiceName': 'spot.amazonaws.com' } },
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
  ];
  const foundation = [
    new iam.PolicyStatement({
      sid: 'ReadTheFoundationParameters',
      actions: ['ssm:GetParameter', 'ssm:GetParameters', 'ssm:GetParametersByPath'],
      resources: [parameterArn(`chronos-training/${env}`), parameterArn(`chronos-training/${env}/*`)],
    }),
    // A foundation deployed with ssmParameters: false is read from its exports; ListExports has no resource-level
    // permissions (Service Authorization Reference, AWS CloudFormation).
    new iam.PolicyStatement({
      sid: 'ReadTheFoundationExports',
      actions: ['cloudformation:ListExports'],
      resources: ['*'],
    }),
  ];
  const image = new iam.PolicyStatement({
    sid: 'ResolveTheDeepLearningAmiParameters',
    actions: ['ssm:GetParameters'],
    resources: [stack.formatArn({
      service: 'ssm', account: '*', resource: 'parameter', resourceName: 'aws/service/deeplearning/ami/*', arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    })],
  });
  return { run, foundation, image };
}

/** The statements of the launcher's grant on one foundation. */
export function launchStatements(scope: IConstruct, props: LaunchTarget & { bucketGrants: TrainingBucketGrants }): iam.PolicyStatement[] {
  const [describeInstances, terminate] = terminateStatements(scope, props.environmentName, 'TerminateProjectEnvironmentInstances', {
    // The instances of a Batch compute environment are AWS Batch's to scale in.
    StringNotEquals: { [`ec2:ResourceTag/${TAG_MANAGED_BY}`]: BATCH_MANAGED_BY },
  });
  const { run, foundation, image } = launchFromTemplateStatements(scope, props);
  return [
    ...run,
    ...foundation,
    image,
    new iam.PolicyStatement({
      sid: 'ReadPricesForTheRunCost',
      actions: ['ec2:DescribeSpotPriceHistory', 'pricing:GetProducts'],
      resources: ['*'],
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

/**
 * Adds statements to a grantee's principal policy, as one `iam.Grant`; an error naming `method` when the
 * grantee has no policy this app can change (EC2 launch templates have no resource policy to take them).
 */
export function grantStatements(method: string, grantee: iam.IGrantable, statements: iam.PolicyStatement[]): iam.Grant {
  const grant = statements
    .map(st => iam.Grant.addToPrincipal({ grantee, actions: st.actions, resourceArns: st.resources, conditions: st.conditions }))
    .reduce((all, g) => all.combine(g));
  return assertPrincipalGranted(method, grantee, grant, 'the launch template, instances, subnets and parameters');
}
