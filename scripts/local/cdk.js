'use strict';
/**
 * The CDK CLI (devDependency aws-cdk) on the sample app in integ/ against a local emulator, as a user runs
 * it against AWS: `cdk bootstrap`, `cdk deploy --method=direct`, `cdk destroy`. Its environment has no AWS_*
 * variable of the caller, empty shared config/credentials files, the loopback endpoint and dummy credentials.
 */
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const cfn = require('@aws-sdk/client-cloudformation');
const ec2 = require('@aws-sdk/client-ec2');
const { ROOT, assertLoopback, withoutAws } = require('./moto');

const REGION = 'us-east-1';
const ACCOUNT = '123456789012'; // moto's account
const CDK_BIN = path.join(ROOT, 'node_modules', 'aws-cdk', 'bin', 'cdk');
const stackNameFor = (environment) => `ChronosTraining-${environment}-Stack`; // the sample app's stacks

// Empty shared config and credentials files for the CLI (so no profile of the caller's resolves).
const EMPTY_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'chronos-aws-'));
const EMPTY = path.join(EMPTY_DIR, 'empty');
fs.writeFileSync(EMPTY, '');
process.once('exit', () => fs.rmSync(EMPTY_DIR, { recursive: true, force: true }));

/** Environment for the CLI: the caller's minus AWS_*, plus the emulator's. Returns { env, removed }. */
function cliEnv(endpoint, base = process.env) {
  const { env, removed } = withoutAws(base);
  Object.assign(env, {
    AWS_ENDPOINT_URL: assertLoopback(endpoint), AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_REGION: REGION, AWS_DEFAULT_REGION: REGION, AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: EMPTY, AWS_SHARED_CREDENTIALS_FILE: EMPTY, NO_PROXY: 'localhost,127.0.0.1', no_proxy: 'localhost,127.0.0.1',
    CDK_DISABLE_VERSION_CHECK: 'true', CDK_DISABLE_CLI_TELEMETRY: 'true',
    TS_NODE_TRANSPILE_ONLY: 'true', // the app's ts-node skips type checking (5x faster synth; `projen compile` checks types)
  });
  return { env, removed };
}

/** SDK clients bound to the emulator (explicit endpoint, dummy credentials). */
function clients(endpoint) {
  const cfg = { endpoint: assertLoopback(endpoint), region: REGION, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
  return { cfn: new cfn.CloudFormationClient(cfg), ec2: new ec2.EC2Client(cfg), cfg };
}

/**
 * Run `cdk ARGS` in integ/. Its output is captured and, unless quiet, passed through as it comes (the
 * CLI's progress display). Returns { seconds, output }; a failure's error carries the output.
 */
function cdk(endpoint, args, { quiet = false } = {}) {
  const { env } = cliEnv(endpoint);
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CDK_BIN, ...args, '--no-notices'], { cwd: path.join(ROOT, 'integ'), env });
    let output = '';
    for (const [from, to] of [[p.stdout, process.stdout], [p.stderr, process.stderr]]) {
      from.on('data', (d) => { output += d; if (!quiet) to.write(d); });
    }
    p.once('error', reject);
    p.once('close', (code, sig) => (code === 0 ? resolve({ seconds: (Date.now() - t0) / 1000, output })
      : reject(new Error(`cdk ${args.join(' ')} failed (${sig || `exit ${code}`})${quiet ? `:\n${output}` : ''}`))));
  });
}

/** The CLI's own "Synthesis time" / "Deployment time" figures, in seconds. */
const cliTimes = (output) => Object.fromEntries(['Synthesis', 'Deployment']
  .map((w) => [w.toLowerCase(), Number((output.match(new RegExp(`${w} time: ([\\d.]+)s`)) || [])[1])]));

/** `cdk bootstrap` unless the emulator has a CDKToolkit stack. Returns seconds, or 0 when skipped. */
async function bootstrap(endpoint, opts) {
  const toolkit = await clients(endpoint).cfn.send(new cfn.DescribeStacksCommand({ StackName: 'CDKToolkit' }))
    .then((r) => r.Stacks[0], (e) => { if (!/does not exist/.test(e.message)) throw e; });
  if (toolkit && toolkit.StackStatus !== 'DELETE_COMPLETE') return 0;
  return (await cdk(endpoint, ['bootstrap', `aws://${ACCOUNT}/${REGION}`], opts)).seconds;
}

/** The library's context keys (namespaced, src/private/settings.ts) of the options `environment` and `costCenter`. */
const LIBRARY_CONTEXT = { environment: '@chronos/training-infra:environment', costCenter: '@chronos/training-infra:costCenter' };

/**
 * `cdk ARGS -o outDir -c key=value...` on the sample app with context { environment, costCenter, ...extra }
 * (environment and costCenter under the library's namespaced keys). Returns { seconds, output, stackName, template }
 * (the template the CLI synthesized).
 */
async function onSample(endpoint, args, { outDir, quiet, ...context }) {
  // emulator=moto: the sample app leaves the SSM parameters untagged, which moto 5.2.5 needs (integ/sample.ts).
  const ctx = Object.entries({ ...context, emulator: 'moto' }).filter(([, v]) => v !== undefined)
    .flatMap(([k, v]) => ['-c', `${LIBRARY_CONTEXT[k] ?? k}=${v}`]);
  const r = await cdk(endpoint, [...args, '-o', outDir, ...ctx], { quiet });
  const manifest = JSON.parse(fs.readFileSync(path.join(outDir, 'manifest.json'), 'utf8'));
  const [stack] = Object.values(manifest.artifacts).filter((a) => a.type === 'aws:cloudformation:stack');
  const template = JSON.parse(fs.readFileSync(path.join(outDir, stack.properties.templateFile), 'utf8'));
  return { ...r, stackName: stack.properties.stackName, template };
}

/**
 * `cdk deploy` of the sample app. --method=direct: moto registers outputs and exports for CreateStack and
 * UpdateStack, not for change sets. --no-previous-parameters: moto 5.2.5 fails an UpdateStack that keeps
 * BootstrapVersion's previous value.
 */
const deploySample = (endpoint, opts) => onSample(endpoint, ['deploy', '--method=direct', '--no-previous-parameters',
  '--require-approval', 'never'], opts);

/**
 * EMULATOR-ONLY WORKAROUND (moto 5.2.5; never needed on AWS): moto's stack delete leaves the VPC's
 * endpoint, internet gateway and route tables, then fails on the VPC ("has dependencies"); and a VPC that
 * an update dropped out of the stack stays. Before: delete those dependents of the stack's VPCs (found by
 * their aws:cloudformation:stack-name tag). After (withVpcs): delete leftover VPCs with subnets and groups.
 */
async function motoCleanup(endpoint, stackName, { withVpcs = false } = {}) {
  const c = clients(endpoint).ec2;
  const send = (C, input) => c.send(new ec2[`${C}Command`](input)).catch((e) => {
    if (!/^Delete|^Detach/.test(C) || !/does not exist|NotFound/.test(`${e.name} ${e.message}`)) throw e; // gone already: fine
  });
  const vpcs = (await send('DescribeVpcs', { Filters: [{ Name: 'tag:aws:cloudformation:stack-name', Values: [stackName] }] })).Vpcs;
  for (const { VpcId } of vpcs) {
    const byVpc = { Filters: [{ Name: 'vpc-id', Values: [VpcId] }] };
    const eps = (await send('DescribeVpcEndpoints', byVpc)).VpcEndpoints.map((e) => e.VpcEndpointId);
    if (eps.length) await send('DeleteVpcEndpoints', { VpcEndpointIds: eps });
    const igws = (await send('DescribeInternetGateways', { Filters: [{ Name: 'attachment.vpc-id', Values: [VpcId] }] })).InternetGateways;
    for (const { InternetGatewayId } of igws) {
      await send('DetachInternetGateway', { InternetGatewayId, VpcId });
      await send('DeleteInternetGateway', { InternetGatewayId });
    }
    for (const rt of (await send('DescribeRouteTables', byVpc)).RouteTables) {
      if (!(rt.Associations || []).some((a) => a.Main)) await send('DeleteRouteTable', { RouteTableId: rt.RouteTableId });
    }
    if (!withVpcs) continue;
    for (const s of (await send('DescribeSubnets', byVpc)).Subnets) await send('DeleteSubnet', { SubnetId: s.SubnetId });
    for (const g of (await send('DescribeSecurityGroups', byVpc)).SecurityGroups) {
      if (g.GroupName !== 'default') await send('DeleteSecurityGroup', { GroupId: g.GroupId });
    }
    await send('DeleteVpc', { VpcId });
  }
  return vpcs.map((v) => v.VpcId);
}

/** moto cleanup, `cdk destroy --force` of the sample app's stack, moto cleanup of what is left. */
async function destroySample(endpoint, opts) {
  await motoCleanup(endpoint, stackNameFor(opts.environment));
  const r = await onSample(endpoint, ['destroy', '--force'], opts);
  return { ...r, leftover: await motoCleanup(endpoint, r.stackName, { withVpcs: true }) };
}

/** All exports: name -> value (ListExports; a page holds 100, the sample app has 9 per environment). */
async function listExports(endpoint) {
  const r = await clients(endpoint).cfn.send(new cfn.ListExportsCommand({}));
  if (r.NextToken) throw new Error('more than 100 exports in the emulator: read the next pages too');
  return Object.fromEntries((r.Exports || []).map((e) => [e.Name, e.Value]));
}

/** The export names a synthesized template declares. */
const exportNamesOf = (template) => Object.values(template.Outputs || {}).filter((o) => o.Export).map((o) => o.Export.Name);

module.exports = {
  REGION, ACCOUNT, stackNameFor, cliEnv, clients, cdk, bootstrap, deploySample, destroySample, motoCleanup,
  listExports, exportNamesOf, cliTimes,
};
