import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidRequestError } from '../../functions/commons/errors';
import { MAX_AMOUNT } from '../../functions/commons/money';
import { computeFee, DEFAULT_FEE_SCHEDULE, feeAt, parseFeeSchedule, paymentFeeRate, resolveFeeSchedule } from '../../functions/ledger';
import { cachedMerchantFees } from '../../functions/payments/merchant-fees';
import { parseFeeScheduleSetting } from '../../lib/stage-config';

describe('a payment fee rate (the snapshot taken at confirm)', () => {
  it('fixes the fixed part in the payment currency, so the fee equals computeFee', () => {
    expect(paymentFeeRate(DEFAULT_FEE_SCHEDULE, 'card', 'USD')).toEqual({ method: 'card', percent_bps: 290, fixed: 30 });
    expect(paymentFeeRate(DEFAULT_FEE_SCHEDULE, 'card', 'JPY')).toEqual({ method: 'card', percent_bps: 290, fixed: 30 });
    expect(paymentFeeRate(DEFAULT_FEE_SCHEDULE, 'card', 'KWD')).toEqual({ method: 'card', percent_bps: 290, fixed: 300 });
    expect(paymentFeeRate(DEFAULT_FEE_SCHEDULE, 'wallet', 'EUR')).toEqual({ method: 'wallet', percent_bps: 180, fixed: 0 });
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: MAX_AMOUNT }),
        fc.constantFrom('USD', 'JPY', 'KWD', 'ISK', 'KRW'),
        fc.constantFrom('card' as const, 'wallet' as const),
        fc.integer({ min: 0, max: 10_000 }),
        fc.integer({ min: 0, max: 100_000 }),
        (amount, currency, method, percent_bps, fixed) => {
          const schedule = resolveFeeSchedule({ [method]: { percent_bps, fixed } }, DEFAULT_FEE_SCHEDULE);
          expect(feeAt(amount, paymentFeeRate(schedule, method, currency))).toBe(computeFee({ amount, currency, method }, schedule));
        },
      ),
    );
  });
});

describe('parseFeeSchedule messages', () => {
  it('name the field, the value and the fix', () => {
    // Act
    let error: unknown;
    try {
      parseFeeSchedule({ card: { percent_bps: 2.5 } });
    } catch (e) {
      error = e;
    }
    // Assess
    expect(error).toBeInstanceOf(InvalidRequestError);
    expect((error as InvalidRequestError).param).toBe('card.percent_bps');
    expect((error as Error).message).toContain("field 'card.percent_bps'");
    expect((error as Error).message).toContain('(got 2.5)');
    expect((error as Error).message).toContain('"percent_bps": 0-10000');
    expect(() => parseFeeSchedule({ card: { fixed: -1 } })).toThrow(/'card\.fixed'.*got -1/);
    expect(() => parseFeeSchedule({ crypto: {} })).toThrow(/'\(root\)'.*crypto/);
  });
});

describe('the platform fee schedule setting (synth time)', () => {
  it('takes JSON text (-c) or an object (cdk.json, stage settings); nothing or {} is no change', () => {
    expect(parseFeeScheduleSetting('{"card":{"percent_bps":250}}', "Context 'feeSchedule'")).toEqual({ card: { percent_bps: 250 } });
    expect(parseFeeScheduleSetting({ wallet: { fixed: 10 } }, 'x')).toEqual({ wallet: { fixed: 10 } });
    for (const nothing of [undefined, null, '', '{}', {}]) expect(parseFeeScheduleSetting(nothing, 'x')).toBeUndefined();
  });

  it('refuses a bad value naming its source, the value and the fix', () => {
    expect(() => parseFeeScheduleSetting('{card:250}', "Context 'feeSchedule'")).toThrow(
      `Context 'feeSchedule' is not JSON: got "{card:250}". Pass a JSON object in single quotes, e.g. -c feeSchedule='{"card":{"percent_bps":250,"fixed":30}}'.`,
    );
    expect(() => parseFeeScheduleSetting('{"card":{"percent_bps":25000}}', "Context 'feeSchedule'")).toThrow(
      /^Context 'feeSchedule' \{"card":\{"percent_bps":25000\}\} is not a valid fee schedule\. Fee schedule field 'card\.percent_bps' is invalid: .*\(got 25000\).* Fix it, e\.g\. -c feeSchedule=/,
    );
  });
});

describe('cachedMerchantFees', () => {
  it('reads a merchant once per TTL, each merchant on its own', async () => {
    // Prepare
    let now = 0;
    const reads: string[] = [];
    const fees = cachedMerchantFees(async (id) => {
      reads.push(id);
      return id === 'mch_a' ? { card: { percent_bps: reads.length } } : undefined;
    }, 60_000, () => now);
    // Act / Assess
    expect(await fees('mch_a')).toEqual({ card: { percent_bps: 1 } });
    expect(await fees('mch_b')).toBeUndefined();
    now = 59_999;
    expect(await fees('mch_a')).toEqual({ card: { percent_bps: 1 } });
    expect(await fees('mch_b')).toBeUndefined();
    expect(reads).toEqual(['mch_a', 'mch_b']);
    now = 60_000;
    expect(await fees('mch_a')).toEqual({ card: { percent_bps: 3 } });
    expect(reads).toEqual(['mch_a', 'mch_b', 'mch_a']);
  });

  it('with a TTL of 0, reads every time (tests, and anyone who needs changes at once)', async () => {
    let reads = 0;
    const fees = cachedMerchantFees(async () => ({ wallet: { fixed: ++reads } }), 0);
    await fees('mch_a');
    expect(await fees('mch_a')).toEqual({ wallet: { fixed: 2 } });
  });
});
