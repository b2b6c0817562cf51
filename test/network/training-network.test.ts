import { App, Stack } from 'aws-cdk-lib';
import { Template, Match } from 'aws-cdk-lib/assertions';
import { TrainingNetwork, TrainingNetworkProps } from '../../src';
import { agnosticStack, concreteStack, onlyResource, resourcesOf } from '../helpers';

describe('TrainingNetwork', () => {
  function synth(props: TrainingNetworkProps = {}) {
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
    expect(network.publicSubnets).toEqual(network.vpc.publicSubnets);
    expect(stack.resolve(network.s3Endpoint.vpcEndpointId)).toEqual({ Ref: expect.stringMatching(/^NetworkS3Endpoint/) });
  });

  test('takes a VPC CIDR, a subnet mask and an Availability Zone', () => {
    const { template } = synth({ vpcCidr: '172.16.0.0/20', subnetCidrMask: 26, availabilityZones: ['us-east-1d'] });
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
    expect(() => synth({ availabilityZones: [' '] })).toThrow(/availabilityZones must not be empty/);
  });

  describe('more zones', () => {
    test('puts one public subnet per zone, each mapping public IPs, in consecutive CIDRs, with no NAT', () => {
      const { network, template } = synth({ maxAzs: 3 });
      const subnets = resourcesOf(template, 'AWS::EC2::Subnet');
      expect(subnets.map(s => [s.Properties.CidrBlock, s.Properties.MapPublicIpOnLaunch, s.Properties.AvailabilityZone])).toEqual(
        [0, 1, 2].map(i => [`10.0.${i}.0/24`, true, { 'Fn::Select': [i, { 'Fn::GetAZs': '' }] }]));
      expect(network.publicSubnets).toHaveLength(3);
      template.resourceCountIs('AWS::EC2::NatGateway', 0);
      template.resourceCountIs('AWS::EC2::InternetGateway', 1);
    });

    test("attaches the one S3 gateway endpoint to every subnet's route table", () => {
      const { stack, network, template } = synth({ maxAzs: 3 });
      const endpoint = onlyResource(template, 'AWS::EC2::VPCEndpoint');
      expect(endpoint.Properties.RouteTableIds).toEqual(network.publicSubnets.map(s => stack.resolve(s.routeTable.routeTableId)));
      expect(Object.keys(template.findResources('AWS::EC2::RouteTable'))).toHaveLength(3);
    });

    test('keeps the logical ID and CIDR of the first subnet', () => {
      const first = (props: TrainingNetworkProps) => {
        const { stack, network, template } = synth(props);
        const id = stack.getLogicalId(network.publicSubnets[0].node.defaultChild as any);
        return [id, template.toJSON().Resources[id].Properties.CidrBlock];
      };
      expect(first({ maxAzs: 3 })).toEqual(first({}));
    });

    test('goes beyond the two zones aws-cdk-lib knows in an environment-agnostic stack', () => {
      const { network } = synth({ maxAzs: 4 });
      expect(network.publicSubnets).toHaveLength(4);
    });

    test('uses the zones of the context lookup in a stack with account and region', () => {
      const stack = concreteStack({
        'availability-zones:account=123456789012:region=us-east-1': ['us-east-1a', 'us-east-1b', 'us-east-1c', 'us-east-1d'],
      });
      new TrainingNetwork(stack, 'Network', { maxAzs: 3 });
      const zones = resourcesOf(Template.fromStack(stack), 'AWS::EC2::Subnet').map(s => s.Properties.AvailabilityZone);
      expect(zones).toEqual(['us-east-1a', 'us-east-1b', 'us-east-1c']);
    });

    test('tells cfn-lint that literal zones are pinned on purpose (W3010), and only then', () => {
      const stack = new Stack(new App(), 'S', { env: { account: '123456789012', region: 'us-east-1' } });
      new TrainingNetwork(stack, 'Network', { availabilityZones: ['us-east-1d', 'us-east-1a'] });
      const subnets = resourcesOf(Template.fromStack(stack), 'AWS::EC2::Subnet');
      expect(subnets.map(s => s.Metadata?.['cfn-lint'])).toEqual([0, 1].map(() => ({ config: { ignore_checks: ['W3010'] } })));
      expect(resourcesOf(synth({ maxAzs: 2 }).template, 'AWS::EC2::Subnet').map(s => s.Metadata?.['cfn-lint'])).toEqual([undefined, undefined]);
    });

    test('takes explicit zones in order', () => {
      const stack = new Stack(new App(), 'S', { env: { account: '123456789012', region: 'us-east-1' } });
      const network = new TrainingNetwork(stack, 'Network', { availabilityZones: ['us-east-1d', 'us-east-1a'] });
      expect(network.publicSubnets.map(s => s.availabilityZone)).toEqual(['us-east-1d', 'us-east-1a']);
    });

    test.each<[string, TrainingNetworkProps, RegExp]>([
      ['zero zones', { maxAzs: 0 }, /maxAzs 0 is invalid; it must be a whole number of at least 1/],
      ['a fractional count', { maxAzs: 1.5 }, /maxAzs 1.5 is invalid/],
      ['more subnets than the VPC holds', { vpcCidr: '10.0.0.0/23', maxAzs: 3 },
        /maxAzs 3 needs 3 \/24 subnets, but vpcCidr '10.0.0.0\/23' holds only 2/],
      ['maxAzs against one zone', { availabilityZones: ['us-east-1a'], maxAzs: 2 },
        /maxAzs 2 contradicts availabilityZones \[us-east-1a\] \(1 zone\(s\)\)/],
      ['maxAzs against the zone list', { availabilityZones: ['us-east-1a', 'us-east-1b'], maxAzs: 3 }, /maxAzs 3 contradicts availabilityZones/],
      ['an empty zone list', { availabilityZones: [] }, /availabilityZones must not be empty/],
      ['a zone twice', { availabilityZones: ['us-east-1a', 'us-east-1a'] }, /names a zone twice/],
    ])('rejects %s', (_name, props, message) => {
      expect(() => synth(props)).toThrow(message);
    });

    test('before the CDK CLI has looked the zones up, any maxAzs passes and the lookup is requested once', () => {
      const stack = concreteStack({});
      expect(() => new TrainingNetwork(stack, 'Network', { maxAzs: 5 })).not.toThrow();
      const missing = (stack.node.root as App).synth().manifest.missing ?? [];
      expect(missing.map(m => m.key)).toEqual(['availability-zones:account=123456789012:region=us-east-1']);
    });

    test('rejects more zones than the looked-up region has', () => {
      const stack = concreteStack({ 'availability-zones:account=123456789012:region=us-east-1': ['us-east-1a', 'us-east-1b'] });
      expect(() => new TrainingNetwork(stack, 'Network', { maxAzs: 3 }))
        .toThrow(/maxAzs 3 is more than the 2 Availability Zones of us-east-1 \(us-east-1a, us-east-1b\)/);
    });
  });
});
