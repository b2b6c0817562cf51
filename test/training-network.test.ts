import { Template, Match } from 'aws-cdk-lib/assertions';
import { TrainingNetwork } from '../src';
import { agnosticStack, concreteStack, onlyResource, resourcesOf } from './helpers';

describe('TrainingNetwork', () => {
  function synth(props = {}) {
    const stack = agnosticStack();
    const network = new TrainingNetwork(stack, 'Network', props);
    return { stack, network, template: Template.fromStack(stack) };
  }

  test('creates a VPC with DNS hostnames and support and the default CIDR', () => {
    const { template } = synth();
    template.resourceCountIs('AWS::EC2::VPC', 1);
    template.hasResourceProperties('AWS::EC2::VPC', {
      CidrBlock: '10.0.0.0/16',
      EnableDnsHostnames: true,
      EnableDnsSupport: true,
    });
  });

  test('has exactly one subnet: public, /24, mapping public IPs on launch, in one AZ', () => {
    const { template } = synth();
    const subnet = onlyResource(template, 'AWS::EC2::Subnet');
    expect(subnet.Properties.CidrBlock).toBe('10.0.0.0/24');
    expect(subnet.Properties.MapPublicIpOnLaunch).toBe(true);
    expect(subnet.Properties.AvailabilityZone).toEqual({ 'Fn::Select': [0, { 'Fn::GetAZs': '' }] });
    expect(subnet.Properties.Tags).toEqual(expect.arrayContaining([{ Key: 'aws-cdk:subnet-type', Value: 'Public' }]));
  });

  test('creates no NAT gateway, no EIP and no custom resource', () => {
    const { template } = synth();
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
    template.resourceCountIs('AWS::EC2::EIP', 0);
    template.resourceCountIs('AWS::Lambda::Function', 0);
    template.resourceCountIs('Custom::VpcRestrictDefaultSG', 0);
  });

  test('routes 0.0.0.0/0 to an internet gateway attached to the VPC', () => {
    const { template } = synth();
    template.resourceCountIs('AWS::EC2::InternetGateway', 1);
    template.resourceCountIs('AWS::EC2::VPCGatewayAttachment', 1);
    template.hasResourceProperties('AWS::EC2::Route', {
      DestinationCidrBlock: '0.0.0.0/0',
      GatewayId: { Ref: Match.stringLikeRegexp('NetworkIGW') },
    });
  });

  test("adds an S3 gateway endpoint on the public subnet's route table", () => {
    const { template } = synth();
    const routeTables = Object.keys(template.findResources('AWS::EC2::RouteTable'));
    expect(routeTables).toHaveLength(1);
    const endpoint = onlyResource(template, 'AWS::EC2::VPCEndpoint');
    expect(endpoint.Properties.VpcEndpointType).toBe('Gateway');
    expect(endpoint.Properties.RouteTableIds).toEqual([{ Ref: routeTables[0] }]);
    expect(JSON.stringify(endpoint.Properties.ServiceName)).toContain('.s3');
  });

  test('exposes the VPC, the public subnet and the endpoint', () => {
    const { stack, network } = synth();
    expect(network.vpc.publicSubnets).toHaveLength(1);
    expect(network.publicSubnet).toBe(network.vpc.publicSubnets[0]);
    expect(stack.resolve(network.s3Endpoint.vpcEndpointId)).toEqual({ Ref: expect.stringMatching(/^NetworkS3Endpoint/) });
  });

  test('takes a VPC CIDR, a subnet mask and an Availability Zone', () => {
    const { template } = synth({ vpcCidr: '172.16.0.0/20', subnetCidrMask: 26, availabilityZone: 'us-east-1d' });
    template.hasResourceProperties('AWS::EC2::VPC', { CidrBlock: '172.16.0.0/20' });
    const subnet = onlyResource(template, 'AWS::EC2::Subnet');
    expect(subnet.Properties.CidrBlock).toBe('172.16.0.0/26');
    expect(subnet.Properties.AvailabilityZone).toBe('us-east-1d');
  });

  test('uses one AZ in a stack with a concrete environment', () => {
    const stack = concreteStack();
    new TrainingNetwork(stack, 'Network');
    expect(resourcesOf(Template.fromStack(stack), 'AWS::EC2::Subnet')).toHaveLength(1);
  });

  test.each([
    ['10.0.0.0', /vpcCidr '10.0.0.0' is not an IPv4 CIDR block/],
    ['10.0.0.300/16', /vpcCidr '10.0.0.300\/16' is not an IPv4 CIDR block/],
    ['10.0.0.0/8', /vpcCidr '10.0.0.0\/8' has prefix length \/8; a VPC's must be from \/16 to \/28/],
    ['10.0.0.0/29', /prefix length \/29/],
  ])('rejects vpcCidr %s', (vpcCidr, message) => {
    expect(() => synth({ vpcCidr })).toThrow(message);
  });

  test.each([
    [15, /subnetCidrMask 15 is invalid; a subnet's prefix length must be a whole number from 16 to 28/],
    [29, /subnetCidrMask 29 is invalid/],
    [24.5, /subnetCidrMask 24.5 is invalid/],
  ])('rejects subnetCidrMask %s', (subnetCidrMask, message) => {
    expect(() => synth({ subnetCidrMask })).toThrow(message);
  });

  test('rejects a subnet larger than the VPC', () => {
    expect(() => synth({ vpcCidr: '10.0.0.0/24', subnetCidrMask: 20 }))
      .toThrow(/subnetCidrMask 20 is shorter than the VPC's prefix length \/24 in vpcCidr '10.0.0.0\/24'/);
  });

  test('rejects an empty Availability Zone', () => {
    expect(() => synth({ availabilityZone: ' ' })).toThrow(/availabilityZone must not be empty/);
  });
});
