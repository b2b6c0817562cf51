import { Stack, StackProps } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { ChronosTrainingFoundation, ChronosTrainingFoundationProps } from './chronos-training-foundation';
import {
  CONTEXT_ACCOUNT,
  CONTEXT_COST_CENTER,
  CONTEXT_ENVIRONMENT,
  CONTEXT_REGION,
  DEFAULT_COST_CENTER,
  DEFAULT_ENVIRONMENT,
  DEFAULT_REGION,
  stackName,
  validateEnvironment,
} from './conventions';

/**
 * Properties of a `ChronosTrainingStack`: stack properties and the foundation's.
 */
export interface ChronosTrainingStackProps extends StackProps, ChronosTrainingFoundationProps {}

/**
 * A stack holding one `ChronosTrainingFoundation`: the guide's
 * `ChronosTraining-{environment}-Stack`.
 *
 * Account and region come from `env`, else the `account` and `region` context
 * values, else the CDK CLI's default environment; the region falls back to
 * `us-east-1`.
 */
export class ChronosTrainingStack extends Stack {
  /**
   * The stack name the guide uses for an environment: `ChronosTraining-{environment}-Stack`.
   */
  public static stackNameFor(environment: string): string {
    return stackName(validateEnvironment(environment));
  }

  /** The foundation this stack deploys. */
  public readonly foundation: ChronosTrainingFoundation;

  /**
   * @param scope the parent construct
   * @param id the construct id (part of every logical ID below it: keep it stable)
   * @param props the properties; see the props interface for defaults
   */
  constructor(scope: Construct, id: string, props: ChronosTrainingStackProps = {}) {
    const environment = validateEnvironment(
      props.environment ?? scope.node.tryGetContext(CONTEXT_ENVIRONMENT) ?? DEFAULT_ENVIRONMENT);
    const costCenter = props.costCenter ?? scope.node.tryGetContext(CONTEXT_COST_CENTER) ?? DEFAULT_COST_CENTER;
    super(scope, id, {
      ...props,
      description: props.description ??
        `Chronos Training Infrastructure (${environment}) - VPC, S3, IAM, Security Groups`,
      env: {
        account: props.env?.account ?? scope.node.tryGetContext(CONTEXT_ACCOUNT) ?? process.env.CDK_DEFAULT_ACCOUNT,
        region: props.env?.region ?? scope.node.tryGetContext(CONTEXT_REGION) ?? process.env.CDK_DEFAULT_REGION ?? DEFAULT_REGION,
      },
    });

    this.foundation = new ChronosTrainingFoundation(this, 'Foundation', {
      environment,
      costCenter,
      networkProps: props.networkProps,
      bucketProps: props.bucketProps,
      instanceRoleProps: props.instanceRoleProps,
      flowLogs: props.flowLogs,
    });
  }
}
