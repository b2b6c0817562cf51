// Integration test: capacity and reuse. A three-zone foundation with every option on, and a
// foundation in a VPC of the user's own. Zone names are explicit so the snapshot is deterministic.
import { ExpectedResult, IntegTest, Match } from '@aws-cdk/integ-tests-alpha';
import { App, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { ChronosTrainingFoundation, ChronosTrainingStack, FoundationExports } from '../src';
import { assertionStackFor } from './sample';
import { skipCfnLint } from '../src/private/compliance';

const env = { account: '123456789012', region: 'us-east-1' };
const zones = ['us-east-1a', 'us-east-1b', 'us-east-1c'];

const app = new App();
const stack = new ChronosTrainingStack(app, 'ChronosTrainingCapacity', {
  env,
  environmentName: 'capacity',
  networkProps: { availabilityZones: zones },
  instanceRoleProps: { sessionManager: true },
  securityGroupProps: { allowHttp: true, allowTrafficWithinGroup: true },
  clusterPlacementGroup: true,
  flowLogs: true,
});

// A VPC the user already has (here in its own stack of the test), with public and isolated subnets in two zones.
const byoStack = new Stack(app, 'ChronosTrainingByoVpc', { env, stackName: 'ChronosTraining-byo-Stack' });
const userVpc = new ec2.Vpc(byoStack, 'UserVpc', {
  availabilityZones: zones.slice(0, 2),
  natGateways: 0,
  restrictDefaultSecurityGroup: false,
  subnetConfiguration: [
    { name: 'Public', subnetType: ec2.SubnetType.PUBLIC, mapPublicIpOnLaunch: true },
    { name: 'Data', subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
  ],
});
// The user's VPC, not the library's: its zones are pinned on purpose, as the foundation's are.
for (const subnet of [...userVpc.publicSubnets, ...userVpc.isolatedSubnets]) {
  skipCfnLint(subnet.node.defaultChild as ec2.CfnSubnet, 'W3010');
}
const byo = new ChronosTrainingFoundation(byoStack, 'Foundation', { environmentName: 'byo', vpc: userVpc });

const integ = new IntegTest(app, 'ChronosTrainingCapacityAndReuse', {
  testCases: [stack, byoStack],
  assertionStack: assertionStackFor(stack),
});

// The same value through an SSM parameter, which can change while an export cannot once imported.
integ.assertions
  .awsApiCall('SSM', 'getParameter', { Name: FoundationExports.parameterName('capacity', FoundationExports.AVAILABILITY_ZONES) })
  .expect(ExpectedResult.objectLike({ Parameter: { Value: zones.join(',') } }));

integ.assertions
  .awsApiCall('EC2', 'describeSubnets', { SubnetIds: stack.foundation.publicSubnets.map(s => s.subnetId) })
  .expect(ExpectedResult.objectLike({
    Subnets: Match.arrayWith(zones.map(zone => Match.objectLike({ AvailabilityZone: zone, MapPublicIpOnLaunch: true }))),
  }));

integ.assertions
  .awsApiCall('EC2', 'describeSecurityGroups', { GroupIds: [byo.securityGroup.securityGroupId] })
  .expect(ExpectedResult.objectLike({ SecurityGroups: [{ VpcId: userVpc.vpcId }] }));

app.synth();
