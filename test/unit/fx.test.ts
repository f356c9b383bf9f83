import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { currency } from '../../functions/commons/money';
import { appliedRate, conversionOf, convertAmount, formatDecimal, lockOf, parseMarkupBps, parseRate, refundReversal, type FxLock } from '../../functions/fx';
import {
  convertedAuthorizationTransfers,
  convertedCaptureTransfers,
  convertedRefundTransfers,
  convertedVoidTransfers,
  feeOnConversion,
  validateTransfer,
  type PaymentRef,
  type Transfer,
} from '../../functions/ledger';
import { runs } from '../deep';

/**
 * FX math (functions/fx): exact decimal rates, conversion across 0-, 2- and 3-decimal currencies rounded half up,
 * cumulative refunds, and the converted payment's transfers balancing per currency.
 */
const lock = (from: string, to: string, rate: string, markup = 0): FxLock =>
  lockOf({ from, to, rate, markup_bps: markup, effective_at: '2026-01-01T00:00:00.000Z', set_by: 't', set_at: '2026-01-01T00:00:00.000Z' }, 100);

describe('rates', () => {
  it('parses decimal strings exactly and normalizes them', () => {
    // Prepare / Act / Assess
    expect(parseRate('1.0845')).toEqual({ mantissa: 10845n, scale: 4 });
    expect(formatDecimal(parseRate('1.50'))).toBe('1.5');
    expect(formatDecimal(parseRate('0.006712'))).toBe('0.006712');
    expect(formatDecimal(parseRate('148'))).toBe('148');
    // 12 significant digits: leading zeros do not count.
    expect(formatDecimal(parseRate('0.000123456789012'))).toBe('0.000123456789012');
  });

  it.each([
    ['0', 'greater than zero'],
    ['0.000', 'greater than zero'],
    ['-1.08', 'digits with an optional decimal point'],
    ['1e3', 'digits with an optional decimal point'],
    ['1,0845', 'digits with an optional decimal point'],
    ['1234567.890123', '13 significant digits'],
  ])('refuses %s, naming the field, the value and the fix', (text, why) => {
    expect(() => parseRate(text)).toThrow(why);
    expect(() => parseRate(text)).toThrow(`Invalid 'rate': got "${text}"`);
    expect(() => parseRate(text)).toThrow('e.g. 1.0845');
  });

  it('refuses a rate given as a number (a float) and markups outside 0-10000 bps', () => {
    expect(() => parseRate(1.0845)).toThrow('a rate is a decimal string');
    expect(parseMarkupBps('150')).toBe(150);
    expect(() => parseMarkupBps('10001')).toThrow("Invalid 'markup_bps': got \"10001\"");
    expect(() => parseMarkupBps(1.5)).toThrow('an integer from 0 to 10000');
  });

  it('applies the markup exactly: 1.0845 less 1 % is 1.073655', () => {
    expect(formatDecimal(appliedRate(parseRate('1.0845'), 100))).toBe('1.073655');
    expect(lock('EUR', 'USD', '1.0845', 100)).toMatchObject({ base_rate: '1.0845', rate: '1.073655', markup_bps: 100 });
  });
});

describe('conversion', () => {
  it('scales by both ISO 4217 exponents: EUR→USD, JPY→USD, USD→KWD, KWD→JPY', () => {
    expect(convertAmount(10_000, 'EUR', 'USD', parseRate('1.0845'))).toBe(10_845); // 100.00 EUR → 108.45 USD
    expect(convertAmount(5_000, 'JPY', 'USD', parseRate('0.006712'))).toBe(3_356); // ¥5000 → 33.56 USD
    expect(convertAmount(10_000, 'USD', 'KWD', parseRate('0.3074'))).toBe(30_740); // 100.00 USD → 30.740 KWD
    expect(convertAmount(1_000, 'KWD', 'JPY', parseRate('486.2'))).toBe(486); // 1.000 KWD → ¥486
    expect(convertAmount(1, 'KWD', 'USD', parseRate('3.2531'))).toBe(0); // 0.001 KWD = 0.33 cent → 0
  });

  it('rounds half up, once, from the exact product', () => {
    const half = parseRate('0.5');
    expect([1, 3, 5, 7].map((n) => convertAmount(n, 'EUR', 'USD', half))).toEqual([1, 2, 3, 4]);
    // 100.00 EUR at 1.0845 less 1 %: 107.3655 → 107.37 (not 108.45 − 1.08 = 107.37 by luck: from the exact product).
    expect(conversionOf(lock('EUR', 'USD', '1.0845', 100), 10_000)).toEqual({ base: 10_845, merchant: 10_737, spread: 108 });
  });

  const codes = fc.constantFrom('JPY', 'USD', 'KWD', 'EUR');
  const rateArb = fc
    .record({ digits: fc.bigInt({ min: 1n, max: 999_999_999_999n }), scale: fc.integer({ min: 0, max: 14 }) })
    .map(({ digits, scale }) => formatDecimal({ mantissa: digits, scale }))
    .filter((r) => parseRate(r).mantissa.toString().length <= 12 && Number(r) < 1e5); // beyond USD→VND; with ≤ 10⁷ minor units and 3 decimals more, results stay safe integers
  const lockArb = fc
    .record({ from: codes, to: codes, rate: rateArb, markup: fc.oneof(fc.integer({ min: 0, max: 500 }), fc.integer({ min: 0, max: 10_000 })) })
    .filter((l) => l.from !== l.to)
    .map((l) => lock(l.from, l.to, l.rate, l.markup));
  const amountArb = fc.oneof(fc.integer({ min: 0, max: 1_000 }), fc.integer({ min: 0, max: 10_000_000 }));

  it('is within half a minor unit of the exact value, halves up; spread = base − merchant ≥ 0', () => {
    fc.assert(
      fc.property(lockArb, amountArb, (l, amount) => {
        const c = conversionOf(l, amount);
        for (const [value, rate] of [[c.base, parseRate(l.base_rate)], [c.merchant, appliedRate(parseRate(l.base_rate), l.markup_bps)]] as const) {
          // exact = amount × m × 10^(e_to) / (10^scale × 10^(e_from)) = N / D
          const eTo = BigInt(currency(l.settlement_currency)!.exponent);
          const eFrom = BigInt(currency(l.source_currency)!.exponent);
          const N = BigInt(amount) * rate.mantissa * 10n ** eTo;
          const D = 10n ** BigInt(rate.scale) * 10n ** eFrom;
          const diff = BigInt(value) * D - N; // value − exact, times D
          expect(-D < 2n * diff && 2n * diff <= D).toBe(true); // −½ < value − exact ≤ ½: halves go up
        }
        expect(c.spread).toBe(c.base - c.merchant);
        expect(c.spread).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: runs(300, 5_000) },
    );
  }, 60_000); // the deep run's cases, on a loaded machine

  it('refunds reverse cumulatively: any split, with refunds failing and given back, adds up to the conversion credited', () => {
    const scenario = fc.record({
      lock: lockArb,
      captured: fc.integer({ min: 1, max: 10_000_000 }),
      parts: fc.array(fc.record({ share: fc.integer({ min: 1, max: 100 }), fails: fc.boolean() }), { minLength: 1, maxLength: 12 }),
    });
    fc.assert(
      fc.property(scenario, ({ lock: l, captured, parts }) => {
        let refunded = 0; // source units, as the order's amount_refunded
        let reversed = 0; // settlement units, as the order's fx_refunded
        let left = captured;
        const take = (amount: number) => {
          const settlement = refundReversal(l, refunded + amount, reversed);
          refunded += amount;
          reversed += settlement;
          return settlement;
        };
        for (const part of parts) {
          if (left === 0) break;
          const amount = Math.max(1, Math.floor((left * part.share) / 100));
          const settlement = take(amount);
          if (part.fails) {
            refunded -= amount; // the channel refused: the reservation and its transfers are given back
            reversed -= settlement;
          } else left -= amount;
          expect(reversed).toBeLessThanOrEqual(conversionOf(l, captured).base);
        }
        if (left > 0) take(left); // the rest: everything is refunded
        expect(refunded).toBe(captured);
        expect(reversed).toBe(conversionOf(l, captured).base);
      }),
      { numRuns: runs(300, 5_000) },
    );
  }, 60_000); // the deep run's cases, on a loaded machine
});

describe('converted payment transfers', () => {
  const ref = (currencyCode: string): PaymentRef => ({ order_id: 'ord_fx1', merchant_id: 'mch_fx', currency: currencyCode, channel: 'sandbox', platform: 'pf_fx' });
  const now = new Date('2026-12-02T05:00:00Z');
  const feeRate = { method: 'card' as const, percent_bps: 390, fixed: 30 };

  /** Sums per account over posted transfers and pending ones (a resolution releases its pending amount). */
  function apply(transfers: Transfer[]) {
    const posted = new Map<string, number>();
    const pending = new Map<string, number>();
    const add = (m: Map<string, number>, id: string, n: number) => m.set(id, (m.get(id) ?? 0) + n);
    const amounts = new Map<string, Transfer>();
    for (const t of transfers) {
      validateTransfer(t);
      if (t.phase === 'pending') {
        amounts.set(t.id, t);
        add(pending, t.credit, t.amount);
        add(pending, t.debit, -t.amount);
      } else {
        if (t.phase !== 'posted') {
          const p = amounts.get(t.pending_id!)!;
          expect([p.debit, p.credit, p.amount]).toEqual([t.debit, t.credit, t.pending_amount]);
          add(pending, p.credit, -p.amount);
          add(pending, p.debit, p.amount);
        }
        if (t.phase !== 'void_pending') {
          add(posted, t.credit, t.amount);
          add(posted, t.debit, -t.amount);
        }
      }
    }
    return { posted, pending };
  }
  const perCurrency = (m: Map<string, number>) => {
    const sums = new Map<string, number>();
    for (const [id, n] of m) sums.set(id.split(':')[2]!, (sums.get(id.split(':')[2]!) ?? 0) + n);
    return sums;
  };

  it('authorize → partial capture → refunds: balanced per currency, the merchant credited at the base rate less spread and fee', () => {
    const l = lock('EUR', 'USD', '1.0845', 100);
    const transfers = [
      ...convertedAuthorizationTransfers(ref('EUR'), l, 10_000, now),
      ...convertedCaptureTransfers(ref('EUR'), l, { amount: 6_000, authorized: 10_000, fee: feeOnConversion(l, 6_000, feeRate) }, now),
    ];
    const { posted, pending } = apply(transfers);
    for (const sum of perCurrency(posted).values()) expect(sum).toBe(0);
    for (const sum of pending.values()) expect(sum).toBe(0); // the rest of the authorization is released
    const c = conversionOf(l, 6_000); // 60.00 EUR → 65.07 USD, 64.42 at the applied rate
    expect(c).toEqual({ base: 6_507, merchant: 6_442, spread: 65 });
    const fee = Math.round((6_507 * 390) / 10_000) + 30; // 2.54 + 0.30
    expect(posted.get('merchant:mch_fx:USD')).toBe(6_507 - 65 - fee);
    const conversion = transfers.find((t) => t.kind === 'conversion' && t.phase === 'post_pending')!;
    expect(conversion).toMatchObject({ amount: 6_507, currency: 'USD', fx: { source_currency: 'EUR', source_amount: 6_000, base_rate: '1.0845', rate: '1.073655', markup_bps: 100 } });
    expect(transfers.find((t) => t.kind === 'capture')).toMatchObject({ amount: 6_000, currency: 'EUR', debit: expect.stringMatching(/^receivable:/), credit: expect.stringMatching(/^fx:pf_fx:EUR:/) });
  });

  it('void releases both legs', () => {
    const l = lock('JPY', 'USD', '0.006712');
    const { posted, pending } = apply([...convertedAuthorizationTransfers(ref('JPY'), l, 5_000, now), ...convertedVoidTransfers(ref('JPY'), l, 5_000, now)]);
    for (const sum of [...posted.values(), ...pending.values()]) expect(sum).toBe(0);
  });

  it('refunding everything leaves the fx accounts flat and the merchant down by the spread and the fee', () => {
    fc.assert(
      fc.property(fc.constantFrom<[string, string, string]>(['EUR', 'USD', '1.0845'], ['JPY', 'USD', '0.006712'], ['USD', 'KWD', '0.3074'], ['KWD', 'JPY', '486.2']), fc.integer({ min: 1, max: 5_000_000 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 300 }), ([from, to, rate], amount, n, markup) => {
        const l = lock(from, to, rate, markup);
        const transfers = [...convertedCaptureTransfers(ref(from), l, { amount, fee: feeOnConversion(l, amount, feeRate) }, now)];
        let refunded = 0;
        let reversed = 0;
        for (let k = 1; k <= n; k++) {
          const part = k === n ? amount - refunded : Math.floor(amount / n);
          if (part === 0) continue;
          const settlement = refundReversal(l, refunded + part, reversed);
          transfers.push(...convertedRefundTransfers(ref(from), l, { refund_id: `re_${k}`, amount: part, settlement_amount: settlement }, now));
          refunded += part;
          reversed += settlement;
        }
        const { posted } = apply(transfers);
        for (const sum of perCurrency(posted).values()) expect(sum).toBe(0);
        const c = conversionOf(l, amount);
        const fee = feeOnConversion(l, amount, feeRate);
        expect((posted.get(`merchant:mch_fx:${to}`) ?? 0) + c.spread + fee).toBe(0);
        const fx = [...posted].filter(([id]) => id.startsWith('fx:')).reduce((s, [, v]) => s + v, 0);
        expect(fx).toBe(0);
      }),
      { numRuns: runs(100, 2_000) },
    );
  }, 60_000);
});
