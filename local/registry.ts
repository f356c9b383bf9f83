import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ControlPlane } from './control-plane';
import { connectDynamoDb, createTables, startDynamoDbLocal, type DynamoDbLocal } from './dynamodb';
import { startDynamoDbProxy } from './dynamodb-proxy';
import { DynamoDbRecorder } from './dynamodb-recorder';
import type { LocalIam } from './iam';
import { CheckpointStore, startEventSources } from './event-sources';
import { startKms } from './kms';
import { Outbox } from './outbox';
import { startS3 } from './s3';
import { startSes } from './ses';
import { startSns } from './sns';
import type { LambdaRuntime } from './lambda';
import { Scheduler, scheduleRules, schedulerSchedules } from './schedules';
import { startSqs, type LocalSqs } from './sqs';
import { startStepFunctions, type LocalStepFunctions } from './stepfunctions';
import type { LocalStack } from './template';

/**
 * What the local cloud emulates, one module per AWS resource type, in two phases:
 *
 * - SERVICES start before the functions: they own resources of the template (tables, keys, queues;
 *   later state machines) and contribute the AWS_ENDPOINT_URL_<SERVICE> variables every function
 *   receives.
 * - TRIGGERS start after the functions: they invoke them (schedules; event source mappings for SQS
 *   queues and DynamoDB streams).
 *
 * Adding one = a module exporting a ServiceModule or TriggerModule, listed below.
 */

export interface ServiceContext {
  stack: LocalStack;
  inMemory: boolean;
  /** Divides the emulators' timers (SQS delays and visibility timeouts); local/cloud.ts `timeScale`. */
  timeScale: number;
  /** .payplane/ (persistent state lives under it). */
  dataDir: string;
  /** Use this DynamoDB (Local) endpoint instead of starting one (tests share one JVM). */
  dynamodbEndpoint?: string;
  /** Where the local SES and SNS write what they send (dataDir/outbox, or a temporary directory in memory). */
  outboxDir: string;
  /** Exported KMS key material to start with (`npm start -- --key-material`): a restore opens the backup's sealed values. */
  keyMaterialDir?: string;
  log: (line: string) => void;
}

export interface ServiceStartContext extends ServiceContext {
  /** Every endpoint checks its callers against the template's IAM policies through this. */
  iam: LocalIam;
}

export interface RunningService {
  name: string;
  /** Environment variables for functions (and local.json), e.g. { AWS_ENDPOINT_URL_KMS: 'http://…' }. */
  endpoints: Record<string, string>;
  /** Milliseconds to ready. */
  startMs: number;
  stats?(): unknown;
  /** Calls per caller and operation, for services that count them that way (KMS; SQS has them in stats()). */
  callsByCaller?(): Record<string, Record<string, number>>;
  /** Local-only admin routes of the service (e.g. `/__sqs/sent`), registered once the control plane runs. */
  adminRoutes?(control: ControlPlane): void;
  /** The SQS emulator itself, for triggers that work beside its API (the Lambda poller's hold). */
  sqs?: LocalSqs;
  /** The Step Functions emulator, for triggers that start executions (EventBridge Scheduler). */
  stepFunctions?: LocalStepFunctions;
  /** The DynamoDB proxy's request recorder, when PAYPLANE_DYNAMODB_RECORDER=1 (bench/cost). */
  dynamodbRecorder?: DynamoDbRecorder;
  /** Called once the Lambda runtime exists, for services that invoke functions (Step Functions' Task states). */
  bindRuntime?(runtime: LambdaRuntime): void;
  stop(): Promise<void>;
}

export interface ServiceModule<Prepared = unknown> {
  name: string;
  /**
   * Optional work that needs no template (e.g. booting a JVM), started while the app synthesizes.
   * Its result is handed to start(); `discard` releases it if startup fails before start().
   */
  prepare?(ctx: Omit<ServiceContext, 'stack' | 'timeScale'>): { ready: Promise<Prepared>; discard(): Promise<void> } | undefined;
  /** Returns undefined when the template has nothing for it. */
  start(ctx: ServiceStartContext, prepared?: Prepared): Promise<RunningService | undefined>;
}

export interface TriggerContext {
  stack: LocalStack;
  runtime: LambdaRuntime;
  control: ControlPlane;
  /** Every running service's endpoints (AWS_ENDPOINT_URL_SQS…), for triggers that read a service. */
  endpoints: Record<string, string>;
  /** Whether schedule timers run by themselves (tests turn them off and trigger by hand). */
  autoStart: boolean;
  /** Whether event source mappings poll by themselves. */
  pollEventSources: boolean;
  /** Divides rate() periods and the pollers' batching windows and retry backoffs (local/cloud.ts `timeScale`). */
  timeScale: number;
  /** The SQS emulator, when the template has queues. */
  sqs?: LocalSqs;
  /** The Step Functions emulator, when the template has state machines. */
  stepFunctions?: LocalStepFunctions;
  inMemory: boolean;
  /** .payplane/ (persistent state lives under it). */
  dataDir: string;
  log: (line: string) => void;
  iam: LocalIam;
}

export interface RunningTrigger {
  name: string;
  /** Fires one source now (a schedule rule, later a queue poll…), identified by logical id or name. */
  trigger?(id: string): Promise<unknown>;
  /** Whether `id` is one of this trigger's sources. */
  owns?(id: string): boolean;
  stats?(): unknown;
  stop(): Promise<void>;
}

export interface TriggerModule {
  name: string;
  start(ctx: TriggerContext): Promise<RunningTrigger | undefined>;
}

/** DynamoDB Local + every AWS::DynamoDB::Table / GlobalTable of the template. */
const dynamodbService: ServiceModule<DynamoDbLocal> = {
  name: 'dynamodb',
  prepare(ctx) {
    const started = performance.now();
    const ready = (
      ctx.dynamodbEndpoint
        ? Promise.resolve(connectDynamoDb(ctx.dynamodbEndpoint))
        : startDynamoDbLocal({ inMemory: ctx.inMemory, dataDir: join(ctx.dataDir, 'dynamodb'), log: ctx.log })
    ).then((ddb) => Object.assign(ddb, { startMs: performance.now() - started }));
    return { ready, discard: async () => (await ready.catch(() => undefined))?.stop() };
  },
  async start(ctx, prepared) {
    const ddb = prepared ?? (await this.prepare!(ctx)!.ready);
    const started = performance.now();
    try {
      const tables = await createTables(ddb.client, ctx.stack, ctx.log);
      // Callers reach DynamoDB Local only through the IAM-checking proxy (local/dynamodb-proxy.ts).
      // The bench's request recorder (PAYPLANE_DYNAMODB_RECORDER=1, bench/cost): idle until started.
      const recorder = process.env.PAYPLANE_DYNAMODB_RECORDER === '1' ? new DynamoDbRecorder(ddb.endpoint, ctx.stack.region) : undefined;
      const proxy = await startDynamoDbProxy(ctx.stack, ctx.iam, ddb.endpoint, recorder);
      return {
        name: 'dynamodb',
        dynamodbRecorder: recorder,
        endpoints: { AWS_ENDPOINT_URL_DYNAMODB: proxy.url, AWS_ENDPOINT_URL_DYNAMODB_STREAMS: proxy.url },
        startMs: ddb.startMs + (performance.now() - started),
        stats: () => ({ tables: tables.map((t) => t.tableName) }),
        stop: async () => {
          await proxy.stop();
          await ddb.stop();
        },
      };
    } catch (error) {
      await ddb.stop();
      throw error;
    }
  },
};

/** The KMS emulator for the template's AWS::KMS::Key resources. */
const kmsService: ServiceModule = {
  name: 'kms',
  async start(ctx) {
    const started = performance.now();
    const kms = await startKms(ctx.stack, { inMemory: ctx.inMemory, secretFile: join(ctx.dataDir, 'kms-master-secret'), iam: ctx.iam, keyMaterialDir: ctx.keyMaterialDir });
    return {
      name: 'kms',
      endpoints: { AWS_ENDPOINT_URL_KMS: kms.url },
      startMs: performance.now() - started,
      stats: () => kms.kms.stats(),
      callsByCaller: () => kms.kms.statsByCaller(),
      stop: kms.stop,
      // `backup create` names (and exports) the key material its sealed values need; `backup restore` checks it.
      adminRoutes: (control) => {
        control.route('GET', '/__kms/material', async () => ({ status: 200, body: { fingerprint: kms.kms.fingerprint } }));
        control.route('POST', '/__kms/material/export', async () => ({ status: 200, body: await kms.kms.exportMaterial(join(ctx.dataDir, 'key-material')) }));
      },
    };
  },
};

/** The SQS emulator for the template's AWS::SQS::Queue resources (Ref = the local queue URL). */
const sqsService: ServiceModule = {
  name: 'sqs',
  async start(ctx) {
    if (ctx.stack.resourcesOfType('AWS::SQS::Queue').length === 0) return undefined;
    const started = performance.now();
    const sqs = await startSqs(ctx.stack, {
      stateFile: ctx.inMemory ? undefined : join(ctx.dataDir, 'sqs', 'messages.json'),
      log: ctx.log,
      iam: ctx.iam,
      timeScale: ctx.timeScale,
    });
    return {
      name: 'sqs',
      endpoints: { AWS_ENDPOINT_URL_SQS: sqs.url },
      startMs: performance.now() - started,
      stats: () => ({ ...sqs.sqs.stats(), queueUrls: sqs.queueUrls }),
      adminRoutes: (control) => sqsAdminRoutes(control, sqs.sqs),
      sqs: sqs.sqs,
      stop: sqs.stop,
    };
  },
};

/** AWS::S3::Bucket → the local S3 (local/s3.ts): `.payplane/audit/` (signed audit heads), a temporary directory in memory. */
const s3Service: ServiceModule = {
  name: 's3',
  async start(ctx) {
    if (ctx.stack.resourcesOfType('AWS::S3::Bucket').length === 0) return undefined;
    const started = performance.now();
    const root = ctx.inMemory ? mkdtempSync(join(tmpdir(), 'payplane-s3-')) : join(ctx.dataDir, 'audit');
    const s3 = await startS3(ctx.stack, { root, iam: ctx.iam, log: ctx.log });
    return {
      name: 's3',
      endpoints: { AWS_ENDPOINT_URL_S3: s3.url },
      startMs: performance.now() - started,
      stats: () => ({ root, buckets: [...s3.s3.buckets.keys()], calls: s3.s3.calls }),
      stop: async () => {
        await s3.stop();
        if (ctx.inMemory) rmSync(root, { recursive: true, force: true });
      },
    };
  },
};

/** SES v2 SendEmail → `.eml` files in the outbox (local/ses.ts). */
const sesService: ServiceModule = {
  name: 'sesv2',
  async start(ctx) {
    const started = performance.now();
    const ses = await startSes(ctx.stack, { outbox: new Outbox(ctx.outboxDir), iam: ctx.iam, log: ctx.log });
    return {
      name: 'sesv2',
      endpoints: { AWS_ENDPOINT_URL_SESV2: ses.url },
      startMs: performance.now() - started,
      stats: () => ({ identities: ses.ses.identities, configurationSets: ses.ses.configurationSets, sent: ses.ses.sent.length, outbox: ctx.outboxDir }),
      stop: ses.stop,
    };
  },
};

/** SNS Publish to a PhoneNumber (SMS) → `.json` files in the outbox (local/sns.ts). */
const snsService: ServiceModule = {
  name: 'sns',
  async start(ctx) {
    const started = performance.now();
    const sns = await startSns(ctx.stack, { outbox: new Outbox(ctx.outboxDir), iam: ctx.iam, log: ctx.log });
    return {
      name: 'sns',
      endpoints: { AWS_ENDPOINT_URL_SNS: sns.url },
      startMs: performance.now() - started,
      stats: () => ({ sent: sns.sns.sent.length, outbox: ctx.outboxDir }),
      stop: sns.stop,
    };
  },
};

/** AWS::StepFunctions::StateMachine → the local Step Functions (local/stepfunctions.ts), Tasks bound to the runtime. */
const stepFunctionsService: ServiceModule = {
  name: 'sfn',
  async start(ctx) {
    if (ctx.stack.resourcesOfType('AWS::StepFunctions::StateMachine').length === 0) return undefined;
    const started = performance.now();
    const sfn = await startStepFunctions(ctx.stack, { iam: ctx.iam, timeScale: ctx.timeScale, log: ctx.log });
    return {
      name: 'sfn',
      endpoints: { AWS_ENDPOINT_URL_SFN: sfn.url },
      startMs: performance.now() - started,
      stats: () => sfn.sfn.stats(),
      stepFunctions: sfn.sfn,
      bindRuntime: (runtime) => sfn.sfn.bindInvoker((id, payload) => runtime.invoke(id, payload)),
      stop: sfn.stop,
    };
  },
};

/** EventBridge schedule rules and EventBridge Scheduler schedules → Lambda and state machine targets. */
const scheduleTrigger: TriggerModule = {
  name: 'schedules',
  async start(ctx) {
    const rules = [...scheduleRules(ctx.stack, ctx.log), ...schedulerSchedules(ctx.stack, ctx.log)];
    if (rules.length === 0) return undefined;
    const scheduler = new Scheduler(rules, ctx.runtime, {
      account: ctx.stack.account,
      region: ctx.stack.region,
      timeScale: ctx.timeScale,
      log: ctx.log,
      iam: ctx.iam,
      stepFunctions: ctx.stepFunctions,
    });
    ctx.control.route('GET', '/__schedules', async () => ({ status: 200, body: scheduler.stats() }));
    ctx.control.route('POST', '/__schedules/{rule}/trigger', async (_req, p) => {
      try {
        return { status: 200, body: await scheduler.trigger(p.rule!) };
      } catch (error) {
        return { status: 404, body: { message: (error as Error).message } };
      }
    });
    if (ctx.autoStart) scheduler.start();
    return {
      name: 'schedules',
      trigger: (id) => scheduler.trigger(id),
      owns: (id) => rules.some((r) => r.logicalId === id || r.name === id),
      stats: () => scheduler.stats(),
      stop: () => scheduler.stop(),
    };
  },
};

/** AWS::Lambda::EventSourceMapping: SQS queues and DynamoDB streams → Lambda (local/event-sources.ts). */
const eventSourceTrigger: TriggerModule = {
  name: 'event-sources',
  async start(ctx) {
    const running = await startEventSources({
      stack: ctx.stack,
      runtime: ctx.runtime,
      endpoints: ctx.endpoints,
      log: ctx.log,
      iam: ctx.iam,
      autoStart: ctx.pollEventSources,
      timeScale: ctx.timeScale,
      sqs: ctx.sqs,
      checkpoints: ctx.inMemory ? undefined : new CheckpointStore(join(ctx.dataDir, 'event-sources', 'checkpoints.json')),
    });
    if (!running) return undefined;
    ctx.control.route('GET', '/__event-sources', async () => ({ status: 200, body: running.stats() }));
    ctx.control.route('POST', '/__event-sources/{mapping}/poll', async (_req, p) => {
      try {
        return { status: 200, body: await running.trigger(p.mapping!) };
      } catch (error) {
        return { status: 404, body: { message: (error as Error).message } };
      }
    });
    return { name: 'event-sources', trigger: running.trigger, owns: running.owns, stats: running.stats, stop: running.stop };
  },
};

/**
 * `GET <admin>/__sqs/sent?queue=<logical id | name | URL>[&contains=<substring of the body>][&since=<ISO time>]`:
 * every message sent to the queue (oldest first) with the DelaySeconds it asked for (or the queue's
 * default), its body and send time → `{ queue: {logicalId, name, url}, messages: SentRecord[] }`.
 */
function sqsAdminRoutes(control: ControlPlane, sqs: LocalSqs): void {
  control.route('GET', '/__sqs/sent', async (req) => {
    const query = new URL(req.url ?? '/', 'http://localhost').searchParams;
    const id = query.get('queue');
    const queue = id ? sqs.findQueue(id) : undefined;
    if (!queue) {
      const known = [...sqs.queues.values()].map((q) => q.config.logicalId).join(', ');
      return { status: 404, body: { message: `${id ? `No queue '${id}'` : 'The query parameter queue is missing'}: pass ?queue=<logical id, name or URL> (queues: ${known}).` } };
    }
    const sinceText = query.get('since');
    const since = sinceText === null ? undefined : Date.parse(sinceText);
    if (since !== undefined && Number.isNaN(since)) return { status: 400, body: { message: `since=${sinceText} is not an ISO time, e.g. 2024-01-01T00:00:00Z.` } };
    const { logicalId, name } = queue.config;
    return { status: 200, body: { queue: { logicalId, name, url: queue.url }, messages: sqs.sentTo(queue, { contains: query.get('contains') ?? undefined, since }) } };
  });
}

export const SERVICES: ServiceModule<any>[] = [dynamodbService, kmsService, sqsService, s3Service, sesService, snsService, stepFunctionsService];
export const TRIGGERS: TriggerModule[] = [scheduleTrigger, eventSourceTrigger];
