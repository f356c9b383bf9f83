import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  DynamoDBClient,
  ListTablesCommand,
  ResourceNotFoundException,
  UpdateTableCommand,
  UpdateTimeToLiveCommand,
  type AttributeDefinition,
  type CreateTableCommandInput,
  type GlobalSecondaryIndex,
  type KeySchemaElement,
  type LocalSecondaryIndex,
  type Projection,
  type StreamViewType,
} from '@aws-sdk/client-dynamodb';
import { PROJECT_ROOT } from './assembly';
import { freePort } from './http';
import { LOCAL_REGION, type LocalStack } from './template';

/**
 * DynamoDB Local (the official Java emulator, installed in .dynamodb/ by npm's postinstall) and the
 * tables of the template.
 *
 * No orphan JVM: Java runs under a tiny `sh` guard whose stdin is a pipe from this process. When this
 * process ends, however it ends (Ctrl-C, SIGTERM, a crash, SIGKILL), the pipe closes, `read` returns
 * and the guard kills Java. stop() closes the pipe on purpose and waits for Java to exit.
 */

export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local', sessionToken: 'local' } as const;

const GUARD_SCRIPT = [
  '"$@" &',
  'pid=$!',
  'echo "payplane-dynamodb-pid $pid"',
  "trap 'kill $pid 2>/dev/null' TERM INT HUP",
  // Blocks until our parent closes stdin or dies.
  'while read -r _; do :; done',
  'kill $pid 2>/dev/null',
  'wait $pid',
].join('\n');

export interface DynamoDbLocalOptions {
  /** Keep data in memory only (tests). @default false: persist under `dataDir` */
  inMemory?: boolean;
  /** @default '<root>/.payplane/dynamodb' */
  dataDir?: string;
  /** @default a free port */
  port?: number;
  /** Where DynamoDBLocal.jar lives. @default '<root>/.dynamodb' */
  installDir?: string;
  log?: (line: string) => void;
}

export interface DynamoDbLocal {
  endpoint: string;
  port: number;
  client: DynamoDBClient;
  /** Milliseconds from spawn to the first answered request. */
  startMs: number;
  /** The JVM's pid (undefined for a DynamoDB someone else started). */
  javaPid?: number;
  stop(): Promise<void>;
}

const running = new Set<{ javaPid?: number; guard: ChildProcess }>();
let exitHookInstalled = false;

/** Last resort on a synchronous process exit: kill what is still running (stdin EOF does the rest). */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const r of running) {
      try {
        if (r.javaPid) process.kill(r.javaPid, 'SIGKILL');
      } catch {
        // already gone
      }
      r.guard.kill('SIGKILL');
    }
  });
}

export async function startDynamoDbLocal(options: DynamoDbLocalOptions = {}): Promise<DynamoDbLocal> {
  const installDir = options.installDir ?? join(PROJECT_ROOT, '.dynamodb');
  const jar = join(installDir, 'DynamoDBLocal.jar');
  if (!existsSync(jar)) {
    throw new Error(`DynamoDB Local is not installed: ${jar} is missing. Run \`node local/install-dynamodb-local.mjs\` (npm ci runs it).`);
  }
  const log = options.log ?? (() => {});
  let lastError: unknown;
  // A free port can be taken between the check and Java's bind: retry on another one.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = options.port ?? (await freePort());
    try {
      return await spawnDynamoDb({ ...options, installDir, jar, port, log });
    } catch (error) {
      lastError = error;
      if (options.port !== undefined) break;
    }
  }
  throw lastError;
}

/**
 * The launcher that binds DynamoDB Local to loopback (local/DynamoDbLoopback.java), compiled once per
 * version of its source next to the jar. Compiled rather than run in source-file mode: javac costs ~1 s,
 * which every start would pay.
 */
function loopbackLauncher(installDir: string, jar: string): string {
  const source = join(PROJECT_ROOT, 'local', 'DynamoDbLoopback.java');
  const hash = createHash('sha256').update(readFileSync(source)).digest('hex').slice(0, 12);
  const dir = join(installDir, 'loopback', hash);
  if (existsSync(join(dir, 'DynamoDbLoopback.class'))) return dir;
  mkdirSync(join(installDir, 'loopback'), { recursive: true });
  // Compiled aside and renamed, so parallel starts never load a half-written class.
  const tmp = mkdtempSync(join(installDir, 'loopback', 'tmp-'));
  try {
    execFileSync('javac', ['-cp', jar, '-d', tmp, source], { stdio: 'pipe' });
    renameSync(tmp, dir);
  } catch (error) {
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(join(dir, 'DynamoDbLoopback.class'))) {
      const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? '';
      throw new Error(`Could not compile ${source}: ${stderr || (error as Error).message}. It needs a JDK's javac, 17 or later (apt-get install openjdk-17-jdk-headless).`);
    }
  }
  return dir;
}

async function spawnDynamoDb(
  options: DynamoDbLocalOptions & { installDir: string; jar: string; port: number; log: (line: string) => void },
): Promise<DynamoDbLocal> {
  const started = performance.now();
  const args = [
    `-Djava.library.path=${join(options.installDir, 'DynamoDBLocal_lib')}`,
    // C1 only + serial GC: measured on 2 cores, ~0.6 s faster to start AND ~25% more transact+get
    // throughput than the default tiered JIT, whose C2 threads compete with the load for the cores.
    '-XX:+UseSerialGC',
    '-XX:TieredStopAtLevel=1',
    // DynamoDB Local listens on every interface and has no bind option: this launcher binds it to 127.0.0.1.
    '-cp',
    `${loopbackLauncher(options.installDir, options.jar)}:${options.jar}`,
    'DynamoDbLoopback',
    '-port',
    String(options.port),
    '-sharedDb',
    // DynamoDB Local ≥ 1.24 sends telemetry to AWS unless told not to: never call AWS.
    '-disableTelemetry',
  ];
  if (options.inMemory) {
    args.push('-inMemory');
  } else {
    const dataDir = options.dataDir ?? join(PROJECT_ROOT, '.payplane', 'dynamodb');
    mkdirSync(dataDir, { recursive: true });
    args.push('-dbPath', dataDir);
  }
  // detached: Ctrl-C in a terminal reaches only us, so we shut down in order (Java last).
  const guard = spawn('sh', ['-c', GUARD_SCRIPT, 'payplane-dynamodb', 'java', ...args], {
    cwd: options.installDir,
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  const entry: { javaPid?: number; guard: ChildProcess } = { guard };
  running.add(entry);
  installExitHook();
  let output = '';
  let exited = false;
  const exitedPromise = new Promise<void>((resolve) =>
    guard.on('exit', () => {
      exited = true;
      running.delete(entry);
      resolve();
    }),
  );
  guard.stdout!.on('data', (d: Buffer) => {
    const text = d.toString();
    const pid = /payplane-dynamodb-pid (\d+)/.exec(text);
    if (pid) entry.javaPid = Number(pid[1]);
    output += text;
  });
  guard.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  // Keep our end of the pipe from holding the event loop open; it still closes when we exit.
  guard.unref();
  (guard.stdout as unknown as { unref?: () => void }).unref?.();
  (guard.stderr as unknown as { unref?: () => void }).unref?.();
  (guard.stdin as unknown as { unref?: () => void }).unref?.();

  const endpoint = `http://127.0.0.1:${options.port}`;
  const client = new DynamoDBClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, maxAttempts: 1 });

  const stop = async () => {
    if (exited) return;
    guard.stdin!.end();
    const timer = setTimeout(() => {
      if (entry.javaPid) {
        try {
          process.kill(entry.javaPid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      guard.kill('SIGKILL');
    }, 5000);
    await exitedPromise;
    clearTimeout(timer);
    client.destroy();
  };

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) {
      throw new Error(`DynamoDB Local exited during startup on port ${options.port}:\n${output.trim()}`);
    }
    try {
      await client.send(new ListTablesCommand({ Limit: 1 }));
      break;
    } catch {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`DynamoDB Local did not answer on ${endpoint} within 30 s. Its output:\n${output.trim()}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const startMs = performance.now() - started;
  options.log(`DynamoDB Local ready on ${endpoint} (${options.inMemory ? 'in memory' : 'persistent'}) in ${Math.round(startMs)} ms`);
  return {
    endpoint,
    port: options.port,
    client,
    startMs,
    get javaPid() {
      return entry.javaPid;
    },
    stop,
  };
}

/** A DynamoDB Local someone else started: stop() only closes the client. */
export function connectDynamoDb(endpoint: string): DynamoDbLocal {
  const client = new DynamoDBClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, maxAttempts: 1 });
  return { endpoint, port: Number(new URL(endpoint).port), client, startMs: 0, stop: async () => client.destroy() };
}

// ---- tables from the template ------------------------------------------------------------

export interface LocalTable {
  logicalId: string;
  tableName: string;
  type: 'AWS::DynamoDB::Table' | 'AWS::DynamoDB::GlobalTable';
  streamArn?: string;
  ttlAttribute?: string;
}

interface TableSpec {
  input: CreateTableCommandInput;
  ttlAttribute?: string;
  streamViewType?: StreamViewType;
}

/** Translates an AWS::DynamoDB::Table or AWS::DynamoDB::GlobalTable (TableV2) into CreateTable input. */
export function tableSpec(stack: LocalStack, logicalId: string): TableSpec {
  const resource = stack.resource(logicalId);
  const p = (stack.resolve(resource.Properties ?? {}, logicalId) ?? {}) as Record<string, unknown>;
  const where = (field: string) => `${logicalId}.${field}`;
  const keySchema = p.KeySchema as KeySchemaElement[] | undefined;
  if (!keySchema?.length) throw new Error(`Table ${logicalId} has no KeySchema.`);
  const attributeDefinitions = p.AttributeDefinitions as AttributeDefinition[] | undefined;
  if (!attributeDefinitions?.length) throw new Error(`Table ${logicalId} has no AttributeDefinitions.`);
  const gsis = ((p.GlobalSecondaryIndexes as Record<string, unknown>[] | undefined) ?? []).map(
    (g): GlobalSecondaryIndex => ({
      IndexName: String(g.IndexName),
      KeySchema: g.KeySchema as KeySchemaElement[],
      Projection: projection(g.Projection, where(`GlobalSecondaryIndexes.${String(g.IndexName)}`)),
    }),
  );
  const lsis = ((p.LocalSecondaryIndexes as Record<string, unknown>[] | undefined) ?? []).map(
    (l): LocalSecondaryIndex => ({
      IndexName: String(l.IndexName),
      KeySchema: l.KeySchema as KeySchemaElement[],
      Projection: projection(l.Projection, where(`LocalSecondaryIndexes.${String(l.IndexName)}`)),
    }),
  );
  const stream = p.StreamSpecification as { StreamViewType?: StreamViewType } | undefined;
  const ttl = p.TimeToLiveSpecification as { AttributeName?: string; Enabled?: boolean } | undefined;
  // Billing does not matter locally (DynamoDB Local ignores capacity), so every table is on-demand.
  const input: CreateTableCommandInput = {
    TableName: stack.tableName(logicalId),
    KeySchema: keySchema,
    AttributeDefinitions: attributeDefinitions,
    BillingMode: 'PAY_PER_REQUEST',
    GlobalSecondaryIndexes: gsis.length ? gsis : undefined,
    LocalSecondaryIndexes: lsis.length ? lsis : undefined,
    StreamSpecification: stream?.StreamViewType ? { StreamEnabled: true, StreamViewType: stream.StreamViewType } : undefined,
  };
  return {
    input,
    ttlAttribute: ttl?.Enabled && ttl.AttributeName ? ttl.AttributeName : undefined,
    streamViewType: stream?.StreamViewType,
  };
}

function projection(value: unknown, where: string): Projection {
  const p = (value ?? {}) as Projection;
  if (!p.ProjectionType) throw new Error(`${where} has no Projection.ProjectionType.`);
  return { ProjectionType: p.ProjectionType, NonKeyAttributes: p.NonKeyAttributes?.length ? p.NonKeyAttributes : undefined };
}

/**
 * Creates every table of the template (idempotent: existing tables get missing GSIs, TTL and
 * streams added, so a persistent DynamoDB Local follows template changes). Records each table's
 * stream ARN in the stack so `Fn::GetAtt Table.StreamArn` resolves to the real one.
 */
export async function createTables(client: DynamoDBClient, stack: LocalStack, log: (line: string) => void = () => {}): Promise<LocalTable[]> {
  const tables = stack.resourcesOfType('AWS::DynamoDB::Table', 'AWS::DynamoDB::GlobalTable');
  return Promise.all(
    tables.map(async ([logicalId, resource]) => {
      const spec = tableSpec(stack, logicalId);
      const tableName = spec.input.TableName!;
      let description = await describe(client, tableName);
      if (!description) {
        try {
          await client.send(new CreateTableCommand(spec.input));
          log(`Created table ${tableName} (${logicalId})`);
        } catch (error) {
          // Another process created it between describe and create.
          if ((error as Error).name !== 'ResourceInUseException') throw error;
        }
      } else {
        await reconcile(client, spec, description, log);
      }
      if (spec.ttlAttribute) await ensureTtl(client, tableName, spec.ttlAttribute);
      description = await describe(client, tableName);
      const streamArn = description?.LatestStreamArn;
      if (streamArn) stack.setAttribute(logicalId, 'StreamArn', streamArn);
      return {
        logicalId,
        tableName,
        type: resource.Type as LocalTable['type'],
        streamArn,
        ttlAttribute: spec.ttlAttribute,
      };
    }),
  );
}

async function describe(client: DynamoDBClient, tableName: string) {
  try {
    return (await client.send(new DescribeTableCommand({ TableName: tableName }))).Table;
  } catch (error) {
    if (error instanceof ResourceNotFoundException || (error as Error).name === 'ResourceNotFoundException') return undefined;
    throw error;
  }
}

type TableDescription = NonNullable<Awaited<ReturnType<typeof describe>>>;

async function reconcile(client: DynamoDBClient, spec: TableSpec, table: TableDescription, log: (line: string) => void): Promise<void> {
  const name = spec.input.TableName!;
  const sameKeys = JSON.stringify(table.KeySchema) === JSON.stringify(spec.input.KeySchema);
  if (!sameKeys) {
    log(
      `WARNING: table ${name} in .payplane/dynamodb has key schema ${JSON.stringify(table.KeySchema)}, the template wants ${JSON.stringify(spec.input.KeySchema)}. Delete .payplane/dynamodb to recreate it.`,
    );
  }
  const existing = new Set((table.GlobalSecondaryIndexes ?? []).map((g) => g.IndexName));
  for (const gsi of spec.input.GlobalSecondaryIndexes ?? []) {
    if (existing.has(gsi.IndexName)) continue;
    const needed = new Set(gsi.KeySchema!.map((k) => k.AttributeName));
    await client.send(
      new UpdateTableCommand({
        TableName: name,
        AttributeDefinitions: spec.input.AttributeDefinitions!.filter((a) => needed.has(a.AttributeName)),
        GlobalSecondaryIndexUpdates: [{ Create: gsi }],
      }),
    );
    log(`Added index ${gsi.IndexName} to ${name}`);
  }
  if (spec.streamViewType && !table.StreamSpecification?.StreamEnabled) {
    await client.send(
      new UpdateTableCommand({ TableName: name, StreamSpecification: { StreamEnabled: true, StreamViewType: spec.streamViewType } }),
    );
    log(`Enabled the stream of ${name}`);
  }
}

async function ensureTtl(client: DynamoDBClient, tableName: string, attribute: string): Promise<void> {
  const current = await client.send(new DescribeTimeToLiveCommand({ TableName: tableName }));
  const d = current.TimeToLiveDescription;
  if (d?.TimeToLiveStatus === 'ENABLED' && d.AttributeName === attribute) return;
  await client.send(
    new UpdateTimeToLiveCommand({ TableName: tableName, TimeToLiveSpecification: { AttributeName: attribute, Enabled: true } }),
  );
}
