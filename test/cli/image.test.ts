/*
 * Which image a launch uses. The foundation's launch template has no AMI by default (machineImage is optional), and
 * EC2 then refuses RunInstances without an ImageId: the EC2 API Reference, RunInstances, says of ImageId "An AMI ID is
 * required to launch an instance and must be specified here or in a launch template"
 * (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RunInstances.html; the CloudFormation
 * AWS::EC2::LaunchTemplate reference: "If you do not specify an AMI ID for the launch template ImageId property, you
 * must specify an AMI ID for the instance ImageId property"). Moto picks an image silently, so these tests mock the
 * SDK clients (aws-sdk-client-mock) and look at the request.
 *
 * The default image is given as `resolve:ssm:PARAMETER`, which EC2 resolves at launch: EC2 User Guide, "Use a Systems
 * Manager parameter instead of an AMI ID" (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/using-systems-manager-parameter-to-find-AMI.html;
 * the ImageId field of the EC2 API: "resolve:ssm:public-parameter"). The parameter is the DLAMI's public one,
 * `/aws/service/deeplearning/ami/$architecture/$ami_type/latest/ami-id` with architecture x86_64 or arm64 and ami_type
 * the DLAMI's name without "deep", "learning" and "ami" (AWS Deep Learning AMIs Developer Guide, "Finding the ID of a
 * DLAMI", https://docs.aws.amazon.com/dlami/latest/devguide/find-dlami-id.html): "Deep Learning Base OSS Nvidia Driver
 * GPU AMI (Amazon Linux 2023)" → base-oss-nvidia-driver-gpu-amazon-linux-2023. Its ARM64 sibling supports G5g and
 * P6e-GB200 (its release notes, "supported_ec2_instances").
 */
import { DescribeLaunchTemplateVersionsCommand, DescribeInstanceTypeOfferingsCommand, EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { GetParametersByPathCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { awsError } from './helpers';
import { Clients } from '../../src/cli/context';
import { resolveFoundation } from '../../src/cli/foundation';
import * as launch from '../../src/cli/launch';

const DLAMI_X86 = 'resolve:ssm:/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id';
const DLAMI_ARM = 'resolve:ssm:/aws/service/deeplearning/ami/arm64/base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id';

const ec2 = mockClient(EC2Client);
const ssm = mockClient(SSMClient);
const config = { region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } };
const ec2Client = new EC2Client(config);
const clients = { ec2: ec2Client, ec2Launch: ec2Client, ssm: new SSMClient(config) } as unknown as Clients;

const PARAMETERS: Record<string, string> = {
  S3BucketName: 'b', LaunchTemplateId: 'lt-0123456789abcdef0', LaunchTemplateVersion: '2', PublicSubnetIds: 'subnet-a', AvailabilityZones: 'us-east-1a',
};

/** The ImageId of each RunInstances request (null when none is sent). */
let imageIds: Array<string | null> = [];

/** The template's facts, at the version the foundation published (never `$Default`, which CloudFormation never moves). */
function foundationWith(templateImageId?: string) {
  ec2.on(DescribeLaunchTemplateVersionsCommand, { LaunchTemplateId: 'lt-0123456789abcdef0', Versions: ['2'] }).resolves({
    LaunchTemplateVersions: [{ LaunchTemplateData: { ...(templateImageId ? { ImageId: templateImageId } : {}) } }],
  });
}

beforeEach(() => {
  ec2.reset();
  ssm.reset();
  imageIds = [];
  ssm.on(GetParametersByPathCommand).resolves({
    Parameters: Object.entries(PARAMETERS).map(([k, v]) => ({ Name: `/chronos-training/dev/${k}`, Value: v })),
  });
  ec2.on(DescribeInstanceTypeOfferingsCommand).rejects(awsError('UnauthorizedOperation'));
  ec2.on(RunInstancesCommand).callsFake(input => {
    imageIds.push(input.ImageId ?? null);
    return { Instances: [{ InstanceId: 'i-0123456789abcdef0' }] };
  });
});

/** Reads the foundation, chooses the image as `run` does, and launches. */
async function launchWith(instanceTypes: string[], imageIdFlag?: string) {
  const foundation = await resolveFoundation(clients, 'dev');
  const image = launch.chooseImage(foundation, instanceTypes, imageIdFlag);
  await launch.launchWithFallback(clients, foundation, {
    runId: 'r-20261201-120000-abcdef', attempt: 1, instanceTypes, markets: ['spot'], maxLifetimeHours: 4, imageId: image.imageId,
  }, () => {});
  return image;
}

test('a template without an image: the x86_64 DLAMI through resolve:ssm', async () => {
  foundationWith(undefined);
  const image = await launchWith(['g5.xlarge']);
  expect(imageIds).toEqual([DLAMI_X86]);
  expect(image.description).toMatch(/Deep Learning Base OSS Nvidia Driver GPU AMI \(Amazon Linux 2023, x86_64\).*the launch template has no image/);
});

test('a template without an image and arm64 types (g5g): the arm64 DLAMI', async () => {
  foundationWith(undefined);
  await launchWith(['g5g.xlarge', 'g5g.2xlarge']);
  expect(imageIds).toEqual([DLAMI_ARM]);
});

test('a template without an image and both arm64 and x86_64 types: refused, naming them', async () => {
  foundationWith(undefined);
  await expect(launchWith(['g5.xlarge', 'g5g.xlarge'])).rejects.toThrow(/g5g\.xlarge.*arm64.*g5\.xlarge.*x86_64.*--image-id/);
  expect(imageIds).toEqual([]);
});

test('--image-id ami-…: that AMI, whether the template has an image or not', async () => {
  foundationWith(undefined);
  await launchWith(['g5.xlarge'], 'ami-0abcdef1234567890');
  foundationWith('ami-0aaaaaaaaaaaaaaa1');
  const image = await launchWith(['g5.xlarge'], 'ami-0abcdef1234567890');
  expect(imageIds).toEqual(['ami-0abcdef1234567890', 'ami-0abcdef1234567890']);
  expect(image.description).toBe('--image-id ami-0abcdef1234567890 (instead of the launch template\'s ami-0aaaaaaaaaaaaaaa1)');
});

test('--image-id resolve:ssm:…: sent as given, for EC2 to resolve', async () => {
  foundationWith(undefined);
  await launchWith(['g5.xlarge'], 'resolve:ssm:/aws/service/deeplearning/ami/x86_64/oss-nvidia-driver-gpu-pytorch-2.7-amazon-linux-2023/latest/ami-id');
  expect(imageIds).toEqual(['resolve:ssm:/aws/service/deeplearning/ami/x86_64/oss-nvidia-driver-gpu-pytorch-2.7-amazon-linux-2023/latest/ami-id']);
});

test('a template with an image and no --image-id: no ImageId is sent (the template\'s is used)', async () => {
  foundationWith('ami-0aaaaaaaaaaaaaaa1');
  const image = await launchWith(['g5.xlarge']);
  expect(imageIds).toEqual([null]);
  expect(image.description).toBe('the launch template\'s ami-0aaaaaaaaaaaaaaa1');
});

test.each(['ubuntu', 'ami-123', 'AMI-0abcdef1234567890', 'resolve:ssm:', 'ssm:/aws/service/x'])('--image-id %s is refused (exit 2)', async (value) => {
  foundationWith(undefined);
  const foundation = await resolveFoundation(clients, 'dev');
  expect(() => launch.chooseImage(foundation, ['g5.xlarge'], value)).toThrow(expect.objectContaining({
    exitCode: 2, message: expect.stringMatching(/^--image-id '.*' is neither an AMI ID \(ami-…\) nor resolve:ssm:PARAMETER/),
  }));
});

test.each([
  ['g5g.xlarge', true], ['c7g.large', true], ['t4g.micro', true], ['m6gd.large', true], ['im4gn.large', true], ['c7gn.large', true],
  ['p6e-gb200.36xlarge', true], ['a1.large', true],
  ['g5.xlarge', false], ['g4dn.xlarge', false], ['g6e.xlarge', false], ['p4de.24xlarge', false], ['p5en.48xlarge', false],
  ['trn1.2xlarge', false], ['inf2.xlarge', false], ['c7i.large', false], ['m7a.large', false], ['t3.micro', false],
])('%s is arm64: %s', (type, arm) => {
  expect(launch.isArm64InstanceType(type)).toBe(arm);
});
