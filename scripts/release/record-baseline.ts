// `npx projen release:baseline`: records the last released version in release/baseline/, which
// the breaking-change guards compare every build with. Run it after a release, on the release's
// packed artifact (dist/js/*.tgz, the file that was published):
//   - .jsii and package.json from the tarball (jsii-diff's directory mode reads those two);
//   - template.json: ChronosTrainingStack for dev in 123456789012/us-east-1, synthesized with the
//     tarball's own lib/ (test/release/default-template.ts);
// and empties the allow lists in release/, which are relative to the baseline.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { synthDefaultTemplate } from '../../test/release/default-template';

const root = path.resolve(__dirname, '..', '..');
const distJs = path.join(root, 'dist', 'js');
const tarballs = fs.existsSync(distJs) ? fs.readdirSync(distJs).filter(f => f.endsWith('.tgz')) : [];
if (tarballs.length !== 1) {
  throw new Error(`release:baseline needs exactly one tarball in dist/js (found ${tarballs.length}): run \`npx projen release\` or \`npx projen package:js\``);
}

// Unpack inside the project so that the tarball's lib/ resolves aws-cdk-lib from ./node_modules.
fs.mkdirSync(path.join(root, '.tools'), { recursive: true });
const unpacked = fs.mkdtempSync(path.join(root, '.tools', 'baseline-'));
try {
  execFileSync('tar', ['xzf', path.join(distJs, tarballs[0]), '-C', unpacked]);
  const pkg = path.join(unpacked, 'package');
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the released lib/, known only at run time
  const lib = require(path.join(pkg, 'lib'));
  const template = synthDefaultTemplate(lib.ChronosTrainingStack);

  const out = path.join(root, 'release', 'baseline');
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });
  fs.copyFileSync(path.join(pkg, '.jsii'), path.join(out, '.jsii'));
  fs.copyFileSync(path.join(pkg, 'package.json'), path.join(out, 'package.json'));
  fs.writeFileSync(path.join(out, 'template.json'), JSON.stringify(template, undefined, 2) + '\n');

  const header = (what: string, example: string) =>
    `# ${what} intended since the baseline (release/baseline/), one key per line, as the guard prints it.\n`
    + `# Emptied by \`npx projen release:baseline\`. Example:\n# ${example}\n`;
  fs.writeFileSync(path.join(root, 'release', 'allowed-breaking-changes.txt'),
    header('Public API breaks (jsii-diff keys)', 'removed:@chronos/training-infra.TrainingBucket.environment'));
  fs.writeFileSync(path.join(root, 'release', 'allowed-stateful-changes.txt'),
    header('Stateful-resource replacements', 'replaced:FoundationNetworkVpcXXXXXXXX.CidrBlock'));

  const version = JSON.parse(fs.readFileSync(path.join(out, 'package.json'), 'utf8')).version;
  console.log(`release:baseline: recorded ${tarballs[0]} (version ${version}) in release/baseline/: `
    + `.jsii, package.json, template.json (${Object.keys(template.Resources).length} resources)`);
} finally {
  fs.rmSync(unpacked, { recursive: true, force: true });
}
