import { App, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';

/** A concrete environment for tests that need literal account and region values. */
export const TEST_ENV = { account: '123456789012', region: 'us-east-1' };

/** A fresh app and an environment-agnostic stack. */
export function agnosticStack(context: Record<string, unknown> = {}): Stack {
  const app = new App({ context });
  return new Stack(app, 'TestStack');
}

/** A fresh app and a stack with a literal account and region. */
export function concreteStack(context: Record<string, unknown> = {}): Stack {
  const app = new App({ context });
  return new Stack(app, 'TestStack', { env: TEST_ENV });
}

/** Resources of one type in a template, as an array of their definitions. */
export function resourcesOf(template: Template, type: string): any[] {
  return Object.values(template.findResources(type));
}

/** The single resource of a type (fails if there is not exactly one). */
export function onlyResource(template: Template, type: string): any {
  const all = resourcesOf(template, type);
  expect(all).toHaveLength(1);
  return all[0];
}

/** Tags of a resource definition as a plain object (a list of Key/Value pairs, or a map as on SSM parameters). */
export function tagsOf(resource: any): Record<string, string> {
  const tags = resource.Properties?.Tags ?? [];
  return Array.isArray(tags) ? Object.fromEntries(tags.map((t: { Key: string; Value: string }) => [t.Key, t.Value])) : tags;
}

/** Warning messages annotated anywhere in a stack. */
export function warnings(stack: Stack): string[] {
  return Annotations.fromStack(stack).findWarning('*', Match.anyValue()).map(w => String(w.entry.data));
}

/** Findings cdk-nag's AwsSolutions pack reports on a stack after acknowledgments, as `rule[finding] at path`. */
export function nagFindings(stack: Stack): string[] {
  // Imported here so that only the tests that scan load cdk-nag.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { AwsSolutionsChecks } = require('cdk-nag');
  const report = new AwsSolutionsChecks(stack).validateScope(stack);
  return report.violations.flatMap((v: any) => v.violatingResources.map((r: any) => `${v.ruleName} at ${r.constructPath}`));
}
