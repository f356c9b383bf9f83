import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  type TableDescription,
} from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connectDynamoDb, createTables, startDynamoDbLocal } from '../../local/dynamodb';
import { LocalStack, type CfnTemplate } from '../../local/template';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'local-cloud');
const fixtureTemplate = () => JSON.parse(readFileSync(join(FIXTURE, 'Payplane-fixture.template.json'), 'utf8')) as CfnTemplate;
const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const waitUntil = async (condition: () => boolean, ms: number) => {
  const end = Date.now() + ms;
  while (!condition() && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  return condition();
};

describe('tables from the template', () => {
  let db: DynamoDBClient;
  const describeTable = async (name: string) => (await db.send(new DescribeTableCommand({ TableName: name }))).Table!;

  beforeAll(() => {
    db = new DynamoDBClient({ endpoint: inject('localServices').endpoints.dynamodb, region: 'us-east-1', credentials });
  });
  afterAll(() => db.destroy());

  it("creates the real template's tables: keys, GSIs, stream, TTL (contract § Tables)", async () => {
    const { tables } = inject('localServices');
    const main = await describeTable(tables.main);
    expect(main.KeySchema).toEqual([
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ]);
    const gsis = Object.fromEntries((main.GlobalSecondaryIndexes ?? []).map((g) => [g.IndexName, g]));
    expect(Object.keys(gsis).sort()).toEqual(['gsi1', 'gsi2']);
    expect(gsis.gsi1!.KeySchema!.map((k: { AttributeName?: string }) => k.AttributeName)).toEqual(['gsi1pk', 'gsi1sk']);
    expect(gsis.gsi2!.Projection).toEqual({ ProjectionType: 'INCLUDE', NonKeyAttributes: ['type', 'id', 'merchant_id', 'expires_at'] });
    expect(main.StreamSpecification).toEqual({ StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' });
    expect(main.LatestStreamArn).toContain(`table/${tables.main}/stream/`);
    const mainTtl = await db.send(new DescribeTimeToLiveCommand({ TableName: tables.main }));
    expect(mainTtl.TimeToLiveDescription).toMatchObject({ TimeToLiveStatus: 'ENABLED', AttributeName: 'ttl' });
    const idem = await describeTable(tables.idempotency);
    expect(idem.KeySchema).toEqual([{ AttributeName: 'id', KeyType: 'HASH' }]);
    expect(idem.StreamSpecification?.StreamEnabled ?? false).toBe(false);
    const idemTtl = await db.send(new DescribeTimeToLiveCommand({ TableName: tables.idempotency }));
    expect(idemTtl.TimeToLiveDescription).toMatchObject({ TimeToLiveStatus: 'ENABLED', AttributeName: 'expiration' });
  });

  it('keeps INCLUDE projections, and is idempotent: a second run reuses tables and adds a new GSI', async () => {
    // Prepare: the fixture under a stack name of its own, so its tables are fresh.
    const template = fixtureTemplate();
    const stack = new LocalStack(template, { stackName: `Reconcile${Date.now()}` });
    const ddb = connectDynamoDb(inject('localServices').endpoints.dynamodb);
    const first = await createTables(ddb.client, stack);
    const name = first.find((t) => t.logicalId === 'MainTable74195DAB')!.tableName;
    const gsi2 = (await describeTable(name)).GlobalSecondaryIndexes!.find((g) => g.IndexName === 'gsi2')!;
    expect(gsi2.Projection).toEqual({ ProjectionType: 'INCLUDE', NonKeyAttributes: ['status', 'merchant_id'] });
    await db.send(new PutItemCommand({ TableName: name, Item: { pk: { S: 'keep' }, sk: { S: 'me' } } }));
    // Act: the template gains an index; start again.
    const props = template.Resources.MainTable74195DAB!.Properties! as { GlobalSecondaryIndexes: unknown[]; AttributeDefinitions: unknown[] };
    props.AttributeDefinitions.push({ AttributeName: 'gsi3pk', AttributeType: 'S' });
    props.GlobalSecondaryIndexes.push({ IndexName: 'gsi3', KeySchema: [{ AttributeName: 'gsi3pk', KeyType: 'HASH' }], Projection: { ProjectionType: 'KEYS_ONLY' } });
    const second = await createTables(ddb.client, new LocalStack(template, { stackName: stack.stackName }));
    // Assess
    expect(second.map((t) => t.tableName).sort()).toEqual(first.map((t) => t.tableName).sort());
    const table: TableDescription = await describeTable(name);
    expect(table.GlobalSecondaryIndexes!.map((g) => g.IndexName).sort()).toEqual(['gsi1', 'gsi2', 'gsi3']);
    expect((await db.send(new GetItemCommand({ TableName: name, Key: { pk: { S: 'keep' }, sk: { S: 'me' } } }))).Item).toBeDefined();
    await ddb.stop();
  });
});

describe('DynamoDB Local lifecycle', () => {
  it('persists data under dbPath across restarts, and stop() ends the JVM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'payplane-ddb-'));
    try {
      // Prepare
      const stack = new LocalStack(fixtureTemplate(), { stackName: 'Persist' });
      const key = { pk: { S: 'a' }, sk: { S: 'b' } };
      const first = await startDynamoDbLocal({ dataDir: dir });
      const main = (await createTables(first.client, stack)).find((t) => t.logicalId === 'MainTable74195DAB')!;
      await first.client.send(new PutItemCommand({ TableName: main.tableName, Item: key }));
      const firstPid = first.javaPid!;
      // Act
      await first.stop();
      // Assess
      expect(alive(firstPid)).toBe(false);
      const second = await startDynamoDbLocal({ dataDir: dir });
      await createTables(second.client, stack);
      expect((await second.client.send(new GetItemCommand({ TableName: main.tableName, Key: key }))).Item).toBeDefined();
      await second.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('leaves no JVM behind when the process that started it is SIGKILLed', async () => {
    // Prepare: a child process that starts DynamoDB Local and reports the JVM pid.
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'start-dynamodb-child.ts')], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    });
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once('line', resolve);
      child.once('exit', (code) => reject(new Error(`child exited with ${code}`)));
    });
    const { javaPid } = JSON.parse(line) as { javaPid: number };
    expect(alive(javaPid)).toBe(true);
    // Act: no chance for the child to clean up.
    child.kill('SIGKILL');
    // Assess
    expect(await waitUntil(() => !alive(javaPid), 10_000)).toBe(true);
  });
});
