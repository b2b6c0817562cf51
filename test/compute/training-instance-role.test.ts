import { Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { TrainingBucket, TrainingInstanceRole, TrainingInstanceRoleProps } from '../../src';
import { agnosticStack, onlyResource } from '../helpers';

describe('TrainingInstanceRole', () => {
  function synth(props: Partial<TrainingInstanceRoleProps> = {}) {
    const stack = agnosticStack();
    const bucket = new s3.Bucket(stack, 'Data');
    const construct = new TrainingInstanceRole(stack, 'Training', { bucket, environmentName: 'dev', ...props });
    const template = Template.fromStack(stack);
    const role = onlyResource(template, 'AWS::IAM::Role');
    const policies: Record<string, any[]> = Object.fromEntries(
      role.Properties.Policies.map((p: any) => [p.PolicyName, p.PolicyDocument.Statement]));
    return { stack, bucket, construct, template, role, policies };
  }

  const bucketArn = { 'Fn::GetAtt': [expect.stringMatching(/^Data/), 'Arn'] };
  const objects = (suffix: string) => ({ 'Fn::Join': ['', [bucketArn, `/${suffix}`]] });
  const instanceArn = (id: string) => ({
    'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ec2:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, `:instance/${id}`]],
  });

  test('is trusted by EC2 only', () => {
    const { role } = synth();
    expect(role.Properties.AssumeRolePolicyDocument.Statement).toEqual([{
      Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' },
    }]);
  });

  test("has the guide's description", () => {
    const { role } = synth({ environmentName: 'stage' });
    expect(role.Properties.Description).toBe('IAM role for Chronos Training instances (stage)');
  });

  test('has exactly the three inline policies named in the guide, the run secrets (issue 30), and no managed policy', () => {
    const { role, template } = synth();
    expect(role.Properties.Policies.map((p: any) => p.PolicyName)).toEqual(['S3ReadAccess', 'S3WriteAccess', 'EC2SelfManagement', 'ReadRunSecrets']);
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    template.resourceCountIs('AWS::IAM::Policy', 0);
    template.resourceCountIs('AWS::IAM::ManagedPolicy', 0);
  });

  test('S3ReadAccess reads and lists only the shared dataset and runtime prefixes', () => {
    const { policies } = synth();
    expect(policies.S3ReadAccess).toEqual([
      {
        Sid: 'ReadSharedDatasetsAndRuntime',
        Effect: 'Allow',
        Action: 's3:GetObject',
        Resource: [objects('cached-datasets/*'), objects('runtime/python-env/*'), objects('runtime/scripts/*')],
      },
      {
        Sid: 'ListSharedDatasetsAndRuntime',
        Effect: 'Allow',
        Action: 's3:ListBucket',
        Resource: bucketArn,
        Condition: { StringLike: { 's3:prefix': ['cached-datasets/*', 'runtime/python-env/*', 'runtime/scripts/*'] } },
      },
    ]);
  });

  test('S3WriteAccess reads, writes and lists only its environment prefix', () => {
    const { policies } = synth({ environmentName: 'prod' });
    expect(policies.S3WriteAccess).toEqual([
      {
        Sid: 'ReadWriteEnvironmentPrefix',
        Effect: 'Allow',
        Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'],
        Resource: objects('prod/*'),
      },
      {
        Sid: 'ListEnvironmentPrefix',
        Effect: 'Allow',
        Action: 's3:ListBucket',
        Resource: bucketArn,
        Condition: { StringLike: { 's3:prefix': ['prod/*'] } },
      },
    ]);
  });

  test('EC2SelfManagement describes any instance and terminates only itself, tagged with project and environment', () => {
    const { policies } = synth({ environmentName: 'stage' });
    expect(policies.EC2SelfManagement).toEqual([
      { Sid: 'DescribeInstances', Effect: 'Allow', Action: 'ec2:DescribeInstances', Resource: '*' },
      {
        Sid: 'TerminateSelf',
        Effect: 'Allow',
        Action: 'ec2:TerminateInstances',
        Resource: 'arn:*:ec2:*:*:instance/*',
        Condition: {
          StringEquals: {
            'ec2:Region': { Ref: 'AWS::Region' },
            'ec2:ResourceTag/Project': 'Chronos-Training',
            'ec2:ResourceTag/Environment': 'stage',
          },
          ArnEquals: { 'ec2:SourceInstanceARN': instanceArn('${ec2:InstanceID}') },
        },
      },
    ]);
  });

  test('with terminateSelfOnly false, terminates any instance of the project and environment but a Batch one', () => {
    const { policies } = synth({ terminateSelfOnly: false });
    expect(policies.EC2SelfManagement[1]).toEqual({
      Sid: 'TerminateProjectEnvironmentInstances',
      Effect: 'Allow',
      Action: 'ec2:TerminateInstances',
      Resource: 'arn:*:ec2:*:*:instance/*',
      Condition: {
        StringEquals: { 'ec2:Region': { Ref: 'AWS::Region' }, 'ec2:ResourceTag/Project': 'Chronos-Training', 'ec2:ResourceTag/Environment': 'dev' },
        // Instances of a TrainingBatchQueue's compute environments are AWS Batch's to scale in.
        StringNotEquals: { 'ec2:ResourceTag/ManagedBy': 'chronos-batch' },
      },
    });
  });

  test('never grants tagging, launching, role passing or bucket administration', () => {
    const { policies } = synth();
    const actions = Object.values(policies).flat().flatMap((s: any) => [s.Action].flat());
    expect(actions.sort()).toEqual([
      'ec2:DescribeInstances', 'ec2:TerminateInstances',
      // The run secrets (ReadRunSecrets): read and decrypt /chronos-training/{env}/secrets/* only.
      'kms:Decrypt',
      's3:AbortMultipartUpload', 's3:DeleteObject', 's3:GetObject', 's3:GetObject', 's3:ListBucket', 's3:ListBucket', 's3:PutObject',
      'ssm:GetParameter', 'ssm:GetParameters',
    ]);
  });

  test('creates the instance profile ChronosTrainingInstanceProfile-{env} holding the role', () => {
    const { template, stack, construct } = synth({ environmentName: 'stage' });
    const profile = onlyResource(template, 'AWS::IAM::InstanceProfile');
    expect(profile.Properties).toEqual({
      InstanceProfileName: 'ChronosTrainingInstanceProfile-stage',
      Roles: [stack.resolve(construct.role.roleName)],
    });
    const profileLogicalId = stack.getLogicalId(construct.instanceProfile.node.defaultChild as any);
    expect(stack.resolve(construct.instanceProfile.instanceProfileName)).toEqual({ Ref: profileLogicalId });
  });

  test('rejects an invalid environment', () => {
    expect(() => synth({ environmentName: '-dev' })).toThrow(/environmentName '-dev' is invalid/);
  });

  test("rejects a TrainingBucket of another environment: it would write into that environment's bucket", () => {
    const stack = agnosticStack();
    const prod = new TrainingBucket(stack, 'Prod', { environmentName: 'prod' });
    expect(() => new TrainingInstanceRole(stack, 'Role', { bucket: prod.bucket, environmentName: 'dev' }))
      .toThrow(/TrainingInstanceRole TestStack\/Role: environmentName 'dev' does not match the bucket's environment 'prod'/);
    expect(new TrainingInstanceRole(stack, 'ProdRole', { bucket: prod.bucket, environmentName: 'prod' }).environmentName).toBe('prod');
  });

  test('is an IGrantable whose principal is the role, with the role as its default child', () => {
    const stack = agnosticStack();
    const data = new TrainingBucket(stack, 'Data', { environmentName: 'dev' });
    const construct = new TrainingInstanceRole(stack, 'Training', { bucket: data.bucket, environmentName: 'dev' });
    const other = new TrainingBucket(stack, 'Other', { environmentName: 'dev' });
    other.bucket.grantRead(construct);
    expect(construct.grantPrincipal === construct.role).toBe(true);
    expect(construct.node.defaultChild === construct.role).toBe(true);
    const policy = onlyResource(Template.fromStack(stack), 'AWS::IAM::Policy');
    expect(policy.Properties.Roles).toEqual([stack.resolve(construct.role.roleName)]);
  });

  test('has no Session Manager policy by default', () => {
    const { policies } = synth();
    expect(policies.SessionManager).toBeUndefined();
    // Of Systems Manager, only the run secrets' parameters (ReadRunSecrets).
    const { ReadRunSecrets: _secrets, ...others } = policies;
    expect(JSON.stringify(others)).not.toContain('ssm');
  });

  test('sessionManager adds exactly the five actions a Session Manager shell needs, on "*"', () => {
    const { role, policies } = synth({ sessionManager: true });
    expect(role.Properties.Policies.map((p: any) => p.PolicyName)).toEqual(['S3ReadAccess', 'S3WriteAccess', 'EC2SelfManagement', 'SessionManager', 'ReadRunSecrets']);
    expect(policies.SessionManager).toEqual([{
      Sid: 'SessionManagerAgent',
      Effect: 'Allow',
      Action: [
        'ssm:UpdateInstanceInformation',
        'ssmmessages:CreateControlChannel',
        'ssmmessages:CreateDataChannel',
        'ssmmessages:OpenControlChannel',
        'ssmmessages:OpenDataChannel',
      ],
      Resource: '*',
    }]);
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    expect(role.Metadata.checkov.skip.map((k: any) => k.id)).toContain('CKV_AWS_111');
    expect(synth().role.Metadata?.checkov).toBeUndefined();
  });

  test('works with a bucket imported by name (whose wildcard findings cdk-nag cannot acknowledge one by one)', () => {
    const stack = agnosticStack();
    const bucket = s3.Bucket.fromBucketName(stack, 'Existing', 'team-ml-data');
    new TrainingInstanceRole(stack, 'Training', { bucket, environmentName: 'dev' });
    const role = onlyResource(Template.fromStack(stack), 'AWS::IAM::Role');
    expect(JSON.stringify(role.Properties.Policies)).toContain(':s3:::team-ml-data/dev/*');
  });
});
