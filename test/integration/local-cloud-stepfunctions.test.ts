import { DescribeExecutionCommand, ExecutionAlreadyExists, GetExecutionHistoryCommand, ListExecutionsCommand, SFNClient, StartExecutionCommand, type HistoryEvent } from '@aws-sdk/client-sfn';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startLocalCloud, type LocalCloud } from '../../local/cloud';
import { sfnFixture } from './fixtures/sfn/app';

/**
 * The local Step Functions and EventBridge Scheduler running a synthesized CDK app (test/integration/fixtures/sfn,
 * synthesized once for this file): executions started and read through @aws-sdk/client-sfn, tasks bound to the
 * fixture's functions through the Lambda runtime, IAM from the template for callers, state machine roles and
 * schedule roles. Time scale 10: the Retry intervals (1 s, 2 s) take 100 ms and 200 ms.
 */

let cloud: LocalCloud;
let sfn: SFNClient;
let pipeline: string;
let denied: string;

beforeAll(async () => {
  cloud = await startLocalCloud({
    assemblyDir: sfnFixture(),
    port: 0,
    inMemory: true,
    quiet: true,
    schedules: false,
    seed: false,
    timeScale: 10,
    dynamodbEndpoint: inject('localServices').endpoints.dynamodb,
  });
  // The operator's principal has no states:* grant; the administrator stands for a caller that has them.
  sfn = new SFNClient({ region: cloud.region, endpoint: cloud.endpoints.sfn, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  pipeline = Object.entries(cloud.stateMachines).find(([id]) => id.startsWith('Pipeline'))![1];
  denied = Object.entries(cloud.stateMachines).find(([id]) => id.startsWith('Denied'))![1];
});
afterAll(async () => {
  await cloud?.stop();
});

/** Polls DescribeExecution until the execution has closed (the API has no wait). */
async function finished(executionArn: string) {
  for (;;) {
    const d = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    if (d.status !== 'RUNNING') return d;
    await new Promise((r) => setTimeout(r, 25));
  }
}
async function history(executionArn: string): Promise<HistoryEvent[]> {
  const events: HistoryEvent[] = [];
  let nextToken: string | undefined;
  do {
    const page = await sfn.send(new GetExecutionHistoryCommand({ executionArn, nextToken, maxResults: 100 }));
    events.push(...(page.events ?? []));
    nextToken = page.nextToken;
  } while (nextToken);
  return events;
}
/** A schedule's logical id (CDK adds a hash) from the admin listing. */
async function scheduleId(prefix: string): Promise<string> {
  const body = (await (await fetch(`${cloud.endpoints.admin}/__schedules`)).json()) as { rules: { logicalId: string }[] };
  return body.rules.find((r) => r.logicalId.startsWith(prefix))!.logicalId;
}
const run = (input: Record<string, unknown>) => ({ items: [1, 2, 3], mode: 'finish', failTimes: 0, permanent: false, source: 'test', ...input });

describe('local Step Functions: the synthesized definition runs with its tasks bound to the functions', () => {
  it('runs Task → Map (MaxConcurrency 2) → Choice → Task → Succeed, and records AWS history event types', async () => {
    // Act
    const { executionArn } = await sfn.send(new StartExecutionCommand({ stateMachineArn: pipeline, input: JSON.stringify(run({})) }));
    const done = await finished(executionArn!);
    // Assess: 1+2+3 doubled is 12, in one attempt.
    expect(done.status).toBe('SUCCEEDED');
    expect(JSON.parse(done.output!)).toEqual({ total: 12, count: 3, attempts: 1 });
    const events = await history(executionArn!);
    const types = events.map((e) => e.type);
    expect(types[0]).toBe('ExecutionStarted');
    expect(types.at(-1)).toBe('ExecutionSucceeded');
    expect(types.slice(1, 6)).toEqual(['TaskStateEntered', 'TaskScheduled', 'TaskStarted', 'TaskSucceeded', 'TaskStateExited']);
    expect(types.filter((t) => t === 'MapIterationStarted')).toHaveLength(3);
    expect(types.filter((t) => t === 'LambdaFunctionSucceeded')).toHaveLength(3);
    expect(types).toContain('ChoiceStateEntered');
    expect(types).toContain('SucceedStateEntered');
    expect(events[1]!.stateEnteredEventDetails).toMatchObject({ name: 'Prepare' });
    expect(events.map((e) => e.id)).toEqual(events.map((_, i) => i + 1));
    const listed = await sfn.send(new ListExecutionsCommand({ stateMachineArn: pipeline }));
    expect(listed.executions!.map((e) => e.executionArn)).toContain(executionArn);
  });

  it('takes the Choice branch that skips the last task', async () => {
    const { executionArn } = await sfn.send(new StartExecutionCommand({ stateMachineArn: pipeline, input: JSON.stringify(run({ mode: 'skip', items: [4] })) }));
    const done = await finished(executionArn!);
    expect(done.status).toBe('SUCCEEDED');
    expect(JSON.parse(done.output!)).toMatchObject({ mode: 'skip', doubled: [{ value: 8 }] });
  });

  it('retries a task on its custom error and shows every attempt in the history', async () => {
    const { executionArn } = await sfn.send(new StartExecutionCommand({ stateMachineArn: pipeline, input: JSON.stringify(run({ failTimes: 2 })) }));
    const done = await finished(executionArn!);
    expect(done.status).toBe('SUCCEEDED');
    expect(JSON.parse(done.output!)).toMatchObject({ total: 12, attempts: 3 });
    const finishEvents = (await history(executionArn!)).filter((e) => e.type === 'TaskFailed' || e.type === 'TaskSucceeded').slice(-3);
    expect(finishEvents.map((e) => e.type)).toEqual(['TaskFailed', 'TaskFailed', 'TaskSucceeded']);
    expect(finishEvents[0]!.taskFailedEventDetails).toMatchObject({ error: 'TransientError', resourceType: 'lambda', resource: 'invoke' });
    expect(JSON.parse(finishEvents[0]!.taskFailedEventDetails!.cause!)).toMatchObject({ errorType: 'TransientError' });
  });

  it('catches a permanent error into the Fail state: the execution fails with its error', async () => {
    const { executionArn } = await sfn.send(new StartExecutionCommand({ stateMachineArn: pipeline, input: JSON.stringify(run({ permanent: true })) }));
    const done = await finished(executionArn!);
    expect(done).toMatchObject({ status: 'FAILED', error: 'RunFailed', cause: 'The run could not finish' });
    const types = (await history(executionArn!)).map((e) => e.type);
    expect(types.slice(-3)).toEqual(['TaskStateExited', 'FailStateEntered', 'ExecutionFailed']);
  });

  it('is idempotent on the name for the same input and refuses the name for another input', async () => {
    const name = `idem-${Date.now()}`;
    const input = JSON.stringify(run({ failTimes: 1 }));
    const first = await sfn.send(new StartExecutionCommand({ stateMachineArn: pipeline, name, input }));
    const again = await sfn.send(new StartExecutionCommand({ stateMachineArn: pipeline, name, input }));
    expect(again.executionArn).toBe(first.executionArn);
    await expect(sfn.send(new StartExecutionCommand({ stateMachineArn: pipeline, name, input: JSON.stringify(run({})) }))).rejects.toBeInstanceOf(ExecutionAlreadyExists);
    await finished(first.executionArn!);
  });

  it("refuses a task whose state machine role lacks lambda:InvokeFunction (the role's name in the cause)", async () => {
    const { executionArn } = await sfn.send(new StartExecutionCommand({ stateMachineArn: denied, input: '{"value": 1}' }));
    const done = await finished(executionArn!);
    expect(done.status).toBe('FAILED');
    expect(done.error).toBe('Lambda.AWSLambdaException');
    expect(done.cause).toMatch(/assumed-role\/.*DeniedRole.* is not authorized to perform: lambda:InvokeFunction on resource: arn:aws:lambda:us-east-1:000000000000:function:/);
    expect(cloud.iamReport().principals[Object.keys(cloud.iamReport().principals).find((p) => p.startsWith('DeniedRole'))!]!.refusals[0]).toMatch(/^lambda:InvokeFunction /);
  });

  it('refuses callers without states:StartExecution (a function of the template)', async () => {
    const asFunction = new SFNClient({ region: cloud.region, endpoint: cloud.endpoints.sfn, credentials: cloud.iam.credentialsFor(Object.keys(cloud.runtime.stats()).find((id) => id.startsWith('Work'))!) });
    await expect(asFunction.send(new StartExecutionCommand({ stateMachineArn: pipeline, input: '{}' }))).rejects.toMatchObject({ name: 'AccessDeniedException', message: expect.stringMatching(/not authorized to perform: states:StartExecution/) });
  });
});

describe('EventBridge Scheduler', () => {
  it('lists the schedules with their next fire time in their time zone (02:00 Shanghai = 18:00 UTC)', async () => {
    const body = (await (await fetch(`${cloud.endpoints.admin}/__schedules`)).json()) as { rules: { logicalId: string; timeZone: string; next?: string; expression: string }[] };
    const nightly = body.rules.find((r) => r.logicalId.startsWith('Nightly'))!;
    expect(nightly).toMatchObject({ expression: 'cron(0 2 * * ? *)', timeZone: 'Asia/Shanghai' });
    expect(nightly.next).toMatch(/T18:00:00\.000Z$/);
    expect(Date.parse(nightly.next!) - Date.now()).toBeLessThanOrEqual(86_400_000);
  });

  it('fires the nightly schedule through the admin route: its role starts an execution of the state machine', async () => {
    const id = await scheduleId('Nightly');
    const fired = (await (await fetch(`${cloud.endpoints.admin}/__schedules/${id}/trigger`, { method: 'POST' })).json()) as { results: { ok: boolean; executionArn: string }[] };
    expect(fired.results[0]).toMatchObject({ ok: true, target: pipeline });
    const done = await finished(fired.results[0]!.executionArn);
    expect(done.status).toBe('SUCCEEDED');
    expect(JSON.parse(done.input!)).toMatchObject({ source: 'schedule', items: [5, 6] });
    expect(JSON.parse(done.output!)).toMatchObject({ total: 22 });
  });

  it('fires a rate() schedule at a Lambda target in its role', async () => {
    const result = (await cloud.trigger(await scheduleId('Every5Minutes'))) as { results: { ok: boolean; payload: unknown }[] };
    expect(result.results[0]).toMatchObject({ ok: true, payload: { items: [7] } });
  });
});
