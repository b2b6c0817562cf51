import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { S3EndpointRestrictionOptions, TrainingNetwork } from '../../src';
import { amazonLinux2023RepositoryBucket } from '../../src/private/naming';
import { onlyResource, TEST_ENV } from '../helpers';

/** The endpoint policy's statements after `restrictS3Endpoint(restriction)`. */
function statements(restriction: S3EndpointRestrictionOptions, agnostic = false): any[] {
  const stack = new Stack(new App(), 'S', { env: agnostic ? undefined : TEST_ENV });
  const bucket = s3.Bucket.fromBucketName(stack, 'Training', 'chronos-training-dev-123456789012-us-east-1');
  new TrainingNetwork(stack, 'Network').restrictS3Endpoint(bucket, restriction);
  return onlyResource(Template.fromStack(stack), 'AWS::EC2::VPCEndpoint').Properties.PolicyDocument.Statement;
}

const arn = (resource: string) => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:s3:::${resource}`]] });

describe('TrainingNetwork.restrictS3Endpoint', () => {
  test('without it, the endpoint has no policy (AWS allows everything)', () => {
    const stack = new Stack(new App(), 'S');
    new TrainingNetwork(stack, 'Network');
    expect(onlyResource(Template.fromStack(stack), 'AWS::EC2::VPCEndpoint').Properties.PolicyDocument).toBeUndefined();
  });

  test('may be called once', () => {
    const stack = new Stack(new App(), 'S');
    const network = new TrainingNetwork(stack, 'Network');
    const bucket = s3.Bucket.fromBucketName(stack, 'Training', 'b-1');
    network.restrictS3Endpoint(bucket);
    expect(() => network.restrictS3Endpoint(bucket)).toThrow(/restrictS3Endpoint was already called on this network/);
  });

  test('admits everything on the training bucket and, read-only, the Amazon Linux 2023 repositories', () => {
    expect(statements({})).toEqual([
      {
        Sid: 'TrainingBucket',
        Effect: 'Allow',
        Principal: { AWS: '*' },
        Action: 's3:*',
        Resource: [arn('chronos-training-dev-123456789012-us-east-1'), arn('chronos-training-dev-123456789012-us-east-1/*')],
      },
      {
        Sid: 'ReadOnlyBuckets',
        Effect: 'Allow',
        Principal: { AWS: '*' },
        Action: ['s3:GetObject', 's3:ListBucket'],
        Resource: [arn('al2023-repos-us-east-1-de612dc2'), arn('al2023-repos-us-east-1-de612dc2/*')],
      },
    ]);
  });

  test('adds the named buckets, read-only', () => {
    const [, readOnly] = statements({ readOnlyBucketNames: ['prod-us-east-1-starport-layer-bucket', 'my-datasets-*'] });
    expect(readOnly.Resource).toEqual([
      arn('al2023-repos-us-east-1-de612dc2'), arn('al2023-repos-us-east-1-de612dc2/*'),
      arn('prod-us-east-1-starport-layer-bucket'), arn('prod-us-east-1-starport-layer-bucket/*'),
      arn('my-datasets-*'), arn('my-datasets-*/*'),
    ]);
  });

  test('without the Amazon Linux repositories and no names, admits only the training bucket', () => {
    expect(statements({ amazonLinuxRepositories: false }).map(s => s.Sid)).toEqual(['TrainingBucket']);
  });

  test('names the repository bucket of the stack region, also when the region is a token', () => {
    expect(amazonLinux2023RepositoryBucket('eu-west-1')).toBe('al2023-repos-eu-west-1-de612dc2');
    const [, readOnly] = statements({}, true);
    expect(JSON.stringify(readOnly.Resource[0])).toContain('{"Ref":"AWS::Region"}');
  });

  test.each([
    ['*', /readOnlyBucketNames contains '\*', which would admit every bucket/],
    ['**', /which would admit every bucket/],
    ['My_Bucket', /readOnlyBucketNames contains 'My_Bucket', which is not an S3 bucket name/],
    ['ab', /'ab', which is not an S3 bucket name/],
  ])('refuses %p', (name, message) => {
    expect(() => statements({ readOnlyBucketNames: [name] })).toThrow(message);
  });
});
