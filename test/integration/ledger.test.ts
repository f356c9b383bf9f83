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
  refundTransfer,
  refusalError,
  transferIds,
  transferKey,
  transferWrites,
  voidTransfer,
  type LedgerCommit,
  type LedgerRefusal,
  type PaymentRef,
  type TransactItem,
} from '../../functions/ledger';
import { useLocalServices } from './env';

let table: string;

beforeAll(() => {
  table = useLocalServices().tables.main;
});

const now = new Date('2026-03-01T12:00:00.000Z');

/** A payment of its own merchant, channel and platform, so no other test touches its accounts. */
function payment(currency = 'USD'): PaymentRef {
  return { order_id: newId('ord'), merchant_id: newId('mch'), currency, channel: `ch_${newId('t')}`, platform: `pf_${newId('t')}` };
}

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
    const before = await getBalances(ref.merchant_id, { table });

    // Act: capture conditioned on the order still awaiting capture.
    const result = await capture(ref, { amount: 1000, fee: 59, authorized: 1000 });

    // Assess
    expect(result).toMatchObject({ committed: false, callerRefused: true, ledger: undefined });
    expect(await transferExists(transferIds.capture(ref.order_id))).toBe(false);
    expect(await transferExists(transferIds.fee(ref.order_id))).toBe(false);
    expect(await getBalances(ref.merchant_id, { table })).toEqual(before);
    expect(before.pending).toEqual([{ currency: 'USD', amount: 1000 }]);
    const fees = await getAccounts(allShards('fees', ref.platform!, 'USD'), table);
    expect(fees.size).toBe(0);
  });

  it('commits the state change and every transfer together', async () => {
    const ref = payment();
    await authorize(ref, 1000);
    const result = await capture(ref, { amount: 1000, fee: 59, authorized: 1000 });
    expect(result).toMatchObject({ committed: true });
    expect(await stateOf(ref.order_id)).toBe('succeeded');
    expect(await getBalances(ref.merchant_id, { table })).toEqual({
      object: 'balance',
      available: [{ currency: 'USD', amount: 941 }],
      pending: [{ currency: 'USD', amount: 0 }],
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
    expect((await getBalances(ref.merchant_id, { table })).available).toEqual([{ currency: 'USD', amount: 500 }]);
    const error = refusalError(refusalOf(again));
    expect(error).toBeInstanceOf(ConflictError);
    expect(error.code).toBe('transfer_exists');
  });

  it('lets exactly one of concurrent duplicate captures through', async () => {
    const ref = payment();
    await authorize(ref, 2000);
    const results = await Promise.all(Array.from({ length: 6 }, () => capture(ref, { amount: 1500, fee: 74, authorized: 2000 })));
    expect(results.filter((r) => r.committed)).toHaveLength(1);
    expect(await getBalances(ref.merchant_id, { table })).toMatchObject({
      available: [{ currency: 'USD', amount: 1426 }],
      pending: [{ currency: 'USD', amount: 0 }],
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
    expect(await getBalances(ref.merchant_id, { table })).toMatchObject({ available: [{ currency: 'USD', amount: 0 }], pending: [{ currency: 'USD', amount: 0 }] });
  });
});

describe('no negative balance', () => {
  it('refuses a refund larger than the available balance, and takes one that empties it', async () => {
    // Prepare: 1000 captured, 59 fee kept by the platform: 941 available.
    const ref = payment();
    await authorize(ref, 1000);
    expect((await capture(ref, { amount: 1000, fee: 59, authorized: 1000 })).committed).toBe(true);

    // Act
    const tooMuch = await commitTransfers({ table, now, transfers: [refundTransfer(ref, { refund_id: newId('re'), amount: 1000 }, now)] });
    const exact = await commitTransfers({ table, now, transfers: [refundTransfer(ref, { refund_id: newId('re'), amount: 941 }, now)] });

    // Assess
    expect(tooMuch).toMatchObject({ committed: false, ledger: { code: 'balance_insufficient', account: merchantAccount(ref.merchant_id, 'USD') } });
    const error = refusalError(refusalOf(tooMuch), 1000);
    expect(error).toMatchObject({ status: 409, code: 'balance_insufficient' });
    expect(error.message).toContain('10.00 USD');
    expect(exact.committed).toBe(true);
    expect((await getBalances(ref.merchant_id, { table })).available).toEqual([{ currency: 'USD', amount: 0 }]);
  });

  it('refuses a refund on a merchant that has no account in that currency yet', async () => {
    const ref = payment('JPY');
    const result = await commitTransfers({ table, now, transfers: [refundTransfer(ref, { refund_id: newId('re'), amount: 1 }, now)] });
    expect(result).toMatchObject({ committed: false, ledger: { code: 'balance_insufficient' } });
    expect(await getBalances(ref.merchant_id, { table })).toEqual({ object: 'balance', available: [], pending: [] });
  });
});

describe('balances', () => {
  it('reads pending and available per currency, sorted, with the platform side balancing them', async () => {
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
    const balance = await getBalances(merchant, { table });

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
