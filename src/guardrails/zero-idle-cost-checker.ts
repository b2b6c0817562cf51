import { Annotations, CfnResource, IAspect, Stack } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';
import { BILLED_WHILE_IDLE, IdleCostRule } from '../private/idle-costs';

/**
 * Properties of a `ZeroIdleCostChecker`.
 */
export interface ZeroIdleCostCheckerProps {
  /**
   * CloudFormation resource types that may bill while idle without an error,
   * for example `['AWS::KMS::Key']` for a deliberate customer-managed key.
   *
   * @default - none: every resource that bills while idle is an error
   */
  readonly allowedResourceTypes?: string[];
}

const ALLOWED_METADATA = 'chronos:zeroIdleCost:allowed';

/**
 * A CDK Aspect that fails synthesis on resources that bill while no training
 * instance runs: NAT gateways, Elastic IPs, interface endpoints, instances,
 * volumes, KMS keys, secrets, load balancers, databases, alarms and the like,
 * and the property cases (an advanced-tier SSM parameter, an Auto Scaling group
 * with a minimum or desired size above 0, provisioned concurrency, a
 * provisioned-capacity DynamoDB table): the table of docs/IDLE-COSTS.md, to
 * which `addBilledWhileIdle` adds types.
 *
 * Each one gets an error annotation naming its path, its CloudFormation type and
 * its idle cost, so `cdk synth` fails. Where a deciding property is a token that
 * is unknown at synthesis, the resource gets a warning instead.
 *
 * `ChronosTrainingStack` and `ChronosTrainingFoundation` apply one to
 * themselves unless a scope above them already has a checker (so a foundation
 * in a `ChronosTrainingStack` is checked once, by the stack's); apply it
 * anywhere else with `Aspects.of(scope).add(new ZeroIdleCostChecker())`, before
 * the foundation is created if it should be the only one.
 *
 * @example
 * import { App, Aspects } from 'aws-cdk-lib';
 * import { ZeroIdleCostChecker } from '@chronos/training-infra';
 *
 * const app = new App();
 * const checker = new ZeroIdleCostChecker({ allowedResourceTypes: ['AWS::KMS::Key'] });
 * checker.addBilledWhileIdle('AWS::MemoryDB::Cluster', 'node-hours');
 * Aspects.of(app).add(checker);
 */
export class ZeroIdleCostChecker implements IAspect {
  /**
   * Allows resources of a type that bill while idle in a scope (and below it),
   * for every checker, including those `ChronosTrainingStack` and
   * `ChronosTrainingFoundation` apply. The reason is kept in the construct's metadata.
   *
   * @param scope the resource, or a construct above it
   * @param resourceType the CloudFormation type, for example `AWS::KMS::Key`
   * @param reason why it is worth its idle cost
   */
  public static allowResourceType(scope: IConstruct, resourceType: string, reason: string): void {
    validateResourceType('resourceType', resourceType);
    if (reason.trim().length === 0) {
      throw new Error(`reason must not be empty: say why '${resourceType}' is worth its idle cost`);
    }
    scope.node.addMetadata(ALLOWED_METADATA, { resourceType, reason });
  }

  private readonly allowed: Set<string>;
  private readonly rules: IdleCostRule[] = [...BILLED_WHILE_IDLE];

  /**
   * @param props the properties; see the props interface for defaults
   */
  constructor(props: ZeroIdleCostCheckerProps = {}) {
    for (const type of props.allowedResourceTypes ?? []) {
      validateResourceType('allowedResourceTypes', type);
    }
    this.allowed = new Set(props.allowedResourceTypes ?? []);
  }

  /**
   * Reports resources of one more CloudFormation type, one the checker does not
   * know (its list is in docs/IDLE-COSTS.md), as billing while idle: every
   * resource of the type is an error, unless allowed. Only this checker learns
   * it: add it to the app before creating a `ChronosTrainingStack` or
   * `ChronosTrainingFoundation`, so that it is the one they use.
   *
   * @param resourceType the CloudFormation type, for example `AWS::MemoryDB::Cluster`
   * @param idleCost what it costs while idle, as the error should say, for example 'node-hours'
   */
  public addBilledWhileIdle(resourceType: string, idleCost: string): void {
    validateResourceType('resourceType', resourceType);
    if (this.rules.some(r => r.resourceType === resourceType)) {
      throw new Error(`addBilledWhileIdle: '${resourceType}' is already reported as billing while idle`);
    }
    if (idleCost.trim().length === 0) {
      throw new Error(`addBilledWhileIdle: idleCost must not be empty: say what '${resourceType}' costs while idle`);
    }
    this.rules.push({ resourceType, billedFor: idleCost });
  }

  /**
   * Reports `node` if it is a CloudFormation resource that bills while idle.
   */
  public visit(node: IConstruct): void {
    if (!CfnResource.isCfnResource(node)) {
      return;
    }
    const type = node.cfnResourceType;
    const rule = this.rules.find(r => r.resourceType === type);
    if (!rule || this.allowed.has(type) || allowedInScope(node, type)) {
      return;
    }
    const properties = rule.bills ? propertiesOf(node) : {};
    const bills = rule.bills ? (properties ? rule.bills(properties) : undefined) : true;
    if (bills === false) {
      return;
    }
    const allowHint = `allow it with new ZeroIdleCostChecker({ allowedResourceTypes: ['${type}'] }) ` +
      `or ZeroIdleCostChecker.allowResourceType(scope, '${type}', reason)`;
    // What bills and why, never a price: prices change and differ by region (docs/IDLE-COSTS.md has them, dated).
    if (bills === undefined) {
      Annotations.of(node).addWarningV2('@chronos/training-infra:idleCostUnknown', `${node.node.path} (${type}) may bill while no training run is active: ${rule.condition} ` +
        `is not known at synthesis. If it is, it bills for ${rule.billedFor}, runs or not; ${allowHint}`);
      return;
    }
    Annotations.of(node).addError(`${node.node.path} (${type}) bills while no training run is active: ` +
      `it bills for ${rule.billedFor}${rule.condition ? ` (${rule.condition})` : ''}, runs or not. ` +
      `The foundation promises that nothing bills while idle: remove it, or ${allowHint}`);
  }
}

/**
 * The resource's CloudFormation properties as they will be synthesized
 * (overrides applied); tokens that refer to other resources stay objects.
 *
 * No public aws-cdk-lib API gives them: the typed L1 properties (what
 * aws-cdk-lib's own `InstanceRequireImdsv2Aspect` reads) miss escape-hatch
 * overrides (`addPropertyOverride` writes to a private `rawOverrides`), and a
 * gateway endpoint overridden to `Interface` would then bill unreported. So this
 * calls the internal `_toCloudFormation()`, as cdk-nag does for the same
 * reason. Should a future aws-cdk-lib drop it, the deciding property is
 * reported as unknown (a warning), never silently as free.
 */
function propertiesOf(node: CfnResource): Record<string, any> | undefined {
  const render = (node as any)._toCloudFormation;
  if (typeof render !== 'function') {
    return undefined;
  }
  try {
    const rendered = Stack.of(node).resolve(render.call(node));
    return Object.values<any>(rendered.Resources ?? {})[0]?.Properties ?? {};
  } catch {
    // A lazy value that cannot be produced yet: the deciding property is unknown.
    return undefined;
  }
}

function validateResourceType(prop: string, type: string): void {
  if (!/^[A-Za-z0-9]+::[A-Za-z0-9]+::[A-Za-z0-9]+$/.test(type)) {
    throw new Error(`${prop}: '${type}' is not a CloudFormation resource type such as 'AWS::KMS::Key'`);
  }
}

function allowedInScope(node: IConstruct, type: string): boolean {
  return node.node.scopes.some(scope => scope.node.metadata.some(m =>
    m.type === ALLOWED_METADATA && (m.data as { resourceType: string }).resourceType === type));
}

