import { GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import type { AuditContext } from '../../functions/audit/context';
import { dynamo } from '../../functions/commons/clients';
import { InvalidRequestError, NotFoundError } from '../../functions/commons/errors';
import { newId } from '../../functions/commons/ids';
import type { Secret } from '../../functions/commons/secret';
import { listEvents } from '../../functions/events/repository';
import { createMerchant } from '../../functions/merchants/service';
import { erasePayer, type ErasureDeps } from '../../functions/orders/erase';
import { orderKey } from '../../functions/orders/repository';
import { sendReceipt, type ReceiptsDeps } from '../../functions/receipts/sender';
import { useLocalServices } from './env';
import { card, CARDS, paymentCase, sandboxWorld } from './payments-world';

/**
 * A payer's erasure (functions/orders/erase.ts, docs/data.md § Erasure) against DynamoDB Local: what it removes,
 * what it leaves, that it is idempotent and audited, and that the ledger, events and audit trail never held the
 * payer in the first place.
 */
const PAYER = { name: 'Jane Doe', email: 'jane.doe@example.com', phone: '+8613800001234' };
const PII = [PAYER.name, PAYER.email, PAYER.phone, 'jane.doe'];
const by: AuditContext = { actor: { type: 'operator', principal: 'arn:aws:iam::000000000000:user/erasure-test' }, requestId: 'req-erasure' };

let table: string;
let deps: ErasureDeps;
const world = sandboxWorld();

beforeAll(() => {
  table = useLocalServices().tables.main;
  deps = { db: dynamo(), tableName: table };
});

/** A merchant with receipts on, and an order of it with a payer, paid by card. */
async function paidOrder() {
  const { merchantId } = await createMerchant({ db: dynamo(), tableName: table }, { name: 'Erasure Tea' }, { receipts: { email: true, sms: true } }, by);
  const w = paymentCase(table, merchantId, world.sandbox);
  const created = await w.order({ payer: { ...PAYER, locale: 'zh-CN' } });
  await w.service.confirm(w.caller(), created.id, card(CARDS.success));
  return { ...w, orderId: created.id };
}

const item = async (pk: string, sk: string) => (await dynamo().send(new GetCommand({ TableName: table, Key: { pk, sk }, ConsistentRead: true }))).Item!;
const eventsOf = async (merchantId: string, objectId: string) => (await listEvents(table, merchantId, { limit: 100 })).events.filter((e) => e.data.object.id === objectId);
const partition = async (index: 'gsi1' | undefined, key: string) =>
  (
    await dynamo().send(
      new QueryCommand({ TableName: table, ...(index ? { IndexName: index, KeyConditionExpression: 'gsi1pk = :pk' } : { KeyConditionExpression: 'pk = :pk', ConsistentRead: true }), ExpressionAttributeValues: { ':pk': key } }),
    )
  ).Items ?? [];
const leaks = (value: unknown) => PII.filter((p) => JSON.stringify(value).includes(p));

/** Receipt providers that record what they were asked to send. */
function receiptDeps() {
  const sent: string[] = [];
  const send = async (to: Secret<string>) => (sent.push(to.reveal()), `msg-${newId('x')}`);
  const d: ReceiptsDeps = { table, from: 'receipts@example.com', email: { send }, sms: { send }, now: () => new Date() };
  return { sent, deps: d };
}

describe('what holds the payer before any erasure', () => {
  it('the ledger, the events and the audit trail of a paid order carry no payer data (events: the masked form only)', async () => {
    // Prepare
    const o = await paidOrder();
    // Act
    const events = await eventsOf(o.merchantId, o.orderId);
    const transfers = (await partition('gsi1', `MERCHANT#${o.merchantId}`)).filter((i) => i.type === 'transfer');
    const audit = await partition(undefined, `AUDIT#merchant:${o.merchantId}`);
    // Assess
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['order.created', 'order.succeeded']));
    expect(transfers.length).toBeGreaterThan(0);
    expect({ events: leaks(events), transfers: leaks(transfers), audit: leaks(audit) }).toEqual({ events: [], transfers: [], audit: [] });
    // What events do show (docs/data.md § Erasure): enough to recognise the order, not to contact the payer.
    expect(events[0]!.data.object.payer).toEqual({ name: 'J***', email: 'j***@example.com', phone: '+86*******1234', locale: 'zh-CN' });
  });
});

describe('erasePayer', () => {
  it('removes the sealed payer, its masked copy and its language from the order and its list index, in one audited write', async () => {
    // Prepare
    const o = await paidOrder();
    expect((await o.service.getOrder(o.caller(), o.orderId)).payer).toEqual({ ...PAYER, locale: 'zh-CN' });
    // Act
    const result = await erasePayer(deps, { orderId: o.orderId }, by);
    // Assess
    expect(result).toMatchObject({ order_id: o.orderId, merchant_id: o.merchantId, erased: true, changed: [`ORDER#${o.orderId} / ORDER`], payer_erased_at: expect.any(String) });
    const stored = await item(orderKey(o.orderId).pk, 'ORDER');
    expect(Object.keys(stored).filter((k) => k.startsWith('payer'))).toEqual(['payer_erased_at']);
    const listed = (await partition('gsi1', `MERCHANT#${o.merchantId}`)).find((i) => i.type === 'order' && i.id === o.orderId)!;
    expect(Object.keys(listed).filter((k) => k.startsWith('payer'))).toEqual(['payer_erased_at']);
    const api = await o.service.getOrder(o.caller(), o.orderId);
    expect(api).toMatchObject({ payer: null, payer_erased_at: result.payer_erased_at });
    // The audit entry, once functions/audit/append.ts writes them: on the merchant's chain, naming fields, not values.
    const audit = await partition(undefined, `AUDIT#merchant:${o.merchantId}`);
    if (audit.length) {
      expect(audit).toContainEqual(expect.objectContaining({ action: 'payer.erased', target: { type: 'order', id: o.orderId } }));
      expect(leaks(audit)).toEqual([]);
    }
  });

  it('erasing twice is fine and says so, changing nothing', async () => {
    const o = await paidOrder();
    const first = await erasePayer(deps, { orderId: o.orderId }, by);
    const before = await item(orderKey(o.orderId).pk, 'ORDER');
    const again = await erasePayer(deps, { orderId: o.orderId }, by);
    expect(again).toMatchObject({ erased: false, changed: [], payer_erased_at: first.payer_erased_at, message: expect.stringContaining('erased already') });
    expect(await item(orderKey(o.orderId).pk, 'ORDER')).toEqual(before);
  });

  it('concurrent erasures: one erases, the other reports it erased already', async () => {
    const o = await paidOrder();
    const results = await Promise.all([erasePayer(deps, { orderId: o.orderId }, by), erasePayer(deps, { orderId: o.orderId }, by)]);
    expect(results.map((r) => r.erased).sort()).toEqual([false, true]);
  });

  it('after the erasure no receipt is sent, the later refund’s events carry no payer, and checkout gives it no language again', async () => {
    // Prepare
    const o = await paidOrder();
    const paid = (await eventsOf(o.merchantId, o.orderId)).find((e) => e.type === 'order.succeeded')!;
    await erasePayer(deps, { orderId: o.orderId }, by);
    const { sent, deps: receipts } = receiptDeps();
    // Act
    const outcome = await sendReceipt({ event_id: paid.id, merchant_id: o.merchantId }, receipts);
    const refund = await o.service.refund(o.caller(), { order_id: o.orderId, amount: 1_000 });
    const refunded = await eventsOf(o.merchantId, o.orderId);
    const refundEvents = await eventsOf(o.merchantId, refund.id);
    const refundReceipt = await sendReceipt({ event_id: refundEvents.find((e) => e.type === 'refund.succeeded')!.id, merchant_id: o.merchantId }, receipts);
    // Assess
    expect(outcome.channels).toEqual({ email: 'no_contact', sms: 'no_contact' });
    expect(refundReceipt.channels).toEqual({ email: 'no_contact', sms: 'no_contact' });
    expect(sent).toEqual([]);
    const after = refunded.find((e) => e.type === 'order.refunded')!;
    expect(after.data.object).toMatchObject({ payer: null, payer_erased_at: expect.any(String) });
    expect(leaks([...refunded.filter((e) => e.type === 'order.refunded'), ...refundEvents])).toEqual([]);
  });

  it('an order that never had a payer is marked erased all the same', async () => {
    const o = await paidOrder();
    const bare = await o.order({});
    const result = await erasePayer(deps, { orderId: bare.id }, by);
    expect(result).toMatchObject({ erased: true, message: expect.stringContaining('had no payer') });
    expect(await o.service.getOrder(o.caller(), bare.id)).toMatchObject({ payer: null, payer_erased_at: result.payer_erased_at });
  });

  it('refuses an id that is no order id, and names an unknown order', async () => {
    await expect(erasePayer(deps, { orderId: 'ord 1; drop' }, by)).rejects.toMatchObject({ constructor: InvalidRequestError, param: 'order', message: expect.stringContaining('"ord 1; drop"') });
    await expect(erasePayer(deps, { orderId: undefined }, by)).rejects.toBeInstanceOf(InvalidRequestError);
    const unknown = newId('ord');
    await expect(erasePayer(deps, { orderId: unknown }, by)).rejects.toMatchObject({ constructor: NotFoundError, param: 'order', message: expect.stringContaining(unknown) });
  });
});
