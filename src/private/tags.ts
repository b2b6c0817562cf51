/*
 * The cost-allocation tags every taggable resource carries, and the tags the
 * launch template stamps on what it launches. IAM conditions, the run reaper and
 * the budget depend on these spellings.
 */

/** Value of the `Project` tag; IAM conditions in the instance role depend on it. */
export const PROJECT_TAG_VALUE = 'Chronos-Training';

/** Tag keys applied to every taggable resource. */
export const TAG_PROJECT = 'Project';
export const TAG_ENVIRONMENT = 'Environment';
export const TAG_COST_CENTER = 'CostCenter';
export const TAG_MANAGED_BY = 'ManagedBy';
export const MANAGED_BY_TAG_VALUE = 'CDK';

/** Tag key holding a training instance's lifetime in hours (stamped by the launch template, read by the run reaper). */
export const TAG_MAX_LIFETIME_HOURS = 'MaxLifetimeHours';

/**
 * `ManagedBy` value on instances and volumes launched from the training launch
 * template: they are created by the launcher, not managed by CDK.
 */
export const LAUNCH_TEMPLATE_MANAGED_BY = 'chronos-launch-template';

/**
 * `ManagedBy` value on the instances and volumes an AWS Batch compute environment
 * of a `TrainingBatchQueue` launches: Batch manages their lifetime (it scales the
 * environment to zero), so the run reaper leaves them alone.
 */
export const BATCH_MANAGED_BY = 'chronos-batch';
