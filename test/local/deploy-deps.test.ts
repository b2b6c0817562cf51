import * as fs from 'fs';
import { builtinModules } from 'module';
import * as path from 'path';

// scripts/local/deploy-deps.js: a fresh clone's first deploy:local installs package-lock.json's subset that
// deploy:local runs. It is plain Node.js (it runs before anything is installed), hence require.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const deps = require('../../scripts/local/deploy-deps');

const ROOT = path.join(__dirname, '..', '..');
const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'));
const subset = deps.subsetLock(lock, deps.NEEDED);
const installed: Record<string, any> = subset.lock.packages;

/** The package a module specifier loads: `aws-cdk-lib/aws-iam` is aws-cdk-lib, `@aws-sdk/client-ec2/x` its scope + name. */
const packageOf = (specifier: string) => specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/');
const BUILTINS = new Set(builtinModules);
// Not the package itself: doc comments show `import ... from '@chronos/training-infra'`.
const bare = (specifier: string) => !specifier.startsWith('.') && !specifier.startsWith('node:')
  && !BUILTINS.has(packageOf(specifier)) && packageOf(specifier) !== lock.name;

/** The packages that files import or require (TypeScript imports, also type-only ones, and CommonJS requires). */
function importedPackages(files: string[]): Set<string> {
  const found = new Set<string>();
  for (const file of files) {
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:from\s+|require\()\s*'([^']+)'/g)) {
      if (bare(m[1])) found.add(packageOf(m[1]));
    }
  }
  return found;
}

const walk = (dir: string): string[] => fs.readdirSync(dir, { withFileTypes: true }).flatMap(e =>
  (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));

describe('the packages a fresh clone installs for its first deploy:local', () => {
  test('are a subset of package-lock.json, each entry exactly as locked (same version, integrity, place)', () => {
    const paths = Object.keys(installed).filter(Boolean);
    expect(paths.length).toBeGreaterThan(50);
    expect(paths.length).toBeLessThan(Object.keys(lock.packages).length / 3);
    for (const p of paths) expect(installed[p]).toBe(lock.packages[p]);
  });

  test('hold everything each installed package needs, where Node.js looks for it', () => {
    const missing: string[] = [];
    for (const [at, pkg] of Object.entries(installed)) {
      if (!at) continue;
      for (const name of Object.keys(pkg.dependencies ?? {})) {
        if (!deps.resolveIn(installed, at, name)) missing.push(`${at} -> ${name}`);
      }
      for (const [name] of Object.entries(pkg.peerDependencies ?? {})) {
        if (!pkg.peerDependenciesMeta?.[name]?.optional && !deps.resolveIn(installed, at, name)) missing.push(`${at} -> ${name} (peer)`);
      }
    }
    expect(missing).toEqual([]);
  });

  test('hold every package deploy:local loads: the task runner, the CDK CLI and ts-node, scripts/local/, the sample app and src/', () => {
    const files = [
      ...walk(path.join(ROOT, 'scripts', 'local')).filter(f => f.endsWith('.js')),
      path.join(ROOT, 'integ', 'app.ts'), path.join(ROOT, 'integ', 'sample.ts'),
      // Lambda handlers are bundled into assets and run in Lambda (their SDK is the runtime's).
      ...walk(path.join(ROOT, 'src')).filter(f => f.endsWith('.ts') && !f.endsWith('.lambda.ts')),
    ];
    const needed = [...importedPackages(files), 'projen', 'aws-cdk', 'ts-node', 'typescript'];
    const top = (name: string) => installed[`node_modules/${name}`];
    expect(needed.filter(n => !top(n))).toEqual([]);
    // The integ app is what cdk.json runs, with ts-node.
    expect(JSON.parse(fs.readFileSync(path.join(ROOT, 'integ', 'cdk.json'), 'utf8')).app).toMatch(/\bts-node\b/);
    // and the task is projen's
    expect(JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts['deploy:local']).toBe('projen deploy:local');
  });

  test('leave out the build and test toolchain', () => {
    for (const name of ['jsii', 'jsii-pacmak', 'jsii-rosetta', 'eslint', 'jest', 'ts-jest', '@aws-cdk/integ-runner', 'cdk-nag']) {
      expect(lock.packages[`node_modules/${name}`]).toBeDefined();
      expect(installed[`node_modules/${name}`]).toBeUndefined();
    }
  });

  test('are installed by npm ci from a package.json whose dependencies are the lock root\'s', () => {
    expect(subset.manifest.devDependencies).toEqual(subset.lock.packages[''].devDependencies);
    for (const [name, range] of Object.entries(subset.manifest.devDependencies)) {
      expect(range).toBe(lock.packages[''].devDependencies[name]);
    }
    expect(subset.lock.lockfileVersion).toBe(lock.lockfileVersion);
  });
});

describe('resolveIn follows Node.js resolution through the lock', () => {
  const packages = {
    '': {},
    'node_modules/a': { dependencies: { b: '1' } },
    'node_modules/a/node_modules/b': { version: '1.0.0' },
    'node_modules/b': { version: '2.0.0' },
    'node_modules/@s/c': { dependencies: { b: '2' } },
    'node_modules/@s/c/node_modules/d': { dependencies: { b: '1' } },
  };

  test('a nested copy wins over the hoisted one, and scoped packages nest the same way', () => {
    expect(deps.resolveIn(packages, 'node_modules/a', 'b')).toBe('node_modules/a/node_modules/b');
    expect(deps.resolveIn(packages, 'node_modules/@s/c', 'b')).toBe('node_modules/b');
    expect(deps.resolveIn(packages, 'node_modules/@s/c/node_modules/d', 'b')).toBe('node_modules/b');
    expect(deps.resolveIn(packages, '', 'missing')).toBeUndefined();
  });

  test('the closure takes the nested copy and not the hoisted one; a package the lock lacks is an error that names it', () => {
    const lockOf = (devDependencies: Record<string, string>) => ({ packages: { ...packages, '': { devDependencies } } });
    expect([...deps.closure(lockOf({ a: '1' }), ['a'])]).toEqual(['node_modules/a', 'node_modules/a/node_modules/b']);
    expect(() => deps.closure(lockOf({ a: '1' }), ['x'])).toThrow(/x is not a dependency of the project/);
    const broken = { packages: { '': { devDependencies: { e: '1' } }, 'node_modules/e': { dependencies: { gone: '1' } } } };
    expect(() => deps.closure(broken, ['e'])).toThrow(/gone \(needed by node_modules\/e\) is not in package-lock.json/);
  });
});
