/*
 * Issue 31: the README's member lists match the API. The lists are read from README.md and compared with the jsii
 * assembly (`.jsii`, written by `projen compile`), the same API that API.md documents, so a member added to or
 * removed from the foundation or its imported form fails here until the README says so.
 */
import * as fs from 'fs';
import * as path from 'path';

const ROOT = path.join(__dirname, '..', '..');
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

interface JsiiType {
  readonly properties?: Array<{ readonly name: string; readonly static?: boolean }>;
  readonly methods?: Array<{ readonly name: string; readonly static?: boolean }>;
  readonly interfaces?: string[];
}
function assembly(): Record<string, JsiiType> {
  return JSON.parse(fs.readFileSync(path.join(ROOT, '.jsii'), 'utf8')).types;
}
const fqn = (name: string) => `@chronos/training-infra.${name}`;

/** Instance members of a type of this library and of the library interfaces it extends. */
function membersOf(types: Record<string, JsiiType>, name: string): string[] {
  const type = types[name];
  if (!type) return [];
  return [
    ...(type.properties ?? []).filter(p => !p.static).map(p => p.name),
    ...(type.methods ?? []).filter(m => !m.static).map(m => m.name),
    ...(type.interfaces ?? []).flatMap(i => membersOf(types, i)),
  ];
}

/** The backticked member names (`vpc`, `grantLaunch`) in the README text from `start` to `end`. */
function listed(start: string, end: string): string[] {
  const from = README.indexOf(start);
  expect(from).toBeGreaterThanOrEqual(0);
  const to = README.indexOf(end, from);
  expect(to).toBeGreaterThan(from);
  return [...README.slice(from + start.length, to).matchAll(/`([a-z][A-Za-z0-9]*)`/g)].map(m => m[1]);
}

const sorted = (names: string[]) => [...new Set(names)].sort();

describe('the README\'s member lists match the API', () => {
  test('ChronosTrainingFoundation: every member is listed, and every listed name is a member (or one of a member construct)', () => {
    const types = assembly();
    const members = membersOf(types, fqn('ChronosTrainingFoundation'));
    const names = listed('The members are aws-cdk-lib interfaces:', '[API.md](API.md)');
    expect(sorted(members.filter(m => !names.includes(m)))).toEqual([]);
    // `network` and `trainingBucket` are the constructs; the README names some of their members beside them.
    const nested = [...membersOf(types, fqn('TrainingNetwork')), ...membersOf(types, fqn('TrainingBucket'))];
    expect(sorted(names.filter(n => !members.includes(n) && !nested.includes(n)))).toEqual([]);
  });

  test('fromEnvironment: the listed members are exactly those of IChronosTrainingFoundation', () => {
    const types = assembly();
    // IConnectable (aws-cdk-lib) adds `connections`, its only member; IConstruct adds `node`, not listed.
    const members = [...membersOf(types, fqn('IChronosTrainingFoundation')), 'connections'];
    const names = listed('returns an `IChronosTrainingFoundation`', 'built from the SSM parameters');
    expect(sorted(names)).toEqual(sorted(members));
  });
});
