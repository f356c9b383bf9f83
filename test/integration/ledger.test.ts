import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { dynamo } from '../../functions/commons/clients';
import { ConflictError, InternalError } from '../../functions/commons/errors';
import { newId } from '../../functions/commons/ids';
import {
  allShards,
  authorizationTransfer,
  captureTransfers,
  commitTransfers,
  getAccounts,
  getBalances,
  merchantAccount,
  payoutTransfer,
  payoutTransferIds,
  refundTransfer,
  refusalError,
  transferIds,
  transferKey,
  transferWrites,
  voidTransfer,
  type LedgerCommit,
  type LedgerRefusal,
  type PaymentRef,
  type PayoutRef,
  type TransactItem,
} from '../../functions/ledger';
import { merchantKey } from '../../functions/merchants/repository';
import { cursorKey } from '../../functions/settlements/settlement';
import { useLocalServices } from './env';

let table: string;

beforeAll(() => {
  table = useLocalServices().tables.main;
});

const now = new Date('2026-03-01T12:00:00.000Z');
/** Days after `now`: every entry written at `now` is available (T+1) then. */
const later = new Date('2026-03-10T00:00:00.000Z');
/** The balance at `at` (default: when everything written at `now` is available), in UTC with the default delay 1. */
const balanceAt = (merchantId: string, at = later, delayDays?: number) => getBalances(merchantId, { table, now: at, zone: 'UTC', delayDays });

/** A payment of its own merchant, channel and platform, so no other test touches its accounts. */
function payment(currency = 'USD'): PaymentRef {
  return { order_id: newId('ord'), merchant_id: newId('mch'), currency, channel: `ch_${newId('t')}`, platform: `pf_${newId('t')}` };
}

/** A settlement of the payment's merchant, on the payment's platform. */
const payoutRef = (ref: PaymentRef): PayoutRef => ({ settlement_id: `stl_${newId('t')}`, merchant_id: ref.merchant_id, currency: ref.currency, platform: ref.platform });

/** Stands in for the payments code's order item: a conditional state change in the same transaction. */
const stateKey = (orderId: string) => ({ pk: `LEDGERTEST#${orderId}`, sk: 'ORDER' });
const moveState = (orderId: string, from: string, to: string): TransactItem => ({
  Update: {
    TableName: table,
    Key: stateKey(orderId),
    UpdateExpression: 'SET #s = :to',
    ConditionExpression: '#s = :from',
    ExpressionAttributeNames: { '#s': 'status' },
    ExpressionAttributeValues: { ':from': from, ':to': to },
  },
});
const createState = (orderId: string, status: string): TransactItem => ({
  Put: { TableName: table, Item: { ...stateKey(orderId), status }, ConditionExpression: 'attribute_not_exists(pk)' },
});
const stateOf = async (orderId: string) =>
  (await dynamo().send(new GetCommand({ TableName: table, Key: stateKey(orderId), ConsistentRead: true }))).Item?.status;
const transferExists = async (id: string) =>
  (await dynamo().send(new GetCommand({ TableName: table, Key: transferKey(id), ConsistentRead: true }))).Item !== undefined;

function refusalOf(result: LedgerCommit): LedgerRefusal {
  if (result.committed || !result.ledger) throw new Error(`expected a ledger refusal, got ${JSON.stringify(result)}`);
  return result.ledger;
}

async function authorize(ref: PaymentRef, amount: number) {
  const result = await commitTransfers({ table, now, transfers: [authorizationTransfer(ref, amount, now)], items: [createState(ref.order_id, 'requires_capture')] });
  expect(result.committed).toBe(true);
}

async function capture(ref: PaymentRef, input: { amount: number; fee: number; authorized?: number }) {
  const items = input.authorized === undefined ? [createState(ref.order_id, 'succeeded')] : [moveState(ref.order_id, 'requires_capture', 'succeeded')];
  return commitTransfers({ table, now, transfers: captureTransfers(ref, input, now), items });
}

describe('one transaction with the state change', () => {
  it('writes nothing when the state-change condition fails: no transfer, no balance change', async () => {
    // Prepare: an authorized order whose state has already moved on (closed by someone else).
    const ref = payment();
    await authorize(ref, 1000);
    await dynamo().send(new PutCommand({ TableName: table, Item: { ...stateKey(ref.order_id), status: 'closed' } }));
    const before = await balanceAt(ref.merchant_id);

    // Act: capture conditioned on the order still awaiting capture.
    const result = await capture(ref, { amount: 1000, fee: 59, authorized: 1000 });

    // Assess
    expect(result).toMatchObject({ committed: false, callerRefused: true, ledger: undefined });
    expect(await transferExists(transferIds.capture(ref.order_id))).toBe(false);
    expect(await transferExists(transferIds.fee(ref.order_id))).toBe(false);
    expect(await balanceAt(ref.merchant_id)).toEqual(before);
    expect(before.authorized).toEqual([{ currency: 'USD', amount: 1000 }]);
    const fees = await getAccounts(allShards('fees', ref.platform!, 'USD'), table);
    expect(fees.size).toBe(0);
  });

  it('commits the state change and every transfer together', async () => {
    const ref = payment();
    await authorize(ref, 1000);
    const result = await capture(ref, { amount: 1000, fee: 59, authorized: 1000 });
    expect(result).toMatchObject({ committed: true });
    expect(await stateOf(ref.order_id)).toBe('succeeded');
    expect(await balanceAt(ref.merchant_id)).toEqual({
      object: 'balance',
      available: [{ currency: 'USD', amount: 941 }],
      pending: [{ currency: 'USD', amount: 0 }],
      in_payout: [{ currency: 'USD', amount: 0 }],
      authorized: [{ currency: 'USD', amount: 0 }],
    });
  });
});

describe('at most one transfer per id', () => {
  it('refuses a transfer id applied twice, and the state change that came with it', async () => {
    // Prepare: a capture already applied; a retry whose own state check would pass.
    const ref = payment();
    await capture(ref, { amount: 500, fee: 0 });
    await dynamo().send(new PutCommand({ TableName: table, Item: { ...stateKey(ref.order_id), status: 'retrying' } }));

    // Act
    const again = await commitTransfers({ table, now, transfers: captureTransfers(ref, { amount: 500, fee: 0 }, now), items: [moveState(ref.order_id, 'retrying', 'succeeded')] });

    // Assess: refused by the ledger, nothing applied twice, the state change rolled back.
    expect(again).toMatchObject({ committed: false, callerRefused: false, ledger: { code: 'transfer_exists', transfer_id: transferIds.capture(ref.order_id) } });
    expect(await stateOf(ref.order_id)).toBe('retrying');
    expect((await balanceAt(ref.merchant_id)).available).toEqual([{ currency: 'USD', amount: 500 }]);
    const error = refusalError(refusalOf(again));
    expect(error).toBeInstanceOf(ConflictError);
    expect(error.code).toBe('transfer_exists');
  });

  it('lets exactly one of concurrent duplicate captures through', async () => {
    const ref = payment();
    await authorize(ref, 2000);
    const results = await Promise.all(Array.from({ length: 6 }, () => capture(ref, { amount: 1500, fee: 74, authorized: 2000 })));
    expect(results.filter((r) => r.committed)).toHaveLength(1);
    expect(await balanceAt(ref.merchant_id)).toMatchObject({
      available: [{ currency: 'USD', amount: 1426 }],
      pending: [{ currency: 'USD', amount: 0 }],
      authorized: [{ currency: 'USD', amount: 0 }],
    });
  });

  it('resolves a pending transfer once: no capture after a void, no post of another amount', async () => {
    const ref = payment();
    await authorize(ref, 800);
    const wrongAmount = await commitTransfers({ table, now, transfers: captureTransfers(ref, { amount: 800, fee: 0, authorized: 900 }, now) });
    expect(wrongAmount).toMatchObject({ committed: false, ledger: { code: 'pending_transfer_not_pending', pending_id: transferIds.authorization(ref.order_id) } });

    expect(await commitTransfers({ table, now, transfers: [voidTransfer(ref, 800, now)] })).toMatchObject({ committed: true });
    const late = await commitTransfers({ table, now, transfers: captureTransfers(ref, { amount: 800, fee: 0, authorized: 800 }, now) });
    expect(late).toMatchObject({ committed: false, ledger: { code: 'pending_transfer_not_pending' } });
    expect(refusalError(refusalOf(late))).toBeInstanceOf(InternalError);
    expect(await balanceAt(ref.merchant_id)).toMatchObject({ available: [{ currency: 'USD', amount: 0 }], pending: [{ currency: 'USD', amount: 0 }], authorized: [{ currency: 'USD', amount: 0 }] });
  });
});

describe('negative balances: refunds only', () => {
  it('takes a refund larger than the balance (a refund after payout): the merchant goes below zero, by that refund alone', async () => {
    // Prepare: 1000 captured, 59 fee kept by the platform: 941 available.
    const ref = payment();
    await authorize(ref, 1000);
    expect((await capture(ref, { amount: 1000, fee: 59, authorized: 1000 })).committed).toBe(true);

    // Act: the order's own amount_refunded ≤ captured bounds refunds; the ledger does not.
    const refund = await commitTransfers({ table, now, transfers: [refundTransfer(ref, { refund_id: newId('re'), amount: 1000 }, now)] });

    // Assess
    expect(refund.committed).toBe(true);
    expect(await balanceAt(ref.merchant_id)).toMatchObject({ available: [{ currency: 'USD', amount: -59 }], pending: [{ currency: 'USD', amount: 0 }] });
    const [account] = (await getAccounts([merchantAccount(ref.merchant_id, 'USD')], table)).values();
    expect(account).toMatchObject({ headroom: -59, debits_posted: 1059, credits_posted: 1000 });
  });

  it('refuses a payout reserve larger than the headroom with balance_insufficient, and one while the merchant is negative', async () => {
    const ref = payment();
    expect((await capture(ref, { amount: 1000, fee: 59 })).committed).toBe(true);
    const out = payoutRef(ref);

    const tooMuch = await commitTransfers({ table, now, transfers: [payoutTransfer(out, 'reserve', 942, now)] });
    expect(tooMuch).toMatchObject({ committed: false, ledger: { code: 'balance_insufficient', account: merchantAccount(ref.merchant_id, 'USD') } });
    const error = refusalError(refusalOf(tooMuch), 942);
    expect(error).toMatchObject({ status: 409, code: 'balance_insufficient' });
    expect(error.message).toContain('9.42 USD');
    expect(await transferExists(payoutTransferIds.reserve(out.settlement_id))).toBe(false);

    // Negative after a refund: no reserve of any size.
    expect((await commitTransfers({ table, now, transfers: [refundTransfer(ref, { refund_id: newId('re'), amount: 1000 }, now)] })).committed).toBe(true);
    const whileNegative = await commitTransfers({ table, now, transfers: [payoutTransfer(payoutRef(ref), 'reserve', 1, now)] });
    expect(whileNegative).toMatchObject({ committed: false, ledger: { code: 'balance_insufficient' } });
  });

  it('takes a reserve of the whole headroom; it shows as in_payout and resolves once, by a post or a void', async () => {
    for (const step of ['post', 'void'] as const) {
      // Prepare
      const ref = payment();
      expect((await capture(ref, { amount: 1000, fee: 59 })).committed).toBe(true);
      const out = payoutRef(ref);
      // Act
      expect((await commitTransfers({ table, now, transfers: [payoutTransfer(out, 'reserve', 941, now)] })).committed).toBe(true);
      const reserved = await balanceAt(ref.merchant_id);
      const resolved = await commitTransfers({ table, now, transfers: [payoutTransfer(out, step, 941, now)] });
      const again = await Promise.all(
        (['post', 'void'] as const).map((other) => commitTransfers({ table, now, transfers: [payoutTransfer(out, other, 941, now)] })),
      );
      // Assess
      expect(reserved, step).toMatchObject({ available: [{ currency: 'USD', amount: 0 }], in_payout: [{ currency: 'USD', amount: 941 }] });
      expect(resolved.committed, step).toBe(true);
      // The other resolution is refused by the reserve no longer being pending; the same one by its id.
      expect(again.map((r) => (r.committed ? 'committed' : r.ledger?.code)).sort(), step).toEqual(['pending_transfer_not_pending', 'transfer_exists'].sort());
      expect(await balanceAt(ref.merchant_id), step).toMatchObject({
        available: [{ currency: 'USD', amount: step === 'post' ? 0 : 941 }],
        in_payout: [{ currency: 'USD', amount: 0 }],
      });
      const payouts = [...(await getAccounts(allShards('payouts', ref.platform!, 'USD'), table)).values()];
      expect(payouts.reduce((sum, a) => sum + a.credits_posted, 0), step).toBe(step === 'post' ? 941 : 0);
      expect(payouts.reduce((sum, a) => sum + a.credits_pending, 0), step).toBe(0);
    }
  });
});

describe('balance meanings (Stripe)', () => {
  it('shows a capture as pending until its payout delay has passed, then available; a refund comes off available at once', async () => {
    // Prepare: captured at 12:00 UTC on 1 March, refunded in part the same day.
    const ref = payment();
    await authorize(ref, 1500);
    expect((await capture(ref, { amount: 1000, fee: 59, authorized: 1500 })).committed).toBe(true);
    expect((await commitTransfers({ table, now, transfers: [refundTransfer(ref, { refund_id: newId('re'), amount: 300 }, now)] })).committed).toBe(true);
    await authorize({ ...ref, order_id: newId('ord') }, 200);

    // Act
    const sameDay = await balanceAt(ref.merchant_id, new Date('2026-03-01T23:59:59.999Z'));
    const nextDay = await balanceAt(ref.merchant_id, new Date('2026-03-02T00:00:00.000Z'));
    const nextDayPlus = await balanceAt(ref.merchant_id, new Date('2026-03-02T00:00:00.001Z'));
    const delay3 = await balanceAt(ref.merchant_id, new Date('2026-03-03T12:00:00.000Z'), 3);
    const delay0 = await balanceAt(ref.merchant_id, new Date('2026-03-01T12:00:00.001Z'), 0);

    // Assess: net of the fee, pending; the refund is not delayed.
    expect(sameDay).toEqual({
      object: 'balance',
      available: [{ currency: 'USD', amount: -300 }],
      pending: [{ currency: 'USD', amount: 941 }],
      in_payout: [{ currency: 'USD', amount: 0 }],
      authorized: [{ currency: 'USD', amount: 200 }],
    });
    // Available from the start of the next business day on (availableAt), not a moment before.
    expect(nextDay).toEqual(sameDay);
    expect(nextDayPlus).toMatchObject({ available: [{ currency: 'USD', amount: 641 }], pending: [{ currency: 'USD', amount: 0 }] });
    expect(delay3).toMatchObject({ available: [{ currency: 'USD', amount: -300 }], pending: [{ currency: 'USD', amount: 941 }] });
    expect(delay0).toMatchObject({ available: [{ currency: 'USD', amount: 641 }], pending: [{ currency: 'USD', amount: 0 }] });
  });

  it("reads the merchant's payout delay from its payout settings, and counts nothing the settlement cursor has passed as pending", async () => {
    // Prepare: a merchant with delay_days 5, a capture on 1 March, and a cursor that settled up to 1 March 12:00:00.001.
    const ref = payment();
    await dynamo().send(new PutCommand({ TableName: table, Item: { ...merchantKey(ref.merchant_id), type: 'merchant', id: ref.merchant_id, payout: { delay_days: 5, version: 1, updated_at: now.toISOString() } } }));
    expect((await capture(ref, { amount: 1000, fee: 0 })).committed).toBe(true);
    const second = { ...ref, order_id: newId('ord') };
    const at2 = new Date('2026-03-01T13:00:00.000Z');
    expect((await commitTransfers({ table, now: at2, transfers: captureTransfers(second, { amount: 400, fee: 0 }, at2) })).committed).toBe(true);

    // Act + Assess: on 4 March both are still pending (T+5)
    const read = () => getBalances(ref.merchant_id, { table, now: new Date('2026-03-04T00:00:00Z'), zone: 'UTC' });
    expect(await read()).toMatchObject({ available: [{ currency: 'USD', amount: 0 }], pending: [{ currency: 'USD', amount: 1400 }] });
    // A cursor past the first capture: it belongs to a settlement, no longer pending.
    await dynamo().send(
      new PutCommand({ TableName: table, Item: { ...cursorKey(ref.merchant_id, 'USD'), type: 'settlement_cursor', merchant_id: ref.merchant_id, currency: 'USD', delayed_through: '2026-03-01T12:00:00.001Z', carry: 0, version: 1 } }),
    );
    const withCursor = await read();
    expect(withCursor).toMatchObject({ available: [{ currency: 'USD', amount: 1000 }], pending: [{ currency: 'USD', amount: 400 }] });
    // The cursor shares the accounts' sort key prefix; it is no account.
    expect(withCursor.available).toHaveLength(1);
  });
});

describe('balances', () => {
  it('reads every balance per currency, sorted, with the platform side balancing them', async () => {
    // Prepare: one merchant, three currencies: an open authorization, a partial capture, a void.
    const usd = payment('USD');
    const merchant = usd.merchant_id;
    const jpy = { ...payment('JPY'), merchant_id: merchant, channel: usd.channel, platform: usd.platform };
    const kwd = { ...payment('KWD'), merchant_id: merchant, channel: usd.channel, platform: usd.platform };
    await authorize(usd, 5000);
    await authorize(jpy, 3000);
    expect((await capture(jpy, { amount: 1000, fee: 59, authorized: 3000 })).committed).toBe(true);
    await authorize(kwd, 12_345);
    expect((await commitTransfers({ table, now, transfers: [voidTransfer(kwd, 12_345, now)] })).committed).toBe(true);

    // Act
    const balance = await balanceAt(merchant);

    // Assess
    expect(balance).toEqual({
      object: 'balance',
      available: [
        { currency: 'JPY', amount: 941 },
        { currency: 'KWD', amount: 0 },
        { currency: 'USD', amount: 0 },
      ],
      pending: [
        { currency: 'JPY', amount: 0 },
        { currency: 'KWD', amount: 0 },
        { currency: 'USD', amount: 0 },
      ],
      in_payout: [
        { currency: 'JPY', amount: 0 },
        { currency: 'KWD', amount: 0 },
        { currency: 'USD', amount: 0 },
      ],
      authorized: [
        { currency: 'JPY', amount: 0 },
        { currency: 'KWD', amount: 0 },
        { currency: 'USD', amount: 5000 },
      ],
    });
    const fees = [...(await getAccounts(allShards('fees', usd.platform!, 'JPY'), table)).values()];
    expect(fees.reduce((sum, a) => sum + a.credits_posted, 0)).toBe(59);
    const receivable = [...(await getAccounts(allShards('receivable', usd.channel, 'USD'), table)).values()];
    expect(receivable.reduce((sum, a) => sum + a.debits_pending, 0)).toBe(5000);
  });
});

describe('transaction size', () => {
  it('refuses more than 100 actions before calling DynamoDB', () => {
    const ref = payment();
    const refunds = Array.from({ length: 98 }, () => refundTransfer(ref, { refund_id: newId('re'), amount: 1 }, now));
    // 98 transfers + 2 accounts = 100: fits alone, not with one item of the caller's.
    expect(transferWrites(table, refunds, now)).toHaveLength(100);
    expect(() => transferWrites(table, refunds, now, { reservedItems: 1 })).toThrow(/101 .*limit of 100|limit of 100/);
  });
});
