/*
 * The run secrets' grants (docs/IAM.md, "Run secrets"): grantLaunch's grantee may check that a secret exists
 * (ssm:GetParameter, which the launcher calls without decryption) and not store one; grantManageSecrets' grantee may
 * store, replace, delete and list this environment's secrets only. Evaluated by the IAM policy simulator against the
 * synthesized policies. ssm:DescribeParameters has no resource-level permissions (Service Authorization Reference,
 * AWS Systems Manager), so it is granted on "*".
 */
import { App, CfnResource } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { ChronosTrainingFoundation, ChronosTrainingStack } from '../../src';
import { ACCOUNT, REGION, resolver, simulate } from '../iam-simulation';

const parameter = (name: string, region = REGION) => `arn:aws:ssm:${region}:${ACCOUNT}:parameter/${name}`;

interface Row {
  readonly who: 'launcher' | 'manager';
  readonly request: string;
  readonly action: string;
  readonly resource: string;
  readonly allowed: boolean;
}

const ROWS: Row[] = [
  { who: 'launcher', request: 'check that a run secret exists', action: 'ssm:GetParameter', resource: parameter('chronos-training/dev/secrets/wandb'), allowed: true },
  { who: 'launcher', request: 'store a secret', action: 'ssm:PutParameter', resource: parameter('chronos-training/dev/secrets/wandb'), allowed: false },
  { who: 'launcher', request: "check another environment's secret", action: 'ssm:GetParameter', resource: parameter('chronos-training/prod/secrets/wandb'), allowed: false },
  { who: 'manager', request: 'store or replace a secret', action: 'ssm:PutParameter', resource: parameter('chronos-training/dev/secrets/wandb'), allowed: true },
  { who: 'manager', request: 'delete a secret', action: 'ssm:DeleteParameter', resource: parameter('chronos-training/dev/secrets/wandb'), allowed: true },
  { who: 'manager', request: 'list the secrets (names only)', action: 'ssm:DescribeParameters', resource: '*', allowed: true },
  { who: 'manager', request: "store another environment's secret", action: 'ssm:PutParameter', resource: parameter('chronos-training/prod/secrets/wandb'), allowed: false },
  { who: 'manager', request: 'overwrite a foundation parameter', action: 'ssm:PutParameter', resource: parameter('chronos-training/dev/S3BucketName'), allowed: false },
  { who: 'manager', request: 'store a parameter of another path', action: 'ssm:PutParameter', resource: parameter('prod/db-password'), allowed: false },
  { who: 'manager', request: 'store a dev secret in another region', action: 'ssm:PutParameter', resource: parameter('chronos-training/dev/secrets/wandb', 'us-west-2'), allowed: false },
];

function policies() {
  const stack = new ChronosTrainingStack(new App(), 'ChronosTraining-dev-Stack', {
    environmentName: 'dev', env: { account: ACCOUNT, region: REGION },
  });
  const launcher = new iam.Role(stack, 'Launcher', { assumedBy: new iam.AccountRootPrincipal() });
  stack.foundation.grantLaunch(launcher);
  const manager = new iam.Role(stack, 'Manager', { assumedBy: new iam.AccountRootPrincipal() });
  stack.foundation.grantManageSecrets(manager);
  const resources = Template.fromStack(stack).toJSON().Resources;
  const resolve = resolver(resources);
  const attachedTo = (role: iam.Role) => Object.values(resources)
    .filter((r: any) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties.Roles) === JSON.stringify([{ Ref: stack.getLogicalId(role.node.defaultChild as CfnResource) }]))
    .map((r: any) => ({ name: r.Properties.PolicyName, policy: resolve(r.Properties.PolicyDocument) }));
  return { launcher: attachedTo(launcher), manager: attachedTo(manager) };
}

describe('the run secrets grants, simulated', () => {
  const all = policies();
  test.each(ROWS.map(r => [r.who, r.request, r.allowed ? 'allowed' : 'denied', r] as const))(
    'the %s may %s: %s', async (who, _request, _expected, row) => {
      const result = await simulate(all[who], {
        principal: `arn:aws:iam::${ACCOUNT}:role/${who}`, action: row.action, resource: row.resource, context: {},
      }, row.request);
      expect(result.overallResult).toBe(row.allowed ? 'Allowed' : 'ImplicitlyDenied');
    });

  test('without secretsKey, grantManageSecrets grants no KMS action (the aws/ssm key policy allows it through SSM)', () => {
    expect(JSON.stringify(all.manager)).not.toContain('kms:');
  });
});

test('with secretsKey, grantManageSecrets grants kms:Encrypt with that key, through SSM, for these parameters', () => {
  const app = new App();
  const keys = new ChronosTrainingStack(app, 'Keys', { environmentName: 'keys', env: { account: ACCOUNT, region: REGION } });
  const stack = new ChronosTrainingStack(app, 'ChronosTraining-dev-Stack', {
    environmentName: 'dev',
    env: { account: ACCOUNT, region: REGION },
    instanceRoleProps: { secretsKey: kms.Key.fromKeyArn(keys, 'Key', `arn:aws:kms:${REGION}:${ACCOUNT}:key/1111`) },
  });
  const manager = new iam.Role(stack, 'Manager', { assumedBy: new iam.AccountRootPrincipal() });
  stack.foundation.grantManageSecrets(manager);
  const statements = Object.values(Template.fromStack(stack).toJSON().Resources)
    .filter((r: any) => r.Type === 'AWS::IAM::Policy').flatMap((r: any) => r.Properties.PolicyDocument.Statement);
  const encrypt = statements.filter((st: any) => st.Action === 'kms:Encrypt');
  expect(encrypt).toHaveLength(1);
  expect(encrypt[0].Resource).toBe(`arn:aws:kms:${REGION}:${ACCOUNT}:key/1111`);
  expect(Object.keys(encrypt[0].Condition)).toEqual(['StringEquals', 'StringLike']);
  expect(stack.foundation.secretsKey).toBeDefined();
});

test('an imported foundation grants the SSM part of grantManageSecrets', () => {
  const stack = new ChronosTrainingStack(new App(), 'S', { environmentName: 'dev', env: { account: ACCOUNT, region: REGION } });
  const imported = ChronosTrainingFoundation.fromEnvironment(stack, 'Imported', 'prod');
  const role = new iam.Role(stack, 'R', { assumedBy: new iam.AccountRootPrincipal() });
  imported.grantManageSecrets(role);
  const text = JSON.stringify(Template.fromStack(stack).toJSON());
  expect(text).toContain('parameter/chronos-training/prod/secrets/*');
});

test('containerRepositories: the instance role may pull from each repository, and GetAuthorizationToken on "*"', () => {
  const app = new App();
  const repos = new ChronosTrainingStack(app, 'Repos', { environmentName: 'repos', env: { account: ACCOUNT, region: REGION } });
  const repository = ecr.Repository.fromRepositoryName(repos, 'Train', 'train');
  const stack = new ChronosTrainingStack(app, 'ChronosTraining-dev-Stack', {
    environmentName: 'dev', env: { account: ACCOUNT, region: REGION }, instanceRoleProps: { containerRepositories: [repository] },
  });
  const statements = Object.values(Template.fromStack(stack).toJSON().Resources)
    .filter((r: any) => r.Type === 'AWS::IAM::Policy').flatMap((r: any) => r.Properties.PolicyDocument.Statement);
  const pull = statements.find((st: any) => Array.isArray(st.Action) && st.Action.includes('ecr:BatchGetImage'));
  expect(pull.Action).toEqual(['ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage']);
  expect(JSON.stringify(pull.Resource)).toContain('repository/train');
  const token = statements.find((st: any) => st.Action === 'ecr:GetAuthorizationToken');
  expect(token.Resource).toBe('*');
});
