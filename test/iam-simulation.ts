/*
 * Helpers of the IAM simulation tests: policies taken from a synthesized
 * template with every intrinsic function resolved to the test account and
 * region, evaluated by @cloud-copilot/iam-simulate.
 */
import { runSimulation } from '@cloud-copilot/iam-simulate';

export const ACCOUNT = '123456789012';
export const REGION = 'us-east-1';

/** An instance ARN in the test account. */
export const instanceArn = (id: string, region = REGION) => `arn:aws:ec2:${region}:${ACCOUNT}:instance/${id}`;

/** The ID a launch template of a synthesized template resolves to. */
export const LAUNCH_TEMPLATE_ID = 'lt-0123456789abcdef0';

/** The ID a VPC of a synthesized template resolves to. */
export const VPC_ID = 'vpc-0123456789abcdef0';

/** The ID a security group of a synthesized template resolves to (`Fn::GetAtt GroupId`). */
export const SECURITY_GROUP_ID = 'sg-0123456789abcdef0';

/**
 * Resolves Ref (pseudo parameters, launch templates, VPCs, the template parameters and logical IDs given in `refs`,
 * job definitions as their revision 1), Fn::GetAtt of security groups, buckets, log groups, queues, roles and job queues, Fn::Join,
 * functions, Fn::Split and Fn::Select against a template's resources.
 */
export function resolver(resources: Record<string, any>, refs: Record<string, string> = {}): (value: any) => any {
  const resolve = (value: any): any => {
    if (Array.isArray(value)) return value.map(resolve);
    if (value === null || typeof value !== 'object') return value;
    if ('Ref' in value) {
      const pseudo: Record<string, string> = { 'AWS::Partition': 'aws', 'AWS::Region': REGION, 'AWS::AccountId': ACCOUNT, 'AWS::URLSuffix': 'amazonaws.com', ...refs };
      if (value.Ref in pseudo) return pseudo[value.Ref];
      if (resources[value.Ref]?.Type === 'AWS::Batch::JobDefinition') {
        return `arn:aws:batch:${REGION}:${ACCOUNT}:job-definition/${resources[value.Ref].Properties.JobDefinitionName}:1`;
      }
      if (resources[value.Ref]?.Type === 'AWS::EC2::LaunchTemplate') return LAUNCH_TEMPLATE_ID;
      if (resources[value.Ref]?.Type === 'AWS::EC2::VPC') return VPC_ID;
      throw new Error(`unresolvable Ref ${value.Ref}`);
    }
    if ('Fn::Split' in value) return resolve(value['Fn::Split'][1]).split(value['Fn::Split'][0]);
    if ('Fn::Select' in value) return resolve(value['Fn::Select'][1])[value['Fn::Select'][0]];
    if ('Fn::GetAtt' in value) {
      const [logicalId, attribute] = value['Fn::GetAtt'];
      const resource = resources[logicalId];
      if (resource.Type === 'AWS::EC2::SecurityGroup' && attribute === 'GroupId') return SECURITY_GROUP_ID;
      if (resource.Type === 'AWS::S3::Bucket' && attribute === 'Arn') return `arn:aws:s3:::${resolve(resource.Properties.BucketName)}`;
      // Generated names: the logical ID without its hash, e.g. `ReaperLogGroup`.
      const name = logicalId.replace(/[0-9A-F]{8}$/, '');
      if (resource.Type === 'AWS::Logs::LogGroup' && attribute === 'Arn') {
        return `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${resource.Properties?.LogGroupName ?? name}:*`;
      }
      if (resource.Type === 'AWS::SQS::Queue' && attribute === 'Arn') return `arn:aws:sqs:${REGION}:${ACCOUNT}:${name}`;
      if (resource.Type === 'AWS::KMS::Key' && attribute === 'Arn') return `arn:aws:kms:${REGION}:${ACCOUNT}:key/${name}`;
      if (resource.Type === 'AWS::IAM::Role' && attribute === 'Arn') return `arn:aws:iam::${ACCOUNT}:role/${name}`;
      if (resource.Type === 'AWS::Lambda::Function' && attribute === 'Arn') return `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}`;
      if (resource.Type === 'AWS::Batch::JobQueue' && attribute === 'JobQueueArn') {
        return `arn:aws:batch:${REGION}:${ACCOUNT}:job-queue/${resource.Properties.JobQueueName ?? name}`;
      }
      throw new Error(`unresolvable GetAtt ${logicalId}.${attribute}`);
    }
    if ('Fn::Join' in value) return resolve(value['Fn::Join'][1]).join(value['Fn::Join'][0]);
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(v)]));
  };
  return resolve;
}

/** A row of a role's table of requests (docs/IAM.md): what it tries, and whether it is allowed. */
export interface SimulationRow {
  readonly request: string;
  readonly action: string;
  readonly resource: string;
  readonly context?: Record<string, string>;
  readonly allowed: boolean;
}

/** One request to evaluate. */
export interface SimulatedRequest {
  readonly principal: string;
  readonly action: string;
  readonly resource: string;
  readonly context: Record<string, string>;
}

/** Evaluates a request against identity policies in strict mode; throws on a simulation error. */
export async function simulate(policies: Array<{ name: string; policy: any }>, request: SimulatedRequest, label: string,
  resourcePolicy?: any) {
  const result: any = await runSimulation({
    identityPolicies: policies,
    resourcePolicy,
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    request: {
      principal: request.principal,
      action: request.action,
      resource: { resource: request.resource, accountId: ACCOUNT },
      contextVariables: request.context,
    },
  }, { simulationMode: 'Strict' });
  if (result.resultType === 'error') throw new Error(`simulation error for '${label}': ${JSON.stringify(result.errors)}`);
  return result;
}
