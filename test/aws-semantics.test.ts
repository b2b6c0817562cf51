/*
 * Rules of real AWS that the moto emulator does not enforce, one `describe` per rule, each
 * naming the AWS document it comes from. A template moto accepts can still be malformed,
 * undeployable or undestroyable on a real account: these tests pin what the rule requires.
 */
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { TrainingBudget } from '../src';
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
