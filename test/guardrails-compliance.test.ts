import { App, Duration, Stack } from 'aws-cdk-lib';
import { TrainingRunReaper } from '../src';
import { nagFindings, TEST_ENV } from './helpers';

describe('cdk-nag AwsSolutions on the guardrails', () => {
  test.each<[string, Record<string, string> | undefined]>([
    ['environment-agnostic', undefined],
    ['with a concrete account and region', TEST_ENV],
  ])('reports nothing unacknowledged on TrainingRunReaper, %s', (_name, env) => {
    const stack = new Stack(new App(), 'S', { env });
    new TrainingRunReaper(stack, 'Reaper', { environmentName: 'dev', maxRunLifetime: Duration.hours(6) });
    expect(nagFindings(stack)).toEqual([]);
  });
});
