import { Annotations } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';
import { validateCostCenter, validateEnvironment } from './validation';

/*
 * Context keys and defaults. `resolveSettings` reads the environment and cost
 * center; `ChronosTrainingStack` reads `account` and `region` for its `env`.
 * The L3 constructs read no context, and nothing here reads `process.env`.
 *
 * The keys are namespaced under the library's name, as aws-cdk-lib's feature
 * flags are (`@aws-cdk/aws-iam:minimizePolicies`), so that they cannot collide
 * with an app's own context. The bare keys of 0.1 (`environment`, `costCenter`,
 * `account`, `region`) are still read when the namespaced key is absent, with a
 * deprecation warning on the construct that read them; 1.0 drops them.
 */

/** The prefix of the library's context keys. */
export const CONTEXT_PREFIX = '@chronos/training-infra:';
export const CONTEXT_ENVIRONMENT = `${CONTEXT_PREFIX}environment`;
export const CONTEXT_COST_CENTER = `${CONTEXT_PREFIX}costCenter`;
export const CONTEXT_ACCOUNT = `${CONTEXT_PREFIX}account`;
export const CONTEXT_REGION = `${CONTEXT_PREFIX}region`;

export const DEFAULT_ENVIRONMENT = 'dev';
export const DEFAULT_COST_CENTER = 'train';

/** The id of the warning on a bare (deprecated) context key. */
export const BARE_CONTEXT_KEY_WARNING = '@chronos/training-infra:bareContextKey';

/** The environment name and cost center a foundation or stack deploys with. */
export interface Settings {
  readonly environmentName: string;
  readonly costCenter: string;
}

/** A context value: the namespaced key's, else the deprecated bare key's, with the bare keys that were read. */
export interface ContextRead {
  readonly value?: string;
  /** `[bare, namespaced]` when the value came from the bare key. */
  readonly bareKey?: [string, string];
}

/**
 * The value of a namespaced context key (`CONTEXT_*`), else of its bare 0.1 name.
 */
export function readContext(scope: IConstruct, key: string): ContextRead {
  const value = scope.node.tryGetContext(key);
  if (value !== undefined) return { value: String(value) };
  const bare = key.slice(CONTEXT_PREFIX.length);
  const legacy = scope.node.tryGetContext(bare);
  return legacy === undefined ? {} : { value: String(legacy), bareKey: [bare, key] };
}

/** Warns on `scope` for each bare context key that was read. */
export function warnBareContextKeys(scope: IConstruct, reads: ContextRead[]): void {
  for (const read of reads) {
    if (read.bareKey) {
      const [bare, key] = read.bareKey;
      Annotations.of(scope).addWarningV2(BARE_CONTEXT_KEY_WARNING, `the context key '${bare}' is deprecated and will not be read ` +
        `from 1.0: set '${key}' instead (cdk.json "context", or -c ${key}=...)`);
    }
  }
}

/**
 * Settings and the context reads behind them, without warning: for `ChronosTrainingStack`,
 * which resolves them before the stack (the construct to warn on) exists.
 */
export function readSettings(scope: IConstruct, props: { readonly environmentName?: string; readonly costCenter?: string }):
{ readonly settings: Settings; readonly reads: ContextRead[] } {
  const reads: ContextRead[] = [];
  const pick = (prop: string, contextKey: string, given: string | undefined, fallback: string): [string, string] => {
    if (given !== undefined) return [given, prop];
    const read = readContext(scope, contextKey);
    reads.push(read);
    if (read.value === undefined) return [fallback, prop];
    return [read.value, `${prop} (context '${read.bareKey ? read.bareKey[0] : contextKey}')`];
  };
  const [environmentName, environmentProp] = pick('environmentName', CONTEXT_ENVIRONMENT, props.environmentName, DEFAULT_ENVIRONMENT);
  const [costCenter, costCenterProp] = pick('costCenter', CONTEXT_COST_CENTER, props.costCenter, DEFAULT_COST_CENTER);
  return {
    settings: {
      environmentName: validateEnvironment(environmentName, environmentProp),
      costCenter: validateCostCenter(costCenter, costCenterProp),
    },
    reads,
  };
}

/**
 * Props win, then the `@chronos/training-infra:environment` and `:costCenter`
 * context values (else the deprecated bare `environment` and `costCenter`, with a
 * warning on `scope`), then 'dev' and 'train'. Both are validated.
 * @throws naming the prop (or context key) and the value when one is invalid
 */
export function resolveSettings(scope: IConstruct, props: { readonly environmentName?: string; readonly costCenter?: string }): Settings {
  const { settings, reads } = readSettings(scope, props);
  warnBareContextKeys(scope, reads);
  return settings;
}
