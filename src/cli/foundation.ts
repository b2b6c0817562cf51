import { ListExportsCommand } from '@aws-sdk/client-cloudformation';
import { DescribeLaunchTemplateVersionsCommand } from '@aws-sdk/client-ec2';
import { GetParametersByPathCommand } from '@aws-sdk/client-ssm';
import { Clients, CliError, errorCode } from './context';

/** What the launcher needs of an environment's foundation. */
export interface Foundation {
  readonly environment: string;
  readonly bucket: string;
  readonly launchTemplateId: string;
  /** Public subnets, in zone order, each with its zone. */
  readonly subnets: Array<{ subnetId: string; zone: string }>;
  readonly costCenter: string;
  /** The foundation's run lifetime in seconds (the template's `MaxLifetimeHours` tag, else 4 hours). */
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
  const template = await templateFacts(clients, values.LaunchTemplateId);
  const hours = Number(values.MaxLifetimeHours ?? template.maxLifetimeHours ?? DEFAULT_LIFETIME_HOURS);
  return {
    environment: env,
    bucket: need('S3BucketName'),
    launchTemplateId: values.LaunchTemplateId,
    subnets,
    costCenter: values.CostCenter ?? 'train',
    maxLifetimeSeconds: Math.round((hours > 0 ? hours : DEFAULT_LIFETIME_HOURS) * 3600),
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
 * The template's default version (the one RunInstances uses: `$Default`): its instances' `MaxLifetimeHours` tag,
 * whether it asks for spot, its instance type and its image.
 */
async function templateFacts(clients: Clients, launchTemplateId: string):
Promise<{ maxLifetimeHours?: string; spot: boolean; instanceType?: string; imageId?: string }> {
  try {
    const reply = await clients.ec2.send(new DescribeLaunchTemplateVersionsCommand({
      LaunchTemplateId: launchTemplateId, Versions: ['$Default'],
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
      throw new CliError(`the foundation's launch template ${launchTemplateId} does not exist (${errorCode(e)}): is the foundation deployed?`);
    }
    throw e;
  }
}
