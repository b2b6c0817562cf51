import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { TrainingEgressSecurityGroup } from '../src';
import { agnosticStack, onlyResource } from './helpers';

describe('TrainingEgressSecurityGroup', () => {
  function synth(environmentName: string = 'dev') {
    const stack = agnosticStack();
    const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 1, natGateways: 0, restrictDefaultSecurityGroup: false });
    const group = new TrainingEgressSecurityGroup(stack, 'Sg', { vpc, environmentName });
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
});
