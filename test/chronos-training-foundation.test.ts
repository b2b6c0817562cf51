import { App, CfnResource, Duration, Stack, TagManager } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { CURRENTLY_RECOMMENDED_FLAGS } from 'aws-cdk-lib/cx-api';
import { IConstruct } from 'constructs';
import { ChronosTrainingFoundation, ChronosTrainingFoundationProps } from '../src';
import { agnosticStack, tagsOf, warnings } from './helpers';

const OUTPUTS = [
  'VPCId', 'PublicSubnetId', 'S3BucketName', 'IAMRoleName', 'InstanceProfileName', 'SecurityGroupId', 'Environment', 'CostCenter',
];

function synth(props: ChronosTrainingFoundationProps = {}, context: Record<string, unknown> = {}) {
  const stack = agnosticStack(context);
  const foundation = new ChronosTrainingFoundation(stack, 'Foundation', props);
  return { stack, foundation, template: Template.fromStack(stack) };
}

/** Every CloudFormation resource in a scope that CDK's tag aspect can tag. */
function taggableResources(scope: IConstruct): CfnResource[] {
  return scope.node.findAll().filter((c): c is CfnResource =>
    CfnResource.isCfnResource(c) && (TagManager.isTaggable(c) || TagManager.isTaggableV2(c)));
}

function exportsOf(template: Template): Record<string, unknown> {
  return Object.fromEntries(Object.values(template.findOutputs('*')).map((o: any) => [o.Export.Name, o.Value]));
}

describe('ChronosTrainingFoundation', () => {
  test('composes the four constructs', () => {
    const { template } = synth();
    template.resourceCountIs('AWS::EC2::VPC', 1);
    template.resourceCountIs('AWS::S3::Bucket', 1);
    template.resourceCountIs('AWS::IAM::Role', 1);
    template.resourceCountIs('AWS::IAM::InstanceProfile', 1);
    template.resourceCountIs('AWS::EC2::SecurityGroup', 1);
  });

  test('creates only resources that cost nothing while idle', () => {
    const { template } = synth();
    const types = new Set(Object.values(template.toJSON().Resources).map((r: any) => r.Type));
    expect([...types].sort()).toEqual([
      'AWS::EC2::InternetGateway', 'AWS::EC2::Route', 'AWS::EC2::RouteTable', 'AWS::EC2::SecurityGroup',
      'AWS::EC2::Subnet', 'AWS::EC2::SubnetRouteTableAssociation', 'AWS::EC2::VPC', 'AWS::EC2::VPCEndpoint',
      'AWS::EC2::VPCGatewayAttachment', 'AWS::IAM::InstanceProfile', 'AWS::IAM::Role', 'AWS::S3::Bucket', 'AWS::S3::BucketPolicy',
    ]);
  });

  test('tags every taggable resource with the four mandatory tags', () => {
    const { stack, template } = synth({ environment: 'stage', costCenter: 'collect' });
    const resources = template.toJSON().Resources;
    const taggable = taggableResources(stack);
    expect(taggable.map(r => r.cfnResourceType).sort()).toEqual([
      'AWS::EC2::InternetGateway', 'AWS::EC2::RouteTable', 'AWS::EC2::SecurityGroup', 'AWS::EC2::Subnet',
      'AWS::EC2::VPC', 'AWS::EC2::VPCEndpoint', 'AWS::IAM::Role', 'AWS::S3::Bucket',
    ]);
    for (const resource of taggable) {
      const tags = tagsOf(resources[stack.getLogicalId(resource)]);
      expect({ [resource.node.path]: tags }).toEqual({
        [resource.node.path]: expect.objectContaining({
          Project: 'Chronos-Training', Environment: 'stage', CostCenter: 'collect', ManagedBy: 'CDK',
        }),
      });
    }
  });

  test('creates the eight exports ChronosTraining-{env}-*', () => {
    const { stack, foundation, template } = synth({ environment: 'stage' });
    const r = (v: string) => stack.resolve(v);
    expect(exportsOf(template)).toEqual({
      'ChronosTraining-stage-VPCId': r(foundation.network.vpc.vpcId),
      'ChronosTraining-stage-PublicSubnetId': r(foundation.network.publicSubnet.subnetId),
      'ChronosTraining-stage-S3BucketName': r(foundation.bucket.bucket.bucketName),
      'ChronosTraining-stage-IAMRoleName': r(foundation.instanceRole.role.roleName),
      'ChronosTraining-stage-InstanceProfileName': r(foundation.instanceRole.instanceProfile.instanceProfileName),
      'ChronosTraining-stage-SecurityGroupId': r(foundation.securityGroup.securityGroup.securityGroupId),
      'ChronosTraining-stage-Environment': 'stage',
      'ChronosTraining-stage-CostCenter': 'train',
    });
    expect(Object.keys(exportsOf(template))).toEqual(OUTPUTS.map(o => `ChronosTraining-stage-${o}`));
  });

  test('defaults environment and cost center to dev and train', () => {
    const { foundation, template } = synth();
    expect([foundation.environment, foundation.costCenter]).toEqual(['dev', 'train']);
    expect(Object.keys(exportsOf(template))).toContain('ChronosTraining-dev-VPCId');
  });

  test('reads environment and cost center from context', () => {
    const { foundation, template } = synth({}, { environment: 'stage', costCenter: 'serve' });
    expect([foundation.environment, foundation.costCenter]).toEqual(['stage', 'serve']);
    template.hasResourceProperties('AWS::IAM::InstanceProfile', { InstanceProfileName: 'ChronosTrainingInstanceProfile-stage' });
  });

  test('prefers props over context', () => {
    const { foundation } = synth({ environment: 'prod', costCenter: 'collect' }, { environment: 'stage', costCenter: 'serve' });
    expect([foundation.environment, foundation.costCenter]).toEqual(['prod', 'collect']);
  });

  test('passes options through to the constructs', () => {
    const { template } = synth({
      networkProps: { vpcCidr: '10.20.0.0/16', subnetCidrMask: 20 },
      bucketProps: { artifactExpiration: Duration.days(60) },
      instanceRoleProps: { terminateSelfOnly: false },
    });
    template.hasResourceProperties('AWS::EC2::Subnet', { CidrBlock: '10.20.0.0/20' });
    const rule = Object.values(template.findResources('AWS::S3::Bucket'))[0].Properties.LifecycleConfiguration.Rules[1];
    expect(rule.ExpirationInDays).toBe(60);
    expect(JSON.stringify(template.findResources('AWS::IAM::Role'))).not.toContain('ec2:SourceInstanceARN');
  });

  test('delivers VPC flow logs into the bucket under vpc-flow-logs/, expired with the logs, when asked', () => {
    const { stack, foundation, template } = synth({ flowLogs: true, bucketProps: { logRetention: Duration.days(5) } });
    template.hasResourceProperties('AWS::EC2::FlowLog', {
      ResourceType: 'VPC',
      TrafficType: 'ALL',
      LogDestinationType: 's3',
      LogDestination: { 'Fn::Join': ['', [stack.resolve(foundation.bucket.bucket.bucketArn), '/vpc-flow-logs/']] },
    });
    const rules = Object.values(template.findResources('AWS::S3::Bucket'))[0].Properties.LifecycleConfiguration.Rules;
    expect(rules).toContainEqual({ Id: 'VpcFlowLogs', Status: 'Enabled', Prefix: 'vpc-flow-logs/', ExpirationInDays: 5 });
  });

  test('has no flow logs by default', () => {
    synth().template.resourceCountIs('AWS::EC2::FlowLog', 0);
  });

  test('keeps the logical IDs of its stateful resources (a changed ID replaces the bucket)', () => {
    const app = new App();
    const stack = new Stack(app, 'ChronosTraining-dev-Stack');
    new ChronosTrainingFoundation(stack, 'Foundation');
    const ids = (type: string) => Object.keys(Template.fromStack(stack).findResources(type));
    expect({
      bucket: ids('AWS::S3::Bucket'),
      role: ids('AWS::IAM::Role'),
      instanceProfile: ids('AWS::IAM::InstanceProfile'),
      vpc: ids('AWS::EC2::VPC'),
      subnet: ids('AWS::EC2::Subnet'),
      securityGroup: ids('AWS::EC2::SecurityGroup'),
    }).toEqual({
      bucket: ['FoundationBucketBE686EA7'],
      role: ['FoundationInstanceRole80D1B58D'],
      instanceProfile: ['FoundationInstanceRoleInstanceProfile0B21D723'],
      vpc: ['FoundationNetworkVpc31EF8B04'],
      subnet: ['FoundationNetworkVpcPublicSubnet1Subnet60865557'],
      securityGroup: ['FoundationSecurityGroup2D2612DB'],
    });
  });

  describe('rejects bad input', () => {
    test.each<[string, ChronosTrainingFoundationProps, RegExp]>([
      ['an empty environment', { environment: '' }, /environment must not be empty/],
      ['uppercase letters', { environment: 'Stage' }, /environment 'Stage' is invalid: it must start with a lowercase letter, contain only lowercase letters, digits and hyphens/],
      ['a leading digit', { environment: '1dev' }, /environment '1dev' is invalid/],
      ['an underscore', { environment: 'dev_a' }, /environment 'dev_a' is invalid/],
      ['a trailing hyphen', { environment: 'dev-' }, /environment 'dev-' is invalid/],
      ['a name too long for the bucket', { environment: 'a234567890123456789' },
        /environment 'a234567890123456789' is 19 characters long; at most 18 are allowed so that the bucket name .* fits S3's 63-character limit/],
      ['an empty cost center', { costCenter: ' ' }, /costCenter must not be empty/],
      ['a cost center with characters tags forbid', { costCenter: 'train;drop' }, /costCenter 'train;drop' is not a valid AWS tag value/],
      ['a cost center longer than 256 characters', { costCenter: 'x'.repeat(257) }, /is not a valid AWS tag value: at most 256 characters/],
    ])('%s', (_name, props, message) => {
      expect(() => synth(props)).toThrow(message);
    });

    test('an invalid environment from context', () => {
      expect(() => synth({}, { environment: 'PROD' })).toThrow(/environment 'PROD' is invalid/);
    });
  });

  test('accepts the longest environment name whose bucket name fits 63 characters', () => {
    const environment = 'a23456789012345678';
    synth({ environment });
    const longest = `chronos-training-${environment}-123456789012-ap-southeast-1`;
    expect(longest).toHaveLength(63);
  });

  test('warns, but does not fail, for a cost center outside collect, train and serve', () => {
    const { stack } = synth({ costCenter: 'research' });
    expect(warnings(stack)).toEqual([expect.stringMatching(/costCenter 'research' is not one of the guide's workload types \(collect, train, serve\)/)]);
  });

  test.each(['collect', 'train', 'serve'])('does not warn for cost center %s', (costCenter) => {
    expect(warnings(synth({ costCenter }).stack)).toEqual([]);
  });

  test('two environments side by side in one stack share no name or export', () => {
    const stack = agnosticStack();
    new ChronosTrainingFoundation(stack, 'Dev', { environment: 'dev' });
    new ChronosTrainingFoundation(stack, 'Stage', { environment: 'stage' });
    const template = Template.fromStack(stack);
    const exports = Object.keys(exportsOf(template));
    expect(exports).toHaveLength(16);
    expect(new Set(exports).size).toBe(16);
    const names = (type: string, prop: string) =>
      Object.values(template.findResources(type)).map((r: any) => JSON.stringify(r.Properties[prop]));
    expect(new Set(names('AWS::S3::Bucket', 'BucketName')).size).toBe(2);
    expect(names('AWS::IAM::InstanceProfile', 'InstanceProfileName').sort())
      .toEqual(['"ChronosTrainingInstanceProfile-dev"', '"ChronosTrainingInstanceProfile-stage"']);
  });

  test("synthesizes the same template whatever feature flags the consumer's cdk.json enables", () => {
    const build = (context: Record<string, unknown>) => {
      const app = new App({ context });
      const stack = new Stack(app, 'S');
      new ChronosTrainingFoundation(stack, 'Foundation');
      return Template.fromStack(stack).toJSON();
    };
    // Every flag whose recommended value (what `cdk init` writes) differs from the unset default.
    expect(Object.keys(CURRENTLY_RECOMMENDED_FLAGS).length).toBeGreaterThan(50);
    expect(build(CURRENTLY_RECOMMENDED_FLAGS)).toEqual(build({}));
  });
});
