import { DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { SANDBOX_PAYOUT_ACCOUNTS } from '../../functions/channels/payouts';
import { dynamo } from '../../functions/commons/clients';
import { conversionTransferIds, payoutTransferIds, transferKey } from '../../functions/ledger';
import { negativeBalances } from '../../functions/settlements/reconcile';
import * as tasks from '../../functions/settlements/tasks';
import { useLocalServices } from './env';
import { fee } from './payments-world';
import { clockAfterEntries, HORIZON_MS, putMerchantPayout, runFor, runMerchant, settlementCase } from './settlement-support';

/**
 * The settlement engine (functions/settlements) in-process against DynamoDB Local and the KMS emulator: real
 * payments through the sandbox channel, the Task functions in the state machine's order, the sandbox payout rail.
 * Every case asserts money: the settlement's totals, the merchant's ledger account, the payout transfers.
 */
let table: string;
beforeAll(() => {
  table = useLocalServices().tables.main;
});

const transfer = async (id: string) => (await dynamo().send(new GetCommand({ TableName: table, Key: transferKey(id), ConsistentRead: true }))).Item;

describe('settling a merchant', () => {
  it('happy path: captures, a refund and fees make one settlement, paid, the reserve posted, nothing left available', async () => {
    // Prepare
    const m = await settlementCase(table);
    const a = await m.pay(10_000);
    const b = await m.pay(5_000);
    await m.refund(a.id, 2_000);
    const { cutoff, now } = clockAfterEntries();
    const net = 15_000 - 2_000 - fee(10_000) - fee(5_000);
    // Act
    const { outcomes, summary } = await runFor(m.merchantId, cutoff, m.deps(now));
    // Assess
    expect(outcomes).toEqual([{ settlement_id: expect.stringMatching(/^stl_/), status: 'paid', net, payout_attempts: 1, errors: [] }]);
    const s = (await m.settlement(outcomes[0]!.settlement_id!))!;
    expect(s).toMatchObject({ status: 'paid', totals: { gross: 15_000, refunds: 2_000, fees: fee(10_000) + fee(5_000), fx: 0, adjustments: 0, carried_in: 0, net, entry_count: 5 } });
    expect(s.payout).toMatchObject({ status: 'paid', attempts: 1, bank_account_last4: '6789', reference: expect.stringMatching(/^po_/) });
    expect(await transfer(payoutTransferIds.reserve(s.id))).toMatchObject({ amount: net, pending_status: 'posted' });
    expect(await transfer(payoutTransferIds.post(s.id))).toMatchObject({ amount: net, phase: 'post_pending' });
    expect(await m.account()).toMatchObject({ headroom: 0, debits_pending: 0 });
    expect((await m.events()).map((e) => e.type)).toEqual(['settlement.created', 'settlement.paid']);
    expect((await m.events())[1]!.data.object).toMatchObject({ object: 'settlement', status: 'paid', amount: net, payout: { bank_account_last4: '6789' } });
    expect(summary).toMatchObject({ settlements: 1, by_status: { paid: 1 }, currencies: { USD: { gross: 15_000, refunds: 2_000, net, paid: net } } });
    expect(summary.checked.statement_lines).toBeGreaterThanOrEqual(6); // 2 captures + 1 refund, each side
    expect(await m.cursor()).toMatchObject({ carry: 0, version: 1, last_settlement_id: s.id });
    expect((await m.settlement(s.id))!.report).toMatchObject({ sha256: expect.stringMatching(/^[0-9a-f]{64}$/) }); // the Report step ran
  });

  it('a transient payout failure (account …0119) is retried and paid once', async () => {
    const m = await settlementCase(table, SANDBOX_PAYOUT_ACCOUNTS.transientTwice);
    await m.pay(8_000);
    const { cutoff, now } = clockAfterEntries();
    const { outcomes } = await runFor(m.merchantId, cutoff, m.deps(now));
    const net = 8_000 - fee(8_000);
    expect(outcomes[0]).toMatchObject({ status: 'paid', net, payout_attempts: 3, errors: ['PayoutTransientError', 'PayoutTransientError'] });
    const s = (await m.settlement(outcomes[0]!.settlement_id!))!;
    expect(s.payout).toMatchObject({ status: 'paid', attempts: 3, bank_account_last4: '0119' });
    expect(await m.rail.statement(s.payout!.paid_at!.slice(0, 10))).toContainEqual(expect.objectContaining({ settlement_id: s.id, amount: net }));
    expect(await m.account()).toMatchObject({ headroom: 0, debits_pending: 0 });
  });

  it('a permanent payout failure (…0002): the reserve voided, funds available again, settlement.failed, the next run pays them', async () => {
    // Prepare
    const m = await settlementCase(table, SANDBOX_PAYOUT_ACCOUNTS.closed);
    await m.pay(10_000);
    const first = clockAfterEntries();
    const net1 = 10_000 - fee(10_000);
    // Act: the payout fails for good
    const run1 = await runFor(m.merchantId, first.cutoff, m.deps(first.now));
    // Assess
    expect(run1.outcomes[0]).toMatchObject({ status: 'failed', net: net1, payout_attempts: 1, errors: ['PayoutFailedError'] });
    const failed = (await m.settlement(run1.outcomes[0]!.settlement_id!))!;
    expect(failed.payout).toMatchObject({ status: 'failed', failure_code: 'account_closed' });
    expect(await transfer(payoutTransferIds.void(failed.id))).toMatchObject({ amount: net1, phase: 'void_pending' });
    expect(await transfer(payoutTransferIds.post(failed.id))).toBeUndefined();
    expect(await m.account()).toMatchObject({ headroom: net1, debits_pending: 0 });
    expect((await m.cursor())!.carry).toBe(net1);
    expect((await m.events()).map((e) => e.type)).toEqual(['settlement.created', 'settlement.failed']);
    expect(run1.summary).toMatchObject({ by_status: { failed: 1 }, failures: [{ settlement_id: failed.id, code: 'account_closed' }] });

    // Act: a working account, one more payment, the next run
    await putMerchantPayout(table, m.merchantId, SANDBOX_PAYOUT_ACCOUNTS.succeeds);
    await m.pay(3_000);
    const second = clockAfterEntries();
    const run2 = await runFor(m.merchantId, second.cutoff, m.deps(second.now));
    // Assess: the carried net is paid with the new entries, once
    const net2 = net1 + 3_000 - fee(3_000);
    expect(run2.outcomes[0]).toMatchObject({ status: 'paid', net: net2 });
    expect(await m.settlement(run2.outcomes[0]!.settlement_id!)).toMatchObject({ totals: { carried_in: net1, gross: 3_000, entry_count: 2, net: net2 } });
    expect(await m.account()).toMatchObject({ headroom: 0, debits_pending: 0, debits_posted: fee(10_000) + fee(3_000) + net2 });
    expect((await m.cursor())!.carry).toBe(0);
  });

  it('a crash after the rail paid but before the ledger knew: Compensate asks the rail and posts, never voids', async () => {
    const m = await settlementCase(table);
    await m.pay(12_000);
    const { cutoff, now } = clockAfterEntries();
    const deps = m.deps(now);
    const r = await tasks.settle({ merchant_id: m.merchantId, currency: 'USD', cutoff, run_id: 'run-crash' }, deps);
    if (!r.done) throw new Error('one chunk expected');
    // The Payout Lambda sent the payout and died before its write: the rail has paid, the ledger still reserves.
    const { Secret } = await import('../../functions/commons/secret');
    await m.rail.send({ settlement_id: r.settlement_id!, merchant_id: m.merchantId, amount: r.net!, currency: 'USD', bank_account: new Secret(SANDBOX_PAYOUT_ACCOUNTS.succeeds) });
    expect(await m.settlement(r.settlement_id!)).toMatchObject({ status: 'in_payout' });
    // Catch States.ALL → Compensate, twice (a retried task)
    const [c1, c2] = await Promise.all([tasks.compensate({ settlement_id: r.settlement_id!, error: { Error: 'Sandbox.Timedout', Cause: 'Task timed out' } }, deps), tasks.compensate({ settlement_id: r.settlement_id! }, deps)]);
    expect([c1.status, c2.status]).toEqual(['paid', 'paid']);
    expect(await transfer(payoutTransferIds.post(r.settlement_id!))).toMatchObject({ amount: r.net });
    expect(await transfer(payoutTransferIds.void(r.settlement_id!))).toBeUndefined();
    expect(await m.rail.status(r.settlement_id!)).toMatchObject({ status: 'paid', attempts: 1 });
    expect(await m.account()).toMatchObject({ headroom: 0, debits_pending: 0 });
    // A late Payout retry changes nothing.
    expect(await tasks.payout({ settlement_id: r.settlement_id! }, deps)).toEqual({ settlement_id: r.settlement_id, status: 'paid' });
    expect((await m.events()).map((e) => e.type)).toEqual(['settlement.created', 'settlement.paid']);
  });

  it('no bank account on file: the payout fails for good with bank_account_missing, the net stays available and carried', async () => {
    const m = await settlementCase(table);
    await dynamo().send(new UpdateCommand({ TableName: table, Key: { pk: `MERCHANT#${m.merchantId}`, sk: 'MERCHANT' }, UpdateExpression: 'SET payout = :p', ExpressionAttributeValues: { ':p': { delay_days: 0, version: 2, updated_at: new Date().toISOString() } } }));
    await m.pay(3_000);
    const { cutoff, now } = clockAfterEntries();
    const { outcomes } = await runFor(m.merchantId, cutoff, m.deps(now));
    const net = 3_000 - fee(3_000);
    expect(outcomes[0]).toMatchObject({ status: 'failed', net, errors: ['PayoutFailedError'] });
    expect(await m.settlement(outcomes[0]!.settlement_id!)).toMatchObject({ payout: { status: 'failed', failure_code: 'bank_account_missing', bank_account_last4: '' } });
    expect(await m.rail.status(outcomes[0]!.settlement_id!)).toMatchObject({ status: 'canceled', attempts: 0 });
    expect(await m.account()).toMatchObject({ headroom: net, debits_pending: 0 });
    expect(await m.cursor()).toMatchObject({ carry: net });
  });

  it('running the same cutoff again pays nothing twice', async () => {
    const m = await settlementCase(table);
    await m.pay(4_000);
    const { cutoff, now } = clockAfterEntries();
    const deps = m.deps(now);
    const run1 = await runFor(m.merchantId, cutoff, deps);
    const run2 = await runFor(m.merchantId, cutoff, deps);
    const later = await runFor(m.merchantId, new Date(Date.parse(cutoff) + 1).toISOString(), m.deps(new Date(now.getTime() + 1)));
    expect(run2.outcomes).toEqual([{ ...run1.outcomes[0], payout_attempts: 1 }]);
    expect(later.outcomes).toEqual([{ settlement_id: undefined, status: undefined, net: undefined, payout_attempts: 0, errors: [] }]);
    const s = (await m.settlement(run1.outcomes[0]!.settlement_id!))!;
    expect(await m.rail.status(s.id)).toMatchObject({ status: 'paid', attempts: 1, amount: 4_000 - fee(4_000) });
    expect((await m.rail.statement(s.payout!.paid_at!.slice(0, 10))).filter((l) => l.merchant_id === m.merchantId)).toHaveLength(1);
    expect(await m.account()).toMatchObject({ headroom: 0, debits_posted: 4_000 });
    expect((await m.events()).map((e) => e.type)).toEqual(['settlement.created', 'settlement.paid']);
  });

  it('two settles of one merchant at once, same cutoff or not, take each entry once and pay once', async () => {
    const m = await settlementCase(table);
    await m.pay(6_000);
    await m.pay(7_000);
    const { cutoff, now } = clockAfterEntries();
    const deps = m.deps(now);
    const item = { merchant_id: m.merchantId, currency: 'USD', cutoff, run_id: 'run-race' };
    const other = { ...item, cutoff: new Date(Date.parse(cutoff) + 5).toISOString(), run_id: 'run-race-2' };
    const results = await Promise.all([runMerchant(item, deps), runMerchant(item, deps), runMerchant(other, deps), runMerchant(other, deps)]);
    const net = 13_000 - fee(6_000) - fee(7_000);
    const made = [...new Map(results.filter((r) => r.settlement_id).map((r) => [r.settlement_id, r])).values()];
    expect(made).toHaveLength(1);
    expect(made[0]).toMatchObject({ status: 'paid', net });
    expect(await m.rail.status(made[0]!.settlement_id!)).toMatchObject({ status: 'paid', attempts: 1, amount: net });
    expect(await m.account()).toMatchObject({ headroom: 0, debits_pending: 0, debits_posted: fee(6_000) + fee(7_000) + net });
    expect((await m.events()).map((e) => e.type)).toEqual(['settlement.created', 'settlement.paid']);
  });

  it('a chunked scan resumes from its small state across invocations and settles the same totals', async () => {
    const m = await settlementCase(table);
    const orders = [];
    for (const amount of [1_000, 2_000, 3_000]) orders.push(await m.pay(amount));
    await m.refund(orders[0]!.id, 500);
    const { cutoff, now } = clockAfterEntries();
    const deps = m.deps(now, { scan: { maxEntries: 2 } });
    let r = await tasks.settle({ merchant_id: m.merchantId, currency: 'USD', cutoff, run_id: 'run-chunks' }, deps);
    const states = [];
    while (!r.done) {
      states.push(JSON.stringify(r.scan).length);
      r = await tasks.settle(r, deps);
    }
    expect(states.length).toBe(3); // 7 entries, 2 per invocation: the 4th invocation reads the last and writes
    expect(Math.max(...states)).toBeLessThan(1_024);
    expect(r).toMatchObject({ status: 'in_payout', net: 6_000 - 500 - fee(1_000) - fee(2_000) - fee(3_000) });
    expect(await m.settlement(r.settlement_id!)).toMatchObject({ totals: { gross: 6_000, refunds: 500, entry_count: 7 } });
  });

  it('a converted payment (EUR order, USD settlement): gross at the base rate, the spread as fx, the statement matched in EUR', async () => {
    // Prepare: the integration setup seeds EUR→USD with a 100 bps markup
    const m = await settlementCase(table);
    const o = await m.order({ amount: 10_000, currency: 'EUR' });
    const paid = await m.service.confirm(m.caller(), o.id, (await import('./payments-world')).card('4242424242424242'));
    const refund = await m.refund(paid.id, 2_500);
    const { cutoff, now } = clockAfterEntries();
    // Act
    const { outcomes, summary } = await runFor(m.merchantId, cutoff, m.deps(now));
    // Assess: the totals are the ledger's transfers, in USD
    const conversion = (await transfer(conversionTransferIds.conversion(o.id)))!;
    const spread = (await transfer(conversionTransferIds.spread(o.id)))!;
    const fees = (await transfer(`tr_${o.id}_fee`))!;
    const back = (await transfer(conversionTransferIds.refund(refund.id)))!;
    expect(conversion).toMatchObject({ currency: 'USD', fx: { source_currency: 'EUR', source_amount: 10_000 } });
    const net = conversion.amount - spread.amount - fees.amount - back.amount;
    expect(outcomes[0]).toMatchObject({ status: 'paid', net });
    expect(await m.settlement(outcomes[0]!.settlement_id!)).toMatchObject({
      currency: 'USD',
      totals: { gross: conversion.amount, fx: spread.amount, fees: fees.amount, refunds: back.amount, net, entry_count: 4 },
    });
    expect(summary.currencies.USD).toMatchObject({ net, paid: net });
    expect(summary.checked.statement_lines).toBe(4); // the EUR capture and refund, each on both sides
    expect(await m.account()).toMatchObject({ headroom: 0, debits_pending: 0 });
  });

  it('nothing to settle: no settlement, no event, no cursor', async () => {
    const m = await settlementCase(table);
    const o = await m.order({ amount: 1_000, capture_method: 'manual' });
    await m.service.confirm(m.caller(), o.id, (await import('./payments-world')).card('4242424242424242')); // authorized only: not an entry
    const { cutoff, now } = clockAfterEntries();
    const { outcomes, summary } = await runFor(m.merchantId, cutoff, m.deps(now));
    expect(outcomes).toEqual([{ settlement_id: undefined, status: undefined, net: undefined, payout_attempts: 0, errors: [] }]);
    expect(summary.settlements).toBe(0);
    expect(await m.cursor()).toBeUndefined();
    expect(await m.events()).toEqual([]);
  });

  it('entries younger than the horizon or after the cutoff wait for the next run', async () => {
    const m = await settlementCase(table);
    await m.pay(2_000);
    const cutoff = new Date().toISOString();
    // The clock only 1 minute on: the capture could still have a late sibling committing; nothing is taken.
    const early = await runMerchant({ merchant_id: m.merchantId, currency: 'USD', cutoff, run_id: 'run-early' }, m.deps(new Date(Date.parse(cutoff) + 60_000)));
    expect(early.settlement_id).toBeUndefined();
    const late = await runMerchant({ merchant_id: m.merchantId, currency: 'USD', cutoff: new Date(Date.parse(cutoff) + 1).toISOString(), run_id: 'run-late' }, m.deps(new Date(Date.parse(cutoff) + HORIZON_MS)));
    expect(late).toMatchObject({ status: 'paid', net: 2_000 - fee(2_000) });
  });

  it('a refund after payout takes the balance negative; the next settlement carries it forward, the one after nets it', async () => {
    // Prepare: paid out
    const m = await settlementCase(table);
    const a = await m.pay(10_000);
    let clock = clockAfterEntries();
    await runFor(m.merchantId, clock.cutoff, m.deps(clock.now));
    expect(await m.account()).toMatchObject({ headroom: 0 });
    // Act: the refund is allowed, below zero
    await m.refund(a.id, 6_000);
    expect(await m.account()).toMatchObject({ headroom: -6_000 });
    clock = clockAfterEntries();
    const run2 = await runFor(m.merchantId, clock.cutoff, m.deps(clock.now));
    // Assess: carried forward, no transfer, the cursor negative and indexed for the alert
    expect(run2.outcomes[0]).toMatchObject({ status: 'carried_forward', net: -6_000, payout_attempts: 0 });
    expect(await transfer(payoutTransferIds.reserve(run2.outcomes[0]!.settlement_id!))).toBeUndefined();
    const cursor = (await m.cursor())!;
    expect(cursor).toMatchObject({ carry: -6_000, negative_since: expect.any(String) });
    const alert = await negativeBalances(table, new Date(Date.parse(cursor.negative_since!) + 1), 0);
    expect(alert.merchants).toContainEqual({ merchant_id: m.merchantId, currency: 'USD', since: cursor.negative_since });
    expect((await negativeBalances(table, clock.now, 7)).merchants.map((x) => x.merchant_id)).not.toContain(m.merchantId);
    // Nothing new while negative: no empty settlement every day
    const idle = clockAfterEntries();
    expect((await runFor(m.merchantId, idle.cutoff, m.deps(idle.now))).outcomes[0]!.settlement_id).toBeUndefined();
    // Act: new sales net the debt
    await m.pay(20_000);
    clock = clockAfterEntries();
    const run3 = await runFor(m.merchantId, clock.cutoff, m.deps(clock.now));
    expect(run3.outcomes[0]).toMatchObject({ status: 'paid', net: 20_000 - fee(20_000) - 6_000 });
    expect(await m.settlement(run3.outcomes[0]!.settlement_id!)).toMatchObject({ totals: { carried_in: -6_000, gross: 20_000 } });
    expect(await m.cursor()).toMatchObject({ carry: 0 });
    expect((await m.cursor())!.negative_since).toBeUndefined();
    expect(await m.account()).toMatchObject({ headroom: 0, debits_pending: 0 });
  });
});

describe('reconciliation', () => {
  it('a statement line tampered with in DynamoDB fails the Summary with a ReconciliationError naming it', async () => {
    // Prepare
    const m = await settlementCase(table);
    const a = await m.pay(9_000);
    const b = await m.pay(1_000);
    const c = await m.pay(1_500);
    const d = await m.pay(2_500);
    const { cutoff, now } = clockAfterEntries();
    const deps = m.deps(now);
    const run = await runFor(m.merchantId, cutoff, deps);
    expect(run.summary.settlements).toBe(1);
    const day = cutoff.slice(0, 10);
    const lines = await dynamo().send(new QueryCommand({ TableName: table, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': `SANDBOXSTMT#${day}` }, ConsistentRead: true }));
    const line = lines.Items!.find((l) => l.out_trade_no === a.payment_id)!;
    const other = lines.Items!.find((l) => l.out_trade_no === b.payment_id)!;
    // Act: the channel says 90.01 where the ledger says 90.00, and another capture has the wrong currency
    await dynamo().send(new UpdateCommand({ TableName: table, Key: { pk: line.pk, sk: line.sk }, UpdateExpression: 'SET amount = :a', ExpressionAttributeValues: { ':a': 9_001 } }));
    await dynamo().send(new UpdateCommand({ TableName: table, Key: { pk: other.pk, sk: other.sk }, UpdateExpression: 'SET currency = :c', ExpressionAttributeValues: { ':c': 'EUR' } }));
    // …one capture's line is on the next day's statement (a timing difference), another's is gone
    const moved = lines.Items!.find((l) => l.out_trade_no === c.payment_id)!;
    const next = new Date(Date.parse(`${day}T00:00:00.000Z`) + 86_400_000).toISOString().slice(0, 10);
    await dynamo().send(new PutCommand({ TableName: table, Item: { ...moved, pk: `SANDBOXSTMT#${next}`, at: `${next}T00:00:01.000Z` } }));
    await dynamo().send(new DeleteCommand({ TableName: table, Key: { pk: moved.pk, sk: moved.sk } }));
    const gone = lines.Items!.find((l) => l.out_trade_no === d.payment_id)!;
    await dynamo().send(new DeleteCommand({ TableName: table, Key: { pk: gone.pk, sk: gone.sk } }));
    // Assess
    const error = await tasks.summarize({ cutoff, run_id: run.runId, days: [day] }, deps).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).name).toBe('ReconciliationError');
    expect((error as Error).message).toContain(`capture:${a.payment_id} amount mismatch: ledger 9000 USD, statement 9001 USD`);
    expect((error as Error).message).toContain(`capture:${b.payment_id} currency mismatch: ledger USD, statement EUR`);
    expect((error as Error).message).toContain(`capture:${d.payment_id} (${m.merchantId}, 2500 USD) is in the ledger, missing from the channel's statement`);
    expect((error as Error).message).not.toContain(c.payment_id);
    expect((error as Error).message).toMatch(/^Run run-.*: 3 reconciliation breaks/);
  });

  it('a settlement whose stored totals differ from its entries, and a paid payout missing at the rail, are breaks', async () => {
    const m = await settlementCase(table);
    await m.pay(5_000);
    const { cutoff, now } = clockAfterEntries();
    const deps = m.deps(now);
    const run = await runFor(m.merchantId, cutoff, deps);
    const id = run.outcomes[0]!.settlement_id!;
    const s = (await m.settlement(id))!;
    await dynamo().send(new UpdateCommand({ TableName: table, Key: { pk: `SETTLEMENT#${id}`, sk: 'SETTLEMENT' }, UpdateExpression: 'SET totals.gross = :g', ExpressionAttributeValues: { ':g': 5_100 } }));
    await dynamo().send(new UpdateCommand({ TableName: table, Key: { pk: `SANDBOXPAYOUTSTMT#${s.payout!.paid_at!.slice(0, 10)}`, sk: `${s.payout!.paid_at}#${id}` }, UpdateExpression: 'SET settlement_id = :x', ExpressionAttributeValues: { ':x': 'stl_gone' } }));
    const error = (await tasks.summarize({ cutoff, run_id: run.runId, days: [cutoff.slice(0, 10)] }, deps).catch((e: Error) => e)) as Error;
    expect(error.name).toBe('ReconciliationError');
    expect(error.message).toContain(`settlement ${id} (${m.merchantId} USD): gross stored 5100, its entries sum to 5000`);
    expect(error.message).toContain('Σnet + Σfees + Σfx');
    expect(error.message).toContain(`payout of settlement ${id} (${m.merchantId}): paid in the ledger (${5_000 - fee(5_000)} USD), missing from the payout rail's statement`);
  });
});
