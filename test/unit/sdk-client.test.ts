import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiError, CardError, ConnectionError, IdempotencyError, Payplane, RateLimitError } from '../../sdk/src/index';

/**
 * Issue 13 §2: the SDK's transport against a real HTTP server on loopback that answers in turn (fails, then
 * succeeds), so retries, backoff, Retry-After, timeouts and idempotency keys are seen on the wire.
 */

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
  at: number;
}
type Answer = (res: ServerResponse, req: Seen) => void;

let server: Server | undefined;
afterEach(() => new Promise<void>((resolve) => (server ? (server.close(() => resolve()), server.closeAllConnections()) : resolve())));

/** A server answering its n-th request with answers[n] (the last one repeats). */
async function serve(...answers: Answer[]): Promise<{ client: Payplane; seen: Seen[]; url: string }> {
  const seen: Seen[] = [];
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c)).on('end', () => {
      const s = { method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString(), at: Date.now() };
      seen.push(s);
      answers[Math.min(seen.length, answers.length) - 1]!(res, s);
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server!.address() as AddressInfo).port}/dev`;
  return { client: new Payplane({ apiKey: 'sk_test_unit', baseUrl: url }), seen, url };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}): Answer => (res) => {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Request-Id': `req_${status}`, ...headers }).end(JSON.stringify(body));
};
const error = (status: number, type: string, code: string, headers: Record<string, string> = {}) =>
  json(status, { error: { type, code, message: `${code} happened`, param: 'amount', request_id: `req_${status}` } }, headers);
const order = json(201, { id: 'ord_1', object: 'order', status: 'requires_payment', amount: 100, currency: 'USD' });

describe('retries', () => {
  it('retries a 5xx with the Idempotency-Key it generated, the same on every attempt, and returns the answer', async () => {
    const { client, seen } = await serve(error(500, 'api_error', 'internal_error'), error(503, 'api_error', 'unavailable'), order);
    const created = await client.orders.create({ merchant_order_no: 'INV-1', amount: 100, currency: 'USD' });
    expect(created.id).toBe('ord_1');
    expect(seen).toHaveLength(3);
    const keys = seen.map((s) => s.headers['idempotency-key']);
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Set(keys).size).toBe(1);
    expect(seen.every((s) => s.headers.authorization === 'Bearer sk_test_unit' && s.body === seen[0]!.body)).toBe(true);
    // Backoff: each wait at least half its ceiling (0.5 s, then 1 s).
    expect(seen[1]!.at - seen[0]!.at).toBeGreaterThanOrEqual(240);
    expect(seen[2]!.at - seen[1]!.at).toBeGreaterThanOrEqual(490);
  });

  it('two calls without a key get two different keys', async () => {
    const { client, seen } = await serve(order);
    await client.orders.create({ merchant_order_no: 'INV-1', amount: 100, currency: 'USD' });
    await client.orders.create({ merchant_order_no: 'INV-2', amount: 100, currency: 'USD' });
    expect(seen[0]!.headers['idempotency-key']).not.toBe(seen[1]!.headers['idempotency-key']);
  });

  it('retries 409 idempotency_key_in_use with the caller\'s own key', async () => {
    const { client, seen } = await serve(error(409, 'idempotency_error', 'idempotency_key_in_use'), order);
    await client.orders.create({ merchant_order_no: 'INV-1', amount: 100, currency: 'USD' }, { idempotencyKey: 'my-key-1' });
    expect(seen.map((s) => s.headers['idempotency-key'])).toEqual(['my-key-1', 'my-key-1']);
  });

  it('does not retry another 409 or a 400 idempotency_key_reused: IdempotencyError / InvalidRequestError at once', async () => {
    const { client, seen } = await serve(error(400, 'idempotency_error', 'idempotency_key_reused'));
    const thrown = await client.orders.create({ merchant_order_no: 'INV-1', amount: 100, currency: 'USD' }).catch((e) => e);
    expect(thrown).toBeInstanceOf(IdempotencyError);
    expect(thrown).toMatchObject({ code: 'idempotency_key_reused', param: 'amount', requestId: 'req_400', statusCode: 400 });
    expect(thrown.idempotencyKey).toBe(seen[0]!.headers['idempotency-key']);
    expect(seen).toHaveLength(1);
  });

  it('honours a 429\'s Retry-After (seconds) over its shorter backoff', async () => {
    const { client, seen } = await serve(error(429, 'rate_limit_error', 'rate_limited', { 'Retry-After': '1' }), json(200, { object: 'balance' }));
    await client.balance.retrieve();
    expect(seen).toHaveLength(2);
    expect(seen[1]!.at - seen[0]!.at).toBeGreaterThanOrEqual(990);
    expect(seen[0]!.headers['idempotency-key']).toBeUndefined(); // GETs need none
  });

  it('gives up after maxNetworkRetries with the typed error of the last answer', async () => {
    const { url, seen } = await serve(error(429, 'rate_limit_error', 'rate_limited', { 'Retry-After': '0' }));
    const client = new Payplane({ apiKey: 'sk_test_unit', baseUrl: url, maxNetworkRetries: 1 });
    const thrown = await client.balance.retrieve().catch((e) => e);
    expect(thrown).toBeInstanceOf(RateLimitError);
    expect(thrown.requestId).toBe('req_429');
    expect(seen).toHaveLength(2);
  });

  it('never retries a card decline: CardError with code, param and the Request-Id header', async () => {
    const { client, seen } = await serve(error(402, 'card_error', 'card_declined', { 'Request-Id': 'req_header' }));
    const thrown = await client.orders.confirm('ord_1', { payment_method: { type: 'card', card: { number: '4000000000000002', exp_month: 12, exp_year: 2034, cvc: '123' } } }).catch((e) => e);
    expect(thrown).toBeInstanceOf(CardError);
    expect(thrown).toMatchObject({ code: 'card_declined', type: 'card_error', requestId: 'req_header', statusCode: 402 });
    expect(thrown.raw.message).toBe('card_declined happened');
    expect(seen).toHaveLength(1);
  });

  it('a non-JSON 502 from a proxy is an ApiError, retried', async () => {
    const bad: Answer = (res) => res.writeHead(502, { 'Content-Type': 'text/html' }).end('<h1>Bad gateway</h1>');
    const { client, seen } = await serve(bad, bad, bad);
    const thrown = await client.orders.retrieve('ord_1').catch((e) => e);
    expect(thrown).toBeInstanceOf(ApiError);
    expect(thrown.message).toContain('HTTP 502');
    expect(seen).toHaveLength(3);
  });
});

describe('timeouts and network errors', () => {
  it('aborts an attempt at its timeout and retries it with the same key', async () => {
    const hang: Answer = () => undefined; // never answers
    const { url, seen } = await serve(hang, order);
    const client = new Payplane({ apiKey: 'sk_test_unit', baseUrl: url, timeout: 300 });
    const created = await client.orders.create({ merchant_order_no: 'INV-1', amount: 100, currency: 'USD' });
    expect(created.id).toBe('ord_1');
    expect(seen).toHaveLength(2);
    expect(seen[1]!.headers['idempotency-key']).toBe(seen[0]!.headers['idempotency-key']);
    expect(seen[1]!.at - seen[0]!.at).toBeGreaterThanOrEqual(290);
  });

  it('a timeout without retries left is a ConnectionError naming the timeout', async () => {
    const { url } = await serve(() => undefined);
    const client = new Payplane({ apiKey: 'sk_test_unit', baseUrl: url, timeout: 200, maxNetworkRetries: 0 });
    const thrown = await client.orders.retrieve('ord_1').catch((e) => e);
    expect(thrown).toBeInstanceOf(ConnectionError);
    expect(thrown.message).toBe('GET /v1/orders/ord_1 timed out after 200 ms');
  });

  it('retries a connection the server dropped', async () => {
    const drop: Answer = (res) => res.socket?.destroy();
    const { client, seen } = await serve(drop, order);
    await expect(client.orders.create({ merchant_order_no: 'INV-1', amount: 100, currency: 'USD' })).resolves.toMatchObject({ id: 'ord_1' });
    expect(seen).toHaveLength(2);
  });

  it('the caller\'s AbortSignal ends the call with no retry', async () => {
    const { client, seen } = await serve(() => undefined);
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('caller gave up')), 100);
    await expect(client.orders.retrieve('ord_1', { signal: controller.signal })).rejects.toThrow('caller gave up');
    await new Promise((r) => setTimeout(r, 700));
    expect(seen).toHaveLength(1);
  });
});

describe('auto-pagination', () => {
  it('for await follows starting_after with the last id while has_more', async () => {
    const page = (ids: string[], more: boolean): Answer => json(200, { object: 'list', has_more: more, data: ids.map((id) => ({ id, object: 'order' })) });
    const { client, seen } = await serve(page(['ord_3', 'ord_2'], true), page(['ord_1'], false));
    const ids: string[] = [];
    for await (const o of client.orders.list({ limit: 2, status: 'succeeded' })) ids.push(o.id);
    expect(ids).toEqual(['ord_3', 'ord_2', 'ord_1']);
    expect(seen.map((s) => s.url)).toEqual(['/dev/v1/orders?limit=2&status=succeeded', '/dev/v1/orders?limit=2&status=succeeded&starting_after=ord_2']);
  });
});
