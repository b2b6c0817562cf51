import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { TrainingEgressSecurityGroup, TrainingEgressSecurityGroupOptions } from '../../src';
import { agnosticStack, onlyResource, resourcesOf } from '../helpers';

describe('TrainingEgressSecurityGroup', () => {
  function synth(environmentName: string = 'dev', options: TrainingEgressSecurityGroupOptions = {}) {
    const stack = agnosticStack();
    const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 1, natGateways: 0, restrictDefaultSecurityGroup: false });
    const group = new TrainingEgressSecurityGroup(stack, 'Sg', { vpc, environmentName, ...options });
    return { stack, vpc, group, get template() { return Template.fromStack(stack); } };
  }

  test('allows only TCP 443 egress to 0.0.0.0/0 and no ingress', () => {
    const { template } = synth();
    const sg = onlyResource(template, 'AWS::EC2::SecurityGroup');
    expect(sg.Properties.SecurityGroupEgress).toEqual([{
      CidrIp: '0.0.0.0/0',
      Description: 'HTTPS to AWS services and package repos',
      FromPort: 443,
      IpProtocol: 'tcp',
      ToPort: 443,
    }]);
    expect(sg.Properties.SecurityGroupIngress).toBeUndefined();
    template.resourceCountIs('AWS::EC2::SecurityGroupIngress', 0);
    template.resourceCountIs('AWS::EC2::SecurityGroupEgress', 0);
  });

  test("has the guide's description with the environment", () => {
    const { template } = synth('stage');
    template.hasResourceProperties('AWS::EC2::SecurityGroup', {
      GroupDescription: 'Security group for Chronos Training instances (stage) - egress HTTPS only',
    });
  });

  test('belongs to the given VPC and exposes the group', () => {
    const { stack, vpc, group, template } = synth();
    const sg = onlyResource(template, 'AWS::EC2::SecurityGroup');
    expect(sg.Properties.VpcId).toEqual(stack.resolve(vpc.vpcId));
    expect(stack.resolve(group.securityGroup.securityGroupId)).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^Sg[0-9A-F]{8}$/), 'GroupId'] });
    expect(group.node.defaultChild === group.securityGroup).toBe(true);
  });

  test('is an IConnectable: opening another group to it adds the matching egress rule', () => {
    const { stack, vpc, group } = synth();
    const database = new ec2.SecurityGroup(stack, 'Database', { vpc, allowAllOutbound: false });
    database.connections.allowFrom(group, ec2.Port.tcp(5432));
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      FromPort: 5432, SourceSecurityGroupId: stack.resolve(group.securityGroup.securityGroupId),
    });
    template.hasResourceProperties('AWS::EC2::SecurityGroupEgress', {
      FromPort: 5432, GroupId: stack.resolve(group.securityGroup.securityGroupId),
    });
  });

  test('rejects an invalid environment', () => {
    expect(() => synth('Prod')).toThrow(/environmentName 'Prod' is invalid/);
  });

  test('allowHttp adds TCP 80 egress to 0.0.0.0/0 and nothing else', () => {
    const { template } = synth('dev', { allowHttp: true });
    const sg = onlyResource(template, 'AWS::EC2::SecurityGroup');
    expect(sg.Properties.SecurityGroupEgress.map((r: any) => [r.IpProtocol, r.FromPort, r.ToPort, r.CidrIp]))
      .toEqual([['tcp', 443, 443, '0.0.0.0/0'], ['tcp', 80, 80, '0.0.0.0/0']]);
    expect(sg.Properties.SecurityGroupIngress).toBeUndefined();
    template.resourceCountIs('AWS::EC2::SecurityGroupIngress', 0);
  });

  test('allowTrafficWithinGroup allows all traffic from and to the group itself, and nothing from elsewhere', () => {
    const { stack, group, template } = synth('dev', { allowTrafficWithinGroup: true });
    const self = stack.resolve(group.securityGroup.securityGroupId);
    expect(resourcesOf(template, 'AWS::EC2::SecurityGroupIngress').map(r => r.Properties)).toEqual([
      expect.objectContaining({ IpProtocol: '-1', GroupId: self, SourceSecurityGroupId: self }),
    ]);
    expect(resourcesOf(template, 'AWS::EC2::SecurityGroupEgress').map(r => r.Properties)).toEqual([
      expect.objectContaining({ IpProtocol: '-1', GroupId: self, DestinationSecurityGroupId: self }),
    ]);
    expect(onlyResource(template, 'AWS::EC2::SecurityGroup').Properties.SecurityGroupEgress).toHaveLength(1);
  });

  test.each<[string, TrainingEgressSecurityGroupOptions, string]>([
    ['the default rules (the design\'s description)', {}, 'egress HTTPS only'],
    ['HTTP egress', { allowHttp: true }, 'egress HTTPS and HTTP only'],
    ['traffic within the group', { allowTrafficWithinGroup: true }, 'egress HTTPS only, all traffic within the group'],
    ['both', { allowHttp: true, allowTrafficWithinGroup: true }, 'egress HTTPS and HTTP only, all traffic within the group'],
  ])('names the rules it is created with in its description: %s', (_name, options, rules) => {
    const description = onlyResource(synth('dev', options).template, 'AWS::EC2::SecurityGroup').Properties.GroupDescription;
    expect(description).toBe(`Security group for Chronos Training instances (dev) - ${rules}`);
  });
});
