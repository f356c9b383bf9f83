import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { armFault, crashThenRetry, type PointName } from './faults';
import { attemptsOf, balanceOf, card, CARDS, cardFee, confirm, newOrder, paidOrder } from './payments-support';
import { call, newMerchant, orderBody } from './support';

/**
 * Issue 7 finding 1: every creating POST is killed at each point where a Lambda can die between two of its
 * writes, then retried with the same Idempotency-Key, as the API tells merchants to. Exactly one effect, on
 * the ledger (balance) and on the objects. Each case has its own merchant, so its balance is its own.
 * The cases run in parallel: each waits out its dead claim's lock (the function's remaining time).
 */
describe.concurrent('a run killed mid-request, retried with the same key, has exactly one effect', () => {
  it.each<PointName>(['afterInsert', 'beforeCompletion'])('create order, killed %s', async (point) => {
    const { key } = await newMerchant();
    const idem = randomUUID();
    const body = orderBody();
    await armFault('CreateOrder', point, idem);
    const retry = await crashThenRetry('/v1/orders', key, idem, body);
    expect(retry.status, retry.text).toBe(201);
    const found = await call('GET', `/v1/orders?merchant_order_no=${body.merchant_order_no}`, { key });
    expect(found.body.data.map((o: { id: string }) => o.id)).toEqual([retry.body.id]);
  });

  it.each<PointName>(['afterClaim', 'afterChannel', 'afterCommit', 'beforeCompletion'])('confirm, killed %s', async (point) => {
    const { key } = await newMerchant();
    const orderId = await newOrder(key);
    const idem = randomUUID();
    await armFault('ConfirmOrder', point, idem);
    const retry = await crashThenRetry(`/v1/orders/${orderId}/confirm`, key, idem, card(CARDS.success));
    expect(retry.status, retry.text).toBe(200);
    expect(retry.body).toMatchObject({ id: orderId, status: 'succeeded', amount_captured: 2500 });
    expect(await attemptsOf(orderId)).toHaveLength(1);
    expect(await balanceOf(key)).toEqual({ available: 0, pending: 2500 - cardFee(2500), in_payout: 0, authorized: 0 });
  });

  it.each<PointName>(['afterChannel', 'afterCommit', 'beforeCompletion'])('capture, killed %s', async (point) => {
    const { key } = await newMerchant();
    const order = await paidOrder(key, { capture_method: 'manual' });
    expect(order.status).toBe('requires_capture');
    const idem = randomUUID();
    await armFault('CaptureOrder', point, idem);
    const retry = await crashThenRetry(`/v1/orders/${order.id}/capture`, key, idem, { amount: 2000 });
    expect(retry.status, retry.text).toBe(200);
    expect(retry.body).toMatchObject({ status: 'succeeded', amount_captured: 2000 });
    expect(await balanceOf(key)).toEqual({ available: 0, pending: 2000 - cardFee(2000), in_payout: 0, authorized: 0 });
  });

  it.each<PointName>(['afterCommit', 'afterChannel', 'beforeCompletion'])('refund, killed %s', async (point) => {
    const { key } = await newMerchant();
    const order = await paidOrder(key);
    const idem = randomUUID();
    await armFault('CreateRefund', point, idem);
    const retry = await crashThenRetry('/v1/refunds', key, idem, { order_id: order.id, amount: 300 });
    expect(retry.status, retry.text).toBe(201);
    expect(retry.body).toMatchObject({ object: 'refund', amount: 300, status: 'succeeded' });
    const refunds = await call('GET', `/v1/orders/${order.id}/refunds`, { key });
    expect(refunds.body.data.map((r: { id: string }) => r.id)).toEqual([retry.body.id]);
    expect((await call('GET', `/v1/orders/${order.id}`, { key })).body).toMatchObject({ amount_refunded: 300 });
    expect(await balanceOf(key)).toEqual({ available: -300, pending: 2500 - cardFee(2500), in_payout: 0, authorized: 0 });
  });

  it.each<PointName>(['afterChannel', 'afterCommit', 'beforeCompletion'])('close of an authorization (void), killed %s', async (point) => {
    const { key } = await newMerchant();
    const order = await paidOrder(key, { capture_method: 'manual' });
    expect(await balanceOf(key)).toEqual({ available: 0, pending: 0, in_payout: 0, authorized: 2500 });
    const idem = randomUUID();
    await armFault('CloseOrder', point, idem);
    const retry = await crashThenRetry(`/v1/orders/${order.id}/close`, key, idem);
    expect(retry.status, retry.text).toBe(200);
    expect(retry.body).toMatchObject({ status: 'closed' });
    expect(await balanceOf(key)).toEqual({ available: 0, pending: 0, in_payout: 0, authorized: 0 });
  });
});

describe('what a key stores', () => {
  it('a card decline (402): the retry replays it and never authorizes again', async () => {
    const { key } = await newMerchant();
    const orderId = await newOrder(key);
    const idem = randomUUID();
    const first = await call('POST', `/v1/orders/${orderId}/confirm`, { key, body: card(CARDS.declined), idempotencyKey: idem });
    expect(first.status, first.text).toBe(402);
    const again = await call('POST', `/v1/orders/${orderId}/confirm`, { key, body: card(CARDS.declined), idempotencyKey: idem });
    expect(again.status).toBe(402);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body.error).toEqual({ ...first.body.error, request_id: first.body.error.request_id });
    expect(await attemptsOf(orderId)).toHaveLength(1);
    // The order stays payable: a new key pays it.
    expect((await confirm(key, orderId, CARDS.success)).status).toBe(200);
  });
});
