import * as fs from 'fs';
import * as path from 'path';
import { synthDefaultTemplate } from './default-template';
import { CfnTemplate, parseAllowedKeys, statefulViolations } from './stateful-diff';

const RELEASE_DIR = path.join(__dirname, '..', '..', 'release');
const baseline: CfnTemplate = JSON.parse(fs.readFileSync(path.join(RELEASE_DIR, 'baseline', 'template.json'), 'utf8'));
const allowed = parseAllowedKeys(fs.readFileSync(path.join(RELEASE_DIR, 'allowed-stateful-changes.txt'), 'utf8'));

/** The logical ID of the only resource of a type in the baseline. */
function onlyLogicalId(template: CfnTemplate, type: string): string {
  const ids = Object.entries(template.Resources ?? {}).filter(([, r]) => r.Type === type).map(([id]) => id);
  expect(ids).toHaveLength(1);
  return ids[0];
}

function copy(template: CfnTemplate): any {
  return JSON.parse(JSON.stringify(template));
}

describe('breaking-change guard: stateful resources of the default template', () => {
  test('the current build deletes or replaces no stateful resource of the last release (release/baseline/template.json)', () => {
    const violations = statefulViolations(baseline, synthDefaultTemplate()).filter(v => !allowed.has(v.key));
    // On failure: an intended replacement needs its key in release/allowed-stateful-changes.txt and a major release.
    expect(violations.map(v => `${v.key}: ${v.message}`)).toEqual([]);
  });

  test('the baseline covers every stateful type of the foundation', () => {
    const types = Object.values(baseline.Resources ?? {}).map(r => r.Type);
    for (const type of ['AWS::S3::Bucket', 'AWS::EC2::VPC', 'AWS::EC2::Subnet', 'AWS::EC2::SecurityGroup', 'AWS::IAM::Role', 'AWS::IAM::InstanceProfile']) {
      expect(types).toContain(type);
    }
  });

  test('an unchanged template has no violations', () => {
    expect(statefulViolations(baseline, copy(baseline))).toEqual([]);
  });

  test('reports a renamed bucket logical ID and a changed VPC CIDR', () => {
    const bucket = onlyLogicalId(baseline, 'AWS::S3::Bucket');
    const vpc = onlyLogicalId(baseline, 'AWS::EC2::VPC');
    const mutated = copy(baseline);
    mutated.Resources[`${bucket}Renamed`] = mutated.Resources[bucket];
    delete mutated.Resources[bucket];
    mutated.Resources[vpc].Properties.CidrBlock = '10.99.0.0/16';

    expect(statefulViolations(baseline, mutated).map(v => v.key).sort()).toEqual([
      `removed:${bucket}`,
      `replaced:${vpc}.CidrBlock`,
    ].sort());
  });

  test.each([
    ['AWS::S3::Bucket', 'BucketName', 'chronos-training-other'],
    ['AWS::EC2::Subnet', 'AvailabilityZone', 'us-east-1f'],
    ['AWS::EC2::Subnet', 'CidrBlock', '10.0.9.0/24'],
    ['AWS::EC2::SecurityGroup', 'GroupDescription', 'changed'],
    ['AWS::IAM::Role', 'RoleName', 'SomeRole'],
    ['AWS::IAM::InstanceProfile', 'InstanceProfileName', 'SomeProfile'],
  ])('reports a changed replacement property: %s %s', (type, property, value) => {
    const id = onlyLogicalId(baseline, type);
    const mutated = copy(baseline);
    mutated.Resources[id].Properties[property] = value;
    const violations = statefulViolations(baseline, mutated);
    expect(violations.map(v => v.key)).toEqual([`replaced:${id}.${property}`]);
    expect(violations[0].message).toContain(value);
  });

  test('reports a bucket that is no longer retained, and a retained resource of any type that disappears', () => {
    const bucket = onlyLogicalId(baseline, 'AWS::S3::Bucket');
    const withRetainedTopic = copy(baseline);
    withRetainedTopic.Resources.RetainedTopic = { Type: 'AWS::SNS::Topic', DeletionPolicy: 'Retain' };
    const mutated = copy(baseline);
    mutated.Resources[bucket].DeletionPolicy = 'Delete';

    expect(statefulViolations(withRetainedTopic, mutated).map(v => v.key).sort()).toEqual(
      ['removed:RetainedTopic', `retain:${bucket}`].sort());
  });

  test('ignores changes that replace nothing stateful: tags, policies, new resources', () => {
    const bucket = onlyLogicalId(baseline, 'AWS::S3::Bucket');
    const role = onlyLogicalId(baseline, 'AWS::IAM::Role');
    const mutated = copy(baseline);
    mutated.Resources[bucket].Properties.Tags = [{ Key: 'Owner', Value: 'someone' }];
    mutated.Resources[role].Properties.Policies = [];
    mutated.Resources.NewParameter = { Type: 'AWS::SSM::Parameter', Properties: { Type: 'String', Value: 'x' } };
    expect(statefulViolations(baseline, mutated)).toEqual([]);
  });

  test('reads allow-list keys, skipping comments and blank lines', () => {
    expect([...parseAllowedKeys('# comment\n\n removed:A \nreplaced:B.CidrBlock\n')]).toEqual(['removed:A', 'replaced:B.CidrBlock']);
  });
});
