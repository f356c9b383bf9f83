import { GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { dynamo } from '../../functions/commons/clients';
import { newId } from '../../functions/commons/ids';
import type { PaymentChannel } from '../../functions/channels/channel';
import { ChannelRejectedError } from '../../functions/channels/errors';
import { SandboxBank } from '../../functions/channels/sandbox/bank';
import type { WireRequest, WireResponse } from '../../functions/channels/sandbox/transformers';
import { conversionOf, DEMO_RATES_EFFECTIVE_AT, rateInForce, setRate } from '../../functions/fx';
import { allShards, getAccounts, merchantAccount, type Transfer } from '../../functions/ledger';
import { runs } from '../deep';
import { useLocalServices } from './env';
import { CARDS, card, fee, paymentCase, sandboxWorld } from './payments-world';
import { clockAfterEntries, runFor, settlementCase } from './settlement-support';
import { TEST_BY } from '../actors';

/**
 * Cross-border payments (docs/settlement.md § FX) through the real payment service, sandbox channel and DynamoDB
 * Local: the rate is locked at confirm, every later step converts at it, each money movement is balanced per
 * currency, and refunds reverse exactly what was converted. The integration global setup seeds the documented demo
 * rates (EUR→USD 1.0845, JPY→USD 0.006712, USD→KWD 0.3074, markup 100 bps). The rate table is shared by every file:
 * a case that adds a rate later in time uses a pair no other case pays in (CHF→USD, SEK→USD).
 */
class CountingBank extends SandboxBank {
  pays = new Map<string, number>();
  override async handle(req: WireRequest): Promise<WireResponse> {
    if (req.method === 'sandbox.trade.pay') this.pays.set(req.out_trade_no, (this.pays.get(req.out_trade_no) ?? 0) + 1);
    return super.handle(req);
  }
}

let table: string;
const sandboxes = sandboxWorld({ Bank: CountingBank });
const fx = () => ({ db: dynamo(), tableName: table });

beforeAll(() => {
  table = useLocalServices().tables.main;
});

/** A case whose merchant settles in `settlement` (its merchant item's payout settings), with its own ledger accounts. */
async function world(settlement?: string, channel: PaymentChannel = sandboxes.sandbox) {
  const merchantId = newId('mch');
  if (settlement) {
    await dynamo().send(new PutCommand({ TableName: table, Item: { pk: `MERCHANT#${merchantId}`, sk: 'MERCHANT', type: 'merchant', id: merchantId, name: 'FX', payout: { settlement_currency: settlement, delay_days: 1 } } }));
  }
  const w = paymentCase(table, merchantId, channel);
  const accountIds = (currencies: string[]) =>
    currencies.flatMap((c) => [
      merchantAccount(merchantId, c),
      ...allShards('receivable', w.ledger.receivableOwner, c),
      ...(['fees', 'fx', 'fx_spread'] as const).flatMap((kind) => allShards(kind, w.ledger.platform, c)),
    ]);
  /** Every account of the case in `currencies`: debits equal credits in each currency, pending and posted. */
  const ledger = async (...currencies: string[]) => {
    const all = [...(await getAccounts(accountIds(currencies), table)).values()];
    for (const c of currencies) {
      const mine = all.filter((a) => a.currency === c);
      const sum = (k: 'debits_pending' | 'debits_posted' | 'credits_pending' | 'credits_posted') => mine.reduce((s, a) => s + a[k], 0);
      expect(sum('debits_posted'), `posted in ${c}`).toBe(sum('credits_posted'));
      expect(sum('debits_pending'), `pending in ${c}`).toBe(sum('credits_pending'));
    }
    const net = (kind: string, c: string, side: 'posted' | 'pending' = 'posted') =>
      all.filter((a) => a.kind === kind && a.currency === c).reduce((s, a) => s + a[`credits_${side}`] - a[`debits_${side}`], 0);
    return { all, net };
  };
  return { ...w, ledger };
}

const storedOrder = async (id: string) => (await dynamo().send(new GetCommand({ TableName: table, Key: { pk: `ORDER#${id}`, sk: 'ORDER' }, ConsistentRead: true }))).Item!;
const transfer = async (id: string) => (await dynamo().send(new GetCommand({ TableName: table, Key: { pk: `TRANSFER#${id}`, sk: 'TRANSFER' }, ConsistentRead: true }))).Item as (Transfer & { entry_amount?: number }) | undefined;
const card4242 = card(CARDS.success);

describe('a EUR order for a merchant that settles in USD', () => {
  it('confirm locks the rate and the cross-border fee; the capture converts at the base rate, takes the spread and the fee in USD', async () => {
    // Prepare
    const w = await world();
    const order = await w.order({ amount: 10_000, currency: 'EUR' });
    // Act
    const paid = await w.service.confirm(w.caller(), order.id, card4242);
    // Assess: the order keeps its own currency and amounts
    expect(paid).toMatchObject({ status: 'succeeded', currency: 'EUR', amount: 10_000, amount_captured: 10_000 });
    const stored = await storedOrder(order.id);
    expect(stored.fx).toEqual({
      source_currency: 'EUR',
      settlement_currency: 'USD',
      base_rate: '1.0845',
      rate: '1.073655',
      markup_bps: 100,
      rate_effective_at: DEMO_RATES_EFFECTIVE_AT,
      cross_border_fee_bps: 100,
    });
    // Card 2.90 % + the cross-border 1.00 %, the fixed part in USD.
    expect(stored.fee_rate).toEqual({ method: 'card', percent_bps: 390, fixed: 30 });
    // 100.00 EUR → 108.45 USD at the base rate; 107.37 at the applied one: spread 1.08; fee 3.90 % × 108.45 + 0.30 = 4.53.
    expect(await transfer(`tr_${order.id}_capture`)).toMatchObject({ kind: 'capture', currency: 'EUR', amount: 10_000, credit: expect.stringMatching(/^fx:/) });
    expect(await transfer(`tr_${order.id}_conversion`)).toMatchObject({
      kind: 'conversion',
      phase: 'posted',
      currency: 'USD',
      amount: 10_845,
      entry_amount: 10_845,
      fx: { source_currency: 'EUR', source_amount: 10_000, base_rate: '1.0845', rate: '1.073655', markup_bps: 100, rate_effective_at: DEMO_RATES_EFFECTIVE_AT },
    });
    expect(await transfer(`tr_${order.id}_fx_spread`)).toMatchObject({ kind: 'fx_spread', currency: 'USD', amount: 108, entry_amount: -108 });
    expect(await transfer(`tr_${order.id}_fee`)).toMatchObject({ kind: 'fee', currency: 'USD', amount: 453, entry_amount: -453 });
    const { net } = await w.ledger('EUR', 'USD');
    expect(net('merchant', 'USD')).toBe(10_845 - 108 - 453);
    expect(net('merchant', 'EUR')).toBe(0); // the merchant holds nothing in EUR
    expect(net('fx_spread', 'USD')).toBe(108);
    expect(net('fees', 'USD')).toBe(453);
    expect([net('fx', 'EUR'), net('fx', 'USD')]).toEqual([10_000, -10_845]); // the platform bought 100 EUR for 108.45 USD
  });

  it('a later rate does not change a locked order; partial capture posts the conversion of what is captured and releases the rest', async () => {
    // Prepare: CHF→USD is this case's alone (see the file's comment)
    await setRate(fx(), { from: 'CHF', to: 'USD', rate: '1.13', markup_bps: 50, effective_at: '2026-02-01T00:00:00Z', set_by: 'test' }, undefined, TEST_BY);
    const w = await world();
    const order = await w.order({ amount: 10_000, currency: 'CHF', capture_method: 'manual' });
    const authorized = await w.service.confirm(w.caller(), order.id, card4242);
    expect(authorized.status).toBe('requires_capture');
    expect((await w.ledger('CHF', 'USD')).net('merchant', 'USD', 'pending')).toBe(11_300); // authorized, in USD
    // Act: the rate moves, then 60.00 of 100.00 CHF is captured
    await setRate(fx(), { from: 'CHF', to: 'USD', rate: '1.25', set_by: 'test' }, undefined, TEST_BY);
    await w.service.capture(w.caller(), order.id, { amount: 6_000 });
    // Assess
    expect((await storedOrder(order.id)).fx).toMatchObject({ base_rate: '1.13', rate: '1.12435', markup_bps: 50 });
    expect(await transfer(`tr_${order.id}_conversion`)).toMatchObject({ phase: 'post_pending', amount: 6_780, pending_amount: 11_300, fx: { source_amount: 6_000, base_rate: '1.13' } });
    const c = conversionOf((await storedOrder(order.id)).fx, 6_000);
    expect(c).toEqual({ base: 6_780, merchant: 6_746, spread: 34 });
    const { net } = await w.ledger('CHF', 'USD');
    expect(net('merchant', 'USD', 'pending')).toBe(0);
    expect(net('merchant', 'USD')).toBe(6_780 - 34 - (Math.round((6_780 * 390) / 10_000) + 30));
    // A new order confirms at the rate in force now.
    const next = await w.order({ amount: 10_000, currency: 'CHF' });
    await w.service.confirm(w.caller(), next.id, card4242);
    expect((await storedOrder(next.id)).fx).toMatchObject({ base_rate: '1.25', markup_bps: 0 });
    expect(await transfer(`tr_${next.id}_conversion`)).toMatchObject({ amount: 12_500 });
  });

  it('void releases both legs of the authorization (JPY → USD)', async () => {
    const w = await world();
    const order = await w.order({ amount: 5_000, currency: 'JPY', capture_method: 'manual' });
    await w.service.confirm(w.caller(), order.id, card4242);
    expect(await transfer(`tr_${order.id}_conversion_authorization`)).toMatchObject({ phase: 'pending', currency: 'USD', amount: 3_356 }); // ¥5000 × 0.006712 = 33.56
    expect((await w.ledger('JPY', 'USD')).net('merchant', 'USD', 'pending')).toBe(3_356);
    // Act
    await w.service.close(w.caller(), order.id);
    // Assess
    expect(await transfer(`tr_${order.id}_conversion`)).toBeUndefined();
    expect(await transfer(`tr_${order.id}_conversion_void`)).toMatchObject({ phase: 'void_pending', amount: 3_356 });
    const { all } = await w.ledger('JPY', 'USD');
    expect(all.every((a) => a.credits_pending === 0 && a.debits_pending === 0 && a.credits_posted === 0 && a.debits_posted === 0)).toBe(true);
  });

  it('partial refunds, then the rest, reverse exactly the conversion credited, at the locked rate; spread and fee are kept', async () => {
    // Prepare
    const w = await world();
    const order = await w.order({ amount: 10_000, currency: 'EUR' });
    await w.service.confirm(w.caller(), order.id, card4242);
    // Act: 33.33 + 33.33 + the rest (33.34) EUR
    const first = await w.service.refund(w.caller(), { order_id: order.id, amount: 3_333 });
    const second = await w.service.refund(w.caller(), { order_id: order.id, amount: 3_333 });
    const rest = await w.service.refund(w.caller(), { order_id: order.id });
    // Assess: each reverses conv(refunded after) − conv(refunded before): 36.15, 36.14, 36.16 = 108.45
    const legs = await Promise.all([first, second, rest].map((r) => transfer(`tr_${r.id}_refund_fx`)));
    expect(legs.map((t) => t!.amount)).toEqual([3_615, 3_614, 3_616]);
    expect(legs[0]).toMatchObject({ kind: 'refund', currency: 'USD', entry_amount: -3_615, fx: { source_currency: 'EUR', source_amount: 3_333, base_rate: '1.0845' } });
    expect(await transfer(`tr_${first.id}_refund`)).toMatchObject({ kind: 'refund', currency: 'EUR', amount: 3_333, credit: expect.stringMatching(/^receivable:/) });
    expect((await storedOrder(order.id)).fx_refunded).toBe(10_845);
    const { net } = await w.ledger('EUR', 'USD');
    expect(net('merchant', 'USD')).toBe(-(108 + 453));
    expect([net('fx', 'EUR'), net('fx', 'USD')]).toEqual([0, 0]); // the platform's exchange is unwound
    expect(net('fx_spread', 'USD')).toBe(108);
  });

  it('a refund the channel refuses gives back both legs; the next refunds still add up exactly', async () => {
    const refuse = { next: false };
    const channel: PaymentChannel = Object.assign(Object.create(sandboxes.sandbox) as PaymentChannel, {
      refund: async (ref: string, refundId: string, amount: number) => {
        if (refuse.next) throw new ChannelRejectedError('sandbox', 'refund_failed', 'refused');
        return sandboxes.sandbox.refund(ref, refundId, amount);
      },
    });
    const w = await world(undefined, channel);
    const order = await w.order({ amount: 10_001, currency: 'EUR' });
    await w.service.confirm(w.caller(), order.id, card4242);
    await w.service.refund(w.caller(), { order_id: order.id, amount: 1 });
    refuse.next = true;
    await expect(w.service.refund(w.caller(), { order_id: order.id, amount: 4_999 })).rejects.toMatchObject({ code: 'refund_failed' });
    refuse.next = false;
    await w.service.refund(w.caller(), { order_id: order.id });
    const stored = await storedOrder(order.id);
    expect(stored.amount_refunded).toBe(10_001);
    expect(stored.fx_refunded).toBe(conversionOf(stored.fx, 10_001).base);
    const { net } = await w.ledger('EUR', 'USD');
    expect([net('fx', 'EUR'), net('fx', 'USD')]).toEqual([0, 0]);
  });
});

describe('exponents', () => {
  it('USD → KWD: a merchant that settles in KWD is credited in fils, the fixed fee scaled to 3 decimals', async () => {
    const w = await world('KWD');
    const order = await w.order({ amount: 10_000, currency: 'USD' });
    await w.service.confirm(w.caller(), order.id, card4242);
    // 100.00 USD × 0.3074 = 30.740 KWD; applied 0.304326 → 30.433; fee 3.90 % × 30.740 + 0.300 = 1.499
    expect(await transfer(`tr_${order.id}_conversion`)).toMatchObject({ currency: 'KWD', amount: 30_740 });
    expect(await transfer(`tr_${order.id}_fx_spread`)).toMatchObject({ amount: 307 });
    expect(await transfer(`tr_${order.id}_fee`)).toMatchObject({ currency: 'KWD', amount: 1_499 });
    const { net } = await w.ledger('USD', 'KWD');
    expect(net('merchant', 'KWD')).toBe(30_740 - 307 - 1_499);
  });

  it('JPY → USD: ¥5000 is 33.56 USD', async () => {
    const w = await world();
    const order = await w.order({ amount: 5_000, currency: 'JPY' });
    await w.service.confirm(w.caller(), order.id, card4242);
    expect(await transfer(`tr_${order.id}_conversion`)).toMatchObject({ currency: 'USD', amount: 3_356, fx: { source_currency: 'JPY', source_amount: 5_000 } });
    await w.ledger('JPY', 'USD');
  });

  it('an order in the settlement currency is not converted and pays no cross-border fee', async () => {
    const w = await world('USD');
    const order = await w.order({ amount: 10_000, currency: 'USD' });
    await w.service.confirm(w.caller(), order.id, card4242);
    const stored = await storedOrder(order.id);
    expect(stored.fx).toBeUndefined();
    expect(stored.fee_rate).toMatchObject({ percent_bps: 290 });
    expect(await transfer(`tr_${order.id}_conversion`)).toBeUndefined();
  });
});

describe('no rate in force', () => {
  it('refuses the confirm with a 409 naming the pair and the fix; nothing is written and the channel never sees the payment', async () => {
    // Prepare: SEK→USD has no rate (this file sets one only at the end of this case)
    const w = await world();
    const order = await w.order({ amount: 10_000, currency: 'SEK' });
    const before = await storedOrder(order.id);
    const bank = sandboxes.bank as CountingBank;
    const paysBefore = bank.pays.size;
    // Act
    const error = await w.service.confirm(w.caller(), order.id, card4242).then(
      () => undefined,
      (e: unknown) => e as { status: number; code: string; message: string; param: string; retryable: boolean },
    );
    // Assess
    expect(error).toMatchObject({ status: 409, code: 'fx_rate_unavailable', param: 'currency', retryable: true });
    expect(error!.message).toContain('no SEK→USD exchange rate is in force');
    expect(error!.message).toContain('`npx payplane fx set SEK USD');
    expect(await storedOrder(order.id)).toEqual(before);
    expect(bank.pays.size).toBe(paysBefore);
    const attempts = await dynamo().send(new QueryCommand({ TableName: table, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': `ORDER#${order.id}` } }));
    expect(attempts.Items!.length).toBe(1); // the order alone: no attempt, no transfer
    // Once the operator sets a rate, the same order confirms.
    await setRate(fx(), { from: 'SEK', to: 'USD', rate: '0.0921', set_by: 'test' }, undefined, TEST_BY);
    expect(await rateInForce(fx(), 'SEK', 'USD', new Date())).toMatchObject({ rate: '0.0921' });
    await expect(w.service.confirm(w.caller(), order.id, card4242)).resolves.toMatchObject({ status: 'succeeded' });
  });
});

describe('property: converted payments reconcile to the minor unit', () => {
  it('any order in JPY, EUR or KWD for a USD or KWD merchant, captured in part or whole, refunded in random parts: balanced per currency, refunds reverse the conversion exactly', async () => {
    const scenario = fc.record({
      pair: fc.constantFrom(['JPY', undefined], ['EUR', undefined], ['KWD', undefined], ['USD', 'KWD'], ['EUR', 'USD']) as fc.Arbitrary<[string, string | undefined]>,
      amount: fc.integer({ min: 1, max: 5_000_000 }),
      capturePercent: fc.oneof(fc.constant(100), fc.integer({ min: 1, max: 100 })),
      refunds: fc.array(fc.integer({ min: 1, max: 100 }), { minLength: 0, maxLength: 3 }),
      refundAll: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(scenario, async ({ pair: [source, settlement], amount, capturePercent, refunds, refundAll }) => {
        const settle = settlement ?? 'USD';
        const w = await world(settlement);
        const order = await w.order({ amount, currency: source, capture_method: 'manual' });
        await w.service.confirm(w.caller(), order.id, card4242);
        const captured = Math.max(1, Math.floor((amount * capturePercent) / 100));
        await w.service.capture(w.caller(), order.id, { amount: captured });
        let left = captured;
        for (const share of refunds) {
          const part = Math.max(1, Math.floor((left * share) / 100));
          if (left === 0) break;
          await w.service.refund(w.caller(), { order_id: order.id, amount: part });
          left -= part;
        }
        if (refundAll && left > 0) await w.service.refund(w.caller(), { order_id: order.id });
        const stored = await storedOrder(order.id);
        const c = conversionOf(stored.fx, captured);
        const fee = (await transfer(`tr_${order.id}_fee`))?.amount ?? 0;
        const { net } = await w.ledger(source, settle); // balanced per currency, pending and posted
        expect(net('merchant', settle, 'pending')).toBe(0); // the uncaptured rest is released
        expect(net('merchant', settle)).toBe(c.base - c.spread - fee - stored.fx_refunded);
        expect(net('fx_spread', settle)).toBe(c.spread);
        if (stored.amount_refunded === captured) expect([net('fx', source), net('fx', settle)]).toEqual([0, 0]);
        expect(stored.fx_refunded).toBeLessThanOrEqual(c.base);
        expect(stored.fx_refunded).toBe(conversionOf(stored.fx, stored.amount_refunded).base); // no refund failed: cumulative = conv(total)
      }),
      { numRuns: runs(8, 200) },
    );
  }, 120_000);
});

describe('settlement of converted payments', () => {
  it('a merchant paid in EUR and USD gets one USD settlement: conversions in gross, the spread in fx, the refund at the locked rate; the run reconciles with the channel', async () => {
    // Prepare: 100.00 EUR and 50.00 USD paid, 33.33 EUR refunded
    const m = await settlementCase(table);
    const eur = await m.order({ amount: 10_000, currency: 'EUR' });
    await m.service.confirm(m.caller(), eur.id, card4242);
    const usd = await m.order({ amount: 5_000, currency: 'USD' });
    await m.service.confirm(m.caller(), usd.id, card4242);
    await m.refund(eur.id, 3_333);
    const { cutoff, now } = clockAfterEntries();
    // Act
    const { outcomes, summary } = await runFor(m.merchantId, cutoff, m.deps(now));
    // Assess: 108.45 converted, 1.08 spread, 4.53 fee on it; 36.15 refunded (conv of 33.33 EUR at 1.0845)
    const net = 10_845 + 5_000 - 3_615 - 453 - fee(5_000) - 108;
    expect(outcomes).toEqual([{ settlement_id: expect.stringMatching(/^stl_/), status: 'paid', net, payout_attempts: 1, errors: [] }]);
    expect((await m.settlement(outcomes[0]!.settlement_id!))!).toMatchObject({
      currency: 'USD',
      totals: { gross: 10_845 + 5_000, refunds: 3_615, fees: 453 + fee(5_000), fx: 108, adjustments: 0, carried_in: 0, net },
    });
    // The channel's statement (EUR capture and refund, USD capture) matches the ledger's channel-side legs.
    expect(summary).toMatchObject({ settlements: 1, by_status: { paid: 1 }, currencies: { USD: { net, paid: net } } });
    expect(summary.checked.statement_lines).toBeGreaterThanOrEqual(6);
  });
});
