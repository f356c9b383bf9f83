import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { call, newMerchant } from './support';
import { balanceOf, CARDS, cardFee, confirm, newOrder, paidOrder } from './payments-support';

/** Manual capture (full, partial), void by close, and refunds over HTTP through the local cloud. */

/** An order with capture_method manual, authorized with 4242…: requires_capture. */
async function authorizedOrder(key: string, amount = 10_000) {
  const id = await newOrder(key, { amount, capture_method: 'manual' });
  const res = await confirm(key, id, CARDS.success);
  expect(res.status, res.text).toBe(200);
  expect(res.body).toMatchObject({ status: 'requires_capture', amount_authorized: amount, amount_captured: 0 });
  return id;
}

describe('manual capture', () => {
  it('authorizes (authorized balance), then captures in full (pending until available)', async () => {
    const { key } = await newMerchant();
    const id = await authorizedOrder(key);
    expect(await balanceOf(key)).toEqual({ available: 0, pending: 0, in_payout: 0, authorized: 10_000 });

    const res = await call('POST', `/v1/orders/${id}/capture`, { key, idempotencyKey: randomUUID() });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ status: 'succeeded', amount_captured: 10_000 });
    expect(await balanceOf(key)).toEqual({ available: 0, pending: 10_000 - cardFee(10_000), in_payout: 0, authorized: 0 });
  });

  it('captures part: the rest is released; capturing again is 409', async () => {
    const { key } = await newMerchant();
    const id = await authorizedOrder(key);
    const tooMuch = await call('POST', `/v1/orders/${id}/capture`, { key, body: { amount: 10_001 } });
    expect(tooMuch.status, tooMuch.text).toBe(400);
    expect(tooMuch.body.error).toMatchObject({ code: 'amount_too_large', param: 'amount' });

    const res = await call('POST', `/v1/orders/${id}/capture`, { key, body: { amount: 6_000 } });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ status: 'succeeded', amount_captured: 6_000, amount_authorized: 10_000 });
    expect(await balanceOf(key)).toEqual({ available: 0, pending: 6_000 - cardFee(6_000), in_payout: 0, authorized: 0 });

    const again = await call('POST', `/v1/orders/${id}/capture`, { key, body: { amount: 1_000 } });
    expect(again.status, again.text).toBe(409);
    expect(again.body.error.code).toBe('order_status_succeeded');
  });

  it('close on requires_capture voids the authorization', async () => {
    const { key } = await newMerchant();
    const id = await authorizedOrder(key);
    const res = await call('POST', `/v1/orders/${id}/close`, { key, idempotencyKey: randomUUID() });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ status: 'closed', close_reason: 'merchant', amount_captured: 0 });
    expect(await balanceOf(key)).toEqual({ available: 0, pending: 0, in_payout: 0, authorized: 0 });
    const capture = await call('POST', `/v1/orders/${id}/capture`, { key });
    expect(capture.status).toBe(409);
    expect(capture.body.error.code).toBe('order_status_closed');
    // Closing again returns it again.
    expect((await call('POST', `/v1/orders/${id}/close`, { key })).body).toMatchObject({ status: 'closed' });
  });
});

describe('refunds', () => {
  it('a partial refund: re_… object, order keeps succeeded with amount_refunded, read back by both routes', async () => {
    const { key } = await newMerchant();
    const order = await paidOrder(key, { amount: 10_000 });

    const res = await call('POST', '/v1/refunds', { key, body: { order_id: order.id, amount: 3_000, reason: 'requested_by_customer' }, idempotencyKey: randomUUID() });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({ object: 'refund', order_id: order.id, amount: 3_000, currency: 'USD', status: 'succeeded', reason: 'requested_by_customer' });
    expect(res.body.id).toMatch(/^re_/);

    expect((await call('GET', `/v1/orders/${order.id}`, { key })).body).toMatchObject({ status: 'succeeded', amount_refunded: 3_000 });
    const one = await call('GET', `/v1/refunds/${res.body.id}`, { key });
    expect(one.status, one.text).toBe(200);
    expect(one.body).toEqual(res.body);
    const list = await call('GET', `/v1/orders/${order.id}/refunds`, { key });
    expect(list.status, list.text).toBe(200);
    expect(list.body).toMatchObject({ object: 'list', url: `/v1/orders/${order.id}/refunds`, has_more: false, data: [res.body] });
    // The refund comes off available at once; the capture stays pending until T+1.
    expect(await balanceOf(key)).toMatchObject({ available: -3_000, pending: 10_000 - cardFee(10_000) });

    // Another merchant sees none of it.
    const other = await newMerchant();
    expect((await call('GET', `/v1/refunds/${res.body.id}`, { key: other.key })).status).toBe(404);
    expect((await call('GET', `/v1/orders/${order.id}/refunds`, { key: other.key })).status).toBe(404);
  });

  it('50 concurrent refunds of 1 on a 10-unit order: exactly 10 succeed', async () => {
    // Prepare: fund the balance first (fees are not returned, and the 10-unit order's fee eats all of it).
    const { key } = await newMerchant();
    await paidOrder(key, { amount: 10_000 });
    const order = await paidOrder(key, { amount: 10 });
    // Act
    const results = await Promise.all(
      Array.from({ length: 50 }, () => call('POST', '/v1/refunds', { key, body: { order_id: order.id, amount: 1 }, idempotencyKey: randomUUID() })),
    );
    // Assess
    const created = results.filter((r) => r.status === 201);
    expect(created, results.map((r) => r.status).join(',')).toHaveLength(10);
    for (const r of results.filter((r) => r.status !== 201)) {
      expect([400, 409], r.text).toContain(r.status);
      expect(r.body.error.code).toMatch(/^(amount_too_large|charge_already_refunded|refund_contended)$/);
    }
    expect(created.every((r) => r.body.status === 'succeeded')).toBe(true);
    expect((await call('GET', `/v1/orders/${order.id}`, { key })).body).toMatchObject({ status: 'succeeded', amount_refunded: 10 });
    const list = await call('GET', `/v1/orders/${order.id}/refunds`, { key });
    expect(list.body.data).toHaveLength(10);
    expect(await balanceOf(key)).toEqual({ available: -10, pending: 10_000 - cardFee(10_000) + 10 - cardFee(10), in_payout: 0, authorized: 0 });
  });

  it('refuses a refund of an unpaid order and one above what is left', async () => {
    const { key } = await newMerchant();
    const unpaid = await newOrder(key);
    const early = await call('POST', '/v1/refunds', { key, body: { order_id: unpaid } });
    expect(early.status, early.text).toBe(409);
    expect(early.body.error).toMatchObject({ code: 'order_status_requires_payment', param: 'order_id' });

    const order = await paidOrder(key, { amount: 5_000 });
    const tooMuch = await call('POST', '/v1/refunds', { key, body: { order_id: order.id, amount: 5_001 } });
    expect(tooMuch.status, tooMuch.text).toBe(400);
    expect(tooMuch.body.error).toMatchObject({ code: 'amount_too_large', param: 'amount' });
  });
});
