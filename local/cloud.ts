import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { LocalApiGateway, type ApiGatewayOptions } from './apigateway';
import { buildRestApi, listRoutes } from './apigateway-routes';
import { buildUsagePlans } from './apigateway-usage';
import { ensureAssembly, loadAssembly, PROJECT_ROOT } from './assembly';
import { ControlPlane } from './control-plane';
import { FaultInjector } from './faults';
import { LocalIam, OPERATOR_CREDENTIALS, type IamMode, type UsageReport } from './iam';
import { LambdaRuntime, type FunctionStats, type LogSink } from './lambda';
import { SERVICES, TRIGGERS, type RunningService, type RunningTrigger } from './registry';
import { seedDemoMerchant, seedDemoRates, type DemoMerchant } from './seed';
import type { DynamoDbRecorder } from './dynamodb-recorder';
import type { SentRecord } from './sqs';
import type { LocalStepFunctions } from './stepfunctions';
import { LocalStack } from './template';

/**
 * The local cloud: the synthesized template run offline. assembly → services (DynamoDB Local and
 * tables, KMS) → Lambda runtime → API Gateway + control plane → demo merchant → triggers.
 * `npm start` (local/main.ts), the e2e global setup and the benchmark all start it through here.
 */

export interface LocalCloudOptions {
  /** API port. 0 = any free port. @default env PORT, else 3000 */
  port?: number;
  /** DynamoDB Local in memory and a random KMS master secret: nothing survives stop(). @default false */
  inMemory?: boolean;
  /** No progress lines; function logs off unless `functionLogs` says otherwise. @default false */
  quiet?: boolean;
  /** A stage of lib/stage-config.ts (`test`: the e2e tier's, short API timeouts). @default 'dev' */
  stage?: string;
  /** Repository root. @default the repository local/ belongs to */
  root?: string;
  /** Run this cloud assembly as is (e.g. a test fixture) instead of synthesizing the app. */
  assemblyDir?: string;
  /** Stack to run when the assembly holds several. */
  stackName?: string;
  /** Let schedule rules fire on their own. @default true */
  schedules?: boolean;
  /** Let event source mappings (SQS queues, DynamoDB streams → Lambda) poll on their own. @default true */
  eventSources?: boolean;
  /**
   * Runs the local cloud's own timers N times faster: SQS DelaySeconds and visibility timeouts, schedules'
   * rate() periods, the event source pollers' batching windows, retry backoffs and maximum record age.
   * Never handler code (function timeouts, the clock functions read, signature timestamps stay real time).
   * With 3600, an hour of delayed SQS hops takes a second. @default env PAYPLANE_TIME_SCALE, else 1
   */
  timeScale?: number;
  /** Function output: 'inherit' (terminal, prefixed), 'silent', or a file path. @default quiet ? 'silent' : 'inherit' */
  functionLogs?: LogSink;
  /** Execution environments per function. @default env PAYPLANE_LAMBDA_CONCURRENCY, else 4 */
  lambdaConcurrency?: number;
  /** Start one environment per function before returning (no cold start on the first request). @default false */
  prewarm?: boolean;
  /** Seed the demo merchant. @default true */
  seed?: boolean;
  /** Where to write the endpoints file for the CLI; false = none. @default false (local/main.ts passes .payplane/local.json) */
  localFile?: string | false;
  /** One line per API request on stdout. @default false */
  accessLog?: boolean;
  /** Sees every API response with its route (local/apigateway.ts ApiExchange). @default none */
  onResponse?: ApiGatewayOptions['onResponse'];
  /** State directory (DynamoDB data, KMS master secret). @default '<root>/.payplane' */
  dataDir?: string;
  /**
   * Start KMS with exported key material (`<dataDir>/key-material/<fingerprint>`, written by `payplane backup create`)
   * instead of new material, so a restored backup's sealed values open. @default - the cloud's own material
   */
  keyMaterialDir?: string;
  /**
   * Where the local SES and SNS write each email (.eml) and SMS (.json) they send.
   * @default '<dataDir>/outbox'; in memory, a new temporary directory removed on stop
   */
  outboxDir?: string;
  /** Create the tables in this running DynamoDB (Local) instead of starting one. */
  dynamodbEndpoint?: string;
  /**
   * Let tests kill functions at chosen AWS SDK calls through `<admin>/__faults` (local/faults.ts). Off, the
   * workers carry no hook at all. @default false
   */
  faults?: boolean;
  /**
   * IAM from the template on every endpoint: 'enforce' refuses what AWS would refuse, 'audit' logs the
   * refusal and serves the call. @default env PAYPLANE_IAM, else 'enforce'
   */
  iam?: IamMode;
}

/** The endpoints file (.payplane/local.json) the operator CLI and tools read. */
export interface LocalCloudInfo {
  /** Base URL of the API, stage included: `http://127.0.0.1:3000/dev`. */
  apiUrl: string;
  /** The time scale the cloud runs with (1 = real time). */
  timeScale: number;
  region: string;
  account: string;
  stage: string;
  stackName: string;
  restApiId: string;
  endpoints: {
    api: string;
    dynamodb: string;
    kms?: string;
    /** The local SQS (AWS_ENDPOINT_URL_SQS), when the template has queues. */
    sqs?: string;
    /** API Gateway control plane (AWS_ENDPOINT_URL_API_GATEWAY): FlushStageAuthorizersCache & co. */
    apigateway: string;
    /** Same server: local admin routes (/__stats, /__schedules, /__event-sources, /__faults, /__sqs/sent). */
    admin: string;
    /** The local SES v2 (AWS_ENDPOINT_URL_SESV2) and SNS (AWS_ENDPOINT_URL_SNS). */
    sesv2?: string;
    sns?: string;
    /** The local Step Functions (AWS_ENDPOINT_URL_SFN), when the template has state machines. */
    sfn?: string;
    /** The local S3 (AWS_ENDPOINT_URL_S3, path-style), when the template has buckets. */
    s3?: string;
  };
  /** The signed audit heads' bucket and signing key (`audit verify` checks chains against the latest document). */
  auditHeads?: { bucket: string; keyArn: string };
  /** State machine ARNs by logical id. */
  stateMachines: Record<string, string>;
  /** The directory where the local SES and SNS write what they send (.eml, .json). */
  outbox: string;
  tables: { main?: string; idempotency?: string; byLogicalId: Record<string, string> };
  /** Queue URLs by logical id (what `Ref` gives functions). */
  queues: Record<string, string>;
  kmsKeyArn?: string;
  /** What the operator CLI signs with: the operator principal (docs/operator-policy.json). */
  operatorCredentials: { accessKeyId: string; secretAccessKey: string };
  demo?: { merchantId: string; keyId: string; secretKey: string };
  pid: number;
  startedAt: string;
}

export interface LocalCloudStats {
  kms: Record<string, number>;
  /** KMS calls per caller (a function's logical id, `operator`, `admin`) and operation. */
  kmsByCaller: Record<string, Record<string, number>>;
  sqs?: unknown;
  sfn?: unknown;
  lambda: Record<string, FunctionStats>;
  api: ReturnType<LocalApiGateway['stats']>;
  triggers: Record<string, unknown>;
}

export interface StartupTimings {
  totalMs: number;
  assemblyMs: number;
  synthesized: boolean;
  servicesMs: Record<string, number>;
  seedMs: number;
}

export interface LocalCloud extends LocalCloudInfo {
  /** Same as apiUrl. */
  url: string;
  demo?: DemoMerchant;
  timings: StartupTimings;
  routes: { method: string; path: string; target: string }[];
  runtime: LambdaRuntime;
  api: LocalApiGateway;
  stats(): LocalCloudStats;
  /** Fires a schedule rule, or polls an event source mapping once, now (by logical id); resolves when the functions finished. */
  trigger(id: string): Promise<unknown>;
  flushAuthorizerCache(): number;
  /** What was sent to a queue (logical id, name or URL), oldest first, with each message's requested DelaySeconds. */
  sqsSent(queue: string, filter?: { contains?: string; since?: number }): SentRecord[];
  /** Per principal: the actions used, granted-but-unused grants and refusals so far (local/iam.ts). */
  iamReport(): UsageReport;
  iam: LocalIam;
  /** The local Step Functions (executions, histories), when the template has state machines. */
  stepFunctions?: LocalStepFunctions;
  /** The DynamoDB request recorder of the bench's bill, when PAYPLANE_DYNAMODB_RECORDER=1. */
  dynamodbRecorder?: DynamoDbRecorder;
  stop(): Promise<void>;
}

export async function startLocalCloud(options: LocalCloudOptions = {}): Promise<LocalCloud> {
  const started = performance.now();
  const root = options.root ?? PROJECT_ROOT;
  const dataDir = options.dataDir ?? join(root, '.payplane');
  const log = options.quiet ? () => {} : (line: string) => process.stdout.write(`[local] ${line}\n`);
  const cleanup: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const fn of cleanup.splice(0).reverse()) {
      try {
        await fn();
      } catch (error) {
        process.stderr.write(`[local] error while stopping: ${(error as Error).message}\n`);
      }
    }
  };

  const timeScale = options.timeScale ?? parseTimeScale(process.env.PAYPLANE_TIME_SCALE);
  if (!(Number.isFinite(timeScale) && timeScale > 0)) {
    throw new Error(`timeScale ${timeScale} is not a positive number: use 1 for real time, or e.g. 3600 to run an hour of SQS delays in a second.`);
  }
  try {
    // 1. Services' template-free preparation (DynamoDB Local's JVM) runs while the assembly is made.
    const inMemory = options.inMemory ?? false;
    const outboxDir = options.outboxDir ?? (inMemory ? mkdtempSync(join(tmpdir(), 'payplane-outbox-')) : join(dataDir, 'outbox'));
    if (inMemory && !options.outboxDir) cleanup.push(async () => rmSync(outboxDir, { recursive: true, force: true }));
    const serviceContext = { inMemory, dataDir, outboxDir, log, dynamodbEndpoint: options.dynamodbEndpoint, keyMaterialDir: options.keyMaterialDir };
    const prepared = SERVICES.map((module) => module.prepare?.(serviceContext));
    // A preparation that fails while synth runs is reported when awaited below, not as an unhandled rejection.
    for (const p of prepared) p?.ready.catch(() => {});
    const discardPrepared = () => Promise.all(prepared.map((p) => p?.discard()));
    cleanup.push(async () => void (await discardPrepared()));

    // 2. The cloud assembly: a given one, or cdk.out synthesized when its inputs changed.
    const assemblyStarted = performance.now();
    const assembly = options.assemblyDir
      ? { ...loadAssembly(resolve(options.assemblyDir), options.stackName), synthesized: false, synthMs: 0 }
      : await ensureAssembly({ root, stage: options.stage ?? 'dev', log });
    const assemblyMs = performance.now() - assemblyStarted;
    const stack = new LocalStack(assembly.template, { stackName: assembly.stackName });
    const iamMode = options.iam ?? parseIamMode(process.env.PAYPLANE_IAM);
    const iam = new LocalIam(stack, { mode: iamMode, log: (line) => process.stderr.write(`[iam] ${line}\n`) });
    if (iamMode === 'audit') log('IAM in audit mode: refusals are logged and served anyway.');

    // 3. Services (in parallel): DynamoDB Local + tables, KMS.
    const services: RunningService[] = [];
    const outcomes = await Promise.allSettled(
      SERVICES.map(async (module, i) => {
        const running = await module.start({ ...serviceContext, timeScale, stack, iam }, await prepared[i]?.ready);
        if (running) {
          services.push(running);
          cleanup.push(running.stop);
        }
      }),
    );
    // Every service that did start is in `cleanup` now, so a failure of another stops it too.
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed) throw failed.reason;
    const serviceEndpoints = Object.assign({}, ...services.map((s) => s.endpoints)) as Record<string, string>;

    // 4. Control plane first: its URL is the fallback endpoint of every function.
    const restApi = stack.resourcesOfType('AWS::ApiGateway::RestApi').length ? buildRestApi(stack) : undefined;
    let api: LocalApiGateway | undefined;
    const control = new ControlPlane(() => api, stack.account);
    control.useIam(iam, stack.region);
    const controlServer = await control.start(0);
    cleanup.push(() => control.stop());
    for (const s of services) s.adminRoutes?.(control);
    const sqs = services.find((s) => s.sqs)?.sqs;
    const stepFunctions = services.find((s) => s.stepFunctions)?.stepFunctions;
    if (timeScale !== 1) log(`Time scale ${timeScale}: SQS delays and visibility timeouts, rate() schedules and pollers' windows run ${timeScale}× faster.`);

    // 5. The API listens before the functions exist: its address is the stage's public base URL, which
    // the functions' environment resolves to (LocalStack.serveRestApi). It invokes them once they do.
    if (!restApi) throw new Error(`Stack ${stack.stackName} has no AWS::ApiGateway::RestApi: nothing to serve.`);
    let runtime: LambdaRuntime | undefined;
    api = new LocalApiGateway(restApi, { invoke: (id, event, invokeOptions) => runtime!.invoke(id, event, invokeOptions), get: (id) => runtime!.get(id) }, {
      region: stack.region,
      account: stack.account,
      accessLog: options.accessLog ? (line) => process.stdout.write(`[api] ${line}\n`) : undefined,
      usage: buildUsagePlans(stack, restApi, { stateFile: options.inMemory ? undefined : join(dataDir, 'apigateway-usage.json') }),
      iam,
      onResponse: options.onResponse,
    });
    const port = options.port ?? (process.env.PORT !== undefined ? Number(process.env.PORT) : 3000);
    const apiServer = await api.start(port);
    cleanup.push(() => api!.stop());
    stack.serveRestApi(restApi.logicalId, apiServer.url);
    const faults = options.faults ? new FaultInjector() : undefined;
    faults?.routes(control);
    runtime = new LambdaRuntime(stack, assembly.dir, {
      faults,
      endpoints: {
        // Any SDK client without a local emulator lands on the control plane and fails loudly.
        AWS_ENDPOINT_URL: controlServer.url,
        AWS_ENDPOINT_URL_API_GATEWAY: controlServer.url,
        ...serviceEndpoints,
      },
      maxConcurrency: options.lambdaConcurrency,
      logs: options.functionLogs ?? (options.quiet ? 'silent' : 'inherit'),
      reportLines: !options.quiet,
      credentials: (logicalId) => iam.credentialsFor(logicalId),
    });
    cleanup.push(() => runtime!.stop());
    for (const s of services) s.bindRuntime?.(runtime);
    const apiUrl = `${apiServer.url}/${restApi.stage}`;

    // 6. Who is who in the template (main table, key) — from the functions' environment.
    const tables = Object.fromEntries(
      stack.resourcesOfType('AWS::DynamoDB::Table', 'AWS::DynamoDB::GlobalTable').map(([id]) => [id, stack.tableName(id)]),
    );
    const envValue = (name: string) => {
      for (const fn of runtime!.functions.values()) if (fn.definition.environment[name]) return fn.definition.environment[name];
      return undefined;
    };
    const mainTable = envValue('TABLE_NAME');
    const info: LocalCloudInfo = {
      apiUrl,
      timeScale,
      region: stack.region,
      account: stack.account,
      stage: restApi.stage,
      stackName: stack.stackName,
      restApiId: restApi.id,
      endpoints: {
        api: apiServer.url,
        dynamodb: serviceEndpoints.AWS_ENDPOINT_URL_DYNAMODB!,
        kms: serviceEndpoints.AWS_ENDPOINT_URL_KMS,
        sqs: serviceEndpoints.AWS_ENDPOINT_URL_SQS,
        apigateway: controlServer.url,
        admin: controlServer.url,
        sesv2: serviceEndpoints.AWS_ENDPOINT_URL_SESV2,
        sns: serviceEndpoints.AWS_ENDPOINT_URL_SNS,
        sfn: serviceEndpoints.AWS_ENDPOINT_URL_SFN,
        s3: serviceEndpoints.AWS_ENDPOINT_URL_S3,
      },
      auditHeads: envValue('AUDIT_HEADS_BUCKET') ? { bucket: envValue('AUDIT_HEADS_BUCKET')!, keyArn: envValue('AUDIT_HEADS_KEY_ARN')! } : undefined,
      stateMachines: Object.fromEntries([...(stepFunctions?.machines.values() ?? [])].map((m) => [m.logicalId, m.arn])),
      outbox: outboxDir,
      tables: { main: mainTable, idempotency: envValue('IDEMPOTENCY_TABLE_NAME'), byLogicalId: tables },
      queues: Object.fromEntries(stack.resourcesOfType('AWS::SQS::Queue').map(([id]) => [id, String(stack.ref(id, id))])),
      kmsKeyArn: envValue('KMS_KEY_ARN'),
      operatorCredentials: { accessKeyId: OPERATOR_CREDENTIALS.accessKeyId, secretAccessKey: OPERATOR_CREDENTIALS.secretAccessKey },
      pid: process.pid,
      startedAt: new Date().toISOString(),
    };

    // 7. Demo merchant, through the merchants domain.
    const seedStarted = performance.now();
    let demo: DemoMerchant | undefined;
    if (options.seed !== false && mainTable) {
      demo = await seedDemoMerchant({
        endpoint: info.endpoints.dynamodb,
        region: stack.region,
        tableName: mainTable,
        root,
        // The local cloud's own bootstrap (admin), a `system` actor: the operator changes nothing but through the operator API.
        apiGateway: { endpoint: controlServer.url, restApiId: restApi.id, stageName: restApi.stage },
      });
      if (!demo) log('TODO seedDemoMerchant: functions/merchants/service.ts has no ensureDemoMerchant yet; no demo merchant seeded.');
      // Sandbox demo exchange rates (functions/fx/settings.ts), so demo payments in EUR, JPY or KWD convert to USD.
      await seedDemoRates({ endpoint: info.endpoints.dynamodb, region: stack.region, tableName: mainTable, root });
    }
    const seedMs = performance.now() - seedStarted;
    if (demo) info.demo = { merchantId: demo.merchantId, keyId: demo.keyId, secretKey: demo.secretKey };

    // 8. Triggers (schedules, event source mappings), then the admin stats route.
    const triggers: RunningTrigger[] = [];
    for (const module of TRIGGERS) {
      const running = await module.start({
        stack,
        runtime,
        control,
        endpoints: serviceEndpoints,
        autoStart: options.schedules ?? true,
        pollEventSources: options.eventSources ?? true,
        timeScale,
        sqs,
        stepFunctions,
        inMemory: options.inMemory ?? false,
        dataDir,
        log,
        iam,
      });
      if (running) {
        triggers.push(running);
        cleanup.push(running.stop);
      }
    }
    const stats = (): LocalCloudStats => ({
      kms: (services.find((s) => s.name === 'kms')?.stats?.() ?? {}) as Record<string, number>,
      kmsByCaller: services.find((s) => s.name === 'kms')?.callsByCaller?.() ?? {},
      sqs: services.find((s) => s.name === 'sqs')?.stats?.(),
      sfn: services.find((s) => s.name === 'sfn')?.stats?.(),
      lambda: runtime.stats(),
      api: api!.stats(),
      triggers: Object.fromEntries(triggers.map((t) => [t.name, t.stats?.()])),
    });
    control.route('GET', '/__stats', async () => ({ status: 200, body: stats() }));

    if (options.prewarm) await runtime.prewarm();

    const localFile = options.localFile;
    if (localFile) {
      mkdirSync(dirname(localFile), { recursive: true });
      writeFileSync(localFile, `${JSON.stringify(info, null, 2)}\n`);
      // Removed first on stop (cleanup runs in reverse), unless another cloud has taken it over since.
      cleanup.push(async () => {
        try {
          if ((JSON.parse(readFileSync(localFile, 'utf8')) as LocalCloudInfo).pid === process.pid) rmSync(localFile, { force: true });
        } catch {
          // already gone
        }
      });
    }

    const timings: StartupTimings = {
      totalMs: performance.now() - started,
      assemblyMs,
      synthesized: assembly.synthesized,
      servicesMs: Object.fromEntries(services.map((s) => [s.name, Math.round(s.startMs)])),
      seedMs,
    };
    let stopping: Promise<void> | undefined;
    return {
      ...info,
      url: apiUrl,
      demo,
      timings,
      routes: listRoutes(restApi.root),
      runtime,
      api,
      stats,
      trigger: async (id) => {
        const owner = triggers.find((t) => t.owns?.(id));
        if (!owner?.trigger) throw new Error(`No trigger source '${id}' (triggers: ${JSON.stringify(triggers.map((t) => t.stats?.()))}).`);
        return owner.trigger(id);
      },
      flushAuthorizerCache: () => api!.flushAuthorizerCache(),
      sqsSent: (queue, filter) => {
        const q = sqs?.findQueue(queue);
        if (!q) throw new Error(`No queue '${queue}' in the local SQS (queues: ${Object.keys(info.queues).join(', ') || 'none'}).`);
        return sqs!.sentTo(q, filter);
      },
      iamReport: () => iam.report(),
      iam,
      stepFunctions,
      dynamodbRecorder: services.find((s) => s.dynamodbRecorder)?.dynamodbRecorder,
      stop: () => (stopping ??= stopAll()),
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

function parseTimeScale(value: string | undefined): number {
  if (value === undefined || value === '') return 1;
  const n = Number(value);
  if (!(Number.isFinite(n) && n > 0)) throw new Error(`PAYPLANE_TIME_SCALE=${value} is not a positive number: use 1 for real time, or e.g. 3600.`);
  return n;
}

function parseIamMode(value: string | undefined): IamMode {
  if (value === undefined || value === '' || value === 'enforce') return 'enforce';
  if (value === 'audit') return 'audit';
  throw new Error(`PAYPLANE_IAM=${value} is not a mode: use 'enforce' (the default) or 'audit'.`);
}
