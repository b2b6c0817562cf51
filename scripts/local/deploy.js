#!/usr/bin/env node
'use strict';
/**
 * `npm run deploy:local`: deploy the sample app's ChronosTraining-<env>-Stack to a local AWS API
 * emulator (moto server on 127.0.0.1, from the pinned venv .venv-moto/) and print its exports.
 *
 *   node scripts/local/deploy.js [--environment dev] [--cost-center train] [--keep-running]
 *   node scripts/local/deploy.js --stop          stop a server left running by --keep-running
 *
 * Steps: create the moto venv if missing (scripts/local/setup-moto.sh), start moto on a free
 * loopback port, `cdk synth -c synthesizer=none` of integ/ (no bootstrap needed), CreateStack
 * (or UpdateStack when re-deploying to a kept server) with progress, the eight exports with the
 * command that reads each, wall times, then stop moto (unless --keep-running).
 *
 * It only ever talks to the emulator it started (or kept) on loopback. To deploy to an AWS
 * account, use the CDK CLI: `cd integ && npx cdk deploy -c environment=dev`.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { clients, assertLoopback } = require('./aws-env');
const moto = require('./moto-server');
const cfnlib = require('./cfn');

const USAGE = `Usage: node scripts/local/deploy.js [--environment ENV] [--cost-center CC] [--keep-running]
       node scripts/local/deploy.js --stop

  --environment ENV   stack ChronosTraining-ENV-Stack (default: dev)
  --cost-center CC    cost center tag/export (default: the sample app's, train)
  --keep-running      leave the emulator running afterwards (pidfile in .tools/); a later run
                      deploys to it again (UpdateStack)
  --stop              stop the emulator left running by --keep-running`;

function rel(p) { return path.relative(process.cwd(), p) || '.'; }

async function stop() {
  const info = await moto.stopFromPidfile();
  console.log(info ? `stopped moto (pid ${info.pid}, ${info.endpoint})` : 'no emulator left running by --keep-running');
}

async function main() {
  const { values } = parseArgs({
    options: {
      environment: { type: 'string', default: 'dev' },
      'cost-center': { type: 'string' },
      'keep-running': { type: 'boolean', default: false },
      stop: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) { console.log(USAGE); return; }
  if (values.stop) { await stop(); return; }

  const t0 = Date.now();
  const environment = values.environment;
  const stackName = cfnlib.stackNameFor(environment);
  const keep = values['keep-running'];
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'chronos-deploy-local-'));
  let server;
  let reused = false;
  let released = false; // --keep-running: the server outlives this process from here on
  const cleanup = async () => {
    if (server && !reused && !released) await server.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  const abort = new AbortController(); // stops a running `cdk synth` on Ctrl-C
  const onSignal = (sig) => {
    console.error(`\n${sig}: stopping`);
    abort.abort();
    const s = server && !reused ? server.stop() : Promise.resolve();
    s.finally(() => {
      if (released) moto.removePidfile();
      fs.rmSync(tmp, { recursive: true, force: true });
      process.exit(130);
    });
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    // 1. Emulator (reuse one kept by an earlier --keep-running) and synthesis, concurrently.
    const kept = await moto.runningFromPidfile();
    const startServer = async () => {
      if (kept) {
        reused = true;
        server = { ...kept };
        console.log(`emulator: reusing moto left running by --keep-running (pid ${kept.pid}, ${kept.endpoint})`);
        return;
      }
      const logFile = keep ? path.join(path.dirname(moto.PIDFILE), 'moto-server.log') : path.join(tmp, 'moto.log');
      fs.mkdirSync(path.dirname(logFile), { recursive: true });
      server = await moto.startMoto({ logFile, detached: keep });
      console.log(`emulator: moto_server pid ${server.pid} on 127.0.0.1:${server.port} (${server.endpoint})`);
    };
    const synthDir = path.join(tmp, 'cdk.out');
    const cc = values['cost-center'];
    console.log(`synth: integ/ sample app, cdk synth -c synthesizer=none -c environment=${environment}` +
      `${cc ? ` -c costCenter=${cc}` : ''} (no bootstrap needed) ...`);
    // allSettled: whichever fails, wait for the other, so that cleanup() sees a started server.
    const [srv, syn] = await Promise.allSettled([
      startServer(),
      cfnlib.synth({ environment, costCenter: cc, outDir: synthDir, signal: abort.signal }),
    ]);
    for (const r of [srv, syn]) if (r.status === 'rejected') throw r.reason;
    const synthRes = syn.value;
    console.log(`synth: done in ${synthRes.seconds.toFixed(1)} s`);
    const endpoint = assertLoopback(server.endpoint);
    if (keep && !reused) {
      moto.writePidfile({ pid: server.pid, port: server.port, endpoint, logFile: server.logFile });
      server.release();
      released = true;
    }

    // 2. Deploy through the CloudFormation API.
    const c = clients(endpoint);
    const art = cfnlib.readStackArtifact(synthDir, stackName);
    console.log('');
    const r = await cfnlib.deployStack({
      cfn: c.cfn, s3: c.s3, ec2: c.ec2, endpoint, stackName,
      templateBody: art.templateBody, template: art.template, tags: art.tags, log: console.log,
    });

    // 3. Exports.
    const names = cfnlib.exportNames(environment);
    const exp = await cfnlib.listExports(c.cfn);
    console.log(`\nExports of ${stackName} (what the launch script reads):\n`);
    console.log(cfnlib.formatExports(names, exp, endpoint));
    console.log(`\n(the AWS CLI needs a region and some credentials even for the emulator: ` +
      'AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1; ' +
      `the commands work while the emulator runs${keep || reused ? '' : ', see --keep-running'})`);
    const missing = names.filter((n) => !(n in exp));
    if (missing.length) throw new Error(`missing exports: ${missing.join(', ')}`);
    if (r.action === 'update') {
      // moto 5.2.5: UpdateStack refreshes stack Outputs, stack tags and bucket tags, but keeps the
      // old ListExports values and drops/replaces EC2 resources of the stack. Say so.
      const st = await cfnlib.describeStack(c.cfn, stackName);
      const stale = (st.Outputs || []).filter((o) => o.ExportName && o.ExportName in exp && exp[o.ExportName] !== o.OutputValue);
      for (const o of stale) {
        console.log(`stale in the emulator: ${o.ExportName} is listed as ${exp[o.ExportName]}, the stack's Outputs say ${o.OutputValue}`);
      }
      console.log('\nnote: moto only models UpdateStack for stack Outputs, stack tags and bucket tags; its exports stay ' +
        'stale and EC2 resources drop out of the stack. For a faithful picture, start afresh: ' +
        '`node scripts/local/deploy.js --stop`, then deploy again.');
    }

    console.log(`\n${r.action === 'none' ? 'no changes' : r.action} ${stackName}: ${r.seconds.toFixed(2)} s ` +
      `(deploy through the CloudFormation API); total wall time ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    // 4. Stop, or say how to.
    if (keep || reused) {
      console.log(`\nmoto is still running: pid ${server.pid}, ${endpoint} (log ${rel(server.logFile)})`);
      console.log(`  use it:  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1`);
      console.log(`           aws cloudformation list-exports --endpoint-url ${endpoint} --output table`);
      console.log(`  stop it: node scripts/local/deploy.js --stop     (or: kill ${server.pid})`);
    } else {
      await server.stop();
      console.log('\nemulator stopped (everything deployed to it is gone; --keep-running keeps it)');
    }
  } finally {
    await cleanup();
  }
}

main().catch((e) => {
  console.error(`\ndeploy:local FAILED: ${e.message}`);
  process.exitCode = 1;
});
