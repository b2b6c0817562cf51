import { validateEnvironment } from '../private/validation';

/**
 * The names of the CloudFormation exports a `ChronosTrainingFoundation` creates:
 * `ChronosTraining-{environmentName}-{suffix}`. A launch script reads them with
 * `aws cloudformation list-exports`; another CDK app can `Fn.importValue` them.
 *
 * @exampleMetadata fixture=exports
 * @example
 * const vpcIdExport = FoundationExports.exportName('dev', FoundationExports.VPC_ID);
 * // 'ChronosTraining-dev-VPCId'
 */
export class FoundationExports {
  /** Suffix of the VPC ID export. */
  public static readonly VPC_ID = 'VPCId';
  /** Suffix of the public subnet ID export (the first public subnet). */
  public static readonly PUBLIC_SUBNET_ID = 'PublicSubnetId';
  /** Suffix of the training bucket's name export. */
  public static readonly S3_BUCKET_NAME = 'S3BucketName';
  /** Suffix of the instance role's name export. */
  public static readonly IAM_ROLE_NAME = 'IAMRoleName';
  /** Suffix of the instance profile's name export. */
  public static readonly INSTANCE_PROFILE_NAME = 'InstanceProfileName';
  /** Suffix of the security group ID export. */
  public static readonly SECURITY_GROUP_ID = 'SecurityGroupId';
  /** Suffix of the environment name export. */
  public static readonly ENVIRONMENT = 'Environment';
  /** Suffix of the cost center export. */
  public static readonly COST_CENTER = 'CostCenter';
  /** Suffix of the export of all public subnet IDs, comma-separated, in zone order. */
  public static readonly PUBLIC_SUBNET_IDS = 'PublicSubnetIds';
  /** Suffix of the export of the public subnets' Availability Zones, comma-separated, in the same order. */
  public static readonly AVAILABILITY_ZONES = 'AvailabilityZones';
  /**
   * Suffix of the launch template ID export, created when the foundation has a
   * launch template (the default).
   */
  public static readonly LAUNCH_TEMPLATE_ID = 'LaunchTemplateId';

  /**
   * Suffix of the launch template's latest version number (`Fn::GetAtt LatestVersionNumber`), created with
   * `LAUNCH_TEMPLATE_ID`. CloudFormation adds a version on each change of the template and never moves its
   * default version, so a launcher launches exactly this version (docs/RUNS.md). It changes on such deploys:
   * read its SSM parameter, never `Fn.importValue` it (CloudFormation refuses to update an export that another
   * stack imports).
   */
  public static readonly LAUNCH_TEMPLATE_VERSION = 'LaunchTemplateVersion';

  /** Suffix of the cluster placement group's name export (only with `clusterPlacementGroup`). */
  public static readonly PLACEMENT_GROUP_NAME = 'PlacementGroupName';

  /** Suffix of the Batch job queue's ARN export (only with `batch`). */
  public static readonly BATCH_JOB_QUEUE_ARN = 'BatchJobQueueArn';

  /** Suffix of the Batch job definition's ARN export (only with `batch`). */
  public static readonly BATCH_JOB_DEFINITION_ARN = 'BatchJobDefinitionArn';

  /** Suffix of the Batch multi-node job queue's ARN export (only with `batch.multiNode`). */
  public static readonly BATCH_MULTI_NODE_JOB_QUEUE_ARN = 'BatchMultiNodeJobQueueArn';

  /** Suffix of the Batch multi-node job definition's ARN export (only with `batch.multiNode`). */
  public static readonly BATCH_MULTI_NODE_JOB_DEFINITION_ARN = 'BatchMultiNodeJobDefinitionArn';

  /**
   * The suffixes of the exports a foundation with default props creates, in the
   * order it creates them: the eight core exports, `PublicSubnetIds`,
   * `AvailabilityZones`, `LaunchTemplateId` and `LaunchTemplateVersion` (both
   * absent with `launchTemplate: false`). Opt-in exports, such as `PLACEMENT_GROUP_NAME`, are not among them.
   */
  public static suffixes(): string[] {
    return [
      FoundationExports.VPC_ID,
      FoundationExports.PUBLIC_SUBNET_ID,
      FoundationExports.S3_BUCKET_NAME,
      FoundationExports.IAM_ROLE_NAME,
      FoundationExports.INSTANCE_PROFILE_NAME,
      FoundationExports.SECURITY_GROUP_ID,
      FoundationExports.ENVIRONMENT,
      FoundationExports.COST_CENTER,
      FoundationExports.PUBLIC_SUBNET_IDS,
      FoundationExports.AVAILABILITY_ZONES,
      FoundationExports.LAUNCH_TEMPLATE_ID,
      FoundationExports.LAUNCH_TEMPLATE_VERSION,
    ];
  }

  /**
   * The export name of one output of an environment's foundation.
   *
   * @param environmentName the environment (validated as the foundation validates it)
   * @param suffix one of the suffix constants of this class, for example `FoundationExports.VPC_ID`
   */
  public static exportName(environmentName: string, suffix: string): string {
    return `ChronosTraining-${validateEnvironment(environmentName)}-${suffix}`;
  }

  /**
   * The name of the SSM parameter that holds the same value as an export:
   * `/chronos-training/{environmentName}/{suffix}`. Unlike an export, a
   * parameter can change while other stacks read it.
   *
   * @param environmentName the environment (validated as the foundation validates it)
   * @param suffix one of the suffix constants of this class, for example `FoundationExports.VPC_ID`
   */
  public static parameterName(environmentName: string, suffix: string): string {
    return `/chronos-training/${validateEnvironment(environmentName)}/${suffix}`;
  }

  /**
   * The names of the exports a foundation of an environment creates with default
   * props (see `suffixes`).
   *
   * @param environmentName the environment (validated as the foundation validates it)
   */
  public static exportNames(environmentName: string): string[] {
    return FoundationExports.suffixes().map(suffix => FoundationExports.exportName(environmentName, suffix));
  }

  private constructor() {}
}
