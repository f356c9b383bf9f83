import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { eventItem, EVENT_TYPES, newEventId, type EventType, type PlatformEvent } from '../../functions/events/event';
import { PROJECT_ROOT } from '../../local/assembly';
import { armFault, crashThenRetry } from './faults';
import { paidOrder } from './payments-support';
import { call, cloud, dump, newMerchant, payplane } from './support';

/**
 * Issue 9 §4 and §2 over HTTP through the local cloud: the webhook endpoints API (the secret shown once, never
 * read back, never logged, never at rest in plaintext), merchant scoping, and the events API over event items.
 */

const hook = (over: Record<string, unknown> = {}) => ({ url: 'https://shop.example/payplane/hooks', enabled_events: ['*'], ...over });

/** The table as the test harness (not a function) writes it: event and delivery items, as the writer and the deliverer would. */
function db(): DynamoDBDocumentClient {
  const c = cloud();
  return DynamoDBDocumentClient.from(new DynamoDBClient({ region: c.region, endpoint: c.endpoints.dynamodb, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }));
}
const put = (Item: Record<string, unknown>) => db().send(new PutCommand({ TableName: cloud().tables.main!, Item }));

const orderObject = (id: string, at: string) => ({
  id, object: 'order', livemode: false, merchant_order_no: 'A-1', status: 'succeeded', amount: 1050, amount_refunded: 0, currency: 'USD',
  description: null, capture_method: 'automatic', payer: null, metadata: {}, notify_url: null, return_url: null,
  checkout_url: `https://api.example/checkout/${id}`, expires_at: at, closed_at: null, close_reason: null, created_at: at, updated_at: at,
  version: 1, amount_authorized: 1050, amount_captured: 1050, payment_id: null, payment_method_details: null, last_payment_error: null,
  next_action: null, paid_at: at,
});

const refundObject = (at: string) => ({
  id: `re_${randomUUID().replaceAll('-', '')}`, object: 'refund', order_id: `ord_${randomUUID().replaceAll('-', '')}`, amount: 500, currency: 'USD',
  status: 'pending', reason: null, failure_reason: null, created_at: at, version: 1,
});

function event(type: EventType, at: Date): PlatformEvent {
  return {
    id: newEventId(at),
    object: 'event',
    type,
    created_at: at.toISOString(),
    api_version: '2026-12-01',
    livemode: false,
    // A whole order as the writer renders it: GET /v1/events answers these, and the contract check holds them to the spec.
    data: { object: type.startsWith('refund.') ? refundObject(at.toISOString()) : orderObject(`ord_${randomUUID().replaceAll('-', '')}`, at.toISOString()) },
    request: null,
  };
}

describe('webhook endpoints', () => {
  it('create → list → get → update → roll → delete; the secret only in the create and roll answers', async () => {
    // Prepare
    const { key } = await newMerchant('Webhooks CRUD');
    const idem = randomUUID();
    // Act: create (with a replay of the same request), read
    const created = await call('POST', '/v1/webhook_endpoints', { key, body: hook({ enabled_events: ['order.succeeded'], description: 'Shop' }), idempotencyKey: idem });
    const replay = await call('POST', '/v1/webhook_endpoints', { key, body: hook({ enabled_events: ['order.succeeded'], description: 'Shop' }), idempotencyKey: idem });
    const got = await call('GET', `/v1/webhook_endpoints/${created.body.id}`, { key });
    const listed = await call('GET', '/v1/webhook_endpoints', { key });
    // Assess
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({ object: 'webhook_endpoint', url: hook().url, enabled_events: ['order.succeeded'], description: 'Shop', disabled: false, livemode: false });
    const secret: string = created.body.secret;
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(replay.body).toEqual(created.body); // the same request, the same answer (Idempotency-Key)
    expect(got.status).toBe(200);
    expect(got.body).not.toHaveProperty('secret');
    expect(got.body).toEqual(Object.fromEntries(Object.entries(created.body).filter(([k]) => k !== 'secret')));
    expect(listed.body).toMatchObject({ object: 'list', url: '/v1/webhook_endpoints', has_more: false });
    expect(listed.body.data.map((e: { id: string }) => e.id)).toEqual([created.body.id]);
    expect(listed.text + got.text).not.toContain(secret.slice('whsec_'.length));

    // Act: update, with a replay
    const updateIdem = randomUUID();
    const update = { url: 'https://shop.example/v2/hooks', enabled_events: ['order.succeeded', 'refund.succeeded'], disabled: true };
    const updated = await call('POST', `/v1/webhook_endpoints/${created.body.id}`, { key, body: update, idempotencyKey: updateIdem });
    expect(updated.status, updated.text).toBe(200);
    expect(updated.body).toMatchObject({ ...update, disabled_reason: expect.stringContaining('merchant') });
    expect((await call('POST', `/v1/webhook_endpoints/${created.body.id}`, { key, body: update, idempotencyKey: updateIdem })).body).toEqual(updated.body);
    const enabled = await call('POST', `/v1/webhook_endpoints/${created.body.id}`, { key, body: { disabled: false } });
    expect(enabled.body).toMatchObject({ disabled: false, disabled_reason: null });

    // Act: roll, with a replay
    const rollIdem = randomUUID();
    const rolled = await call('POST', `/v1/webhook_endpoints/${created.body.id}/roll_secret`, { key, body: { expires_in: 3600 }, idempotencyKey: rollIdem });
    expect(rolled.status, rolled.text).toBe(200);
    expect(rolled.body.secret).toMatch(/^whsec_/);
    expect(rolled.body.secret).not.toBe(secret);
    expect(Date.parse(rolled.body.previous_secret_expires_at) - Date.parse(rolled.body.updated_at)).toBe(3600_000);
    expect((await call('POST', `/v1/webhook_endpoints/${created.body.id}/roll_secret`, { key, body: { expires_in: 3600 }, idempotencyKey: rollIdem })).body).toEqual(rolled.body);
    const afterRoll = await call('GET', `/v1/webhook_endpoints/${created.body.id}`, { key });
    expect(afterRoll.body).not.toHaveProperty('secret');
    expect(afterRoll.body.previous_secret_expires_at).toBe(rolled.body.previous_secret_expires_at);

    // Act: delete
    const deleted = await call('DELETE', `/v1/webhook_endpoints/${created.body.id}`, { key });
    expect(deleted.status).toBe(200);
    expect(deleted.body).toEqual({ id: created.body.id, object: 'webhook_endpoint', deleted: true });
    expect((await call('GET', `/v1/webhook_endpoints/${created.body.id}`, { key })).status).toBe(404);
    expect((await call('DELETE', `/v1/webhook_endpoints/${created.body.id}`, { key })).status).toBe(404);

    // Assess: neither secret is in any table in plaintext, nor in any function's log.
    const c = cloud();
    const log = readFileSync(join(PROJECT_ROOT, '.payplane', 'logs', 'e2e-functions.log'), 'utf8');
    for (const s of [secret, rolled.body.secret as string]) {
      const material = s.slice('whsec_'.length);
      for (const table of [c.tables.main!, c.tables.idempotency!]) for (const item of await dump(table)) expect(item).not.toContain(material);
      expect(log).not.toContain(material);
    }
  });

  it('pages the list newest first with starting_after', async () => {
    const { key } = await newMerchant('Webhooks list');
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await call('POST', '/v1/webhook_endpoints', { key, body: hook({ url: `https://shop.example/hooks/${i}` }) })).body.id);
    const first = await call('GET', '/v1/webhook_endpoints?limit=2', { key });
    expect(first.body.data.map((e: { id: string }) => e.id)).toEqual([ids[2], ids[1]]);
    expect(first.body.has_more).toBe(true);
    const second = await call('GET', `/v1/webhook_endpoints?limit=2&starting_after=${ids[1]}`, { key });
    expect(second.body.data.map((e: { id: string }) => e.id)).toEqual([ids[0]]);
    expect(second.body.has_more).toBe(false);
  });

  it('refusals name the field, the value and the fix', async () => {
    const { key } = await newMerchant('Webhooks refusals');
    const unknownType = await call('POST', '/v1/webhook_endpoints', { key, body: hook({ enabled_events: ['order.paid'] }), idempotencyKey: randomUUID() });
    expect(unknownType.status).toBe(400);
    expect(unknownType.body.error).toMatchObject({ code: 'parameter_invalid', param: 'enabled_events.0' });
    expect(unknownType.body.error.message).toContain('"order.paid"');
    for (const type of EVENT_TYPES) expect(unknownType.body.error.message).toContain(type);

    const metadata = await call('POST', '/v1/webhook_endpoints', { key, body: hook({ url: 'https://169.254.169.254/latest/meta-data/' }) });
    expect(metadata.status).toBe(400);
    expect(metadata.body.error).toMatchObject({ param: 'url', message: expect.stringContaining('169.254.169.254 is a link-local address') });
    const privateNet = await call('POST', '/v1/webhook_endpoints', { key, body: hook({ url: 'https://10.0.0.1/hooks' }) });
    expect(privateNet.body.error).toMatchObject({ param: 'url', message: expect.stringContaining('private') });

    // The local cloud is served on loopback, so a receiver on this machine may be registered over http.
    const local = await call('POST', '/v1/webhook_endpoints', { key, body: hook({ url: 'http://127.0.0.1:4000/webhooks' }) });
    expect(local.status, local.text).toBe(201);
    expect((await call('POST', '/v1/webhook_endpoints', { key, body: hook({ url: 'http://shop.example/hooks' }) })).body.error.message).toContain('https://');

    // With an Idempotency-Key: a refusal releases the key, so the corrected request may reuse it.
    const rollIdem = randomUUID();
    const roll = await call('POST', `/v1/webhook_endpoints/${local.body.id}/roll_secret`, { key, body: { expires_in: 8 * 86_400 }, idempotencyKey: rollIdem });
    expect(roll.body.error).toMatchObject({ param: 'expires_in', message: expect.stringContaining('7 days') });
    expect((await call('POST', `/v1/webhook_endpoints/${local.body.id}/roll_secret`, { key, body: {}, idempotencyKey: rollIdem })).status).toBe(200);
    const updateIdem = randomUUID();
    const update = await call('POST', `/v1/webhook_endpoints/${local.body.id}`, { key, body: { disabled: 'yes' }, idempotencyKey: updateIdem });
    expect(update.body.error).toMatchObject({ param: 'disabled', message: expect.stringContaining('Send true') });
    expect((await call('POST', `/v1/webhook_endpoints/${local.body.id}`, { key, body: { disabled: true }, idempotencyKey: updateIdem })).status).toBe(200);
  });

  it('another merchant gets 404 for the endpoint, on every route, and lists none of it', async () => {
    const mine = await newMerchant('Webhooks owner');
    const theirs = await newMerchant('Webhooks other');
    const { id } = (await call('POST', '/v1/webhook_endpoints', { key: mine.key, body: hook() })).body;
    for (const [method, path, body] of [
      ['GET', `/v1/webhook_endpoints/${id}`, undefined],
      ['POST', `/v1/webhook_endpoints/${id}`, { disabled: true }],
      ['POST', `/v1/webhook_endpoints/${id}/roll_secret`, {}],
      ['DELETE', `/v1/webhook_endpoints/${id}`, undefined],
    ] as const) {
      const res = await call(method, path, { key: theirs.key, body });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body.error).toMatchObject({ code: 'resource_missing', param: 'id' });
    }
    expect((await call('GET', '/v1/webhook_endpoints', { key: theirs.key })).body.data).toEqual([]);
    expect((await call('GET', `/v1/webhook_endpoints/${id}`, { key: mine.key })).body).toMatchObject({ id, disabled: false });
  });

  it('restricted keys: webhook_endpoints:read lists but cannot create; events:read reads events only', async () => {
    const m = await newMerchant('Webhooks scopes');
    const restricted = async (scopes: string) => JSON.parse((await payplane('keys', 'create', '--merchant', m.id, '--scope', scopes, '--json')).stdout).restricted_key as string;
    const reader = await restricted('webhook_endpoints:read');
    expect((await call('GET', '/v1/webhook_endpoints', { key: reader })).status).toBe(200);
    const refused = await call('POST', '/v1/webhook_endpoints', { key: reader, body: hook() });
    expect(refused.status).toBe(403);
    expect(refused.body.error).toMatchObject({ code: 'missing_scope', param: 'webhook_endpoints:write' });
    const events = await restricted('events:read');
    expect((await call('GET', '/v1/events', { key: events })).status).toBe(200);
    expect((await call('GET', '/v1/webhook_endpoints', { key: events })).body.error).toMatchObject({ code: 'missing_scope', param: 'webhook_endpoints:read' });
  });

  it('a create killed after its write, retried with the same key, answers with that one endpoint and its secret', async () => {
    const { key } = await newMerchant('Webhooks crash');
    const idem = randomUUID();
    await armFault('CreateWebhookEndpoint', 'afterEndpointInsert', idem);
    const retry = await crashThenRetry('/v1/webhook_endpoints', key, idem, hook());
    expect(retry.status, retry.text).toBe(201);
    expect(retry.body.secret).toMatch(/^whsec_/);
    const listed = await call('GET', '/v1/webhook_endpoints', { key });
    expect(listed.body.data.map((e: { id: string }) => e.id)).toEqual([retry.body.id]);
  });
});

describe('events API', () => {
  const t0 = new Date(Date.now() - 3600_000);
  const at = (minutes: number) => new Date(t0.getTime() + minutes * 60_000);
  const types: EventType[] = ['order.created', 'order.succeeded', 'order.created', 'refund.created', 'order.succeeded'];

  it('lists the caller\'s events newest first, with type and created filters and cursor pages; never another merchant\'s', async () => {
    // Prepare: event items as the writer stores them (eventItem), for two merchants.
    const mine = await newMerchant('Events owner');
    const theirs = await newMerchant('Events other');
    const stored = types.map((type, i) => event(type, at(i)));
    for (const e of stored) await put({ ...eventItem(mine.id, e) });
    const foreign = event('order.created', at(2));
    await put({ ...eventItem(theirs.id, foreign) });
    const newestFirst = [...stored].reverse();
    const ids = (res: { body: { data: PlatformEvent[] } }) => res.body.data.map((e) => e.id);

    // Act / Assess
    const all = await call('GET', '/v1/events', { key: mine.key });
    expect(all.status, all.text).toBe(200);
    expect(all.body).toMatchObject({ object: 'list', url: '/v1/events', has_more: false });
    expect(all.body.data).toEqual(newestFirst);

    const page1 = await call('GET', '/v1/events?limit=2', { key: mine.key });
    expect(ids(page1)).toEqual(newestFirst.slice(0, 2).map((e) => e.id));
    expect(page1.body.has_more).toBe(true);
    const page2 = await call('GET', `/v1/events?limit=2&starting_after=${page1.body.data[1].id}`, { key: mine.key });
    expect(ids(page2)).toEqual(newestFirst.slice(2, 4).map((e) => e.id));

    expect(ids(await call('GET', '/v1/events?type=order.succeeded', { key: mine.key }))).toEqual([stored[4]!.id, stored[1]!.id]);
    const range = await call('GET', `/v1/events?created[gte]=${encodeURIComponent(at(1).toISOString())}&created[lt]=${Math.floor(at(3).getTime() / 1000)}`, { key: mine.key });
    expect(ids(range)).toEqual([stored[2]!.id, stored[1]!.id]);

    const bad = await call('GET', '/v1/events?type=order.paid', { key: mine.key });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ param: 'type', message: expect.stringContaining('order.succeeded') });

    expect(ids(await call('GET', '/v1/events', { key: theirs.key }))).toEqual([foreign.id]);
    expect((await call('GET', `/v1/events/${stored[0]!.id}`, { key: theirs.key })).status).toBe(404);
  });

  it('a paid order\'s events as the writer wrote them with the payment: created first, succeeded last, each version higher', async () => {
    // Prepare
    const { key } = await newMerchant('Events of a payment');
    // Act
    const order = await paidOrder(key);
    // Assess: newest first; the events API is what a merchant reconciles missed webhooks with
    const listed = await call('GET', '/v1/events', { key });
    expect(listed.status, listed.text).toBe(200);
    const ofOrder = (listed.body.data as PlatformEvent[]).filter((e) => e.data.object.id === order.id);
    expect(ofOrder.at(0)).toMatchObject({ type: 'order.succeeded', data: { object: { id: order.id, status: 'succeeded', amount: order.amount } } });
    expect(ofOrder.at(-1)).toMatchObject({ type: 'order.created', data: { object: { id: order.id } } });
    const versions = ofOrder.map((e) => e.data.object.version as number);
    expect(versions).toEqual([...versions].sort((a, b) => b - a));
    expect(new Set(versions).size).toBe(versions.length);
    const one = await call('GET', `/v1/events/${ofOrder[0]!.id}`, { key });
    expect(one.status, one.text).toBe(200);
    expect(one.body).toMatchObject({ id: ofOrder[0]!.id, deliveries: [], delivery_attempts: [] });
  });

  it('GET /v1/events/{id}: the event and every delivery attempt, oldest first', async () => {
    // Prepare: an event and the deliverer's items for it.
    const { id: merchantId, key } = await newMerchant('Events attempts');
    const e = event('order.succeeded', new Date());
    await put({ ...eventItem(merchantId, e) });
    const pk = `DELIVERY#${e.id}`;
    await put({ pk, sk: 'TARGET#we_receiver', status: 'succeeded', attempts: 2, last_attempt_at: '2026-03-01T00:00:15.000Z' });
    await put({ pk, sk: 'ATTEMPT#we_receiver#01', at: '2026-03-01T00:00:00.000Z', url: 'https://a.example/h', status_code: 503, latency_ms: 12, error: 'HTTP 503' });
    await put({ pk, sk: 'ATTEMPT#we_receiver#02', at: '2026-03-01T00:00:15.000Z', url: 'https://a.example/h', status_code: 204, latency_ms: 9, error: null });
    // Act
    const res = await call('GET', `/v1/events/${e.id}`, { key });
    // Assess
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ id: e.id, object: 'event', type: 'order.succeeded', data: e.data });
    expect(res.body.delivery_attempts).toEqual([
      { target: 'we_receiver', url: 'https://a.example/h', attempted_at: '2026-03-01T00:00:00.000Z', status_code: 503, latency_ms: 12, error: 'HTTP 503' },
      { target: 'we_receiver', url: 'https://a.example/h', attempted_at: '2026-03-01T00:00:15.000Z', status_code: 204, latency_ms: 9, error: null },
    ]);
    expect(res.body.deliveries).toEqual([{ target: 'we_receiver', status: 'succeeded', attempts: 2, last_attempt_at: '2026-03-01T00:00:15.000Z', next_attempt_at: null }]);
    expect((await call('GET', '/v1/events/evt_unknown', { key })).status).toBe(404);
  });
});
