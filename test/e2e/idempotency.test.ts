import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { card, CARDS, newOrder } from './payments-support';
import { call, newMerchant, orderBody } from './support';

let key: string;
beforeAll(async () => {
  ({ key } = await newMerchant());
});

const ordersNumbered = async (k: string, no: string) =>
  (await call('GET', `/v1/orders?merchant_order_no=${no}`, { key: k })).body.data as any[];

describe('Idempotency-Key', () => {
  it('replays the identical status and body and creates nothing new', async () => {
    const idem = randomUUID();
    const body = orderBody();
    const first = await call('POST', '/v1/orders', { key, body, idempotencyKey: idem });
    const second = await call('POST', '/v1/orders', { key, body, idempotencyKey: idem });
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    expect(second.text).toBe(first.text);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(second.headers.get('request-id')).not.toBe(first.headers.get('request-id'));
    expect(await ordersNumbered(key, body.merchant_order_no)).toHaveLength(1);
  });

  it('refuses the same key with a different body', async () => {
    const idem = randomUUID();
    await call('POST', '/v1/orders', { key, body: orderBody(), idempotencyKey: idem });
    const res = await call('POST', '/v1/orders', { key, body: orderBody(), idempotencyKey: idem });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ type: 'idempotency_error', code: 'idempotency_key_reused' });
  });

  it('makes exactly one order from 20 parallel requests with one key', async () => {
    const idem = randomUUID();
    const body = orderBody();
    const results = await Promise.all(Array.from({ length: 20 }, () => call('POST', '/v1/orders', { key, body, idempotencyKey: idem })));
    const created = results.filter((r) => r.status === 201);
    const inUse = results.filter((r) => r.status === 409);
    expect(created.length + inUse.length).toBe(20);
    expect(new Set(created.map((r) => r.body.id)).size).toBe(1);
    for (const r of inUse) expect(r.body.error).toMatchObject({ type: 'idempotency_error', code: 'idempotency_key_in_use' });
    expect(await ordersNumbered(key, body.merchant_order_no)).toHaveLength(1);
    // Once the first finished, the key answers with its result.
    const later = await call('POST', '/v1/orders', { key, body, idempotencyKey: idem });
    expect(later.status).toBe(201);
    expect((await ordersNumbered(key, body.merchant_order_no))[0].id).toBe(later.body.id);
  });

  it('refuses a key reused on another order, on confirm and on close (issue 7 finding 2)', async () => {
    const [a, b] = [await newOrder(key), await newOrder(key)];
    const idem = randomUUID();
    expect((await call('POST', `/v1/orders/${a}/confirm`, { key, body: card(CARDS.success), idempotencyKey: idem })).status).toBe(200);
    const onB = await call('POST', `/v1/orders/${b}/confirm`, { key, body: card(CARDS.success), idempotencyKey: idem });
    expect(onB.status, onB.text).toBe(400);
    expect(onB.body.error).toMatchObject({ type: 'idempotency_error', code: 'idempotency_key_reused', param: 'Idempotency-Key' });
    expect(onB.headers.get('idempotent-replayed')).toBeNull();
    expect((await call('GET', `/v1/orders/${b}`, { key })).body.status).toBe('requires_payment');

    const closeKey = randomUUID();
    expect((await call('POST', `/v1/orders/${b}/close`, { key, idempotencyKey: closeKey })).body.status).toBe('closed');
    const closeOther = await call('POST', `/v1/orders/${a}/close`, { key, idempotencyKey: closeKey });
    expect(closeOther.status).toBe(400);
    expect(closeOther.body.error).toMatchObject({ type: 'idempotency_error', code: 'idempotency_key_reused' });
  });

  it('rejects an over-long key, naming the header', async () => {
    const res = await call('POST', '/v1/orders', { key, body: orderBody(), idempotencyKey: 'k'.repeat(256) });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'idempotency_key_invalid', param: 'Idempotency-Key' });
  });
});

describe('merchant_order_no', () => {
  it('answers a second create with 409 naming the existing order', async () => {
    const body = orderBody();
    const first = await call('POST', '/v1/orders', { key, body });
    const again = await call('POST', '/v1/orders', { key, body: { ...body, amount: 999 } });
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ code: 'duplicate_merchant_order_no', param: 'merchant_order_no', order_id: first.body.id });
    expect(again.body.error.message).toContain(first.body.id);
  });

  it('makes exactly one order from 20 parallel creates of one number', async () => {
    const no = `RACE-${randomUUID().slice(0, 8)}`;
    const results = await Promise.all(
      Array.from({ length: 20 }, () => call('POST', '/v1/orders', { key, body: orderBody({ merchant_order_no: no }), idempotencyKey: randomUUID() })),
    );
    const created = results.filter((r) => r.status === 201);
    expect(created).toHaveLength(1);
    for (const r of results.filter((r) => r.status !== 201)) {
      expect(r.status).toBe(409);
      expect(r.body.error).toMatchObject({ code: 'duplicate_merchant_order_no', order_id: created[0]!.body.id });
    }
    expect(await ordersNumbered(key, no)).toHaveLength(1);
  });
});
