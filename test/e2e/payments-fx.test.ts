import { describe, expect, it } from 'vitest';
import { call, newMerchant, payplane } from './support';
import { balanceOf, CARDS, confirm, newOrder } from './payments-support';

/**
 * Cross-border payments over HTTP through the local cloud (docs/settlement.md § FX): the local cloud seeds the
 * sandbox demo rates at startup (EUR→USD 1.0845, markup 100 bps), merchants settle in USD by default.
 */
describe('a EUR payment for a merchant that settles in USD', () => {
  it('is paid in EUR and credited in USD at the locked rate, less the spread and the fee with the cross-border part', async () => {
    // Prepare
    const { key } = await newMerchant();
    const id = await newOrder(key, { amount: 10_000, currency: 'EUR' });
    // Act
    const res = await confirm(key, id, CARDS.success);
    // Assess: the order in the payer's currency, the balance in the settlement currency
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ status: 'succeeded', currency: 'EUR', amount: 10_000, amount_captured: 10_000 });
    // 108.45 USD − 1.08 spread − 4.53 fee (3.90 % + 0.30): captured, pending until the merchant's payout delay.
    expect(await balanceOf(key, 'USD')).toEqual({ available: 0, pending: 10_284, in_payout: 0, authorized: 0 });
    expect(await balanceOf(key, 'EUR')).toEqual({ available: 0, pending: 0, in_payout: 0, authorized: 0 });
  });
});

describe('the rate table, as the operator reads it', () => {
  it('lists the pair the payment above converted at: the seeded demo rate, base and markup apart (npx payplane fx list)', async () => {
    const listed = await payplane('fx', 'list', 'EUR', 'USD', '--json');
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toContainEqual(expect.objectContaining({ from: 'EUR', to: 'USD', rate: '1.0845', markup_bps: 100 }));
  });
});

describe('the hosted checkout', () => {
  it('pays a JPY order for a USD merchant at the locked rate (no browser: the form POST)', async () => {
    const { key } = await newMerchant();
    const id = await newOrder(key, { amount: 5_000, currency: 'JPY' });
    const { checkout_url: url } = (await call('GET', `/v1/orders/${id}`, { key })).body;
    const res = await fetch(`${url}?lang=en`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ lang: 'en', number: CARDS.success, exp: '12/34', cvc: '123' }).toString(),
    });
    expect(res.status, await res.text()).toBeLessThan(400);
    expect((await call('GET', `/v1/orders/${id}`, { key })).body).toMatchObject({ status: 'succeeded', currency: 'JPY', amount_captured: 5_000 });
    // ¥5000 × 0.006712 = 33.56 USD; spread 0.34 (33.2244 → 33.22); fee 3.90 % × 33.56 + 0.30 = 1.61
    expect(await balanceOf(key, 'USD')).toMatchObject({ available: 0, pending: 3_356 - 34 - 161 });
  });
});

describe('a manual-capture KWD order for a USD merchant', () => {
  it('shows the authorization in USD as `authorized`, then the capture as `pending`', async () => {
    const { key } = await newMerchant();
    const id = await newOrder(key, { amount: 1_000, currency: 'KWD', capture_method: 'manual' });
    expect((await confirm(key, id, CARDS.success)).body.status).toBe('requires_capture');
    // 1.000 KWD × 3.2531 = 3.2531 USD → 3.25
    expect(await balanceOf(key, 'USD')).toEqual({ available: 0, pending: 0, in_payout: 0, authorized: 325 });
    const captured = await call('POST', `/v1/orders/${id}/capture`, { key, body: {}, idempotencyKey: `cap-${id}` });
    expect(captured.status, captured.text).toBe(200);
    // spread 3.25 − 3.22 (3.220569) = 0.03; fee 3.90 % × 3.25 = 0.13 + 0.30 = 0.43
    expect(await balanceOf(key, 'USD')).toEqual({ available: 0, pending: 325 - 3 - 43, in_payout: 0, authorized: 0 });
  });
});

describe('no rate in force', () => {
  it('409 fx_rate_unavailable naming the pair and the fix; the order stays payable', async () => {
    const { key } = await newMerchant();
    const id = await newOrder(key, { amount: 10_000, currency: 'SEK' });
    const res = await confirm(key, id, CARDS.success);
    expect(res.status, res.text).toBe(409);
    expect(res.body.error).toMatchObject({ type: 'invalid_request_error', code: 'fx_rate_unavailable', param: 'currency' });
    expect(res.body.error.message).toContain('no SEK→USD exchange rate is in force');
    expect(res.body.error.message).toContain('npx payplane fx set SEK USD');
    expect((await call('GET', `/v1/orders/${id}`, { key })).body).toMatchObject({ status: 'requires_payment', payment_id: null });
  });
});
