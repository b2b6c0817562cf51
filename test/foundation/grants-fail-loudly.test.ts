/*
 * Issue 31: grants that cannot grant fail loudly. The launch, Batch submission and job-definition grants
 * are on resources without resource policies (EC2 launch templates, Batch queues and job definitions), so
 * they can only go into the grantee's own policy. A grantee without one this app can change used to get
 * a grant that did nothing.
 *
 * aws-cdk-lib API reference, `FromRoleArnOptions` (`mutable`: "Whether the imported role can be modified by
 * attaching policy resources to it"; `addGrantsToResources`: "If this is false or not specified, grant
 * permissions added to this role are ignored ... If this is true, any grant permissions will be added to the
 * resource instead"), and `Grant.assertSuccess` ("Throw an error if this grant wasn't successful"): with no
 * resource policy to add to, the only honest answer is an error.
 */
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import { ChronosTrainingFoundation, ChronosTrainingStack } from '../../src';
import { resourcesOf } from '../helpers';

const image = ecs.ContainerImage.fromRegistry('public.ecr.aws/docker/library/python:3.12');
const ROLE_ARN = 'arn:aws:iam::123456789012:role/Launcher';

function foundationStack() {
  const stack = new ChronosTrainingStack(new App(), 'ChronosTraining-dev-Stack', {
    environmentName: 'dev', env: { account: '123456789012', region: 'us-east-1' }, batch: { image },
  });
  return { stack, foundation: stack.foundation };
}

type GrantCall = (foundation: ChronosTrainingFoundation, grantee: iam.IGrantable) => iam.Grant;
const GRANTS: Array<[string, GrantCall]> = [
  ['grantLaunch', (f, g) => f.grantLaunch(g)],
  ['grantSubmitBatchJob', (f, g) => f.grantSubmitBatchJob(g)],
  ['grantSubmit', (f, g) => f.batchQueue!.grantSubmit(g)],
  ['grantRegisterJobDefinition', (f, g) => f.batchQueue!.grantRegisterJobDefinition(g)],
];

const GRANTEES: Array<[string, (stack: ChronosTrainingStack) => iam.IGrantable, RegExp]> = [
  ['a role imported with mutable: false', s => iam.Role.fromRoleArn(s, 'Immutable', ROLE_ARN, { mutable: false }),
    /imported with mutable: false, whose grants aws-cdk-lib ignores/],
  ['a role imported with mutable: false and addGrantsToResources', s => iam.Role.fromRoleArn(s, 'ToResources', ROLE_ARN,
    { mutable: false, addGrantsToResources: true }), /imported with mutable: false/],
  ['an account principal', () => new iam.AccountPrincipal('210987654321'), /has no identity policy this app can add to/],
];

describe('grants that cannot grant fail loudly', () => {
  describe.each(GRANTS)('%s', (method, call) => {
    test.each(GRANTEES)('throws for %s, naming the method and what to do', (_name, grantee, reason) => {
      const { stack, foundation } = foundationStack();
      const principal = grantee(stack);
      expect(() => call(foundation, principal)).toThrow(reason);
      expect(() => call(foundation, principal)).toThrow(new RegExp(`^${method}: .*iam\\.Role\\.fromRoleArn with mutable: true`));
    });

    test('grants to a role imported mutable (the default): a policy of this stack attached to it', () => {
      const { stack, foundation } = foundationStack();
      const grant = call(foundation, iam.Role.fromRoleArn(stack, 'Mutable', ROLE_ARN));
      expect(grant.success).toBe(true);
      const policies = resourcesOf(Template.fromStack(stack), 'AWS::IAM::Policy').filter(p => p.Properties.Roles.includes('Launcher'));
      expect(policies).toHaveLength(1);
      expect(policies[0].Properties.PolicyDocument.Statement.length).toBeGreaterThan(0);
    });
  });
});
