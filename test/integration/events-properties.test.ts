import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { dynamo } from '../../functions/commons/clients';
import { newId } from '../../functions/commons/ids';
import type { PlatformEvent } from '../../functions/events/event';
import { OrderRepository } from '../../functions/orders/repository';
import { OrderService } from '../../functions/orders/service';
import { PaymentRepository } from '../../functions/payments/repository';
import { runs } from '../deep';
import { useLocalServices } from './env';
import { card, CARDS, paymentCase, sandboxWorld } from './payments-world';

/**
 * The outbox invariant (issue 9 §2): no event without its change, no change without its event. Random sequences
 * of operations — create, confirm with every kind of test card, 3-D Secure, partial captures, close, partial and
 * over-refunds, the channel's results delivered twice, out of order or late, expiry, the reconciler's query — run
 * against DynamoDB Local through the real services and the sandbox channel. Afterwards, for every order and refund:
 *   - its events carry versions 1..n exactly once, n being the stored version;
 *   - each event's data.object is the object at that version: the one any operation answered with at that version
 *     (payer masked), the last one what GET returns;
 *   - previous_attributes are exactly the fields that differ from the version before, with their old values;
 *   - each event's type is the one its transition calls for (an independent table, below).
 * `npm run test:deep` runs many more sequences (test/deep.ts).
 */
let table: string;
beforeAll(() => {
  table = useLocalServices().tables.main;
});

const CARD_CHOICES = ['success', 'declined', 'insufficient', 'threeDS', 'asyncSuccess', 'asyncFailure', 'timeout'] as const;
const ORDERS = 3;

type Op =
  | { t: 'create'; manual: boolean; payer: boolean; amount: number }
  | { t: 'confirm'; o: number; card: (typeof CARD_CHOICES)[number] }
  | { t: 'threeDS'; o: number; approve: boolean }
  | { t: 'capture'; o: number; percent: number }
  | { t: 'close'; o: number }
  | { t: 'refund'; o: number; percent: number }
  | { t: 'callbacks'; order: 'as_sent' | 'reversed'; duplicate: boolean; keep: number }
  | { t: 'expire'; o: number }
  | { t: 'reconcile'; o: number };

const o = fc.nat(ORDERS - 1);
const pct = fc.integer({ min: 1, max: 130 }); // above 100: an over-refund / over-capture, refused
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ t: fc.constant('create' as const), manual: fc.boolean(), payer: fc.boolean(), amount: fc.integer({ min: 1, max: 50_000 }) }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('confirm' as const), o, card: fc.constantFrom(...CARD_CHOICES) }) },
  fc.record({ t: fc.constant('threeDS' as const), o, approve: fc.boolean() }),
  fc.record({ t: fc.constant('capture' as const), o, percent: pct }),
  fc.record({ t: fc.constant('close' as const), o }),
  { weight: 3, arbitrary: fc.record({ t: fc.constant('refund' as const), o, percent: pct }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('callbacks' as const), order: fc.constantFrom('as_sent' as const, 'reversed' as const), duplicate: fc.boolean(), keep: fc.integer({ min: 1, max: 3 }) }) },
  fc.record({ t: fc.constant('expire' as const), o }),
  fc.record({ t: fc.constant('reconcile' as const), o }),
);

/** The event each transition calls for, written down apart from the code under test (changes/snapshot.ts). */
function expectedType(kind: 'order' | 'refund', before: Record<string, unknown> | undefined, after: Record<string, unknown>): string {
  if (!before) return `${kind}.created`;
  if (kind === 'refund') return `refund.${after.status}`;
  if (before.status !== after.status) {
    const to = after.status as string;
    return to === 'requires_payment' ? 'order.payment_failed' : `order.${to}`;
  }
  if (before.amount_refunded !== after.amount_refunded) return 'order.refunded';
  return 'none';
}

const masked = (payer: { name?: string; email?: string; phone?: string } | null) =>
  payer && {
    ...(payer.name ? { name: `${payer.name[0]}***` } : {}),
    ...(payer.email ? { email: `${payer.email[0]}***${payer.email.slice(payer.email.indexOf('@'))}` } : {}),
    ...(payer.phone ? { phone: `${payer.phone.slice(0, 3)}${'*'.repeat(payer.phone.length - 7)}${payer.phone.slice(-4)}` } : {}),
  };

async function eventsOf(merchantId: string): Promise<PlatformEvent[]> {
  const out: PlatformEvent[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await dynamo().send(
      new QueryCommand({ TableName: table, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': `EVENTS#${merchantId}` }, ConsistentRead: true, ExclusiveStartKey: start }),
    );
    out.push(...(page.Items ?? []).map((i) => JSON.parse(i.body as string) as PlatformEvent));
    start = page.LastEvaluatedKey;
  } while (start);
  return out;
}

async function runSequence(ops: Op[]) {
  const world = sandboxWorld();
  const w = paymentCase(table, newId('mch'), world.sandbox);
  const orders = new OrderService(new OrderRepository(table));
  let requests = 0;
  const api = () => ({ ...w.caller(), requestId: `req_${++requests}`, idempotencyKey: requests % 2 ? `idem_${requests}` : null });
  const ids: string[] = [];
  const refundIds = new Set<string>();
  /** Every object any operation answered with, by id and version: what the event of that version must show. */
  const seen = new Map<string, Record<string, unknown>>();
  const note = (x: { id: string; version: number }) => {
    const key = `${x.id}@${x.version}`;
    const prior = seen.get(key);
    // Two answers at one version are one state (a repeated request answers with the stored object).
    if (prior) expect(x, key).toEqual(prior);
    seen.set(key, x as unknown as Record<string, unknown>);
  };
  const quietly = async <T,>(p: Promise<T>): Promise<T | undefined> => {
    try {
      return await p;
    } catch (error) {
      const status = (error as { status?: number }).status;
      // Refusals (400/402/409) are answers; anything else is a bug.
      if (status === undefined || status >= 500) throw error;
      return undefined;
    }
  };
  const pick = (i: number) => ids[i % Math.max(ids.length, 1)];
  const orderAnswer = async (p: Promise<{ id: string; version: number; payer: unknown } | undefined>) => {
    const answer = await quietly(p);
    if (answer) note({ ...answer, payer: masked(answer.payer as never) } as never);
  };

  for (const step of ops) {
    const id = pick('o' in step ? step.o : 0);
    switch (step.t) {
      case 'create': {
        const payer = step.payer ? { name: 'Jane Roe', email: 'jane.roe@example.com', phone: '+8613800001234' } : undefined;
        const created = await orders.create(api(), {
          merchant_order_no: newId('no'),
          amount: step.amount,
          currency: 'USD',
          capture_method: step.manual ? 'manual' : 'automatic',
          ...(payer ? { payer } : {}),
        });
        ids.push(created.id);
        note({ ...created, payer: masked(created.payer) } as never);
        break;
      }
      case 'confirm':
        if (id) await orderAnswer(w.service.confirm(api(), id, card(CARDS[step.card])));
        break;
      case 'threeDS':
        if (id) await orderAnswer(w.service.completeThreeDSecure(api(), id, step.approve ? 'approve' : 'fail'));
        break;
      case 'capture': {
        if (!id) break;
        const now = await w.service.getOrder(w.caller(), id);
        await orderAnswer(w.service.capture(api(), id, { amount: Math.max(1, Math.floor((now.amount_authorized * step.percent) / 100)) }));
        break;
      }
      case 'close':
        if (id) await orderAnswer(w.service.close(api(), id));
        break;
      case 'refund': {
        if (!id) break;
        const now = await w.service.getOrder(w.caller(), id);
        const refund = await quietly(w.service.refund(api(), { order_id: id, amount: Math.max(1, Math.floor((now.amount_captured * step.percent) / 100)) }));
        if (refund) {
          refundIds.add(refund.id);
          note(refund);
        }
        break;
      }
      case 'callbacks': {
        // Whatever the channel queued so far: the first `keep` arrive (the rest are lost: the reconciler's query
        // settles those), maybe twice, maybe newest first.
        const jobs = world.queue.jobs.splice(0, world.queue.jobs.length);
        const { events } = await world.deliver(jobs);
        let batch = events.slice(0, step.keep);
        if (step.order === 'reversed') batch = batch.reverse();
        if (step.duplicate) batch = [...batch, ...batch];
        for (const event of batch) await quietly(w.service.applyChannelEvent(event));
        break;
      }
      case 'expire': {
        if (!id) break;
        const order = await new PaymentRepository(table).getOrder(w.merchantId, id);
        // The sweep's own step for this order, at a time past its expiry (the sweep's query spans every merchant).
        if (order) await orders.expire(order, new Date(Date.parse(order.expires_at) + 1000));
        break;
      }
      case 'reconcile':
        // What the reconciler does for an order left in flight: ask the channel and apply its answer.
        if (id) await orderAnswer(w.service.syncPayment(w.caller(), id));
        break;
    }
  }

  // Assess: every object's events, against its stored version and every state the operations showed.
  const events = await eventsOf(w.merchantId);
  const byObject = new Map<string, PlatformEvent[]>();
  for (const e of events) byObject.set(e.data.object.id, [...(byObject.get(e.data.object.id) ?? []), e]);
  expect([...byObject.keys()].sort(), 'no event for an object nobody changed').toEqual([...ids, ...refundIds].sort());

  const repo = new PaymentRepository(table);
  for (const [objectId, list] of byObject) {
    const kind = objectId.startsWith('ord_') ? 'order' : 'refund';
    const stored = kind === 'order' ? await repo.getOrder(w.merchantId, objectId) : await repo.getRefund(w.merchantId, objectId);
    const versions = list.map((e) => e.data.object.version).sort((a, b) => a - b);
    expect(versions, `${objectId}: versions 1..n exactly once`).toEqual(Array.from({ length: stored!.version }, (_, i) => i + 1));
    const byVersion = new Map(list.map((e) => [e.data.object.version, e]));
    for (let v = 1; v <= stored!.version; v++) {
      const e = byVersion.get(v)!;
      const object = e.data.object as Record<string, unknown>;
      const prev = v > 1 ? (byVersion.get(v - 1)!.data.object as Record<string, unknown>) : undefined;
      expect(e.type, `${objectId} v${v}`).toBe(expectedType(kind, prev, object));
      if (prev) {
        const changed = Object.keys(object).filter((k) => k !== 'version' && !isDeepStrictEqual(object[k], prev[k]));
        expect(Object.keys(e.data.previous_attributes ?? {}).sort(), `${objectId} v${v}: exactly the changed fields`).toEqual(changed.sort());
        for (const k of changed) expect(e.data.previous_attributes![k], `${objectId} v${v}.${k}`).toEqual(prev[k]);
      } else expect(e.data.previous_attributes).toBeUndefined();
      const answered = seen.get(`${objectId}@${v}`);
      if (answered) expect(object, `${objectId} v${v}: the state the API answered with`).toEqual(answered);
      expect(e.request === null || typeof e.request.id === 'string').toBe(true);
    }
    // The last event is the object as GET shows it now (payer masked).
    const last = byVersion.get(stored!.version)!.data.object;
    if (kind === 'order') {
      const read = await w.service.getOrder(w.caller(), objectId);
      expect(last).toEqual({ ...read, payer: masked(read.payer) });
    } else expect(last).toEqual(await w.service.getRefund(w.caller(), objectId));
  }
  return events;
}

describe('events: one per change, in the change’s transaction', () => {
  it('random sequences of payments, results and refunds: versions 1..n, exact snapshots and previous_attributes, types per transition', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 3, maxLength: 14 }).map((ops) => [{ t: 'create', manual: false, payer: true, amount: 10_000 } as Op, ...ops]), async (ops) => {
        await runSequence(ops);
      }),
      { numRuns: runs(12, 200), endOnFailure: true },
    );
  });

  it('a fixed sequence touches every event type', async () => {
    const events = await runSequence([
      { t: 'create', manual: true, payer: true, amount: 10_000 },
      { t: 'confirm', o: 0, card: 'success' },
      { t: 'capture', o: 0, percent: 60 },
      { t: 'refund', o: 0, percent: 50 },
      { t: 'create', manual: false, payer: false, amount: 5_000 },
      { t: 'confirm', o: 1, card: 'threeDS' },
      { t: 'threeDS', o: 1, approve: false },
      { t: 'close', o: 1 },
      { t: 'create', manual: false, payer: false, amount: 5_000 },
      { t: 'confirm', o: 2, card: 'asyncSuccess' },
      { t: 'callbacks', order: 'as_sent', duplicate: true, keep: 3 },
    ]);
    expect(new Set(events.map((e) => e.type))).toEqual(
      new Set(['order.created', 'order.processing', 'order.requires_capture', 'order.succeeded', 'order.refunded', 'refund.created', 'refund.succeeded', 'order.requires_action', 'order.payment_failed', 'order.closed']),
    );
  });
});
