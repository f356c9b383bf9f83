import type { webcrypto } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { createRemoteJWKSet } from 'jose';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resetClients } from '../../functions/commons/clients';
import { newId } from '../../functions/commons/ids';
import { RETRY_GAPS_SECONDS } from '../../functions/notifications/schedule';
import { signedContent } from '../../functions/notifications/signing';
import { eventItem, eventKey, type EventType } from '../../functions/events/event';
import { deliveryKey, failedIndexKeys } from '../../functions/notifications/deliveries';
import type { FaultSpec } from '../../local/faults';
import { newSecret, platformEvent, putEndpoint, putEvent, startReceiver, type Received } from '../integration/notifications-support';
import { call, cloud } from './support';

/**
 * Webhooks end to end through the local cloud: event items (written here directly, to control each event's type,
 * time and notify_url; webhooks-schedule.test.ts pays real orders) reach the
 * table's stream, PublishEvents fans them out, DeliverWebhooks signs and POSTs them to a real receiver on
 * 127.0.0.1 (the local cloud's loopback setting), retries are scheduled by the local SQS, and the platform key is
 * fetched from GET /v1/platform/public_keys.
 */
let db: DynamoDBDocumentClient;
let table: string;

beforeAll(() => {
  const c = cloud();
  table = c.tables.main!;
  // The administrator's key: this test does the writer's and the endpoints module's writes itself.
  Object.assign(process.env, {
    AWS_REGION: c.region,
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_ENDPOINT_URL_KMS: c.endpoints.kms,
    AWS_ENDPOINT_URL_DYNAMODB: c.endpoints.dynamodb,
    KMS_KEY_ARN: c.kmsKeyArn,
    TABLE_NAME: table,
  });
  resetClients();
  db = DynamoDBDocumentClient.from(new DynamoDBClient({ region: c.region, endpoint: c.endpoints.dynamodb, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }), {
    marshallOptions: { removeUndefinedValues: true },
  });
});

const receivers: { close(): Promise<void> }[] = [];
afterAll(async () => {
  await Promise.all(receivers.map((r) => r.close()));
});
async function receiver(...args: Parameters<typeof startReceiver>) {
  const r = await startReceiver(...args);
  receivers.push(r);
  return r;
}

/** Polls a condition the pipeline makes true by itself (no fixed sleeps; gives up after `ms`). */
async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, ms = 45_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const deliveryOf = async (eventId: string, target: string) =>
  (await db.send(new GetCommand({ TableName: table, Key: { pk: `DELIVERY#${eventId}`, sk: `TARGET#${target}` }, ConsistentRead: true }))).Item;
const attemptsOf = async (eventId: string) =>
  (await db.send(new QueryCommand({ TableName: table, KeyConditionExpression: 'pk = :pk AND begins_with(sk, :a)', ExpressionAttributeValues: { ':pk': `DELIVERY#${eventId}`, ':a': 'ATTEMPT#' }, ConsistentRead: true }))).Items ?? [];

async function emit(merchant: string, type: EventType = 'order.succeeded', object: Record<string, unknown> = {}) {
  const event = platformEvent(type, object);
  await putEvent(db, table, merchant, event);
  return event;
}

/** Verifies Payplane-Platform-Signature as a merchant would: jose fetches the JWKS and picks the key by kid. */
async function platformSignatureValid(r: Received): Promise<boolean> {
  const [, kid, sig] = /^kid=([^,]+),sig=(.+)$/.exec(String(r.headers['payplane-platform-signature']))!;
  const jwks = createRemoteJWKSet(new URL(`${cloud().url}/v1/platform/public_keys`));
  const key = (await jwks({ alg: 'EdDSA', kid })) as webcrypto.CryptoKey;
  const content = signedContent(String(r.headers['webhook-id']), Number(r.headers['webhook-timestamp']), r.body);
  return crypto.subtle.verify({ name: 'Ed25519' }, key, Buffer.from(sig!, 'base64url'), Buffer.from(content));
}

describe('webhook delivery through the local cloud', () => {
  it('fails once then succeeds: same webhook-id, verifies with standardwebhooks and the JWKS, the retry scheduled on the schedule', async () => {
    // Prepare
    let endpointCalls = 0;
    const r = await receiver((_, req) => ({ status: req.path === '/hook' && endpointCalls++ === 0 ? 503 : 200 }));
    const merchant = newId('mch');
    const endpoint = await putEndpoint(db, table, merchant, r.url());
    // Act
    const event = await emit(merchant, 'order.succeeded', { notify_url: r.url('/notify') });
    // Assess
    const done = await until('the delivery to succeed', async () => {
      const d = await deliveryOf(event.id, endpoint.id);
      return d?.status === 'succeeded' ? d : undefined;
    });
    expect(done.attempts).toBe(2);
    const toEndpoint = r.received.filter((x) => x.path === '/hook');
    expect(toEndpoint).toHaveLength(2);
    for (const x of toEndpoint) {
      expect(x.headers['webhook-id']).toBe(event.id);
      expect(new Webhook(endpoint.secrets[0]!).verify(x.body, x.headers as Record<string, string>)).toEqual(event);
      expect(() => new Webhook(endpoint.secrets[0]!).verify(x.body.replace('"version":1', '"version":9'), x.headers as Record<string, string>)).toThrow();
      expect(await platformSignatureValid(x)).toBe(true);
    }
    const attempts = await attemptsOf(event.id);
    const mine = attempts.filter((a) => String(a.sk).startsWith(`ATTEMPT#${endpoint.id}#`));
    expect(mine.map((a) => a.status_code)).toEqual([503, 200]);
    for (const a of mine) expect(a).toMatchObject({ url: r.url(), latency_ms: expect.any(Number), at: expect.any(String) });
    // The retry was scheduled 15 s ±10% after the first attempt: the DelaySeconds the local SQS recorded for it
    // (the whole schedule is webhooks-schedule.test.ts's, on a time-scaled cloud).
    expect(mine[0]!.error).toBe('answered 503');
    const queue = Object.keys(cloud().queues).find((id) => /^NotificationsDeliveries(?!Dlq)/.test(id))!;
    const sent = await (await fetch(`${cloud().endpoints.admin}/__sqs/sent?queue=${queue}&contains=${event.id}`)).json() as { messages: { body: string; delaySeconds: number }[] };
    const retry = sent.messages.filter((m) => JSON.parse(m.body).endpoint_id === endpoint.id && JSON.parse(m.body).attempt === 2);
    expect(retry).toHaveLength(1);
    expect(retry[0]!.delaySeconds).toBeGreaterThanOrEqual(Math.floor(RETRY_GAPS_SECONDS[0] * 0.9));
    expect(retry[0]!.delaySeconds).toBeLessThanOrEqual(Math.ceil(RETRY_GAPS_SECONDS[0] * 1.1));
    // The order's notify_url got it too: the platform signature, no HMAC (it has no secret).
    const notify = await until('the notify_url delivery', () => r.received.find((x) => x.path === '/notify'));
    expect(notify.headers['webhook-signature']).toBeUndefined();
    expect(await platformSignatureValid(notify)).toBe(true);
    // Published: out of the sweeper's index.
    const stored = (await db.send(new GetCommand({ TableName: table, Key: eventKey(merchant, event.id), ConsistentRead: true }))).Item!;
    expect(stored.gsi2pk).toBeUndefined();
  });

  it('publishes the JWKS without authentication: the EdDSA webhook key and the ES256 checkout key', async () => {
    const res = await call('GET', '/v1/platform/public_keys');
    expect(res.status).toBe(200);
    expect(res.body.keys).toEqual([
      { kty: 'OKP', crv: 'Ed25519', x: expect.any(String), kid: expect.any(String), alg: 'EdDSA', use: 'sig' },
      { kty: 'EC', crv: 'P-256', x: expect.any(String), y: expect.any(String), kid: expect.any(String), alg: 'ES256', use: 'sig' },
    ]);
  });

  it('during a secret roll both secrets verify', async () => {
    const r = await receiver();
    const merchant = newId('mch');
    const [current, old] = [newSecret(), newSecret()];
    await putEndpoint(db, table, merchant, r.url(), { secrets: [{ secret: current }, { secret: old, expires_at: new Date(Date.now() + 86_400_000).toISOString() }] });
    const event = await emit(merchant, 'refund.succeeded');
    const got = await until('the delivery', () => r.received[0]);
    expect(new Webhook(current).verify(got.body, got.headers as Record<string, string>)).toEqual(event);
    expect(new Webhook(old).verify(got.body, got.headers as Record<string, string>)).toEqual(event);
  });

  it('resend through the API delivers the event again with the same webhook-id', async () => {
    const r = await receiver();
    const c = cloud();
    const merchant = c.demo!.merchantId;
    const endpoint = await putEndpoint(db, table, merchant, r.url());
    const event = await emit(merchant, 'order.created');
    await until('the first delivery', () => r.received.find((x) => x.headers['webhook-id'] === event.id));
    const res = await call('POST', `/v1/events/${event.id}/resend`, { key: c.demo!.secretKey, body: { endpoint: endpoint.id }, idempotencyKey: newId('idem') });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ object: 'event_resend', event: event.id, queued: [{ endpoint: endpoint.id, attempt: 2 }] });
    await until('the second delivery', () => r.received.filter((x) => x.headers['webhook-id'] === event.id).length === 2 || undefined);
    // Without "endpoint": to every enabled endpoint of the merchant subscribed to the type (this one among them)
    const all = await call('POST', `/v1/events/${event.id}/resend`, { key: c.demo!.secretKey, body: {} });
    expect(all.status, all.text).toBe(200);
    expect(all.body.queued).toContainEqual({ endpoint: endpoint.id, notify_url: false, attempt: 3 });
    await until('the third delivery', () => r.received.filter((x) => x.headers['webhook-id'] === event.id).length === 3 || undefined);
    expect((await call('POST', `/v1/events/evt_unknown/resend`, { key: c.demo!.secretKey, body: {} })).status).toBe(404);
  });
});

describe('isolation', () => {
  it('merchant A’s endpoint hangs on every call; once its breaker opens, merchant B’s deliveries arrive while A’s calls hang', async () => {
    // Prepare: A's receiver first fails 5 calls at once (opening its breaker quickly: that timeouts count as failures
    // is the integration tier's), then never answers (each call ends at the deliverer's 10 s timeout); B's answers at once.
    const a = await receiver((n) => (n < 5 ? { status: 500 } : 'hang'));
    const b = await receiver();
    const [merchantA, merchantB] = [newId('mch'), newId('mch')];
    const endpointA = await putEndpoint(db, table, merchantA, a.url());
    await putEndpoint(db, table, merchantB, b.url());
    // Act 1: five deliveries to A fail and open its breaker
    for (let i = 0; i < 5; i++) await emit(merchantA, 'order.created');
    await until('A’s breaker to open', async () => {
      const { Item } = await db.send(new GetCommand({ TableName: table, Key: { pk: `WEBHOOKENDPOINT#${endpointA.id}`, sk: 'ENDPOINT' }, ConsistentRead: true }));
      return Item?.open_until ? Item : undefined;
    });
    // Act 2: more events for A (they go to the slow lane and hang there) and for B
    const hangingBefore = a.received.length;
    for (let i = 0; i < 4; i++) await emit(merchantA, 'order.created');
    await until('A’s new deliveries to be hanging in the slow lane', () => a.received.length >= hangingBefore + 4 || undefined);
    const fromA = a.received.length;
    const bEvents = [await emit(merchantB), await emit(merchantB), await emit(merchantB)];
    // Assess: all of B arrives while A's slow-lane calls are still open (none of them has timed out: A's count is unchanged)
    await until('B’s deliveries', () => bEvents.every((e) => b.received.some((x) => x.headers['webhook-id'] === e.id)) || undefined, 8_000);
    expect(a.received.length).toBe(fromA);
  });
});

describe('recovery', () => {
  it('the sweeper publishes an event the stream never did (older than 2 minutes), its receipt message included', async () => {
    // Prepare: an event item whose INSERT the publisher's filter does not see (as if the stream lost it), made an
    // event afterwards (a MODIFY, also filtered out), 3 minutes old
    const r = await receiver();
    const merchant = newId('mch');
    await putEndpoint(db, table, merchant, r.url());
    // order.succeeded: the sweeper also sends its receipt message (the receipts sender skips it: no such order)
    const event = platformEvent('order.succeeded', {}, new Date(Date.now() - 3 * 60_000));
    const item = eventItem(merchant, event);
    await db.send(new PutCommand({ TableName: table, Item: { ...item, type: 'event_draft' } }));
    await db.send(new PutCommand({ TableName: table, Item: item }));
    // Act
    const { rules } = (await (await fetch(`${cloud().endpoints.admin}/__schedules`)).json()) as { rules: { logicalId: string }[] };
    const sweep = rules.find((rule) => rule.logicalId.startsWith('NotificationsSweepEventsSchedule'))!;
    const res = await fetch(`${cloud().endpoints.admin}/__schedules/${sweep.logicalId}/trigger`, { method: 'POST' });
    expect(res.status, await res.clone().text()).toBe(200);
    // Assess
    const got = await until('the swept event', () => r.received.find((x) => x.headers['webhook-id'] === event.id));
    expect(JSON.parse(got.body)).toEqual(event);
    const receipts = Object.keys(cloud().queues).find((id) => id.startsWith('ReceiptsQueue'))!;
    const sent = (await (await fetch(`${cloud().endpoints.admin}/__sqs/sent?queue=${receipts}&contains=${event.id}`)).json()) as { messages: { body: string }[] };
    expect(sent.messages.map((m) => JSON.parse(m.body))).toEqual([{ event_id: event.id, merchant_id: merchant }]);
  });

  it('recover queues every failed delivery of the endpoint since the given time once more, through the API', async () => {
    // Prepare: a delivery that failed its 16 attempts (written as the deliverer leaves it; the schedule itself is the integration tier's)
    const r = await receiver();
    const c = cloud();
    const merchant = c.demo!.merchantId;
    const endpoint = await putEndpoint(db, table, merchant, r.url());
    const event = platformEvent('order.succeeded');
    await db.send(new PutCommand({ TableName: table, Item: { ...eventItem(merchant, event), gsi2pk: undefined, gsi2sk: undefined, type: 'event_archived' } }));
    await db.send(new PutCommand({ TableName: table, Item: { ...eventItem(merchant, event), gsi2pk: undefined, gsi2sk: undefined, published_at: event.created_at } }));
    const failedAt = new Date(Date.now() - 60_000).toISOString();
    await db.send(
      new PutCommand({
        TableName: table,
        Item: {
          ...deliveryKey(event.id, { endpointId: endpoint.id }),
          type: 'webhook_delivery',
          event_id: event.id,
          merchant_id: merchant,
          target: endpoint.id,
          status: 'failed',
          attempts: 16,
          run_start: 1,
          created_at: event.created_at,
          failed_at: failedAt,
          ttl: eventItem(merchant, event).ttl,
          ...failedIndexKeys(endpoint.id, failedAt, event.id),
        },
      }),
    );
    // Act
    const since = new Date(Date.now() - 3600_000).toISOString();
    const res = await call('POST', `/v1/webhook_endpoints/${endpoint.id}/recover`, { key: c.demo!.secretKey, body: { since }, idempotencyKey: newId('idem') });
    // Assess
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({ object: 'webhook_endpoint_recovery', endpoint: endpoint.id, since, queued: 1, has_more: false });
    await until('the recovered delivery', async () => (await deliveryOf(event.id, endpoint.id))?.status === 'succeeded' || undefined);
    expect(r.received.map((x) => x.headers['webhook-id'])).toEqual([event.id]);
    expect((await attemptsOf(event.id)).map((a) => a.sk)).toEqual([`ATTEMPT#${endpoint.id}#017`]);
    const bad = await call('POST', `/v1/webhook_endpoints/${endpoint.id}/recover`, { key: c.demo!.secretKey, body: { since: 'yesterday' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'parameter_invalid', param: 'since' });
  });
});

describe('fault injection', () => {
  const arm = async (spec: FaultSpec) => {
    const res = await fetch(`${cloud().endpoints.admin}/__faults`, { method: 'POST', body: JSON.stringify(spec) });
    expect(res.status, await res.clone().text()).toBe(201);
  };

  it.each([
    ['after it created the delivery, before it enqueued it', { operation: 'PutItem', contains: '"TARGET#', when: 'after' }],
    ['after it enqueued the delivery, before it marked the event published', { operation: 'UpdateItem', contains: 'gsi2pk', when: 'before' }],
  ] as const)('the publisher killed %s: the event is delivered, only ever with its webhook-id', async (_, point) => {
    // Prepare
    const r = await receiver();
    const merchant = newId('mch');
    const endpoint = await putEndpoint(db, table, merchant, r.url());
    const event = platformEvent('order.succeeded');
    await arm({ function: 'NotificationsPublishEvents', ...point, event: event.id } as FaultSpec);
    // Act
    await putEvent(db, table, merchant, event);
    // Assess: the stream retries the batch; the delivery arrives and the event ends published
    await until('the delivery', async () => (await deliveryOf(event.id, endpoint.id))?.status === 'succeeded' || undefined);
    await until('the event to be published', async () => !(await db.send(new GetCommand({ TableName: table, Key: eventKey(merchant, event.id), ConsistentRead: true }))).Item!.gsi2pk || undefined);
    const { faults } = (await (await fetch(`${cloud().endpoints.admin}/__faults`)).json()) as { faults: { event?: string; firedIn?: string }[] };
    expect(faults.find((f) => f.event === event.id)?.firedIn).toBeDefined();
    expect(r.received.length).toBeGreaterThanOrEqual(1);
    expect(new Set(r.received.map((x) => x.headers['webhook-id']))).toEqual(new Set([event.id]));
  });
});
