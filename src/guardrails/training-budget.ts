import { Stack, Token } from 'aws-cdk-lib';
import type * as budgets from 'aws-cdk-lib/aws-budgets';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { awsBudgets } from '../private/lazy';
import { budgetName, regionForNames } from '../private/naming';
import { PROJECT_TAG_VALUE, TAG_ENVIRONMENT, TAG_PROJECT } from '../private/tags';
import { isEmailAddress, validateEnvironment } from '../private/validation';

/**
 * IAM principals (in this account, by name) whose `ec2:RunInstances` a budget
 * action denies. At least one name in total.
 */
export interface BudgetLaunchers {
  /**
   * Names of roles that launch training instances.
   *
   * @default - none
   */
  readonly roles?: string[];

  /**
   * Names of groups whose users launch training instances.
   *
   * @default - none
   */
  readonly groups?: string[];

  /**
   * Names of users who launch training instances.
   *
   * @default - none
   */
  readonly users?: string[];
}

/**
 * Options of a `TrainingBudget` that a foundation user sets.
 */
export interface TrainingBudgetOptions {
  /** The monthly cost limit in US dollars. */
  readonly monthlyLimitUsd: number;

  /** Email addresses notified when a threshold is crossed (1 to 10). */
  readonly notificationEmails: string[];

  /**
   * Count only costs tagged with this environment (`Environment={environmentName}`)
   * besides `Project=Chronos-Training`; `false` counts every environment of the project.
   *
   * @default true
   */
  readonly filterByEnvironment?: boolean;

  /**
   * Notify when actual costs exceed this percentage of the limit.
   *
   * @default 80
   */
  readonly actualThresholdPercent?: number;

  /**
   * Notify when forecast costs exceed this percentage of the limit.
   *
   * @default 100
   */
  readonly forecastThresholdPercent?: number;

  /**
   * When actual costs reach 100% of the limit, attach a policy denying
   * `ec2:RunInstances` to these principals (automatically, no approval). It denies
   * new launches only: running instances keep running. Remove the policy (or
   * wait for the next month's reset) to launch again.
   *
   * @default - no action
   */
  readonly denyRunInstancesAtLimit?: BudgetLaunchers;
}

/**
 * Properties of a `TrainingBudget`.
 */
export interface TrainingBudgetProps extends TrainingBudgetOptions {
  /** The environment name: part of the budget name and, by default, its tag filter. */
  readonly environmentName: string;

  /**
   * Whether the budget's name carries the region,
   * `ChronosTraining-{environmentName}-{region}`, and the budget counts only
   * that region's costs: budget names are unique per account, and a budget of
   * each region would otherwise count both. Needs a concrete region in the stack.
   *
   * @default false - `ChronosTraining-{environmentName}`, over every region
   */
  readonly regionalNames?: boolean;
}

/**
 * A monthly AWS Budgets cost budget over the costs tagged
 * `Project=Chronos-Training` (and `Environment={environmentName}` by default),
 * with email notifications on actual and forecast costs, and optionally an
 * action that denies `ec2:RunInstances` to named launchers at 100%.
 *
 * Limits: Budgets data lags 8 to 12 hours, so it is a lagging backstop, not a
 * kill switch; the `Project` and `Environment` cost allocation tags must be
 * activated in the payer account (CloudFormation cannot do it), or the budget
 * sees nothing; a budget with notifications is free, an action-enabled budget is
 * free for about two per account, then billed per budget-day (rates: docs/IDLE-COSTS.md, "Prices").
 */
export class TrainingBudget extends Construct {
  /** The budget's name, `ChronosTraining-{environmentName}` (with `-{region}` when `regionalNames` is on). */
  public readonly budgetName: string;

  /** The budget. */
  public readonly budget: budgets.CfnBudget;

  /**
   * The policy the budget action attaches to the launchers.
   * Undefined without `denyRunInstancesAtLimit`.
   */
  public readonly denyRunInstancesPolicy?: iam.IManagedPolicy;

  /**
   * The role AWS Budgets assumes to attach that policy.
   * Undefined without `denyRunInstancesAtLimit`.
   */
  public readonly actionExecutionRole?: iam.IRole;

  /**
   * @param scope the parent construct
   * @param id the construct id (part of every logical ID below it: keep it stable)
   * @param props the properties; see the props interface for defaults
   */
  constructor(scope: Construct, id: string, props: TrainingBudgetProps) {
    super(scope, id);
    const budgets = awsBudgets();
    const environmentName = validateEnvironment(props.environmentName, 'environmentName');
    const limit = props.monthlyLimitUsd;
    if (!Token.isUnresolved(limit) && !(Number.isFinite(limit) && limit > 0)) {
      throw new Error(`monthlyLimitUsd is ${limit}; it must be a positive number of US dollars`);
    }
    const emails = validateEmails(props.notificationEmails);
    const actual = percent('actualThresholdPercent', props.actualThresholdPercent ?? 80);
    const forecast = percent('forecastThresholdPercent', props.forecastThresholdPercent ?? 100);
    const region = regionForNames(this, props.regionalNames);
    this.budgetName = budgetName(environmentName, region);

    // The plain tag key (`Project`), not `user:Project`: the Budgets `TagValues` reference
    // ("AWS::Budgets::Budget TagValues",
    // https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-budgets-budget-tagvalues.html,
    // and the CreateBudget API reference) says only "The key for the tag" and does not settle the format.
    // The `user:` prefix belongs to the legacy `CostFilters` `TagKeyValue` syntax ("user:Key$Value",
    // hashicorp/terraform-provider-aws#40987, which points to the Budgets user guide's filter page).
    // FilterExpression is the Cost Explorer `Expression` shape, whose AWS example filters "TAG.Type == Type1"
    // as `{"Tags": {"Key": "TagName", "Values": ["Value1"]}}`, a plain key
    // ("Expression", https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_Expression.html).
    const tag = (key: string, value: string): budgets.CfnBudget.ExpressionProperty =>
      ({ tags: { key, values: [value], matchOptions: ['EQUALS'] } });
    const filters = [tag(TAG_PROJECT, PROJECT_TAG_VALUE)];
    if (props.filterByEnvironment ?? true) {
      filters.push(tag(TAG_ENVIRONMENT, environmentName));
    }
    if (region !== undefined) {
      // The REGION dimension of a cost filter expression (Budgets API, Expression.Dimensions):
      // the budget of one region then counts none of the other region's costs.
      filters.push({ dimensions: { key: 'REGION', values: [region], matchOptions: ['EQUALS'] } });
    }
    const subscribers = emails.map(address => ({ subscriptionType: 'EMAIL', address }));
    const notification = (notificationType: string, threshold: number) => ({
      notification: { notificationType, comparisonOperator: 'GREATER_THAN', threshold, thresholdType: 'PERCENTAGE' },
      subscribers,
    });

    this.budget = new budgets.CfnBudget(this, 'Resource', {
      budget: {
        budgetName: this.budgetName,
        budgetType: 'COST',
        timeUnit: 'MONTHLY',
        budgetLimit: { amount: limit, unit: 'USD' },
        filterExpression: filters.length === 1 ? filters[0] : { and: filters },
        // CreateBudget takes "either FilterExpression and Metrics or CostFilters and CostTypes, not both or
        // a different combination" ("CreateBudget", AWS Billing and Cost Management API Reference,
        // https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_budgets_CreateBudget.html);
        // a filter expression without metrics makes a malformed budget whose history fails with
        // "Selected metrics cannot be null" (hashicorp/terraform-provider-aws#46866).
        // UnblendedCost: what the account is charged for its usage as it accrues, the same measure as a
        // CostTypes budget's defaults (UseBlended and UseAmortized false); blended rates only matter across
        // an organization's accounts, amortized costs spread upfront commitments (RIs, Savings Plans) this
        // project does not buy, and the Net* metrics subtract negotiated discounts the library knows nothing of.
        metrics: ['UnblendedCost'],
      },
      notificationsWithSubscribers: [notification('ACTUAL', actual), notification('FORECASTED', forecast)],
    });

    if (props.denyRunInstancesAtLimit) {
      const launchers = validateLaunchers(props.denyRunInstancesAtLimit);
      const policy = new iam.ManagedPolicy(this, 'DenyRunInstancesPolicy', {
        description: `Applied by the ${this.budgetName} budget at 100%: no new EC2 instances`,
        statements: [new iam.PolicyStatement({
          sid: 'DenyRunInstancesOverBudget',
          effect: iam.Effect.DENY,
          actions: ['ec2:RunInstances'],
          resources: ['*'],
        })],
      });
      const stack = Stack.of(this);
      const arn = (type: string) => (name: string) => stack.formatArn({ service: 'iam', region: '', resource: type, resourceName: name });
      const targets = [
        ...launchers.roles.map(arn('role')),
        ...launchers.groups.map(arn('group')),
        ...launchers.users.map(arn('user')),
      ];
      const attachActions = [
        ...(launchers.roles.length ? ['iam:AttachRolePolicy', 'iam:DetachRolePolicy'] : []),
        ...(launchers.groups.length ? ['iam:AttachGroupPolicy', 'iam:DetachGroupPolicy'] : []),
        ...(launchers.users.length ? ['iam:AttachUserPolicy', 'iam:DetachUserPolicy'] : []),
      ];
      const role = new iam.Role(this, 'ActionExecutionRole', {
        assumedBy: new iam.ServicePrincipal('budgets.amazonaws.com', {
          conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
        }),
        description: `Lets AWS Budgets attach the deny-RunInstances policy of ${this.budgetName}`,
        inlinePolicies: {
          AttachDenyPolicy: new iam.PolicyDocument({
            minimize: false,
            statements: [new iam.PolicyStatement({
              sid: 'AttachOnlyTheDenyPolicyToTheLaunchers',
              actions: attachActions,
              resources: targets,
              conditions: { ArnEquals: { 'iam:PolicyARN': policy.managedPolicyArn } },
            })],
          }),
        },
      });
      const action = new budgets.CfnBudgetsAction(this, 'DenyRunInstancesAction', {
        // The literal name with an explicit dependency (what Ref of a budget returns is not documented clearly).
        budgetName: this.budgetName,
        actionType: 'APPLY_IAM_POLICY',
        actionThreshold: { type: 'PERCENTAGE', value: 100 },
        notificationType: 'ACTUAL',
        approvalModel: 'AUTOMATIC',
        executionRoleArn: role.roleArn,
        definition: {
          iamActionDefinition: {
            policyArn: policy.managedPolicyArn,
            roles: launchers.roles.length ? launchers.roles : undefined,
            groups: launchers.groups.length ? launchers.groups : undefined,
            users: launchers.users.length ? launchers.users : undefined,
          },
        },
        subscribers: subscribers.map(s => ({ type: s.subscriptionType, address: s.address })),
      });
      action.addDependency(this.budget);
      this.denyRunInstancesPolicy = policy;
      this.actionExecutionRole = role;
    }
  }
}

// AWS Budgets accepts at most 10 email subscribers per notification.
const MAX_EMAILS = 10;

function validateEmails(emails: string[]): string[] {
  if (emails.length === 0) {
    throw new Error('notificationEmails is empty; give at least one address to notify');
  }
  if (emails.length > MAX_EMAILS) {
    throw new Error(`notificationEmails has ${emails.length} addresses; AWS Budgets allows at most ${MAX_EMAILS} email subscribers per notification`);
  }
  for (const email of emails) {
    if (!Token.isUnresolved(email) && !isEmailAddress(email)) {
      throw new Error(`notificationEmails contains '${email}', which is not an email address`);
    }
  }
  return emails;
}

function percent(prop: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0 || value > 1000) {
    throw new Error(`${prop} is ${value}; it must be a percentage of the limit above 0 and at most 1000`);
  }
  return value;
}

// IAM names: letters, digits and + = , . @ _ - (paths are not accepted here).
const IAM_NAME = /^[\w+=,.@-]{1,128}$/;

function validateLaunchers(launchers: BudgetLaunchers): Required<BudgetLaunchers> {
  const checked = { roles: launchers.roles ?? [], groups: launchers.groups ?? [], users: launchers.users ?? [] };
  for (const [kind, names] of Object.entries(checked)) {
    for (const name of names) {
      if (!Token.isUnresolved(name) && !IAM_NAME.test(name)) {
        throw new Error(`denyRunInstancesAtLimit.${kind} contains '${name}', which is not an IAM name ` +
          '(1 to 128 letters, digits and + = , . @ _ -)');
      }
    }
  }
  if (checked.roles.length + checked.groups.length + checked.users.length === 0) {
    throw new Error('denyRunInstancesAtLimit names no role, group or user; name at least one launcher, or leave it out');
  }
  return checked;
}
