import { ListExportsCommand } from '@aws-sdk/client-cloudformation';
import { DescribeLaunchTemplateVersionsCommand } from '@aws-sdk/client-ec2';
import { GetParametersByPathCommand } from '@aws-sdk/client-ssm';
import { Clients, CliError, errorCode } from './context';

/** What the launcher needs of an environment's foundation. */
export interface Foundation {
  readonly environment: string;
  readonly bucket: string;
  readonly launchTemplateId: string;
  /**
   * The launch template version to launch and describe: the number the foundation publishes as `LaunchTemplateVersion`
   * (its latest version, which CloudFormation never makes the default), or `$Latest` for an older foundation.
   */
  readonly launchTemplateVersion: string;
  /** Public subnets, in zone order, each with its zone. */
  readonly subnets: Array<{ subnetId: string; zone: string }>;
  readonly costCenter: string;
  /**
   * The foundation's run lifetime in seconds: the template's `MaxLifetimeHours` tag minus LIFETIME_MARGIN_SECONDS
   * (the tag carries the margin), else 4 hours.
   */
  readonly maxLifetimeSeconds: number;
  /** Whether the template itself asks for spot (then a launch cannot be on-demand). */
  readonly templateIsSpot: boolean;
  /** The template's instance type, if it has one. */
  readonly templateInstanceType?: string;
  /** The template's image (an AMI ID or `resolve:ssm:NAME`), if it has one: by default it has none. */
  readonly templateImageId?: string;
  /** Where the values came from: `SSM parameters` or `CloudFormation exports`. */
  readonly source: string;
}

const DEFAULT_LIFETIME_HOURS = 4;

/**
 * The margin between a run's lifetime and its `MaxLifetimeHours` tag, which the run reaper enforces from the instance's
 * `LaunchTime`: the boot before the agent starts counting, its drain and its backstop (docs/RUNS.md). The foundation's
 * template tag is its `maxRunLifetime` plus this margin, and so is every run's tag.
 */
export const LIFETIME_MARGIN_SECONDS = 900;

/** The `MaxLifetimeHours` tag of a run of `lifetimeSeconds`: the lifetime plus the margin, rounded up to 0.01 h. */
export function lifetimeTagHours(lifetimeSeconds: number): number {
  return Math.ceil((lifetimeSeconds + LIFETIME_MARGIN_SECONDS) / 36) / 100;
}
const ENV_PATTERN = /^[a-z]([a-z0-9-]*[a-z0-9])?$/;

/** Reads `/chronos-training/{env}/*`, or the `ChronosTraining-{env}-*` exports when there are no parameters. */
export async function resolveFoundation(clients: Clients, env: string): Promise<Foundation> {
  checkEnvName(env);
  let values = await fromParameters(clients, env);
  let source = 'SSM parameters';
  if (Object.keys(values).length === 0) {
    values = await fromExports(clients, env);
    source = 'CloudFormation exports';
  }
  if (Object.keys(values).length === 0) {
    throw new CliError(`no foundation for environment '${env}' in this account and region: neither SSM parameters ` +
      `/chronos-training/${env}/* nor CloudFormation exports ChronosTraining-${env}-* (check --env, --region, --profile)`);
  }
  const need = (suffix: string): string => {
    const v = values[suffix];
    if (!v) throw new CliError(`the foundation of '${env}' has no ${suffix} (in its ${source}); redeploy it with this version of the library`);
    return v;
  };
  if (!values.LaunchTemplateId) {
    throw new CliError(`the foundation of '${env}' has no launch template (it was deployed with launchTemplate: false); ` +
      'chronos-training launches from the foundation\'s launch template: deploy it with the default launchTemplate');
  }
  const subnetIds = need('PublicSubnetIds').split(',').map(s => s.trim()).filter(Boolean);
  const zones = need('AvailabilityZones').split(',').map(s => s.trim());
  const subnets = subnetIds.map((subnetId, i) => ({ subnetId, zone: zones[i] ?? '?' }));
  const launchTemplateVersion = values.LaunchTemplateVersion?.trim() || '$Latest';
  const template = await templateFacts(clients, values.LaunchTemplateId, launchTemplateVersion);
  const tagHours = Number(values.MaxLifetimeHours ?? template.maxLifetimeHours);
  const tagSeconds = Math.round(tagHours * 3600);
  return {
    environment: env,
    bucket: need('S3BucketName'),
    launchTemplateId: values.LaunchTemplateId,
    launchTemplateVersion,
    subnets,
    costCenter: values.CostCenter ?? 'train',
    // A tag no longer than the margin (a foundation from before the margin, with a tiny lifetime) is the lifetime itself.
    maxLifetimeSeconds: !(tagHours > 0) ? DEFAULT_LIFETIME_HOURS * 3600
      : tagSeconds > LIFETIME_MARGIN_SECONDS ? tagSeconds - LIFETIME_MARGIN_SECONDS : tagSeconds,
    templateIsSpot: template.spot,
    templateInstanceType: template.instanceType,
    ...(template.imageId ? { templateImageId: template.imageId } : {}),
    source,
  };
}

/** Refuses what cannot be an environment name (the library's rule: lower case letters, digits and '-'). */
export function checkEnvName(env: string): void {
  if (!ENV_PATTERN.test(env)) throw new CliError(`--env '${env}' is not an environment name (lower case letters, digits and '-')`, 2);
}

async function fromParameters(clients: Clients, env: string): Promise<Record<string, string>> {
  const prefix = `/chronos-training/${env}/`;
  const values: Record<string, string> = {};
  let token: string | undefined;
  try {
    do {
      const page = await clients.ssm.send(new GetParametersByPathCommand({ Path: prefix, NextToken: token }));
      for (const p of page.Parameters ?? []) if (p.Name && p.Value) values[p.Name.slice(prefix.length)] = p.Value;
      token = page.NextToken;
    } while (token);
  } catch (e) {
    // Without ssm:GetParametersByPath the exports may still be readable.
    if (!/AccessDenied|UnauthorizedOperation/.test(errorCode(e))) throw e;
  }
  return values;
}

async function fromExports(clients: Clients, env: string): Promise<Record<string, string>> {
  const prefix = `ChronosTraining-${env}-`;
  const values: Record<string, string> = {};
  let token: string | undefined;
  do {
    const page = await clients.cfn.send(new ListExportsCommand({ NextToken: token }));
    for (const x of page.Exports ?? []) {
      if (x.Name?.startsWith(prefix) && x.Value) values[x.Name.slice(prefix.length)] = x.Value;
    }
    token = page.NextToken;
  } while (token);
  return values;
}

/**
 * The facts of the template version the launcher launches (never `$Default`: CloudFormation adds a version on each
 * change of the template's data and never moves the default, `AWS::EC2::LaunchTemplate` reference, return values
 * `LatestVersionNumber` and `DefaultVersionNumber`): its instances' `MaxLifetimeHours` tag, whether it asks for spot,
 * its instance type and its image.
 */
async function templateFacts(clients: Clients, launchTemplateId: string, version: string):
Promise<{ maxLifetimeHours?: string; spot: boolean; instanceType?: string; imageId?: string }> {
  try {
    const reply = await clients.ec2.send(new DescribeLaunchTemplateVersionsCommand({
      LaunchTemplateId: launchTemplateId, Versions: [version],
    }));
    const data = reply.LaunchTemplateVersions?.[0]?.LaunchTemplateData;
    const instanceTags = data?.TagSpecifications?.find(t => t.ResourceType === 'instance')?.Tags ?? [];
    return {
      maxLifetimeHours: instanceTags.find(t => t.Key === 'MaxLifetimeHours')?.Value,
      spot: data?.InstanceMarketOptions?.MarketType === 'spot',
      instanceType: data?.InstanceType,
      imageId: data?.ImageId,
    };
  } catch (e) {
    if (/NotFound|Malformed/.test(errorCode(e))) {
      throw new CliError(`the foundation's launch template ${launchTemplateId} (version ${version}) does not exist (${errorCode(e)}): ` +
        'is the foundation deployed?');
    }
    throw e;
  }
}
