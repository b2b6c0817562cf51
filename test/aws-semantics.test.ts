/*
 * Rules of real AWS that the moto emulator does not enforce, one `describe` per rule, each
 * naming the AWS document it comes from. A template moto accepts can still be malformed,
 * undeployable or undestroyable on a real account: these tests pin what the rule requires.
 */
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { ChronosTrainingStack, TrainingBudget, TrainingLaunchTemplate, TrainingLaunchTemplateOptions } from '../src';
import { onlyResource, TEST_ENV } from './helpers';

// "Either FilterExpression and Metrics or CostFilters and CostTypes, not both or a different combination":
// "CreateBudget", AWS Billing and Cost Management API Reference,
// https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_budgets_CreateBudget.html
describe('CreateBudget: a FilterExpression goes with Metrics, never with CostFilters or CostTypes', () => {
  function budgetData(filterByEnvironment?: boolean): any {
    const stack = new Stack(new App(), 'TestStack', { env: TEST_ENV });
    new TrainingBudget(stack, 'Budget', {
      environmentName: 'dev', monthlyLimitUsd: 50, notificationEmails: ['ml-team@example.com'], filterByEnvironment,
    });
    return onlyResource(Template.fromStack(stack), 'AWS::Budgets::Budget').Properties.Budget;
  }

  // Without Metrics the budget is created but malformed: its history fails with "Selected metrics
  // cannot be null" (hashicorp/terraform-provider-aws#46866).
  test.each([true, false])('the filter expression comes with the UnblendedCost metric and no CostFilters or CostTypes (filterByEnvironment %p)', filterByEnvironment => {
    const data = budgetData(filterByEnvironment);
    expect(data.FilterExpression).toBeDefined();
    expect(data.Metrics).toEqual(['UnblendedCost']);
    expect(data).not.toHaveProperty('CostFilters');
    expect(data).not.toHaveProperty('CostTypes');
  });

  // The Budgets TagValues reference does not settle the key's format; the Cost Explorer Expression
  // reference (https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_Expression.html)
  // filters a tag with its plain key. `user:` belongs to the legacy CostFilters TagKeyValue syntax.
  test('tag filters use the plain tag keys, not user:-prefixed ones', () => {
    const keys = budgetData().FilterExpression.And.map((e: any) => e.Tags.Key);
    expect(keys).toEqual(['Project', 'Environment']);
  });
});

// "In a container environment, when IMDSv2 is required, we recommend setting the hop limit to 2"; unset, the
// hop limit is 2 only for AMIs registered with ImdsSupport v2.0, 1 for the others: "Configure instance metadata
// options for new instances", Amazon EC2 User Guide,
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-IMDS-new-instances.html
describe('EC2 IMDS: with IMDSv2 required, containers need an HttpPutResponseHopLimit of 2', () => {
  function metadataOptions(options: TrainingLaunchTemplateOptions = {}): any {
    const stack = new Stack(new App(), 'TestStack');
    const vpc = new ec2.Vpc(stack, 'Vpc', { natGateways: 0, maxAzs: 1, restrictDefaultSecurityGroup: false });
    const role = new iam.Role(stack, 'Role', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
    new TrainingLaunchTemplate(stack, 'LaunchTemplate', {
      environmentName: 'dev',
      costCenter: 'train',
      instanceProfile: new iam.InstanceProfile(stack, 'Profile', { role }),
      securityGroup: new ec2.SecurityGroup(stack, 'Sg', { vpc }),
      ...options,
    });
    return onlyResource(Template.fromStack(stack), 'AWS::EC2::LaunchTemplate').Properties.LaunchTemplateData.MetadataOptions;
  }

  test('the launch template requires IMDSv2 with a hop limit of 2, whatever the AMI', () => {
    expect(metadataOptions()).toEqual({ HttpTokens: 'required', HttpPutResponseHopLimit: 2 });
  });

  test("the foundation's default launch template has it too", () => {
    const stack = new ChronosTrainingStack(new App(), 'ChronosTraining-dev-Stack', { env: TEST_ENV });
    const data = onlyResource(Template.fromStack(stack), 'AWS::EC2::LaunchTemplate').Properties.LaunchTemplateData;
    expect(data.MetadataOptions).toEqual({ HttpTokens: 'required', HttpPutResponseHopLimit: 2 });
  });

  test('httpPutResponseHopLimit: 1 keeps the token on the host', () => {
    expect(metadataOptions({ httpPutResponseHopLimit: 1 })).toEqual({ HttpTokens: 'required', HttpPutResponseHopLimit: 1 });
  });

  // The range: "Integers from 1 to 64" (LaunchTemplateInstanceMetadataOptionsRequest, Amazon EC2 API Reference,
  // https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_LaunchTemplateInstanceMetadataOptionsRequest.html).
  test.each([0, 65, 1.5, -1])('rejects httpPutResponseHopLimit %p, naming the prop, the value and the rule', value => {
    expect(() => metadataOptions({ httpPutResponseHopLimit: value }))
      .toThrow(`httpPutResponseHopLimit is ${value}; it must be a whole number of hops from 1 to 64`);
  });

  test.each([1, 64])('accepts httpPutResponseHopLimit %p', value => {
    expect(metadataOptions({ httpPutResponseHopLimit: value }).HttpPutResponseHopLimit).toBe(value);
  });
});
