import { App } from 'aws-cdk-lib';
import { ChronosTrainingStack } from '../../src';

/** The stack class: the source's, or a packed release's (`require('<unpacked>/lib').ChronosTrainingStack`). */
export type StackClass = typeof ChronosTrainingStack;

/** The environment of the release baseline's template: concrete, so names and AZs are literal. */
export const BASELINE_ENV = { account: '123456789012', region: 'us-east-1' };

/**
 * The default template a release is compared on: `ChronosTrainingStack` for `dev` with every
 * other prop at its default, synthesized as `cdk synth -c @chronos/training-infra:environment=dev` would in a concrete
 * environment. Only the context key and the stack's id are used, so this stays valid across
 * renames of props.
 */
export function synthDefaultTemplate(stackClass: StackClass = ChronosTrainingStack): any {
  // Both keys: the namespaced one for this build, the bare one for a packed 0.1 release, which reads only that.
  const app = new App({ context: { 'environment': 'dev', '@chronos/training-infra:environment': 'dev' } });
  const stack = new stackClass(app, 'ChronosTraining-dev-Stack', { env: BASELINE_ENV });
  return app.synth().getStackArtifact(stack.artifactId).template;
}
