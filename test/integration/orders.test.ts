import { randomBytes } from 'node:crypto';
import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { dynamo } from '../../functions/commons/clients';
import { ConflictError, NotFoundError } from '../../functions/commons/errors';
import { newId } from '../../functions/commons/ids';
import { ChangeWriter } from '../../functions/changes/writer';
import type { OrderStatus } from '../../functions/orders/order';
import { OrderRepository } from '../../functions/orders/repository';
import { orderChange } from '../../functions/orders/subject';
import { OrderService, type Caller } from '../../functions/orders/service';
import { Secret } from '../../functions/commons/secret';
import { HmacFingerprinter } from '../../functions/payments/fingerprint';
import { PaymentRepository } from '../../functions/payments/repository';
import { PaymentService } from '../../functions/payments/service';
import { useLocalServices } from './env';

let table: string;
let service: OrderService;
/** GET /v1/orders/{id} and POST …/close are payment operations: an order may carry a payment. */
let payments: PaymentService;
let repo: OrderRepository;

beforeAll(() => {
  table = useLocalServices().tables.main;
  repo = new OrderRepository(table);
  service = new OrderService(repo);
  payments = new PaymentService({ repository: new PaymentRepository(table), fingerprinter: new HmacFingerprinter(new Secret(randomBytes(32))) });
});

/** Moves an order on the way a payment would, through the one writer (with its event), without a channel. */
async function moveTo(merchantId: string, id: string, status: OrderStatus) {
  const before = (await repo.get(merchantId, id))!;
  const result = await new ChangeWriter(table).write({ objects: [orderChange(before, { ...before, status })], request: null, now: new Date(), baseUrl: 'https://api.test' });
  expect(result.committed).toBe(true);
}

const caller = (merchantId = newId('mch'), now = new Date()): Caller => ({ merchantId, baseUrl: 'https://api.test', now });
const body = (over: Record<string, unknown> = {}) => ({ merchant_order_no: newId('no'), amount: 1999, currency: 'USD', ...over });

describe('creating and reading orders', () => {
  it('stores the order and reads it back with the payer decrypted for its owner', async () => {
    const me = caller();
    const created = await service.create(me, body({ payer: { name: 'Li Lei', email: 'li.lei@example.com', phone: '+8613800138000' } }));
    expect(created).toMatchObject({ object: 'order', status: 'requires_payment', amount: 1999, amount_refunded: 0, currency: 'USD' });
    expect(created.checkout_url).toBe(`https://api.test/checkout/${created.id}`);

    const read = await payments.getOrder(me, created.id);
    expect(read).toEqual(created);
    expect(read.payer).toEqual({ name: 'Li Lei', email: 'li.lei@example.com', phone: '+8613800138000' });
  });

  it('keeps the payer only as ciphertext at rest', async () => {
    const me = caller();
    const created = await service.create(me, body({ payer: { email: 'secret.payer@example.com' } }));
    const { Item } = await dynamo().send(new GetCommand({ TableName: table, Key: { pk: `ORDER#${created.id}`, sk: 'ORDER' } }));
    expect(JSON.stringify(Item)).not.toContain('secret.payer');
    expect(Item?.payer_ciphertext).toBeInstanceOf(Uint8Array);
  });

  it.each([
    ['another order of the same merchant', false],
    ["another merchant's order", true],
  ])('refuses a payer ciphertext moved onto %s', async (_, otherMerchant) => {
    const me = caller();
    const a = await service.create(me, body({ payer: { email: 'a@example.com' } }));
    const them = otherMerchant ? caller() : me;
    const b = await service.create(them, body({ payer: { email: 'b@example.com' } }));
    const { Item } = await dynamo().send(new GetCommand({ TableName: table, Key: { pk: `ORDER#${a.id}`, sk: 'ORDER' } }));
    await dynamo().send(
      new UpdateCommand({
        TableName: table,
        Key: { pk: `ORDER#${b.id}`, sk: 'ORDER' },
        UpdateExpression: 'SET payer_ciphertext = :c',
        ExpressionAttributeValues: { ':c': Item!.payer_ciphertext },
      }),
    );
    await expect(payments.getOrder(them, b.id)).rejects.toThrow(/another record/);
  });

  it("answers another merchant's order exactly like an unknown one", async () => {
    const owner = caller();
    const created = await service.create(owner, body());
    const theirs = await payments.getOrder(caller(), created.id).catch((e: unknown) => e);
    const unknown = await payments.getOrder(caller(), 'ord_doesnotexist').catch((e: unknown) => e);
    expect(theirs).toBeInstanceOf(NotFoundError);
    expect(unknown).toBeInstanceOf(NotFoundError);
    expect((theirs as NotFoundError).code).toBe((unknown as NotFoundError).code);
  });
});

describe('merchant_order_no uniqueness', () => {
  it('rejects a duplicate and names the existing order', async () => {
    const me = caller();
    const first = await service.create(me, body({ merchant_order_no: 'INV-1' }));
    const error = await service.create(me, body({ merchant_order_no: 'INV-1' })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect(error).toMatchObject({ code: 'duplicate_merchant_order_no', param: 'merchant_order_no', extra: { order_id: first.id } });
  });

  it('lets different merchants use the same number', async () => {
    await service.create(caller(), body({ merchant_order_no: 'SHARED-1' }));
    await expect(service.create(caller(), body({ merchant_order_no: 'SHARED-1' }))).resolves.toMatchObject({ status: 'requires_payment' });
  });

  it('creates exactly one order when 20 race for one number', async () => {
    const me = caller();
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => service.create(me, body({ merchant_order_no: 'RACE-1' }))));
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    for (const r of results.filter((r) => r.status === 'rejected')) {
      expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'duplicate_merchant_order_no' });
    }
    const list = await service.list(me, {});
    expect(list.data).toHaveLength(1);
  });
});

describe('listing orders', () => {
  it('pages newest first with an exact has_more', async () => {
    const me = caller();
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      ids.push((await service.create({ ...me, now: new Date(Date.UTC(2026, 0, 1, 0, 0, i)) }, body())).id);
    }
    const newestFirst = [...ids].reverse();
    const first = await service.list(me, { limit: '3' });
    expect(first.data.map((o) => o.id)).toEqual(newestFirst.slice(0, 3));
    expect(first.has_more).toBe(true);
    const second = await service.list(me, { limit: '3', starting_after: first.data[2]!.id });
    expect(second.data.map((o) => o.id)).toEqual(newestFirst.slice(3, 6));
    const last = await service.list(me, { limit: '3', starting_after: second.data[2]!.id });
    expect(last.data.map((o) => o.id)).toEqual(newestFirst.slice(6));
    expect(last.has_more).toBe(false);
  });

  it('filters by creation time, status and merchant_order_no', async () => {
    const me = caller(newId('mch'), new Date('2026-03-01T12:00:00Z'));
    const at = (iso: string) => ({ ...me, now: new Date(iso) });
    const jan = await service.create(at('2026-01-15T00:00:00Z'), body());
    const feb = await service.create(at('2026-02-15T00:00:00Z'), body({ merchant_order_no: 'FEB-1', expires_in: 15 * 86400 }));
    const closed = await service.create(at('2026-02-20T00:00:00Z'), body({ expires_in: 15 * 86400 }));
    await payments.close(me, closed.id);
    const expired = await service.create(at('2026-02-25T00:00:00Z'), body({ expires_in: 60 }));

    const february = await service.list(me, { 'created[gte]': '2026-02-01T00:00:00Z', 'created[lt]': '2026-03-01T00:00:00Z' });
    expect(february.data.map((o) => o.id)).toEqual([expired.id, closed.id, feb.id]);

    const january = await service.list(me, { 'created[lt]': String(Date.parse('2026-02-01T00:00:00Z') / 1000) });
    expect(january.data.map((o) => o.id)).toEqual([jan.id]);

    // The expired order has not been swept yet, and still lists as closed.
    const closedOnes = await service.list(me, { status: 'closed' });
    expect(closedOnes.data.map((o) => o.id)).toEqual([expired.id, closed.id, jan.id]);
    const payable = await service.list(me, { status: 'requires_payment' });
    expect(payable.data.map((o) => o.id)).toEqual([feb.id]);

    const byNo = await service.list(me, { merchant_order_no: 'FEB-1' });
    expect(byNo.data.map((o) => o.id)).toEqual([feb.id]);
    expect((await service.list(me, { merchant_order_no: 'FEB-1', status: 'closed' })).data).toEqual([]);
  });

  it("never lists another merchant's orders or pages from their cursor", async () => {
    const a = caller();
    const b = caller();
    const theirs = await service.create(a, body());
    await service.create(b, body());
    const list = await service.list(b, {});
    expect(list.data.map((o) => o.id)).not.toContain(theirs.id);
    await expect(service.list(b, { starting_after: theirs.id })).rejects.toMatchObject({ code: 'resource_missing', param: 'starting_after' });
  });
});

describe('closing orders', () => {
  it('closes an unpaid order and returns it again when closed twice', async () => {
    const me = caller();
    const order = await service.create(me, body());
    const closed = await payments.close(me, order.id);
    expect(closed).toMatchObject({ status: 'closed', close_reason: 'merchant' });
    const again = await payments.close(me, order.id);
    expect(again).toEqual(closed);
  });

  it('refuses to close a paid order and names its status', async () => {
    const me = caller();
    const order = await service.create(me, body());
    await moveTo(me.merchantId, order.id, 'succeeded');
    await expect(payments.close(me, order.id)).rejects.toMatchObject({ status: 409, code: 'order_status_succeeded' });
  });

  it("cannot close another merchant's order", async () => {
    const order = await service.create(caller(), body());
    await expect(payments.close(caller(), order.id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(payments.getOrder({ ...caller(), merchantId: 'x' }, order.id)).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('the expiry sweep', () => {
  it('closes due orders once, and leaves others and moved-on orders alone', async () => {
    const me = caller();
    const due = await service.create(me, body({ expires_in: 60 }));
    const paid = await service.create(me, body({ expires_in: 60 }));
    const later = await service.create(me, body({ expires_in: 3600 }));
    await moveTo(me.merchantId, paid.id, 'succeeded');
    const inTwoMinutes = new Date(Date.now() + 120_000);

    const closed = await service.expireDue(inTwoMinutes, 1000);
    expect(closed).toBeGreaterThanOrEqual(1);
    const swept = await repo.get(me.merchantId, due.id);
    expect(swept).toMatchObject({ status: 'closed', close_reason: 'expired', closed_at: due.expires_at });
    expect((await repo.get(me.merchantId, paid.id))?.status).toBe('succeeded');
    expect((await repo.get(me.merchantId, later.id))?.status).toBe('requires_payment');

    // Swept orders left the expiry index: a second sweep finds nothing of ours.
    const again = await Promise.all([0, 1, 2, 3].map((s) => repo.dueForExpiry(s, inTwoMinutes, 1000)));
    expect(again.flat().map((o) => o.id)).not.toContain(due.id);
  });

  it('does not close an order that stopped being payable after the sweep read it', async () => {
    const me = caller();
    const order = await service.create(me, body({ expires_in: 60 }));
    await moveTo(me.merchantId, order.id, 'requires_capture');
    // Simulate the stale index entry a racing sweep may still hold.
    await dynamo().send(
      new UpdateCommand({
        TableName: table,
        Key: { pk: `ORDER#${order.id}`, sk: 'ORDER' },
        UpdateExpression: 'SET gsi2pk = :pk, gsi2sk = :sk',
        ExpressionAttributeValues: { ':pk': 'EXPIRY#0', ':sk': `${order.expires_at}#${order.id}` },
      }),
    );
    await service.expireDue(new Date(Date.now() + 120_000), 1000);
    expect((await repo.get(me.merchantId, order.id))?.status).toBe('requires_capture');
  });
});

describe('the table rejects half-writes', () => {
  it('does not keep an order whose number claim failed', async () => {
    const me = caller();
    await dynamo().send(
      new PutCommand({
        TableName: table,
        Item: { pk: `MERCHANT#${me.merchantId}#ORDERNO#TAKEN`, sk: 'ORDERNO', type: 'order_no', order_id: 'ord_other' },
      }),
    );
    await expect(service.create(me, body({ merchant_order_no: 'TAKEN' }))).rejects.toMatchObject({ code: 'duplicate_merchant_order_no' });
    expect((await service.list(me, {})).data).toEqual([]);
  });
});
