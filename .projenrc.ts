import * as fs from 'fs';
import { awscdk, DependencyType, javascript, release } from 'projen';
import { JobPermission } from 'projen/lib/github/workflows-model';

// Conventional commit types: the changelog's sections and what is releasable (scripts/release/next-version.js reads the same file).
const COMMIT_TYPES = JSON.parse(fs.readFileSync('scripts/release/commit-types.json', 'utf8')).types;

// Versions that are known to work together (see docs/DEVELOPMENT.md, "Toolchain"):
// aws-cdk-lib 2.257 emits a cloud-assembly schema that integ-runner 2.197 and
// the CDK CLI 2.1148 can read, and @aws-cdk/integ-tests-alpha 2.245's peer
// range (^2.245.0) includes it.
const CDK_VERSION = '2.257.0';
const CONSTRUCTS_VERSION = '10.5.1';
const CDK_CLI_VERSION = '2.1148.1';
const INTEG_RUNNER_VERSION = '2.197.10';
const INTEG_TESTS_ALPHA_VERSION = '2.245.0-alpha.0';

const project = new awscdk.AwsCdkConstructLibrary({
  name: '@chronos/training-infra',
  description:
    'AWS CDK constructs for the persistent, $0-when-idle foundation of ephemeral EC2 GPU training runs: ' +
    'a public VPC without NAT (one Availability Zone by default), S3 gateway endpoint, lifecycle-managed bucket, least-privilege instance role, ' +
    'egress-only security group, cost tags and CloudFormation exports.',
  keywords: ['cdk', 'aws-cdk', 'awscdk', 'ec2', 'gpu', 'training', 'machine-learning', 's3', 'vpc'],
  author: 'Chronos Training',
  // The project's address, not an e-mail: there is no real one to publish (npm's author.url, PyPI's project URL).
  authorAddress: 'https://github.com/chronos/training-infra',
  authorOrganization: true,
  repositoryUrl: 'https://github.com/chronos/training-infra.git',
  license: 'Apache-2.0',
  stability: 'experimental',
  defaultReleaseBranch: 'main',
  packageManager: javascript.NodePackageManager.NPM,
  projenrcTs: true,

  cdkVersion: CDK_VERSION,
  constructsVersion: CONSTRUCTS_VERSION,
  jsiiVersion: '~6.0.0',

  // Releases (docs/DEVELOPMENT.md, "Releasing"): versions from conventional commits, CHANGELOG.md, a first release of 0.1.0
  // (scripts/release/next-version.js), npm and PyPI through publib from projen's hosted release workflow, which
  // is started by hand (workflow_dispatch). `.ci/run` stays the CI of record; build.yml mirrors it on GitHub.
  release: true,
  releaseTrigger: release.ReleaseTrigger.workflowDispatch(),
  // The next version comes from release/version.json and the commits since it, not from tags (a clone without
  // tags computes the same); `bump` first makes the tag of the recorded version if the clone lacks it.
  nextVersionCommand: 'node scripts/release/next-version.js',
  // The changelog is for users: ci, test, chore, build, refactor, style and docs commits are hidden
  // (scripts/release/commit-types.json, which also says what is releasable); a scope is anything without
  // parentheses, so a subject with "(...)" keeps its scope (the default pattern took the last ")" as the scope's end).
  versionrcOptions: {
    types: COMMIT_TYPES,
    parserOpts: {
      headerPattern: '^(\\w*)(?:\\(([^()]*)\\))?!?: (.*)$',
      breakingHeaderPattern: '^(\\w*)(?:\\(([^()]*)\\))?!: (.*)$',
    },
  },
  releaseToNpm: true,
  // publib, which the hosted release jobs run (`npx -p publib@VERSION publib-npm|publib-pypi`), pinned.
  jsiiReleaseVersion: '0.2.1061',
  workflowNodeVersion: '24.x',
  github: true,
  githubOptions: { mergify: false, pullRequestLint: false },
  // Dependency upgrades (projen's `upgrade` task and its weekly upgrade workflow, a pull request): the pinned
  // toolchain versions above move only with their own tests, so they are excluded here.
  depsUpgrade: true,
  depsUpgradeOptions: {
    exclude: ['aws-cdk-lib', 'constructs', 'aws-cdk', '@aws-cdk/integ-runner', '@aws-cdk/integ-tests-alpha', 'jsii-diff', 'projen'],
  },
  // package.json `engines`: the CDK CLI, jsii and the AWS SDK need Node.js 22 or later (scripts/node-path.sh).
  minNodeVersion: '22.0.0',
  pullRequestTemplate: false,

  publishToPypi: {
    distName: 'chronos-training-infra',
    module: 'chronos_training_infra',
  },

  devDeps: [
    `aws-cdk@${CDK_CLI_VERSION}`,
    `@aws-cdk/integ-runner@${INTEG_RUNNER_VERSION}`,
    `@aws-cdk/integ-tests-alpha@${INTEG_TESTS_ALPHA_VERSION}`,
    // cdk-nag 3.x (needs aws-cdk-lib >= 2.257): Validations.of(...).acknowledge(...) replaced NagSuppressions.
    'cdk-nag@3.0.2',
    // IAM policy evaluation for the role's simulation tests (AGPL-3.0, dev-only: never shipped).
    '@cloud-copilot/iam-simulate@0.1.173',
    // AWS SDK clients for the local-emulator deploy and its end-to-end test.
    ...['cloudformation', 'ec2', 'iam', 's3', 'ssm'].map(c => `@aws-sdk/client-${c}@3.1169.0`),
    // Mocks the EC2 client in the run reaper's handler tests.
    'aws-sdk-client-mock@4.1.0',
  ],

  // src/**/*.lambda.ts handlers are bundled by esbuild into assets/ (same folders) (shipped in the npm tarball, hence in the wheel)
  // with a generated src/*-function.ts construct. The AWS SDK v3 stays external: the Node.js Lambda runtime has it.
  lambdaOptions: {
    // The newest Node.js runtime aws-cdk-lib 2.257 knows (cdk-nag's AwsSolutions-L1 asks for the latest).
    runtime: awscdk.LambdaRuntime.NODEJS_24_X,
  },
  bundlerOptions: { esbuildVersion: '0.28.2' },

  // A root tsconfig.dev.json that type-checks everything that is not shipped.
  tsconfigDevFile: 'tsconfig.dev.json',
  tsconfigDev: {
    include: ['src/**/*.ts', 'test/**/*.ts', 'integ/**/*.ts', 'scripts/**/*.ts', '.projenrc.ts', 'projenrc/**/*.ts'],
    exclude: ['node_modules', '**/*.snapshot/**', '**/cdk.out/**'],
    compilerOptions: {},
  },

  eslintOptions: {
    dirs: ['src'],
    devdirs: ['test', 'integ', 'scripts', 'projenrc', '.projenrc.ts'],
    // The test task reports lint errors instead of silently rewriting files.
    commandOptions: { fix: false, extraArgs: ['--max-warnings', '0'] },
    // Lint test/ and integ/ against tsconfig.dev.json (the project service only finds tsconfig.json files).
    projectService: false,
    tsconfigPath: './tsconfig.dev.json',
  },

  jestOptions: {
    // Snapshot tests must be able to fail: never rewrite snapshots in `test`.
    updateSnapshot: javascript.UpdateSnapshot.NEVER,
    passWithNoTests: false,
    jestConfig: {
      testMatch: ['<rootDir>/test/**/*.test.ts'],
      // No coverage report by default (nothing reads it, and it costs jest about a third of its CPU):
      // `npx jest --coverage` makes one.
      collectCoverage: false,
      // release/baseline/package.json has the package's name; the rehearsal works in .tools/.
      modulePathIgnorePatterns: ['<rootDir>/release/', '<rootDir>/.tools/'],
    },
  },

  // .venv-*: links to the venvs in the machine's tool cache (scripts/python-env.sh), hence no trailing slash.
  gitignore: ['cdk.out', '/integ/*.snapshot/asset.*', '.tools/', '.venv*', '__pycache__/', '.pytest_cache/', '.jsii.tabl.json'],
});

// integ-runner's snapshot directories are committed, with their cdk.out version marker but without asset bodies.
project.gitignore.addPatterns('!/integ/*.snapshot/cdk.out');
// The CDK CLI's lookup cache from deploys to the local emulator (account 123456789012), not the project's.
project.gitignore.addPatterns('/integ/cdk.context.json');
// integ-runner's working directories while it runs (their synth.lock files): never committed.
project.gitignore.addPatterns('/integ/cdk-integ.out.*');

// The last release's assembly is committed (docs/DEVELOPMENT.md, "Releasing"); the node_modules link the API guard lends it is not.
project.gitignore.addPatterns('!/release/baseline/.jsii', '/release/baseline/node_modules');

// The run agent is not in the construct package: the launcher uploads the Python run package's agent with each run,
// and the launch template's boot script fetches it (docs/DESIGN.md, "The run on the instance").

// The run keeper's Lambda function runs the Python run package (chronos-training/src/chronos_training/, agent included)
// from a copy in assets/keeper/ (git-ignored as the rest of assets/, shipped in the npm tarball): pure Python, boto3 from
// the Lambda runtime, so a copy and no Docker (src/keeper/training-run-keeper.ts). Never its bytecode.
const bundleKeeper = project.addTask('bundle:keeper', {
  description: "Copy the Python run package into assets/keeper/ (the run keeper's Lambda code)",
  exec: 'bash scripts/keeper/bundle.sh',
});
project.tasks.tryFind('bundle')!.spawn(bundleKeeper);
project.addPackageIgnore('/assets/keeper/**/__pycache__/');

// Keep the sample app, scripts, Python tests, the docs, release records, rosetta's inputs and outputs and the Python run
// package (chronos-training/, published to PyPI on its own) out of the npm tarball.
for (const p of ['/integ/', '/scripts/', '/docs/', '/test-python/', '/test-e2e/', '/.ci/', '/release/', '/tsconfig.dev.json', '/.tools/', '/.venv*',
  '/rosetta/', '/.jsii.tabl.json', '/chronos-training/']) {
  project.addPackageIgnore(p);
}

// Every TypeScript example (README blocks, @example doc comments) compiled against the built assembly and
// translated to the other languages; --strict fails the build on any diagnostic. The Python leg and
// scripts/consumer-check.js run the README's examples from the tablet it writes (.jsii.tabl.json). Its
// translations are cached in the machine's tool cache, reused for unchanged snippets and types (scripts/rosetta.sh).
project.postCompileTask.exec('bash scripts/rosetta.sh');

// ---------------------------------------------------------------------------
// Integration tests: integ-runner verifies the committed snapshots offline.
// ---------------------------------------------------------------------------
const integRunner = 'integ-runner --directory integ --language typescript --parallel-regions us-east-1';

const integ = project.addTask('integ', {
  description: 'Verify integ/ snapshots offline (no AWS account): synthesizes each integ.*.ts and diffs it with its committed snapshot',
  exec: integRunner,
});
project.addTask('integ:update', {
  description: 'Refresh integ/ snapshots offline (after an intended change): synthesizes without deploying',
  exec: `${integRunner} --update-on-failed --dry-run --force`,
});
project.testTask.spawn(integ);
// The reaper's construct points at its bundled handler: bundle before jest, so `npx projen test` works on a fresh clone.
project.testTask.prependSpawn(project.tasks.tryFind('bundle')!);
// API.md from this build's assembly only (jsii-docgen would also find release/baseline/.jsii: see the script).
project.tasks.tryFind('docgen')!.reset('bash scripts/docgen.sh');

// ---------------------------------------------------------------------------
// Releases (docs/DEVELOPMENT.md, "Releasing"). The guards compare every build with the last release, recorded
// in release/baseline/ by `release:baseline`: the API with jsii-diff (projen's `compat` task, run
// by `test`), the stateful resources of the default template in jest (test/release/).
// ---------------------------------------------------------------------------
// jsii-diff pinned (projen asks for it unpinned, so it is replaced here).
project.deps.removeDependency('jsii-diff', DependencyType.BUILD);
project.deps.addDependency('jsii-diff@1.134.0', DependencyType.BUILD);
const compat = project.tasks.tryFind('compat')!;
compat.reset('node scripts/release/api-guard.js');
compat.description = 'Breaking-change guard (API): jsii-diff --error-on all between release/baseline/ and the built .jsii';
project.testTask.spawn(compat);
const baselineTask = project.addTask('release:baseline', {
  description: 'Record the last released version (dist/js/*.tgz: .jsii, package.json, default template) in release/baseline/',
  exec: 'ts-node --project tsconfig.dev.json scripts/release/record-baseline.ts',
});
// After the anti-tamper check, `release` records the released version as the new baseline and commits it with
// CHANGELOG.md as `chore(release): X.Y.Z`, tagged vX.Y.Z (publish:git; nothing is pushed).
const publishGit = project.release!.publisher.publishToGit({
  changelogFile: 'dist/changelog.md',
  versionFile: 'dist/version.txt',
  releaseTagFile: 'dist/releasetag.txt',
  projectChangelogFile: 'CHANGELOG.md',
  gitBranch: 'main',
  gitPushCommand: '',
});
const releaseTag = project.addTask('release:tag', {
  description: 'Record release/baseline/ from dist/, then commit it with CHANGELOG.md and tag vX.Y.Z (after bump and build)',
});
releaseTag.spawn(baselineTask);
// The released version in release/version.json (with the commit the release contains): the next bump starts from it.
releaseTag.exec('node scripts/release/next-version.js --record "$(cat dist/version.txt)"');
releaseTag.exec('git add release');
releaseTag.spawn(publishGit);
// The release commit as a git bundle in dist/ (uploaded with the artifacts): the hosted `release_git` job pushes it
// to main once the packages are published.
releaseTag.exec('git bundle create dist/release-commit.bundle HEAD^..HEAD');
releaseTag.exec('node scripts/release/check-release-commit.js HEAD');
project.tasks.tryFind('release')!.spawn(releaseTag);
// A clone without tags (CI's, a --no-tags clone) gets the tag of the version release/version.json records, locally,
// before projen resolves the latest tag: projen's range and the changelog's are then the commits since that release.
project.tasks.tryFind('bump')!.prependExec('node scripts/release/next-version.js --restore-tag');
// Hosted: after npm, PyPI and GitHub Releases have the version, push its `chore(release): X` commit (baseline,
// version file, CHANGELOG.md) to main, from the bundle the release job made. It fails, rather than forcing, when
// main moved since the release started (the release job already skips publishing then).
project.release!.addJobs({
  release_git: {
    name: 'Push the release commit to main',
    needs: ['release', 'release_npm', 'release_pypi', 'release_github'],
    runsOn: ['ubuntu-latest'],
    permissions: { contents: JobPermission.WRITE },
    if: "needs.release.outputs.tag_exists != 'true' && needs.release.outputs.latest_commit == github.sha && !inputs.dry_run",
    steps: [
      { uses: 'actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1', with: { 'fetch-depth': 0 } },
      { uses: 'actions/download-artifact@3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c', with: { name: 'build-artifact', path: 'dist' } },
      {
        name: 'Push the release commit',
        run: [
          'git fetch dist/release-commit.bundle HEAD',
          'git log -1 --format="%h %s" FETCH_HEAD',
          'git push origin FETCH_HEAD:refs/heads/main',
        ].join('\n'),
      },
    ],
  },
});
// The second package, the run package chronos-training/ (PyPI `chronos-training`, the launcher CLI and Python API): its
// sdist and wheel at the construct package's version, built with uv into dist/python/ by package:python, so beside the
// jsii wheel in every build that packs Python and in the hosted release_pypi job, whose publib-pypi uploads them all.
const packageRun = project.addTask('package:run-package', {
  description: 'Build the run package (chronos-training/, PyPI chronos-training) at the construct package\'s version: sdist and wheel with uv into dist/python/',
  exec: 'bash scripts/release/package-run.sh',
});
project.tasks.tryFind('package:python')!.spawn(packageRun);
const artifacts = project.addTask('release:artifacts', {
  description: 'Check the packed npm tarball and both wheels (jsii, run package) as a user meets them (contents, size, metadata, twine check)',
  exec: 'bash scripts/release/check-artifacts.sh',
});
const rehearsal = project.addTask('release:local', {
  description: 'Publish rehearsal on 127.0.0.1: verdaccio + pypiserver, publish, install by name, refuse a breaking version (--fast: current dist/)',
  exec: 'bash scripts/release/rehearsal.sh',
  receiveArgs: true,
});

// The sample app with the CDK CLI, as the guide's Deployment section shows.
project.addTask('synth', {
  description: 'Synthesize the sample app (integ/app.ts) with the CDK CLI; pass -c environment=stage etc.',
  cwd: 'integ',
  exec: 'cdk synth',
  receiveArgs: true,
});

// ---------------------------------------------------------------------------
// The whole test suite (README, .ci/run): build = compile, docgen, unit tests,
// eslint, integ snapshot verification, package; then generated files must be current.
// ---------------------------------------------------------------------------
// The main job: deploy the sample app to a local AWS API emulator (moto on loopback) and print its exports.
project.addTask('deploy:local', {
  description: 'cdk bootstrap + cdk deploy of the sample app to moto on 127.0.0.1, print the exports (--environment, --cost-center, --keep-running, --destroy, --stop)',
  exec: 'node scripts/local/deploy.js',
  receiveArgs: true,
});
// The whole run loop on this machine (README, second command): the foundation on the emulator, chronos-training
// run of a toy script, each instance played from its user data against amazon-ec2-metadata-mock, a spot
// interruption and the resume (scripts/local/run-loop.js; test-e2e/run-loop.test.js checks it).
project.addTask('run:local', {
  description: 'Deploy to the local emulator, chronos-training run a toy script through a spot interruption and its resume, print logs and timings',
  exec: 'node scripts/local/run-loop.js',
});
const runLoopTest = project.addTask('test:run-loop', {
  description: 'The whole run loop as a test (test-e2e/runs/): emulator, launcher, instances played against the metadata mock, spot notice, resume',
  exec: "node --test --test-reporter=tap 'test-e2e/runs/*.test.js'",
});
const e2e = project.addTask('test:e2e', {
  description: 'cdk bootstrap, cdk deploy dev and stage to a fresh local emulator, inspect them through the AWS APIs, update, cdk destroy',
  exec: "node --test --test-reporter=tap 'test-e2e/*.test.js'",
});

// The Python leg: the wheel in a fresh venv with aws-cdk-lib at the peer version, and pytest (which runs
// the README's Python example and the Python translations of its TypeScript examples).
project.addTask('test:python', {
  description: 'Build the wheel, install it in a fresh venv with aws-cdk-lib, run pytest (test-python/)',
  exec: 'bash scripts/test-python.sh',
});

// The run agent (chronos-training/src/chronos_training/agent/chronos_run_agent.py, docs/RUNS.md) as real processes
// against moto server (S3) and AWS's amazon-ec2-metadata-mock (IMDSv2) on loopback, side by side with pytest-xdist.
project.addTask('test:agent', {
  description: "The run agent's scenarios (test/agent/): moto server + amazon-ec2-metadata-mock v1.13.0 on 127.0.0.1, offline",
  exec: 'bash scripts/test-agent.sh',
  receiveArgs: true,
});
// Its slow scenarios: the real torch.distributed.checkpoint (torch cached by scripts/agent/torch-venv.sh), a 6 GiB file.
const agentSlowTest = project.addTask('test:agent:slow', {
  description: "The run agent's slow scenarios: a real DCP checkpoint (torch on CPU) and a 6 GiB file through a spot drain",
  exec: 'bash scripts/agent/test-slow.sh',
  receiveArgs: true,
});

// Mutation testing of the run agent's drain, checkpoint, restore and lifetime code (mutmut, pinned): a task, not a CI
// leg (minutes of CPU); docs/DEVELOPMENT.md, "Mutation testing".
project.addTask('mutation', {
  description: 'mutmut over the run agent\'s drain, checkpoint, restore and lifetime functions (test/agent/test_core.py); the score per group',
  exec: 'bash scripts/mutation/run.sh',
  receiveArgs: true,
});

// The Python run package (chronos-training/: the launcher CLI and API, docs/RUNS.md): its pytest suite against moto,
// on the wheel built from its sdist and installed into a fresh venv (scripts/test-run-package.sh).
const runPackageTest = project.addTask('test:run-package', {
  description: 'Build the chronos-training wheel (uv build), install it in a fresh venv, run its pytest suite against moto (chronos-training/tests/)',
  exec: 'bash scripts/test-run-package.sh',
  receiveArgs: true,
});

// Compliance scanners (pinned, from PyPI) over every template the integ app synthesizes.
const scan = project.addTask('scan', {
  description: 'cfn-lint and checkov over the sample app (dev, stage, prod) and the integ test-case templates',
  exec: 'bash scripts/scan/run.sh',
});
// Every task that synthesizes the sample app or the integ cases outside `build` and `test` (whose `bundle` makes it)
// first copies the Python run package the keeper's Lambda runs into assets/keeper/ (a copy: a second or less).
for (const name of ['integ', 'synth', 'deploy:local', 'test:e2e', 'scan']) {
  project.tasks.tryFind(name)!.prependSpawn(bundleKeeper);
}
// ---------------------------------------------------------------------------
// `ci`: every leg of `build` and `test` (read from those tasks here, so a step added to either becomes a leg
// too), the Python package, the artifact checks, the publish rehearsal, the scanners and the end-to-end tests.
// Each leg runs through scripts/ci/leg.js, which records its wall time; the table is printed at the end, or
// at the first failing leg (README "Development", docs/DEVELOPMENT.md). On 2 cores the legs run in two lanes
// where they do not depend on each other; each leg makes (or links from the machine's tool cache) the tool
// environments it uses (uv, the moto, scanner and release venvs, verdaccio), under a lock per environment.
// ---------------------------------------------------------------------------
const ci = project.addTask('ci', {
  description: 'The whole test suite, as CI runs it, in three lanes; ends with a per-leg wall-time table (scripts/ci/leg.js)',
  env: { CI_LEGS_FILE: '.tools/ci-legs.tsv' },
});
type Step = { spawn?: string; exec?: string; execArgs?: string[]; args?: string[] };
const legCommand = (step: Step): string => {
  if (step.spawn) return ['projen', step.spawn, ...(step.args ?? [])].join(' ');
  if (step.execArgs) return step.execArgs.map(a => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, '\'\\\'\'')}'`)).join(' ');
  if (step.exec) return step.exec;
  throw new Error(`ci: cannot run step ${JSON.stringify(step)} as a leg`);
};
const legName = (step: Step): string => step.spawn ?? (step.execArgs ?? step.exec!.split(' '))[0];
// build's steps, with test's expanded; a task that an earlier step already spawns is not run again (test's
// `bundle`, there for `npx projen test` on a fresh clone, is pre-compile's).
const spawnedBy = (name: string): string[] =>
  [name, ...(project.tasks.tryFind(name)?.steps ?? []).flatMap(st => (st.spawn ? spawnedBy(st.spawn) : []))];
const buildLegs = new Map<string, string>();
const ran = new Set<string>();
for (const step of project.buildTask.steps) {
  for (const st of step.spawn === project.testTask.name ? project.testTask.steps : [step]) {
    if (st.spawn && ran.has(st.spawn)) continue;
    if (st.spawn) spawnedBy(st.spawn).forEach(n => ran.add(n));
    buildLegs.set(legName(st), legCommand(st));
  }
}
// TypeScript is type-checked once, by the typecheck leg (every file not shipped); ts-node then only transpiles
// in the legs that run the sample app or the integ cases (the same files).
const transpileOnly = (command: string) => `TS_NODE_TRANSPILE_ONLY=true ${command}`;
const take = (name: string, wrap: (c: string) => string = c => c): [string, string] => {
  const command = buildLegs.get(name);
  if (command === undefined) throw new Error(`ci: build has no step ${name}`);
  buildLegs.delete(name);
  return [name, wrap(command)];
};
const leg = (name: string, command: string) => ci.exec(`node scripts/ci/leg.js run ${name} -- ${command}`);
const lanes = (...plan: Array<Array<[string, string]>>) => {
  const json = JSON.stringify(plan);
  if (json.includes('\'')) throw new Error(`ci: a lane command has a single quote: ${json}`);
  ci.exec(`node scripts/ci/leg.js lanes '${json}'`);
};
const packagePython = project.tasks.tryFind('package:python')!;
// The construct tests against the newest aws-cdk-lib 2.x in the registry, beside the pinned one (a leg of the jest lane).
const cdkLatest = project.addTask('test:cdk-latest', {
  description: 'The construct tests against the newest aws-cdk-lib 2.x and constructs 10.x in the npm registry (installed into the tool cache; node_modules untouched)',
  exec: 'bash scripts/ci/cdk-latest.sh',
  receiveArgs: true,
});
// The hosted build (build.yml) runs it after `npx projen build` too (docs/DEVELOPMENT.md, "CI: hosted and local").
project.buildWorkflow!.addPostBuildSteps({ name: 'The construct tests against the newest aws-cdk-lib 2.x', run: `npx projen ${cdkLatest.name}` });
ci.exec('node scripts/ci/leg.js start');
leg(...take('default'));
leg(...take('pre-compile'));
// jsii rewrites tsconfig.json as it starts: eslint and tsc read it only after that (scripts/ci/after-tsconfig.js).
lanes(
  [take('compile')],
  [take('eslint', c => `node scripts/ci/after-tsconfig.js ${c}`)],
);
// Every TypeScript file that is not shipped, type-checked once; no leg waits for it (the last of the package lane).
const typecheck: [string, string] = ['typecheck', 'tsc --noEmit -p scripts/ci/tsconfig.typecheck.json'];
// The package is built once: the npm tarball (package; with CI=true projen packs js only) and the wheel, which
// release:artifacts and release:local --fast check and publish as they are.
const integLeg = take('integ', transpileOnly);
const jestLeg = take('jest');
const packageLane: Array<[string, string]> = [take('post-compile'), take('compat'), take('package'),
  [packagePython.name, `projen ${packagePython.name}`], [artifacts.name, `projen ${artifacts.name}`],
  // The Python suite against this build's wheel, a leg of its own (the rehearsal runs it again against the package
  // installed by name): if the rehearsal stops running it, CI still does (test/release/ci-legs.test.ts).
  ['test:python', 'projen test:python']];
// Any other step of build or test, in its order, before the lanes.
for (const [name, command] of buildLegs) leg(name, command);
// Four lanes on 2 cores: the unit tests and the integ snapshots; beside them the
// package, built once, and as soon as it exists the fast publish rehearsal (this build's dist/ published to
// loopback registries and installed by name, where the README's TypeScript examples and the Python test suite run;
// a breaking version refused); and, in two lanes, the tests of processes on the local emulator, which mostly wait
// on timers, servers and child processes: the run agent's scenarios and the run package's suite (the launcher), then the scanners; the whole
// run loop and the deploy e2e. The typecheck ends the package lane, the shortest since its venvs and translations
// come from the tool cache. The package lane is a chain of CPU-bound steps that the rehearsal waits for, so the
// other lanes run at a lower CPU priority (nice 5, as the typecheck does) and take the CPU whenever it waits.
const niced = ([name, command]: string[]): [string, string] =>
  [name, command.replace(/^((?:\w+=\S+ )*)/, '$1nice -n 5 ')];
lanes(
  [jestLeg, integLeg, [cdkLatest.name, `projen ${cdkLatest.name}`]].map(niced),
  [...packageLane, [rehearsal.name, `projen ${rehearsal.name} --fast`], niced(typecheck)],
  // CI=true: the agent's scenarios must run under Python 3.9 (scripts/test-agent.sh installs it with uv).
  [['test:agent', 'CI=true projen test:agent'], [runPackageTest.name, `projen ${runPackageTest.name}`],
    [scan.name, transpileOnly(`projen ${scan.name}`)]].map(niced),
  [[runLoopTest.name, `projen ${runLoopTest.name}`], [e2e.name, transpileOnly(`projen ${e2e.name}`)],
    [agentSlowTest.name, `CI=true projen ${agentSlowTest.name}`]].map(niced),
);
leg('generated-files', '\'git diff --exit-code -- . ":(exclude)package-lock.json" || (echo "Generated files (API.md, projen files) are out of date: run npx projen build and commit" >&2; exit 1)\'');
// node_modules shares its files with the tool cache's tree (scripts/npm-ci.sh): nothing in the run may have written one.
leg('node_modules-intact', 'bash scripts/npm-ci.sh --check');
ci.exec('node scripts/ci/leg.js report');


// The inner loop: unit tests and lint, no compile, package or integ (seconds to a minute).
project.addTask('test:fast', {
  description: 'The inner loop: bundle, jest (only the tests related to changed files with -o, or a path) and eslint',
  steps: [
    { spawn: 'bundle' },
    { exec: 'jest --passWithNoTests', receiveArgs: true },
    { spawn: 'eslint' },
  ],
});

// Last of `bundle` (after every bundle step, wherever it is added above): the license notices of what each bundle in
// assets/ contains, beside it (scripts/release/third-party-notices.js; check_artifacts.py checks they are shipped).
project.tasks.tryFind('bundle')!.exec('node scripts/release/third-party-notices.js');

project.synth();
