/**
 * Compares two synthesized CloudFormation templates and reports every change that would
 * delete or replace a stateful resource on update: a resource that disappears, changes its
 * logical ID or its type, loses `DeletionPolicy: Retain`, or changes a property whose update
 * requires replacement (CloudFormation resource reference, "Update requires: Replacement").
 *
 * Used by the release guard (`test/release/template-guard.test.ts`) against the last
 * release's template in `release/baseline/template.json`.
 */

/** A CloudFormation template, as far as this module reads it. */
export interface CfnTemplate {
  readonly Resources?: Record<string, CfnResource>;
}

/** A CloudFormation resource definition. */
export interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly DeletionPolicy?: string;
  readonly UpdateReplacePolicy?: string;
}

/** One change that would delete or replace a stateful resource. */
export interface StatefulViolation {
  /** Stable key for `release/allowed-stateful-changes.txt`, e.g. `replaced:MyVpc.CidrBlock`. */
  readonly key: string;
  /** The logical ID in the baseline template. */
  readonly logicalId: string;
  /** The resource type in the baseline template. */
  readonly type: string;
  /** What happens, in words. */
  readonly message: string;
}

/**
 * Stateful resource types and the properties whose change replaces them
 * (from the CloudFormation resource reference).
 */
export const REPLACEMENT_PROPERTIES: Readonly<Record<string, readonly string[]>> = {
  'AWS::S3::Bucket': ['BucketName', 'ObjectLockEnabled'],
  'AWS::EC2::VPC': ['CidrBlock', 'InstanceTenancy', 'Ipv4IpamPoolId', 'Ipv4NetmaskLength'],
  'AWS::EC2::Subnet': ['AvailabilityZone', 'AvailabilityZoneId', 'CidrBlock', 'Ipv4IpamPoolId', 'Ipv4NetmaskLength', 'OutpostArn', 'VpcId'],
  'AWS::EC2::SecurityGroup': ['GroupDescription', 'GroupName', 'VpcId'],
  'AWS::IAM::Role': ['Path', 'RoleName'],
  'AWS::IAM::InstanceProfile': ['InstanceProfileName', 'Path'],
};

/** Whether a resource is stateful: a type above, or retained on deletion. */
export function isStateful(resource: CfnResource): boolean {
  return resource.Type in REPLACEMENT_PROPERTIES || resource.DeletionPolicy === 'Retain';
}

/**
 * Every change from `baseline` to `current` that deletes or replaces a stateful resource of
 * `baseline`, in a stable order. New resources are never violations.
 */
export function statefulViolations(baseline: CfnTemplate, current: CfnTemplate): StatefulViolation[] {
  const violations: StatefulViolation[] = [];
  const now = current.Resources ?? {};
  for (const [logicalId, before] of Object.entries(baseline.Resources ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
    if (!isStateful(before)) continue;
    const report = (kind: string, detail: string, message: string) =>
      violations.push({ key: `${kind}:${logicalId}${detail}`, logicalId, type: before.Type, message });
    const after = now[logicalId];
    if (!after) {
      report('removed', '', `${before.Type} ${logicalId} is gone (deleted, or its logical ID changed: CloudFormation replaces it)`);
      continue;
    }
    if (after.Type !== before.Type) {
      report('type', '', `${logicalId} changes type from ${before.Type} to ${after.Type} (replaced)`);
      continue;
    }
    if (before.DeletionPolicy === 'Retain' && after.DeletionPolicy !== 'Retain') {
      report('retain', '', `${before.Type} ${logicalId} is no longer retained (DeletionPolicy ${after.DeletionPolicy ?? 'Delete'})`);
    }
    for (const property of REPLACEMENT_PROPERTIES[before.Type] ?? []) {
      const a = before.Properties?.[property];
      const b = after.Properties?.[property];
      if (JSON.stringify(a) !== JSON.stringify(b)) {
        report('replaced', `.${property}`,
          `${before.Type} ${logicalId}: ${property} changes from ${JSON.stringify(a)} to ${JSON.stringify(b)} (replaces it)`);
      }
    }
  }
  return violations;
}

/** Keys listed in an allow file: one per line, `#` comments and blank lines ignored. */
export function parseAllowedKeys(text: string): Set<string> {
  return new Set(text.split('\n').map(l => l.trim()).filter(l => l && !l.startsWith('#')));
}
