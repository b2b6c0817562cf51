import { IApiCall } from '@aws-cdk/integ-tests-alpha';
import { App, Stack, Token } from 'aws-cdk-lib';
import { ChronosTrainingStack, ChronosTrainingStackProps } from '../src';

/**
 * Adds the stack for the environment in context (default dev) to an app. Its
 * construct ID is fixed; its CloudFormation name is `ChronosTraining-{environment}-Stack`.
 */
export function sampleStack(app: App, props: ChronosTrainingStackProps = {}): ChronosTrainingStack {
  return new ChronosTrainingStack(app, 'ChronosTraining', props);
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
