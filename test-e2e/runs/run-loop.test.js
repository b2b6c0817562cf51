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

test('a spot-interrupted run resumes on its second attempt from the checkpoint saved on SIGTERM, and succeeds', { timeout: 720_000 }, async () => {
  const lines = [];
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chronos-run-loop-'));
  await runLoop({
    workDir,
    log: (line) => lines.push(line),
    inspect: async ({ runId, command, endpoint, booted, launcherOutput, checkpoint, kept }) => {
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
      const mine = booted.filter((b) => b.runId === runId);
      assert.deepEqual(mine.map((b) => b.attempt), [1, 2], lines.join('\n'));
      // The template's user data is gzip-compressed at synthesis (the player gunzips it, as cloud-init does), and the
      // agent learned its bucket from the ChronosBucket tag the launcher set.
      assert.ok(mine.every((b) => b.userDataGzipped), 'the user data is gzip-compressed');
      assert.ok(mine.every((b) => b.bucket === bucket), `ChronosBucket tags: ${mine.map((b) => b.bucket)}`);

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
      const steps = mine.flatMap((b) => fs.readFileSync(path.join(b.home, 'work', 'code', 'steps.txt'), 'utf8').trim().split('\n').map((l) => Number(l.split(' ')[1])));
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
      const reclaimed = `instance ${mine[0].instanceId} reclaimed by EC2 at the spot notice's time`;
      for (let i = 0; i < 120 && !lines.some((l) => l.includes(reclaimed)); i++) await new Promise((r) => setTimeout(r, 1000));
      const agentLog = (b) => fs.readFileSync(path.join(b.home, 'work', 'logs', 'agent.log'), 'utf8');
      assert.match(agentLog(mine[0]), /left for EC2 to reclaim; power-off at /);
      assert.doesNotMatch(agentLog(mine[0]), /powering off/);
      assert.ok(lines.some((l) => l.includes(reclaimed)), lines.join('\n'));
      assert.match(agentLog(mine[1]), /powering off/);
      const instances = (await ec2.send(new DescribeInstancesCommand({ InstanceIds: mine.map((b) => b.instanceId) })))
        .Reservations.flatMap((r) => r.Instances);
      assert.deepEqual(instances.map((i) => i.State.Name), ['terminated', 'terminated']);

      // The run keeper (issue 29), with no user process: the detached launcher exited after attempt 1 launched.
      assert.match(kept.launcherOutput, /detached: follow with chronos-training logs kept-/);
      assert.doesNotMatch(kept.launcherOutput, /attempt 2/);
      // Attempt 1's reclaim: the keeper launched attempt 2.
      assert.equal(kept.events[0].result.action, 'launched', JSON.stringify(kept.events[0]));
      assert.equal(kept.events[0].result.attempt, 2);
      // Attempt 2's reclaim found no capacity: pending, waiting, and a one-time schedule.
      assert.equal(kept.events[1].result.action, 'waiting', JSON.stringify(kept.events[1]));
      assert.match(kept.events[1].result.reason, /^waiting for capacity since \d{4}-/);
      assert.equal(kept.fired.length, 1);
      assert.match(kept.fired[0].expression, /^at\(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\)$/);
      assert.equal(kept.fired[0].result.action, 'launched', JSON.stringify(kept.fired[0]));
      assert.equal(kept.fired[0].result.attempt, 3);
      // Attempt 3 resumed from the checkpoint and succeeded; each attempt's record says who launched it.
      assert.equal(kept.status.state, 'succeeded');
      assert.equal(kept.status.attempt, 3);
      const keptBooted = booted.filter((b) => b.runId === kept.runId);
      assert.deepEqual(keptBooted.map((b) => b.attempt), [1, 2, 3]);
      const keptSteps = keptBooted.map((b) => fs.readFileSync(path.join(b.home, 'work', 'code', 'steps.txt'), 'utf8').trim().split('\n').map((l) => Number(l.split(' ')[1])));
      assert.ok(keptSteps[1][0] > 0 && keptSteps[2][0] > keptSteps[1][0], `attempts 2 and 3 resume: ${JSON.stringify(keptSteps.map((x) => x[0]))}`);
      // The end event, once, routed by a rule to the queue.
      assert.equal(kept.last.result.action, 'ended', JSON.stringify(kept.last));
      assert.equal(kept.ends.length, 1);
      assert.equal(kept.ends[0].source, 'chronos.training');
      assert.equal(kept.ends[0]['detail-type'], 'Chronos Training Run Ended');
      assert.deepEqual({ ...kept.ends[0].detail, durationSeconds: 0, estimatedCostUsd: null, reason: null }, {
        environment: 'dev', runId: kept.runId, name: 'kept', state: 'succeeded', reason: null, attempts: 3,
        durationSeconds: 0, estimatedCostUsd: null, costIsEstimate: true, logsCommand: `chronos-training logs ${kept.runId} --env dev`,
      });
    },
  });
  assert.ok(lines.some((l) => /Legs:/.test(l)));
  // Nothing of the played instances outlives the loop: no agent, no backstop (on EC2, power-off ends them).
  assert.deepEqual(processesUnder(workDir), [], 'processes of the played instances are still running');
});
