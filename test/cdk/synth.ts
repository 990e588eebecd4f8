import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { SummaryJobsStack, type SummaryJobsStackProps } from '../../lib/summary-jobs-stack';

// The tests read the template only: skip asset bundling and CDK's built-in
// CloudFormation validation (about 1.7 s per synth).
process.env.CDK_VALIDATION = 'false';

export function testApp(): App {
  return new App({ context: { 'aws:cdk:bundling-stacks': [] } });
}

export function synthStack(props: SummaryJobsStackProps = {}, id = 'Test'): { stack: SummaryJobsStack; template: Template } {
  const stack = new SummaryJobsStack(testApp(), id, props);
  return { stack, template: Template.fromStack(stack) };
}

export interface Resource {
  Type: string;
  Properties: Record<string, any>;
  DependsOn?: string[];
  DeletionPolicy?: string;
}

/** Resources of a type, by logical id. */
export function resourcesOf(template: Template, type: string): Array<[string, Resource]> {
  return Object.entries(template.findResources(type)) as Array<[string, Resource]>;
}

/** The one resource of a type; fails when there are none or several. */
export function onlyResource(template: Template, type: string): [string, Resource] {
  const all = resourcesOf(template, type);
  if (all.length !== 1) throw new Error(`expected one ${type}, found ${all.length}`);
  return all[0]!;
}

/** The service Lambda whose logical id starts with `prefix` (Api, Processor, Migrations). */
export function serviceFunction(template: Template, prefix: string): [string, Resource] {
  const found = resourcesOf(template, 'AWS::Lambda::Function').filter(([id, fn]) => id.startsWith(prefix) && fn.Properties.Environment?.Variables?.DB_SECRET_ARN);
  if (found.length !== 1) throw new Error(`expected one service function ${prefix}*, found ${found.length}`);
  return found[0]!;
}

export interface PolicyStatement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
}

/** Statements of the IAM policies attached to a role (by the role's logical id). */
export function statementsOfRole(template: Template, roleLogicalId: string): PolicyStatement[] {
  return resourcesOf(template, 'AWS::IAM::Policy')
    .filter(([, p]) => (p.Properties.Roles as Array<{ Ref?: string }>).some((r) => r.Ref === roleLogicalId))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as PolicyStatement[]);
}

export function allStatements(template: Template): PolicyStatement[] {
  return resourcesOf(template, 'AWS::IAM::Policy').flatMap(([, p]) => p.Properties.PolicyDocument.Statement as PolicyStatement[]);
}

export const actionsOf = (s: PolicyStatement): string[] => [s.Action].flat();
export const resourcesOfStatement = (s: PolicyStatement): unknown[] => [s.Resource].flat();
