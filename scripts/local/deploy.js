#!/usr/bin/env node
'use strict';
// `npm run deploy:local`: the sample app (integ/) deployed with the CDK CLI to moto on 127.0.0.1, as a user
// deploys it to AWS (`cdk bootstrap` if needed, `cdk deploy`), then its exports read back with ListExports.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');
const moto = require('./moto');
const cdk = require('./cdk');

const USAGE = `Usage: npm run deploy:local -- [--environment ENV] [--cost-center CC] [--keep-running] [--destroy] | --stop
  --environment ENV  deploy ChronosTraining-ENV-Stack (default: dev)
  --cost-center CC   the cost center tag and export (default: the sample app's, train)
  --keep-running     leave the emulator running; the next run deploys to it again (an update)
  --destroy          cdk destroy the stack (on a fresh emulator: after deploying it), then clean up after moto
  --stop             stop the emulator left running by --keep-running`;

async function main() {
  // The sample app runs under ts-node: transpile only (seconds faster); CI's typecheck leg type-checks it.
  process.env.TS_NODE_TRANSPILE_ONLY ??= 'true';
  const bool = { type: 'boolean' };
  const { values: o } = parseArgs({
    options: { environment: { type: 'string', default: 'dev' }, 'cost-center': { type: 'string' }, 'keep-running': bool, destroy: bool, stop: bool, help: bool },
  });
  if (o.help) return console.log(USAGE);
  if (o.stop) {
    const s = await moto.stopKept();
    return console.log(s ? `stopped the emulator (pid ${s.pid}, ${s.endpoint})` : 'no emulator left running by --keep-running');
  }
  const t0 = Date.now();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'chronos-deploy-local-'));
  const ctx = { environment: o.environment, costCenter: o['cost-center'], outDir: path.join(tmp, 'cdk.out') };
  let server = await moto.kept();
  const reused = Boolean(server);
  const keep = o['keep-running'] || reused;
  const done = async () => {
    if (server && !keep) await server.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => done().finally(() => process.exit(130)));
  try {
    server = server || await moto.start({ logFile: path.join(keep ? path.join(moto.ROOT, '.tools') : tmp, 'moto-server.log'), detached: keep });
    if (keep && !reused) server.keep();
    const { endpoint } = server;
    console.log(`emulator: moto pid ${server.pid}, ${endpoint}${reused ? ' (kept by --keep-running)' : ''}`);
    const { removed } = cdk.cliEnv(endpoint);
    if (removed.length) console.error(`not passed to the CDK CLI (it gets only the emulator's endpoint and dummy credentials): ${removed.join(', ')}`);
    const split = reused ? [] : [`venv ${server.venvSeconds.toFixed(1)} s`, `moto start ${server.startSeconds.toFixed(1)} s`];
    const bootstrapped = await cdk.bootstrap(endpoint);
    split.push(bootstrapped ? `bootstrap ${bootstrapped.toFixed(1)} s` : 'bootstrap: there already');
    if (!reused || !o.destroy) {
      const d = await cdk.deploySample(endpoint, ctx);
      const t = cdk.cliTimes(d.output);
      split.push(`synth ${t.synthesis} s`, `deploy ${t.deployment} s (the CLI's figures)`);
      const names = cdk.exportNamesOf(d.template);
      const exp = await cdk.listExports(endpoint);
      console.log(`\nExports (ListExports on the emulator):\n${names.map((n) => `  ${n.padEnd(42)} ${exp[n] ?? 'MISSING'}`).join('\n')}`);
      if (names.some((n) => !(n in exp))) throw new Error('exports missing');
      if (/updating stack/.test(d.output)) {
        console.log('note: moto models an update only partly: ListExports keeps the values of the first deploy, and the VPC and'
          + ' subnet drop out of the stack; the Outputs the CLI printed are current. For a fresh picture: --stop, deploy again.');
      }
    }
    if (o.destroy) {
      const d = await cdk.destroySample(endpoint, ctx);
      const exp = await cdk.listExports(endpoint);
      const left = cdk.exportNamesOf(d.template).filter((n) => n in exp);
      if (left.length) throw new Error(`still listed after cdk destroy: ${left.join(', ')}`);
      split.push(`destroy ${d.seconds.toFixed(1)} s`);
      console.log(`\ndestroyed ${d.stackName}${d.leftover.length ? `; emulator workaround removed leftover ${d.leftover.join(', ')}` : ''}`);
    }
    console.log(`\ntimes: ${split.join(', ')}; total ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    if (!keep) return console.log('emulator stopped: what was deployed to it is gone (--keep-running keeps it)');
    const aws = `env -u AWS_PROFILE -u AWS_SESSION_TOKEN AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=${cdk.REGION}`
      + ` aws cloudformation list-exports --endpoint-url ${endpoint}`;
    console.log(`\nThe emulator keeps running (pid ${server.pid}, log ${path.relative(process.cwd(), server.logFile)}).`
      + ' While it runs, read the exports with the AWS CLI (pip install awscli):'
      + `\n  ${aws} --output table\n  ${aws} --query "Exports[?Name=='ChronosTraining-${o.environment}-VPCId'].Value" --output text`
      + '\nStop it with: ./scripts/dev npm run deploy:local -- --stop');
  } finally {
    await done();
  }
}

main().catch((e) => {
  console.error(`\ndeploy:local FAILED: ${e.message}`);
  process.exitCode = 1;
});
