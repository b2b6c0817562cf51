'use strict';
/**
 * AWS SDK v3 clients for a local AWS API emulator (moto server) on loopback.
 *
 * Every client gets an explicit loopback endpoint, dummy credentials and a fixed region, so
 * nothing here can reach a real AWS account: `clients()` refuses any endpoint whose host is not
 * localhost / 127.0.0.0/8 / ::1.
 *
 * Use "http://localhost:<port>", not 127.0.0.1: moto recognises path-style S3 template URLs
 * only when the host is "localhost".
 */
const { CloudFormationClient } = require('@aws-sdk/client-cloudformation');
const { S3Client } = require('@aws-sdk/client-s3');
const { EC2Client } = require('@aws-sdk/client-ec2');
const { IAMClient } = require('@aws-sdk/client-iam');

const REGION = 'us-east-1';
/** moto's default account: what `Ref: AWS::AccountId` resolves to on the emulator. */
const EMULATOR_ACCOUNT = '123456789012';

/** True when `endpoint` is an http(s) URL whose host is a loopback address. */
function isLoopback(endpoint) {
  let url;
  try { url = new URL(endpoint); } catch { return false; }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function assertLoopback(endpoint) {
  if (!endpoint || !isLoopback(endpoint)) {
    throw new Error(`refusing to use endpoint ${JSON.stringify(endpoint)}: only a local emulator on loopback ` +
      '(http://localhost:<port>) is allowed here; to deploy to an AWS account use `cd integ && npx cdk deploy`');
  }
  return endpoint;
}

/**
 * Environment for child processes (e.g. the AWS CLI) that must talk to the emulator only:
 * endpoint, dummy credentials, fixed region, no instance metadata lookups, no profile.
 */
function emulatorEnv(endpoint, base = process.env) {
  assertLoopback(endpoint);
  const env = withoutAwsEnv(base);
  return {
    ...env,
    AWS_ENDPOINT_URL: endpoint,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_SESSION_TOKEN: 'testing',
    AWS_REGION: REGION,
    AWS_DEFAULT_REGION: REGION,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
  };
}

/**
 * A copy of `base` with every AWS_* variable removed and the shared config/credentials files
 * pointed at /dev/null: a process started with it finds no AWS credentials at all (used for
 * `cdk synth`, so the CDK CLI never looks up an account).
 */
function withoutAwsEnv(base = process.env) {
  const env = Object.fromEntries(Object.entries(base).filter(([k]) => !k.startsWith('AWS_')));
  env.AWS_CONFIG_FILE = '/dev/null';
  env.AWS_SHARED_CREDENTIALS_FILE = '/dev/null';
  env.AWS_EC2_METADATA_DISABLED = 'true';
  return env;
}

/** SDK v3 clients bound to a loopback emulator endpoint. */
function clients(endpoint) {
  assertLoopback(endpoint);
  const cfg = {
    region: REGION,
    endpoint,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    maxAttempts: 2,
  };
  return {
    endpoint,
    cfn: new CloudFormationClient(cfg),
    // Path-style: "<bucket>.localhost" does not resolve everywhere.
    s3: new S3Client({ ...cfg, forcePathStyle: true }),
    ec2: new EC2Client(cfg),
    iam: new IAMClient(cfg),
  };
}

module.exports = { REGION, EMULATOR_ACCOUNT, isLoopback, assertLoopback, emulatorEnv, withoutAwsEnv, clients };
