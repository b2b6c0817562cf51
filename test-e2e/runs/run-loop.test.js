'use strict';
/**
 * The whole run loop, offline (scripts/local/run-loop.js, `npm run run:local`): the foundation deployed to the
 * emulator, `chronos-training run` of a toy training script, each instance played from its real user data against
 * amazon-ec2-metadata-mock, a spot interruption notice on attempt 1, the resume on attempt 2.
 */
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { runLoop, STEPS, REGION } = require('../../scripts/local/run-loop');
const { processesUnder } = require('../../scripts/local/instance-player');

const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };

test('a spot-interrupted run resumes on its second attempt from the checkpoint saved on SIGTERM, and succeeds', { timeout: 240_000 }, async () => {
  const lines = [];
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chronos-run-loop-'));
  await runLoop({
    workDir,
    log: (line) => lines.push(line),
    inspect: async ({ runId, command, endpoint, booted, launcherOutput, checkpoint }) => {
      // The launcher is the Python run package's console script, installed from its wheel into a venv (issue 28), not
      // a Node.js bundle: for a console_scripts entry point the installer "will create a command-line wrapper"
      // (Python Packaging User Guide, "Entry points specification"), which runs the venv's interpreter.
      assert.equal(path.basename(command), 'chronos-training');
      assert.match(fs.readFileSync(command, 'utf8').split('\n')[0], /^#!\/.*\/bin\/python[\d.]*$/);
      const { S3Client, ListBucketsCommand, GetObjectCommand, ListObjectsV2Command } = require('@aws-sdk/client-s3');
      const { EC2Client, DescribeInstancesCommand } = require('@aws-sdk/client-ec2');
      const s3 = new S3Client({ endpoint, region: REGION, credentials, forcePathStyle: true });
      const ec2 = new EC2Client({ endpoint, region: REGION, credentials });
      const bucket = (await s3.send(new ListBucketsCommand({}))).Buckets.map((b) => b.Name).find((n) => n.startsWith('chronos-training-dev-'));
      const json = async (Key) => JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key }))).Body.transformToString());

      // Two instances, in order: attempt 1 (given the notice) and attempt 2, each booted from its user data.
      assert.deepEqual(booted.map((b) => b.attempt), [1, 2], lines.join('\n'));
      assert.ok(booted.every((b) => b.runId === runId));
      // The template's user data is gzip-compressed at synthesis (the player gunzips it, as cloud-init does), and the
      // agent learned its bucket from the ChronosBucket tag the launcher set.
      assert.ok(booted.every((b) => b.userDataGzipped), 'the user data is gzip-compressed');
      assert.ok(booted.every((b) => b.bucket === bucket), `ChronosBucket tags: ${booted.map((b) => b.bucket)}`);

      // The run's status and each attempt's.
      const status = await json(`dev/runs/${runId}/status.json`);
      assert.equal(status.state, 'succeeded');
      assert.equal(status.attempt, 2);
      assert.equal(status.exitCode, 0);
      const first = await json(`dev/runs/${runId}/attempts/001.json`);
      assert.equal(first.state, 'interrupted');
      assert.match(first.reason, /spot interruption notice/);
      assert.equal(first.lifecycle, 'spot');
      assert.ok(first.lastCheckpoint, 'attempt 1 left a whole checkpoint');

      // The checkpoint attempt 1 saved in its SIGTERM handler is the one attempt 2 restored: no step lost, none run twice.
      const saved = Number(/saved on SIGTERM at step (\d+)/.exec(launcherOutput)?.[1]);
      assert.ok(saved > 0 && saved < STEPS, `attempt 1 saved mid-run (step ${saved})\n${launcherOutput}`);
      assert.match(launcherOutput, new RegExp(`resumed=1 from step ${saved}, attempt 2`));
      const steps = booted.flatMap((b) => fs.readFileSync(path.join(b.home, 'work', 'code', 'steps.txt'), 'utf8').trim().split('\n').map((l) => Number(l.split(' ')[1])));
      assert.deepEqual(steps, Array.from({ length: STEPS }, (_, i) => i + 1), 'each step ran exactly once, in order, across the attempts');

      // The checkpoint printed from the bucket is the run's last whole one, the one the status names.
      assert.equal(checkpoint.manifestKey, status.lastCheckpoint.manifestKey);
      assert.ok(checkpoint.files.length > 0 && checkpoint.files.every((f) => f.content.length === f.size), JSON.stringify(checkpoint));
      assert.ok(lines.includes(`  ${checkpoint.manifestKey} (sequence ${checkpoint.sequence}, ${checkpoint.createdAt})`), lines.join('\n'));

      // Every log line of both attempts is in the bucket, attempt by attempt.
      const logKeys = (await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `dev/logs/${runId}/` }))).Contents.map((o) => o.Key);
      assert.ok(logKeys.some((k) => k.startsWith(`dev/logs/${runId}/001/stdout/`)));
      assert.ok(logKeys.some((k) => k.startsWith(`dev/logs/${runId}/002/stdout/`)));

      // Attempt 1 was left for EC2 to reclaim at the notice's time (EC2 does not bill a Spot Instance it interrupts in
      // its first hour, but one you terminate yourself: EC2 User Guide, "Billing for interrupted Spot Instances"); the
      // player reclaimed it as EC2 would. Attempt 2 powered itself off: the shutdown behaviour terminated it.
      const reclaimed = `instance ${booted[0].instanceId} reclaimed by EC2 at the spot notice's time`;
      for (let i = 0; i < 120 && !lines.some((l) => l.includes(reclaimed)); i++) await new Promise((r) => setTimeout(r, 1000));
      const agentLog = (b) => fs.readFileSync(path.join(b.home, 'work', 'logs', 'agent.log'), 'utf8');
      assert.match(agentLog(booted[0]), /left for EC2 to reclaim; power-off at /);
      assert.doesNotMatch(agentLog(booted[0]), /powering off/);
      assert.ok(lines.some((l) => l.includes(reclaimed)), lines.join('\n'));
      assert.match(agentLog(booted[1]), /powering off/);
      const instances = (await ec2.send(new DescribeInstancesCommand({ InstanceIds: booted.map((b) => b.instanceId) })))
        .Reservations.flatMap((r) => r.Instances);
      assert.deepEqual(instances.map((i) => i.State.Name), ['terminated', 'terminated']);
    },
  });
  assert.ok(lines.some((l) => /Legs:/.test(l)));
  // Nothing of the played instances outlives the loop: no agent, no backstop (on EC2, power-off ends them).
  assert.deepEqual(processesUnder(workDir), [], 'processes of the played instances are still running');
});
