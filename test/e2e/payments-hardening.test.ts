import { randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { luhnCheckDigit } from '../../functions/channels/cards';
import { NOTIFICATION_CONTENT_TYPE, notificationParams, signedNotificationBody } from '../../functions/channels/sandbox/transformers';
import { call, cloud, newMerchant } from './support';
import { attemptsOf, balanceOf, card, CARDS, cardFee, confirm, newOrder, sandboxSigner, sandboxTrade, wireTradeOf } from './payments-support';

/**
 * Issue 7 over HTTP through the local cloud: channel results checked against the attempt (finding 4), the
 * card-testing limits per order and per card on the API and the hosted checkout (finding 5), and per-merchant
 * card fingerprints (finding 15a). Only the API and the table are used, never the code under test.
 */

/** A Visa number no other test uses (the per-card limit counts platform-wide). */
const freshCard = () => {
  const partial = `4${Array.from({ length: 14 }, () => randomInt(10)).join('')}`;
  return partial + luhnCheckDigit(partial);
};
/** The sandbox declines a Visa with a 4-digit CVC (invalid_cvc). */
const declining = (number: string) => ({ payment_method: { type: 'card', card: { number, exp_month: 12, exp_year: 2034, cvc: '1234' } } });
const confirmWith = (key: string, id: string, body: unknown) => call('POST', `/v1/orders/${id}/confirm`, { key, body, idempotencyKey: crypto.randomUUID() });

/** What the local cloud read from the functions' EMF lines, summed over all functions, as CloudWatch would. */
async function metricTotal(name: string): Promise<number> {
  const stats = (await (await fetch(`${cloud().endpoints.admin}/__stats`)).json()) as { lambda: Record<string, { metrics: Record<string, number> }> };
  return Object.values(stats.lambda).reduce((sum, f) => sum + (f.metrics[`Payplane/${name}`] ?? 0), 0);
}

/** The hosted checkout's form POST, as the page's form sends it. */
async function checkoutPost(checkoutUrl: string, number: string, cvc: string, lang = 'en') {
  const res = await fetch(`${checkoutUrl}?lang=${lang}`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ lang, number, exp: '12/34', cvc }).toString(),
  });
  return { status: res.status, html: await res.text() };
}

describe('POST /channels/sandbox/notify: results for another amount or currency', () => {
  it('correctly signed TRADE_SUCCESS for 0.01 USD and for 50.00 EUR on a 50.00 USD order: "fail", nothing moves; the payer can still pay', async () => {
    // Prepare: a 50.00 USD order waiting on 3-D Secure (no real result is on its way).
    const { key } = await newMerchant();
    const id = await newOrder(key, { amount: 5_000 });
    const waiting = await confirm(key, id, CARDS.threeDSecure);
    expect(waiting.body.status).toBe('requires_action');
    const trade = (await sandboxTrade(waiting.body.payment_id))!;
    const signer = await sandboxSigner();
    const send = async (over: Record<string, string>, seq: number) =>
      call('POST', '/channels/sandbox/notify', {
        raw: await signedNotificationBody(notificationParams(wireTradeOf(trade, { trade_status: 'TRADE_SUCCESS', seq: String(Number(trade.seq) + seq), ...over }), new Date()), signer),
        headers: { 'Content-Type': NOTIFICATION_CONTENT_TYPE },
      });
    const counted = await metricTotal('ChannelResultMismatch');
    // Act
    const cent = await send({ total_amount: '0.01', captured_amount: '0.01' }, 10);
    const euros = await send({ total_amount: '50.00', captured_amount: '50.00', currency: 'EUR' }, 11);
    // Assess: refused in the channel's words; the order and the ledger did not move
    expect([cent.status, cent.text]).toEqual([400, 'fail']);
    expect([euros.status, euros.text]).toEqual([400, 'fail']);
    expect(await metricTotal('ChannelResultMismatch')).toBe(counted + 2); // what the ChannelResultMismatchAlarm watches
    expect((await call('GET', `/v1/orders/${id}`, { key })).body).toMatchObject({ status: 'requires_action', amount_captured: 0, paid_at: null });
    expect(await balanceOf(key)).toEqual({ available: 0, pending: 0, in_payout: 0, authorized: 0 });
    expect(await balanceOf(key, 'EUR')).toEqual({ available: 0, pending: 0, in_payout: 0, authorized: 0 });
    // The payer approves the challenge: the real result pays 50.00 USD, once.
    const approved = await fetch(waiting.body.next_action.redirect_to_url.url, { method: 'POST', redirect: 'manual', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'outcome=approve' });
    expect(approved.status).toBe(303);
    expect((await call('GET', `/v1/orders/${id}`, { key })).body).toMatchObject({ status: 'succeeded', amount_captured: 5_000 });
    expect(await balanceOf(key)).toEqual({ available: 0, pending: 5_000 - cardFee(5_000), in_payout: 0, authorized: 0 });
  });
});

describe('card testing: per order', () => {
  it('API confirm: twelve declined cards in a row on one order, only 5 reach the channel; then 409 naming the fix', async () => {
    const { key } = await newMerchant();
    const id = await newOrder(key);
    const results = [];
    for (let i = 0; i < 12; i++) results.push(await confirmWith(key, id, declining(freshCard())));
    expect(results.map((r) => r.status)).toEqual([...Array(5).fill(402), ...Array(7).fill(409)]);
    for (const r of results.slice(5)) {
      expect(r.body.error).toMatchObject({ type: 'invalid_request_error', code: 'order_attempts_exhausted', param: 'id' });
      expect(r.body.error.message).toContain('Create a new order');
    }
    expect(await attemptsOf(id)).toHaveLength(5);
    // A good card is refused too; a new order takes it.
    expect((await confirm(key, id, CARDS.success)).status).toBe(409);
    expect((await confirm(key, await newOrder(key), CARDS.success)).body.status).toBe('succeeded');
  });

  it('hosted checkout POST: twelve declined cards, only 5 reach the channel; then the localized "can no longer be paid" page without a form', async () => {
    const { key } = await newMerchant();
    const id = await newOrder(key);
    const { checkout_url: url } = (await call('GET', `/v1/orders/${id}`, { key })).body;
    const pages = [];
    for (let i = 0; i < 12; i++) pages.push(await checkoutPost(url, freshCard(), '1234', i === 11 ? 'zh-CN' : 'en'));
    expect(pages.map((p) => p.status)).toEqual([...Array(5).fill(402), ...Array(7).fill(409)]);
    expect(pages[0]!.html).toContain('Your payment was declined.');
    expect(pages[5]!.html).toContain('This order can no longer be paid');
    expect(pages[5]!.html).toContain('Ask the merchant for a new payment link.');
    expect(pages[5]!.html).not.toContain('<form');
    expect(pages[11]!.html).toContain('此订单已无法支付');
    expect(await attemptsOf(id)).toHaveLength(5);
  });
});

describe('card testing: per card, across merchants', () => {
  it('a card declined 10 times this hour at two merchants is refused at a third (API 402, checkout page) without reaching the channel', async () => {
    // Prepare: ten declines of one card over two merchants, two orders each (each order stays under its own limit).
    const pan = freshCard();
    const [a, b] = [await newMerchant(), await newMerchant()];
    const orders = [[a.key, await newOrder(a.key)], [a.key, await newOrder(a.key)], [b.key, await newOrder(b.key)], [b.key, await newOrder(b.key)]] as const;
    for (let i = 0; i < 10; i++) {
      const [key, id] = orders[i % 4]!;
      expect((await confirmWith(key, id, declining(pan))).status).toBe(402);
    }
    // Act: the same card, with its right CVC, at a third merchant: API, then its hosted checkout in both languages
    const c = await newMerchant();
    const id = await newOrder(c.key);
    const api = await confirm(c.key, id, pan);
    const { checkout_url: url } = (await call('GET', `/v1/orders/${id}`, { key: c.key })).body;
    const page = await checkoutPost(url, pan, '123');
    const pageZh = await checkoutPost(url, pan, '123', 'zh-CN');
    // Assess
    expect(api.status, api.text).toBe(402);
    expect(api.body.error).toMatchObject({ type: 'card_error', code: 'card_declined', decline_code: 'card_velocity_exceeded' });
    expect(api.body.error.message).toContain('Use another card');
    expect(page.status).toBe(402);
    expect(page.html).toContain('This card was declined too many times recently.');
    expect(page.html).toContain('<form');
    expect(pageZh.html).toContain('此卡近期被拒绝次数过多。');
    expect(await attemptsOf(id)).toHaveLength(0);
    // Another card pays the same order.
    expect((await confirm(c.key, id, CARDS.success)).body).toMatchObject({ status: 'succeeded' });
  });
});

describe('card fingerprints (issue 7 finding 15a)', () => {
  it('are per merchant: the same card gives the same value at one merchant and another at the next', async () => {
    const pan = freshCard();
    const fingerprintAt = async (key: string) => {
      const res = await confirmWith(key, await newOrder(key), card(pan));
      expect(res.status, res.text).toBe(200);
      return res.body.payment_method_details.card.fingerprint as string;
    };
    const [a, b] = [await newMerchant(), await newMerchant()];
    const first = await fingerprintAt(a.key);
    expect(await fingerprintAt(a.key)).toBe(first);
    expect(await fingerprintAt(b.key)).not.toBe(first);
  });
});
