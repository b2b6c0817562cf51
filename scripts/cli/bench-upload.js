#!/usr/bin/env node
'use strict';
/**
 * Benchmark (prints figures; not a test): the launcher's content-addressed upload of a generated working directory
 * (default 2,000 files, 500 MiB), first, unchanged and with one file changed, beside `aws s3 sync` of the same directory to the same moto
 * server on loopback. Run the bundle first (npx projen bundle:cli).
 *
 *   node scripts/cli/bench-upload.js [--files 2000] [--mib 500] [--keep]
 *
 * The AWS CLI is whatever `aws` is on PATH (its version is printed); without one, the sync rows are skipped.
 * Both sides talk to the same moto_server (scripts/local/moto.js), whose in-memory S3 is the bottleneck as much as
 * the clients: the figures compare the two clients on one machine, not against real S3.
 */
const { execFileSync, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const moto = require('../local/moto');

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const FILES = arg('--files', 2000);
const MIB = arg('--mib', 500);
const ENV = 'bench';
const BUCKET = 'chronos-training-bench-123456789012-us-east-1';

/** FILES files of random bytes totalling MIB MiB, in 20 directories, sizes varying ±50% around the mean. */
function generate(dir) {
  const total = MIB * 1024 * 1024;
  const weights = Array.from({ length: FILES }, (_, i) => 0.5 + ((i * 7919) % 1000) / 1000);
  const sum = weights.reduce((a, b) => a + b, 0);
  let written = 0;
  weights.forEach((w, i) => {
    const size = i === FILES - 1 ? total - written : Math.floor((total * w) / sum);
    const sub = path.join(dir, `d${String(i % 20).padStart(2, '0')}`);
    fs.mkdirSync(sub, { recursive: true });
    fs.writeFileSync(path.join(sub, `f${String(i).padStart(5, '0')}.bin`), crypto.randomBytes(size));
    written += size;
  });
  return written;
}

function time(label, command, args, env) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(command, args, { env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${label} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  return { seconds, stdout: r.stdout, stderr: r.stderr };
}

async function main() {
  const BIN = require('../local/run-loop').launcherCommand();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'chronos-bench-'));
  const server = await moto.start({ logFile: path.join(tmp, 'moto.log') });
  try {
    const env = {
      ...moto.withoutAws().env,
      AWS_ENDPOINT_URL: server.endpoint, AWS_REGION: 'us-east-1', AWS_DEFAULT_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_EC2_METADATA_DISABLED: 'true',
      // The launcher's hash cache (by size, time and inode) in the benchmark's directory, not the user's.
      CHRONOS_CACHE_DIR: path.join(tmp, 'cache'),
    };
    // A minimal foundation: bucket, template, parameters (through the SDK bundled in the CLI's devDependencies).
    const { EC2Client, CreateVpcCommand, CreateSubnetCommand, CreateLaunchTemplateCommand, DescribeImagesCommand } = require('@aws-sdk/client-ec2');
    const { S3Client, CreateBucketCommand } = require('@aws-sdk/client-s3');
    const { SSMClient, PutParameterCommand } = require('@aws-sdk/client-ssm');
    const config = { endpoint: server.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
    const ec2 = new EC2Client(config);
    const vpc = await ec2.send(new CreateVpcCommand({ CidrBlock: '10.0.0.0/16' }));
    const subnet = await ec2.send(new CreateSubnetCommand({ VpcId: vpc.Vpc.VpcId, CidrBlock: '10.0.0.0/24', AvailabilityZone: 'us-east-1a' }));
    const image = (await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }))).Images[0].ImageId;
    const lt = await ec2.send(new CreateLaunchTemplateCommand({ LaunchTemplateName: `ChronosTrainingLaunchTemplate-${ENV}`, LaunchTemplateData: { ImageId: image } }));
    await new S3Client({ ...config, forcePathStyle: true }).send(new CreateBucketCommand({ Bucket: BUCKET }));
    const ssm = new SSMClient(config);
    const params = { S3BucketName: BUCKET, LaunchTemplateId: lt.LaunchTemplate.LaunchTemplateId, PublicSubnetIds: subnet.Subnet.SubnetId, AvailabilityZones: 'us-east-1a' };
    for (const [k, v] of Object.entries(params)) await ssm.send(new PutParameterCommand({ Name: `/chronos-training/${ENV}/${k}`, Value: v, Type: 'String' }));

    const dir = path.join(tmp, 'work');
    const t0 = Date.now();
    const bytes = generate(dir);
    console.log(`working directory: ${FILES} files, ${(bytes / 1024 / 1024).toFixed(0)} MiB (generated in ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    console.log(`moto ${server.endpoint}; node ${process.version}; ${os.cpus().length} CPUs`);
    const rows = [];
    const launcher = (label) => {
      const r = time(label, BIN, ['run', '--env', ENV, '--dir', dir, '--instance-types', 't3.micro', '--detach', '--', 'true'], env);
      const line = r.stderr.split('\n').find(l => l.includes('[chronos] code:')) ?? '';
      rows.push([label, r.seconds, line.replace(/^\[chronos\] code: /, '').replace(/, manifest \S+/, '')]);
    };
    launcher('chronos-training run --detach, first (whole command)');
    launcher('chronos-training run --detach, unchanged (whole command)');
    fs.appendFileSync(path.join(dir, 'd00', 'f00000.bin'), 'changed');
    launcher('chronos-training run --detach, one file changed (whole command)');
    const awsVersion = spawnSync('aws', ['--version'], { encoding: 'utf8' });
    if (awsVersion.status === 0) {
      const version = (awsVersion.stdout || awsVersion.stderr).trim().split(' ')[0];
      const sync = (label) => {
        const r = time(label, 'aws', ['s3', 'sync', dir, `s3://${BUCKET}/sync/`, '--only-show-errors', '--endpoint-url', server.endpoint], env);
        rows.push([`${label} (${version})`, r.seconds, '']);
      };
      sync('aws s3 sync, first');
      sync('aws s3 sync, one file changed');
      sync('aws s3 sync, unchanged');
    } else {
      console.log('no aws on PATH: the aws s3 sync rows are skipped');
    }
    const width = Math.max(...rows.map(r => r[0].length));
    for (const [label, seconds, detail] of rows) console.log(`${label.padEnd(width)}  ${seconds.toFixed(1).padStart(6)} s  ${detail}`);
  } finally {
    await server.stop();
    if (!process.argv.includes('--keep')) fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`bench-upload: ${e.message}`);
  process.exit(1);
});
