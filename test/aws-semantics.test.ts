/*
 * Rules of real AWS that the moto emulator does not enforce, one `describe` per rule, each naming the rule
 * and the AWS document it comes from. A template moto accepts can still be malformed, undeployable or
 * undestroyable on a real account, and a green e2e proves the wiring, not the semantics: these tests pin
 * what the rule requires. The next rule of this kind goes here.
 */
import * as fs from 'fs';
import * as path from 'path';
import { DescribeInstancesCommand, EC2Client, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { App, CfnResource, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { mockClient } from 'aws-sdk-client-mock';
import {
  ChronosTrainingFoundation, ChronosTrainingStack, TrainingBucket, TrainingBudget, TrainingLaunchTemplate, TrainingLaunchTemplateOptions,
} from '../src';
import { nagFindings, onlyResource, resourcesOf, TEST_ENV } from './helpers';
import { reap, ReaperConfig, TERMINATE_BATCH } from '../src/guardrails/training-run-reaper.lambda';

// "Either FilterExpression and Metrics or CostFilters and CostTypes, not both or a different combination":
// "CreateBudget", AWS Billing and Cost Management API Reference,
// https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_budgets_CreateBudget.html
describe('CreateBudget: a FilterExpression goes with Metrics, never with CostFilters or CostTypes', () => {
  function budgetData(filterByEnvironment?: boolean): any {
    const stack = new Stack(new App(), 'TestStack', { env: TEST_ENV });
    new TrainingBudget(stack, 'Budget', {
      environmentName: 'dev', monthlyLimitUsd: 50, notificationEmails: ['ml-team@example.com'], filterByEnvironment,
    });
    return onlyResource(Template.fromStack(stack), 'AWS::Budgets::Budget').Properties.Budget;
  }

  // Without Metrics the budget is created but malformed: its history fails with "Selected metrics
  // cannot be null" (hashicorp/terraform-provider-aws#46866).
  test.each([true, false])('the filter expression comes with the UnblendedCost metric and no CostFilters or CostTypes (filterByEnvironment %p)', filterByEnvironment => {
    const data = budgetData(filterByEnvironment);
    expect(data.FilterExpression).toBeDefined();
    expect(data.Metrics).toEqual(['UnblendedCost']);
    expect(data).not.toHaveProperty('CostFilters');
    expect(data).not.toHaveProperty('CostTypes');
  });

  // The Budgets TagValues reference does not settle the key's format; the Cost Explorer Expression
  // reference (https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_Expression.html)
  // filters a tag with its plain key. `user:` belongs to the legacy CostFilters TagKeyValue syntax.
  test('tag filters use the plain tag keys, not user:-prefixed ones', () => {
    const keys = budgetData().FilterExpression.And.map((e: any) => e.Tags.Key);
    expect(keys).toEqual(['Project', 'Environment']);
  });
});

// "In a container environment, when IMDSv2 is required, we recommend setting the hop limit to 2"; unset, the
// hop limit is 2 only for AMIs registered with ImdsSupport v2.0, 1 for the others: "Configure instance metadata
// options for new instances", Amazon EC2 User Guide,
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-IMDS-new-instances.html
describe('EC2 IMDS: with IMDSv2 required, containers need an HttpPutResponseHopLimit of 2', () => {
  function metadataOptions(options: TrainingLaunchTemplateOptions = {}): any {
    const stack = new Stack(new App(), 'TestStack');
    const vpc = new ec2.Vpc(stack, 'Vpc', { natGateways: 0, maxAzs: 1, restrictDefaultSecurityGroup: false });
    const role = new iam.Role(stack, 'Role', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
    new TrainingLaunchTemplate(stack, 'LaunchTemplate', {
      environmentName: 'dev',
      costCenter: 'train',
      instanceProfile: new iam.InstanceProfile(stack, 'Profile', { role }),
      securityGroup: new ec2.SecurityGroup(stack, 'Sg', { vpc }),
      bucket: s3.Bucket.fromBucketName(stack, 'Bucket', 'chronos-training-dev'),
      ...options,
    });
    return onlyResource(Template.fromStack(stack), 'AWS::EC2::LaunchTemplate').Properties.LaunchTemplateData.MetadataOptions;
  }

  test('the launch template requires IMDSv2 with a hop limit of 2, whatever the AMI', () => {
    expect(metadataOptions()).toEqual({ HttpTokens: 'required', HttpPutResponseHopLimit: 2, InstanceMetadataTags: 'enabled' });
  });

  test("the foundation's default launch template has it too", () => {
    const stack = new ChronosTrainingStack(new App(), 'ChronosTraining-dev-Stack', { env: TEST_ENV });
    const data = onlyResource(Template.fromStack(stack), 'AWS::EC2::LaunchTemplate').Properties.LaunchTemplateData;
    expect(data.MetadataOptions).toEqual({ HttpTokens: 'required', HttpPutResponseHopLimit: 2, InstanceMetadataTags: 'enabled' });
  });

  test('httpPutResponseHopLimit: 1 keeps the token on the host', () => {
    expect(metadataOptions({ httpPutResponseHopLimit: 1 })).toEqual({ HttpTokens: 'required', HttpPutResponseHopLimit: 1, InstanceMetadataTags: 'enabled' });
  });

  // The range: "Integers from 1 to 64" (LaunchTemplateInstanceMetadataOptionsRequest, Amazon EC2 API Reference,
  // https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_LaunchTemplateInstanceMetadataOptionsRequest.html).
  test.each([0, 65, 1.5, -1])('rejects httpPutResponseHopLimit %p, naming the prop, the value and the rule', value => {
    expect(() => metadataOptions({ httpPutResponseHopLimit: value }))
      .toThrow(`httpPutResponseHopLimit is ${value}; it must be a whole number of hops from 1 to 64`);
  });

  test.each([1, 64])('accepts httpPutResponseHopLimit %p', value => {
    expect(metadataOptions({ httpPutResponseHopLimit: value }).HttpPutResponseHopLimit).toBe(value);
  });
});

// "If you specify multiple instances and the request fails (for example, because of a single incorrect instance
// ID), none of the instances are terminated"; with termination protection, none in the protected instance's
// Availability Zone are: "TerminateInstances", Amazon EC2 API Reference,
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_TerminateInstances.html
describe('EC2 TerminateInstances: one instance that cannot be terminated fails the whole request', () => {
  const ec2Mock = mockClient(EC2Client);
  const client = new EC2Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  const NOW = new Date('2026-11-27T12:00:00.000Z');
  const config: ReaperConfig = {
    filterTags: { Project: 'Chronos-Training', Environment: 'dev' },
    excludeTags: { ManagedBy: 'chronos-batch' },
    lifetimeTagKey: 'MaxLifetimeHours',
    defaultLifetimeSeconds: 6 * 3600,
    dryRun: false,
  };
  const PROTECTED = 'i-protected';
  let log: jest.SpyInstance;

  function expiredInstances(ids: string[]): void {
    ec2Mock.on(DescribeInstancesCommand).resolves({
      Reservations: [{
        Instances: ids.map(InstanceId => ({
          InstanceId,
          LaunchTime: new Date(NOW.getTime() - 9 * 3600 * 1000),
          State: { Name: 'running' },
          Tags: [{ Key: 'MaxLifetimeHours', Value: '4' }],
        })),
      }],
    });
  }

  beforeEach(() => {
    ec2Mock.reset();
    log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
    // As EC2 does: a request naming a protected instance fails as a whole.
    ec2Mock.on(TerminateInstancesCommand).callsFake(input => {
      if (input.InstanceIds.includes(PROTECTED)) {
        throw Object.assign(new Error(`The instance '${PROTECTED}' may not be terminated. Modify its 'disableApiTermination' ` +
          'instance attribute and try again.'), { name: 'OperationNotPermitted' });
      }
      return { TerminatingInstances: input.InstanceIds.map((InstanceId: string) => ({ InstanceId })) };
    });
  });

  afterEach(() => log.mockRestore());

  function terminatedIds(): string[] {
    return ec2Mock.commandCalls(TerminateInstancesCommand)
      .filter(c => !c.args[0].input.InstanceIds!.includes(PROTECTED))
      .flatMap(c => c.args[0].input.InstanceIds!);
  }

  test('one protected instance does not shield the others: they are terminated, then the invocation fails naming it', async () => {
    expiredInstances(['i-a', PROTECTED, 'i-b']);
    await expect(reap(client, config, NOW)).rejects.toThrow(
      /TerminateInstances failed for 1 expired instance\(s\), after terminating the others: i-protected: OperationNotPermitted: .*disableApiTermination/);
    expect(terminatedIds().sort()).toEqual(['i-a', 'i-b']);
  });

  test('logs each instance that still fails as one JSON line with its reason', async () => {
    expiredInstances(['i-a', PROTECTED]);
    await expect(reap(client, config, NOW)).rejects.toThrow(PROTECTED);
    const lines = log.mock.calls.map(c => JSON.parse(c[0]));
    expect(lines).toContainEqual(expect.objectContaining({
      level: 'ERROR', instanceId: PROTECTED, error: 'OperationNotPermitted', reason: expect.stringContaining('may not be terminated'),
    }));
    expect(lines).toContainEqual(expect.objectContaining({
      terminated: ['i-a'], failed: [expect.objectContaining({ instanceId: PROTECTED })],
    }));
  });

  test('a protected instance in the first batch of many: every other instance of every batch is terminated', async () => {
    const others = Array.from({ length: TERMINATE_BATCH + 2 }, (_, i) => `i-${i}`);
    expiredInstances([PROTECTED, ...others]);
    await expect(reap(client, config, NOW)).rejects.toThrow(PROTECTED);
    expect(new Set(terminatedIds())).toEqual(new Set(others));
  });
});

// "For Amazon S3 buckets, you must delete all objects in the bucket for deletion to succeed": "DeletionPolicy
// attribute", AWS CloudFormation User Guide,
// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-deletionpolicy.html
describe('CloudFormation DeletionPolicy Delete: a bucket must be empty to be deleted', () => {
  const AUTO_DELETE = 'Custom::S3AutoDeleteObjects';

  test('autoDeleteObjects with RemovalPolicy.DESTROY empties the bucket before CloudFormation deletes it', () => {
    const stack = new Stack(new App(), 'TestStack');
    new TrainingBucket(stack, 'Bucket', { environmentName: 'dev', removalPolicy: RemovalPolicy.DESTROY, autoDeleteObjects: true });
    const template = Template.fromStack(stack);
    const bucketId = Object.keys(template.findResources('AWS::S3::Bucket'))[0];
    expect(template.toJSON().Resources[bucketId].DeletionPolicy).toBe('Delete');
    expect(onlyResource(template, AUTO_DELETE).Properties.BucketName).toEqual({ Ref: bucketId });
  });

  test('is off by default: no custom resource, the bucket retained', () => {
    const stack = new Stack(new App(), 'TestStack');
    new TrainingBucket(stack, 'Bucket', { environmentName: 'dev' });
    expect(resourcesOf(Template.fromStack(stack), AUTO_DELETE)).toEqual([]);
  });

  test.each([undefined, RemovalPolicy.RETAIN, RemovalPolicy.SNAPSHOT])('autoDeleteObjects with removalPolicy %p fails synthesis, naming both props', removalPolicy => {
    const stack = new Stack(new App(), 'TestStack');
    expect(() => new TrainingBucket(stack, 'Bucket', { environmentName: 'dev', removalPolicy, autoDeleteObjects: true }))
      .toThrow(/autoDeleteObjects is true but removalPolicy is .*; .*set removalPolicy to RemovalPolicy.DESTROY/);
  });

  test('every integ case that deletes its bucket empties it first (integ/*.snapshot)', () => {
    const integ = path.join(__dirname, '..', 'integ');
    const templates = fs.readdirSync(integ).filter(d => d.endsWith('.snapshot')).flatMap(d =>
      fs.readdirSync(path.join(integ, d)).filter(f => f.endsWith('.template.json') && !f.endsWith('-Assertions.template.json'))
        .map(f => path.join(integ, d, f)));
    const destroyed: string[] = [];
    for (const file of templates) {
      const resources: Record<string, any> = JSON.parse(fs.readFileSync(file, 'utf8')).Resources;
      const emptied = Object.values(resources).filter(r => r.Type === AUTO_DELETE).map(r => r.Properties.BucketName.Ref);
      for (const [id, r] of Object.entries(resources)) {
        if (r.Type === 'AWS::S3::Bucket' && r.DeletionPolicy === 'Delete') {
          destroyed.push(`${path.basename(path.dirname(file))}/${id}`);
          expect(emptied).toContain(id);
        }
      }
    }
    expect(destroyed.length).toBeGreaterThanOrEqual(2);
  });

  // The handler is aws-cdk-lib's (found by its type, documented on BucketProps.autoDeleteObjects), and the library
  // leaves it as aws-cdk-lib renders it: its scanner findings are skipped in scripts/scan/run.sh (docs/COMPLIANCE.md),
  // not by metadata that would depend on the provider's construct IDs.
  test('the custom resource it adds is free while idle, and its handler is aws-cdk-lib\'s own, unchanged', () => {
    const stack = new ChronosTrainingStack(new App(), 'ChronosTraining-dev-Stack', {
      // Without the run keeper, so that the only function is the custom resource's handler.
      env: TEST_ENV, bucketProps: { removalPolicy: RemovalPolicy.DESTROY, autoDeleteObjects: true }, runKeeper: false,
    });
    new TrainingBucket(stack, 'Second', { environmentName: 'second', removalPolicy: RemovalPolicy.DESTROY, autoDeleteObjects: true });
    // ZeroIdleCostChecker (on ChronosTrainingStack) annotates an error on anything that bills while idle.
    expect(Annotations.fromStack(stack).findError('*', Match.anyValue())).toEqual([]);
    expect(nagFindings(stack)).toEqual([]);
    const handler = onlyResource(Template.fromStack(stack), 'AWS::Lambda::Function');
    expect(handler.Properties.Description['Fn::Join'][1][0]).toMatch(/auto-deleting objects/);
    expect(handler.Metadata?.checkov).toBeUndefined();
    expect(handler.Metadata?.['cfn-lint']).toBeUndefined();
  });
});

/** Every explicit name of a resource type whose names are unique per account, not per region. */
function accountWideNames(template: Template): string[] {
  const nameProperty: Record<string, string> = {
    'AWS::IAM::Role': 'RoleName',
    'AWS::IAM::InstanceProfile': 'InstanceProfileName',
    'AWS::IAM::ManagedPolicy': 'ManagedPolicyName',
    'AWS::IAM::Policy': 'PolicyName',
    'AWS::Budgets::Budget': 'Budget.BudgetName',
  };
  return Object.entries(nameProperty).flatMap(([type, property]) => resourcesOf(template, type)
    .filter(r => type !== 'AWS::IAM::Policy' || !r.Properties.Roles) // inline-attached policies are per role
    .map(r => property.split('.').reduce((v: any, k) => v?.[k], r.Properties))
    .filter((name): name is string => name !== undefined));
}

describe('IAM and AWS Budgets names are unique per account, not per region (regionalNames)', () => {
  // IAM User Guide, "IAM object quotas and names" (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html):
  // names of roles, instance profiles and policies are unique within the account, and IAM is global.
  // AWS Budgets API Reference, CreateBudget (https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_budgets_CreateBudget.html):
  // a budget name is unique within an account.
  const stackIn = (app: App, region: string, regionalNames?: boolean) => new ChronosTrainingStack(app, `Dev-${region}`, {
    environmentName: 'dev',
    env: { account: '123456789012', region },
    regionalNames,
    budget: { monthlyLimitUsd: 100, notificationEmails: ['ml@example.com'] },
  });

  test('by default the names are those of one region: the same environment in a second region collides', () => {
    const app = new App();
    const stacks = ['us-east-1', 'us-west-2'].map(region => stackIn(app, region));
    const [east, west] = stacks.map(s => accountWideNames(Template.fromStack(s)));
    expect(east).toEqual(expect.arrayContaining(['ChronosTrainingInstanceProfile-dev', 'ChronosTraining-dev']));
    expect(east.filter(name => west.includes(name))).toEqual(expect.arrayContaining(['ChronosTrainingInstanceProfile-dev']));
  });

  test('with regionalNames, no account-wide name of one region is that of another, and the budget counts its own region', () => {
    const app = new App();
    const east = stackIn(app, 'us-east-1', true);
    const west = stackIn(app, 'us-west-2', true);
    const [eastNames, westNames] = [east, west].map(s => accountWideNames(Template.fromStack(s)));
    expect(eastNames).toEqual(expect.arrayContaining(['ChronosTrainingInstanceProfile-dev-us-east-1', 'ChronosTraining-dev-us-east-1']));
    expect(eastNames.filter(name => westNames.includes(name))).toEqual([]);
    Template.fromStack(west).hasResourceProperties('AWS::Budgets::Budget', {
      Budget: { FilterExpression: { And: Match.arrayWith([{ Dimensions: { Key: 'REGION', Values: ['us-west-2'], MatchOptions: ['EQUALS'] } }]) } },
    });
    expect(west.resolve(west.foundation.instanceProfile.instanceProfileName)).toEqual({
      Ref: west.getLogicalId(west.foundation.instanceProfile.node.defaultChild as CfnResource),
    });
  });

  test('regionalNames needs a region known at synthesis', () => {
    const stack = new Stack(new App(), 'Agnostic');
    expect(() => new ChronosTrainingFoundation(stack, 'Foundation', { regionalNames: true }))
      .toThrow(/regionalNames is true but the stack has no concrete region: give the stack env.region/);
  });
});

describe('S3 asks for kms:Decrypt to read and kms:GenerateDataKey to write an SSE-KMS object', () => {
  // Amazon S3 User Guide, "Using server-side encryption with AWS KMS keys (SSE-KMS)"
  // (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html), and "Multipart upload API and
  // permissions" (https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html#mpuAndPermissions). The full
  // table of allowed and denied requests is simulated in test/storage/training-bucket-grants.simulation.test.ts.
  test('the instance role of a foundation on a bring-your-own SSE-KMS bucket can use the bucket\'s key', () => {
    const stack = new Stack(new App(), 'Training');
    const encryptionKey = new kms.Key(stack, 'Key');
    const bucket = new s3.Bucket(stack, 'Data', { encryption: s3.BucketEncryption.KMS, encryptionKey });
    new ChronosTrainingFoundation(stack, 'Foundation', { bucket });
    const keyArn = stack.resolve(encryptionKey.keyArn);
    const inline = resourcesOf(Template.fromStack(stack), 'AWS::IAM::Role')
      .flatMap(r => r.Properties.Policies ?? []).flatMap((p: any) => p.PolicyDocument.Statement);
    const onKey = inline.filter((st: any) => JSON.stringify(st.Resource) === JSON.stringify(keyArn)).flatMap((st: any) => [st.Action].flat());
    expect(new Set(onKey)).toEqual(new Set(['kms:Decrypt', 'kms:GenerateDataKey']));
  });
});
