import { ArnFormat, Stack, Token } from 'aws-cdk-lib';
import { RegionInfo } from 'aws-cdk-lib/region-info';
import { IConstruct } from 'constructs';

/**
 * The name prefix of an environment's run secrets (SSM SecureString parameters), without the leading slash, as a
 * parameter ARN's resource name has it.
 */
export function secretsParameterPrefix(environment: string): string {
  return `chronos-training/${environment}/secrets/`;
}

/**
 * The ARN of the run secrets' parameters of an environment (`*`: every name under the prefix).
 */
export function secretsParameterArn(scope: IConstruct, environment: string, name: string = '*'): string {
  return Stack.of(scope).formatArn({
    service: 'ssm',
    resource: 'parameter',
    resourceName: `${secretsParameterPrefix(environment)}${name}`,
    arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
  });
}

/**
 * The resource and conditions of a statement on an environment's run secrets. A cdk-nag finding whose text holds more
 * than one '::' (as `<AWS::Partition>` does) cannot be acknowledged (private/compliance.ts): in a stack of a concrete
 * region and account, the ARN is literal but for the partition, which follows from the region; in an
 * environment-agnostic stack, it is any partition, region and account (`arn:*:ssm:*:*:parameter/...`), narrowed to
 * the stack's by `aws:RequestedRegion` and `aws:ResourceAccount` (IAM User Guide, "AWS global condition context keys").
 */
export function secretsParameterStatement(scope: IConstruct, environment: string):
{ resource: string; conditions: Record<string, any> } {
  const stack = Stack.of(scope);
  const path = `parameter/${secretsParameterPrefix(environment)}*`;
  if (Token.isUnresolved(stack.region) || Token.isUnresolved(stack.account)) {
    return {
      resource: `arn:*:ssm:*:*:${path}`,
      conditions: { StringEquals: { 'aws:RequestedRegion': stack.region, 'aws:ResourceAccount': stack.account } },
    };
  }
  const partition = RegionInfo.get(stack.region).partition ?? 'aws';
  return { resource: `arn:${partition}:ssm:${stack.region}:${stack.account}:${path}`, conditions: {} };
}
