import { App, CfnResource, Duration, Stack, TagManager } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { CURRENTLY_RECOMMENDED_FLAGS } from 'aws-cdk-lib/cx-api';
import { IConstruct } from 'constructs';
import { ChronosTrainingFoundation, ChronosTrainingFoundationProps, FoundationExports } from '../../src';
import { agnosticStack, onlyResource, tagsOf, warnings } from '../helpers';

function synth(props: ChronosTrainingFoundationProps = {}, context: Record<string, unknown> = {}) {
  const stack = agnosticStack(context);
  const foundation = new ChronosTrainingFoundation(stack, 'Foundation', props);
  return { stack, foundation, get template() { return Template.fromStack(stack); } };
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
    // The instance role, and the run keeper's (on by default) with the role EventBridge Scheduler assumes to invoke it.
    template.resourceCountIs('AWS::IAM::Role', 3);
    template.resourceCountIs('AWS::IAM::InstanceProfile', 1);
    template.resourceCountIs('AWS::EC2::SecurityGroup', 1);
  });

  test('creates only resources that cost nothing while idle', () => {
    const { template } = synth();
    const types = new Set(Object.values(template.toJSON().Resources).map((r: any) => r.Type));
    expect([...types].sort()).toEqual([
      'AWS::EC2::InternetGateway', 'AWS::EC2::LaunchTemplate', 'AWS::EC2::Route', 'AWS::EC2::RouteTable', 'AWS::EC2::SecurityGroup',
      'AWS::EC2::Subnet', 'AWS::EC2::SubnetRouteTableAssociation', 'AWS::EC2::VPC', 'AWS::EC2::VPCEndpoint',
      'AWS::EC2::VPCGatewayAttachment',
      'AWS::Events::Rule', // the run keeper's: EC2 state changes, AWS events (free)
      'AWS::IAM::InstanceProfile', 'AWS::IAM::Policy', 'AWS::IAM::Role',
      'AWS::Lambda::EventInvokeConfig', 'AWS::Lambda::Function', 'AWS::Lambda::Permission', // per request only
      'AWS::Logs::LogGroup', 'AWS::S3::Bucket', 'AWS::S3::BucketPolicy',
      'AWS::SQS::Queue', 'AWS::SQS::QueuePolicy', // the keeper's dead-letter queue: per request only
      'AWS::SSM::Parameter', // standard tier: free
      'AWS::Scheduler::ScheduleGroup', // free; schedules bill per invocation
    ]);
  });

  test('tags every taggable resource with the four mandatory tags', () => {
    const { stack, template } = synth({ environmentName: 'stage', costCenter: 'collect' });
    const resources = template.toJSON().Resources;
    const taggable = taggableResources(stack);
    expect(taggable.map(r => r.cfnResourceType).sort()).toEqual([
      'AWS::EC2::InternetGateway', 'AWS::EC2::RouteTable', 'AWS::EC2::SecurityGroup', 'AWS::EC2::Subnet',
      'AWS::EC2::VPC', 'AWS::EC2::VPCEndpoint',
      'AWS::Events::Rule', 'AWS::IAM::Role', 'AWS::IAM::Role', 'AWS::IAM::Role', 'AWS::Lambda::Function', 'AWS::Logs::LogGroup',
      'AWS::S3::Bucket', 'AWS::SQS::Queue',
      ...Array(FoundationExports.suffixes().length).fill('AWS::SSM::Parameter'),
      'AWS::Scheduler::ScheduleGroup',
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

  test('creates the exports ChronosTraining-{env}-*: the eight core ones, subnets and zones, the launch template', () => {
    const { stack, foundation, template } = synth({ environmentName: 'stage' });
    const r = (v: string) => stack.resolve(v);
    expect(exportsOf(template)).toEqual({
      'ChronosTraining-stage-VPCId': r(foundation.vpc.vpcId),
      'ChronosTraining-stage-PublicSubnetId': r(foundation.publicSubnets[0].subnetId),
      'ChronosTraining-stage-S3BucketName': r(foundation.bucket.bucketName),
      'ChronosTraining-stage-IAMRoleName': r(foundation.role.roleName),
      'ChronosTraining-stage-InstanceProfileName': r(foundation.instanceProfile.instanceProfileName),
      'ChronosTraining-stage-SecurityGroupId': r(foundation.securityGroup.securityGroupId),
      'ChronosTraining-stage-Environment': 'stage',
      'ChronosTraining-stage-CostCenter': 'train',
      // One zone: CloudFormation's Fn::Join of one element is the element.
      'ChronosTraining-stage-PublicSubnetIds': r(foundation.publicSubnets[0].subnetId),
      'ChronosTraining-stage-AvailabilityZones': r(foundation.publicSubnets[0].availabilityZone),
      'ChronosTraining-stage-LaunchTemplateId': r(foundation.launchTemplate!.launchTemplateId!),
      // "AWS::EC2::LaunchTemplate", CloudFormation reference, return values: LatestVersionNumber is the version a
      // launch must name, since CloudFormation never moves the default version (cloudformation-coverage-roadmap #1518).
      'ChronosTraining-stage-LaunchTemplateVersion': {
        'Fn::GetAtt': [stack.getLogicalId(foundation.launchTemplate!.node.defaultChild as CfnResource), 'LatestVersionNumber'],
      },
    });
    expect(Object.keys(exportsOf(template))).toEqual(FoundationExports.exportNames('stage'));
    expect(foundation.exportNames).toEqual(FoundationExports.exportNames('stage'));
  });

  test('without the launch template: every export but LaunchTemplateId and LaunchTemplateVersion, and no launch template ID', () => {
    const { foundation, template } = synth({ environmentName: 'stage', launchTemplate: false });
    template.resourceCountIs('AWS::EC2::LaunchTemplate', 0);
    expect(foundation.launchTemplate).toBeUndefined();
    expect(foundation.launchTemplateVersion).toBeUndefined();
    const templateExports = [FoundationExports.LAUNCH_TEMPLATE_ID, FoundationExports.LAUNCH_TEMPLATE_VERSION]
      .map(suffix => FoundationExports.exportName('stage', suffix));
    expect(Object.keys(exportsOf(template))).toEqual(FoundationExports.exportNames('stage')
      .filter(name => !templateExports.includes(name)));
    expect(Object.keys(exportsOf(template))).not.toContain('ChronosTraining-stage-LaunchTemplateId');
    expect(() => synth({ launchTemplate: false, launchTemplateProps: { spot: true } }))
      .toThrow(/launchTemplateProps is set but launchTemplate is false/);
  });

  test('publishes the launch template\'s latest version as the SSM parameter LaunchTemplateVersion, beside its ID', () => {
    // "AWS::EC2::LaunchTemplate", CloudFormation reference, return values (LatestVersionNumber): a change of
    // LaunchTemplateData adds a version and the default stays the first, so the launcher reads this parameter.
    const { stack, foundation, template } = synth({ environmentName: 'stage' });
    const latest = { 'Fn::GetAtt': [stack.getLogicalId(foundation.launchTemplate!.node.defaultChild as CfnResource), 'LatestVersionNumber'] };
    expect(stack.resolve(foundation.launchTemplateVersion)).toEqual(latest);
    template.hasResourceProperties('AWS::SSM::Parameter', { Name: '/chronos-training/stage/LaunchTemplateVersion', Value: latest });
    expect(foundation.parameterNames).toContain(FoundationExports.parameterName('stage', FoundationExports.LAUNCH_TEMPLATE_VERSION));
  });

  test('defaults environment and cost center to dev and train', () => {
    const { foundation, template } = synth();
    expect([foundation.environmentName, foundation.costCenter]).toEqual(['dev', 'train']);
    expect(Object.keys(exportsOf(template))).toContain('ChronosTraining-dev-VPCId');
  });

  test('reads environment and cost center from context', () => {
    const { foundation, template } = synth({}, { environment: 'stage', costCenter: 'serve' });
    expect([foundation.environmentName, foundation.costCenter]).toEqual(['stage', 'serve']);
    template.hasResourceProperties('AWS::IAM::InstanceProfile', { InstanceProfileName: 'ChronosTrainingInstanceProfile-stage' });
  });

  test('prefers props over context', () => {
    const { foundation } = synth({ environmentName: 'prod', costCenter: 'collect' }, { environment: 'stage', costCenter: 'serve' });
    expect([foundation.environmentName, foundation.costCenter]).toEqual(['prod', 'collect']);
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
      LogDestination: { 'Fn::Join': ['', [stack.resolve(foundation.bucket.bucketArn), '/vpc-flow-logs/']] },
    });
    const rules = Object.values(template.findResources('AWS::S3::Bucket'))[0].Properties.LifecycleConfiguration.Rules;
    expect(rules).toContainEqual({ Id: 'VpcFlowLogs', Status: 'Enabled', Prefix: 'vpc-flow-logs/', ExpirationInDays: 5 });
  });

  test('exports every public subnet and its zone, comma-separated in zone order, with more zones', () => {
    const stack = new Stack(new App(), 'S', { env: { account: '123456789012', region: 'us-east-1' } });
    const foundation = new ChronosTrainingFoundation(stack, 'Foundation', {
      networkProps: { availabilityZones: ['us-east-1c', 'us-east-1a', 'us-east-1f'] },
    });
    const exports = exportsOf(Template.fromStack(stack));
    expect(exports['ChronosTraining-dev-AvailabilityZones']).toBe('us-east-1c,us-east-1a,us-east-1f');
    expect(exports['ChronosTraining-dev-PublicSubnetIds']).toEqual({ 'Fn::Join': [',', foundation.publicSubnets.map(s => stack.resolve(s.subnetId))] });
    expect(exports['ChronosTraining-dev-PublicSubnetId']).toEqual(stack.resolve(foundation.publicSubnets[0].subnetId));
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
      bucket: ['FoundationBucketCB08A6A1'],
      // The run keeper's roles are new (issue 29): added beside the instance role, which keeps its ID.
      role: ['FoundationInstanceRole48CC782D', 'FoundationKeeperSchedulerRoleC8B9B2F5', 'FoundationKeeperRole3DD5DBBA'],
      instanceProfile: ['FoundationInstanceRoleInstanceProfile0B21D723'],
      vpc: ['FoundationNetwork2A9F7F0F'],
      subnet: ['FoundationNetworkPublicSubnet1Subnet6131F729'],
      securityGroup: ['FoundationSecurityGroupB4516ED2'],
    });
  });

  test('keeps the logical ID and CIDR of the first subnet with more zones (adding zones replaces nothing)', () => {
    const stack = new Stack(new App(), 'ChronosTraining-dev-Stack');
    const foundation = new ChronosTrainingFoundation(stack, 'Foundation', { networkProps: { maxAzs: 3 } });
    const subnets = Template.fromStack(stack).findResources('AWS::EC2::Subnet');
    expect(stack.getLogicalId(foundation.publicSubnets[0].node.defaultChild as CfnResource)).toBe('FoundationNetworkPublicSubnet1Subnet6131F729');
    expect(subnets.FoundationNetworkPublicSubnet1Subnet6131F729.Properties.CidrBlock).toBe('10.0.0.0/24');
    expect(Object.keys(subnets)).toHaveLength(3);
  });

  describe('rejects bad input', () => {
    test.each<[string, ChronosTrainingFoundationProps, RegExp]>([
      ['an empty environment', { environmentName: '' }, /environmentName must not be empty/],
      ['uppercase letters', { environmentName: 'Stage' }, /environmentName 'Stage' is invalid: it must start with a lowercase letter, contain only lowercase letters, digits and hyphens/],
      ['a leading digit', { environmentName: '1dev' }, /environmentName '1dev' is invalid/],
      ['an underscore', { environmentName: 'dev_a' }, /environmentName 'dev_a' is invalid/],
      ['a trailing hyphen', { environmentName: 'dev-' }, /environmentName 'dev-' is invalid/],
      ['a name too long for the bucket', { environmentName: 'a234567890123456789' },
        /environmentName 'a234567890123456789' is 19 characters long; at most 18 are allowed so that the bucket name .* fits S3's 63-character limit/],
      ['an empty cost center', { costCenter: ' ' }, /costCenter must not be empty/],
      ['a cost center with characters tags forbid', { costCenter: 'train;drop' }, /costCenter 'train;drop' is not a valid AWS tag value/],
      ['a cost center longer than 256 characters', { costCenter: 'x'.repeat(257) }, /is not a valid AWS tag value: at most 256 characters/],
    ])('%s', (_name, props, message) => {
      expect(() => synth(props)).toThrow(message);
    });

    test('an invalid environment from context', () => {
      expect(() => synth({}, { environment: 'PROD' })).toThrow(/environmentName \(context 'environment'\) 'PROD' is invalid/);
    });
  });

  test('accepts the longest environment name, whose bucket name is then exactly 63 characters in a long region', () => {
    const stack = new Stack(new App(), 'S', { env: { account: '123456789012', region: 'ap-southeast-1' } });
    new ChronosTrainingFoundation(stack, 'Foundation', { environmentName: 'a23456789012345678' });
    const bucketName: string = onlyResource(Template.fromStack(stack), 'AWS::S3::Bucket').Properties.BucketName;
    expect([bucketName, bucketName.length]).toEqual(['chronos-training-a23456789012345678-123456789012-ap-southeast-1', 63]);
  });

  test('warns, but does not fail, for a cost center outside collect, train and serve', () => {
    const { stack } = synth({ costCenter: 'research' });
    expect(warnings(stack)).toEqual([expect.stringMatching(/costCenter 'research' is not one of the known workload types \(collect, train, serve\)/)]);
  });

  test.each(['collect', 'train', 'serve'])('does not warn for cost center %s', (costCenter) => {
    expect(warnings(synth({ costCenter }).stack)).toEqual([]);
  });

  test('two environments side by side in one stack share no name or export', () => {
    const stack = agnosticStack();
    new ChronosTrainingFoundation(stack, 'Dev', { environmentName: 'dev' });
    new ChronosTrainingFoundation(stack, 'Stage', { environmentName: 'stage' });
    const template = Template.fromStack(stack);
    const exports = Object.keys(exportsOf(template));
    expect(exports).toHaveLength(24);
    expect(new Set(exports).size).toBe(24);
    const names = (type: string, prop: string) =>
      Object.values(template.findResources(type)).map((r: any) => JSON.stringify(r.Properties[prop]));
    expect(new Set(names('AWS::S3::Bucket', 'BucketName')).size).toBe(2);
    expect(names('AWS::IAM::InstanceProfile', 'InstanceProfileName').sort())
      .toEqual(['"ChronosTrainingInstanceProfile-dev"', '"ChronosTrainingInstanceProfile-stage"']);
    expect(names('AWS::EC2::LaunchTemplate', 'LaunchTemplateName').sort())
      .toEqual(['"ChronosTrainingLaunchTemplate-dev"', '"ChronosTrainingLaunchTemplate-stage"']);
  });

  test('exposes the resources as their aws-cdk-lib interfaces, and the constructs that made them', () => {
    const { foundation } = synth();
    expect(foundation.publicSubnets).toEqual(foundation.network!.publicSubnets);
    expect([foundation.vpc, foundation.publicSubnets, foundation.bucket])
      .toEqual([foundation.network!.vpc, foundation.network!.publicSubnets, foundation.trainingBucket!.bucket]);
    expect(foundation.role.node.path).toBe('TestStack/Foundation/InstanceRole/Resource');
    expect(foundation.instanceProfile.node.path).toBe('TestStack/Foundation/InstanceRole/InstanceProfile');
    expect(foundation.securityGroup.node.path).toBe('TestStack/Foundation/SecurityGroup/Resource');
    expect(foundation.connections).toBe(foundation.securityGroup.connections);
  });

  test('grants prefix-scoped bucket access to other principals and opens other groups to its instances', () => {
    // Without the run keeper, whose roles' policies are the template's other IAM::Policy resources.
    const { stack, foundation } = synth({ runKeeper: false });
    const pipeline = new iam.Role(stack, 'Pipeline', { assumedBy: new iam.AccountRootPrincipal() });
    foundation.grantReadShared(pipeline);
    foundation.grantWriteShared(pipeline);
    foundation.grantReadWriteEnvironment(pipeline);
    const cache = new ec2.SecurityGroup(stack, 'Cache', { vpc: foundation.vpc });
    cache.connections.allowFrom(foundation, ec2.Port.tcp(6379));
    const template = Template.fromStack(stack);
    const statements = stack.resolve(onlyResource(template, 'AWS::IAM::Policy').Properties.PolicyDocument.Statement);
    expect(statements.map((st: any) => st.Action)).toEqual([
      's3:GetObject', 's3:ListBucket', ['s3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'],
      ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'], 's3:ListBucket',
    ]);
    template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      FromPort: 6379, SourceSecurityGroupId: stack.resolve(foundation.securityGroup.securityGroupId),
    });
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
