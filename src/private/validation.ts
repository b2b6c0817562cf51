import { Annotations, Duration, Token } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';
import { BUCKET_NAME_PREFIX, MAX_ENVIRONMENT_LENGTH, S3_BUCKET_NAME_MAX } from './naming';
import { RESERVED_TOP_LEVEL_PREFIXES } from './prefixes';

/*
 * Input rules, checked once at construction, with messages that name the prop,
 * the value and the rule.
 */

/** Workload types of the `CostCenter` tag; anything else is allowed but warned about. */
export const KNOWN_COST_CENTERS = ['collect', 'train', 'serve'];

const ENVIRONMENT_PATTERN = /^[a-z]([a-z0-9-]*[a-z0-9])?$/;
// AWS tag values: letters, digits and whitespace in any language, and _ . : / = + - @
const TAG_VALUE_PATTERN = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;
const TAG_VALUE_MAX = 256;

/**
 * Validates an environment name and returns it.
 * @throws if it is not a concrete, DNS-style name short enough for the bucket name
 */
export function validateEnvironment(environment: string, prop: string = 'environmentName'): string {
  if (Token.isUnresolved(environment)) {
    throw new Error(`${prop} must be a literal string, not a token: it is part of resource names and export names that are fixed at synthesis`);
  }
  if (environment.length === 0) {
    throw new Error(`${prop} must not be empty: use lowercase letters, digits and hyphens, for example 'dev', 'stage' or 'prod'`);
  }
  if (!ENVIRONMENT_PATTERN.test(environment)) {
    throw new Error(
      `${prop} '${environment}' is invalid: it must start with a lowercase letter, contain only lowercase letters, ` +
      'digits and hyphens, and not end with a hyphen (it becomes part of the S3 bucket name)',
    );
  }
  if (RESERVED_TOP_LEVEL_PREFIXES.includes(`${environment}/`)) {
    throw new Error(
      `${prop} '${environment}' is reserved: the bucket prefix '${environment}/' holds data shared by all environments ` +
      `(reserved: ${RESERVED_TOP_LEVEL_PREFIXES.map(p => p.slice(0, -1)).join(', ')}), and an environment's lifecycle rules would expire it`,
    );
  }
  if (environment.length > MAX_ENVIRONMENT_LENGTH) {
    throw new Error(
      `${prop} '${environment}' is ${environment.length} characters long; at most ${MAX_ENVIRONMENT_LENGTH} are allowed ` +
      `so that the bucket name '${BUCKET_NAME_PREFIX}{environment}-{12-digit account}-{region}' fits S3's ` +
      `${S3_BUCKET_NAME_MAX}-character limit in every region`,
    );
  }
  return environment;
}

/**
 * Validates a cost center and returns it.
 * @throws if it is not a valid AWS tag value
 */
export function validateCostCenter(costCenter: string, prop: string = 'costCenter'): string {
  if (Token.isUnresolved(costCenter)) {
    return costCenter;
  }
  if (costCenter.trim().length === 0) {
    throw new Error(`${prop} must not be empty: it is the CostCenter tag value, one of ${KNOWN_COST_CENTERS.join(', ')}`);
  }
  if (costCenter.length > TAG_VALUE_MAX || !TAG_VALUE_PATTERN.test(costCenter)) {
    throw new Error(
      `${prop} '${costCenter}' is not a valid AWS tag value: at most ${TAG_VALUE_MAX} characters of letters, digits, ` +
      'spaces and _ . : / = + - @',
    );
  }
  return costCenter;
}

/** Warns on `scope` when a cost center is not one of the known workload types (it is still a valid tag). */
export function warnUnknownCostCenter(scope: IConstruct, costCenter: string): void {
  if (!Token.isUnresolved(costCenter) && !KNOWN_COST_CENTERS.includes(costCenter)) {
    Annotations.of(scope).addWarningV2(
      '@chronos/training-infra:unknownCostCenter',
      `costCenter '${costCenter}' is not one of the known workload types (${KNOWN_COST_CENTERS.join(', ')}); ` +
      'cost reports grouped by CostCenter will show it separately',
    );
  }
}

/**
 * Returns a duration as a whole number of days, at least `minDays`.
 * @throws naming the prop and the value when it is fractional or too small
 */
export function wholeDays(prop: string, value: Duration, minDays: number, why: string): number {
  if (value.isUnresolved()) {
    throw new Error(`${prop} must be a literal duration, not a token: S3 lifecycle rules take a fixed number of days`);
  }
  const days = value.toDays({ integral: false });
  if (!Number.isInteger(days)) {
    throw new Error(`${prop} is ${value.toHumanString()}; S3 lifecycle rules take a whole number of days`);
  }
  if (days < minDays) {
    throw new Error(`${prop} is ${days} days; it must be at least ${minDays} days (${why})`);
  }
  return days;
}

/** The default run lifetime: the guide's "at most 4 hours" of a training run. */
export const DEFAULT_RUN_LIFETIME = Duration.hours(4);

/**
 * What a run instance may live beyond its agent's lifetime: the boot before the agent starts, its drain, and the
 * backstop's 300 s after the boot script starts. The `MaxLifetimeHours` tag is the lifetime plus this, and the run
 * reaper never trusts a tag above the foundation's lifetime plus this (docs/DESIGN.md, "Run lifetimes").
 */
export const LIFETIME_MARGIN_SECONDS = 900;

/**
 * The `MaxLifetimeHours` tag of a run whose agent lives `lifetimeSeconds`: that plus `LIFETIME_MARGIN_SECONDS`, in
 * hours rounded up to 0.01 h, as a decimal string (4 hours: '4.25').
 */
export function maxLifetimeHoursTag(lifetimeSeconds: number): string {
  return String(hundredthsOfAnHour(lifetimeSeconds) / 100);
}

/**
 * The seconds of the `MaxLifetimeHours` tag of a run whose agent lives `lifetimeSeconds` (`maxLifetimeHoursTag`):
 * the run reaper's ceiling, and its lifetime for an instance whose tag is missing or malformed.
 */
export function maxLifetimeTagSeconds(lifetimeSeconds: number): number {
  return hundredthsOfAnHour(lifetimeSeconds) * 36;
}

/** The lifetime plus the margin in hundredths of an hour (36 s each: whole numbers, so the rounding is exact), rounded up. */
function hundredthsOfAnHour(lifetimeSeconds: number): number {
  return Math.ceil((lifetimeSeconds + LIFETIME_MARGIN_SECONDS) / 36);
}

/** The shortest run lifetime: the run reaper's default schedule interval. */
export const MIN_RUN_LIFETIME_MINUTES = 15;

/** The longest run lifetime: a bound longer than two weeks would no longer guard anything. */
export const MAX_RUN_LIFETIME_MINUTES = 14 * 24 * 60;

/**
 * Validates a run lifetime (the `MaxLifetimeHours` tag, the run reaper's default
 * and the Batch job timeout all follow from it) and returns it in minutes.
 * @throws naming the prop and the value when it is a token, not whole minutes, or out of range
 */
export function runLifetimeMinutes(prop: string, value: Duration): number {
  if (value.isUnresolved()) {
    throw new Error(`${prop} must be a literal duration, not a token: the MaxLifetimeHours tag and the run reaper's ` +
      'default lifetime are fixed at synthesis');
  }
  const minutes = value.toMinutes({ integral: false });
  if (!Number.isInteger(minutes) || minutes < MIN_RUN_LIFETIME_MINUTES || minutes > MAX_RUN_LIFETIME_MINUTES) {
    throw new Error(`${prop} is ${value.toHumanString()}; it must be a whole number of minutes from ${MIN_RUN_LIFETIME_MINUTES} ` +
      `(the run reaper's schedule interval) to ${MAX_RUN_LIFETIME_MINUTES} (14 days)`);
  }
  return minutes;
}

/** Whether a string looks like an email address (something@domain.tld, no spaces): what the email subscriptions of AWS Budgets and SNS take. */
export function isEmailAddress(value: string): boolean {
  return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value);
}
