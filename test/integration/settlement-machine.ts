import { randomUUID } from 'node:crypto';
import { Template } from 'aws-cdk-lib/assertions';
import type { CfnElement } from 'aws-cdk-lib';
import { buildApp } from '../../lib/app';
import type { SettlementFunctionId } from '../../lib/payplane-stack';
import * as tasks from '../../functions/settlements/tasks';
import { LocalStepFunctions, type Execution } from '../../local/stepfunctions';
import { LocalStack, type CfnTemplate } from '../../local/template';
import type { InvokeResult } from '../../local/lambda';

/**
 * The synthesized settlement state machine, run in-process by the local Step Functions runner (local/stepfunctions.ts)
 * with its Task states bound to the Task functions, called in this process (no Lambda workers, no HTTP) exactly as
 * the one-line handlers (functions/handlers/settlement-*.ts) call them, but with the case's deps (a clock past the
 * settle horizon, the case's platform accounts, the payout rail): the seeded fault runs and the volume test drive it.
 *
 * `fault` may kill a step at its boundary, as a Lambda environment dies: `before` (the handler never runs) or
 * `after` (it ran and committed; its result is lost). Either way the task fails with `Runtime.ExitError`.
 */
export type Step = 'Prepare' | 'Settle' | 'Payout' | 'Compensate' | 'Report' | 'Summary';
export type FaultAt = (step: Step, payload: unknown) => 'before' | 'after' | undefined;

type Deps = tasks.TaskDeps;
/** What each handler does with its event (functions/handlers/settlement-<step>.ts), with `deps`. */
const STEPS: Record<Step, (event: any, deps: Deps) => Promise<unknown>> = {
  Prepare: ({ run, run_id }, deps) => tasks.prepare({ cutoff: run.cutoff, merchant_id: run.merchant_id, next: run.next, run_id, actor: run.actor, request_id: run.request_id }, deps),
  Settle: (item, deps) => tasks.settle(item, deps),
  Payout: (input, deps) => tasks.payout(input, deps),
  Compensate: (input, deps) => tasks.compensate(input, deps),
  Report: (input, deps) => tasks.report(input, deps),
  Summary: (input, deps) => tasks.summarize(input, deps),
};

let template: { json: CfnTemplate; steps: Map<string, Step> } | undefined;
/** The test stage's template (no bundling, no compliance plugins: a few seconds), once per process. */
export function testTemplate() {
  if (template) return template;
  const { stack } = buildApp({ stage: 'test', bundling: false });
  const json = Template.fromStack(stack).toJSON() as CfnTemplate;
  const steps = new Map<string, Step>();
  for (const [id, fn] of Object.entries(stack.settlement.functions) as [SettlementFunctionId, { fn: { node: { defaultChild?: unknown } } }][]) {
    const element = fn.fn.node.defaultChild as CfnElement;
    steps.set(element.stack.getLogicalId(element), id.slice('Settlement'.length) as Step);
  }
  return (template = { json, steps });
}

export interface InProcessMachine {
  sfn: LocalStepFunctions;
  /** Starts an execution and waits for it to close. */
  run(input: Record<string, unknown>, name?: string): Promise<Execution>;
  /** Invocations per step so far. */
  invocations: Record<Step, number>;
}

export function inProcessMachine(options: { deps: () => Deps; fault?: FaultAt; timeScale?: number }): InProcessMachine {
  const { json, steps } = testTemplate();
  const stack = new LocalStack(structuredClone(json), { stackName: 'Payplane-test' });
  // Retry intervals (2 s, 4 s, 8 s) divided by the time scale: a transient payout failure costs milliseconds.
  const sfn = new LocalStepFunctions(stack, { timeScale: options.timeScale ?? 1000 });
  const invocations: Record<Step, number> = { Prepare: 0, Settle: 0, Payout: 0, Compensate: 0, Report: 0, Summary: 0 };
  sfn.bindInvoker(async (logicalId, payload): Promise<InvokeResult> => {
    const step = steps.get(logicalId);
    const started = performance.now();
    const requestId = randomUUID();
    const failed = (errorType: string, errorMessage: string): InvokeResult => ({ ok: false, error: { errorType, errorMessage }, requestId, durationMs: performance.now() - started });
    if (!step) return failed('Lambda.ResourceNotFoundException', `No settlement step for ${logicalId}`);
    invocations[step]++;
    const fault = options.fault?.(step, payload);
    if (fault === 'before') return failed('Runtime.ExitError', `RequestId: ${requestId} Error: Runtime exited (fault before ${step})`);
    try {
      const result = await STEPS[step](structuredClone(payload), options.deps());
      if (fault === 'after') return failed('Runtime.ExitError', `RequestId: ${requestId} Error: Runtime exited (fault after ${step})`);
      return { ok: true, payload: result === undefined ? null : JSON.parse(JSON.stringify(result)), requestId, durationMs: performance.now() - started };
    } catch (error) {
      const e = error as Error;
      return failed(e.name && e.name !== 'Error' ? e.name : e.constructor?.name ?? 'Error', e.message);
    }
  });
  const machine = [...sfn.machines.values()].find((m) => m.logicalId.startsWith('SettlementStateMachine'))!;
  return {
    sfn,
    invocations,
    run: async (input, name = `run-${randomUUID().slice(0, 8)}`) => {
      const { executionArn } = await sfn.startExecution({ stateMachineArn: machine.arn, name, input: JSON.stringify(input) });
      return sfn.waitFor(executionArn);
    },
  };
}
