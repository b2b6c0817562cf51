/*
 * The typed import `ChronosTrainingFoundation.fromEnvironment`: a foundation
 * deployed elsewhere, read from its SSM parameters.
 */
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { ChronosTrainingFoundation, FoundationExports, IChronosTrainingFoundation } from '../../src';
import { agnosticStack, warnings } from '../helpers';

describe('ChronosTrainingFoundation.fromEnvironment', () => {
  /** A consumer app of its own: it knows the foundation only by its environment name. */
  function consumer(build: (foundation: IChronosTrainingFoundation, stack: Stack) => void, count?: number) {
    const stack = new Stack(new App(), 'Consumer');
    const foundation = ChronosTrainingFoundation.fromEnvironment(stack, 'Training', 'dev', { availabilityZoneCount: count });
    build(foundation, stack);
    return { stack, foundation, template: Template.fromStack(stack) };
  }

  const parameterRef = (template: Template, suffix: string) => {
    const name = FoundationExports.parameterName('dev', suffix);
    const [logicalId, parameter] = Object.entries(template.toJSON().Parameters).find(([, p]: [string, any]) => p.Default === name)!;
    expect(parameter).toEqual({ Type: 'AWS::SSM::Parameter::Value<String>', Default: name });
    return { Ref: logicalId };
  };

  test('lets a Lambda function of another app read the shared prefixes and reach it from the training group', () => {
    const { template } = consumer((training, stack) => {
      const fn = new lambda.Function(stack, 'Fn', {
        runtime: lambda.Runtime.NODEJS_22_X,
        handler: 'index.handler',
        code: lambda.Code.fromInline('exports.handler = async () => "ok";'),
        vpc: training.vpc,
        vpcSubnets: { subnets: training.publicSubnets },
        allowPublicSubnet: true,
      });
      training.grantReadShared(fn);
      fn.connections.allowFrom(training, ec2.Port.tcp(8080));
    });
    const bucketArn = { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':s3:::', parameterRef(template, FoundationExports.S3_BUCKET_NAME)]] };
    const objects = (prefix: string) => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':s3:::', parameterRef(template, FoundationExports.S3_BUCKET_NAME), `/${prefix}*`]] });
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: [
          { Effect: 'Allow', Action: 's3:GetObject', Resource: ['cached-datasets/', 'runtime/python-env/', 'runtime/scripts/'].map(objects) },
          {
            Effect: 'Allow',
            Action: 's3:ListBucket',
            Resource: bucketArn,
            Condition: { StringLike: { 's3:prefix': ['cached-datasets/*', 'runtime/python-env/*', 'runtime/scripts/*'] } },
          },
        ],
      },
    });
    const trainingGroup = parameterRef(template, FoundationExports.SECURITY_GROUP_ID);
    template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', { FromPort: 8080, ToPort: 8080, SourceSecurityGroupId: trainingGroup });
    // The training group allows only HTTPS out, so the connection adds its egress rule.
    template.hasResourceProperties('AWS::EC2::SecurityGroupEgress', { FromPort: 8080, GroupId: trainingGroup });
    template.hasResourceProperties('AWS::Lambda::Function', {
      VpcConfig: { SubnetIds: [{ 'Fn::Select': [0, { 'Fn::Split': [',', parameterRef(template, FoundationExports.PUBLIC_SUBNET_IDS)] }] }] },
    });
  });

  test('reads every member from the parameters, with no AWS credentials or lookups', () => {
    const { stack, foundation, template } = consumer(() => undefined);
    expect(foundation.environmentName).toBe('dev');
    expect(stack.resolve(foundation.vpc.vpcId)).toEqual(parameterRef(template, FoundationExports.VPC_ID));
    expect(stack.resolve(foundation.role.roleName)).toEqual(parameterRef(template, FoundationExports.IAM_ROLE_NAME));
    expect(stack.resolve(foundation.instanceProfile.instanceProfileName)).toEqual(parameterRef(template, FoundationExports.INSTANCE_PROFILE_NAME));
    expect(stack.resolve(foundation.publicSubnets[0].availabilityZone))
      .toEqual({ 'Fn::Select': [0, { 'Fn::Split': [',', parameterRef(template, FoundationExports.AVAILABILITY_ZONES)] }] });
    expect(warnings(stack)).toEqual([]);
    expect(stack.node.metadata.filter(m => m.type === 'aws:cdk:missing-context' || m.type === 'aws:cdk:error')).toEqual([]);
  });

  test('reads the launch template ID, unless told the foundation has none', () => {
    const { stack, foundation, template } = consumer(() => undefined);
    expect(stack.resolve(foundation.launchTemplate?.launchTemplateId)).toEqual(parameterRef(template, FoundationExports.LAUNCH_TEMPLATE_ID));
    const without = ChronosTrainingFoundation.fromEnvironment(new Stack(new App(), 'Other'), 'Training', 'dev', { launchTemplate: false });
    expect(without.launchTemplate).toBeUndefined();
  });

  // "AWS::EC2::LaunchTemplate", CloudFormation reference, return values: LatestVersionNumber; the default version
  // never moves (cloudformation-coverage-roadmap #1518). The version changes on each template change, so it is read
  // from the SSM parameter, never imported (an imported export cannot be updated).
  test('reads the launch template version from its parameter only when used, never through an import', () => {
    const unused = consumer(() => undefined);
    expect(JSON.stringify(unused.template.toJSON())).not.toContain(FoundationExports.LAUNCH_TEMPLATE_VERSION);
    const { stack, template } = consumer((training, s) => {
      new ssm.StringParameter(s, 'Pinned', { stringValue: training.launchTemplateVersion! });
    });
    const version = parameterRef(template, FoundationExports.LAUNCH_TEMPLATE_VERSION);
    template.hasResourceProperties('AWS::SSM::Parameter', { Value: version });
    expect(JSON.stringify(template.toJSON())).not.toContain('Fn::ImportValue');
    expect(stack.resolve(version)).toEqual(version);
    const without = ChronosTrainingFoundation.fromEnvironment(new Stack(new App(), 'Other'), 'Training', 'dev', { launchTemplate: false });
    expect(without.launchTemplateVersion).toBeUndefined();
  });

  test('takes more zones from the comma-separated parameters', () => {
    const { stack, foundation } = consumer(() => undefined, 3);
    expect(foundation.publicSubnets.map(s => stack.resolve(s.subnetId)['Fn::Select'][0])).toEqual([0, 1, 2]);
  });

  test('lets another principal of the consumer read and write its environment prefix', () => {
    const { template } = consumer((training, stack) => {
      training.grantReadWriteEnvironment(new iam.Role(stack, 'Eval', { assumedBy: new iam.AccountRootPrincipal() }));
    });
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Condition: { StringLike: { 's3:prefix': ['dev/*'] } } })]) },
    });
  });

  test.each([0, 1.5])('rejects availabilityZoneCount %s', (count) => {
    expect(() => consumer(() => undefined, count)).toThrow(new RegExp(`availabilityZoneCount ${count} is invalid; it must be a whole number of at least 1`));
  });

  test('a foundation defined here is an IChronosTrainingFoundation with the same members', () => {
    const stack = agnosticStack();
    const foundation: IChronosTrainingFoundation = new ChronosTrainingFoundation(stack, 'Foundation');
    expect(stack.resolve(foundation.instanceProfile.instanceProfileName)).toEqual({ Ref: expect.stringMatching(/^FoundationInstanceRoleInstanceProfile/) });
    expect(foundation.publicSubnets).toHaveLength(1);
  });
});
