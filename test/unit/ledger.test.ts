import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { dynamo } from '../../functions/commons/clients';
import { InternalError, InvalidRequestError } from '../../functions/commons/errors';
import { MAX_AMOUNT } from '../../functions/commons/money';
import {
  accountKey,
  allShards,
  authorizationTransfer,
  captureTransfers,
  commitTransfers,
  computeFee,
  entrySortKey,
  DEFAULT_FEE_SCHEDULE,
  feesAccount,
  fixedFee,
  merchantAccount,
  parseAccount,
  parseFeeSchedule,
  payoutTransfer,
  platformFeeSchedule,
  receivableAccount,
  refundTransfer,
  resolveFeeSchedule,
  shardOf,
  SHARDS,
  transferWrites,
  validateTransfer,
  voidTransfer,
  type FeeSchedule,
  type PaymentRef,
  type Transfer,
} from '../../functions/ledger';

const now = new Date('2026-03-01T12:00:00.000Z');
const ref: PaymentRef = { order_id: 'ord_1', merchant_id: 'mch_1', currency: 'USD', channel: 'sandbox' };
const transfer = (over: Partial<Transfer> = {}): Transfer => ({ ...refundTransfer(ref, { refund_id: 're_1', amount: 100 }, now), ...over });
const invalid = (over: Partial<Transfer>) => {
  try {
    validateTransfer(transfer(over));
  } catch (error) {
    expect(error).toBeInstanceOf(InternalError);
    return (error as InternalError).message;
  }
  throw new Error('expected the transfer to be refused');
};

describe('account naming', () => {
  it('names accounts by kind, owner and currency, sharding the platform side', () => {
    expect(merchantAccount('mch_1', 'USD')).toBe('merchant:mch_1:USD');
    expect(receivableAccount('sandbox', 'JPY', 'ord_1')).toBe(`receivable:sandbox:JPY:${shardOf('ord_1')}`);
    expect(feesAccount('KWD', 'ord_1')).toBe(`fees:payplane:KWD:${shardOf('ord_1')}`);
    expect(allShards('fees', 'payplane', 'USD')).toHaveLength(SHARDS);
    expect(parseAccount('receivable:sandbox:USD:3')).toEqual({ id: 'receivable:sandbox:USD:3', kind: 'receivable', owner: 'sandbox', currency: 'USD', shard: 3 });
  });

  it("keeps a merchant's accounts in the merchant's partition, platform accounts in their own", () => {
    expect(accountKey('merchant:mch_1:USD')).toEqual({ pk: 'MERCHANT#mch_1', sk: 'ACCOUNT#USD#merchant' });
    expect(accountKey('fees:payplane:USD:0')).toEqual({ pk: 'ACCOUNT#fees:payplane:USD:0', sk: 'ACCOUNT' });
  });

  it('puts every transfer of one order on the same shard, and spreads orders over all shards', () => {
    const orders = Array.from({ length: 400 }, (_, i) => `ord_${i.toString(36)}x`);
    expect(new Set(orders.map(shardOf)).size).toBe(SHARDS);
    const [capture, fee] = captureTransfers(ref, { amount: 1000, fee: 59, authorized: 1000 }, now);
    expect(capture!.debit).toBe(authorizationTransfer(ref, 1000, now).debit);
    expect(fee!.credit).toBe(feesAccount('USD', 'ord_1'));
  });

  it.each(['merchant:mch:1:USD', 'merchant:mch_1:usd', 'fees:payplane:USD', 'fees:payplane:USD:8', 'wallet:x:USD', 'merchant:mch_1:XAU'])(
    'refuses the malformed account id %s',
    (id) => expect(() => parseAccount(id)).toThrow(InternalError),
  );

  it('refuses owners that would break the id format', () => {
    expect(() => merchantAccount('mch:1', 'USD')).toThrow(/letters, digits/);
    expect(() => merchantAccount('mch_1', 'XXX')).toThrow(/ISO 4217/);
  });
});

describe('transfer validation', () => {
  it('accepts what the builders produce', () => {
    const all = [
      authorizationTransfer(ref, 1000, now),
      ...captureTransfers(ref, { amount: 600, fee: 47, authorized: 1000 }, now),
      ...captureTransfers({ ...ref, order_id: 'ord_2' }, { amount: 600, fee: 47 }, now),
      voidTransfer({ ...ref, order_id: 'ord_3' }, 1000, now),
      refundTransfer(ref, { refund_id: 're_1', amount: 10 }, now),
    ];
    for (const t of all) expect(() => validateTransfer(t)).not.toThrow();
    expect(all.map((t) => t.id)).toEqual(['tr_ord_1_authorization', 'tr_ord_1_capture', 'tr_ord_1_fee', 'tr_ord_2_capture', 'tr_ord_2_fee', 'tr_ord_3_void', 'tr_re_1_refund']);
  });

  it.each([0, -1, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER + 1])('refuses amount %s', (amount) => {
    expect(invalid({ amount })).toMatch(/positive integer/);
  });

  it('refuses a transfer from an account to itself', () => {
    expect(invalid({ credit: merchantAccount('mch_1', 'USD') })).toMatch(/same account/);
  });

  it('refuses accounts in another currency than the transfer', () => {
    expect(invalid({ credit: receivableAccount('sandbox', 'EUR', 'ord_1') })).toMatch(/credit account .* EUR, the transfer in USD/);
    expect(invalid({ currency: 'EUR' })).toMatch(/debit account .* USD, the transfer in EUR/);
  });

  it('refuses ids that are not derived from an event, and phases that do not fit the kind', () => {
    expect(invalid({ id: 'capture-1' })).toMatch(/tr_<event>/);
    expect(invalid({ kind: 'authorization' })).toMatch(/must be pending/);
    expect(invalid({ pending_id: 'tr_x' })).toMatch(/only on post_pending/);
  });

  it('refuses posting more than is pending, and a void of another amount', () => {
    expect(() => captureTransfers(ref, { amount: 1001, fee: 0, authorized: 1000 }, now).map(validateTransfer)).toThrow(/more than the 1000 pending/);
    expect(() => validateTransfer({ ...voidTransfer(ref, 1000, now), amount: 999 })).toThrow(/whole pending amount/);
    expect(() => captureTransfers(ref, { amount: 100, fee: 101 }, now)).toThrow(/from 0 to the amount/);
  });
});

describe('transfer writes', () => {
  const table = 'main';

  it('writes each transfer once, merges the accounts a batch touches, and checks headroom only where it falls', () => {
    // Prepare: capture 1000 of an authorization of 1200, fee 59: the merchant account is touched twice.
    const transfers = captureTransfers(ref, { amount: 1000, fee: 59, authorized: 1200 }, now);

    // Act
    const items = transferWrites(table, transfers, now);

    // Assess: 2 transfer Puts, 1 pending resolution, 3 accounts (merchant, receivable, fees).
    expect(items).toHaveLength(6);
    expect(items.slice(0, 2).map((i) => i.Put?.ConditionExpression)).toEqual(['attribute_not_exists(pk)', 'attribute_not_exists(pk)']);
    expect(items[2]!.Update).toMatchObject({ Key: { pk: 'TRANSFER#tr_ord_1_authorization', sk: 'TRANSFER' } });
    expect(items[2]!.Update!.ExpressionAttributeValues).toMatchObject({ ':to': 'posted', ':amount': 1200 });
    const merchant = items.find((i) => i.Update?.Key?.pk === 'MERCHANT#mch_1')!.Update!;
    expect(merchant.ExpressionAttributeValues).toMatchObject({ ':cp': -1200, ':cP': 1000, ':dP': 59, ':dp': 0, ':headroom': 941 });
    expect(merchant.ConditionExpression).toBeUndefined();
    const receivable = items.find((i) => String(i.Update?.Key?.pk).startsWith('ACCOUNT#receivable'))!.Update!;
    expect(receivable.ExpressionAttributeValues).toMatchObject({ ':dp': -1200, ':dP': 1000, ':cP': 0 });
    expect(receivable.ExpressionAttributeValues![':headroom']).toBeUndefined();
  });

  it("lowers the merchant's headroom by a refund without conditioning on it: a refund after payout may take it below zero", () => {
    const items = transferWrites(table, [refundTransfer(ref, { refund_id: 're_1', amount: 250 }, now)], now);
    const merchant = items.find((i) => i.Update?.Key?.pk === 'MERCHANT#mch_1')!.Update!;
    expect(merchant.ExpressionAttributeValues).toMatchObject({ ':dP': 250, ':headroom': -250 });
    expect(merchant.ExpressionAttributeValues![':need']).toBeUndefined();
    expect(merchant.ConditionExpression).toBeUndefined();
  });

  it("conditions a payout reserve on the merchant's headroom; its post and void on the reserve still being pending", () => {
    const payout = { settlement_id: 'stl_1', merchant_id: 'mch_1', currency: 'USD' };
    const reserve = transferWrites(table, [payoutTransfer(payout, 'reserve', 700, now)], now);
    const merchant = reserve.find((i) => i.Update?.Key?.pk === 'MERCHANT#mch_1')!.Update!;
    expect(merchant).toMatchObject({ ConditionExpression: '#headroom >= :need', ExpressionAttributeValues: { ':need': 700, ':headroom': -700, ':dp': 700 } });
    expect(reserve[0]!.Put!.Item).toMatchObject({ id: 'tr_stl_1_payout', kind: 'payout', phase: 'pending', pending_status: 'pending', settlement_id: 'stl_1' });
    // A payout is not a ledger entry: settlement never takes it into a window.
    expect(reserve[0]!.Put!.Item!.gsi1sk).toMatch(/^TRANSFER#/);
    for (const step of ['post', 'void'] as const) {
      const items = transferWrites(table, [payoutTransfer(payout, step, 700, now)], now);
      expect(items[1]!.Update).toMatchObject({ Key: { pk: 'TRANSFER#tr_stl_1_payout' }, ConditionExpression: expect.stringContaining('#status = :pending') });
      const m = items.find((i) => i.Update?.Key?.pk === 'MERCHANT#mch_1')!.Update!;
      // Releasing a reserve only raises the headroom (post: the pending debit becomes a posted one).
      expect(m.ConditionExpression).toBeUndefined();
      expect(m.ExpressionAttributeValues).toMatchObject({ ':dp': -700, ':dP': step === 'post' ? 700 : 0, ':headroom': step === 'post' ? 0 : 700 });
    }
  });

  it('refunds exempt only themselves: a refund and a reserve in one batch are checked for the reserve', () => {
    const payout = { settlement_id: 'stl_1', merchant_id: 'mch_1', currency: 'USD' };
    const items = transferWrites(table, [refundTransfer(ref, { refund_id: 're_1', amount: 250 }, now), payoutTransfer(payout, 'reserve', 700, now)], now);
    const merchant = items.find((i) => i.Update?.Key?.pk === 'MERCHANT#mch_1')!.Update!;
    expect(merchant).toMatchObject({ ConditionExpression: '#headroom >= :need', ExpressionAttributeValues: { ':need': 700, ':headroom': -950 } });
  });

  it('indexes the entries that move a merchant balance under its gsi1 entry range, signed, by stream', () => {
    const entries = transferWrites(table, [...captureTransfers(ref, { amount: 1000, fee: 59 }, now), refundTransfer(ref, { refund_id: 're_1', amount: 250 }, now)], now)
      .filter((i) => i.Put)
      .map((i) => i.Put!.Item!);
    expect(entries.map((e) => [e.gsi1pk, e.gsi1sk, e.entry_stream, e.entry_amount])).toEqual([
      ['MERCHANT#mch_1', entrySortKey('USD', 'delayed', now.toISOString(), 'tr_ord_1_capture'), 'delayed', 1000],
      ['MERCHANT#mch_1', entrySortKey('USD', 'delayed', now.toISOString(), 'tr_ord_1_fee'), 'delayed', -59],
      ['MERCHANT#mch_1', entrySortKey('USD', 'immediate', now.toISOString(), 'tr_re_1_refund'), 'immediate', -250],
    ]);
    // An authorization moves no balance yet: not an entry.
    expect(transferWrites(table, [authorizationTransfer(ref, 1000, now)], now)[0]!.Put!.Item).not.toHaveProperty('entry_amount');
  });

  it('refuses batches DynamoDB would refuse, before sending them', () => {
    const auth = authorizationTransfer(ref, 1000, now);
    expect(() => transferWrites(table, [auth, auth], now)).toThrow(/appears twice/);
    expect(() => transferWrites(table, [auth, ...captureTransfers(ref, { amount: 1000, fee: 0, authorized: 1000 }, now)], now)).toThrow(/created and resolved in one batch/);
    expect(() => transferWrites(table, [voidTransfer(ref, 1000, now), ...captureTransfers(ref, { amount: 5, fee: 0, authorized: 1000 }, now)], now)).toThrow(
      /both resolve pending transfer/,
    );
    const many = Array.from({ length: 99 }, (_, i) => refundTransfer(ref, { refund_id: `re_${i}`, amount: 1 }, now));
    expect(() => transferWrites(table, many, now)).toThrow(/need 101 TransactWriteItems actions .* limit of 100. Split/);
  });
});

describe('committing', () => {
  afterEach(() => vi.restoreAllMocks());
  const cancelled = (...codes: string[]) =>
    Object.assign(new Error('Transaction cancelled'), { name: 'TransactionCanceledException', CancellationReasons: codes.map((Code) => ({ Code })) });

  it('retries a transaction cancelled only by conflicts, then reports success', async () => {
    const send = vi
      .spyOn(dynamo(), 'send')
      .mockRejectedValueOnce(cancelled('None', 'TransactionConflict', 'None') as never)
      .mockResolvedValueOnce({} as never);
    const result = await commitTransfers({ table: 'main', now, transfers: [authorizationTransfer(ref, 100, now)] });
    expect(result).toEqual({ committed: true, attempts: 2 });
    expect(send).toHaveBeenCalledTimes(2);
  });

  it('returns a refusal without retrying, naming whose condition failed', async () => {
    vi.spyOn(dynamo(), 'send').mockRejectedValue(cancelled('ConditionalCheckFailed', 'ConditionalCheckFailed', 'TransactionConflict', 'None') as never);
    const state = { ConditionCheck: { TableName: 'main', Key: { pk: 'ORDER#ord_1', sk: 'ORDER' }, ConditionExpression: 'attribute_exists(pk)' } };
    const result = await commitTransfers({ table: 'main', now, transfers: [refundTransfer(ref, { refund_id: 're_1', amount: 1 }, now)], items: [state] });
    expect(result).toMatchObject({ committed: false, attempts: 1, callerRefused: true, ledger: { code: 'transfer_exists', transfer_id: 'tr_re_1_refund' } });
  });

  it('gives up on conflicts after maxAttempts and says so', async () => {
    vi.spyOn(dynamo(), 'send').mockRejectedValue(cancelled('None', 'TransactionConflict', 'None') as never);
    const result = await commitTransfers({ table: 'main', now, transfers: [authorizationTransfer(ref, 100, now)], maxAttempts: 3 });
    expect(result).toMatchObject({ committed: false, attempts: 3, callerRefused: false, ledger: undefined, reasons: ['None', 'TransactionConflict', 'None'] });
  });
});

describe('fees', () => {
  const card = (amount: number, currency: string, schedule: FeeSchedule = DEFAULT_FEE_SCHEDULE) => computeFee({ amount, currency, method: 'card' }, schedule);

  it('charges the default card rate, 2.9 % + 0.30, in the currency of the payment', () => {
    expect(card(1000, 'USD')).toBe(59); // $10.00 → 29 + 30
    expect(card(1999, 'USD')).toBe(88); // 57.971 → 58, + 30
    expect(card(1000, 'JPY')).toBe(59); // ¥1000 → 29 + ¥30 (listed: 0.30 scaled would be ¥0)
    expect(card(1000, 'KWD')).toBe(329); // 1.000 KD → 29 + 0.300 KD (30 scaled ×10)
    expect(computeFee({ amount: 1000, currency: 'USD', method: 'wallet' }, DEFAULT_FEE_SCHEDULE)).toBe(18);
  });

  it('rounds the percentage half up, with integers only', () => {
    const pct = (bps: number): FeeSchedule => ({ ...DEFAULT_FEE_SCHEDULE, card: { percent_bps: bps, fixed: 0 } });
    expect(card(50, 'USD', pct(100))).toBe(1); // 0.5 → 1
    expect(card(49, 'USD', pct(100))).toBe(0); // 0.49 → 0
    expect(card(150, 'USD', pct(290))).toBe(4); // 4.35 → 4
    expect(card(5, 'USD', pct(290))).toBe(0); // 0.145 → 0
    expect(card(1, 'USD', pct(5000))).toBe(1); // 0.5 → 1
    expect(card(MAX_AMOUNT, 'USD', pct(10_000))).toBe(MAX_AMOUNT);
    expect(card(MAX_AMOUNT, 'USD', pct(290))).toBe(2_900_000_000); // 2 899 999 999.971 → 2 900 000 000
  });

  it('scales the fixed part by exponent, rounding half up, unless the currency is listed', () => {
    expect(fixedFee({ percent_bps: 0, fixed: 30 }, 'ISK')).toBe(0); // 0.30 → 0
    expect(fixedFee({ percent_bps: 0, fixed: 50 }, 'ISK')).toBe(1); // 0.50 → 1
    expect(fixedFee({ percent_bps: 0, fixed: 149 }, 'ISK')).toBe(1);
    expect(fixedFee({ percent_bps: 0, fixed: 30 }, 'BHD')).toBe(300);
    expect(fixedFee({ percent_bps: 0, fixed: 30, fixed_by_currency: { ISK: 40 } }, 'ISK')).toBe(40);
  });

  it('never charges more than the amount', () => {
    expect(card(10, 'USD')).toBe(10);
    expect(card(1, 'KWD')).toBe(1);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: MAX_AMOUNT }),
        fc.constantFrom('USD', 'JPY', 'KWD', 'EUR', 'ISK'),
        fc.integer({ min: 0, max: 10_000 }),
        fc.integer({ min: 0, max: 100_000 }),
        (amount, currency, bps, fixed) => {
          const fee = card(amount, currency, { ...DEFAULT_FEE_SCHEDULE, card: { percent_bps: bps, fixed } });
          expect(Number.isSafeInteger(fee)).toBe(true);
          expect(fee).toBeGreaterThanOrEqual(0);
          expect(fee).toBeLessThanOrEqual(amount);
        },
      ),
    );
  });

  it('takes the platform default from FEE_SCHEDULE, and a merchant override on top', () => {
    const platform = platformFeeSchedule({ FEE_SCHEDULE: '{"card":{"percent_bps":250},"wallet":{"fixed":10}}' });
    expect(platform.card).toEqual({ percent_bps: 250, fixed: 30, fixed_by_currency: { JPY: 30, KRW: 300 } });
    expect(platform.wallet).toEqual({ percent_bps: 180, fixed: 10 });
    expect(platformFeeSchedule({})).toEqual(DEFAULT_FEE_SCHEDULE);
    const merchant = resolveFeeSchedule(parseFeeSchedule({ card: { percent_bps: 100, fixed: 0, fixed_by_currency: {} } }), platform);
    expect(computeFee({ amount: 1000, currency: 'JPY', method: 'card' }, merchant)).toBe(10);
    expect(computeFee({ amount: 1000, currency: 'USD', method: 'wallet' }, merchant)).toBe(28);
  });

  it('explains a bad schedule', () => {
    expect(() => parseFeeSchedule({ card: { percent_bps: 10_001 } })).toThrow(InvalidRequestError);
    expect(() => parseFeeSchedule({ card: { percent_bps: 2.5 } })).toThrow(/card.percent_bps/);
    expect(() => parseFeeSchedule({ card: { fixed_by_currency: { ABC: 1 } } })).toThrow(/ISO 4217/);
    expect(() => parseFeeSchedule({ crypto: {} })).toThrow(InvalidRequestError);
    expect(() => platformFeeSchedule({ FEE_SCHEDULE: '{not json' })).toThrow(/FEE_SCHEDULE is not a valid fee schedule/);
  });
});
