import { GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dynamo } from '../../functions/commons/clients';
import { newId } from '../../functions/commons/ids';
import { resetNotificationClients } from '../../functions/notifications/aws';
import { attemptKey, deliveryKey, messageFor, parseMessage, type DeliveryMessage } from '../../functions/notifications/deliveries';
import { BREAKER_THRESHOLD, deliver, type DeliverOptions } from '../../functions/notifications/deliverer';
import { endpointKey } from '../../functions/webhooks/endpoints';
import { postWebhook } from '../../functions/notifications/outbound';
import { PLATFORM_KEY, resetPlatformKeyCache } from '../../functions/notifications/platform-key';
import { publishEvent, sweepUnpublished } from '../../functions/notifications/publisher';
import { recoverEndpoint, resendEvent } from '../../functions/notifications/recovery';
import { RETRY_GAPS_SECONDS } from '../../functions/notifications/schedule';
import { signedContent } from '../../functions/notifications/signing';
import { eventKey } from '../../functions/events/event';
import { startSqs, type SqsEndpoint } from '../../local/sqs';
import { LocalStack } from '../../local/template';
import { useLocalServices } from './env';
import { newSecret, platformEvent, putEndpoint, putEvent, startReceiver } from './notifications-support';

/**
 * The notification pipeline's units against DynamoDB Local, the KMS emulator, the local SQS and a real HTTP
 * receiver on 127.0.0.1 (loopback allowed, as the local cloud allows it). Tests drive the queues themselves:
 * they take each message out of the local SQS with the DelaySeconds it was sent with, and hand it to the
 * deliverer at the simulated time SQS would have delivered it, so the whole schedule runs in milliseconds and
 * every assertion is on recorded delays, never on wall-clock arrival.
 */
let table: string;
let sqs: SqsEndpoint;
const db = () => dynamo();
const QUEUES = { Deliveries: {}, SlowDeliveries: {}, DeliveriesDlq: {}, Receipts: {} };

beforeAll(async () => {
  table = useLocalServices().tables.main;
  const stack = new LocalStack({ Resources: Object.fromEntries(Object.keys(QUEUES).map((id) => [id, { Type: 'AWS::SQS::Queue', Properties: {} }])) }, { stackName: 'Payplane-notifications' });
  sqs = await startSqs(stack);
  Object.assign(process.env, {
    AWS_ENDPOINT_URL_SQS: sqs.url,
    DELIVERY_QUEUE_URL: sqs.queueUrls.Deliveries,
    DELIVERY_SLOW_QUEUE_URL: sqs.queueUrls.SlowDeliveries,
    DELIVERY_DLQ_URL: sqs.queueUrls.DeliveriesDlq,
    RECEIPTS_QUEUE_URL: sqs.queueUrls.Receipts,
    PAYPLANE_LOCAL_ALLOW_LOOPBACK_WEBHOOKS: '1',
  });
  resetNotificationClients();
  resetPlatformKeyCache();
});
afterAll(async () => {
  resetNotificationClients();
  await sqs?.stop();
});

interface Taken {
  message: DeliveryMessage;
  delaySeconds: number;
}
/** Every message in a queue now (delayed ones included), removed, with the DelaySeconds it was sent with. */
function take(queue: keyof typeof QUEUES, filter: (m: DeliveryMessage) => boolean = () => true): Taken[] {
  const q = sqs.sqs.queueByUrl(sqs.queueUrls[queue]);
  const mine = q.messages.filter((m) => filter(JSON.parse(m.body)));
  q.messages = q.messages.filter((m) => !mine.includes(m));
  return mine.map((m) => ({ message: queue === 'Receipts' ? JSON.parse(m.body) : parseMessage(m.body), delaySeconds: Math.round((m.visibleAt - m.sentAt) / 1000) }));
}
const forEvent = (eventId: string) => (m: DeliveryMessage) => m.event_id === eventId;
const at = (t: number) => ({ now: () => new Date(t) });
const options = (over: Partial<DeliverOptions> = {}): DeliverOptions => ({ table, lane: 'main', ...over });
const delivery = async (eventId: string, target: string) => (await db().send(new GetCommand({ TableName: table, Key: deliveryKey(eventId, target) }))).Item;
const attempts = async (eventId: string) =>
  (await db().send(new QueryCommand({ TableName: table, KeyConditionExpression: 'pk = :pk AND begins_with(sk, :a)', ExpressionAttributeValues: { ':pk': `DELIVERY#${eventId}`, ':a': 'ATTEMPT#' } }))).Items ?? [];

async function platformKeyJwk() {
  const { Item } = await db().send(new GetCommand({ TableName: table, Key: PLATFORM_KEY }));
  return Item!.public_jwk as { kty: string; crv: string; x: string };
}
async function platformSignatureValid(headers: Record<string, string | string[] | undefined>, body: string): Promise<boolean> {
  const [, , sig] = /^kid=([^,]+),sig=(.+)$/.exec(String(headers['payplane-platform-signature']))!;
  const key = await crypto.subtle.importKey('jwk', await platformKeyJwk(), { name: 'Ed25519' }, false, ['verify']);
  return crypto.subtle.verify({ name: 'Ed25519' }, key, Buffer.from(sig!, 'base64url'), Buffer.from(signedContent(String(headers['webhook-id']), Number(headers['webhook-timestamp']), body)));
}

describe('publishing', () => {
  it('one delivery per target (subscribed endpoints and the order’s notify_url), the receipt message, the event marked published', async () => {
    // Prepare
    const receiver = await startReceiver();
    const merchant = newId('mch');
    const subscribed = await putEndpoint(db(), table, merchant, receiver.url('/a'));
    await putEndpoint(db(), table, merchant, receiver.url('/b'), { enabled_events: ['refund.created'] });
    const event = platformEvent('order.succeeded', { notify_url: receiver.url('/notify') });
    const item = await putEvent(db(), table, merchant, event);
    // Act
    await publishEvent(table, item);
    // Assess
    const messages = take('Deliveries', forEvent(event.id));
    expect(messages.map((m) => m.message)).toHaveLength(2);
    expect(messages.map((m) => m.message)).toEqual(
      expect.arrayContaining([
        { event_id: event.id, merchant_id: merchant, endpoint_id: subscribed.id, attempt: 1 },
        { event_id: event.id, merchant_id: merchant, notify_url: true, attempt: 1 },
      ]),
    );
    expect(take('Receipts').map((m) => JSON.parse(JSON.stringify(m.message)))).toContainEqual({ event_id: event.id, merchant_id: merchant });
    const stored = (await db().send(new GetCommand({ TableName: table, Key: eventKey(merchant, event.id) }))).Item!;
    expect(stored.gsi2pk).toBeUndefined();
    expect(stored.published_at).toEqual(expect.any(String));

    // Act: both delivered, with real signatures
    for (const { message } of messages) expect(await deliver(message, options())).toBe('succeeded');
    // Assess
    const byPath = Object.fromEntries(receiver.received.map((r) => [r.path, r]));
    const body = JSON.stringify(event);
    expect(byPath['/a']!.body).toBe(body);
    expect(new Webhook(subscribed.secrets[0]!).verify(body, byPath['/a']!.headers as Record<string, string>)).toEqual(event);
    expect(byPath['/notify']!.headers['webhook-signature']).toBeUndefined();
    for (const r of [byPath['/a']!, byPath['/notify']!]) {
      expect(r.headers['webhook-id']).toBe(event.id);
      expect(await platformSignatureValid(r.headers, r.body)).toBe(true);
    }
    expect(await delivery(event.id, subscribed.id)).toMatchObject({ status: 'succeeded', attempts: 1 });

    // Act: published again (a stream retry, the sweeper): the deliveries exist and made their attempt
    await publishEvent(table, item);
    // Assess
    expect(take('Deliveries', forEvent(event.id))).toEqual([]);
    await receiver.close();
  });

  it('the sweeper publishes events unpublished for over 2 minutes, and leaves younger ones to the stream', async () => {
    const merchant = newId('mch');
    const receiver = await startReceiver();
    const endpoint = await putEndpoint(db(), table, merchant, receiver.url());
    const old = platformEvent('order.created', {}, new Date(Date.now() - 3 * 60_000));
    const young = platformEvent('order.created');
    await putEvent(db(), table, merchant, old);
    await putEvent(db(), table, merchant, young);
    await sweepUnpublished(table);
    expect(take('Deliveries', forEvent(old.id)).map((t) => t.message)).toEqual([messageFor(old.id, merchant, { endpointId: endpoint.id }, 1)]);
    expect(take('Deliveries', forEvent(young.id))).toEqual([]);
    expect((await db().send(new GetCommand({ TableName: table, Key: eventKey(merchant, young.id) }))).Item!.gsi2pk).toBeDefined();
    await receiver.close();
  });
});

/** Publishes one event to one endpoint and returns its first message. */
async function oneDelivery(answer: Parameters<typeof startReceiver>[0], secrets?: { secret: string; expires_at?: string }[]) {
  const receiver = await startReceiver(answer);
  const merchant = newId('mch');
  const endpoint = await putEndpoint(db(), table, merchant, receiver.url(), { secrets });
  const event = platformEvent('order.succeeded');
  await publishEvent(table, await putEvent(db(), table, merchant, event));
  const [first] = take('Deliveries', forEvent(event.id));
  return { receiver, merchant, endpoint, event, first: first!.message };
}

describe('retries', () => {
  it('fails 3 times then succeeds: the same webhook-id each time, delays on the schedule, every attempt recorded', async () => {
    // Prepare
    const { receiver, event, endpoint, first } = await oneDelivery((n) => ({ status: n < 3 ? 500 : 204 }));
    // Act: each message handed over when SQS would deliver it
    let t = Date.now();
    const delays: number[] = [];
    let next: Taken | undefined = { message: first, delaySeconds: 0 };
    const outcomes: string[] = [];
    while (next) {
      t += next.delaySeconds * 1000;
      outcomes.push(await deliver(next.message, options(at(t))));
      [next] = take('Deliveries', forEvent(event.id));
      if (next) delays.push(next.delaySeconds);
    }
    // Assess
    expect(outcomes).toEqual(['retrying', 'retrying', 'retrying', 'succeeded']);
    expect(delays).toHaveLength(3);
    delays.forEach((d, i) => {
      expect(d).toBeGreaterThanOrEqual(Math.floor(RETRY_GAPS_SECONDS[i]! * 0.9));
      expect(d).toBeLessThanOrEqual(Math.ceil(RETRY_GAPS_SECONDS[i]! * 1.1));
    });
    expect(new Set(receiver.received.map((r) => r.headers['webhook-id']))).toEqual(new Set([event.id]));
    const listed = await attempts(event.id);
    expect(listed.map((a) => [a.sk, a.status_code])).toEqual([1, 2, 3, 4].map((n) => [attemptKey(event.id, endpoint.id, n).sk, n < 4 ? 500 : 204]));
    for (const a of listed) expect(a).toMatchObject({ url: receiver.url(), latency_ms: expect.any(Number), at: expect.any(String) });
    expect(listed[0]!.error).toBe('answered 500');
    expect(listed[3]!.error).toBeNull();
    expect(await delivery(event.id, endpoint.id)).toMatchObject({ status: 'succeeded', attempts: 4 });
    await receiver.close();
  });

  it('a gap over 900 s waits in hops: a hop with wait left is sent on with the rest of it and calls nobody', async () => {
    // Prepare: the delivery's 6th attempt is due (its gap after is 20 minutes)
    const { receiver, event, endpoint, merchant } = await oneDelivery(() => ({ status: 503 }));
    await db().send(new PutCommand({ TableName: table, Item: { ...(await delivery(event.id, endpoint.id)), attempts: 5 } }));
    let t = Date.now();
    // Act
    expect(await deliver(messageFor(event.id, merchant, { endpointId: endpoint.id }, 6), options(at(t)))).toBe('retrying');
    const [hop] = take('Deliveries', forEvent(event.id));
    // Assess: a 900 s hop, the rest of 20 minutes ±10% in the message
    expect(hop!.delaySeconds).toBe(900);
    const due = Date.parse(hop!.message.due_at!) - t;
    expect(due / 1000).toBeGreaterThanOrEqual(1080);
    expect(due / 1000).toBeLessThanOrEqual(1320);
    expect(900 + hop!.message.wait_seconds!).toBe(Math.round(due / 1000));
    // Act: SQS delivers the hop after 900 s
    t += 900_000;
    const calls = receiver.received.length;
    expect(await deliver(hop!.message, options(at(t)))).toBe('hop');
    const [rest] = take('Deliveries', forEvent(event.id));
    // Assess: the rest of the wait as one more hop, then due
    expect(receiver.received.length).toBe(calls);
    const { wait_seconds: waited, ...due_now } = hop!.message;
    expect(rest!.message).toEqual(due_now);
    expect(rest!.delaySeconds).toBe(waited);
    expect(await deliver(rest!.message, options(at(t + rest!.delaySeconds * 1000)))).toBe('retrying');
    expect(receiver.received.length).toBe(calls + 1);
    await receiver.close();
  });

  it('after the 16th failed attempt: failed, indexed for recover, in the DLQ; recover queues it once, and it is delivered', async () => {
    // Prepare: 15 attempts made
    let failing = true;
    const { receiver, event, endpoint, merchant } = await oneDelivery(() => ({ status: failing ? 500 : 200 }));
    await db().send(new PutCommand({ TableName: table, Item: { ...(await delivery(event.id, endpoint.id)), attempts: 15 } }));
    // Act
    expect(await deliver(messageFor(event.id, merchant, { endpointId: endpoint.id }, 16), options())).toBe('failed');
    // Assess
    expect(take('Deliveries', forEvent(event.id))).toEqual([]);
    expect(take('DeliveriesDlq', forEvent(event.id)).map((m) => m.message.attempt)).toEqual([16]);
    const failed = await delivery(event.id, endpoint.id);
    expect(failed).toMatchObject({ status: 'failed', attempts: 16, gsi1pk: `WEBHOOKENDPOINT#${endpoint.id}#FAILED` });
    expect(failed!.gsi1sk).toMatch(new RegExp(`#${event.id}$`));

    // Act: the receiver is back; recover everything since an hour ago, twice
    failing = false;
    const caller = { merchantId: merchant, now: new Date() };
    const since = { since: new Date(Date.now() - 3600_000).toISOString() };
    expect(await recoverEndpoint(table, caller, endpoint.id, since)).toMatchObject({ queued: 1, has_more: false });
    expect(await recoverEndpoint(table, caller, endpoint.id, since)).toMatchObject({ queued: 0 });
    // Another merchant cannot recover it
    await expect(recoverEndpoint(table, { ...caller, merchantId: newId('mch') }, endpoint.id, since)).rejects.toThrow(/No such webhook endpoint/);
    const [again] = take('Deliveries', forEvent(event.id));
    expect(again!.message.attempt).toBe(17);
    expect(await deliver(again!.message, options())).toBe('succeeded');
    expect(await delivery(event.id, endpoint.id)).toMatchObject({ status: 'succeeded', attempts: 17, run_start: 17 });
    expect((await delivery(event.id, endpoint.id))!.gsi1pk).toBeUndefined();
    await receiver.close();
  });

  it('a duplicate message of an attempt already made is dropped without a call', async () => {
    const { receiver, first } = await oneDelivery(() => ({ status: 200 }));
    expect(await deliver(first, options())).toBe('succeeded');
    expect(await deliver(first, options())).toBe('stale');
    expect(receiver.received).toHaveLength(1);
    await receiver.close();
  });

  it('410 Gone disables the endpoint and stops the retries', async () => {
    const { receiver, event, endpoint, first } = await oneDelivery(() => ({ status: 410 }));
    expect(await deliver(first, options())).toBe('failed');
    expect(take('Deliveries', forEvent(event.id))).toEqual([]);
    take('DeliveriesDlq', forEvent(event.id));
    expect((await db().send(new GetCommand({ TableName: table, Key: endpointKey(endpoint.id) }))).Item).toMatchObject({ disabled: true });
    await receiver.close();
  });

  it('429 Retry-After is the next delay', async () => {
    const { receiver, event, first } = await oneDelivery(() => ({ status: 429, headers: { 'Retry-After': '120' } }));
    expect(await deliver(first, options())).toBe('retrying');
    expect(take('Deliveries', forEvent(event.id)).map((m) => m.delaySeconds)).toEqual([120]);
    await receiver.close();
  });
});

describe('circuit breaker', () => {
  it(`after ${BREAKER_THRESHOLD} failures in a row the endpoint's deliveries move to the slow lane; a success brings them back`, async () => {
    // Prepare
    let failing = true;
    const { receiver, event, endpoint, merchant, first } = await oneDelivery(() => ({ status: failing ? 500 : 200 }));
    let message = first;
    let t = Date.now();
    // Act
    for (let i = 0; i < BREAKER_THRESHOLD; i++) {
      await deliver(message, options(at(t)));
      const shared = take('Deliveries', forEvent(event.id));
      const slow = take('SlowDeliveries', forEvent(event.id));
      // Below the threshold the retry stays on the shared lane; the failure that opens the breaker sends it to the slow one.
      expect([shared.length, slow.length], `after failure ${i + 1}`).toEqual(i < BREAKER_THRESHOLD - 1 ? [1, 0] : [0, 1]);
      const [next] = [...shared, ...slow];
      message = next!.message;
      t += next!.delaySeconds * 1000;
    }
    // Assess: the breaker is open; a new event of the merchant is published straight to the slow lane
    expect((await db().send(new GetCommand({ TableName: table, Key: endpointKey(endpoint.id) }))).Item).toMatchObject({ consecutive_failures: BREAKER_THRESHOLD, open_until: expect.any(String) });
    const other = platformEvent('order.created');
    await publishEvent(table, await putEvent(db(), table, merchant, other));
    expect(take('Deliveries', forEvent(other.id))).toEqual([]);
    expect(take('SlowDeliveries', forEvent(other.id))).toHaveLength(1);
    // A message on the shared lane (the shared deliverer gets it, e.g. one enqueued before the breaker opened) is moved, not sent
    const calls = receiver.received.length;
    expect(await deliver(message, options(at(t)))).toBe('moved');
    expect(receiver.received.length).toBe(calls);
    const [moved] = take('SlowDeliveries', forEvent(event.id));
    // Act: the receiver recovers; the slow lane's success closes the breaker
    failing = false;
    expect(await deliver(moved!.message, options({ ...at(t), lane: 'slow' }))).toBe('succeeded');
    const closed = (await db().send(new GetCommand({ TableName: table, Key: endpointKey(endpoint.id) }))).Item!;
    expect(closed.consecutive_failures).toBe(0);
    expect(closed.open_until).toBeUndefined();
    await receiver.close();
  });
});

describe('signatures during a roll', () => {
  it('both unexpired secrets sign and verify; an expired one no longer signs', async () => {
    const [current, old, expired] = [newSecret(), newSecret(), newSecret()];
    const soon = new Date(Date.now() + 3600_000).toISOString();
    const { receiver, event, first } = await oneDelivery(() => ({ status: 200 }), [{ secret: current }, { secret: old, expires_at: soon }, { secret: expired, expires_at: new Date(Date.now() - 1000).toISOString() }]);
    await deliver(first, options());
    const [r] = receiver.received;
    const headers = r!.headers as Record<string, string>;
    expect(headers['webhook-signature']!.split(' ')).toHaveLength(2);
    expect(new Webhook(current).verify(r!.body, headers)).toEqual(event);
    expect(new Webhook(old).verify(r!.body, headers)).toEqual(event);
    expect(() => new Webhook(expired).verify(r!.body, headers)).toThrow();
    expect(() => new Webhook(current).verify(r!.body.replace('order.succeeded', 'order.refunded'), headers)).toThrow();
    await receiver.close();
  });
});

describe('resend', () => {
  it('delivers an event again to one endpoint, numbering on from its last attempt; unknown ids are 404', async () => {
    const { receiver, event, endpoint, merchant, first } = await oneDelivery(() => ({ status: 200 }));
    await deliver(first, options());
    const caller = { merchantId: merchant, now: new Date() };
    expect(await resendEvent(table, caller, event.id, { endpoint: endpoint.id })).toEqual({ object: 'event_resend', event: event.id, queued: [{ endpoint: endpoint.id, notify_url: false, attempt: 2 }] });
    const [again] = take('Deliveries', forEvent(event.id));
    expect(await deliver(again!.message, options())).toBe('succeeded');
    expect(receiver.received.map((r) => r.headers['webhook-id'])).toEqual([event.id, event.id]);
    await expect(resendEvent(table, { ...caller, merchantId: newId('mch') }, event.id, {})).rejects.toThrow(/No such event/);
    await expect(resendEvent(table, caller, event.id, { endpoint: 'we_nope' })).rejects.toThrow(/No such webhook endpoint/);
    await expect(resendEvent(table, caller, event.id, { endpoint: 7 })).rejects.toThrow(/endpoint/);
    await receiver.close();
  });
});

describe('outbound requests (real HTTP)', () => {
  it('with the loopback setting off, refuses loopback and private targets before connecting', async () => {
    const receiver = await startReceiver();
    const port = new URL(receiver.url()).port;
    const off = { allowLoopback: false };
    for (const url of [`https://127.0.0.1:${port}/`, `http://127.0.0.1:${port}/`, `https://localhost:${port}/`, 'https://10.0.0.1/', 'https://169.254.169.254/latest/meta-data/', 'https://[::1]/']) {
      const result = await postWebhook(url, {}, '{}', off);
      expect(result, url).toMatchObject({ statusCode: null, refused: true, error: expect.stringMatching(/^refused: /) });
    }
    // A public-looking name that resolves to loopback (DNS rebinding's first step) is refused as well.
    const rebinding = await postWebhook(`https://hooks.example.com:${port}/`, {}, '{}', { ...off, resolve: async () => [{ address: '127.0.0.1', family: 4 }] });
    expect(rebinding.error).toMatch(/resolves to 127\.0\.0\.1, which is a loopback address/);
    expect(receiver.received).toHaveLength(0);
    await receiver.close();
  });

  it('connects to the address it checked, whatever the name says, keeping the Host header', async () => {
    const receiver = await startReceiver();
    const port = new URL(receiver.url()).port;
    // allowLoopback covers only the literal hosts localhost / 127.0.0.1, so pin a "checked" address by a substitute resolver
    const result = await postWebhook(`http://localhost:${port}/pinned`, {}, '{}', { allowLoopback: true, resolve: async () => [{ address: '127.0.0.1', family: 4 }] });
    expect(result.statusCode).toBe(200);
    expect(receiver.received[0]!.headers.host).toBe(`localhost:${port}`);
    await receiver.close();
  });

  it('does not follow redirects, and gives up on a receiver that never answers', async () => {
    const receiver = await startReceiver((n) => (n === 0 ? { status: 302, headers: { Location: 'http://127.0.0.1:1/elsewhere' } } : 'hang'));
    const local = { allowLoopback: true };
    expect(await postWebhook(receiver.url(), {}, '{}', local)).toMatchObject({ statusCode: 302, error: 'answered 302 (redirects are not followed)' });
    expect(await postWebhook(receiver.url(), {}, '{}', { ...local, timeoutMs: 200 })).toMatchObject({ statusCode: null, error: 'timed out after 0.2 s' });
    expect(receiver.received).toHaveLength(2);
    await receiver.close();
  });
});
