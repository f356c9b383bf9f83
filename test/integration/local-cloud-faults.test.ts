import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startLocalCloud, type LocalCloud } from '../../local/cloud';

/** Fault injection (local/faults.ts) on the fixture's ScheduledFunction, which writes one item per event id. */
const FIXTURE = join(import.meta.dirname, 'fixtures', 'local-cloud');
const FN = 'ScheduledFunction9C8D7E6F';

const start = (faults: boolean) =>
  startLocalCloud({ assemblyDir: FIXTURE, port: 0, inMemory: true, quiet: true, schedules: false, seed: false, faults, dynamodbEndpoint: inject('localServices').endpoints.dynamodb });

let cloud: LocalCloud;
let db: DynamoDBDocumentClient;
beforeAll(async () => {
  cloud = await start(true);
  db = DynamoDBDocumentClient.from(new DynamoDBClient({ region: cloud.region, endpoint: cloud.endpoints.dynamodb, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }));
});
afterAll(async () => {
  await cloud?.stop();
});

const arm = (spec: Record<string, unknown>) => fetch(`${cloud.endpoints.admin}/__faults`, { method: 'POST', body: JSON.stringify(spec) });
const written = async (id: string) =>
  (await db.send(new GetCommand({ TableName: cloud.tables.main, Key: { pk: `SCHEDULED#${id}`, sk: 'EVENT' }, ConsistentRead: true }))).Item !== undefined;

describe('fault injection', () => {
  it('kills the invocation before the matching call is sent: nothing is written', async () => {
    const id = randomUUID();
    expect((await arm({ function: 'ScheduledFunction', operation: 'PutItem', when: 'before', event: id })).status).toBe(201);
    const result = await cloud.runtime.invoke(FN, { id });
    expect(result).toMatchObject({ ok: false, error: { errorType: 'Runtime.ExitError' } });
    expect(await written(id)).toBe(false);
  });

  it('kills it after the call took effect, once: the retry runs normally', async () => {
    const id = randomUUID();
    await arm({ function: FN, operation: ['PutItem'], contains: `SCHEDULED#${id}`, when: 'after' });
    expect(await cloud.runtime.invoke(FN, { id })).toMatchObject({ ok: false, error: { errorType: 'Runtime.ExitError' } });
    expect(await written(id)).toBe(true);
    expect(await cloud.runtime.invoke(FN, { id })).toMatchObject({ ok: true, payload: { recorded: id } });
    const { faults } = (await (await fetch(`${cloud.endpoints.admin}/__faults`)).json()) as { faults: { contains?: string; firedIn?: string }[] };
    expect(faults.find((f) => f.contains === `SCHEDULED#${id}`)?.firedIn).toBeTruthy();
  });

  it('fires only in invocations whose event matches, and refuses a fault without "when", naming it', async () => {
    const mine = randomUUID();
    await arm({ function: FN, operation: 'PutItem', when: 'before', event: mine });
    expect(await cloud.runtime.invoke(FN, { id: randomUUID() })).toMatchObject({ ok: true });
    expect(await cloud.runtime.invoke(FN, { id: mine })).toMatchObject({ ok: false });
    const bad = await arm({ function: FN });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toMatch(/"when"/);
    expect((await fetch(`${cloud.endpoints.admin}/__faults`, { method: 'DELETE' })).status).toBe(204);
  });

  it('does not exist unless the cloud starts with faults: true', async () => {
    const plain = await start(false);
    try {
      expect((await fetch(`${plain.endpoints.admin}/__faults`)).status).toBe(501);
      expect((await fetch(`${plain.endpoints.admin}/__faults`, { method: 'POST', body: JSON.stringify({ function: FN, when: 'before' }) })).status).toBe(501);
      expect(await plain.runtime.invoke(FN, { id: randomUUID() })).toMatchObject({ ok: true });
    } finally {
      await plain.stop();
    }
  });
});
