#!/usr/bin/env node
'use strict';
/**
 * `node scripts/ci/after-tsconfig.js CMD ...`: runs CMD once jsii (the compile leg beside it) has rewritten
 * tsconfig.json, which it does as it starts (a reader at that instant could see it empty): waits until
 * tsconfig.json is newer than .tools/ci-legs.tsv's start (at most 60 s), then runs CMD through bash.
 */
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const mark = path.resolve(ROOT, process.env.CI_LEGS_FILE || path.join('.tools', 'ci-legs.tsv'));
const since = fs.existsSync(mark) ? fs.readFileSync(mark, 'utf8').split('\n')[0].split('\t')[2] * 1000 : 0;
const mtime = () => { try { return fs.statSync(path.join(ROOT, 'tsconfig.json')).mtimeMs; } catch { return 0; } };
const until = Date.now() + 60_000;
while (since && mtime() <= since && Date.now() < until) spawnSync('sleep', ['0.2']);
const r = spawnSync('bash', ['-c', process.argv.slice(2).join(' ')], { stdio: 'inherit' });
process.exit(r.status ?? 1);
