import { CreateTableCommand, DescribeTableCommand, type GlobalSecondaryIndexDescription } from '@aws-sdk/client-dynamodb';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { dynamo } from '../../functions/commons/clients';
import { newId, randomBase62 } from '../../functions/commons/ids';
import type { ChannelEvent, PaymentChannel } from '../../functions/channels/channel';
import { ChannelRejectedError, ChannelTimeoutError, ChannelUnavailableError } from '../../functions/channels/errors';
import { TradeStore } from '../../functions/channels/sandbox/store';
import { useLocalServices } from './env';
import { CARDS, card, fee, paymentCase, sandboxWorld } from './payments-world';

/**
 * The reconciliation sweep (PaymentService.reconcileDue) against DynamoDB Local, through the real sandbox
 * channel. The sweep reads every in-flight item of its table, so each case gets a table of its own (a copy
 * of the template's main table): no case's sweep can settle another's payments with its ledger accounts.
 * Callbacks are held in memory: a case decides whether they are lost, late or racing the sweep.
 */

let template: { main: string };

beforeAll(() => {
  template = { main: useLocalServices().tables.main };
});

/** Past the grace period (2 minutes) of anything written now. */
const later = (minutes = 3) => new Date(Date.now() + minutes * 60_000);

/** What the channel does wrong, switchable mid-case. */
interface Faults {
  /** query answers nothing (ChannelUnavailableError). */
  queryDown?: boolean;
  /** silent: never reaches the bank; lost: the bank refunds, the answer is lost; refuse: ChannelRejectedError. */
  refund?: 'silent' | 'lost' | 'refuse';
}

async function copyOfMainTable(): Promise<string> {
  const { Table } = await dynamo().send(new DescribeTableCommand({ TableName: template.main }));
  const name = `reconcile-${randomBase62(10)}`;
  await dynamo().send(
    new CreateTableCommand({
      TableName: name,
      KeySchema: Table!.KeySchema,
      AttributeDefinitions: Table!.AttributeDefinitions,
      BillingMode: 'PAY_PER_REQUEST',
      GlobalSecondaryIndexes: Table!.GlobalSecondaryIndexes?.map((g: GlobalSecondaryIndexDescription) => ({ IndexName: g.IndexName, KeySchema: g.KeySchema, Projection: g.Projection })),
    }),
  );
  return name;
}

/** One case's world: its own table, sandbox bank and merchant; a channel with switchable faults. */
async function world() {
  const table = await copyOfMainTable();
  const { sandbox, queue, callbacks } = sandboxWorld({ store: new TradeStore(() => table) });
  const faults: Faults = {};
  const channel: PaymentChannel = Object.assign(Object.create(sandbox) as PaymentChannel, {
    id: 'sandbox' as const,
    query: async (paymentId: string) => {
      if (faults.queryDown) throw new ChannelUnavailableError('sandbox', 'down');
      return sandbox.query(paymentId);
    },
    refund: async (ref: string, refundId: string, amount: number) => {
      if (faults.refund === 'silent') throw new ChannelTimeoutError('sandbox', 'lost');
      if (faults.refund === 'refuse') throw new ChannelRejectedError('sandbox', 'amount_too_large', 'refused');
      const result = await sandbox.refund(ref, refundId, amount);
      if (faults.refund === 'lost') throw new ChannelTimeoutError('sandbox', 'lost');
      return result;
    },
  });
  const w = paymentCase(table, newId('mch'), channel);
  const order = (amount = 10_000) => w.order({ amount });
  const status = async (id: string) => (await w.service.getOrder(w.caller(), id)).status;
  const stored = async (pk: string, sk: string) => (await dynamo().send(new GetCommand({ TableName: table, Key: { pk, sk }, ConsistentRead: true }))).Item!;
  const dropCallbacks = () => (queue.jobs = []);
  return { ...w, table, sandbox, faults, order, status, stored, callbacks, dropCallbacks };
}

describe('orders the platform never heard back about', () => {
  it.each([
    ['async success card', card(CARDS.asyncSuccess), 'succeeded', 10_000 - fee(10_000)],
    ['async failure card', card(CARDS.asyncFailure), 'requires_payment', 0],
    ['wallet', { payment_method: { type: 'wallet' } }, 'succeeded', 10_000 - fee(10_000, 'wallet')],
  ])('%s, callback lost: left alone within the grace period, then settled by the sweep', async (_name, method, settled, captured) => {
    // Prepare
    const w = await world();
    const o = await w.order();
    const pending = await w.service.confirm(w.caller(), o.id, method);
    expect(pending.status).toBe('processing');
    w.dropCallbacks();
    expect(await w.stored(`ORDER#${o.id}`, 'ORDER')).toMatchObject({ gsi2pk: expect.stringMatching(/^INFLIGHT#[0-3]$/), gsi2sk: expect.stringMatching(new RegExp(`#${o.id}$`)) });
    // Act: a run now finds nothing due; one after the grace period settles it; a third finds nothing again.
    const young = await w.service.reconcileDue(new Date());
    const afterGrace = await w.service.reconcileDue(later());
    const again = await w.service.reconcileDue(later(10));
    // Assess
    expect(young).toEqual({ settled: 0, unresolved: 0, failed: [] });
    expect(afterGrace).toEqual({ settled: 1, unresolved: 0, failed: [] });
    expect(again).toEqual({ settled: 0, unresolved: 0, failed: [] });
    expect(await w.status(o.id)).toBe(settled);
    const item = await w.stored(`ORDER#${o.id}`, 'ORDER');
    if (settled === 'requires_payment') {
      expect(item.last_payment_error).toMatchObject({ code: 'card_declined', payment_id: pending.payment_id });
      expect(item.gsi2pk).toMatch(/^EXPIRY#/); // payable again: back in the expiry index
    } else expect(item.gsi2pk).toBeUndefined();
    expect(await w.balance()).toEqual({ available: 0, pending: captured, in_payout: 0, authorized: 0 });
    await w.assertBalanced();
  });

  it('timeout card whose query failed too: unresolved while the channel is down (requeued), settled once it answers', async () => {
    // Prepare: the answer is lost and the query at confirm time fails.
    const w = await world();
    w.faults.queryDown = true;
    const o = await w.order();
    const stuck = await w.service.confirm(w.caller(), o.id, card(CARDS.timeout));
    expect(stuck.status).toBe('processing');
    w.dropCallbacks();
    // Act + Assess: still down → unresolved, moved to the back of the index (not due again until the grace passes)
    const first = later(3);
    expect(await w.service.reconcileDue(first)).toEqual({ settled: 0, unresolved: 1, failed: [] });
    expect((await w.stored(`ORDER#${o.id}`, 'ORDER')).gsi2sk).toBe(`${first.toISOString()}#${o.id}`);
    w.faults.queryDown = false;
    expect(await w.service.reconcileDue(first)).toEqual({ settled: 0, unresolved: 0, failed: [] });
    expect(await w.service.reconcileDue(later(6))).toEqual({ settled: 1, unresolved: 0, failed: [] });
    expect(await w.status(o.id)).toBe('succeeded');
    expect(await w.balance()).toEqual({ available: 0, pending: 10_000 - fee(10_000), in_payout: 0, authorized: 0 });
    await w.assertBalanced();
  });

  it('requires_action: waits while the payer has not finished; settled once the channel has the challenge result', async () => {
    const w = await world();
    const o = await w.order();
    const challenged = await w.service.confirm(w.caller(), o.id, card(CARDS.threeDS));
    expect(challenged.status).toBe('requires_action');
    expect(await w.service.reconcileDue(later(3))).toEqual({ settled: 0, unresolved: 1, failed: [] });
    expect(await w.status(o.id)).toBe('requires_action');
    // The payer passed the challenge at the channel, but its answer never reached the platform.
    await w.sandbox.completeAction(challenged.payment_id!, (await w.stored(`ORDER#${o.id}`, 'ORDER')).next_action.challenge_id, 'approve');
    expect(await w.service.reconcileDue(later(6))).toEqual({ settled: 1, unresolved: 0, failed: [] });
    expect(await w.status(o.id)).toBe('succeeded');
    expect(await w.balance()).toEqual({ available: 0, pending: 10_000 - fee(10_000), in_payout: 0, authorized: 0 });
    await w.assertBalanced();
  });
});

describe('a sweep racing a late callback', () => {
  it('callback and sweep at once, and either first: each payment is captured once', async () => {
    // Prepare: six async payments whose callbacks are held back.
    const w = await world();
    const paid = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const o = await w.order();
        const p = await w.service.confirm(w.caller(), o.id, card(CARDS.asyncSuccess));
        return { id: o.id, events: await w.callbacks(p.payment_id!) };
      }),
    );
    const apply = (events: ChannelEvent[]) => Promise.all(events.map((e) => w.service.applyChannelEvent(e)));
    // Act: callbacks first for one, the sweep first for another, both at once for the rest.
    await apply(paid[0]!.events);
    const sweep = w.service.reconcileDue(later());
    const racing = paid.slice(2).map((p) => apply(p.events));
    const [summary] = await Promise.all([sweep, ...racing]);
    await apply(paid[1]!.events);
    // Assess
    expect(summary.failed).toEqual([]);
    for (const p of paid) expect(await w.status(p.id)).toBe('succeeded');
    expect(await w.balance()).toEqual({ available: 0, pending: 6 * (10_000 - fee(10_000)), in_payout: 0, authorized: 0 });
    await w.assertBalanced();
    expect(await w.service.reconcileDue(later(10))).toEqual({ settled: 0, unresolved: 0, failed: [] });
  });
});

describe('refunds left pending', () => {
  it('the channel refunded but the answer was lost: the sweep asks again with the same id, refunded once', async () => {
    // Prepare
    const w = await world();
    const o = await w.order();
    const paid = await w.service.confirm(w.caller(), o.id, card(CARDS.success));
    w.faults.refund = 'lost';
    const pending = await w.service.refund(w.caller(), { order_id: o.id, amount: 2_000 });
    expect(pending.status).toBe('pending');
    expect(await w.stored(`REFUND#${pending.id}`, 'REFUND')).toMatchObject({ gsi2pk: expect.stringMatching(/^INFLIGHT#/) });
    w.faults.refund = undefined;
    // Act
    expect(await w.service.reconcileDue(new Date())).toEqual({ settled: 0, unresolved: 0, failed: [] });
    expect((await w.service.getRefund(w.caller(), pending.id)).status).toBe('pending');
    expect(await w.service.reconcileDue(later())).toEqual({ settled: 1, unresolved: 0, failed: [] });
    // Assess
    expect(await w.service.getRefund(w.caller(), pending.id)).toMatchObject({ status: 'succeeded', amount: 2_000 });
    expect((await w.stored(`REFUND#${pending.id}`, 'REFUND')).gsi2pk).toBeUndefined();
    expect((await w.sandbox.query(paid.payment_id!))!.amountRefunded).toBe(2_000);
    expect(await w.service.getOrder(w.caller(), o.id)).toMatchObject({ amount_refunded: 2_000 });
    expect(await w.balance()).toEqual({ available: -2_000, pending: 10_000 - fee(10_000), in_payout: 0, authorized: 0 });
    await w.assertBalanced();
  });

  it('no answer twice stays pending; a refusal at the next run is compensated once, even by two racing sweeps', async () => {
    const w = await world();
    const o = await w.order();
    await w.service.confirm(w.caller(), o.id, card(CARDS.success));
    w.faults.refund = 'silent';
    const pending = await w.service.refund(w.caller(), { order_id: o.id, amount: 2_000 });
    expect(await w.service.reconcileDue(later(3))).toEqual({ settled: 0, unresolved: 1, failed: [] });
    expect((await w.service.getRefund(w.caller(), pending.id)).status).toBe('pending');
    expect(await w.balance()).toEqual({ available: -2_000, pending: 10_000 - fee(10_000), in_payout: 0, authorized: 0 });
    // Act: the channel now refuses; two runs at once (EventBridge may deliver a run twice).
    w.faults.refund = 'refuse';
    const runs = await Promise.all([w.service.reconcileDue(later(6)), w.service.reconcileDue(later(6))]);
    // Assess
    expect(runs.flatMap((r) => r.failed)).toEqual([]);
    expect(await w.service.getRefund(w.caller(), pending.id)).toMatchObject({ status: 'failed', failure_reason: 'refused' });
    expect(await w.service.getOrder(w.caller(), o.id)).toMatchObject({ amount_refunded: 0 });
    expect(await w.balance()).toEqual({ available: 0, pending: 10_000 - fee(10_000), in_payout: 0, authorized: 0 });
    await w.assertBalanced();
    expect(await w.service.reconcileDue(later(10))).toEqual({ settled: 0, unresolved: 0, failed: [] });
  });
});
