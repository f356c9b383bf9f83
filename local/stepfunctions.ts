import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';
import { AwsJsonError, listen, readBody, sendJson } from './http';
import { INVALID_TOKEN_MESSAGE, type LocalIam, type Principal } from './iam';
import type { InvokeResult } from './lambda';
import { TemplateError, type LocalStack } from './template';

/**
 * Step Functions for the template's AWS::StepFunctions::StateMachine resources. Each definition (DefinitionString
 * or Definition, with DefinitionSubstitutions, resolved through LocalStack) runs in-process on
 * aws-local-stepfunctions 3.0.0; its Task states are bound here to the template's functions, invoked through
 * the local Lambda runtime with the state machine's role checked by local IAM (`lambda:InvokeFunction` on the
 * function ARN, as Step Functions asks in the role's name). Executions live in memory.
 *
 * API: AWS JSON 1.0 (`X-Amz-Target: AWSStepFunctions.<Op>`, what @aws-sdk/client-sfn sends) for StartExecution,
 * DescribeExecution, GetExecutionHistory, ListExecutions and StopExecution; callers need `states:<Op>` on the
 * state machine (Start, List) or execution ARN (Describe, GetExecutionHistory, Stop). Functions reach it
 * through AWS_ENDPOINT_URL_SFN. What is approximated is listed in local/README.md ("Step Functions").
 */

// aws-local-stepfunctions declares Node >= 22 and calls Promise.withResolvers (Node 22); Node 20 lacks it.
const promiseStatics = Promise as unknown as { withResolvers?: () => unknown };
promiseStatics.withResolvers ??= () => {
  let resolve!: (value: unknown) => void;
  let reject!: (reason?: unknown) => void;
  const promise = new Promise((a, b) => {
    resolve = a;
    reject = b;
  });
  return { promise, resolve, reject };
};

/** What Step Functions allows for an execution's input, a state's output and the final output. */
export const MAX_PAYLOAD_BYTES = 262_144;
/** An execution's history is capped at 25,000 events; the execution fails when it would pass it. */
export const MAX_HISTORY_EVENTS = 25_000;
/** Stands for "no timeout": AWS gives Task states none by default, the runner 60 s (setTimeout's ceiling in s). */
const NO_TASK_TIMEOUT_SECONDS = 2_147_483;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type StateDef = Record<string, any>;

export interface StateMachineConfig {
  logicalId: string;
  name: string;
  arn: string;
  type: 'STANDARD' | 'EXPRESS';
  roleArn: string;
  /** The definition as the template gives it (intrinsics resolved, substitutions applied). */
  definition: StateDef;
}

/**
 * Features of ASL that aws-local-stepfunctions 3.0.0 does not run, so a definition using them would run in AWS
 * but not here: Distributed Map (ItemReader, ItemBatcher, ResultWriter, ProcessorConfig.Mode DISTRIBUTED, and its
 * ToleratedFailure* / Label fields), JSONata (QueryLanguage, Arguments, Output) and variables (Assign).
 * Returns one line per use, naming the state.
 */
export function unsupportedFeatures(definition: StateDef): string[] {
  const out: string[] = [];
  if (definition.QueryLanguage === 'JSONata') out.push(`the state machine sets QueryLanguage JSONata`);
  const visit = (states: Record<string, StateDef> | undefined, path: string) => {
    for (const [name, state] of Object.entries(states ?? {})) {
      const where = `${path}${name}`;
      for (const field of ['ItemReader', 'ItemBatcher', 'ResultWriter', 'ToleratedFailurePercentage', 'ToleratedFailureCount', 'ToleratedFailurePercentagePath', 'ToleratedFailureCountPath', 'Label']) {
        if (state[field] !== undefined) out.push(`${where}: ${field} (Distributed Map)`);
      }
      const processor = state.ItemProcessor ?? state.Iterator;
      if (processor?.ProcessorConfig?.Mode === 'DISTRIBUTED') out.push(`${where}: ProcessorConfig.Mode DISTRIBUTED (Distributed Map)`);
      if (state.QueryLanguage === 'JSONata') out.push(`${where}: QueryLanguage JSONata`);
      for (const field of ['Arguments', 'Output', 'Assign']) if (state[field] !== undefined) out.push(`${where}: ${field} (${field === 'Assign' ? 'variables' : 'JSONata'})`);
      if (processor) visit(processor.States, `${where} > `);
      for (const [i, branch] of ((state.Branches as StateDef[] | undefined) ?? []).entries()) visit(branch.States, `${where}[${i}] > `);
    }
  };
  visit(definition.States, '');
  return out;
}

/** Every AWS::StepFunctions::StateMachine of the template, definitions resolved. */
export function stateMachinesOf(stack: LocalStack): StateMachineConfig[] {
  return stack.resourcesOfType('AWS::StepFunctions::StateMachine').map(([logicalId, r]) => {
    const p = r.Properties ?? {};
    const where = (f: string) => `${logicalId}.${f}`;
    let definition: StateDef;
    const substitutions = (stack.resolve(p.DefinitionSubstitutions ?? {}, where('DefinitionSubstitutions')) ?? {}) as Record<string, unknown>;
    const substitute = (text: string) => text.replace(/\$\{([^}]+)\}/g, (m, key: string) => (key in substitutions ? String(substitutions[key]) : m));
    if (p.DefinitionString !== undefined) {
      const text = substitute(stack.resolveString(p.DefinitionString, where('DefinitionString')));
      try {
        definition = JSON.parse(text) as StateDef;
      } catch (error) {
        throw new TemplateError(`${where('DefinitionString')} is not JSON (${(error as Error).message}).`);
      }
    } else if (p.Definition !== undefined) {
      definition = JSON.parse(substitute(JSON.stringify(stack.resolve(p.Definition, where('Definition'))))) as StateDef;
    } else {
      throw new TemplateError(`${logicalId} has neither DefinitionString nor Definition; DefinitionS3Location is not supported locally: use DefinitionBody.fromChainable or fromString.`);
    }
    const type = p.StateMachineType === undefined ? 'STANDARD' : (stack.resolveString(p.StateMachineType, where('StateMachineType')) as 'STANDARD' | 'EXPRESS');
    return {
      logicalId,
      name: p.StateMachineName !== undefined ? stack.resolveString(p.StateMachineName, where('StateMachineName')) : stack.generatedName(logicalId, 80),
      arn: String(stack.ref(logicalId, logicalId)),
      type,
      roleArn: stack.resolveString(p.RoleArn, where('RoleArn')),
      definition,
    };
  });
}

/** An error a Task state fails with: `name` is the Error that Retry and Catch match, `message` the Cause. */
class TaskError extends Error {
  constructor(name: string, cause: string) {
    super(cause);
    this.name = name;
  }
}

export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED';

export interface HistoryEvent {
  timestamp: number;
  type: string;
  id: number;
  previousEventId: number;
  [details: string]: unknown;
}

export interface Execution {
  executionArn: string;
  stateMachineArn: string;
  name: string;
  input: string;
  status: ExecutionStatus;
  startDate: number;
  stopDate?: number;
  output?: string;
  error?: string;
  cause?: string;
  /** Who started it ('schedule:<logical id>', a function's logical id, 'operator', a parent execution…). */
  startedBy: string;
  events: HistoryEvent[];
  /** Resolves when the execution has closed (history complete). */
  done: Promise<void>;
  abort?: (error?: string, cause?: string) => void;
}

export class SfnError extends AwsJsonError {}

export interface StepFunctionsOptions {
  iam?: LocalIam;
  /** Divides Retry intervals (IntervalSeconds, MaxDelaySeconds) and Wait states' Seconds. @default 1 */
  timeScale?: number;
  log?: (line: string) => void;
}

/** How a Task reaches a function: the local Lambda runtime's invoke (by logical id), or an in-process stand-in. */
export type FunctionInvoker = (functionLogicalId: string, payload: unknown) => Promise<InvokeResult>;

const seconds = (ms: number) => ms / 1000;
const jsonText = (value: unknown) => JSON.stringify(value ?? null);

export class LocalStepFunctions {
  readonly machines = new Map<string, StateMachineConfig>();
  readonly executions = new Map<string, Execution>();
  private readonly runners = new Map<string, StateMachine>();
  private invoker?: FunctionInvoker;
  private stopped = false;

  constructor(
    readonly stack: LocalStack,
    private readonly options: StepFunctionsOptions = {},
  ) {
    for (const config of stateMachinesOf(stack)) {
      const gaps = unsupportedFeatures(config.definition);
      if (gaps.length) {
        throw new TemplateError(`State machine ${config.logicalId} uses what aws-local-stepfunctions cannot run: ${gaps.join('; ')}. Use an inline Map over pages (see local/README.md, Step Functions).`);
      }
      try {
        // Validation as the runner does it (asl-validator, ARNs and paths), once, on the template's definition.
        new StateMachine(config.definition as StateMachineDefinition);
      } catch (error) {
        throw new TemplateError(`State machine ${config.logicalId}: ${(error as Error).message}`);
      }
      this.machines.set(config.arn, config);
      this.runners.set(config.arn, new StateMachine(runnable(config.definition, options.timeScale ?? 1) as StateMachineDefinition, { validationOptions: { noValidate: true } }));
    }
  }

  /** Binds Task states to functions (the Lambda runtime starts after the services). */
  bindInvoker(invoker: FunctionInvoker): void {
    this.invoker = invoker;
  }

  machine(id: string): StateMachineConfig {
    const found = this.machines.get(id) ?? [...this.machines.values()].find((m) => m.logicalId === id || m.name === id);
    if (!found) {
      throw new SfnError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${id}' (state machines: ${[...this.machines.values()].map((m) => m.arn).join(', ') || 'none'})`);
    }
    return found;
  }

  execution(arn: string): Execution {
    const found = this.executions.get(arn);
    if (!found) throw new SfnError('ExecutionDoesNotExist', `Execution Does Not Exist: '${arn}'`);
    return found;
  }

  /**
   * StartExecution. `caller` (when given) must be allowed states:StartExecution on the state machine. As in AWS
   * for Standard workflows: a name already used by a running execution with the same input returns that
   * execution; with another input, or once that execution has closed, ExecutionAlreadyExists.
   */
  async startExecution(request: { stateMachineArn?: string; name?: string; input?: string }, caller?: Principal, startedBy = caller?.name ?? 'local'): Promise<{ executionArn: string; startDate: number }> {
    if (this.stopped) throw new SfnError('ServiceUnavailable', 'The local Step Functions is stopping.', 503);
    if (!request.stateMachineArn) throw new SfnError('ValidationException', "1 validation error detected: Value null at 'stateMachineArn' failed to satisfy constraint: Member must not be null");
    const config = this.machine(request.stateMachineArn);
    await this.authorize(caller, 'states:StartExecution', config.arn);
    const name = request.name ?? randomUUID();
    if (!/^[^\s<>{}[\]?*"#%\\^|~`$&,;:/\u0000-\u001f\u007f-\u009f]{1,80}$/u.test(name)) {
      throw new SfnError('InvalidName', `Invalid Name: '${name}' (1 to 80 characters, no whitespace, brackets, wildcards, special characters or control characters)`);
    }
    const input = request.input ?? '{}';
    if (Buffer.byteLength(input, 'utf8') > MAX_PAYLOAD_BYTES) throw new SfnError('InvalidExecutionInput', `Invalid Execution Input: the input is ${Buffer.byteLength(input, 'utf8')} bytes; at most ${MAX_PAYLOAD_BYTES} are allowed.`);
    let parsed: Json;
    try {
      parsed = JSON.parse(input) as Json;
    } catch (error) {
      throw new SfnError('InvalidExecutionInput', `Invalid Execution Input: ${(error as Error).message}`);
    }
    const executionArn = `${config.arn.replace(':stateMachine:', ':execution:')}:${name}`;
    const existing = this.executions.get(executionArn);
    if (existing) {
      if (existing.status === 'RUNNING' && existing.input === input) return { executionArn, startDate: existing.startDate };
      throw new SfnError('ExecutionAlreadyExists', `Execution Already Exists: '${executionArn}'`);
    }
    if (!this.invoker) throw new SfnError('ServiceUnavailable', 'The local Step Functions has no function runtime yet.', 503);
    const execution = this.run(config, executionArn, name, input, parsed, startedBy);
    return { executionArn, startDate: execution.startDate };
  }

  /** Waits for an execution to close (in-process callers; API callers poll DescribeExecution). */
  async waitFor(executionArn: string): Promise<Execution> {
    const execution = this.execution(executionArn);
    await execution.done;
    return execution;
  }

  async stopExecution(request: { executionArn?: string; error?: string; cause?: string }, caller?: Principal): Promise<{ stopDate: number }> {
    const execution = this.execution(request.executionArn ?? '');
    await this.authorize(caller, 'states:StopExecution', execution.executionArn);
    if (execution.status === 'RUNNING') {
      execution.abort?.(request.error, request.cause);
      await execution.done;
    }
    return { stopDate: execution.stopDate ?? seconds(Date.now()) };
  }

  describe(execution: Execution): Record<string, unknown> {
    return {
      executionArn: execution.executionArn,
      stateMachineArn: execution.stateMachineArn,
      name: execution.name,
      status: execution.status,
      startDate: execution.startDate,
      ...(execution.stopDate !== undefined ? { stopDate: execution.stopDate } : {}),
      input: execution.input,
      inputDetails: { included: true },
      ...(execution.output !== undefined ? { output: execution.output, outputDetails: { included: true } } : {}),
      ...(execution.error !== undefined ? { error: execution.error } : {}),
      ...(execution.cause !== undefined ? { cause: execution.cause } : {}),
      redriveCount: 0,
      redriveStatus: 'NOT_REDRIVABLE',
    };
  }

  stats(): { stateMachines: { logicalId: string; arn: string; type: string }[]; executions: Record<ExecutionStatus, number> } {
    const executions: Record<ExecutionStatus, number> = { RUNNING: 0, SUCCEEDED: 0, FAILED: 0, TIMED_OUT: 0, ABORTED: 0 };
    for (const e of this.executions.values()) executions[e.status]++;
    return { stateMachines: [...this.machines.values()].map((m) => ({ logicalId: m.logicalId, arn: m.arn, type: m.type })), executions };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const running = [...this.executions.values()].filter((e) => e.status === 'RUNNING');
    for (const e of running) e.abort?.('States.Aborted', 'The local cloud stopped.');
    await Promise.race([Promise.allSettled(running.map((e) => e.done)), new Promise((r) => setTimeout(r, 1000).unref())]);
  }

  async authorize(caller: Principal | undefined, action: string, resource: string): Promise<void> {
    if (!caller || !this.options.iam) return;
    const verdict = await this.options.iam.authorize(caller, [{ action, resource }]);
    if (!verdict.allowed && !verdict.served) throw new SfnError('AccessDeniedException', verdict.denial.message);
  }

  // ---- running an execution ---------------------------------------------------------------

  private run(config: StateMachineConfig, executionArn: string, name: string, input: string, parsed: Json, startedBy: string): Execution {
    const startedAt = Date.now();
    let close!: () => void;
    const execution: Execution = {
      executionArn,
      stateMachineArn: config.arn,
      name,
      input,
      status: 'RUNNING',
      startDate: seconds(startedAt),
      startedBy,
      events: [],
      done: new Promise<void>((resolve) => (close = resolve)),
    };
    this.executions.set(executionArn, execution);
    const history = new History(execution, config);
    // The role Step Functions assumes for the tasks; session name like AWS's (random per execution).
    const role = this.options.iam?.rolePrincipal(config.roleArn, randomUUID().replace(/-/g, ''));
    const handlers = this.taskHandlers(config, execution, history, role);
    const handle = this.runners.get(config.arn)!.run(parsed, {
      overrides: { taskResourceLocalHandlers: handlers },
      context: {
        Execution: { Id: executionArn, Name: name, RoleArn: config.roleArn, StartTime: new Date(startedAt).toISOString() },
        StateMachine: { Id: config.arn, Name: config.name },
      },
    });
    let stopRequest: { error?: string; cause?: string } | undefined;
    execution.abort = (error, cause) => {
      stopRequest = { error, cause };
      handle.abort();
    };
    history.onLimit = () => {
      stopRequest = { error: 'States.Runtime', cause: `The execution reached the maximum number of history events (${MAX_HISTORY_EVENTS}).` };
      handle.abort();
    };
    const consumed = (async () => {
      for await (const event of handle.eventLogs) history.fromRunner(event as unknown as RunnerEvent, stopRequest);
    })();
    void (async () => {
      let outcome: { status: ExecutionStatus; output?: string; error?: string; cause?: string };
      try {
        const output = jsonText(await handle.result);
        outcome = Buffer.byteLength(output, 'utf8') > MAX_PAYLOAD_BYTES
          ? { status: 'FAILED', error: 'States.DataLimitExceeded', cause: `The state/task returned a result with a size exceeding the maximum number of bytes service limit (${MAX_PAYLOAD_BYTES}).` }
          : { status: 'SUCCEEDED', output };
      } catch (error) {
        const e = error as Error & { cause?: Error };
        if (stopRequest?.error === 'States.Runtime') outcome = { status: 'FAILED', error: stopRequest.error, cause: stopRequest.cause };
        else if (e.name === 'ExecutionAbortedError') outcome = { status: 'ABORTED', error: stopRequest?.error, cause: stopRequest?.cause };
        else if (e.name === 'ExecutionTimeoutError') outcome = { status: 'TIMED_OUT', error: 'States.Timeout' };
        else outcome = { status: 'FAILED', error: e.cause?.name ?? e.name, cause: e.cause?.message ?? e.message };
      }
      // The runner closes its event log with the last event; wait for it so history is complete when the status is.
      await Promise.race([consumed, new Promise((r) => setTimeout(r, 2000).unref())]);
      history.close(outcome);
      Object.assign(execution, outcome, { stopDate: seconds(Date.now()) });
      if (outcome.status !== 'SUCCEEDED') this.options.log?.(`Step Functions: ${name} of ${config.logicalId} ${outcome.status}${outcome.error ? `: ${outcome.error}` : ''}`);
      close();
    })();
    return execution;
  }

  /** One local handler per Task state name (nested Map and Parallel states included). */
  private taskHandlers(config: StateMachineConfig, execution: Execution, history: History, role: Principal | undefined) {
    const handlers: Record<string, (input: Json) => Promise<Json>> = {};
    for (const [stateName, state] of taskStates(config.definition)) {
      handlers[stateName] = async (input) => {
        await history.attemptStarts(stateName);
        const result = await this.runTask(config, execution, history, role, stateName, state, input);
        const size = Buffer.byteLength(jsonText(result), 'utf8');
        if (size > MAX_PAYLOAD_BYTES) {
          throw new TaskError('States.DataLimitExceeded', `The state/task '${stateName}' returned a result with a size exceeding the maximum number of bytes service limit (${size} > ${MAX_PAYLOAD_BYTES}).`);
        }
        return result;
      };
    }
    return handlers;
  }

  private async runTask(config: StateMachineConfig, execution: Execution, history: History, role: Principal | undefined, stateName: string, state: StateDef, input: Json): Promise<Json> {
    const resource = String(state.Resource);
    const integration = /^arn:aws[\w-]*:states:::([\w-]+):([\w.:-]+)$/.exec(resource);
    const region = this.stack.region;
    if (!integration) {
      // A function ARN as the Resource: the state's input is the payload, the function's result the output.
      const functionId = this.stack.functionByArn(resource.split(':').slice(0, 7).join(':'));
      history.push(stateName, 'LambdaFunctionScheduled', { lambdaFunctionScheduledEventDetails: { resource, input: jsonText(input), inputDetails: { truncated: false } } });
      if (!functionId) return history.fail(stateName, 'LambdaFunctionFailed', 'lambdaFunctionFailedEventDetails', {}, 'Lambda.ResourceNotFoundException', `Function not found: ${resource} (the template's functions only)`);
      const denied = await this.deniedInvoke(role, resource);
      if (denied) return history.fail(stateName, 'LambdaFunctionFailed', 'lambdaFunctionFailedEventDetails', {}, 'Lambda.AWSLambdaException', denied);
      history.push(stateName, 'LambdaFunctionStarted', {});
      const result = await this.invoke(functionId, input);
      if (!result.ok) return history.fail(stateName, 'LambdaFunctionFailed', 'lambdaFunctionFailedEventDetails', {}, result.error.errorType, jsonText(result.error));
      history.push(stateName, 'LambdaFunctionSucceeded', { lambdaFunctionSucceededEventDetails: { output: jsonText(result.payload), outputDetails: { truncated: false } } });
      return result.payload as Json;
    }
    const [, service, api] = integration as unknown as [string, string, string];
    const details = { resourceType: service, resource: api };
    history.push(stateName, 'TaskScheduled', { taskScheduledEventDetails: { ...details, region, parameters: jsonText(input), ...(state.TimeoutSeconds ? { timeoutInSeconds: state.TimeoutSeconds } : {}) } });
    const fail = (error: string, cause: string) => history.fail(stateName, 'TaskFailed', 'taskFailedEventDetails', details, error, cause);
    const succeed = (output: Json) => {
      history.push(stateName, 'TaskSucceeded', { taskSucceededEventDetails: { ...details, output: jsonText(output), outputDetails: { truncated: false } } });
      return output;
    };
    const params = (input ?? {}) as Record<string, Json>;
    if (service === 'lambda' && api === 'invoke') {
      const name = String(params.FunctionName ?? '');
      const functionId = this.stack.functionByArn(name.split(':').slice(0, 7).join(':')) ?? this.stack.resourcesOfType('AWS::Lambda::Function').find(([id]) => this.stack.functionName(id) === name)?.[0];
      if (!functionId) return fail('Lambda.ResourceNotFoundException', `Function not found: ${name} (Service: Lambda, Status Code: 404, Error Code: ResourceNotFoundException)`);
      const arn = name.startsWith('arn:') ? name : this.stack.functionArn(functionId);
      const denied = await this.deniedInvoke(role, arn);
      if (denied) return fail('Lambda.AWSLambdaException', denied);
      history.push(stateName, 'TaskStarted', { taskStartedEventDetails: details });
      const payload = params.Payload === undefined ? {} : params.Payload;
      if (params.InvocationType === 'Event') {
        void this.invoke(functionId, payload);
        return succeed({ Payload: '', StatusCode: 202, SdkHttpMetadata: { HttpStatusCode: 202 } });
      }
      const result = await this.invoke(functionId, payload);
      if (!result.ok) return fail(result.error.errorType, jsonText(result.error));
      return succeed({
        ExecutedVersion: '$LATEST',
        Payload: result.payload as Json,
        SdkHttpMetadata: { HttpHeaders: { 'X-Amz-Executed-Version': '$LATEST', 'x-amzn-RequestId': result.requestId }, HttpStatusCode: 200 },
        SdkResponseMetadata: { RequestId: result.requestId },
        StatusCode: 200,
      });
    }
    if (service === 'states' && /^startExecution(\.sync(:2)?)?$/.test(api)) {
      // A child execution, started in the role's name (states:StartExecution on the child state machine).
      const childArn = String(params.StateMachineArn ?? '');
      let started: { executionArn: string; startDate: number };
      try {
        const childInput = typeof params.Input === 'string' ? params.Input : jsonText(params.Input ?? {});
        started = await this.startExecution({ stateMachineArn: childArn, name: params.Name === undefined ? undefined : String(params.Name), input: childInput }, role, execution.executionArn);
      } catch (error) {
        const e = error as SfnError;
        return fail(`StepFunctions.${e.type ?? e.name}`, e.message);
      }
      history.push(stateName, 'TaskStarted', { taskStartedEventDetails: details });
      if (api === 'startExecution') return succeed({ ExecutionArn: started.executionArn, StartDate: new Date(started.startDate * 1000).toISOString() });
      const child = await this.waitFor(started.executionArn);
      const described = this.describe(child);
      const output = api.endsWith(':2') ? { ...described, Output: child.output === undefined ? null : (JSON.parse(child.output) as Json), Input: JSON.parse(child.input) as Json } : described;
      if (child.status !== 'SUCCEEDED') return fail('States.TaskFailed', jsonText(output));
      return succeed(output as Json);
    }
    return fail('States.Runtime', `The local Step Functions does not emulate the ${service}:${api} integration of state '${stateName}' (emulated: lambda:invoke, a function ARN, states:startExecution[.sync[:2]]).`);
  }

  /** The role's `lambda:InvokeFunction` on the function, as Step Functions asks it; the refusal text, if refused. */
  private async deniedInvoke(role: Principal | undefined, functionArn: string): Promise<string | undefined> {
    try {
      await this.authorize(role, 'lambda:InvokeFunction', functionArn);
      return undefined;
    } catch (error) {
      return `${(error as Error).message} (Service: AWSLambda; Status Code: 403; Error Code: AccessDeniedException)`;
    }
  }

  private invoke(functionLogicalId: string, payload: unknown): Promise<InvokeResult> {
    if (!this.invoker) throw new TaskError('States.Runtime', 'The local Step Functions has no function runtime.');
    return this.invoker(functionLogicalId, payload);
  }
}

/** The definition the runner gets: Retry and Wait timers divided by the time scale, and no default Task timeout. */
function runnable(definition: StateDef, timeScale: number): StateDef {
  const copy = structuredClone(definition);
  const visit = (states: Record<string, StateDef> | undefined) => {
    for (const state of Object.values(states ?? {})) {
      if (state.Type === 'Task' && state.TimeoutSeconds === undefined && state.TimeoutSecondsPath === undefined) state.TimeoutSeconds = NO_TASK_TIMEOUT_SECONDS;
      if (timeScale !== 1) {
        for (const retrier of (state.Retry as StateDef[] | undefined) ?? []) {
          retrier.IntervalSeconds = (retrier.IntervalSeconds ?? 1) / timeScale;
          if (retrier.MaxDelaySeconds !== undefined) retrier.MaxDelaySeconds /= timeScale;
        }
        if (state.Type === 'Wait' && typeof state.Seconds === 'number') state.Seconds /= timeScale;
      }
      const processor = state.ItemProcessor ?? state.Iterator;
      if (processor) visit(processor.States);
      for (const branch of (state.Branches as StateDef[] | undefined) ?? []) visit(branch.States);
    }
  };
  visit(copy.States);
  return copy;
}

/** [state name, state] for every Task state, nested ones included. */
function taskStates(definition: StateDef): [string, StateDef][] {
  const out: [string, StateDef][] = [];
  const visit = (states: Record<string, StateDef> | undefined) => {
    for (const [name, state] of Object.entries(states ?? {})) {
      if (state.Type === 'Task') out.push([name, state]);
      const processor = state.ItemProcessor ?? state.Iterator;
      if (processor) visit(processor.States);
      for (const branch of (state.Branches as StateDef[] | undefined) ?? []) visit(branch.States);
    }
  };
  visit(definition.States);
  return out;
}

// ---- history ----------------------------------------------------------------------------------

interface RunnerEvent {
  type: string;
  timestamp: number;
  input?: Json;
  output?: Json;
  Error?: string;
  Cause?: unknown;
  index?: number;
  state?: { name: string; type: string; input: Json; output?: Json };
  parentState?: { name: string; type: string };
}

/**
 * The execution's history in AWS's event types, built from the runner's event log (states entered and exited,
 * Map iterations, the execution's start and end) and the task events this module emits itself (TaskScheduled,
 * TaskStarted, TaskSucceeded/Failed; LambdaFunction* for a function ARN as Resource), one set per attempt.
 * The runner hands its events over asynchronously, so a task attempt waits until its state's entry (or retry)
 * has been recorded before adding its own events: they always follow it.
 */
class History {
  onLimit?: () => void;
  /** State entries and retries recorded, and task attempts begun, per state name. */
  private readonly lifecycles = new Map<string, number>();
  private readonly attempts = new Map<string, number>();
  private readonly waiters = new Map<string, (() => void)[]>();
  private readonly lastByState = new Map<string, number>();
  private closed = false;

  constructor(
    private readonly execution: Execution,
    private readonly config: StateMachineConfig,
  ) {}

  push(stateName: string | undefined, type: string, details: Record<string, unknown>, timestamp = Date.now()): void {
    if (this.closed) return;
    const events = this.execution.events;
    if (events.length >= MAX_HISTORY_EVENTS - 1) {
      this.onLimit?.();
      this.onLimit = undefined;
      return;
    }
    const id = events.length + 1;
    const previousEventId = (stateName !== undefined ? this.lastByState.get(stateName) : undefined) ?? events.length;
    events.push({ timestamp: seconds(timestamp), type, id, previousEventId, ...details });
    if (stateName !== undefined) this.lastByState.set(stateName, id);
  }

  /** A failed task attempt: its event, then the error the state fails with (Retry and Catch match `error`). */
  fail(stateName: string, type: string, key: string, details: Record<string, unknown>, error: string, cause: string): never {
    this.push(stateName, type, { [key]: { ...details, error, cause } });
    throw new TaskError(error, cause);
  }

  async attemptStarts(stateName: string): Promise<void> {
    const attempt = (this.attempts.get(stateName) ?? 0) + 1;
    this.attempts.set(stateName, attempt);
    while ((this.lifecycles.get(stateName) ?? 0) < attempt && !this.closed) {
      await new Promise<void>((resolve) => {
        const list = this.waiters.get(stateName) ?? [];
        list.push(resolve);
        this.waiters.set(stateName, list);
      });
    }
  }

  private lifecycle(stateName: string): void {
    this.lifecycles.set(stateName, (this.lifecycles.get(stateName) ?? 0) + 1);
    for (const wake of this.waiters.get(stateName)?.splice(0) ?? []) wake();
  }

  fromRunner(event: RunnerEvent, stop: { error?: string; cause?: string } | undefined): void {
    const state = event.state;
    switch (event.type) {
      case 'ExecutionStarted':
        this.push(undefined, 'ExecutionStarted', { executionStartedEventDetails: { input: this.execution.input, inputDetails: { truncated: false }, roleArn: this.config.roleArn } }, event.timestamp);
        return;
      case 'StateEntered':
        this.push(state!.name, `${state!.type}StateEntered`, { stateEnteredEventDetails: { name: state!.name, input: jsonText(state!.input), inputDetails: { truncated: false } } }, event.timestamp);
        if (state!.type === 'Task') this.lifecycle(state!.name);
        return;
      case 'StateRetried':
        if (state!.type === 'Task') this.lifecycle(state!.name);
        return;
      case 'StateExited':
        if (state!.type === 'Map') this.push(state!.name, 'MapStateSucceeded', {}, event.timestamp);
        this.push(state!.name, `${state!.type}StateExited`, { stateExitedEventDetails: { name: state!.name, output: jsonText(state!.output), outputDetails: { truncated: false } } }, event.timestamp);
        return;
      case 'StateFailed':
        if (state!.type === 'Map' || state!.type === 'Parallel') this.push(state!.name, `${state!.type}StateFailed`, {}, event.timestamp);
        return;
      case 'MapIterationStarted':
      case 'MapIterationSucceeded':
      case 'MapIterationFailed': {
        const key = `${event.type[0]!.toLowerCase()}${event.type.slice(1)}EventDetails`;
        this.push(event.parentState!.name, event.type, { [key]: { name: event.parentState!.name, index: event.index } }, event.timestamp);
        return;
      }
      case 'ParallelBranchStarted':
      case 'ParallelBranchSucceeded':
      case 'ParallelBranchFailed':
        return; // AWS's history has no per-branch events; the branches' states appear in it.
      case 'ExecutionAborted':
        this.push(undefined, 'ExecutionAborted', { executionAbortedEventDetails: { ...(stop?.error ? { error: stop.error } : {}), ...(stop?.cause ? { cause: stop.cause } : {}) } }, event.timestamp);
        this.closed = true;
        return;
      default:
        return; // ExecutionSucceeded/Failed/Timeout: written by close() with the final outcome.
    }
  }

  close(outcome: { status: ExecutionStatus; output?: string; error?: string; cause?: string }): void {
    if (this.closed) {
      this.wakeAll();
      return;
    }
    if (outcome.status === 'SUCCEEDED') this.push(undefined, 'ExecutionSucceeded', { executionSucceededEventDetails: { output: outcome.output, outputDetails: { truncated: false } } });
    else if (outcome.status === 'TIMED_OUT') this.push(undefined, 'ExecutionTimedOut', { executionTimedOutEventDetails: { error: outcome.error } });
    else if (outcome.status === 'FAILED') this.push(undefined, 'ExecutionFailed', { executionFailedEventDetails: { error: outcome.error, cause: outcome.cause } });
    this.closed = true;
    this.wakeAll();
  }

  private wakeAll(): void {
    for (const list of this.waiters.values()) for (const wake of list.splice(0)) wake();
  }
}

// ---- the JSON API -----------------------------------------------------------------------------

export interface StepFunctionsEndpoint {
  url: string;
  sfn: LocalStepFunctions;
  stop(): Promise<void>;
}

export async function startStepFunctions(stack: LocalStack, options: StepFunctionsOptions & { port?: number } = {}): Promise<StepFunctionsEndpoint> {
  const sfn = new LocalStepFunctions(stack, options);
  const server = await listen((req, res) => handle(sfn, req, res, options.iam), options.port ?? 0);
  return {
    url: server.url,
    sfn,
    stop: async () => {
      await sfn.stop();
      await server.close();
    },
  };
}

const OPERATIONS = new Set(['StartExecution', 'DescribeExecution', 'GetExecutionHistory', 'ListExecutions', 'StopExecution']);

function sendError(res: ServerResponse, error: SfnError): void {
  sendJson(res, error.status, { __type: `com.amazonaws.swf.service.v2.model#${error.type}`, message: error.message }, { 'Content-Type': 'application/x-amz-json-1.0', 'x-amzn-RequestId': randomUUID() });
}

async function handle(sfn: LocalStepFunctions, req: IncomingMessage, res: ServerResponse, iam?: LocalIam): Promise<void> {
  const raw = await readBody(req, 1024 * 1024);
  const target = String(req.headers['x-amz-target'] ?? '');
  const op = target.startsWith('AWSStepFunctions.') ? target.slice('AWSStepFunctions.'.length) : '';
  if (req.method !== 'POST' || !OPERATIONS.has(op)) {
    sendError(res, new SfnError('UnknownOperationException', `The local Step Functions serves ${[...OPERATIONS].join(', ')} (POST / with X-Amz-Target: AWSStepFunctions.<Operation>), not '${target || req.method}'.`));
    return;
  }
  let body: Record<string, any>;
  try {
    body = raw.length ? (JSON.parse(raw.toString('utf8')) as Record<string, any>) : {};
  } catch {
    sendError(res, new SfnError('SerializationException', 'The request body is not valid JSON.'));
    return;
  }
  let caller: Principal | undefined;
  if (iam) {
    caller = iam.principalOf(req.headers);
    if (!caller) {
      sendError(res, new SfnError('UnrecognizedClientException', INVALID_TOKEN_MESSAGE));
      return;
    }
  }
  try {
    sendJson(res, 200, await serve(sfn, op, body, caller), { 'Content-Type': 'application/x-amz-json-1.0', 'x-amzn-RequestId': randomUUID() });
  } catch (error) {
    if (error instanceof SfnError) sendError(res, error);
    else throw error;
  }
}

const page = <T>(items: T[], body: Record<string, any>, max = 1000) => {
  const size = Math.min(Number(body.maxResults) || max, 1000);
  const start = body.nextToken ? Number(Buffer.from(String(body.nextToken), 'base64url').toString()) : 0;
  if (!Number.isInteger(start) || start < 0) throw new SfnError('InvalidToken', `Invalid Token: '${body.nextToken}'`);
  const slice = items.slice(start, start + size);
  return { slice, nextToken: start + size < items.length ? Buffer.from(String(start + size)).toString('base64url') : undefined };
};

async function serve(sfn: LocalStepFunctions, op: string, body: Record<string, any>, caller: Principal | undefined): Promise<unknown> {
  switch (op) {
    case 'StartExecution':
      return sfn.startExecution(body, caller);
    case 'DescribeExecution': {
      const execution = sfn.execution(requireArn(body.executionArn, 'executionArn'));
      await sfn.authorize(caller, 'states:DescribeExecution', execution.executionArn);
      return sfn.describe(execution);
    }
    case 'GetExecutionHistory': {
      const execution = sfn.execution(requireArn(body.executionArn, 'executionArn'));
      await sfn.authorize(caller, 'states:GetExecutionHistory', execution.executionArn);
      let events = body.reverseOrder ? [...execution.events].reverse() : execution.events;
      if (body.includeExecutionData === false) events = events.map((e) => stripData(e));
      const { slice, nextToken } = page(events, body);
      return { events: slice, ...(nextToken ? { nextToken } : {}) };
    }
    case 'ListExecutions': {
      const machine = sfn.machine(requireArn(body.stateMachineArn, 'stateMachineArn'));
      await sfn.authorize(caller, 'states:ListExecutions', machine.arn);
      const all = [...sfn.executions.values()]
        .filter((e) => e.stateMachineArn === machine.arn && (!body.statusFilter || e.status === body.statusFilter))
        .sort((a, b) => b.startDate - a.startDate);
      const { slice, nextToken } = page(all, body, 100);
      return {
        executions: slice.map((e) => ({ executionArn: e.executionArn, stateMachineArn: e.stateMachineArn, name: e.name, status: e.status, startDate: e.startDate, ...(e.stopDate !== undefined ? { stopDate: e.stopDate } : {}) })),
        ...(nextToken ? { nextToken } : {}),
      };
    }
    case 'StopExecution':
      return sfn.stopExecution({ executionArn: requireArn(body.executionArn, 'executionArn'), error: body.error, cause: body.cause }, caller);
  }
  throw new SfnError('UnknownOperationException', op);
}

function requireArn(value: unknown, field: string): string {
  if (typeof value !== 'string' || !value) throw new SfnError('ValidationException', `1 validation error detected: Value null at '${field}' failed to satisfy constraint: Member must not be null`);
  if (!value.startsWith('arn:')) throw new SfnError('InvalidArn', `Invalid Arn: '${value}'`);
  return value;
}

/** includeExecutionData=false: history without inputs, outputs and parameters. */
function stripData(event: HistoryEvent): HistoryEvent {
  const out: HistoryEvent = { ...event };
  for (const [key, value] of Object.entries(event)) {
    if (!key.endsWith('EventDetails') || !value || typeof value !== 'object') continue;
    const { input: _i, output: _o, parameters: _p, ...rest } = value as Record<string, unknown>;
    out[key] = rest;
  }
  return out;
}
