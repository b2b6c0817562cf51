/*
 * The aws-cdk-lib the tests run with: the pinned one (package.json), or the one scripts/ci/cdk-latest.sh maps every
 * import to (CDK_EXPECTED_VERSION, the newest 2.x in the registry), one copy shared with constructs.
 */
import * as fs from 'fs';
import * as path from 'path';
import { App, Stack } from 'aws-cdk-lib';
import { Construct } from 'constructs';

test('the tests run with the expected aws-cdk-lib, and its constructs are the tests\' constructs', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const version = require('aws-cdk-lib/package.json').version;
  const pinned = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')).devDependencies['aws-cdk-lib'];
  expect(version).toBe(process.env.CDK_EXPECTED_VERSION ?? pinned);
  const stack = new Stack(new App(), 'S');
  expect(new Construct(stack, 'C').node.path).toBe('S/C');
});
