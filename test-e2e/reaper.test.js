'use strict';
/**
 * The run reaper's bundled handler (assets/guardrails/training-run-reaper.lambda/index.js, what the Lambda
 * function runs) against the EC2 API of a local emulator (moto on 127.0.0.1): instances launched
 * with tags, the handler's filters and lifetime rules applied by the emulator, terminations seen
 * through DescribeInstances. Invoking the deployed function itself would need Docker; this calls
 * the same bundle in-process with the emulator's EC2 client.
 *
 *   node --test --test-reporter=tap test-e2e/reaper.test.js   (after `npx projen bundle`)
 */
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const fs = require('node:fs');
const os = require('node:os');

const moto = require('../scripts/local/moto');
const { clients } = require('../scripts/local/cdk');
const ec2c = require('@aws-sdk/client-ec2');

const HOUR = 3600 * 1000;
const BUNDLE = path.join(__dirname, '..', 'assets', 'guardrails', 'training-run-reaper.lambda', 'index.js');
const ENV = {
  FILTER_TAGS: JSON.stringify({ Project: 'Chronos-Training', Environment: 'dev' }),
  LIFETIME_TAG_KEY: 'MaxLifetimeHours',
  DEFAULT_LIFETIME_SECONDS: String(6 * 3600),
  DRY_RUN: 'false',
};

let server;
let ec2;
let handler;
let imageId;

before(async () => {
  handler = require(BUNDLE);
  server = await moto.start({ logFile: path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'chronos-reaper-e2e-')), 'moto.log') });
  ec2 = clients(server.endpoint).ec2;
  const images = await ec2.send(new ec2c.DescribeImagesCommand({}));
  imageId = images.Images[0].ImageId;
});

after(async () => {
  // Always stop the emulator, whatever the outcome of before() and the test.
  if (server) await server.stop();
});

async function launch(name, tags) {
  const r = await ec2.send(new ec2c.RunInstancesCommand({
    ImageId: imageId, InstanceType: 't3.micro', MinCount: 1, MaxCount: 1,
    TagSpecifications: [{ ResourceType: 'instance', Tags: Object.entries({ Name: name, ...tags }).map(([Key, Value]) => ({ Key, Value })) }],
  }));
  return r.Instances[0].InstanceId;
}

async function states(ids) {
  const r = await ec2.send(new ec2c.DescribeInstancesCommand({ InstanceIds: ids }));
  const all = r.Reservations.flatMap((x) => x.Instances);
  return Object.fromEntries(all.map((i) => [i.InstanceId, i.State.Name]));
}

test('terminates expired dev instances only, by tag or default lifetime, and honours dry run', async () => {
  const dev = { Project: 'Chronos-Training', Environment: 'dev' };
  const ids = {
    tagged4h: await launch('tagged4h', { ...dev, MaxLifetimeHours: '4' }),
    tagged8h: await launch('tagged8h', { ...dev, MaxLifetimeHours: '8' }),
    untagged: await launch('untagged', dev),
    malformed: await launch('malformed', { ...dev, MaxLifetimeHours: 'four' }),
    stopped: await launch('stopped', { ...dev, MaxLifetimeHours: '4' }),
    prod: await launch('prod', { Project: 'Chronos-Training', Environment: 'prod', MaxLifetimeHours: '1' }),
    other: await launch('other', { Project: 'Other', Environment: 'dev', MaxLifetimeHours: '1' }),
  };
  await ec2.send(new ec2c.StopInstancesCommand({ InstanceIds: [ids.stopped] }));
  const config = handler.configFromEnvironment(ENV);

  // 5 hours on: past the 4-hour tags, before the 6-hour default (the ceiling) and the 8-hour tag.
  const dry = await handler.reap(ec2, { ...config, dryRun: true }, new Date(Date.now() + 5 * HOUR));
  assert.deepEqual(dry.terminated.sort(), [ids.tagged4h, ids.stopped].sort());
  assert.ok(Object.values(await states(Object.values(ids))).every((s) => s === 'running' || s === 'stopped'),
    'a dry run terminates nothing');

  const first = await handler.reap(ec2, config, new Date(Date.now() + 5 * HOUR));
  assert.equal(first.examined, 5, 'only the five dev instances of the project are examined');
  assert.deepEqual(first.terminated.sort(), [ids.tagged4h, ids.stopped].sort());

  // 7 hours on: the untagged and malformed ones are past the default 6 hours too, and so is the 8-hour tag, which
  // the reaper never trusts above its ceiling (the default: the foundation's lifetime plus the margin; issue 27).
  const second = await handler.reap(ec2, config, new Date(Date.now() + 7 * HOUR));
  assert.deepEqual(second.terminated.sort(), [ids.untagged, ids.malformed, ids.tagged8h].sort());

  const s = await states(Object.values(ids));
  for (const key of ['tagged4h', 'stopped', 'untagged', 'malformed', 'tagged8h']) {
    assert.ok(['shutting-down', 'terminated'].includes(s[ids[key]]), `${key} is ${s[ids[key]]}`);
  }
  for (const key of ['prod', 'other']) {
    assert.equal(s[ids[key]], 'running', `${key} must be left running`);
  }
});

// TerminateInstances fails the whole request when one instance in it cannot be terminated ("TerminateInstances",
// Amazon EC2 API Reference, https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_TerminateInstances.html);
// moto refuses an instance with termination protection. This runs the bundle's own entry point, handler(),
// with its environment and its module-level EC2 client pointed at the emulator.
test('a protected instance does not shield the others: they are terminated, it is reported, the invocation fails', async () => {
  const tags = { Project: 'Chronos-Training', Environment: 'protect', MaxLifetimeHours: '0.0001' }; // 0.36 s
  const ids = {
    first: await launch('first', tags),
    protected: await launch('protected', tags),
    second: await launch('second', tags),
  };
  // Termination protection through ModifyInstanceAttribute: moto 5.2.5 ignores RunInstances' DisableApiTermination.
  await ec2.send(new ec2c.ModifyInstanceAttributeCommand({ InstanceId: ids.protected, DisableApiTermination: { Value: true } }));
  await new Promise((r) => setTimeout(r, 1500)); // all three past their lifetime

  const env = {
    ...ENV,
    FILTER_TAGS: JSON.stringify({ Project: 'Chronos-Training', Environment: 'protect' }),
    AWS_ENDPOINT_URL: server.endpoint, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_EC2_METADATA_DISABLED: 'true',
  };
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  const lines = [];
  const log = console.log;
  let failure;
  try {
    Object.assign(process.env, env);
    delete require.cache[require.resolve(BUNDLE)];
    const fresh = require(BUNDLE); // its EC2 client is created at load, from this environment
    console.log = (line) => lines.push(line);
    await fresh.handler().then(() => assert.fail('the invocation must fail'), (e) => { failure = e; });
  } finally {
    console.log = log;
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k]; else process.env[k] = v;
    }
  }

  assert.match(failure.message, new RegExp(`TerminateInstances failed for 1 expired instance\\(s\\).*${ids.protected}`));
  const logged = lines.map((l) => JSON.parse(l));
  assert.ok(logged.some((l) => l.level === 'ERROR' && l.instanceId === ids.protected && l.reason),
    `the protected instance is logged with its reason: ${lines.join('\n')}`);
  const s = await states(Object.values(ids));
  for (const key of ['first', 'second']) {
    assert.ok(['shutting-down', 'terminated'].includes(s[ids[key]]), `${key} is ${s[ids[key]]}`);
  }
  assert.equal(s[ids.protected], 'running');
});
