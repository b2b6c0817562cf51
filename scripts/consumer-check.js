#!/usr/bin/env node
// Installs the packed tarball into a new, separate CDK app that has only
// aws-cdk-lib and constructs, as a new user would, and synthesizes
// ChronosTrainingStack for dev, stage and prod there.
// Usage: node scripts/consumer-check.js   (after `npx projen package:js`)
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.resolve(__dirname, '..');
const pkg = require(path.join(root, 'package.json'));
const tarball = fs.readdirSync(path.join(root, 'dist', 'js')).find(f => f.endsWith('.tgz'));
if (!tarball) throw new Error('no tarball in dist/js: run `npx projen package:js` first');

const app = fs.mkdtempSync(path.join(os.tmpdir(), 'chronos-consumer-'));
const npm = (...args) => execFileSync('npm', args, { cwd: app, stdio: ['ignore', 'ignore', 'inherit'] });
npm('init', '-y');
npm('install', '--no-audit', '--no-fund',
  `aws-cdk-lib@${pkg.devDependencies['aws-cdk-lib']}`, `constructs@${pkg.devDependencies.constructs}`,
  path.join(root, 'dist', 'js', tarball));

fs.writeFileSync(path.join(app, 'app.js'), `
const { App } = require('aws-cdk-lib');
const { ChronosTrainingStack } = require('@chronos/training-infra');
const app = new App({ outdir: 'cdk.out' });
for (const environment of ['dev', 'stage', 'prod']) {
  new ChronosTrainingStack(app, ChronosTrainingStack.stackNameFor(environment), { environment });
}
app.synth();
`);
execFileSync(process.execPath, ['app.js'], { cwd: app, stdio: 'inherit' });

let passed = 0;
let failed = 0;
for (const environment of ['dev', 'stage', 'prod']) {
  const file = path.join(app, 'cdk.out', `ChronosTraining-${environment}-Stack.template.json`);
  const template = JSON.parse(fs.readFileSync(file, 'utf8'));
  const exports = Object.values(template.Outputs).map(o => o.Export.Name).sort();
  const expected = ['CostCenter', 'Environment', 'IAMRoleName', 'InstanceProfileName', 'PublicSubnetId', 'S3BucketName',
    'SecurityGroupId', 'VPCId'].map(n => `ChronosTraining-${environment}-${n}`);
  const ok = JSON.stringify(exports) === JSON.stringify(expected)
    && template.Description === `Chronos Training Infrastructure (${environment}) - VPC, S3, IAM, Security Groups`;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ChronosTraining-${environment}-Stack: ${Object.keys(template.Resources).length} resources, ${exports.length} exports`);
  ok ? passed++ : failed++;
}
fs.rmSync(app, { recursive: true, force: true });
console.log(`consumer: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
