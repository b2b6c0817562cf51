import { CfnResource, Stack, Validations } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';

/*
 * Explained exceptions to compliance scanners, kept next to the resources they
 * concern so that a consumer who runs cdk-nag or checkov on their own app gets
 * the same result as this library's tests.
 */

/**
 * Acknowledges a cdk-nag rule (or one finding of it, `Rule[finding]`) on a
 * construct, through aws-cdk-lib's own `Validations` API (the library does not
 * depend on cdk-nag). Returns false, acknowledging nothing, for a finding whose
 * text holds '::' more than once (a literal S3 ARN, as of a bucket imported by
 * name): `Validations` reserves that delimiter, and acknowledging the whole rule
 * instead would hide findings this library did not cause.
 */
export function acknowledgeNag(scope: IConstruct, id: string, reason: string): boolean {
  if ((id.match(/::/g) ?? []).length > 1) {
    return false;
  }
  Validations.of(scope).acknowledge({ id, reason });
  return true;
}

/**
 * Acknowledges one cdk-nag finding on a construct, as `acknowledgeNag` does, also when its text holds '::' more than
 * once (an ARN built with `<AWS::Partition>`), which `Validations.acknowledge` refuses: then it records the finding
 * under the same metadata key (`Validations.ACKNOWLEDGED_RULES_METADATA_KEY`, a map of finding to reason, which
 * cdk-nag reads on the resource and its scopes). For constructs whose every statement the library writes.
 */
export function acknowledgeNagFinding(scope: IConstruct, id: string, reason: string): void {
  if (acknowledgeNag(scope, id, reason)) {
    return;
  }
  const recorded = scope.node.metadata.filter(m => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY);
  const acknowledged = { ...(recorded.length > 0 ? recorded[recorded.length - 1].data : {}), [id]: reason };
  scope.node.addMetadata(Validations.ACKNOWLEDGED_RULES_METADATA_KEY, acknowledged);
}

/**
 * Skips a checkov check on a CloudFormation resource, inline in its Metadata,
 * with the reason (checkov reads `Metadata.checkov.skip`).
 */
export function skipCheckov(resource: CfnResource, id: string, comment: string): void {
  const current = resource.getMetadata('checkov') ?? { skip: [] };
  current.skip.push({ id, comment });
  resource.addMetadata('checkov', current);
}

/**
 * Ignores a cfn-lint rule on a CloudFormation resource, inline in its Metadata
 * (cfn-lint reads `Metadata.cfn-lint.config.ignore_checks`). cfn-lint takes no
 * reason there, so callers say why in a comment.
 */
export function skipCfnLint(resource: CfnResource, rule: string): void {
  const current = resource.getMetadata('cfn-lint') ?? { config: { ignore_checks: [] } };
  current.config.ignore_checks.push(rule);
  resource.addMetadata('cfn-lint', current);
}

/**
 * The text cdk-nag prints for a resource ARN in an IAM5 finding: intrinsic
 * functions rendered as `<LogicalId.Attr>` and `<AWS::Pseudo>`, joined.
 */
export function nagResourceFinding(scope: IConstruct, arn: string): string {
  return `Resource::${render(Stack.of(scope).resolve(arn))}`;
}

function render(value: any): string {
  if (typeof value === 'string') {
    return value;
  }
  if (Array.isArray(value)) {
    return value.map(render).join('');
  }
  if (value && typeof value === 'object') {
    if ('Ref' in value) {
      return `<${value.Ref}>`;
    }
    if ('Fn::GetAtt' in value) {
      return `<${value['Fn::GetAtt'].join('.')}>`;
    }
    if ('Fn::Join' in value) {
      const [separator, parts] = value['Fn::Join'];
      return parts.map(render).join(separator);
    }
  }
  // Other intrinsics (an imported bucket's Fn::ImportValue, say): no acknowledgment will match.
  return JSON.stringify(value);
}
