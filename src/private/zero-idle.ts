import { Aspects } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';
import { ZeroIdleCostChecker } from '../guardrails/zero-idle-cost-checker';

/**
 * Applies a `ZeroIdleCostChecker` to `scope` unless `scope` or a scope above it
 * already has one, so that a foundation in a `ChronosTrainingStack` (whose
 * checker is added before the foundation is created) is checked once.
 */
export function applyZeroIdleCostCheckerOnce(scope: IConstruct): void {
  const covered = scope.node.scopes.some(s => Aspects.of(s).all.some(aspect => aspect instanceof ZeroIdleCostChecker));
  if (!covered) {
    Aspects.of(scope).add(new ZeroIdleCostChecker());
  }
}
