import { IConstruct } from 'constructs';
import { validateCostCenter, validateEnvironment } from './validation';

/*
 * Context keys and defaults. `resolveSettings` reads the environment and cost
 * center; `ChronosTrainingStack` reads `account` and `region` for its `env`.
 * The L3 constructs read no context.
 */

export const CONTEXT_ENVIRONMENT = 'environment';
export const CONTEXT_COST_CENTER = 'costCenter';
export const CONTEXT_ACCOUNT = 'account';
export const CONTEXT_REGION = 'region';

export const DEFAULT_ENVIRONMENT = 'dev';
export const DEFAULT_COST_CENTER = 'train';
/** Region used by the stack when neither props, context nor the CDK CLI give one. */
export const DEFAULT_REGION = 'us-east-1';

/** The environment name and cost center a foundation or stack deploys with. */
export interface Settings {
  readonly environmentName: string;
  readonly costCenter: string;
}

/**
 * Props win, then the `environment` and `costCenter` context values, then
 * 'dev' and 'train'. Both are validated.
 * @throws naming the prop (or context key) and the value when one is invalid
 */
export function resolveSettings(scope: IConstruct, props: { readonly environmentName?: string; readonly costCenter?: string }): Settings {
  const pick = (prop: string, contextKey: string, given: string | undefined, fallback: string): [string, string] => {
    if (given !== undefined) return [given, prop];
    const fromContext = scope.node.tryGetContext(contextKey);
    return fromContext === undefined ? [fallback, prop] : [String(fromContext), `${prop} (context '${contextKey}')`];
  };
  const [environmentName, environmentProp] = pick('environmentName', CONTEXT_ENVIRONMENT, props.environmentName, DEFAULT_ENVIRONMENT);
  const [costCenter, costCenterProp] = pick('costCenter', CONTEXT_COST_CENTER, props.costCenter, DEFAULT_COST_CENTER);
  return {
    environmentName: validateEnvironment(environmentName, environmentProp),
    costCenter: validateCostCenter(costCenter, costCenterProp),
  };
}
