'use strict';
/** Helpers for the emulator end-to-end tests (not a test file itself). */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const cfnlib = require('../scripts/local/cfn');

function tmpRoot(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

const tagsToObject = (tags = []) => Object.fromEntries(tags.map((t) => [t.Key, t.Value]));

/** Synthesize the sample app for each { key, environment, costCenter } concurrently; key -> dir. */
async function synthAll(outRoot, specs) {
  const dirs = {};
  await Promise.all(specs.map(async ({ key, environment, costCenter }) => {
    const outDir = path.join(outRoot, key);
    await cfnlib.synth({ environment, costCenter, outDir });
    dirs[key] = outDir;
  }));
  return dirs;
}

/** Find the one resource of a type in a synthesized template: { id, props }. */
function templateResource(template, type) {
  const hits = Object.entries(template.Resources).filter(([, r]) => r.Type === type);
  if (hits.length !== 1) throw new Error(`expected one ${type} in the template, found ${hits.length}`);
  return { id: hits[0][0], props: hits[0][1].Properties || {} };
}

const secs = (ms) => `${(ms / 1000).toFixed(2)} s`;

module.exports = { tmpRoot, tagsToObject, synthAll, templateResource, secs };
