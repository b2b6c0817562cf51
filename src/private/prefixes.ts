/*
 * The key prefixes of the training bucket: which belong to every environment,
 * which to one, and which to the foundation itself.
 */

/** Bucket prefixes uploaded once after deployment and read by every environment. */
export const CACHED_DATASETS_PREFIX = 'cached-datasets/';
export const RUNTIME_PREFIXES = ['runtime/python-env/', 'runtime/scripts/'];
/** Where the foundation's opt-in VPC flow logs are delivered in the training bucket. */
export const FLOW_LOGS_PREFIX = 'vpc-flow-logs/';
/** Prefixes shared by every environment: no lifecycle rule may expire or transition objects under them. */
export const SHARED_PREFIXES = [CACHED_DATASETS_PREFIX, 'runtime/'];
/** Prefixes the training instances and `grantReadShared`/`grantWriteShared` reach under the shared ones. */
export const SHARED_ACCESS_PREFIXES = [CACHED_DATASETS_PREFIX, ...RUNTIME_PREFIXES];
/**
 * First path segments of the bucket that belong to no environment: an
 * environment of the same name would put its lifecycle rules on them.
 */
export const RESERVED_TOP_LEVEL_PREFIXES = [...SHARED_PREFIXES, FLOW_LOGS_PREFIX];

/** The prefix one environment owns: `{environmentName}/`. */
export function environmentPrefix(environmentName: string): string {
  return `${environmentName}/`;
}
