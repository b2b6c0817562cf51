'use strict';
/**
 * What the local emulator (moto 5.2.5, pinned in scripts/local/requirements-moto.txt) can do with a
 * TrainingBatchQueue: the template of integ/integ.batch.ts (its committed snapshot) sent to moto's
 * CloudFormation. moto 5.2.5 CANNOT create the queue: its AWS::Batch::ComputeEnvironment handler
 *   1. needs a ServiceRole (KeyError 'ServiceRole'): the library leaves it out so that Batch uses its
 *      service-linked role, as AWS recommends;
 *   2. accepts only Type 'MANAGED', while aws-cdk-lib's L2 writes 'managed' (AWS accepts both);
 *   3. has no Fn::GetAtt support (ComputeEnvironment has no get_cfn_attribute), which the JobQueue's
 *      ComputeEnvironmentOrder uses.
 * SubmitJob would need Docker in any case (absent here). These are canaries: when a moto upgrade
 * models one of them, the test fails, and a deploy-and-submit test can replace it. The template-level
 * jest tests (test/batch/) and the integ snapshot cover the queue meanwhile.
 *
 *   node --test --test-reporter=tap test-e2e/batch.test.js
 */
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const moto = require('../scripts/local/moto');
const { clients } = require('../scripts/local/cdk');
const cfnc = require('@aws-sdk/client-cloudformation');
const iamc = require('@aws-sdk/client-iam');
const ssmc = require('@aws-sdk/client-ssm');

const TEMPLATE = path.join(__dirname, '..', 'integ', 'integ.batch.ts.snapshot', 'ChronosTrainingBatch.template.json');
let server;
let c;
let logFile;

before(async () => {
  logFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'chronos-batch-e2e-')), 'moto.log');
  server = await moto.start({ logFile });
  const { cfg } = clients(server.endpoint);
  c = { cfn: new cfnc.CloudFormationClient(cfg), iam: new iamc.IAMClient(cfg), ssm: new ssmc.SSMClient(cfg) };
  // What `cdk bootstrap` would leave: the version parameter the template's BootstrapVersion reads.
  await c.ssm.send(new ssmc.PutParameterCommand({ Name: '/cdk-bootstrap/hnb659fds/version', Value: '30', Type: 'String', Overwrite: true }));
});

after(async () => {
  if (server) await server.stop();
});

/**
 * The snapshot template, with the SSM parameters untagged (moto 5.2.5 reads their Tags map as a list), and
 * without the bucket's auto-delete custom resource and its handler: the handler's code is an asset that only
 * `cdk deploy` publishes, and invoking it would need Docker. Neither concerns Batch.
 */
function template(patch = () => undefined) {
  const t = JSON.parse(fs.readFileSync(TEMPLATE, 'utf8'));
  for (const [id, r] of Object.entries(t.Resources)) {
    if (r.Type === 'Custom::S3AutoDeleteObjects' || (r.Type === 'AWS::Lambda::Function' && id.startsWith('CustomS3AutoDeleteObjects'))) {
      delete t.Resources[id];
    }
  }
  for (const r of Object.values(t.Resources)) {
    if (r.Type === 'AWS::SSM::Parameter') delete r.Properties.Tags;
    patch(r);
  }
  return JSON.stringify(t);
}

/**
 * CreateStack is refused, and what moto says (its answer, or the last traceback in its log) matches `reason`: which
 * of its Batch gaps it hits first depends on the order it walks the resources in.
 */
async function createFails(stackName, body, reason) {
  const error = await c.cfn.send(new cfnc.CreateStackCommand({ StackName: stackName, TemplateBody: body })).then(
    () => assert.fail(`moto created ${stackName}: the canary's gap is closed, replace it with a deploy-and-submit test`),
    (e) => e);
  await new Promise((r) => setTimeout(r, 500)); // moto's log is written after the response
  const traceback = fs.readFileSync(logFile, 'utf8').split('\n').filter((l) => /^[A-Za-z]+Error: /.test(l)).at(-1) ?? '';
  assert.match(`${error.message}\n${traceback}`, reason);
}

test('the template has the queue, its compute environments and job definitions', () => {
  const types = Object.values(JSON.parse(fs.readFileSync(TEMPLATE, 'utf8')).Resources).map((r) => r.Type);
  assert.equal(types.filter((t) => t === 'AWS::Batch::ComputeEnvironment').length, 3);
  assert.equal(types.filter((t) => t === 'AWS::Batch::JobQueue').length, 2);
  assert.equal(types.filter((t) => t === 'AWS::Batch::JobDefinition').length, 2);
});

test('canary: moto 5.2.5 cannot create the compute environments as the L2 writes them (no ServiceRole; Fn::GetAtt)', async () => {
  // Either its handler's KeyError 'ServiceRole' (the library leaves the service role out, so that Batch uses its
  // service-linked role), or its refusal of the job queue's Fn::GetAtt on a compute environment it did not create.
  const environments = Object.entries(JSON.parse(fs.readFileSync(TEMPLATE, 'utf8')).Resources)
    .filter(([, r]) => r.Type === 'AWS::Batch::ComputeEnvironment').map(([id]) => id);
  await createFails('batch-as-is', template(), new RegExp(`KeyError: 'ServiceRole'|Fn::GetAtt references undefined resource (${environments.join('|')})`));
});

test('canary: with a ServiceRole, moto 5.2.5 rejects the L2\'s lowercase Type, then cannot resolve Fn::GetAtt of the environment', async () => {
  await c.iam.send(new iamc.CreateRoleCommand({
    RoleName: 'AWSServiceRoleForBatch', Path: '/aws-service-role/batch.amazonaws.com/',
    AssumeRolePolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'batch.amazonaws.com' }, Action: 'sts:AssumeRole' }] }),
  }));
  const serviceRole = 'arn:aws:iam::123456789012:role/aws-service-role/batch.amazonaws.com/AWSServiceRoleForBatch';
  await assert.rejects(c.cfn.send(new cfnc.CreateStackCommand({
    StackName: 'batch-with-role',
    TemplateBody: template((r) => { if (r.Type === 'AWS::Batch::ComputeEnvironment') r.Properties.ServiceRole = serviceRole; }),
  })));
  // (moto answers "type managed must be one of MANAGED | UNMANAGED" as JSON, which the query protocol cannot parse.)
  // Seen by hand on a fresh moto: AttributeError "'ComputeEnvironment' object has no attribute 'get_cfn_attribute'"
  // (the JobQueue's Fn::GetAtt ComputeEnvironmentArn). Only the refusal is asserted here.
  await assert.rejects(c.cfn.send(new cfnc.CreateStackCommand({
    StackName: 'batch-uppercase',
    TemplateBody: template((r) => {
      if (r.Type === 'AWS::Batch::ComputeEnvironment') Object.assign(r.Properties, { ServiceRole: serviceRole, Type: 'MANAGED' });
    }),
  })));
});
