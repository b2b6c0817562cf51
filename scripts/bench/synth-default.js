#!/usr/bin/env node
/* eslint-disable */
// The cost of synthesizing the default stack: the library's ChronosTrainingStack
// against the same resources written as plain aws-cdk-lib code (the CDK
// implementation guide's VPC, bucket, role, security group, plus the launch
// template, instance profile, exports and SSM parameters the default stack has).
//
// Usage (after `npx projen compile`, which builds lib/):
//   node scripts/bench/synth-default.js library   # require('../../lib'), synth ChronosTrainingStack
//   node scripts/bench/synth-default.js plain     # the same resources in plain aws-cdk-lib
//   node scripts/bench/synth-default.js modules   # the aws-cdk-lib/aws-* submodules loaded by require and by synth
//   node scripts/bench/synth-default.js modules-plain   # those the plain code loads
//
// Time whole processes from outside, for example:
//   /usr/bin/time -f '%U user %S sys %e wall' node scripts/bench/synth-default.js library
//   /usr/bin/time -f '%U user %S sys %e wall' node scripts/bench/synth-default.js plain
// The script also prints its own figures (process.cpuUsage, per phase) on stderr.
// It is a benchmark, not a test: it asserts nothing.
'use strict';

const ENV = { account: '123456789012', region: 'us-east-1' };
const mode = process.argv[2] || 'library';
const t0 = process.hrtime.bigint();
const c0 = process.cpuUsage();
const marks = [];
function mark(name) {
  const cpu = process.cpuUsage(c0);
  marks.push({ name, cpuMs: (cpu.user + cpu.system) / 1000, wallMs: Number(process.hrtime.bigint() - t0) / 1e6 });
}

function cdkModules() {
  const re = /[\\/]aws-cdk-lib[\\/](aws-[^\\/]+)[\\/]/;
  const found = new Set();
  for (const file of Object.keys(require.cache)) {
    const m = re.exec(file);
    if (m) found.add(m[1]);
  }
  return [...found].sort();
}

function library() {
  const lib = require('../../lib');
  const { App } = require('aws-cdk-lib');
  mark('require');
  const app = new App();
  new lib.ChronosTrainingStack(app, 'ChronosTraining', { env: ENV });
  mark('construct');
  app.synth();
  mark('synth');
}

function plain() {
  const cdk = require('aws-cdk-lib');
  const ec2 = require('aws-cdk-lib/aws-ec2');
  const iam = require('aws-cdk-lib/aws-iam');
  const s3 = require('aws-cdk-lib/aws-s3');
  const ssm = require('aws-cdk-lib/aws-ssm');
  mark('require');

  const app = new cdk.App();
  const stack = new cdk.Stack(app, 'ChronosTraining', { env: ENV });
  const environment = stack.node.tryGetContext('environment') || 'dev';
  const costCenter = stack.node.tryGetContext('costCenter') || 'train';
  cdk.Tags.of(stack).add('Project', 'Chronos-Training');
  cdk.Tags.of(stack).add('Environment', environment);
  cdk.Tags.of(stack).add('CostCenter', costCenter);
  cdk.Tags.of(stack).add('ManagedBy', 'CDK');

  const vpc = new ec2.Vpc(stack, 'ChronosTrainingVPC', {
    maxAzs: 1,
    natGateways: 0,
    subnetConfiguration: [{ cidrMask: 24, name: 'Public', subnetType: ec2.SubnetType.PUBLIC, mapPublicIpOnLaunch: true }],
    enableDnsHostnames: true,
    enableDnsSupport: true,
  });
  vpc.addGatewayEndpoint('S3Endpoint', { service: ec2.GatewayVpcEndpointAwsService.S3 });

  const bucket = new s3.Bucket(stack, 'ChronosTrainingBucket', {
    bucketName: `chronos-training-${environment}-${stack.account}-${stack.region}`,
    versioned: false,
    encryption: s3.BucketEncryption.S3_MANAGED,
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    enforceSSL: true,
    lifecycleRules: [
      { id: 'TrainingLogs', enabled: true, prefix: `${environment}/logs/`, expiration: cdk.Duration.days(14) },
      {
        id: 'ModelArtifacts',
        enabled: true,
        prefix: `${environment}/`,
        expiration: cdk.Duration.days(90),
        transitions: [{ storageClass: s3.StorageClass.INFREQUENT_ACCESS, transitionAfter: cdk.Duration.days(30) }],
      },
    ],
  });

  const role = new iam.Role(stack, 'ChronosTrainingRole', {
    assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
    description: `IAM role for Chronos Training instances (${environment})`,
    inlinePolicies: {
      S3ReadAccess: new iam.PolicyDocument({
        statements: [new iam.PolicyStatement({
          effect: iam.Effect.ALLOW,
          actions: ['s3:GetObject', 's3:ListBucket'],
          resources: [bucket.bucketArn, `${bucket.bucketArn}/cached-datasets/*`],
        })],
      }),
      S3WriteAccess: new iam.PolicyDocument({
        statements: [new iam.PolicyStatement({
          effect: iam.Effect.ALLOW,
          actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:ListBucket'],
          resources: [bucket.bucketArn, `${bucket.bucketArn}/${environment}/*`],
        })],
      }),
      EC2SelfManagement: new iam.PolicyDocument({
        statements: [new iam.PolicyStatement({
          effect: iam.Effect.ALLOW,
          actions: ['ec2:TerminateInstances', 'ec2:DescribeInstances'],
          resources: ['*'],
          conditions: { StringEquals: { 'ec2:ResourceTag/Project': 'Chronos-Training' } },
        })],
      }),
    },
  });
  const instanceProfile = new iam.CfnInstanceProfile(stack, 'ChronosTrainingInstanceProfile', {
    instanceProfileName: `ChronosTrainingInstanceProfile-${environment}`,
    roles: [role.roleName],
  });

  const sg = new ec2.SecurityGroup(stack, 'ChronosTrainingSG', {
    vpc,
    description: `Security group for Chronos Training instances (${environment}) - egress HTTPS only`,
    allowAllOutbound: false,
  });
  sg.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS to AWS services and package repos');

  const launchTemplate = new ec2.LaunchTemplate(stack, 'ChronosTrainingLaunchTemplate', {
    launchTemplateName: `ChronosTrainingLaunchTemplate-${environment}`,
    instanceProfile: iam.InstanceProfile.fromInstanceProfileAttributes(stack, 'ImportedProfile', {
      instanceProfileArn: instanceProfile.attrArn,
      role,
    }),
    securityGroup: sg,
    requireImdsv2: true,
    httpPutResponseHopLimit: 2,
    instanceInitiatedShutdownBehavior: ec2.InstanceInitiatedShutdownBehavior.TERMINATE,
    blockDevices: [{
      deviceName: '/dev/xvda',
      volume: ec2.BlockDeviceVolume.ebs(100, { volumeType: ec2.EbsDeviceVolumeType.GP3, encrypted: true, deleteOnTermination: true }),
    }],
  });

  const outputs = {
    VPCId: vpc.vpcId,
    PublicSubnetId: vpc.publicSubnets[0].subnetId,
    S3BucketName: bucket.bucketName,
    IAMRoleName: role.roleName,
    InstanceProfileName: instanceProfile.ref,
    SecurityGroupId: sg.securityGroupId,
    Environment: environment,
    CostCenter: costCenter,
    PublicSubnetIds: cdk.Fn.join(',', vpc.publicSubnets.map(s => s.subnetId)),
    AvailabilityZones: cdk.Fn.join(',', vpc.availabilityZones),
    LaunchTemplateId: launchTemplate.launchTemplateId,
  };
  for (const [name, value] of Object.entries(outputs)) {
    new cdk.CfnOutput(stack, name, { value, exportName: `ChronosTraining-${environment}-${name}` });
    new ssm.StringParameter(stack, `Parameter${name}`, {
      parameterName: `/chronos-training/${environment}/${name}`,
      stringValue: value,
      tier: ssm.ParameterTier.STANDARD,
    });
  }
  mark('construct');
  app.synth();
  mark('synth');
}

if (mode === 'library') {
  library();
} else if (mode === 'plain') {
  plain();
} else if (mode === 'modules-plain') {
  plain();
  console.log(`after a plain synth: ${cdkModules().join(' ')}`);
  process.exit(0);
} else if (mode === 'modules') {
  const lib = require('../../lib');
  const { App } = require('aws-cdk-lib');
  console.log(`after require('lib'): ${cdkModules().join(' ')}`);
  const app = new App();
  new lib.ChronosTrainingStack(app, 'ChronosTraining', { env: ENV });
  app.synth();
  console.log(`after a default synth: ${cdkModules().join(' ')}`);
  process.exit(0);
} else {
  console.error(`unknown mode '${mode}': library, plain, modules or modules-plain`);
  process.exit(2);
}
console.error(`${mode}: ` + marks.map(m => `${m.name} ${m.cpuMs.toFixed(0)} ms cpu / ${m.wallMs.toFixed(0)} ms wall`).join(', ') +
  ` (cumulative, from the script's start; node's start-up not included)`);
