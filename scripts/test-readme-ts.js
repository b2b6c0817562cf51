#!/usr/bin/env node
// Runs the README's TypeScript example ("### The guide's stack, in TypeScript") against the BUILT
// library: the packed tarball dist/js/*.tgz is installed into a new app with aws-cdk-lib, constructs
// and typescript pinned to this repo's versions; the block, extracted from README.md now (not a copy),
// is compiled with `tsc --strict` and run with node, once as is and once with the context
// environment=stage (what `cdk deploy -c environment=stage` passes).
// Usage: node scripts/test-readme-ts.js   (runs `npx projen package:js` first if dist/js has no tarball, or one older than .jsii)
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const HEADING = "### The guide's stack, in TypeScript";
const LANGUAGES = ['ts', 'typescript'];
const EXPORTS = ['VPCId', 'PublicSubnetId', 'S3BucketName', 'IAMRoleName', 'InstanceProfileName', 'SecurityGroupId',
  'Environment', 'CostCenter'];

const started = Date.now();
const root = path.resolve(__dirname, '..');
const pkg = require(path.join(root, 'package.json'));
let passed = 0;
let failed = 0;

function check(name, fn) {
  try {
    const detail = fn();
    console.log(`ok   ${name}${detail ? `: ${detail}` : ''}`);
    passed++;
    return true;
  } catch (e) {
    console.log(`FAIL ${name}: ${e.message}`);
    failed++;
    return false;
  }
}

function finish() {
  console.log(`readme-ts: wall time ${((Date.now() - started) / 1000).toFixed(1)}s`);
  console.log(`readme-ts: ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

/** The first fenced block in one of `languages` under `heading`, before the next heading of the same or higher level. */
function extractBlock(markdown, heading, languages) {
  const lines = markdown.split(/\r?\n/);
  const start = lines.findIndex(l => l.trim() === heading);
  if (start < 0) throw new Error(`README.md has no heading "${heading}"`);
  const level = heading.match(/^#+/)[0].length;
  let fence = null;
  let wanted = false;
  const body = [];
  for (const line of lines.slice(start + 1)) {
    if (fence === null) {
      const h = /^(#{1,6})\s/.exec(line);
      if (h && h[1].length <= level) break;
      const f = /^(`{3,})\s*(\S*)/.exec(line);
      if (f) {
        fence = f[1];
        wanted = languages.includes(f[2]);
      }
      continue;
    }
    if (line.trim() === fence) {
      if (wanted) return body.join('\n') + '\n';
      fence = null;
      continue;
    }
    if (wanted) body.push(line);
  }
  throw new Error(`README.md has no \`\`\`${languages[0]} block under "${HEADING}"`);
}

let code;
if (!check('README block extracted', () => {
  code = extractBlock(fs.readFileSync(path.join(root, 'README.md'), 'utf8'), HEADING, LANGUAGES);
  return `${code.trim().split('\n').length} lines`;
})) finish();

// The packed library.
const distJs = path.join(root, 'dist', 'js');
const findTarball = () => (fs.existsSync(distJs) ? fs.readdirSync(distJs) : []).find(f => f.endsWith('.tgz'));
const jsiiFile = path.join(root, '.jsii');
const stale = t => fs.existsSync(jsiiFile) && fs.statSync(jsiiFile).mtimeMs > fs.statSync(path.join(distJs, t)).mtimeMs;
if (!findTarball() || stale(findTarball())) {
  console.log(`readme-ts: ${findTarball() ? 'dist/js tarball older than .jsii' : 'no tarball in dist/js'}: npx projen package:js`);
  execFileSync('npx', ['projen', 'package:js'], { cwd: root, stdio: 'inherit' });
}
const tarball = path.join(distJs, findTarball());

const typescriptVersion = require(path.join(root, 'node_modules', 'typescript', 'package.json')).version;
const app = fs.mkdtempSync(path.join(os.tmpdir(), 'chronos-readme-ts-'));
const run = (cmd, args, env = {}) => execFileSync(cmd, args, {
  cwd: app, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...cleanEnv(), ...env },
});
function cleanEnv() {
  const env = { ...process.env };
  for (const v of ['CDK_DEFAULT_ACCOUNT', 'CDK_DEFAULT_REGION', 'CDK_CONTEXT_JSON', 'CDK_OUTDIR']) delete env[v];
  return env;
}
const explain = e => new Error(`${e.message.split('\n')[0]}\n${e.stdout || ''}${e.stderr || ''}`.trim());

try {
  if (!check('app installed', () => {
    const t = Date.now();
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'readme-ts-app', private: true }));
    try {
      run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error',
        `aws-cdk-lib@${pkg.devDependencies['aws-cdk-lib']}`, `constructs@${pkg.devDependencies.constructs}`,
        `typescript@${typescriptVersion}`, tarball]);
    } catch (e) { throw explain(e); }
    return `${path.basename(tarball)}, aws-cdk-lib@${pkg.devDependencies['aws-cdk-lib']}, ` +
      `constructs@${pkg.devDependencies.constructs}, typescript@${typescriptVersion} (${((Date.now() - t) / 1000).toFixed(1)}s)`;
  })) finish();

  if (!check('tsc --strict', () => {
    fs.writeFileSync(path.join(app, 'app.ts'), code);
    fs.writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'nodenext', moduleResolution: 'nodenext', skipLibCheck: false },
      files: ['app.ts'],
    }));
    try {
      run(path.join(app, 'node_modules', '.bin', 'tsc'), ['-p', '.', '--strict', '--noEmit', 'false']);
    } catch (e) { throw explain(e); }
    if (!fs.existsSync(path.join(app, 'app.js'))) throw new Error('tsc emitted no app.js');
  })) finish();

  for (const [environment, context] of [['dev', null], ['stage', { environment: 'stage' }]]) {
    check(`node app.js${context ? ` (context ${JSON.stringify(context)})` : ''} synthesizes ChronosTraining-${environment}-Stack`, () => {
      const outdir = path.join(app, `cdk.out.${environment}`);
      try {
        run(process.execPath, ['app.js'], { CDK_OUTDIR: outdir, ...(context ? { CDK_CONTEXT_JSON: JSON.stringify(context) } : {}) });
      } catch (e) { throw explain(e); }
      const stacks = Object.entries(JSON.parse(fs.readFileSync(path.join(outdir, 'manifest.json'), 'utf8')).artifacts)
        .filter(([, a]) => a.type === 'aws:cloudformation:stack').map(([id]) => id);
      const name = `ChronosTraining-${environment}-Stack`;
      if (JSON.stringify(stacks) !== JSON.stringify([name])) throw new Error(`stacks ${JSON.stringify(stacks)}, expected ["${name}"]`);
      const template = JSON.parse(fs.readFileSync(path.join(outdir, `${name}.template.json`), 'utf8'));
      const exports = Object.values(template.Outputs || {}).filter(o => o.Export).map(o => o.Export.Name).sort();
      const expected = EXPORTS.map(n => `ChronosTraining-${environment}-${n}`).sort();
      if (JSON.stringify(exports) !== JSON.stringify(expected)) throw new Error(`exports ${JSON.stringify(exports)}`);
      const buckets = Object.values(template.Resources).filter(r => r.Type === 'AWS::S3::Bucket');
      const bucketName = JSON.stringify(buckets.map(b => b.Properties.BucketName));
      const expectedName = JSON.stringify([{ 'Fn::Join': ['', [`chronos-training-${environment}-`, { Ref: 'AWS::AccountId' }, '-us-east-1']] }]);
      if (bucketName !== expectedName) throw new Error(`bucket name ${bucketName}, expected ${expectedName}`);
      return `${Object.keys(template.Resources).length} resources, ${exports.length} exports`;
    });
  }
} finally {
  fs.rmSync(app, { recursive: true, force: true });
}
finish();
