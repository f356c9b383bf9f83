import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { App, CfnElement } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { Template } from 'aws-cdk-lib/assertions';
import type { CloudAssembly } from 'aws-cdk-lib/cx-api';
import type { AwsSolutionsChecks } from 'cdk-nag';
import { addComplianceChecks, buildApp } from '../../lib/app';
import type { FunctionId, PayplaneStack } from '../../lib/payplane-stack';
import type { Stage } from '../../lib/stage-config';

/** One synthesized stage, shared by every test of a file (synth is the slow part: never once per test). */
export interface Synthesized {
  readonly stage: Stage;
  readonly app: App;
  readonly stack: PayplaneStack;
  readonly assembly: CloudAssembly;
  readonly template: Template;
  /** The cdk-nag pack registered on the app, exactly as `bin/payplane.ts` registers it. */
  readonly checks: AwsSolutionsChecks;
}

const cache = new Map<Stage, Synthesized>();
// A stage whose synth threw: every later test of it fails at once with the same finding, instead of synthesizing
// again (a cdk-nag finding would otherwise cost one full synth per test, hours for the tier).
const failed = new Map<Stage, unknown>();
const outdirs: string[] = [];

/**
 * Builds and synthesizes a stage once per test file, without bundling (no esbuild), with the same
 * validation as the CLI: CloudFormation default rules as errors, and the AwsSolutions pack. A finding that
 * fails synth throws here, with the report in the message.
 */
export function synth(stage: Stage): Synthesized {
  const cached = cache.get(stage);
  if (cached) return cached;
  if (failed.has(stage)) throw failed.get(stage);
  const outdir = mkdtempSync(join(tmpdir(), `payplane-infra-${stage}-`));
  outdirs.push(outdir);
  const { app, stack } = buildApp({ stage, bundling: false, outdir });
  const checks = addComplianceChecks(app);
  let assembly: CloudAssembly;
  try {
    assembly = app.synth();
  } catch (error) {
    failed.set(stage, error);
    throw error;
  }
  const synthesized: Synthesized = { stage, app, stack, assembly, template: Template.fromStack(stack), checks };
  cache.set(stage, synthesized);
  return synthesized;
}

/**
 * Removes the cloud assemblies written by `synth` when the worker exits: the infra tier runs its files without
 * isolation (vitest.config.ts), so a later file in the same worker reuses the synthesized stages.
 */
export function cleanUp(): void {
  if (cleanUpRegistered) return;
  cleanUpRegistered = true;
  process.once('exit', () => {
    for (const dir of outdirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
}
let cleanUpRegistered = false;

/** Logical id of a construct's CloudFormation resource (its default child, or itself). */
export function logicalId(construct: IConstruct): string {
  const element = (construct.node.defaultChild ?? construct) as CfnElement;
  return element.stack.getLogicalId(element);
}

export interface Statement {
  readonly Effect: string;
  readonly Action: string | string[];
  readonly Resource: unknown;
  readonly Condition?: Record<string, Record<string, unknown>>;
}

/** Every statement of every inline and customer-managed policy attached to a function's execution role. */
export function roleStatements(s: Synthesized, id: FunctionId): Statement[] {
  const roleId = logicalId(s.stack.functions[id].role);
  const policies = {
    ...s.template.findResources('AWS::IAM::Policy'),
    ...s.template.findResources('AWS::IAM::ManagedPolicy'),
  };
  return Object.values(policies)
    .filter((p) => JSON.stringify(p.Properties.Roles ?? []).includes(`"${roleId}"`))
    .flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[]);
}

export const actionsOf = (statement: Statement): string[] =>
  Array.isArray(statement.Action) ? statement.Action : [statement.Action];

/** Whether a statement's resources reference the given logical id. */
export const references = (statement: Statement, id: string): boolean =>
  JSON.stringify(statement.Resource).includes(`"${id}"`);
