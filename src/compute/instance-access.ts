import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { IConstruct } from 'constructs';
import { acknowledgeNag } from '../private/compliance';
import { ANY_INSTANCE_ARN } from '../private/naming';
import { PROJECT_TAG_VALUE, TAG_ENVIRONMENT, TAG_PROJECT } from '../private/tags';

/*
 * The EC2 statements shared by the instance role and the run reaper's role, so
 * that both scope termination to the same tags and region.
 */

/**
 * DescribeInstances on `*`, and TerminateInstances on instances of this project
 * and environment in the stack's region, narrowed further by `extraConditions`.
 */
export function terminateStatements(scope: IConstruct, environmentName: string, terminateSid: string,
  extraConditions: Record<string, unknown> = {}): iam.PolicyStatement[] {
  return [
    // DescribeInstances supports no resource-level permissions or tag
    // conditions: a conditioned statement would never allow it.
    new iam.PolicyStatement({ sid: 'DescribeInstances', actions: ['ec2:DescribeInstances'], resources: ['*'] }),
    new iam.PolicyStatement({
      sid: terminateSid,
      actions: ['ec2:TerminateInstances'],
      // Any partition, region and account in the ARN: cdk-nag findings whose text holds
      // more than one '::' (as `<AWS::Partition>` does) cannot be acknowledged through
      // aws-cdk-lib's Validations. EC2 has no cross-account access, and ec2:Region below
      // keeps the statement to the stack's region.
      resources: [ANY_INSTANCE_ARN],
      conditions: {
        StringEquals: {
          'ec2:Region': Stack.of(scope).region,
          [`ec2:ResourceTag/${TAG_PROJECT}`]: PROJECT_TAG_VALUE,
          [`ec2:ResourceTag/${TAG_ENVIRONMENT}`]: environmentName,
        },
        ...extraConditions,
      },
    }),
  ];
}

/**
 * Acknowledges the two cdk-nag IAM5 findings of `terminateStatements` on a role.
 * `alsoOnStar` names the role's other actions on `*`, so that the one
 * `Resource::*` finding gets one reason covering all of them (an acknowledgment
 * of the same ID twice would keep only the last reason).
 */
export function acknowledgeTerminateFindings(cfnRole: iam.CfnRole, narrowedBy: string, alsoOnStar?: string): void {
  acknowledgeNag(cfnRole, 'AwsSolutions-IAM5[Resource::*]',
    'ec2:DescribeInstances supports no resource-level permissions: AWS requires Resource "*"' + (alsoOnStar ? `; ${alsoOnStar}` : ''));
  acknowledgeNag(cfnRole, `AwsSolutions-IAM5[Resource::${ANY_INSTANCE_ARN}]`,
    `ec2:TerminateInstances on instance ARNs narrowed by conditions: ${narrowedBy}`);
}
