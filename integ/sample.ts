import { IApiCall } from '@aws-cdk/integ-tests-alpha';
import { App, Duration, Stack, Tags, Token } from 'aws-cdk-lib';
import { ChronosTrainingStack, ChronosTrainingStackProps } from '../src';
import { TAG_COST_CENTER, TAG_ENVIRONMENT, TAG_MANAGED_BY, TAG_PROJECT } from '../src/private/tags';

/**
 * Adds the stack for the environment in context (default dev) to an app. Its
 * construct ID is fixed; its CloudFormation name is `ChronosTraining-{environment}-Stack`.
 * Context `maxAzs` (a number) gives the network that many zones, and `maxRunLifetimeHours`
 * (a number) sets that run lifetime and adds the run reaper.
 *
 * The app, not the library, chooses the stack's environment (the library reads no `process.env`):
 * the CDK CLI's default account and region, else us-east-1, the region the integ snapshots are of.
 *
 * With context `emulator=moto` (set by scripts/local/cdk.js only), the SSM parameters are
 * synthesized without tags: moto 5.2.5 cannot create tagged AWS::SSM::Parameter resources
 * (it reads their Tags map as a list).
 */
export function sampleStack(app: App, props: ChronosTrainingStackProps = {}): ChronosTrainingStack {
  const maxAzs = app.node.tryGetContext('maxAzs');
  const maxRunLifetimeHours = app.node.tryGetContext('maxRunLifetimeHours');
  const stack = new ChronosTrainingStack(app, 'ChronosTraining', {
    env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION ?? 'us-east-1' },
    ...(maxAzs !== undefined ? { networkProps: { maxAzs: Number(maxAzs) } } : {}),
    ...(maxRunLifetimeHours !== undefined ? { maxRunLifetime: Duration.hours(Number(maxRunLifetimeHours)), runReaper: true } : {}),
    ...props,
  });
  if (app.node.tryGetContext('emulator') === 'moto') {
    for (const key of [TAG_PROJECT, TAG_ENVIRONMENT, TAG_COST_CENTER, TAG_MANAGED_BY]) {
      Tags.of(stack).remove(key, { includeResourceTypes: ['AWS::SSM::Parameter'] });
    }
  }
  return stack;
}

/**
 * A stack for integ-test assertions in the same environment as `stack`, so the
 * assertions can reference its resources.
 */
export function assertionStackFor(stack: Stack): Stack {
  return new Stack(stack.node.scope as App, `${stack.stackName}-Assertions`, {
    env: { region: stack.region, account: Token.isUnresolved(stack.account) ? undefined : stack.account },
  });
}

/**
 * Grants an assertion's provider the IAM action its API call really needs: the
 * provider derives the action from the API name (s3:GetBucketEncryption), which
 * for some S3 APIs is not an IAM action (cfn-lint W3037 points it out).
 */
export function allowAssertion(call: IApiCall, action: string, resource: string): IApiCall {
  call.provider.addToRolePolicy({ Effect: 'Allow', Action: [action], Resource: [resource] });
  return call;
}
