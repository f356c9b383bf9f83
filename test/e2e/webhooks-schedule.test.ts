import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { operatorCall } from '../../cli/operator-client';
import type { MerchantCreated } from '../../functions/operator/operations';
import type { DeliveryMessage } from '../../functions/notifications/deliveries';
import { JITTER, MAX_ATTEMPTS, RETRY_GAPS_SECONDS } from '../../functions/notifications/schedule';
import { PROJECT_ROOT } from '../../local/assembly';
import { startLocalCloud, type LocalCloud } from '../../local/cloud';
import type { FaultSpec } from '../../local/faults';
import { startReceiver, type Received } from '../integration/notifications-support';
import { card, CARDS } from './payments-support';
import { orderBody } from './support';
import { TEST_BY } from '../actors';

/**
 * The retry schedule end to end, through a second local cloud of its own that runs 3600× faster (the tier's cloud
 * runs at real time, and its other tests time channel callbacks and crash retries by it): WeChat Pay's 24 h 4 m
 * schedule of SQS hops takes about half a minute. Everything else is as deployed: a merchant registers an endpoint
 * through the API, pays an order through the API (confirm with 4242), the writer's event goes table stream →
 * publisher → delivery queue → deliverer → a real receiver on 127.0.0.1. The schedule is asserted from the
 * DelaySeconds the local SQS recorded for each hop, never from arrival times (handler clocks stay real time).
 */
const TIME_SCALE = 3600;
let cloud: LocalCloud;

beforeAll(async () => {
  cloud = await startLocalCloud({
    port: 0,
    inMemory: true,
    quiet: true,
    schedules: false,
    seed: false,
    stage: 'test',
    faults: true,
    timeScale: TIME_SCALE,
    localFile: false,
    functionLogs: join(PROJECT_ROOT, '.payplane', 'logs', 'e2e-scaled-functions.log'),
  });
}, 120_000);

const receivers: { close(): Promise<void> }[] = [];
afterAll(async () => {
  await Promise.all(receivers.map((r) => r.close()));
  await cloud?.stop();
});

async function receiver(answer: Parameters<typeof startReceiver>[0]) {
  const r = await startReceiver(answer);
  receivers.push(r);
  return r;
}

async function api(method: string, path: string, key: string, body?: unknown): Promise<{ status: number; body: any; text: string }> {
  const headers: Record<string, string> = { Authorization: `Bearer ${key}`, 'Idempotency-Key': randomUUID() };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`${cloud.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text), text };
}

/** Polls what the pipeline makes true by itself (no fixed sleeps; gives up after `ms`). */
async function until<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, ms = 50_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A merchant of this cloud with an endpoint for `url` that receives order.succeeded only, and its secret. */
async function merchantWithEndpoint(url: string) {
  // As the operator CLI makes one: the operator API, signed with the operator's credentials.
  const created = await operatorCall<MerchantCreated>({ apiUrl: cloud.url, region: cloud.region, credentials: cloud.operatorCredentials }, 'merchants create', { body: { name: 'Schedule E2E' } });
  const key = created.secret_key;
  const endpoint = await api('POST', '/v1/webhook_endpoints', key, { url, enabled_events: ['order.succeeded'] });
  expect(endpoint.status, endpoint.text).toBe(201);
  return { key, endpointId: endpoint.body.id as string, secret: endpoint.body.secret as string };
}

/** Pays a new order through the API (confirm with 4242) and returns its order.succeeded event as the events API lists it. */
async function payOrder(key: string) {
  const order = await api('POST', '/v1/orders', key, orderBody());
  expect(order.status, order.text).toBe(201);
  const paid = await api('POST', `/v1/orders/${order.body.id}/confirm`, key, card(CARDS.success));
  expect(paid.status, paid.text).toBe(200);
  expect(paid.body.status).toBe('succeeded');
  return until('the order.succeeded event', async () => {
    const events = await api('GET', '/v1/events?type=order.succeeded', key);
    return events.body.data?.find((e: any) => e.data.object.id === order.body.id);
  });
}

const laneIds = () => Object.keys(cloud.queues).filter((id) => /^Notifications(Slow)?Deliveries(?!Dlq)/.test(id));
const dlqId = () => Object.keys(cloud.queues).find((id) => id.startsWith('NotificationsDeliveriesDlq'))!;

/** Per attempt number, the sum of the DelaySeconds the local SQS recorded for its hops (both lanes). */
function waitedPerAttempt(eventId: string, endpointId: string): Map<number, number> {
  const waited = new Map<number, number>();
  for (const queue of laneIds()) {
    for (const sent of cloud.sqsSent(queue, { contains: eventId })) {
      const message = JSON.parse(sent.body) as DeliveryMessage;
      if (message.endpoint_id !== endpointId) continue;
      waited.set(message.attempt, (waited.get(message.attempt) ?? 0) + sent.delaySeconds);
    }
  }
  return waited;
}

/** Attempt n waited the schedule's gap before it, within its ±10% jitter (and the whole seconds SQS takes). */
function expectOnSchedule(waited: Map<number, number>, attempts: number): void {
  expect(waited.get(1)).toBe(0);
  for (let n = 2; n <= attempts; n++) {
    const gap = RETRY_GAPS_SECONDS[n - 2]!;
    const got = waited.get(n);
    expect(got, `attempt ${n}: waited ${got} s for a gap of ${gap} s`).toBeGreaterThanOrEqual(Math.floor(gap * (1 - JITTER)));
    expect(got, `attempt ${n}: waited ${got} s for a gap of ${gap} s`).toBeLessThanOrEqual(Math.ceil(gap * (1 + JITTER)));
  }
}

const verifies = (secret: string, r: Received) => new Webhook(secret).verify(r.body, r.headers as Record<string, string>);

// Concurrent: each test has its own merchant, endpoint and receiver; the full schedule's half minute bounds the file.
describe.concurrent('the retry schedule through a 3600× local cloud', () => {
  it('a receiver that is down for an hour gets the paid order’s order.succeeded afterwards, signed, every attempt listed', async () => {
    // Prepare: down for the first 8 attempts (the 8th is 64 minutes of scheduled waits after the first)
    const r = await receiver((n) => ({ status: n < 8 ? 503 : 200 }));
    const { key, endpointId, secret } = await merchantWithEndpoint(r.url());
    // Act
    const event = await payOrder(key);
    // Assess
    const shown = await until('the delivery to succeed', async () => {
      const got = await api('GET', `/v1/events/${event.id}`, key);
      return got.body.deliveries?.[0]?.status === 'succeeded' ? got.body : undefined;
    });
    expect(shown.deliveries).toEqual([expect.objectContaining({ target: endpointId, status: 'succeeded', attempts: 9 })]);
    expect(shown.delivery_attempts.map((a: any) => a.status_code)).toEqual([503, 503, 503, 503, 503, 503, 503, 503, 200]);
    for (const a of shown.delivery_attempts) expect(a).toMatchObject({ target: endpointId, url: r.url(), attempted_at: expect.any(String), latency_ms: expect.any(Number) });
    expect(shown.delivery_attempts[0].error).toBe('answered 503');
    expect(shown.delivery_attempts[8].error).toBeNull();
    expect(r.received).toHaveLength(9);
    for (const x of r.received) {
      expect(x.headers['webhook-id']).toBe(event.id);
      expect(verifies(secret, x)).toMatchObject({ id: event.id, type: 'order.succeeded' });
    }
    const waited = waitedPerAttempt(event.id, endpointId);
    expectOnSchedule(waited, 9);
    const downFor = [...waited.values()].reduce((a, b) => a + b, 0);
    expect(downFor).toBeGreaterThanOrEqual(3600);
  });

  it('every attempt fails: 16 on the schedule, then failed and in the DLQ; recover delivers it again', async () => {
    // Prepare
    let up = false;
    const r = await receiver(() => ({ status: up ? 200 : 500 }));
    const { key, endpointId, secret } = await merchantWithEndpoint(r.url());
    // Act
    const event = await payOrder(key);
    // Assess: failed after the 16th attempt, in the DLQ once
    const shown = await until(
      'the delivery to fail',
      async () => {
        const got = await api('GET', `/v1/events/${event.id}`, key);
        return got.body.deliveries?.[0]?.status === 'failed' ? got.body : undefined;
      },
      100_000,
    );
    expect(shown.deliveries[0]).toMatchObject({ target: endpointId, attempts: MAX_ATTEMPTS });
    expect(shown.delivery_attempts).toHaveLength(MAX_ATTEMPTS);
    expect(new Set(shown.delivery_attempts.map((a: any) => a.status_code))).toEqual(new Set([500]));
    expectOnSchedule(waitedPerAttempt(event.id, endpointId), MAX_ATTEMPTS);
    const dead = cloud.sqsSent(dlqId(), { contains: event.id }).map((s) => JSON.parse(s.body) as DeliveryMessage);
    expect(dead).toEqual([expect.objectContaining({ event_id: event.id, endpoint_id: endpointId, attempt: MAX_ATTEMPTS })]);
    expect(r.received).toHaveLength(MAX_ATTEMPTS);
    // Act: the receiver is back; the merchant recovers what failed in the last day
    up = true;
    const since = new Date(Date.now() - 86_400_000).toISOString();
    const recovered = await api('POST', `/v1/webhook_endpoints/${endpointId}/recover`, key, { since });
    expect(recovered.status, recovered.text).toBe(200);
    expect(recovered.body).toMatchObject({ queued: 1, has_more: false });
    // Assess
    const after = await until('the recovered delivery', async () => {
      const got = await api('GET', `/v1/events/${event.id}`, key);
      return got.body.deliveries?.[0]?.status === 'succeeded' ? got.body : undefined;
    });
    expect(after.delivery_attempts).toHaveLength(MAX_ATTEMPTS + 1);
    expect(after.delivery_attempts.at(-1)).toMatchObject({ status_code: 200, error: null });
    const last = r.received.at(-1)!;
    expect(last.headers['webhook-id']).toBe(event.id);
    expect(verifies(secret, last)).toMatchObject({ id: event.id });
  }, 150_000);

  it.each([
    ['after its POST, before it recorded the attempt', { operation: 'TransactWriteItems', contains: '"ATTEMPT#', when: 'before' }, 200],
    ['after it scheduled the next attempt, before it recorded this one', { operation: 'SendMessage', when: 'after' }, 503],
  ] as const)('the deliverer killed %s: the event arrives, only ever with its webhook-id', async (_, point, firstAnswer) => {
    // Prepare: the fault is for this endpoint's messages only (its id is in the message the deliverer gets)
    const r = await receiver((n) => ({ status: n === 0 ? firstAnswer : 200 }));
    const { key, endpointId, secret } = await merchantWithEndpoint(r.url());
    const armed = await fetch(`${cloud.endpoints.admin}/__faults`, {
      method: 'POST',
      body: JSON.stringify({ function: 'NotificationsDeliverWebhooks', ...point, event: endpointId } as FaultSpec),
    });
    expect(armed.status, await armed.clone().text()).toBe(201);
    // Act
    const event = await payOrder(key);
    // Assess: the message comes back after its (scaled) visibility timeout and the delivery ends succeeded
    const shown = await until('the delivery to succeed', async () => {
      const got = await api('GET', `/v1/events/${event.id}`, key);
      return got.body.deliveries?.[0]?.status === 'succeeded' ? got.body : undefined;
    });
    const { faults } = (await (await fetch(`${cloud.endpoints.admin}/__faults`)).json()) as { faults: { event?: string; firedIn?: string }[] };
    expect(faults.find((f) => f.event === endpointId)?.firedIn).toBeDefined();
    // At least once: the killed attempt was sent again, never anything but this event, each signed
    expect(r.received.length).toBeGreaterThanOrEqual(2);
    for (const x of r.received) {
      expect(x.headers['webhook-id']).toBe(event.id);
      expect(verifies(secret, x)).toMatchObject({ id: event.id });
    }
    expect(shown.delivery_attempts.at(-1)).toMatchObject({ status_code: 200 });
  });
});
