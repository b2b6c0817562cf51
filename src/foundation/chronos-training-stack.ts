import { Stack, StackProps } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { ChronosTrainingFoundation, ChronosTrainingFoundationProps } from './chronos-training-foundation';
import { stackName } from '../private/naming';
import { CONTEXT_ACCOUNT, CONTEXT_REGION, readContext, readSettings, warnBareContextKeys } from '../private/settings';
import { validateEnvironment } from '../private/validation';
import { applyZeroIdleCostCheckerOnce } from '../private/zero-idle';

/**
 * Properties of a `ChronosTrainingStack`: stack properties and the foundation's.
 */
export interface ChronosTrainingStackProps extends StackProps, ChronosTrainingFoundationProps {}

/**
 * A stack holding one `ChronosTrainingFoundation`, named
 * `ChronosTraining-{environmentName}-Stack` unless `stackName` says otherwise.
 * A `ZeroIdleCostChecker` fails synthesis if any resource in it bills while idle.
 *
 * Account and region come from `env`, else the `@chronos/training-infra:account` and
 * `@chronos/training-infra:region` context values (the bare `account` and `region` of 0.1
 * are still read, with a deprecation warning). Given neither, the stack is
 * environment-agnostic, as any CDK `Stack` without `env`: the library reads no
 * `process.env` and assumes no region. To deploy to the CDK CLI's account and region,
 * say so in the app: `env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION }`.
 */
export class ChronosTrainingStack extends Stack {
  /**
   * The default stack name for an environment: `ChronosTraining-{environmentName}-Stack`.
   *
   * @param environmentName the environment (validated as the foundation validates it)
   */
  public static stackNameFor(environmentName: string): string {
    return stackName(validateEnvironment(environmentName));
  }

  /** The foundation this stack deploys. */
  public readonly foundation: ChronosTrainingFoundation;

  /**
   * @param scope the parent construct
   * @param id the construct id (part of every logical ID below it: keep it stable)
   * @param props the properties; see the props interface for defaults
   */
  constructor(scope: Construct, id: string, props: ChronosTrainingStackProps = {}) {
    const { settings, reads } = readSettings(scope, props);
    const account = props.env?.account === undefined ? readContext(scope, CONTEXT_ACCOUNT) : { value: props.env.account };
    const region = props.env?.region === undefined ? readContext(scope, CONTEXT_REGION) : { value: props.env.region };
    super(scope, id, {
      ...props,
      stackName: props.stackName ?? stackName(settings.environmentName),
      description: props.description ??
        `Chronos Training Infrastructure (${settings.environmentName}) - VPC, S3, IAM, Security Groups`,
      env: { account: account.value, region: region.value },
    });
    warnBareContextKeys(this, [...reads, account, region]);

    // Whatever is added to this stack must not bill while idle: one checker over the whole
    // stack, applied before the foundation, which then adds none of its own.
    applyZeroIdleCostCheckerOnce(this);
    // Every foundation prop is forwarded (a test checks it), with the settings resolved once.
    const foundationProps: ChronosTrainingFoundationProps = { ...props, ...settings };
    this.foundation = new ChronosTrainingFoundation(this, 'Foundation', foundationProps);
  }
}
