#!/usr/bin/env node
'use strict';
/**
 * A fresh clone's first `./scripts/dev npm run deploy:local` installs only what that command runs: the packages
 * below and everything they need, at exactly the versions and places package-lock.json gives them (its subset,
 * installed with `npm ci` in a scratch directory and moved into node_modules/). About a fifth of the lock's
 * packages: no jsii toolchain, eslint, jest or integ-runner.
 *
 * node_modules/.deploy-only marks such an install: scripts/dev replaces it with the whole `npm ci` before any
 * other command.
 *
 *   node scripts/local/deploy-deps.js           install the subset into node_modules/ (fails if node_modules/ exists)
 *   node scripts/local/deploy-deps.js --list    print the subset's lock paths, one a line, and install nothing
 */
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const MARKER = '.deploy-only';
/** What deploy:local runs: projen (the task), the CDK CLI on the sample app (ts-node), the SDK clients of
 * scripts/local/ (cdk.js; run-loop.js reads the bucket with client-s3, which shares most of its packages with
 * client-ec2), and what integ/app.ts and src/ import. */
const NEEDED = ['projen', 'aws-cdk', 'aws-cdk-lib', 'constructs', 'ts-node', 'typescript',
  '@aws-sdk/client-cloudformation', '@aws-sdk/client-ec2', '@aws-sdk/client-s3', '@aws-cdk/integ-tests-alpha'];

/** The lock path Node.js resolves `name` to from the package at lock path `from` ('' is the project). */
function resolveIn(packages, from, name) {
  for (let at = from; ; at = at.includes('/node_modules/') ? at.slice(0, at.lastIndexOf('/node_modules/')) : '') {
    const candidate = `${at ? `${at}/` : ''}node_modules/${name}`;
    if (packages[candidate]) return candidate;
    if (!at) return undefined;
  }
}

/** The closure of `needed` in a v2/v3 package-lock: the lock paths of every package they load. */
function closure(lock, needed) {
  const packages = lock.packages;
  const out = new Set();
  const visit = (from, name, optional) => {
    const at = resolveIn(packages, from, name);
    if (!at) {
      if (optional) return;
      throw new Error(`deploy-deps: ${name} (needed by ${from || 'the project'}) is not in package-lock.json`);
    }
    if (out.has(at)) return;
    out.add(at);
    const p = packages[at];
    const peerMeta = p.peerDependenciesMeta ?? {};
    for (const dep of Object.keys(p.dependencies ?? {})) visit(at, dep, false);
    for (const dep of Object.keys(p.optionalDependencies ?? {})) visit(at, dep, true);
    for (const dep of Object.keys(p.peerDependencies ?? {})) visit(at, dep, Boolean(peerMeta[dep]?.optional));
  };
  const project = packages[''];
  for (const name of needed) {
    if (!(project.devDependencies ?? {})[name] && !(project.dependencies ?? {})[name]) {
      throw new Error(`deploy-deps: ${name} is not a dependency of the project`);
    }
    visit('', name, false);
  }
  return out;
}

/** A package.json and package-lock.json that `npm ci` installs as exactly that subset of the lock. */
function subsetLock(lock, needed) {
  const paths = closure(lock, needed);
  const project = lock.packages[''];
  const all = { ...(project.dependencies ?? {}), ...(project.devDependencies ?? {}) };
  const devDependencies = Object.fromEntries(needed.map((n) => [n, all[n]]));
  const manifest = { name: lock.name, version: lock.version, private: true, devDependencies };
  const packages = { '': { name: lock.name, version: lock.version, devDependencies } };
  for (const p of [...paths].sort()) packages[p] = lock.packages[p];
  return { manifest, lock: { name: lock.name, version: lock.version, lockfileVersion: lock.lockfileVersion, requires: true, packages } };
}

function main() {
  const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'));
  const subset = subsetLock(lock, NEEDED);
  if (process.argv.includes('--list')) {
    console.log(Object.keys(subset.lock.packages).filter(Boolean).join('\n'));
    return;
  }
  const target = path.join(ROOT, 'node_modules');
  if (fs.existsSync(target)) throw new Error(`deploy-deps: ${target} exists: run \`npm ci\` instead`);
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'chronos-deploy-deps-'));
  try {
    fs.writeFileSync(path.join(scratch, 'package.json'), `${JSON.stringify(subset.manifest, null, 2)}\n`);
    fs.writeFileSync(path.join(scratch, 'package-lock.json'), `${JSON.stringify(subset.lock, null, 2)}\n`);
    const count = Object.keys(subset.lock.packages).length - 1;
    const all = Object.keys(lock.packages).length - 1;
    console.log(`deploy-deps: npm ci of the ${count} of package-lock.json's ${all} packages that deploy:local runs`);
    execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: scratch, stdio: 'inherit' });
    fs.writeFileSync(path.join(scratch, 'node_modules', MARKER),
      'Installed by scripts/local/deploy-deps.js for deploy:local only; scripts/dev runs `npm ci` before anything else.\n');
    // The .bin links are relative (../aws-cdk/bin/cdk): they survive the move.
    fs.renameSync(path.join(scratch, 'node_modules'), target);
  } catch (e) {
    if (e.code === 'EXDEV') {
      fs.cpSync(path.join(scratch, 'node_modules'), target, { recursive: true, verbatimSymlinks: true });
    } else {
      throw e;
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

module.exports = { closure, subsetLock, resolveIn, NEEDED, MARKER };

if (require.main === module) {
  try {
    main();
  } catch (e) {
    console.error(e.message);
    process.exit(1);
  }
}
