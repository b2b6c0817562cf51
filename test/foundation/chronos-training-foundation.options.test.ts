/*
 * The foundation's options for capacity and reuse: SSM parameters beside the
 * exports, the cluster placement group, egress options, bring-your-own VPC and
 * bucket, and contradictory props.
 */
import * as zlib from 'zlib';
import { App, Aspects, Duration, Stack, Tags } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { ChronosTrainingFoundation, ChronosTrainingFoundationProps, FoundationExports, ZeroIdleCostChecker } from '../../src';
import { agnosticStack, onlyResource, resourcesOf, tagsOf, warnings } from '../helpers';

function exportsOf(template: Template): Record<string, unknown> {
  return Object.fromEntries(Object.values(template.findOutputs('*')).map((o: any) => [o.Export.Name, o.Value]));
}

function parametersOf(template: Template): Record<string, any> {
  return Object.fromEntries(resourcesOf(template, 'AWS::SSM::Parameter').map(p => [p.Properties.Name, p.Properties]));
}

/** A user's VPC with public subnets in two zones, defined outside the foundation. */
function userVpc(stack: Stack): ec2.Vpc {
  return new ec2.Vpc(stack, 'UserVpc', {
    maxAzs: 2,
    natGateways: 0,
    restrictDefaultSecurityGroup: false,
    subnetConfiguration: [{ name: 'Public', subnetType: ec2.SubnetType.PUBLIC }, { name: 'Data', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }],
  });
}

describe('SSM parameters', () => {
  test('writes one standard String parameter per export, /chronos-training/{env}/{suffix}, with the same value', () => {
    const stack = agnosticStack();
    const foundation = new ChronosTrainingFoundation(stack, 'Foundation', { environmentName: 'stage' });
    const template = Template.fromStack(stack);
    const parameters = parametersOf(template);
    const exports = exportsOf(template);
    expect(Object.keys(parameters)).toEqual(FoundationExports.suffixes().map(s => `/chronos-training/stage/${s}`));
    expect(foundation.parameterNames).toEqual(Object.keys(parameters));
    for (const suffix of FoundationExports.suffixes()) {
      const parameter = parameters[FoundationExports.parameterName('stage', suffix)];
      expect([suffix, parameter.Type, parameter.Tier, parameter.Value])
        .toEqual([suffix, 'String', 'Standard', exports[FoundationExports.exportName('stage', suffix)]]);
    }
  });

  test('are turned off by ssmParameters: false', () => {
    const stack = agnosticStack();
    const foundation = new ChronosTrainingFoundation(stack, 'Foundation', { ssmParameters: false });
    Template.fromStack(stack).resourceCountIs('AWS::SSM::Parameter', 0);
    expect(foundation.parameterNames).toEqual([]);
    expect(foundation.exportNames).toEqual(FoundationExports.exportNames('dev'));
  });

  test('FoundationExports names a parameter and validates the environment', () => {
    expect(FoundationExports.parameterName('dev', FoundationExports.VPC_ID)).toBe('/chronos-training/dev/VPCId');
    expect(() => FoundationExports.parameterName('Dev', FoundationExports.VPC_ID)).toThrow(/environmentName 'Dev' is invalid/);
  });
});

describe('cluster placement group and egress options', () => {
  test('creates no placement group by default', () => {
    const stack = agnosticStack();
    const foundation = new ChronosTrainingFoundation(stack, 'Foundation');
    Template.fromStack(stack).resourceCountIs('AWS::EC2::PlacementGroup', 0);
    expect(foundation.placementGroup).toBeUndefined();
  });

  test('creates a cluster placement group on request, exported and written as a parameter', () => {
    const stack = agnosticStack();
    const foundation = new ChronosTrainingFoundation(stack, 'Foundation', { clusterPlacementGroup: true });
    const template = Template.fromStack(stack);
    const group = onlyResource(template, 'AWS::EC2::PlacementGroup');
    expect(group.Properties.Strategy).toBe('cluster');
    const name = stack.resolve(foundation.placementGroup!.placementGroupName);
    expect(exportsOf(template)['ChronosTraining-dev-PlacementGroupName']).toEqual(name);
    expect(parametersOf(template)['/chronos-training/dev/PlacementGroupName'].Value).toEqual(name);
    expect(foundation.exportNames).toEqual([...FoundationExports.exportNames('dev'), 'ChronosTraining-dev-PlacementGroupName']);
  });

  test('passes securityGroupProps to the security group', () => {
    const stack = agnosticStack();
    const foundation = new ChronosTrainingFoundation(stack, 'Foundation', { securityGroupProps: { allowHttp: true, allowTrafficWithinGroup: true } });
    const template = Template.fromStack(stack);
    const group = stack.resolve(foundation.securityGroup.securityGroupId);
    expect(onlyResource(template, 'AWS::EC2::SecurityGroup').Properties.SecurityGroupEgress.map((r: any) => r.FromPort)).toEqual([443, 80]);
    template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', { IpProtocol: '-1', GroupId: group, SourceSecurityGroupId: group });
    template.hasResourceProperties('AWS::EC2::SecurityGroupEgress', { IpProtocol: '-1', GroupId: group, DestinationSecurityGroupId: group });
  });
});

describe('bring your own VPC', () => {
  function synth(props: Partial<ChronosTrainingFoundationProps> = {}) {
    const stack = agnosticStack();
    const vpc = userVpc(stack);
    const foundation = new ChronosTrainingFoundation(stack, 'Foundation', { vpc, ...props });
    return { stack, vpc, foundation, get template() { return Template.fromStack(stack); } };
  }

  test('creates no network and uses all public subnets of the given VPC', () => {
    const { vpc, foundation, template } = synth();
    template.resourceCountIs('AWS::EC2::VPC', 1);
    template.resourceCountIs('AWS::EC2::InternetGateway', 1);
    expect(foundation.network).toBeUndefined();
    expect(foundation.vpc).toBe(vpc);
    expect(foundation.publicSubnets).toEqual(vpc.publicSubnets);
    expect(foundation.publicSubnets[0]).toBe(vpc.publicSubnets[0]);
  });

  test("adds the S3 gateway endpoint on the public subnets' route tables, and the security group, in the given VPC", () => {
    const { stack, vpc, template } = synth();
    const endpoint = onlyResource(template, 'AWS::EC2::VPCEndpoint');
    expect(endpoint.Properties.VpcId).toEqual(stack.resolve(vpc.vpcId));
    expect(endpoint.Properties.RouteTableIds).toEqual(vpc.publicSubnets.map(s => stack.resolve(s.routeTable.routeTableId)));
    expect(onlyResource(template, 'AWS::EC2::SecurityGroup').Properties.VpcId).toEqual(stack.resolve(vpc.vpcId));
  });

  test('adds no endpoint when told the VPC has one', () => {
    synth({ vpcHasS3Endpoint: true }).template.resourceCountIs('AWS::EC2::VPCEndpoint', 0);
  });

  test('tags what it creates, and nothing of the given VPC', () => {
    const built = synth({ environmentName: 'stage' });
    const { stack, vpc, foundation } = built;
    Tags.of(vpc).add('Owner', 'network-team');
    const template = built.template;
    const resources = template.toJSON().Resources;
    const projectTagged = Object.entries(resources).filter(([, r]: [string, any]) => tagsOf(r).Project === 'Chronos-Training').map(([id]) => id);
    const vpcIds = new Set(vpc.node.findAll().map(c => (c as any).logicalId && stack.resolve((c as any).logicalId)).filter(Boolean));
    expect(projectTagged.filter(id => vpcIds.has(id))).toEqual([]);
    expect(tagsOf(resources[stack.getLogicalId(vpc.node.defaultChild as ec2.CfnVPC)])).toEqual(expect.objectContaining({ Owner: 'network-team' }));
    expect(tagsOf(resources[stack.getLogicalId(vpc.node.defaultChild as ec2.CfnVPC)]).Environment).toBeUndefined();
    const endpoint = Object.keys(template.findResources('AWS::EC2::VPCEndpoint'))[0];
    expect(tagsOf(resources[endpoint])).toEqual(expect.objectContaining({ Project: 'Chronos-Training', Environment: 'stage' }));
    expect(tagsOf(resources[stack.getLogicalId(foundation.securityGroup.node.defaultChild as ec2.CfnSecurityGroup)]).Project).toBe('Chronos-Training');
  });

  test("exports the given VPC's values", () => {
    const { stack, vpc, template } = synth();
    const exports = exportsOf(template);
    expect(exports['ChronosTraining-dev-VPCId']).toEqual(stack.resolve(vpc.vpcId));
    expect(exports['ChronosTraining-dev-PublicSubnetIds']).toEqual({ 'Fn::Join': [',', vpc.publicSubnets.map(s => stack.resolve(s.subnetId))] });
    expect(parametersOf(template)['/chronos-training/dev/PublicSubnetId'].Value).toEqual(stack.resolve(vpc.publicSubnets[0].subnetId));
  });

  test('rejects a VPC without public subnets', () => {
    const stack = agnosticStack();
    const vpc = new ec2.Vpc(stack, 'Private', {
      natGateways: 0, restrictDefaultSecurityGroup: false, subnetConfiguration: [{ name: 'Data', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }],
    });
    expect(() => new ChronosTrainingFoundation(stack, 'Foundation', { vpc }))
      .toThrow(/vpc TestStack\/Private has no public subnets: training instances need a public subnet .* no NAT gateway/);
  });

  test('rejects an imported VPC whose public subnets have no route table ID, unless it has an endpoint', () => {
    const stack = agnosticStack();
    const vpc = ec2.Vpc.fromVpcAttributes(stack, 'Imported', { vpcId: 'vpc-1', availabilityZones: ['us-east-1a'], publicSubnetIds: ['subnet-1'] });
    expect(() => new ChronosTrainingFoundation(stack, 'A', { vpc })).toThrow(/a public subnet has no route table ID.*publicSubnetRouteTableIds/);
    expect(() => new ChronosTrainingFoundation(stack, 'B', { vpc, vpcHasS3Endpoint: true, environmentName: 'stage' })).not.toThrow();
  });
});

describe('bring your own bucket', () => {
  function synth(props: Partial<ChronosTrainingFoundationProps> = {}) {
    const stack = agnosticStack();
    const bucket = s3.Bucket.fromBucketName(stack, 'Shared', 'team-ml-data');
    const foundation = new ChronosTrainingFoundation(stack, 'Foundation', { bucket, ...props });
    return { stack, bucket, foundation, get template() { return Template.fromStack(stack); } };
  }

  test('creates no bucket, warns that it adds no lifecycle rules, and exports the given name', () => {
    const { stack, bucket, foundation, template } = synth();
    template.resourceCountIs('AWS::S3::Bucket', 0);
    expect(foundation.trainingBucket).toBeUndefined();
    expect(foundation.bucket).toBe(bucket);
    expect(warnings(stack)).toEqual([expect.stringMatching(/bucket: the foundation adds no lifecycle rules to a bucket it did not create: objects under dev\//)]);
    expect(exportsOf(template)['ChronosTraining-dev-S3BucketName']).toBe('team-ml-data');
  });

  test('scopes the role to the same prefixes of the given bucket', () => {
    const { template } = synth({ environmentName: 'prod', runKeeper: false });
    const policies = Object.fromEntries(onlyResource(template, 'AWS::IAM::Role').Properties.Policies.map((p: any) => [p.PolicyName, p.PolicyDocument.Statement]));
    const objects = (prefix: string) => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:s3:::team-ml-data/${prefix}*`]] });
    expect(policies.S3WriteAccess[0].Resource).toEqual(objects('prod/'));
    expect(policies.S3ReadAccess[0].Resource).toEqual(['cached-datasets/', 'runtime/python-env/', 'runtime/scripts/'].map(objects));
  });

  test('grants prefix-scoped access on the given bucket', () => {
    const { stack, foundation } = synth({ runKeeper: false });
    const reader = new iam.Role(stack, 'Reader', { assumedBy: new iam.AccountRootPrincipal() });
    foundation.grantReadShared(reader);
    const statements = onlyResource(Template.fromStack(stack), 'AWS::IAM::Policy').Properties.PolicyDocument.Statement;
    expect(statements[1].Condition).toEqual({ StringLike: { 's3:prefix': ['cached-datasets/*', 'runtime/python-env/*', 'runtime/scripts/*'] } });
  });
});

describe('contradictory props', () => {
  test.each<[string, (stack: Stack) => ChronosTrainingFoundationProps, RegExp]>([
    ['vpc with networkProps', s => ({ vpc: userVpc(s), networkProps: { maxAzs: 2 } }), /vpc and networkProps are both set/],
    ['vpc with flowLogs', s => ({ vpc: userVpc(s), flowLogs: true }), /vpc and flowLogs are both set: the foundation does not change a VPC it does not own/],
    ['vpcHasS3Endpoint without vpc', () => ({ vpcHasS3Endpoint: true }), /vpcHasS3Endpoint true is set without vpc/],
    ['bucket with bucketProps', s => ({ bucket: new s3.Bucket(s, 'B'), bucketProps: {} }), /bucket and bucketProps are both set/],
    ['bucket with flowLogs', s => ({ bucket: new s3.Bucket(s, 'B'), flowLogs: true }),
      /bucket and flowLogs are both set: the foundation could not expire flow logs .* add an ec2.FlowLog to foundation.vpc/],
    ['vpc with s3EndpointRestriction', s => ({ vpc: userVpc(s), s3EndpointRestriction: true }),
      /vpc and s3EndpointRestriction are both set: the foundation sets endpoint policies only in a network it creates/],
    ['s3EndpointRestrictionProps without s3EndpointRestriction', () => ({ s3EndpointRestrictionProps: { amazonLinuxRepositories: false } }),
      /s3EndpointRestrictionProps is set but s3EndpointRestriction is not true/],
    ['s3EndpointRestrictionProps with s3EndpointRestriction: false', () => ({ s3EndpointRestriction: false, s3EndpointRestrictionProps: {} }),
      /s3EndpointRestrictionProps is set but s3EndpointRestriction is not true/],
    ['runReaperProps without runReaper', () => ({ runReaperProps: { dryRun: true } }), /runReaperProps is set but runReaper is not true/],
  ])('%s', (_name, props, message) => {
    const stack = agnosticStack();
    expect(() => new ChronosTrainingFoundation(stack, 'Foundation', props(stack))).toThrow(message);
  });
});

describe('the run agent in the launch template', () => {
  /** The launch template's user data: gzip-compressed at synthesis (no token in it), base64-encoded; gunzipped. */
  const userDataOf = (template: Template) => {
    const gzipped = Buffer.from(onlyResource(template, 'AWS::EC2::LaunchTemplate').Properties.LaunchTemplateData.UserData, 'base64');
    expect([...gzipped.subarray(0, 2)]).toEqual([0x1f, 0x8b]);
    return zlib.gunzipSync(gzipped).toString('utf-8');
  };

  test("starts by default, with the foundation's environment and maxRunLifetime (not its bucket), and tags in the instance metadata", () => {
    const stack = agnosticStack();
    new ChronosTrainingFoundation(stack, 'Foundation', { environmentName: 'stage', maxRunLifetime: Duration.hours(6) });
    const template = Template.fromStack(stack);
    const userData = userDataOf(template);
    expect(userData).toContain('Content-Type: text/x-shellscript; charset="us-ascii"');
    expect(userData).toContain("export CHRONOS_ENVIRONMENT='stage'\n");
    expect(userData).toContain('export CHRONOS_MAX_RUN_LIFETIME_SECONDS=21600');
    expect(userData).not.toContain('CHRONOS_BUCKET=');
    expect(onlyResource(template, 'AWS::EC2::LaunchTemplate').Properties.LaunchTemplateData.MetadataOptions.InstanceMetadataTags).toBe('enabled');
  });

  // The agent learns the bucket from the ChronosBucket tag, which the launcher sets from the S3BucketName value.
  test('uses a given bucket: the launcher reads it from S3BucketName (and tags it); the user data names none', () => {
    const stack = agnosticStack();
    const bucket = s3.Bucket.fromBucketName(stack, 'Given', 'my-training-bucket');
    new ChronosTrainingFoundation(stack, 'Foundation', { environmentName: 'dev', bucket });
    const template = Template.fromStack(stack);
    expect(userDataOf(template)).not.toContain('my-training-bucket');
    template.hasResourceProperties('AWS::SSM::Parameter', { Name: '/chronos-training/dev/S3BucketName', Value: 'my-training-bucket' });
  });

  test('launchTemplateProps: { runAgent: false } leaves the user data and the metadata options as before', () => {
    const stack = agnosticStack();
    new ChronosTrainingFoundation(stack, 'Foundation', { environmentName: 'dev', launchTemplateProps: { runAgent: false } });
    const d = onlyResource(Template.fromStack(stack), 'AWS::EC2::LaunchTemplate').Properties.LaunchTemplateData;
    expect(d).not.toHaveProperty('UserData');
    expect(d.MetadataOptions).toEqual({ HttpTokens: 'required', HttpPutResponseHopLimit: 2 });
  });

  test('the ZeroIdleCostChecker reports nothing on the default foundation, the agent included', () => {
    const stack = agnosticStack();
    const foundation = new ChronosTrainingFoundation(stack, 'Foundation', { environmentName: 'dev' });
    Aspects.of(stack).add(new ZeroIdleCostChecker());
    expect(foundation.launchTemplate).toBeDefined();
    const errors = Annotations.fromStack(stack).findError('*', Match.anyValue());
    expect(errors).toEqual([]);
    expect(warnings(stack).filter(w => w.includes('idle'))).toEqual([]);
  });

  test('an app tag whose key EC2 refuses in the instance metadata fails synthesis; with runAgent: false it does not', () => {
    const on = new App();
    new ChronosTrainingFoundation(new Stack(on, 'On'), 'Foundation', { environmentName: 'dev' });
    Tags.of(on).add('team/owner', 'x');
    expect(() => on.synth()).toThrow(/the instance tag key 'team\/owner' cannot be launched with runAgent/);
    const off = new App();
    new ChronosTrainingFoundation(new Stack(off, 'Off'), 'Foundation', { environmentName: 'dev', launchTemplateProps: { runAgent: false } });
    Tags.of(off).add('team/owner', 'x');
    expect(() => off.synth()).not.toThrow();
  });
});
