'use strict';
/**
 * Synthesize the sample app (integ/) and deploy it through the CloudFormation API of a local
 * emulator: CreateStack / UpdateStack with the synthesized template, progress from
 * DescribeStackResources and DescribeStackEvents, DeleteStack, ListExports.
 *
 * The stack has no assets, so the template is deployed as is; it must come from a synthesizer
 * that needs no bootstrap stack (the sample app's `-c synthesizer=none`: LegacyStackSynthesizer).
 */
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { promisify } = require('node:util');
const {
  CreateStackCommand, UpdateStackCommand, DeleteStackCommand, DescribeStacksCommand,
  DescribeStackEventsCommand, DescribeStackResourcesCommand, ListExportsCommand, ListStacksCommand,
} = require('@aws-sdk/client-cloudformation');
const { CreateBucketCommand, PutObjectCommand } = require('@aws-sdk/client-s3');
const {
  DeleteRouteTableCommand, DeleteVpcEndpointsCommand, DetachInternetGatewayCommand,
  DeleteInternetGatewayCommand, DescribeInternetGatewaysCommand,
} = require('@aws-sdk/client-ec2');
const { withoutAwsEnv } = require('./aws-env');

const ROOT = path.resolve(__dirname, '..', '..');
const INTEG_DIR = path.join(ROOT, 'integ');
const CDK_BIN = path.join(ROOT, 'node_modules', 'aws-cdk', 'bin', 'cdk');
const TEMPLATE_BODY_LIMIT = 51200; // CloudFormation TemplateBody limit (bytes)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The eight exports of ChronosTraining-<env>-Stack, as the README lists them. */
const EXPORT_SUFFIXES = ['VPCId', 'PublicSubnetId', 'S3BucketName', 'IAMRoleName',
  'InstanceProfileName', 'SecurityGroupId', 'Environment', 'CostCenter'];
const exportNames = (env) => EXPORT_SUFFIXES.map((s) => `ChronosTraining-${env}-${s}`);
const stackNameFor = (env) => `ChronosTraining-${env}-Stack`;

// ---------------------------------------------------------------------------------------------
// Synthesis

/**
 * `cdk synth` of the sample app in integ/ with the bootstrap-free synthesizer, into `outDir`.
 * Quiet: the CLI's output is shown only if it fails. The CLI gets no AWS credentials or
 * endpoint (so it never looks up an account: the template keeps `Ref: AWS::AccountId`), no
 * version check, no telemetry and no notices, so synthesis touches no network.
 */
async function synth({ environment = 'dev', costCenter, outDir, signal }) {
  const args = [CDK_BIN, 'synth', '--quiet', '--no-notices', '-o', outDir,
    '-c', 'synthesizer=none', '-c', `environment=${environment}`];
  if (costCenter) args.push('-c', `costCenter=${costCenter}`);
  const env = {
    ...withoutAwsEnv(process.env),
    CDK_DISABLE_VERSION_CHECK: 'true',
    CDK_DISABLE_CLI_TELEMETRY: 'true',
  };
  const t0 = Date.now();
  try {
    await promisify(execFile)(process.execPath, args, { cwd: INTEG_DIR, env, maxBuffer: 64 * 1024 * 1024, signal });
  } catch (e) {
    const output = `${e.stdout || ''}${e.stderr || ''}`.trim();
    throw new Error(`cdk synth (integ/, environment=${environment}) failed:\n${output || e.message}`);
  }
  return { outDir, seconds: (Date.now() - t0) / 1000 };
}

/** Template and stack tags of one stack from a cloud assembly directory. */
function readStackArtifact(assemblyDir, stackName) {
  const manifest = JSON.parse(fs.readFileSync(path.join(assemblyDir, 'manifest.json'), 'utf8'));
  const entry = Object.entries(manifest.artifacts || {}).find(([id, a]) =>
    a.type === 'aws:cloudformation:stack' && (a.displayName === stackName || id === stackName ||
      (a.properties && a.properties.stackName) === stackName));
  if (!entry) throw new Error(`stack ${stackName} not found in ${assemblyDir}/manifest.json`);
  const [id, art] = entry;
  const props = art.properties || {};
  const templateBody = fs.readFileSync(path.join(assemblyDir, props.templateFile), 'utf8');
  const template = JSON.parse(templateBody);
  if (template.Parameters && template.Parameters.BootstrapVersion) {
    throw new Error(`${id}: the template has a BootstrapVersion parameter (DefaultStackSynthesizer); ` +
      'synthesize with `-c synthesizer=none` for the emulator, which has no CDK bootstrap stack');
  }
  return {
    stackName: props.stackName || id,
    templateBody,
    template,
    tags: Object.entries(props.tags || {}).map(([Key, Value]) => ({ Key, Value })),
  };
}

// ---------------------------------------------------------------------------------------------
// Stack operations

async function describeStack(cfn, stackName) {
  try {
    const r = await cfn.send(new DescribeStacksCommand({ StackName: stackName }));
    const s = r.Stacks && r.Stacks[0];
    return s && s.StackStatus !== 'DELETE_COMPLETE' ? s : undefined;
  } catch (e) {
    if (/does not exist/.test(e.message || '')) return undefined;
    throw e;
  }
}

async function allEvents(cfn, stackId) {
  const events = [];
  let NextToken;
  do {
    const r = await cfn.send(new DescribeStackEventsCommand({ StackName: stackId, NextToken }));
    events.push(...(r.StackEvents || []));
    NextToken = r.NextToken;
  } while (NextToken);
  return events; // newest first
}

const hhmmss = (t) => new Date(t).toISOString().slice(11, 19);

/**
 * Progress printer. moto emits stack-level events only, so besides the events it polls
 * DescribeStackResources and prints each resource when it appears or its status changes.
 * Resources moto accepts but does not model come back without a type; they are printed with
 * the template's type and "(accepted, not modelled by the emulator)".
 */
function progressPrinter({ cfn, stackId, template, log, seenEvents = new Set() }) {
  const last = new Map();
  const tplResources = (template && template.Resources) || {};
  const line = (status, type, id, note) =>
    log(`  ${hhmmss(Date.now())}  ${String(status).padEnd(20)} ${String(type).padEnd(40)} ${id}${note ? `  ${note}` : ''}`);
  return async function poll({ resources = true, final = false } = {}) {
    let events = [];
    try { events = await allEvents(cfn, stackId); } catch (e) { if (!/does not exist/.test(e.message)) throw e; }
    for (const e of events.slice().reverse()) {
      if (seenEvents.has(e.EventId)) continue;
      seenEvents.add(e.EventId);
      line(e.ResourceStatus, e.ResourceType, e.LogicalResourceId,
        `[stack event ${hhmmss(e.Timestamp)}]${e.ResourceStatusReason ? ` ${e.ResourceStatusReason}` : ''}`);
    }
    if (!resources) return;
    let res = [];
    try {
      res = (await cfn.send(new DescribeStackResourcesCommand({ StackName: stackId }))).StackResources || [];
    } catch (e) { if (!/does not exist/.test(e.message)) throw e; }
    for (const r of res) {
      if (!r.LogicalResourceId) continue; // moto lists resources it skipped without id or type
      const state = `${r.ResourceStatus}|${r.PhysicalResourceId}`;
      if (last.get(r.LogicalResourceId) === state) continue;
      last.set(r.LogicalResourceId, state);
      line(r.ResourceStatus, r.ResourceType, r.LogicalResourceId, r.PhysicalResourceId);
    }
    if (final) {
      for (const [id, def] of Object.entries(tplResources)) {
        if (last.has(id)) continue;
        last.set(id, 'SKIPPED');
        line('(skipped)', def.Type, id, 'accepted but not modelled by the emulator');
      }
    }
  };
}

/**
 * Stack status by StackId from ListStacks. Used while deleting because in moto 5.2.5
 * DescribeStacks on a DELETE_COMPLETE stack (by StackId) lazily re-creates the resources its
 * Outputs reference (VPC, subnet, role, ...). ListStacks is side-effect free.
 */
async function statusFromListStacks(cfn, stackId) {
  let NextToken;
  do {
    const r = await cfn.send(new ListStacksCommand({ NextToken }));
    const hit = (r.StackSummaries || []).find((x) => x.StackId === stackId);
    if (hit) return hit.StackStatus;
    NextToken = r.NextToken;
  } while (NextToken);
  return 'DELETE_COMPLETE'; // gone from the list entirely
}

/**
 * Poll until the stack reaches one of okStatuses (printing progress); throw on *_FAILED,
 * *ROLLBACK_COMPLETE or timeout.
 */
async function waitForStack(cfn, { stackName, stackId, okStatuses, poll, timeoutMs = 15 * 60000 }) {
  const deadline = Date.now() + timeoutMs;
  const deleting = okStatuses.includes('DELETE_COMPLETE');
  for (;;) {
    if (poll) await poll({ resources: !deleting });
    const status = deleting
      ? await statusFromListStacks(cfn, stackId)
      : (await cfn.send(new DescribeStacksCommand({ StackName: stackId }))).Stacks[0].StackStatus;
    if (okStatuses.includes(status)) {
      if (poll && !deleting) await poll({ final: true });
      return status;
    }
    if (/(FAILED|ROLLBACK_COMPLETE)$/.test(status)) {
      if (poll) await poll({ resources: !deleting });
      let reason = '';
      if (!deleting) {
        const s = (await cfn.send(new DescribeStacksCommand({ StackName: stackId }))).Stacks[0];
        reason = s.StackStatusReason ? `: ${s.StackStatusReason}` : '';
      }
      throw new Error(`stack ${stackName} ended in ${status}${reason}`);
    }
    if (Date.now() > deadline) throw new Error(`timeout waiting for ${stackName} (last status ${status})`);
    await sleep(500);
  }
}

/** Emulator only: put a template too big for TemplateBody in the emulator's S3, path-style. */
async function stageTemplate(s3, endpoint, stackName, body) {
  const Bucket = 'local-cfn-templates';
  try { await s3.send(new CreateBucketCommand({ Bucket })); } catch (e) { if (!/BucketAlready/.test(e.name)) throw e; }
  const Key = `${stackName}-${Date.now()}.json`;
  await s3.send(new PutObjectCommand({ Bucket, Key, Body: body, ContentType: 'application/json' }));
  return `${endpoint.replace(/\/$/, '')}/${Bucket}/${Key}`;
}

/**
 * Create the stack, or update it if it exists, and wait. Returns
 * { action: 'create'|'update'|'none', status, seconds, stackId }.
 * opts: { cfn, s3, ec2, endpoint, stackName, templateBody, template, tags, log }
 */
async function deployStack(opts) {
  const { cfn, stackName, templateBody, tags = [], log = console.log } = opts;
  const template = opts.template || JSON.parse(templateBody);
  const t0 = Date.now();
  let existing = await describeStack(cfn, stackName);
  if (existing && existing.StackStatus === 'ROLLBACK_COMPLETE') {
    log(`${stackName} is ROLLBACK_COMPLETE; deleting it before creating it again`);
    await deleteStack({ ...opts, log });
    existing = undefined;
  }
  const tpl = Buffer.byteLength(templateBody) > TEMPLATE_BODY_LIMIT
    ? { TemplateURL: await stageTemplate(opts.s3, opts.endpoint, stackName, templateBody) }
    : { TemplateBody: templateBody };
  const common = {
    StackName: stackName,
    ...tpl,
    Capabilities: ['CAPABILITY_IAM', 'CAPABILITY_NAMED_IAM', 'CAPABILITY_AUTO_EXPAND'],
    Tags: tags,
  };
  const seenEvents = new Set();
  let action;
  let stackId;
  if (existing) {
    (await allEvents(cfn, existing.StackId)).forEach((e) => seenEvents.add(e.EventId));
    action = 'update';
    try {
      stackId = (await cfn.send(new UpdateStackCommand(common))).StackId || existing.StackId;
    } catch (e) {
      if (/No updates are to be performed/.test(e.message)) {
        log(`${stackName}: no changes`);
        return { action: 'none', status: existing.StackStatus, seconds: (Date.now() - t0) / 1000, stackId: existing.StackId };
      }
      throw e;
    }
  } else {
    action = 'create';
    stackId = (await cfn.send(new CreateStackCommand({ ...common, OnFailure: 'ROLLBACK' }))).StackId;
  }
  log(`${action === 'create' ? 'CreateStack' : 'UpdateStack'} ${stackName} (${stackId})`);
  const poll = progressPrinter({ cfn, stackId, template, log, seenEvents });
  const status = await waitForStack(cfn, {
    stackName, stackId, poll, okStatuses: action === 'create' ? ['CREATE_COMPLETE'] : ['UPDATE_COMPLETE'],
  });
  const seconds = (Date.now() - t0) / 1000;
  log(`${stackName}: ${status} in ${seconds.toFixed(2)} s`);
  return { action, status, seconds, stackId };
}

/**
 * EMULATOR-ONLY WORKAROUND (moto 5.2.5), never needed on AWS: moto's CloudFormation delete is a
 * no-op for AWS::EC2::RouteTable, Route, SubnetRouteTableAssociation, VPCEndpoint,
 * InternetGateway and VPCGatewayAttachment. The leftover route table then makes moto's VPC
 * delete fail ("The vpc ... has dependencies and cannot be deleted"), after which moto has
 * dropped the stack but kept its exports. So, before DeleteStack, delete the stack's own VPC
 * endpoints, route tables and internet gateways through the EC2 API.
 */
async function motoPreDelete({ cfn, ec2, stackId, log }) {
  const r = await cfn.send(new DescribeStackResourcesCommand({ StackName: stackId }));
  const of = (type) => (r.StackResources || []).filter((x) => x.ResourceType === type)
    .map((x) => x.PhysicalResourceId).filter(Boolean);
  const vpce = of('AWS::EC2::VPCEndpoint');
  const rtbs = of('AWS::EC2::RouteTable');
  const igws = of('AWS::EC2::InternetGateway');
  if (vpce.length) await ec2.send(new DeleteVpcEndpointsCommand({ VpcEndpointIds: vpce }));
  for (const rtb of rtbs) await ec2.send(new DeleteRouteTableCommand({ RouteTableId: rtb }));
  for (const igw of igws) {
    const d = await ec2.send(new DescribeInternetGatewaysCommand({ InternetGatewayIds: [igw] }));
    for (const a of (d.InternetGateways && d.InternetGateways[0] && d.InternetGateways[0].Attachments) || []) {
      await ec2.send(new DetachInternetGatewayCommand({ InternetGatewayId: igw, VpcId: a.VpcId }));
    }
    await ec2.send(new DeleteInternetGatewayCommand({ InternetGatewayId: igw }));
  }
  log(`  emulator-only workaround (moto): deleted ${vpce.length} VPC endpoint(s), ${rtbs.length} route table(s), ` +
    `${igws.length} internet gateway(s) through EC2 before DeleteStack`);
}

/**
 * DeleteStack (with the moto pre-delete workaround) and wait for DELETE_COMPLETE.
 * Returns { status, seconds }. Never calls DescribeStacks by StackId after the delete.
 */
async function deleteStack({ cfn, ec2, stackName, log = console.log }) {
  const t0 = Date.now();
  const existing = await describeStack(cfn, stackName);
  if (!existing) { log(`${stackName}: does not exist`); return { status: 'NONE', seconds: 0 }; }
  const stackId = existing.StackId;
  await motoPreDelete({ cfn, ec2, stackId, log });
  const seenEvents = new Set((await allEvents(cfn, stackId)).map((e) => e.EventId));
  await cfn.send(new DeleteStackCommand({ StackName: stackId }));
  log(`DeleteStack ${stackName}`);
  const poll = progressPrinter({ cfn, stackId, log, seenEvents });
  const status = await waitForStack(cfn, { stackName, stackId, poll, okStatuses: ['DELETE_COMPLETE'] });
  const seconds = (Date.now() - t0) / 1000;
  log(`${stackName}: ${status} in ${seconds.toFixed(2)} s`);
  return { status, seconds };
}

// ---------------------------------------------------------------------------------------------
// Exports

async function listExports(cfn) {
  const out = {};
  let NextToken;
  do {
    const r = await cfn.send(new ListExportsCommand({ NextToken }));
    for (const e of r.Exports || []) out[e.Name] = e.Value;
    NextToken = r.NextToken;
  } while (NextToken);
  return out;
}

/** The AWS CLI command that reads one export (the guide's query, plus --endpoint-url). */
function exportCommand(name, endpoint) {
  const ep = endpoint ? ` --endpoint-url ${endpoint}` : '';
  return `aws cloudformation list-exports${ep} --query "Exports[?Name=='${name}'].Value" --output text`;
}

/** Table of export name / value / the command that reads it. */
function formatExports(names, exportsMap, endpoint) {
  const w = Math.max(6, ...names.map((n) => n.length));
  const vw = Math.max(5, ...names.map((n) => String(exportsMap[n] ?? 'MISSING').length));
  const lines = [`${'Export'.padEnd(w)}  ${'Value'.padEnd(vw)}  Read it with`,
    `${'-'.repeat(w)}  ${'-'.repeat(vw)}  ${'-'.repeat(12)}`];
  for (const n of names) {
    lines.push(`${n.padEnd(w)}  ${String(exportsMap[n] ?? 'MISSING').padEnd(vw)}  ${exportCommand(n, endpoint)}`);
  }
  return lines.join('\n');
}

module.exports = {
  ROOT, INTEG_DIR, EXPORT_SUFFIXES, exportNames, stackNameFor,
  synth, readStackArtifact, describeStack, deployStack, deleteStack, waitForStack,
  listExports, exportCommand, formatExports,
};
