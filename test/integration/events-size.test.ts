import { writeFileSync } from 'node:fs';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { ChannelRejectedError, type PaymentChannel } from '../../functions/channels';
import { dynamo } from '../../functions/commons/clients';
import { newId } from '../../functions/commons/ids';
import { useLocalServices } from './env';
import { card, CARDS, paymentCase, sandboxWorld } from './payments-world';

/**
 * What events cost: the write units the event items add to a payment (create + confirm of a 4242 card, automatic
 * capture), from the stored items' sizes by DynamoDB's rules (attribute names + values, 1 KB write units, twice in a
 * transaction). The figure is in docs/events.md; this test fails if it grows. PAYPLANE_EVENT_EXAMPLES=<file> also
 * writes one real event of each type there (docs/events.md's examples come from such a run).
 */
let table: string;
beforeAll(() => {
  table = useLocalServices().tables.main;
});

/** DynamoDB's item size: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html */
export function itemSize(item: Record<string, unknown>): number {
  const value = (v: unknown): number => {
    if (typeof v === 'string') return Buffer.byteLength(v);
    if (typeof v === 'number') return Math.ceil(String(Math.abs(v)).replace(/^0+|\./g, '').length / 2) + 1;
    if (typeof v === 'boolean' || v === null) return 1;
    if (v instanceof Uint8Array) return v.byteLength;
    if (Array.isArray(v)) return 3 + v.reduce((s: number, x) => s + 1 + value(x), 0);
    if (typeof v === 'object') return 3 + Object.entries(v as object).reduce((s, [k, x]) => s + 1 + Buffer.byteLength(k) + value(x), 0);
    return 0;
  };
  return Object.entries(item).reduce((s, [k, v]) => s + Buffer.byteLength(k) + value(v), 0);
}

const wcu = (item: Record<string, unknown>) => 2 * Math.ceil(itemSize(item) / 1024); // transactional writes cost double

async function eventItems(merchantId: string) {
  const { Items = [] } = await dynamo().send(
    new QueryCommand({ TableName: table, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': `EVENTS#${merchantId}` }, ConsistentRead: true }),
  );
  return Items;
}

describe('event items are small', () => {
  it('a 4242 payment (create + confirm) writes 3 events of under 2 KB each: 12 write units', async () => {
    // Prepare: a typical order (payer, description, metadata, notify_url)
    const world = sandboxWorld();
    const w = paymentCase(table, newId('mch'), world.sandbox);
    const caller = () => ({ ...w.caller(), requestId: 'c1a7d5e2-5b1e-4a39-9d43-2f0e4c1b7a10', idempotencyKey: 'order-1042-pay' });
    const order = await w.order({
      description: 'Order #1042: 2 × coffee beans',
      payer: { name: 'Jane Roe', email: 'jane.roe@example.com', phone: '+8613800001234' },
      metadata: { cart: '1042', channel: 'web' },
      notify_url: 'https://shop.example/payplane/notify',
    });
    // Act
    await w.service.confirm(caller(), order.id, card(CARDS.success));
    // Assess
    const items = await eventItems(w.merchantId);
    expect(items.map((i) => i.event_type).sort()).toEqual(['order.created', 'order.processing', 'order.succeeded']);
    const sizes = items.map(itemSize);
    for (const size of sizes) expect(size).toBeLessThan(2048);
    const units = items.reduce((s, i) => s + wcu(i), 0);
    expect(units).toBeLessThanOrEqual(12);
    if (process.env.PAYPLANE_EVENT_REPORT) console.log(JSON.stringify({ sizes, units }));
  });

  it.runIf(!!process.env.PAYPLANE_EVENT_EXAMPLES)('writes one real event of each type (docs/events.md)', async () => {
    const world = sandboxWorld();
    const w = paymentCase(table, newId('mch'), world.sandbox);
    const caller = () => ({ ...w.caller(), requestId: 'c1a7d5e2-5b1e-4a39-9d43-2f0e4c1b7a10', idempotencyKey: 'order-1042' });
    const payer = { name: 'Jane Roe', email: 'jane.roe@example.com', phone: '+8613800001234' };
    const manual = await w.order({ payer, capture_method: 'manual', metadata: { cart: '1042' } });
    await w.service.confirm(caller(), manual.id, card(CARDS.success));
    await w.service.capture(caller(), manual.id, { amount: 6000 });
    await w.service.refund(caller(), { order_id: manual.id, amount: 1000 });
    const threeDs = await w.order({ payer });
    await w.service.confirm(caller(), threeDs.id, card(CARDS.threeDS));
    await w.service.completeThreeDSecure(caller(), threeDs.id, 'fail');
    await w.service.close(caller(), threeDs.id);
    // A channel that refuses refunds: the compensation's refund.failed (and order.refunded back down).
    const refusing: PaymentChannel = Object.assign(Object.create(world.sandbox) as PaymentChannel, {
      refund: async () => {
        throw new ChannelRejectedError('sandbox', 'refund_failed', 'The channel declined the refund: the card account is closed.');
      },
    });
    await expect(w.newService({ channel: () => refusing }).refund(caller(), { order_id: manual.id, amount: 500 })).rejects.toBeInstanceOf(ChannelRejectedError);
    const items = await eventItems(w.merchantId);
    const byType: Record<string, unknown> = {};
    // The last of each type (ids sort by time): the refund.failed's order.refunded rather than the first refund's.
    for (const i of items) byType[i.event_type as string] = JSON.parse(i.body as string);
    writeFileSync(process.env.PAYPLANE_EVENT_EXAMPLES!, JSON.stringify(byType, null, 2));
  });
});
