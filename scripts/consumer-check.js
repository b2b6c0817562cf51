#!/usr/bin/env node
// The packed tarball as a new user meets it: installed into a new, separate app that has only aws-cdk-lib and
// constructs, where every TypeScript example of the README runs. The examples come from the tablet that
// `jsii-rosetta extract --strict` wrote at compile time (.jsii.tabl.json), not from a copy; each must synthesize
// stacks whose exports are those `FoundationExports` names for their environment. The stack example runs three
// times, as `cdk deploy` and `cdk deploy -c @chronos/training-infra:environment=stage` (and `=prod`) would run it.
// Usage: node scripts/consumer-check.js             (after `npx projen compile` and `npx projen package:js`)
//        node scripts/consumer-check.js --app DIR   an app where the package was installed by name from a registry
//                                                   (the publish rehearsal, scripts/release/rehearsal.sh)
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const ts = require('typescript');

const root = path.resolve(__dirname, '..');
const pkg = require(path.join(root, 'package.json'));
const appArg = process.argv.indexOf('--app');
const givenApp = appArg > 0 ? path.resolve(process.argv[appArg + 1]) : undefined;
const snippets = Object.values(JSON.parse(fs.readFileSync(path.join(root, '.jsii.tabl.json'), 'utf8')).snippets)
  .filter(s => s.location.api.api === 'moduleReadme')
  .sort((a, b) => a.location.field.line - b.location.field.line);
if (snippets.length === 0) throw new Error('.jsii.tabl.json holds no README example: run `npx projen compile`');

const app = givenApp ?? fs.mkdtempSync(path.join(os.tmpdir(), 'chronos-consumer-'));
const env = { ...process.env };
for (const v of ['CDK_DEFAULT_ACCOUNT', 'CDK_DEFAULT_REGION', 'CDK_CONTEXT_JSON', 'CDK_OUTDIR']) delete env[v];
if (!givenApp) {
  const tarball = fs.readdirSync(path.join(root, 'dist', 'js')).find(f => f.endsWith('.tgz'));
  if (!tarball) throw new Error('no tarball in dist/js: run `npx projen package:js` first');
  const npm = (...args) => execFileSync('npm', args, { cwd: app, env, stdio: ['ignore', 'ignore', 'inherit'] });
  npm('init', '-y');
  npm('install', '--no-audit', '--no-fund',
    `aws-cdk-lib@${pkg.devDependencies['aws-cdk-lib']}`, `constructs@${pkg.devDependencies.constructs}`,
    path.join(root, 'dist', 'js', tarball));
}
// The installed package's own FoundationExports says which export names a stack of an environment has.
const { FoundationExports } = require(require.resolve('@chronos/training-infra', { paths: [app] }));

let passed = 0;
let failed = 0;
function check(name, fn) {
  try {
    console.log(`ok   ${name}: ${fn()}`);
    passed++;
  } catch (e) {
    console.log(`FAIL ${name}: ${e.message}`);
    failed++;
  }
}

snippets.forEach((snippet, i) => {
  const line = snippet.location.field.line;
  const file = path.join(app, `readme-${line}.js`);
  fs.writeFileSync(file, ts.transpileModule(snippet.translations.$.source, {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 },
  }).outputText);
  const ENV_KEY = '@chronos/training-infra:environment';
  for (const context of [{}, { [ENV_KEY]: 'stage' }, { [ENV_KEY]: 'prod' }]) {
    if (i > 0 && context[ENV_KEY]) continue; // only the stack example reads context
    check(`README example at line ${line}${context[ENV_KEY] ? ` with -c ${ENV_KEY}=${context[ENV_KEY]}` : ''}`, () => {
      const outdir = path.join(app, `cdk.out.${line}.${context[ENV_KEY] || 'default'}`);
      try {
        execFileSync(process.execPath, [file], {
          cwd: app, stdio: ['ignore', 'pipe', 'pipe'],
          env: { ...env, CDK_OUTDIR: outdir, CDK_CONTEXT_JSON: JSON.stringify(context) },
        });
      } catch (e) {
        throw new Error(`${e.message.split('\n')[0]}\n${e.stderr}`);
      }
      const manifest = JSON.parse(fs.readFileSync(path.join(outdir, 'manifest.json'), 'utf8'));
      const stacks = Object.values(manifest.artifacts).filter(a => a.type === 'aws:cloudformation:stack');
      if (stacks.length === 0) throw new Error('synthesized no stack');
      return stacks.map(stack => {
        const template = JSON.parse(fs.readFileSync(path.join(outdir, stack.properties.templateFile), 'utf8'));
        const outputs = Object.values(template.Outputs || {}).filter(o => o.Export);
        if (outputs.length === 0 && template.Parameters && JSON.stringify(template.Parameters).includes('/chronos-training/')) {
          // A consumer of a deployed foundation (fromEnvironment): it reads the parameters and exports nothing.
          return `${stack.properties.stackName ?? stack.displayName}: reads ${Object.keys(template.Parameters).length} parameters`;
        }
        const environment = outputs.find(o => o.Export.Name.endsWith(`-${FoundationExports.ENVIRONMENT}`)).Value;
        const exports = outputs.map(o => o.Export.Name);
        const expected = FoundationExports.exportNames(environment);
        const optional = [FoundationExports.PLACEMENT_GROUP_NAME, FoundationExports.BATCH_JOB_QUEUE_ARN, FoundationExports.BATCH_JOB_DEFINITION_ARN,
          FoundationExports.BATCH_MULTI_NODE_JOB_QUEUE_ARN, FoundationExports.BATCH_MULTI_NODE_JOB_DEFINITION_ARN]
          .map(suffix => FoundationExports.exportName(environment, suffix));
        if (JSON.stringify(exports.slice(0, expected.length)) !== JSON.stringify(expected)
          || exports.slice(expected.length).some(name => !optional.includes(name))) {
          throw new Error(`${stack.properties.stackName ?? stack.displayName}: exports ${JSON.stringify(exports)}`);
        }
        if (context[ENV_KEY] && environment !== context[ENV_KEY]) {
          throw new Error(`environment ${environment}, expected ${context[ENV_KEY]} from context`);
        }
        return `${stack.properties.stackName ?? stack.displayName} (${environment}): ` +
          `${Object.keys(template.Resources).length} resources, ${exports.length} exports`;
      }).join('; ');
    });
  }
});

if (!givenApp) fs.rmSync(app, { recursive: true, force: true });
console.log(`consumer: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
