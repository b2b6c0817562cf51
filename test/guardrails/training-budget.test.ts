import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { TrainingBudget, TrainingBudgetProps } from '../../src';
import { nagFindings, onlyResource, resourcesOf, TEST_ENV } from '../helpers';

function build(props: Partial<TrainingBudgetProps> = {}, env: typeof TEST_ENV | undefined = TEST_ENV) {
  const stack = new Stack(new App(), 'TestStack', { env });
  const budget = new TrainingBudget(stack, 'Budget', {
    environmentName: 'dev', monthlyLimitUsd: 50, notificationEmails: ['ml-team@example.com'], ...props,
  });
  return { stack, budget, template: Template.fromStack(stack) };
}

const LAUNCHERS = { roles: ['ChronosLauncher'], groups: ['ml-team'], users: ['alice'] };

describe('TrainingBudget', () => {
  test('a monthly cost budget in USD over the project and environment tags', () => {
    const budget = onlyResource(build().template, 'AWS::Budgets::Budget').Properties.Budget;
    expect(budget).toEqual({
      BudgetName: 'ChronosTraining-dev',
      BudgetType: 'COST',
      TimeUnit: 'MONTHLY',
      BudgetLimit: { Amount: 50, Unit: 'USD' },
      FilterExpression: {
        And: [
          { Tags: { Key: 'Project', Values: ['Chronos-Training'], MatchOptions: ['EQUALS'] } },
          { Tags: { Key: 'Environment', Values: ['dev'], MatchOptions: ['EQUALS'] } },
        ],
      },
      Metrics: ['UnblendedCost'],
    });
  });

  test('filterByEnvironment: false counts the whole project', () => {
    const budget = onlyResource(build({ filterByEnvironment: false }).template, 'AWS::Budgets::Budget').Properties.Budget;
    expect(budget.FilterExpression).toEqual({ Tags: { Key: 'Project', Values: ['Chronos-Training'], MatchOptions: ['EQUALS'] } });
  });

  test('notifies every address on actual costs over 80% and forecast costs over 100%', () => {
    const emails = ['a@example.com', 'b@example.org'];
    const notifications = onlyResource(build({ notificationEmails: emails }).template, 'AWS::Budgets::Budget').Properties.NotificationsWithSubscribers;
    const subscribers = emails.map(Address => ({ SubscriptionType: 'EMAIL', Address }));
    expect(notifications).toEqual([
      { Notification: { NotificationType: 'ACTUAL', ComparisonOperator: 'GREATER_THAN', Threshold: 80, ThresholdType: 'PERCENTAGE' }, Subscribers: subscribers },
      { Notification: { NotificationType: 'FORECASTED', ComparisonOperator: 'GREATER_THAN', Threshold: 100, ThresholdType: 'PERCENTAGE' }, Subscribers: subscribers },
    ]);
  });

  test('thresholds are props', () => {
    const notifications = onlyResource(build({ actualThresholdPercent: 50, forecastThresholdPercent: 90 }).template, 'AWS::Budgets::Budget')
      .Properties.NotificationsWithSubscribers;
    expect(notifications.map((n: any) => n.Notification.Threshold)).toEqual([50, 90]);
  });

  test('creates no action, policy or role unless asked', () => {
    const { template, budget } = build();
    expect(Object.values(template.toJSON().Resources).map((r: any) => r.Type)).toEqual(['AWS::Budgets::Budget']);
    expect(budget.denyRunInstancesPolicy).toBeUndefined();
    expect(budget.actionExecutionRole).toBeUndefined();
  });

  describe('with denyRunInstancesAtLimit', () => {
    test('a budget action at 100% of actual costs applies the deny policy to the named launchers, automatically', () => {
      const { template } = build({ denyRunInstancesAtLimit: LAUNCHERS });
      const resource = onlyResource(template, 'AWS::Budgets::BudgetsAction');
      expect(resource.DependsOn).toEqual([expect.stringMatching(/^Budget/)]);
      expect(resource.Properties).toEqual({
        BudgetName: 'ChronosTraining-dev',
        ActionType: 'APPLY_IAM_POLICY',
        ActionThreshold: { Type: 'PERCENTAGE', Value: 100 },
        NotificationType: 'ACTUAL',
        ApprovalModel: 'AUTOMATIC',
        ExecutionRoleArn: { 'Fn::GetAtt': [expect.stringMatching(/^BudgetActionExecutionRole/), 'Arn'] },
        Definition: {
          IamActionDefinition: {
            PolicyArn: { Ref: expect.stringMatching(/^BudgetDenyRunInstancesPolicy/) },
            Roles: ['ChronosLauncher'],
            Groups: ['ml-team'],
            Users: ['alice'],
          },
        },
        Subscribers: [{ Type: 'EMAIL', Address: 'ml-team@example.com' }],
      });
    });

    test('the policy denies ec2:RunInstances and allows nothing', () => {
      const policy = onlyResource(build({ denyRunInstancesAtLimit: LAUNCHERS }).template, 'AWS::IAM::ManagedPolicy');
      expect(policy.Properties.PolicyDocument.Statement).toEqual([
        { Sid: 'DenyRunInstancesOverBudget', Effect: 'Deny', Action: 'ec2:RunInstances', Resource: '*' },
      ]);
      expect(policy.Properties.Roles).toBeUndefined();
    });

    test('the execution role is trusted by AWS Budgets of this account and may attach only that policy to only the launchers', () => {
      const role = onlyResource(build({ denyRunInstancesAtLimit: LAUNCHERS }).template, 'AWS::IAM::Role').Properties;
      expect(role.AssumeRolePolicyDocument.Statement).toEqual([{
        Effect: 'Allow',
        Principal: { Service: 'budgets.amazonaws.com' },
        Action: 'sts:AssumeRole',
        Condition: { StringEquals: { 'aws:SourceAccount': '123456789012' } },
      }]);
      const [statement] = role.Policies[0].PolicyDocument.Statement;
      expect(statement.Action).toEqual([
        'iam:AttachRolePolicy', 'iam:DetachRolePolicy', 'iam:AttachGroupPolicy', 'iam:DetachGroupPolicy', 'iam:AttachUserPolicy', 'iam:DetachUserPolicy',
      ]);
      expect(statement.Resource).toEqual([
        { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::123456789012:role/ChronosLauncher']] },
        { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::123456789012:group/ml-team']] },
        { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::123456789012:user/alice']] },
      ]);
      expect(statement.Condition).toEqual({ ArnEquals: { 'iam:PolicyARN': { Ref: expect.stringMatching(/^BudgetDenyRunInstancesPolicy/) } } });
    });

    test('roles only: only role attachment actions', () => {
      const { template } = build({ denyRunInstancesAtLimit: { roles: ['ChronosLauncher'] } });
      const [statement] = onlyResource(template, 'AWS::IAM::Role').Properties.Policies[0].PolicyDocument.Statement;
      expect(statement.Action).toEqual(['iam:AttachRolePolicy', 'iam:DetachRolePolicy']);
      const definition = onlyResource(template, 'AWS::Budgets::BudgetsAction').Properties.Definition.IamActionDefinition;
      expect(Object.keys(definition).sort()).toEqual(['PolicyArn', 'Roles']);
    });

    test.each<[string, typeof TEST_ENV | undefined]>([['with', TEST_ENV], ['without', undefined]])(
      'cdk-nag reports nothing unacknowledged, %s a concrete environment', (_name, env) => {
        const { stack } = build({ denyRunInstancesAtLimit: LAUNCHERS }, env);
        expect(nagFindings(stack)).toEqual([]);
        expect(resourcesOf(Template.fromStack(stack), 'AWS::IAM::Role')).toHaveLength(1);
      });
  });

  test.each<[string, Partial<TrainingBudgetProps>, RegExp]>([
    ['a zero limit', { monthlyLimitUsd: 0 }, /monthlyLimitUsd is 0; it must be a positive number of US dollars/],
    ['a negative limit', { monthlyLimitUsd: -5 }, /monthlyLimitUsd is -5/],
    ['a NaN limit', { monthlyLimitUsd: NaN }, /monthlyLimitUsd is NaN/],
    ['no email', { notificationEmails: [] }, /notificationEmails is empty; give at least one address/],
    ['eleven emails', { notificationEmails: Array.from({ length: 11 }, (_, i) => `u${i}@example.com`) }, /notificationEmails has 11 addresses; AWS Budgets allows at most 10/],
    ['a malformed email', { notificationEmails: ['ml-team'] }, /notificationEmails contains 'ml-team', which is not an email address/],
    ['an email with a space', { notificationEmails: ['ml team@example.com'] }, /notificationEmails contains 'ml team@example.com'/],
    ['a zero threshold', { actualThresholdPercent: 0 }, /actualThresholdPercent is 0; it must be a percentage of the limit above 0 and at most 1000/],
    ['a huge forecast threshold', { forecastThresholdPercent: 5000 }, /forecastThresholdPercent is 5000/],
    ['no launcher', { denyRunInstancesAtLimit: {} }, /denyRunInstancesAtLimit names no role, group or user/],
    ['an empty role name', { denyRunInstancesAtLimit: { roles: [''] } }, /denyRunInstancesAtLimit.roles contains '', which is not an IAM name/],
    ['a user name with a slash', { denyRunInstancesAtLimit: { users: ['team/alice'] } }, /denyRunInstancesAtLimit.users contains 'team\/alice'/],
    ['a bad environment name', { environmentName: 'Dev' }, /environmentName 'Dev' is invalid/],
  ])('rejects %s', (_name, props, message) => {
    expect(() => build(props)).toThrow(message);
  });
});
