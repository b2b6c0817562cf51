#!/usr/bin/env node
'use strict';
// The local run loop's power-off command (CHRONOS_POWEROFF_COMMAND, docs/RUNS.md): what `systemctl poweroff`
// does on an instance launched from the training launch template, whose shutdown behaviour is `terminate`.
// Usage: poweroff.js ENDPOINT REGION INSTANCE_ID (the endpoint is the emulator on loopback).
const { EC2Client, TerminateInstancesCommand } = require('@aws-sdk/client-ec2');
const { assertLoopback } = require('./moto');

const [endpoint, region, instanceId] = process.argv.slice(2);
if (!instanceId) {
  console.error('usage: poweroff.js http://localhost:PORT REGION INSTANCE_ID');
  process.exit(2);
}
assertLoopback(endpoint);
const ec2 = new EC2Client({ endpoint, region, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
ec2.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] })).then(
  () => console.log(`poweroff: ${instanceId} terminated (shutdown behaviour: terminate)`),
  (e) => { console.error(`poweroff: ${e.message}`); process.exit(1); },
);
