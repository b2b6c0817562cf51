import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { TrainingEgressSecurityGroup } from '../src';
import { agnosticStack, onlyResource } from './helpers';

describe('TrainingEgressSecurityGroup', () => {
  function synth(environment?: string) {
    const stack = agnosticStack();
    const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 1, natGateways: 0, restrictDefaultSecurityGroup: false });
    const group = new TrainingEgressSecurityGroup(stack, 'Sg', { vpc, environment });
    return { stack, vpc, group, template: Template.fromStack(stack) };
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

  test('defaults the environment to dev', () => {
    const { template } = synth();
    template.hasResourceProperties('AWS::EC2::SecurityGroup', {
      GroupDescription: 'Security group for Chronos Training instances (dev) - egress HTTPS only',
    });
  });

  test('belongs to the given VPC and exposes the group', () => {
    const { stack, vpc, group, template } = synth();
    const sg = onlyResource(template, 'AWS::EC2::SecurityGroup');
    expect(sg.Properties.VpcId).toEqual(stack.resolve(vpc.vpcId));
    expect(stack.resolve(group.securityGroup.securityGroupId)).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^SgSecurityGroup/), 'GroupId'] });
  });

  test('rejects an invalid environment', () => {
    expect(() => synth('Prod')).toThrow(/environment 'Prod' is invalid/);
  });
});
