import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { dynamo } from '../../functions/commons/clients';
import { InvalidRequestError, NotFoundError } from '../../functions/commons/errors';
import { idFromSeed, newId } from '../../functions/commons/ids';
import { eventItem, newEventId, type EventType, type PlatformEvent } from '../../functions/events/event';
import { EventService } from '../../functions/events/service';
import {
  disableEndpoint,
  enabledEndpoints,
  getEndpoint,
  MAX_ENDPOINTS_PER_MERCHANT,
  signingSecrets,
} from '../../functions/webhooks/endpoints';
import { WebhookEndpointService, type AuditedCaller as Caller } from '../../functions/webhooks/service';
import { useLocalServices } from './env';

/** Issue 9 §4 and §2: webhook endpoints and the events API against DynamoDB Local and the KMS emulator. */

let table: string;
let endpoints: WebhookEndpointService;
let events: EventService;

beforeAll(() => {
  table = useLocalServices().tables.main;
  endpoints = new WebhookEndpointService(table);
  events = new EventService(table);
});

const caller = (merchantId = newId('mch'), now = new Date()): Caller => ({
  merchantId,
  baseUrl: 'https://api.test',
  now,
  by: { actor: { type: 'merchant_key', key_id: 'key_webhooktest' }, requestId: 'req-webhook-endpoints' },
});
const body = (over: Record<string, unknown> = {}) => ({ url: 'https://shop.example/hooks', enabled_events: ['*'], ...over });
const later = (c: Caller, seconds: number): Caller => ({ ...c, now: new Date(c.now.getTime() + seconds * 1000) });
const opened = async (merchantId: string, id: string, now: Date) => (await signingSecrets((await getEndpoint(table, merchantId, id))!, now)).map((s) => s.reveal());

describe('creating and reading endpoints', () => {
  it('shows the secret once; at rest it is only ciphertext; reads never show it', async () => {
    // Prepare
    const me = caller();
    // Act
    const created = await endpoints.create(me, body({ description: 'Shop' }));
    // Assess
    expect(created).toMatchObject({ object: 'webhook_endpoint', url: 'https://shop.example/hooks', enabled_events: ['*'], description: 'Shop', disabled: false });
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const { Item } = await dynamo().send(new GetCommand({ TableName: table, Key: { pk: `WEBHOOKENDPOINT#${created.id}`, sk: 'ENDPOINT' } }));
    expect(JSON.stringify(Item)).not.toContain(created.secret!.slice('whsec_'.length));
    expect(Item?.secrets[0].ciphertext).toBeInstanceOf(Uint8Array);
    const read = await endpoints.get(me, created.id);
    expect(read).not.toHaveProperty('secret');
    expect(JSON.stringify(read)).not.toContain(created.secret!.slice(6));
    expect(JSON.stringify(await endpoints.list(me, {}))).not.toContain(created.secret!.slice(6));
    // The deliverer gets it back, opened.
    expect(await opened(me.merchantId, created.id, me.now)).toEqual([created.secret]);
  });

  it('is scoped by merchant: another merchant can neither read, change, roll, delete nor list it', async () => {
    const mine = caller();
    const theirs = caller();
    const created = await endpoints.create(mine, body());
    await expect(endpoints.get(theirs, created.id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(endpoints.update(theirs, created.id, { disabled: true })).rejects.toBeInstanceOf(NotFoundError);
    await expect(endpoints.rollSecret(theirs, created.id, {})).rejects.toBeInstanceOf(NotFoundError);
    await expect(endpoints.delete(theirs, created.id)).rejects.toBeInstanceOf(NotFoundError);
    expect((await endpoints.list(theirs, {})).data).toEqual([]);
    expect(await getEndpoint(table, theirs.merchantId, created.id)).toBeUndefined();
    expect(await enabledEndpoints(table, theirs.merchantId, 'order.succeeded')).toEqual([]);
    // Untouched for its owner.
    expect(await endpoints.get(mine, created.id)).toMatchObject({ disabled: false });
  });

  it('lists newest first with cursor pagination', async () => {
    const me = caller();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await endpoints.create(later(me, i), body({ url: `https://shop.example/hooks/${i}` }))).id);
    const first = await endpoints.list(me, { limit: '2' });
    expect(first.data.map((e) => e.id)).toEqual([ids[2], ids[1]]);
    expect(first.has_more).toBe(true);
    const second = await endpoints.list(me, { limit: '2', starting_after: ids[1] });
    expect(second.data.map((e) => e.id)).toEqual([ids[0]]);
    expect(second.has_more).toBe(false);
  });

  it(`caps the endpoints per merchant at ${MAX_ENDPOINTS_PER_MERCHANT}, and a delete frees a slot`, async () => {
    const me = caller();
    const made = [];
    for (let i = 0; i < MAX_ENDPOINTS_PER_MERCHANT; i++) made.push(await endpoints.create(me, body()));
    const refused = await endpoints.create(me, body()).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(InvalidRequestError);
    expect((refused as InvalidRequestError).code).toBe('webhook_endpoint_limit');
    expect((refused as Error).message).toContain(`${MAX_ENDPOINTS_PER_MERCHANT} webhook endpoints`);
    expect(await endpoints.delete(me, made[0]!.id)).toEqual({ id: made[0]!.id, object: 'webhook_endpoint', deleted: true });
    await expect(endpoints.get(me, made[0]!.id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(endpoints.delete(me, made[0]!.id)).rejects.toBeInstanceOf(NotFoundError);
    expect((await endpoints.create(me, body())).id).toMatch(/^we_/);
    // Another merchant has its own slots.
    expect((await endpoints.create(caller(), body())).id).toMatch(/^we_/);
  });

  it('a create that resumes a run that died answers with the endpoint and the secret that run wrote', async () => {
    // Prepare: the same id, as a retry with the dead run's Idempotency-Key gets it.
    const seed = newId('seed');
    const me: Caller = { ...caller(), newId: (prefix) => idFromSeed(prefix, seed), resumed: true };
    const first = await endpoints.create(me, body());
    // Act
    const again = await endpoints.create(me, body());
    // Assess
    expect(again).toEqual(first);
    expect((await endpoints.list(me, {})).data).toHaveLength(1);
  });
});

describe('updating', () => {
  it('changes url, enabled_events and description; disabling stops fan-out; re-enabling resets the breaker', async () => {
    const me = caller();
    const created = await endpoints.create(me, body({ enabled_events: ['order.succeeded'] }));
    expect((await enabledEndpoints(table, me.merchantId, 'order.succeeded')).map((e) => e.id)).toEqual([created.id]);
    expect(await enabledEndpoints(table, me.merchantId, 'refund.succeeded')).toEqual([]);

    const changed = await endpoints.update(later(me, 1), created.id, { url: 'https://shop.example/v2', enabled_events: ['refund.succeeded'], description: 'v2' });
    expect(changed).toMatchObject({ url: 'https://shop.example/v2', enabled_events: ['refund.succeeded'], description: 'v2', updated_at: later(me, 1).now.toISOString() });
    expect((await enabledEndpoints(table, me.merchantId, 'refund.succeeded')).map((e) => e.id)).toEqual([created.id]);

    // The deliverer disables it (410 Gone) after tripping its breaker.
    await dynamo().send(
      new PutCommand({
        TableName: table,
        Item: { ...(await dynamo().send(new GetCommand({ TableName: table, Key: { pk: `WEBHOOKENDPOINT#${created.id}`, sk: 'ENDPOINT' } }))).Item, consecutive_failures: 7, open_until: '2099-01-01T00:00:00.000Z' },
      }),
    );
    await disableEndpoint(table, me.merchantId, created.id, 'The endpoint answered 410 Gone.');
    expect(await endpoints.get(me, created.id)).toMatchObject({ disabled: true, disabled_reason: 'The endpoint answered 410 Gone.' });
    expect(await enabledEndpoints(table, me.merchantId, 'refund.succeeded')).toEqual([]);

    const enabled = await endpoints.update(me, created.id, { disabled: false });
    expect(enabled).toMatchObject({ disabled: false, disabled_reason: null });
    const stored = (await getEndpoint(table, me.merchantId, created.id))!;
    expect(stored.consecutive_failures).toBe(0);
    expect(stored.open_until).toBeUndefined();
  });

  it('disableEndpoint leaves a deleted endpoint deleted, and another merchant\'s endpoint alone', async () => {
    const me = caller();
    const created = await endpoints.create(me, body());
    await disableEndpoint(table, newId('mch'), created.id, 'x');
    expect(await endpoints.get(me, created.id)).toMatchObject({ disabled: false });
    await endpoints.delete(me, created.id);
    await disableEndpoint(table, me.merchantId, created.id, 'x');
    expect(await getEndpoint(table, me.merchantId, created.id)).toBeUndefined();
  });
});

describe('rolling the secret', () => {
  it('keeps two secrets, newest first, until the old one expires; a second roll drops the oldest', async () => {
    // Prepare
    const me = caller();
    const created = await endpoints.create(me, body());
    // Act
    const rolled = await endpoints.rollSecret(me, created.id, { expires_in: 3600 });
    // Assess
    expect(rolled.secret).toMatch(/^whsec_/);
    expect(rolled.secret).not.toBe(created.secret);
    expect(rolled.previous_secret_expires_at).toBe(later(me, 3600).now.toISOString());
    expect(await opened(me.merchantId, created.id, me.now)).toEqual([rolled.secret, created.secret]);
    expect(await opened(me.merchantId, created.id, later(me, 3599).now)).toEqual([rolled.secret, created.secret]);
    expect(await opened(me.merchantId, created.id, later(me, 3600).now)).toEqual([rolled.secret]);
    expect(await endpoints.get(later(me, 3600), created.id)).toMatchObject({ previous_secret_expires_at: null });

    const again = await endpoints.rollSecret(later(me, 60), created.id, {});
    const stored = (await getEndpoint(table, me.merchantId, created.id))!;
    expect(stored.secrets).toHaveLength(2);
    expect(await opened(me.merchantId, created.id, later(me, 120).now)).toEqual([again.secret, rolled.secret]);
    expect(stored.secrets[1]!.expires_at).toBe(later(me, 60 + 86_400).now.toISOString());
  });

  it('a roll that resumes a run that died replaces that run\'s unseen secret and keeps the original one signing', async () => {
    // Prepare: a roll with an Idempotency-Key wrote its secret, then died before answering.
    const me = caller();
    const created = await endpoints.create(me, body());
    const seed = newId('seed');
    const withKey: Caller = { ...me, newId: (prefix) => idFromSeed(prefix, seed) };
    await endpoints.rollSecret(withKey, created.id, { expires_in: 3600 });
    // Act: the merchant's retry with the same key takes the request over.
    const retried = await endpoints.rollSecret({ ...later(withKey, 5), resumed: true }, created.id, { expires_in: 3600 });
    // Assess: the secret the retry shows, and the original (until the first run's expiry): not the lost one.
    expect(await opened(me.merchantId, created.id, me.now)).toEqual([retried.secret, created.secret]);
    expect(retried.previous_secret_expires_at).toBe(later(me, 3600).now.toISOString());
    // Another roll (another request) rolls the retry's secret away as usual.
    const next = await endpoints.rollSecret(later(me, 10), created.id, { expires_in: 60 });
    expect(await opened(me.merchantId, created.id, later(me, 10).now)).toEqual([next.secret, retried.secret]);
  });

  it('expires_in 0: the old secret stops signing at once', async () => {
    const me = caller();
    const created = await endpoints.create(me, body());
    const rolled = await endpoints.rollSecret(me, created.id, { expires_in: 0 });
    expect(await opened(me.merchantId, created.id, me.now)).toEqual([rolled.secret]);
    expect((await getEndpoint(table, me.merchantId, created.id))!.secrets).toHaveLength(1);
  });

  it('a secret copied onto another endpoint does not open (it is bound to its endpoint)', async () => {
    const me = caller();
    const a = await endpoints.create(me, body());
    const b = await endpoints.create(me, body());
    const stored = (await getEndpoint(table, me.merchantId, a.id))!;
    await expect(signingSecrets({ ...(await getEndpoint(table, me.merchantId, b.id))!, secrets: stored.secrets }, me.now)).rejects.toThrow(/another record/);
  });
});

// ─── Events API ──────────────────────────────────────────────────────────────────────────────────

function event(type: EventType, at: Date): PlatformEvent {
  return {
    id: newEventId(at),
    object: 'event',
    type,
    created_at: at.toISOString(),
    api_version: '2026-12-01',
    livemode: false,
    data: { object: { id: newId('ord'), object: 'order', version: 1 } },
    request: null,
  };
}

async function putEvents(merchantId: string, list: PlatformEvent[]) {
  for (const e of list) await dynamo().send(new PutCommand({ TableName: table, Item: eventItem(merchantId, e) }));
}

describe('GET /v1/events', () => {
  const t0 = new Date('2026-03-01T00:00:00.000Z');
  const at = (minutes: number) => new Date(t0.getTime() + minutes * 60_000);
  const me = caller();
  const types: EventType[] = ['order.created', 'order.succeeded', 'order.created', 'refund.created', 'order.succeeded', 'order.created'];
  const stored = types.map((type, i) => event(type, at(i)));

  beforeAll(async () => {
    await putEvents(me.merchantId, stored);
    await putEvents(newId('mch'), [event('order.created', at(2))]); // someone else's
  });
  const ids = (page: { data: PlatformEvent[] }) => page.data.map((e) => e.id);
  const newestFirst = [...stored].reverse();

  it('newest first, each the stored body, only the caller\'s', async () => {
    const page = await events.list(me, {});
    expect(page).toMatchObject({ object: 'list', url: '/v1/events', has_more: false });
    expect(page.data).toEqual(newestFirst);
  });

  it('pages with starting_after and limit', async () => {
    const first = await events.list(me, { limit: '4' });
    expect(ids(first)).toEqual(newestFirst.slice(0, 4).map((e) => e.id));
    expect(first.has_more).toBe(true);
    const second = await events.list(me, { limit: '4', starting_after: first.data.at(-1)!.id });
    expect(ids(second)).toEqual(newestFirst.slice(4).map((e) => e.id));
    expect(second.has_more).toBe(false);
  });

  it('filters by type, with exact has_more across filtered pages', async () => {
    const created = await events.list(me, { type: 'order.created', limit: '2' });
    expect(ids(created)).toEqual([stored[5]!.id, stored[2]!.id]);
    expect(created.has_more).toBe(true);
    const rest = await events.list(me, { type: 'order.created', limit: '2', starting_after: stored[2]!.id });
    expect(ids(rest)).toEqual([stored[0]!.id]);
    expect(rest.has_more).toBe(false);
  });

  it('filters by created[gte] (inclusive) and created[lt] (exclusive), in ISO or unix seconds', async () => {
    const page = await events.list(me, { 'created[gte]': at(1).toISOString(), 'created[lt]': String(at(4).getTime() / 1000) });
    expect(ids(page)).toEqual([stored[3]!.id, stored[2]!.id, stored[1]!.id]);
    const withCursor = await events.list(me, { 'created[gte]': at(1).toISOString(), starting_after: stored[2]!.id });
    expect(ids(withCursor)).toEqual([stored[1]!.id]);
    expect((await events.list(me, { 'created[gte]': at(5).toISOString(), 'created[lt]': at(1).toISOString() })).data).toEqual([]);
  });
});

describe('GET /v1/events/{id}', () => {
  it('the event with its deliveries and every attempt, oldest first; 404 for another merchant', async () => {
    // Prepare: an event, and what the deliverer writes for it (COMMON.md: DELIVERY# items).
    const me = caller();
    const e = event('order.succeeded', new Date());
    await putEvents(me.merchantId, [e]);
    const pk = `DELIVERY#${e.id}`;
    const items = [
      { pk, sk: 'TARGET#we_A', status: 'succeeded', attempts: 2, last_attempt_at: '2026-03-01T00:00:15.000Z' },
      { pk, sk: 'TARGET#notify_url', status: 'pending', attempts: 1, last_attempt_at: '2026-03-01T00:00:01.000Z', next_attempt_at: '2026-03-01T00:00:16.000Z' },
      { pk, sk: 'ATTEMPT#we_A#02', at: '2026-03-01T00:00:15.000Z', url: 'https://a.example/h', status_code: 200, latency_ms: 35, error: null },
      { pk, sk: 'ATTEMPT#we_A#01', at: '2026-03-01T00:00:00.000Z', url: 'https://a.example/h', status_code: 500, latency_ms: 40, error: 'HTTP 500' },
      { pk, sk: 'ATTEMPT#notify_url#01', at: '2026-03-01T00:00:01.000Z', url: 'https://n.example/n', status_code: null, latency_ms: 10000, error: 'timeout after 10 s' },
    ];
    for (const Item of items) await dynamo().send(new PutCommand({ TableName: table, Item }));
    // Act
    const read = await events.get(me, e.id);
    // Assess
    expect(read).toMatchObject({ id: e.id, type: 'order.succeeded', data: e.data });
    expect(read.delivery_attempts).toEqual([
      { target: 'we_A', url: 'https://a.example/h', attempted_at: '2026-03-01T00:00:00.000Z', status_code: 500, latency_ms: 40, error: 'HTTP 500' },
      { target: 'notify_url', url: 'https://n.example/n', attempted_at: '2026-03-01T00:00:01.000Z', status_code: null, latency_ms: 10000, error: 'timeout after 10 s' },
      { target: 'we_A', url: 'https://a.example/h', attempted_at: '2026-03-01T00:00:15.000Z', status_code: 200, latency_ms: 35, error: null },
    ]);
    expect(read.deliveries).toEqual(
      expect.arrayContaining([
        { target: 'we_A', status: 'succeeded', attempts: 2, last_attempt_at: '2026-03-01T00:00:15.000Z', next_attempt_at: null },
        { target: 'notify_url', status: 'pending', attempts: 1, last_attempt_at: '2026-03-01T00:00:01.000Z', next_attempt_at: '2026-03-01T00:00:16.000Z' },
      ]),
    );
    await expect(events.get(caller(), e.id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(events.get(me, 'evt_nope')).rejects.toBeInstanceOf(NotFoundError);
  });
});
