'use strict';
/** Helpers for the emulator end-to-end tests (not a test file itself). */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const moto = require('../scripts/local/moto');
const cdk = require('../scripts/local/cdk');

const tagsToObject = (tags = []) => Object.fromEntries(tags.map((t) => [t.Key, t.Value]));

/** The one resource of a type in a synthesized template: { id, props }. */
function templateResource(template, type) {
  const hits = Object.entries(template.Resources).filter(([, r]) => r.Type === type);
  if (hits.length !== 1) throw new Error(`expected one ${type} in the template, found ${hits.length}`);
  return { id: hits[0][0], props: hits[0][1].Properties || {} };
}

/**
 * A fresh emulator, bootstrapped, with the sample app's `cdk deploy` / `cdk destroy` (+ moto cleanup) on it:
 * deploy(context) passes each context entry as `-c key=value` (environment, costCenter, or whatever a new
 * check needs), each run into its own cdk.out. The CLI's output shows on failure, or always with E2E_VERBOSE=1.
 */
async function emulatorWithSampleApp() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'chronos-e2e-'));
  const quiet = !process.env.E2E_VERBOSE;
  let n = 0;
  const server = await moto.start({ logFile: path.join(root, 'moto.log') });
  const run = (op) => (context) => op(server.endpoint, { outDir: path.join(root, `cdk.out.${n++}`), quiet, ...context });
  const emu = {
    endpoint: server.endpoint, deploy: run(cdk.deploySample), destroy: run(cdk.destroySample),
    stop: () => server.stop().then(() => process.env.E2E_KEEP_TMP || fs.rmSync(root, { recursive: true, force: true })),
  };
  await cdk.bootstrap(server.endpoint, { quiet }).catch((e) => emu.stop().then(() => { throw e; }));
  return emu;
}

module.exports = { tagsToObject, templateResource, emulatorWithSampleApp };
