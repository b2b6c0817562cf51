import { Duration, Size, Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { encryptedRootVolume, rootVolumeGiB, tagLaunchedResources } from '../private/launch-templates';
import { addRunAgentValidations, runAgentMultipartUserData, runAgentUserDataValue } from '../private/run-agent-launch';
import { LAUNCH_TEMPLATE_MANAGED_BY, PROJECT_TAG_VALUE, TAG_COST_CENTER, TAG_ENVIRONMENT, TAG_MANAGED_BY, TAG_MAX_LIFETIME_HOURS, TAG_PROJECT } from '../private/tags';
import { DEFAULT_RUN_LIFETIME, maxLifetimeHoursTag, runLifetimeMinutes, validateCostCenter, validateEnvironment } from '../private/validation';

/**
 * Options of a `TrainingLaunchTemplate` that a foundation user may set (the
 * foundation supplies the environment, cost center, profile and security group).
 */
export interface TrainingLaunchTemplateOptions {
  /**
   * The instance type, for example `ec2.InstanceType.of(ec2.InstanceClass.G4DN, ec2.InstanceSize.XLARGE2)`.
   *
   * @default - none: the launcher passes `--instance-type`
   */
  readonly instanceType?: ec2.InstanceType;

  /**
   * The AMI. For an AMI published through an SSM parameter (such as the Deep
   * Learning AMIs), use `ec2.MachineImage.fromSsmParameter('/aws/service/deeplearning/ami/...')`:
   * CloudFormation resolves the parameter at each deployment.
   *
   * @default - none: the launcher passes `--image-id`
   */
  readonly machineImage?: ec2.IMachineImage;

  /**
   * The root device name of the AMI: `/dev/xvda` for Amazon Linux 2023 (including
   * its Deep Learning AMIs), `/dev/sda1` for Ubuntu. A name that does not match
   * the AMI adds a second, empty volume instead of resizing the root volume.
   *
   * @default '/dev/xvda'
   */
  readonly rootDeviceName?: string;

  /**
   * Size of the encrypted gp3 root volume: a whole number of GiB from 1 to 16384 (at least the
   * AMI's snapshot size; GPU AMIs with CUDA and frameworks need 75 GiB or more).
   *
   * @default Size.gibibytes(100)
   */
  readonly rootVolumeSize?: Size;

  /**
   * Launch spot instances (one-time requests, terminated on interruption).
   *
   * @default false
   */
  readonly spot?: boolean;

  /**
   * User data of the template: a script (`ec2.UserData.forLinux()`, or
   * `ec2.UserData.custom()` starting with `#!`). With `runAgent`, it is the
   * second part of the template's MIME multipart user data and runs after the
   * run agent's part, on every launch. The whole user data is gzip-compressed
   * at synthesis, so this part has about 6 KB of the 16 KB EC2 accepts, counted
   * compressed (a shell script of 15 KB or more); if it holds a token (such as
   * `addS3DownloadCommand`'s bucket) it is not, and this part has about 1.3 KB.
   * Synthesis fails if the whole is over. A `--user-data` given at launch
   * replaces the template's user data, agent included.
   *
   * @default - none
   */
  readonly userData?: ec2.UserData;

  /**
   * Whether instances launched from the template start the run agent at boot
   * (docs/RUNS.md): the user data's first part writes the agent, reads the
   * instance's `ChronosRunId` tag through IMDSv2 and, on a run, starts the agent
   * and a power-off backstop at the run lifetime plus five minutes; an instance
   * without the tag is not a run and the part exits. It turns on instance tags in
   * the instance metadata, so every instance tag key (the template's own, and
   * those of `Tags.of(...)` on an enclosing scope) may hold only letters, digits
   * and `+ - = . , _ : @`, and may not be `.`, `..` or `_index`: synthesis fails
   * otherwise, since EC2 would refuse every launch. Needs `bucket`.
   *
   * @default true
   */
  readonly runAgent?: boolean;

  /**
   * The IMDS `PUT` response hop limit: how many network hops the IMDSv2 session token may
   * travel. 2 lets Docker containers on bridge networking (one hop more than the host) get
   * IMDSv2 tokens, and so the instance role's credentials; 1 keeps the token on the host.
   * Left unset, it would depend on the AMI: 2 only for AMIs registered with `ImdsSupport=v2.0`,
   * 1 for the others. A whole number from 1 to 64.
   *
   * @default 2
   */
  readonly httpPutResponseHopLimit?: number;

  /**
   * Whether instances launched from the template have detailed (1-minute)
   * CloudWatch monitoring. It is billed per metric only while an instance runs,
   * nothing while none does, and organisations whose
   * controls require it (the AWS Config rule
   * `ec2-instance-detailed-monitoring-enabled`) need it; `false` leaves basic
   * (5-minute) monitoring, which is free.
   *
   * @default true
   */
  readonly detailedMonitoring?: boolean;
}

/**
 * Properties of a `TrainingLaunchTemplate`.
 */
export interface TrainingLaunchTemplateProps extends TrainingLaunchTemplateOptions {
  /** The environment name: part of the template name and the `Environment` tag of instances and volumes. */
  readonly environmentName: string;

  /** The `CostCenter` tag of instances and volumes (any valid tag value; the foundation warns about unknown ones). */
  readonly costCenter: string;

  /** The instance profile of training instances. */
  readonly instanceProfile: iam.IInstanceProfile;

  /** The security group of training instances. */
  readonly securityGroup: ec2.ISecurityGroup;

  /**
   * The training bucket, where the run agent reads run specs and writes
   * statuses, logs and checkpoints under `{environmentName}/`. Required while
   * `runAgent` is on; not allowed with `runAgent: false`. In a foundation it is
   * the foundation's bucket.
   *
   * @default - none: only with `runAgent: false`
   */
  readonly bucket?: s3.IBucket;

  /**
   * How long a run may last: the run agent's lifetime, and, plus a margin of 15
   * minutes for the boot, the agent's drain and its backstop, the instances'
   * `MaxLifetimeHours` tag (in hours rounded up to 0.01, a decimal such as
   * `1.75` for 90 minutes), which the `TrainingRunReaper` enforces. Whole
   * minutes, from 15 minutes to 14 days. In a foundation it is the foundation's
   * `maxRunLifetime`.
   *
   * @default Duration.hours(4)
   */
  readonly maxRunLifetime?: Duration;
}

/**
 * A launch template for training instances that makes the safe launch the
 * default: IMDSv2 required with a hop limit of 2 (so containers get tokens), `shutdown` terminates the instance (so
 * `shutdown -h +240` in user data ends billing with no IAM permission), an
 * encrypted gp3 root volume deleted on termination, the instance profile and
 * security group, and tags on instances and volumes: `Project`, `Environment`,
 * `CostCenter`, `MaxLifetimeHours`, and `ManagedBy=chronos-launch-template`
 * (the instances are not managed by CDK; the template itself keeps the
 * foundation's `ManagedBy=CDK`). By default (`runAgent`) its user data starts
 * the run agent on instances tagged `ChronosRunId` (docs/RUNS.md), and instance
 * tags are readable in the instance metadata.
 *
 * It sets no `associatePublicIpAddress`: the public subnet maps a public IP, and
 * a network interface in the template would make `--subnet-id` at launch fail.
 * It turns on detailed (1-minute) monitoring, billed per metric only while an
 * instance runs (`detailedMonitoring: false` leaves the free basic monitoring).
 * A template costs nothing.
 */
export class TrainingLaunchTemplate extends Construct {
  /** The launch template. */
  public readonly launchTemplate: ec2.ILaunchTemplate;

  /** The launch template's ID, for `run-instances --launch-template LaunchTemplateId=...`. */
  public readonly launchTemplateId: string;

  /** The launch template's name, `ChronosTrainingLaunchTemplate-{environmentName}`. */
  public readonly launchTemplateName: string;

  /**
   * The launch template's latest version number (`Fn::GetAtt LatestVersionNumber`), the version to launch:
   * CloudFormation adds a version on each change of the template and never moves its default version, which
   * stays the first one ("AWS::EC2::LaunchTemplate", CloudFormation reference, return values).
   */
  public readonly launchTemplateVersion: string;

  /** How long a run may last: the run agent's lifetime (the `MaxLifetimeHours` tag is this plus 15 minutes). */
  public readonly maxRunLifetime: Duration;

  /** Whether instances launched from the template start the run agent at boot. */
  public readonly runAgent: boolean;

  /**
   * @param scope the parent construct
   * @param id the construct id (part of every logical ID below it: keep it stable)
   * @param props the properties; see the props interface for defaults
   */
  constructor(scope: Construct, id: string, props: TrainingLaunchTemplateProps) {
    super(scope, id);
    const environmentName = validateEnvironment(props.environmentName, 'environmentName');
    const costCenter = validateCostCenter(props.costCenter);
    this.maxRunLifetime = props.maxRunLifetime ?? DEFAULT_RUN_LIFETIME;
    const lifetimeMinutes = runLifetimeMinutes('maxRunLifetime', this.maxRunLifetime);
    const rootVolumeSize = rootVolumeGiB('rootVolumeSize', props.rootVolumeSize ?? Size.gibibytes(100), 1);
    const rootDeviceName = props.rootDeviceName ?? '/dev/xvda';
    if (!Token.isUnresolved(rootDeviceName) && !rootDeviceName.startsWith('/dev/')) {
      throw new Error(`rootDeviceName '${rootDeviceName}' must be a device name such as '/dev/xvda' or '/dev/sda1'`);
    }
    // EC2 accepts "Integers from 1 to 64" ("LaunchTemplateInstanceMetadataOptionsRequest", Amazon EC2 API Reference,
    // https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_LaunchTemplateInstanceMetadataOptionsRequest.html).
    const hopLimit = props.httpPutResponseHopLimit ?? 2;
    if (!Token.isUnresolved(hopLimit) && !(Number.isInteger(hopLimit) && hopLimit >= 1 && hopLimit <= 64)) {
      throw new Error(`httpPutResponseHopLimit is ${hopLimit}; it must be a whole number of hops from 1 to 64 ` +
        '(the range EC2 accepts for HttpPutResponseHopLimit)');
    }
    this.launchTemplateName = `ChronosTrainingLaunchTemplate-${environmentName}`;
    this.runAgent = props.runAgent ?? true;
    if (this.runAgent && !props.bucket) {
      throw new Error(`TrainingLaunchTemplate ${this.node.path}: runAgent is on (the default) and bucket is missing: ` +
        'the run agent reads and writes the training bucket; pass bucket, or set runAgent: false');
    }
    if (!this.runAgent && props.bucket) {
      throw new Error(`TrainingLaunchTemplate ${this.node.path}: bucket is given with runAgent: false; ` +
        'only the run agent uses it: leave bucket out, or turn runAgent on');
    }
    // No bucket name: the launcher tags it (`ChronosBucket`), so that the user data holds no token and can be
    // gzip-compressed at synthesis.
    const agentOptions = this.runAgent ? {
      environmentName,
      maxRunLifetimeSeconds: this.maxRunLifetime.toSeconds(),
    } : undefined;

    const fallbackUserData = agentOptions ? runAgentMultipartUserData(agentOptions, props.userData, 'userData') : undefined;
    const template = new ec2.LaunchTemplate(this, 'Resource', {
      launchTemplateName: this.launchTemplateName,
      instanceType: props.instanceType,
      machineImage: props.machineImage,
      userData: fallbackUserData ?? props.userData,
      instanceProfile: props.instanceProfile,
      securityGroup: props.securityGroup,
      requireImdsv2: true,
      // Explicit, not the AMI's default: "In a container environment, when IMDSv2 is required, we recommend
      // setting the hop limit to 2" ("Configure instance metadata options for new instances", Amazon EC2 User
      // Guide, https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-IMDS-new-instances.html). Only
      // AMIs registered with ImdsSupport v2.0 default it to 2; the others keep 1, and a bridge-networked
      // container then gets no IMDSv2 token and no credentials.
      httpPutResponseHopLimit: hopLimit,
      // The agent reads its run ID from `tags/instance/ChronosRunId` ("View tags for your EC2 instances using
      // instance metadata", Amazon EC2 User Guide,
      // https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/work-with-tags-in-IMDS.html); off (unset) without it.
      instanceMetadataTags: this.runAgent ? true : undefined,
      instanceInitiatedShutdownBehavior: ec2.InstanceInitiatedShutdownBehavior.TERMINATE,
      // LaunchTemplateData Monitoring.Enabled ("Enable or turn off detailed monitoring for your instances", Amazon
      // EC2 User Guide): billed only while an instance runs.
      detailedMonitoring: props.detailedMonitoring ?? true,
      blockDevices: [encryptedRootVolume(rootDeviceName, rootVolumeSize)],
      spotOptions: props.spot ? {
        requestType: ec2.SpotRequestType.ONE_TIME,
        interruptionBehavior: ec2.SpotInstanceInterruption.TERMINATE,
      } : undefined,
    });

    // Instances and volumes: the template's tags merged with its own, which win.
    const ownTags: Record<string, string> = {
      Name: `chronos-training-${environmentName}`,
      [TAG_PROJECT]: PROJECT_TAG_VALUE,
      [TAG_ENVIRONMENT]: environmentName,
      [TAG_COST_CENTER]: costCenter,
      // Hours as a decimal, what the run reaper parses: the agent's lifetime plus the margin for the boot, the drain
      // and the backstop (90 minutes: '1.75'), so that the reaper, which counts from LaunchTime, never ends a run
      // before its agent's own drain.
      [TAG_MAX_LIFETIME_HOURS]: maxLifetimeHoursTag(lifetimeMinutes * 60),
      [TAG_MANAGED_BY]: LAUNCH_TEMPLATE_MANAGED_BY,
    };
    // `spot-instances-request` only with spot: a tag specification for a resource the
    // launch does not create makes RunInstances fail, so on-demand launches would break.
    const launchedTags = tagLaunchedResources(template, ownTags, ['instance', 'volume', ...(props.spot ? ['spot-instances-request'] : [])]);
    if (agentOptions) {
      // The L2 renders its userData as Fn::Base64 of text, which cannot carry gzip's bytes: the L1 property takes
      // the gzip-compressed archive, base64-encoded at synthesis (the uncompressed archive when the user's part holds
      // a token). test/compute/training-launch-template.test.ts decodes it.
      (template.node.defaultChild as ec2.CfnLaunchTemplate).addPropertyOverride('LaunchTemplateData.UserData',
        runAgentUserDataValue(agentOptions, props.userData, fallbackUserData!));
      addRunAgentValidations(this, { agent: agentOptions, userData: props.userData, instanceTags: launchedTags });
    }

    this.launchTemplate = template;
    this.launchTemplateId = template.launchTemplateId!;
    this.launchTemplateVersion = template.latestVersionNumber;
  }
}
