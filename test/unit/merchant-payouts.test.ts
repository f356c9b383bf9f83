import { describe, expect, it } from 'vitest';
import { InternalError, InvalidRequestError } from '../../functions/commons/errors';
import { cachedPayoutSettings, parsePayoutSettings, platformSettlementCurrency, withDefaults, type PayoutSettings } from '../../functions/merchants/payouts';

/** Merchant payout settings (functions/merchants/payouts.ts): the operator's input, the defaults, the cache. */
const refusal = (input: Parameters<typeof parsePayoutSettings>[0]) => {
  try {
    parsePayoutSettings(input);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidRequestError);
    return error as InvalidRequestError;
  }
  throw new Error('expected a refusal');
};

describe('parsePayoutSettings', () => {
  it('normalises what the operator types: an upper-case code, a whole number of days, the digits of the account', () => {
    expect(parsePayoutSettings({ currency: ' eur ', delayDays: '0', bankAccount: '0001-2345 6789' })).toEqual({ currency: 'EUR', delay_days: 0, bank_account: '000123456789' });
    expect(parsePayoutSettings({ delayDays: 30 })).toEqual({ delay_days: 30 });
  });

  it('names the field, the value and the fix', () => {
    expect(refusal({ currency: 'XTS' })).toMatchObject({ param: 'currency', message: expect.stringMatching(/^Invalid 'currency': got "XTS"\. Use a payable ISO 4217 code/) });
    expect(refusal({ delayDays: -1 })).toMatchObject({ param: 'delay_days', message: "Invalid 'delay_days': got -1. Use 0 to 30." });
    expect(refusal({ delayDays: 'soon' })).toMatchObject({ param: 'delay_days', message: expect.stringContaining('Use a whole number of business days from 0 to 30') });
    expect(refusal({ bankAccount: '12345' })).toMatchObject({ param: 'bank_account', message: expect.stringContaining('got 5 characters ending in 2345') });
    expect(refusal({})).toMatchObject({ code: 'parameter_missing' });
  });

  it('never puts a refused bank account number into the error', () => {
    const account = '4000123412341234567890123456789012345';
    const error = refusal({ bankAccount: account });
    expect(error.message).not.toContain(account.slice(0, 12));
    expect(JSON.stringify(error)).not.toContain(account.slice(0, 12));
  });
});

describe('defaults', () => {
  it('applies the platform currency and T+1 to what the operator did not set', () => {
    expect(withDefaults(undefined, {})).toEqual({ settlement_currency: 'USD', delay_days: 1 });
    expect(withDefaults({ delay_days: 0, version: 1, updated_at: 'x' }, { SETTLEMENT_CURRENCY: 'JPY' })).toEqual({ settlement_currency: 'JPY', delay_days: 0 });
    expect(() => platformSettlementCurrency({ SETTLEMENT_CURRENCY: 'usd' })).toThrow(InternalError);
  });
});

describe('cachedPayoutSettings', () => {
  it('reads a merchant once per TTL and again after it', async () => {
    let now = 0;
    let loads = 0;
    const settings: PayoutSettings = { settlement_currency: 'USD', delay_days: 1 };
    const get = cachedPayoutSettings(async () => (loads++, settings), 1_000, () => now);
    await get('mch_a');
    await get('mch_a');
    now = 999;
    await get('mch_a');
    expect(loads).toBe(1);
    now = 1_000;
    await get('mch_a');
    await get('mch_b');
    expect(loads).toBe(3);
  });
});
