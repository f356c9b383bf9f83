import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthenticationError, CardError, InvalidRequestError, Payplane, WebhookVerificationError } from '../../sdk/src/index';
import { cloud, newMerchant } from './support';

/**
 * Issue 13 §2: the TypeScript SDK (sdk/) against the local cloud, as a merchant's code would use it: create and pay
 * an order, a decline as a CardError, for-await over pages, and a real delivered webhook verified by
 * payplane.webhooks.verify (Standard Webhooks + the platform's Ed25519 signature from the JWKS).
 */
const CARD = { number: '4242424242424242', exp_month: 12, exp_year: 2034, cvc: '123' };
const DECLINED = { ...CARD, number: '4000000000000002' };

interface Delivery {
  body: string;
  headers: IncomingHttpHeaders;
}
let receiver: Server;
let receiverUrl: string;
const deliveries: Delivery[] = [];
let payplane: Payplane;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c)).on('end', () => {
      deliveries.push({ body: Buffer.concat(chunks).toString('utf8'), headers: req.headers });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/webhooks`;
  const merchant = await newMerchant('SDK merchant');
  payplane = new Payplane({ apiKey: merchant.key, baseUrl: cloud().url });
});
afterAll(() => new Promise<void>((resolve) => receiver?.close(() => resolve())));

async function until<T>(what: string, probe: () => T | undefined, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('the SDK against the local cloud', () => {
  it('creates and pays an order, and verifies the order.succeeded webhook it causes', async () => {
    // Prepare: an endpoint for the merchant's receiver (the index that finds it is eventually consistent: give it a second).
    const endpoint = await payplane.webhookEndpoints.create({ url: receiverUrl, enabled_events: ['order.succeeded'] });
    expect(endpoint.secret).toMatch(/^whsec_/);
    await new Promise((r) => setTimeout(r, 1500));

    // Act: what the README's quick start shows.
    const order = await payplane.orders.create({ merchant_order_no: `INV-${Date.now()}`, amount: 1999, currency: 'USD', description: 'Two coffees' });
    const paid = await payplane.orders.confirm(order.id, { payment_method: { type: 'card', card: CARD } });

    // Assess
    expect(order).toMatchObject({ object: 'order', status: 'requires_payment', amount: 1999, currency: 'USD' });
    expect(paid).toMatchObject({ id: order.id, status: 'succeeded' });
    const delivery = await until('the order.succeeded delivery', () => deliveries.find((d) => d.body.includes(order.id)));
    const event = await payplane.webhooks.verify<{ type: string; data: { object: { id: string; status: string } } }>(delivery.body, delivery.headers, endpoint.secret!);
    expect(event.type).toBe('order.succeeded');
    expect(event.data.object).toMatchObject({ id: order.id, status: 'succeeded' });
    // The platform signature alone (what a notify_url receiver has): verifies too.
    await expect(payplane.webhooks.verify(delivery.body, delivery.headers, null)).resolves.toMatchObject({ type: 'order.succeeded' });

    // A changed body, another secret, or a forged platform signature: refused.
    const tampered = delivery.body.replace('"succeeded"', '"failed"');
    await expect(payplane.webhooks.verify(tampered, delivery.headers, endpoint.secret!)).rejects.toBeInstanceOf(WebhookVerificationError);
    await expect(payplane.webhooks.verify(delivery.body, delivery.headers, 'whsec_' + Buffer.alloc(32, 7).toString('base64'))).rejects.toBeInstanceOf(WebhookVerificationError);
    const platform = String(delivery.headers['payplane-platform-signature']);
    const forged = { ...delivery.headers, 'payplane-platform-signature': platform.replace(/sig=(.)/, (_, c) => `sig=${c === 'A' ? 'B' : 'A'}`) };
    await expect(payplane.webhooks.verify(delivery.body, forged, endpoint.secret!)).rejects.toThrow(/does not verify with platform key/);
    await expect(payplane.webhooks.verify(tampered, delivery.headers, null)).rejects.toBeInstanceOf(WebhookVerificationError);
  });

  it('a declined card is a CardError with its code and the Request-Id of the answer', async () => {
    const order = await payplane.orders.create({ merchant_order_no: `INV-${Date.now()}`, amount: 500, currency: 'USD' });
    const thrown = await payplane.orders.confirm(order.id, { payment_method: { type: 'card', card: DECLINED } }).catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(CardError);
    const error = thrown as CardError;
    expect(error).toMatchObject({ type: 'card_error', code: 'card_declined', statusCode: 402 });
    expect(error.requestId).toBeTruthy();
    expect(error.requestId).toBe(error.raw.request_id);
    expect(error.idempotencyKey).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('a bad field is an InvalidRequestError naming it; a bad key an AuthenticationError', async () => {
    const bad = await payplane.orders.create({ merchant_order_no: 'INV-bad', amount: -5, currency: 'USD' }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(InvalidRequestError);
    expect(bad).toMatchObject({ param: 'amount', statusCode: 400 });
    const stranger = new Payplane({ apiKey: 'sk_test_' + 'x'.repeat(40), baseUrl: cloud().url });
    const denied = await stranger.balance.retrieve().catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(AuthenticationError);
    expect((denied as AuthenticationError).requestId).toBeTruthy();
  });

  it('the same idempotency key gives the same order; none given, each call makes its own', async () => {
    const body = { merchant_order_no: `INV-${Date.now()}`, amount: 700, currency: 'USD' };
    const key = `sdk-${Date.now()}`;
    const first = await payplane.orders.create(body, { idempotencyKey: key });
    const again = await payplane.orders.create(body, { idempotencyKey: key });
    expect(again.id).toBe(first.id);
    const other = await payplane.orders.create({ ...body, merchant_order_no: `${body.merchant_order_no}-2` });
    expect(other.id).not.toBe(first.id);
  });

  it('for await lists every order across pages, newest first', async () => {
    // Prepare: a merchant of its own, so the list holds exactly these.
    const merchant = await newMerchant('SDK list merchant');
    const sdk = new Payplane({ apiKey: merchant.key, baseUrl: cloud().url });
    const created: string[] = [];
    for (let i = 0; i < 5; i++) created.push((await sdk.orders.create({ merchant_order_no: `LIST-${i}`, amount: 100 + i, currency: 'USD' })).id);

    // Act
    const first = await sdk.orders.list({ limit: 2 });
    const all: string[] = [];
    for await (const order of sdk.orders.list({ limit: 2 })) all.push(order.id);

    // Assess
    expect(first.data).toHaveLength(2);
    expect(first.has_more).toBe(true);
    expect(all).toEqual([...created].reverse());
  });
});
