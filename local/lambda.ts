import { randomBytes, randomUUID } from 'node:crypto';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { Worker } from 'node:worker_threads';
import { assetDirectory, PROJECT_ROOT } from './assembly';
import { LOCAL_CREDENTIALS } from './dynamodb';
import type { ArmedFault, FaultInjector } from './faults';
import type { LocalStack } from './template';

/**
 * The function runtime. Each AWS::Lambda::Function runs its bundled asset from the cloud assembly in
 * worker threads, one worker per execution environment, with the environment the template gives it
 * plus what Lambda itself sets (region, credentials, function name, task root…) and the local
 * service endpoints (AWS_ENDPOINT_URL_<SERVICE>).
 *
 * Concurrency: as in Lambda, an environment runs one invocation at a time, so module-level state
 * (cached clients, loggers with per-request keys, the Encryption SDK's cache) behaves as deployed.
 * Concurrent invocations get more environments, each a cold start, up to `maxConcurrency` per
 * function; beyond that they queue (Lambda would throttle; locally the machine is the limit).
 * Environments are started lazily and reused until stop(), a timeout or a crash discards them.
 */

export type LogSink = 'inherit' | 'silent' | string;

/**
 * Settings only the local cloud gives functions, at run time, never through a template (an infra test
 * checks that no synthesized stage's template carries them):
 * - PAYPLANE_LOCAL_ALLOW_LOOPBACK_WEBHOOKS=1: the webhook deliverer may call http://localhost and
 *   http://127.0.0.1 (a receiver on the developer's machine), which every deployed stage refuses.
 */
export const LOCAL_ONLY_ENVIRONMENT: Readonly<Record<string, string>> = Object.freeze({ PAYPLANE_LOCAL_ALLOW_LOOPBACK_WEBHOOKS: '1' });

export interface LambdaRuntimeOptions {
  /** AWS_ENDPOINT_URL_* variables pointing at the local services. */
  endpoints: Record<string, string>;
  /** Environments per function at most. @default env PAYPLANE_LAMBDA_CONCURRENCY or 4 */
  maxConcurrency?: number;
  /** Where function output goes: the terminal, nowhere, or a file (appended). @default 'inherit' */
  logs?: LogSink;
  /** Print START/END/REPORT lines like CloudWatch. @default true */
  reportLines?: boolean;
  /** The credentials of a function's role (local/iam.ts): what the endpoints identify it by. @default the administrator's */
  credentials?: (functionLogicalId: string) => { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Lets tests kill functions at chosen SDK calls (faults.ts). @default none: workers carry no hook */
  faults?: FaultInjector;
}

export interface FunctionDefinition {
  logicalId: string;
  name: string;
  arn: string;
  taskRoot: string;
  handler: string;
  runtime: string;
  timeoutSeconds: number;
  memoryMb: number;
  /** Template Environment.Variables, resolved. */
  environment: Record<string, string>;
  execArgv: string[];
}

export interface LambdaError {
  errorType: string;
  errorMessage: string;
  trace?: string[];
}

export type InvokeResult =
  | { ok: true; payload: unknown; requestId: string; durationMs: number; initMs?: number }
  | { ok: false; error: LambdaError; requestId: string; durationMs: number; initMs?: number };

export interface FunctionStats {
  invocations: number;
  errors: number;
  coldStarts: number;
  environments: number;
  /** Init duration of each cold start, ms. */
  initDurationsMs: number[];
  totalDurationMs: number;
  /** Sum of each invocation's duration rounded up to the millisecond, as Lambda bills it. */
  billedDurationMs: number;
  /** UTF-8 bytes (newline included) of the lines the function wrote: what CloudWatch Logs would ingest of them. */
  logBytes: number;
  /**
   * Sums of the metrics the function published in the Embedded Metric Format, keyed
   * `<namespace>/<name>`: what CloudWatch would chart, e.g. `Payplane/DynamoDBWriteUnits`.
   */
  metrics: Record<string, number>;
}

export interface InvokeOptions {
  requestId?: string;
  traceId?: string;
}

export class LambdaRuntime {
  readonly functions = new Map<string, LocalFunction>();
  private readonly log: (fn: string, line: string) => void;
  private readonly stream?: WriteStream;

  constructor(
    stack: LocalStack,
    assemblyDir: string,
    private readonly options: LambdaRuntimeOptions,
  ) {
    const sink = options.logs ?? 'inherit';
    if (sink === 'silent') this.log = () => {};
    else if (sink === 'inherit') this.log = (fn, line) => process.stdout.write(`[${fn}] ${line}\n`);
    else {
      mkdirSync(dirname(sink), { recursive: true });
      const stream = createWriteStream(sink, { flags: 'a' });
      this.stream = stream;
      this.log = (fn, line) => stream.write(`[${fn}] ${line}\n`);
    }
    const maxConcurrency = options.maxConcurrency ?? (Number(process.env.PAYPLANE_LAMBDA_CONCURRENCY) || 4);
    for (const [logicalId, resource] of stack.resourcesOfType('AWS::Lambda::Function')) {
      const definition = functionDefinition(stack, assemblyDir, logicalId, resource);
      this.functions.set(
        logicalId,
        new LocalFunction(definition, this.baseEnvironment(definition), maxConcurrency, this.log, options.reportLines ?? true, options.faults),
      );
    }
  }

  /** Finds a function by logical id, name or ARN (qualified ARNs included). */
  get(id: string): LocalFunction {
    const direct = this.functions.get(id);
    if (direct) return direct;
    const unqualified = id.replace(/:(\$LATEST|\d+)$/, '');
    for (const fn of this.functions.values()) {
      if (fn.definition.name === id || fn.definition.arn === unqualified) return fn;
    }
    throw new Error(`No function '${id}' in the template (functions: ${[...this.functions.keys()].join(', ')}).`);
  }

  invoke(id: string, event: unknown, options: InvokeOptions = {}): Promise<InvokeResult> {
    return this.get(id).invoke(event, options);
  }

  /** Starts one environment per function ahead of traffic (benchmarks that exclude cold starts). */
  async prewarm(): Promise<void> {
    await Promise.all([...this.functions.values()].map((f) => f.prewarm()));
  }

  stats(): Record<string, FunctionStats> {
    return Object.fromEntries([...this.functions.entries()].map(([id, f]) => [id, f.stats()]));
  }

  async stop(): Promise<void> {
    await Promise.all([...this.functions.values()].map((f) => f.stop()));
    await new Promise<void>((resolve) => (this.stream ? this.stream.end(resolve) : resolve()));
  }

  /** What Lambda sets in every environment, then the template's variables, then local-only settings and endpoints. */
  private baseEnvironment(d: FunctionDefinition): Record<string, string> {
    const region = d.arn.split(':')[3]!;
    const credentials = this.options.credentials?.(d.logicalId) ?? LOCAL_CREDENTIALS;
    const inherited = Object.fromEntries(
      ['PATH', 'HOME', 'LANG', 'TMPDIR', 'NODE_EXTRA_CA_CERTS'].flatMap((k) => (process.env[k] ? [[k, process.env[k]!]] : [])),
    );
    return {
      ...inherited,
      LANG: 'en_US.UTF-8',
      AWS_REGION: region,
      AWS_DEFAULT_REGION: region,
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      AWS_SESSION_TOKEN: credentials.sessionToken ?? '',
      AWS_EXECUTION_ENV: `AWS_Lambda_${d.runtime}`,
      AWS_LAMBDA_FUNCTION_NAME: d.name,
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(d.memoryMb),
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
      AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${d.name}`,
      LAMBDA_TASK_ROOT: d.taskRoot,
      LAMBDA_RUNTIME_DIR: d.taskRoot,
      _HANDLER: d.handler,
      // Lambda runs Node 22; the SDK's "Node 20 is going away" notice is noise in every environment here.
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...d.environment,
      ...LOCAL_ONLY_ENVIRONMENT,
      ...this.options.endpoints,
      // Local only (no template sets it): the webhook deliverer may call http://localhost and http://127.0.0.1,
      // where a developer's receiver runs (functions/notifications/outbound.ts). Deployed stages never have it.
      PAYPLANE_LOCAL_ALLOW_LOOPBACK_WEBHOOKS: '1',
    };
  }
}

/** Reads one AWS::Lambda::Function resource: code location, handler, limits, resolved environment. */
export function functionDefinition(
  stack: LocalStack,
  assemblyDir: string,
  logicalId: string,
  resource: ReturnType<LocalStack['resource']>,
): FunctionDefinition {
  const p = resource.Properties ?? {};
  const where = (f: string) => `${logicalId}.${f}`;
  const variables = ((p.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables ?? {}) as Record<string, unknown>;
  const environment = Object.fromEntries(
    Object.entries(variables).map(([k, v]) => [k, stack.resolveString(v, where(`Environment.Variables.${k}`))]),
  );
  const runtime = p.Runtime === undefined ? 'nodejs22.x' : stack.resolveString(p.Runtime, where('Runtime'));
  if (!runtime.startsWith('nodejs')) {
    throw new Error(`Function ${logicalId} uses runtime ${runtime}; the local cloud runs Node.js functions only.`);
  }
  return {
    logicalId,
    name: stack.functionName(logicalId),
    arn: stack.functionArn(logicalId),
    taskRoot: assetDirectory(assemblyDir, logicalId, resource),
    handler: p.Handler === undefined ? 'index.handler' : stack.resolveString(p.Handler, where('Handler')),
    runtime,
    timeoutSeconds: p.Timeout === undefined ? 3 : Number(stack.resolve(p.Timeout, where('Timeout'))),
    memoryMb: p.MemorySize === undefined ? 128 : Number(stack.resolve(p.MemorySize, where('MemorySize'))),
    environment,
    execArgv: (environment.NODE_OPTIONS ?? '').split(/\s+/).filter((a) => a.startsWith('--')),
  };
}

interface Pending {
  resolve(result: InvokeResult): void;
  requestId: string;
  started: number;
  timer: NodeJS.Timeout;
  initMs?: number;
  faults: ArmedFault[];
  /** The fault that killed the environment, as the worker reported it. */
  firedFault?: string;
}

/** One execution environment: a worker thread that has loaded the handler. */
class Environment {
  readonly worker: Worker;
  readonly ready: Promise<{ initMs: number } | { error: LambdaError }>;
  readonly logStreamName: string;
  busy = false;
  dead = false;
  pending?: Pending;
  private seq = 0;

  constructor(
    readonly fn: LocalFunction,
    env: Record<string, string>,
    private readonly onDeath: (e: Environment) => void,
  ) {
    const d = fn.definition;
    const logStream = `${new Date().toISOString().slice(0, 10).replace(/-/g, '/')}/[$LATEST]${randomBytes(16).toString('hex')}`;
    const options = {
      env: { ...env, AWS_LAMBDA_LOG_STREAM_NAME: logStream },
      workerData: { taskRoot: d.taskRoot, handler: d.handler, extraNodePaths: [join(PROJECT_ROOT, 'node_modules')], faults: fn.faults !== undefined },
      stdout: true,
      stderr: true,
      resourceLimits: { maxOldGenerationSizeMb: Math.max(d.memoryMb, 64) },
    };
    const script = new URL('./lambda-worker.mjs', import.meta.url);
    const constructed = performance.now();
    try {
      this.worker = new Worker(script, { ...options, execArgv: d.execArgv });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw error;
      fn.logLine(`NODE_OPTIONS ${d.execArgv.join(' ')} is not valid for a worker thread; running with --enable-source-maps only`);
      this.worker = new Worker(script, { ...options, execArgv: d.execArgv.filter((a) => a === '--enable-source-maps') });
    }
    this.logStreamName = logStream;
    for (const stream of [this.worker.stdout, this.worker.stderr]) {
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => fn.logLine(line));
    }
    // Lambda gives init 10 s, then retries it within the invocation's timeout.
    const initLimitMs = 10_000 + d.timeoutSeconds * 1000;
    this.ready = new Promise((resolve) => {
      const timer = setTimeout(
        () => resolve({ error: { errorType: 'Runtime.InitTimeout', errorMessage: `Init did not finish within ${initLimitMs / 1000} s` } }),
        initLimitMs,
      );
      timer.unref();
      this.worker.once('message', (m: { type: string; initMs?: number; error?: LambdaError }) => {
        clearTimeout(timer);
        // Init Duration = thread start + runtime bootstrap + module load, as Lambda reports it.
        if (m.type === 'ready') resolve({ initMs: performance.now() - constructed });
        else resolve({ error: m.error ?? { errorType: 'Runtime.Unknown', errorMessage: 'init failed' } });
      });
      this.worker.once('exit', (code) =>
        resolve({ error: { errorType: 'Runtime.ExitError', errorMessage: `Runtime exited during init with exit status ${code}` } }),
      );
    });
    this.worker.on('message', (m: { type: string; id?: number; ok?: boolean; payload?: string; error?: LambdaError; faultId?: string }) => {
      if (m.type === 'result' && this.pending) {
        this.finish(m.ok ? { ok: true, payload: JSON.parse(m.payload!) } : { ok: false, error: m.error! });
      } else if (m.type === 'fatal' && this.pending) {
        this.finish({ ok: false, error: m.error! });
      } else if (m.type === 'fault' && this.pending) {
        this.pending.firedFault = m.faultId;
      }
    });
    this.worker.on('error', (error) => {
      if (this.pending) this.finish({ ok: false, error: { errorType: 'Runtime.UncaughtException', errorMessage: error.message } });
    });
    this.worker.on('exit', (code) => {
      this.dead = true;
      if (this.pending) {
        this.finish({
          ok: false,
          error: { errorType: 'Runtime.ExitError', errorMessage: `RequestId: ${this.pending.requestId} Error: Runtime exited with error: exit status ${code}` },
        });
      }
      this.onDeath(this);
    });
  }

  invoke(event: unknown, options: InvokeOptions, initMs: number | undefined, resolve: (r: InvokeResult) => void): void {
    const d = this.fn.definition;
    const requestId = options.requestId ?? randomUUID();
    const started = performance.now();
    const timeoutMs = d.timeoutSeconds * 1000;
    const timer = setTimeout(() => {
      // Lambda ends the environment: the next invocation is a cold start.
      this.finish({
        ok: false,
        error: { errorType: 'Sandbox.Timedout', errorMessage: `${new Date().toISOString()} ${requestId} Task timed out after ${d.timeoutSeconds.toFixed(2)} seconds` },
      });
      this.dead = true;
      void this.worker.terminate();
    }, timeoutMs);
    const eventJson = JSON.stringify(event ?? null);
    const faults = this.fn.faults?.take(d, eventJson) ?? [];
    this.pending = { resolve, requestId, started, timer, initMs, faults };
    this.fn.reportStart(requestId);
    this.worker.postMessage({
      type: 'invoke',
      id: ++this.seq,
      event: eventJson,
      faults,
      context: {
        awsRequestId: requestId,
        deadlineMs: Date.now() + timeoutMs,
        functionName: d.name,
        functionVersion: '$LATEST',
        invokedFunctionArn: d.arn,
        memoryLimitInMB: String(d.memoryMb),
        logGroupName: `/aws/lambda/${d.name}`,
        logStreamName: this.logStreamName,
        traceId: options.traceId ?? `Root=1-${Math.floor(Date.now() / 1000).toString(16)}-${randomBytes(12).toString('hex')};Sampled=0`,
      },
    });
  }

  private finish(outcome: { ok: true; payload: unknown } | { ok: false; error: LambdaError }): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    clearTimeout(p.timer);
    this.fn.faults?.release(p.faults, p.firedFault, p.requestId);
    const durationMs = performance.now() - p.started;
    this.fn.reportEnd(p.requestId, durationMs, p.initMs, outcome.ok ? undefined : outcome.error);
    p.resolve({ ...outcome, requestId: p.requestId, durationMs, initMs: p.initMs });
  }
}

export class LocalFunction {
  private readonly environments: Environment[] = [];
  private readonly waiting: (() => void)[] = [];
  private counters = { invocations: 0, errors: 0, coldStarts: 0, totalDurationMs: 0, billedDurationMs: 0, logBytes: 0 };
  private readonly initDurations: number[] = [];
  private readonly metrics: Record<string, number> = {};
  private stopped = false;

  constructor(
    readonly definition: FunctionDefinition,
    private readonly env: Record<string, string>,
    private readonly maxConcurrency: number,
    private readonly log: (fn: string, line: string) => void,
    private readonly reportLines: boolean,
    readonly faults?: FaultInjector,
  ) {}

  /** Log prefix: the logical id without CDK's 8-hex-digit suffix (CreateOrderFunction3F2A1B4C → CreateOrderFunction). */
  get label(): string {
    return this.definition.logicalId.replace(/[0-9A-F]{8}$/, '') || this.definition.logicalId;
  }

  logLine(line: string): void {
    this.counters.logBytes += Buffer.byteLength(line, 'utf8') + 1;
    if (line.startsWith('{"_aws":')) this.collectMetrics(line);
    this.log(this.label, line);
  }

  /** CloudWatch's side of EMF: each metric named in a directive is read from the line and summed. */
  private collectMetrics(line: string): void {
    let record: { _aws?: { CloudWatchMetrics?: { Namespace: string; Metrics: { Name: string }[] }[] } } & Record<string, unknown>;
    try {
      record = JSON.parse(line);
    } catch {
      return; // not EMF after all: CloudWatch keeps it as a plain log line
    }
    for (const directive of record._aws?.CloudWatchMetrics ?? []) {
      for (const { Name } of directive.Metrics) {
        const values = [record[Name]].flat().filter((v): v is number => typeof v === 'number');
        const key = `${directive.Namespace}/${Name}`;
        this.metrics[key] = values.reduce((sum, v) => sum + v, this.metrics[key] ?? 0);
      }
    }
  }

  reportStart(requestId: string): void {
    if (this.reportLines) this.logLine(`START RequestId: ${requestId} Version: $LATEST`);
  }

  reportEnd(requestId: string, durationMs: number, initMs: number | undefined, error?: LambdaError): void {
    this.counters.invocations++;
    this.counters.totalDurationMs += durationMs;
    this.counters.billedDurationMs += Math.ceil(durationMs);
    if (error) {
      this.counters.errors++;
      this.logLine(`ERROR RequestId: ${requestId} ${error.errorType}: ${error.errorMessage}${error.trace?.length ? `\n${error.trace.join('\n')}` : ''}`);
    }
    if (!this.reportLines) return;
    this.logLine(`END RequestId: ${requestId}`);
    this.logLine(
      `REPORT RequestId: ${requestId}\tDuration: ${durationMs.toFixed(2)} ms\tBilled Duration: ${Math.ceil(durationMs)} ms\tMemory Size: ${this.definition.memoryMb} MB${initMs !== undefined ? `\tInit Duration: ${initMs.toFixed(2)} ms` : ''}`,
    );
  }

  async invoke(event: unknown, options: InvokeOptions = {}): Promise<InvokeResult> {
    if (this.stopped) throw new Error(`Function ${this.definition.logicalId} is stopped`);
    const { environment, initMs } = await this.acquire();
    if ('error' in environment) {
      const requestId = options.requestId ?? randomUUID();
      this.reportEnd(requestId, 0, initMs, environment.error);
      return { ok: false, error: environment.error, requestId, durationMs: 0, initMs };
    }
    return new Promise<InvokeResult>((resolve) => {
      environment.invoke(event, options, initMs, (result) => {
        environment.busy = false;
        resolve(result);
        this.release();
      });
    });
  }

  async prewarm(): Promise<void> {
    if (this.environments.length > 0) return;
    const { environment } = await this.acquire();
    if (!('error' in environment)) {
      environment.busy = false;
      this.release();
    }
  }

  /**
   * Ends the idle environments, as Lambda reclaims idle ones, so the next invocation (or `prewarm`) is a cold
   * start: how the bench measures init more than once per function.
   */
  async retireIdle(): Promise<void> {
    const idle = this.environments.filter((e) => !e.busy);
    for (const e of idle) {
      e.dead = true;
      this.environments.splice(this.environments.indexOf(e), 1);
    }
    await Promise.all(idle.map((e) => e.worker.terminate()));
  }

  /** An idle environment, a new one (cold start) if below the limit, or the next to free up. */
  private async acquire(): Promise<{ environment: Environment | { error: LambdaError }; initMs?: number }> {
    for (;;) {
      const idle = this.environments.find((e) => !e.busy && !e.dead);
      if (idle) {
        idle.busy = true;
        return { environment: idle };
      }
      if (this.environments.length < this.maxConcurrency) {
        const environment = new Environment(this, this.env, (dead) => {
          const i = this.environments.indexOf(dead);
          if (i >= 0) this.environments.splice(i, 1);
          this.release();
        });
        environment.busy = true;
        this.environments.push(environment);
        this.counters.coldStarts++;
        const ready = await environment.ready;
        if ('error' in ready) {
          environment.dead = true;
          void environment.worker.terminate();
          return { environment: ready };
        }
        this.initDurations.push(ready.initMs);
        return { environment, initMs: ready.initMs };
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
  }

  private release(): void {
    this.waiting.shift()?.();
  }

  stats(): FunctionStats {
    return { ...this.counters, environments: this.environments.length, initDurationsMs: [...this.initDurations], metrics: { ...this.metrics } };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.environments.map((e) => e.worker.terminate()));
    this.environments.length = 0;
    for (const w of this.waiting.splice(0)) w();
  }
}
