import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { HmacSigner } from '../../functions/channels/sandbox/signer';
import { NOTIFICATION_CONTENT_TYPE, notificationParams, signedNotificationBody, type WireTrade } from '../../functions/channels/sandbox/transformers';
import { call, newMerchant } from './support';
import { attemptsOf, balanceOf, callbacksDrained, CARDS, cardFee, confirm, newOrder, sandboxSigner, sandboxTrade, waitForOrder, wireTradeOf } from './payments-support';

/**
 * Paying orders over HTTP through the local cloud: POST /v1/orders/{id}/confirm with each sandbox test card,
 * the asynchronous path (SQS callback queue → SandboxNotifier → POST /channels/sandbox/notify), the lost
 * answer, and racing confirms. Each test has its own merchant, so balances are its own.
 */

describe('POST /v1/orders/{id}/confirm', () => {
  it('4242…: succeeded, card summary shown, pending balance = amount − fee (T+1)', async () => {
    // Prepare
    const { key } = await newMerchant();
    const id = await newOrder(key, { amount: 2500 });
    // Act
    const res = await confirm(key, id, CARDS.success);
    // Assess
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({
      id,
      status: 'succeeded',
      amount_captured: 2500,
      last_payment_error: null,
      payment_method_details: { type: 'card', card: { brand: 'visa', last4: '4242', exp_month: 12, exp_year: 2034 } },
    });
    expect(res.body.payment_id).toMatch(/^pay_/);
    expect(res.body.payment_method_details.card.fingerprint).toMatch(/^[\w-]{22}$/);
    expect(res.text).not.toContain(CARDS.success);
    expect((await call('GET', `/v1/orders/${id}`, { key })).body).toMatchObject({ status: 'succeeded', paid_at: expect.any(String) });
    expect(await balanceOf(key)).toEqual({ available: 0, pending: 2500 - cardFee(2500), in_payout: 0, authorized: 0 });
  });

  it.each([
    [CARDS.declined, 'card_declined'],
    [CARDS.insufficientFunds, 'insufficient_funds'],
    [CARDS.expired, 'expired_card'],
    [CARDS.incorrectCvc, 'incorrect_cvc'],
  ])('%s: 402 card_error %s, order payable again with last_payment_error, then 4242 pays it', async (number, declineCode) => {
    const { key } = await newMerchant();
    const id = await newOrder(key);

    const declined = await confirm(key, id, number);
    expect(declined.status, declined.text).toBe(402);
    expect(declined.body.error).toMatchObject({ type: 'card_error', decline_code: declineCode });
    const after = (await call('GET', `/v1/orders/${id}`, { key })).body;
    expect(after).toMatchObject({ status: 'requires_payment', last_payment_error: { type: 'card_error', decline_code: declineCode } });

    const paid = await confirm(key, id, CARDS.success);
    expect(paid.status, paid.text).toBe(200);
    expect(paid.body).toMatchObject({ status: 'succeeded', last_payment_error: null });
    expect(await balanceOf(key)).toMatchObject({ available: 0, pending: 2500 - cardFee(2500) });
  });

  it('3-D Secure card: requires_action, next_action redirects the payer to the hosted challenge; approving it pays and returns signed', async () => {
    // Prepare
    const { key } = await newMerchant();
    const returnUrl = 'https://merchant.example/thanks?cart=7';
    const id = await newOrder(key, { return_url: returnUrl });
    // Act: the server-side confirm
    const res = await confirm(key, id, CARDS.threeDSecure);
    // Assess: Stripe's redirect_to_url, no channel internals
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({
      status: 'requires_action',
      next_action: { type: 'redirect_to_url', redirect_to_url: { url: `${res.body.checkout_url}/3ds`, return_url: returnUrl } },
    });
    expect(res.text).not.toContain('chl_');

    // Act: the payer's browser follows the URL and approves, as the page's form does
    const challenge = await fetch(res.body.next_action.redirect_to_url.url, { headers: { 'Accept-Language': 'en' } });
    const html = await challenge.text();
    expect(challenge.status, html).toBe(200);
    expect(html).toContain('Verify your payment (3-D Secure)');
    const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1];
    expect(action).toBe(`${res.body.checkout_url}/3ds?lang=en`);
    const approved = await fetch(action!, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'lang=en&outcome=approve',
    });
    // Assess: back to return_url with the signed result; the order is paid
    expect(approved.status, await approved.text()).toBe(303);
    const back = new URL(approved.headers.get('location')!);
    expect(`${back.origin}${back.pathname}`).toBe('https://merchant.example/thanks');
    expect(Object.fromEntries(back.searchParams)).toMatchObject({ cart: '7', order_id: id, status: 'succeeded', amount: '2500', sign: expect.any(String) });
    expect((await call('GET', `/v1/orders/${id}`, { key })).body).toMatchObject({ status: 'succeeded', amount_captured: 2500, next_action: null });
    expect(await balanceOf(key)).toEqual({ available: 0, pending: 2500 - cardFee(2500), in_payout: 0, authorized: 0 });
  });

  it('3-D Secure card, manual capture without return_url: approving the challenge leaves requires_capture', async () => {
    const { key } = await newMerchant();
    const id = await newOrder(key, { capture_method: 'manual' });
    const res = await confirm(key, id, CARDS.threeDSecure);
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ status: 'requires_action', next_action: { type: 'redirect_to_url', redirect_to_url: { url: `${res.body.checkout_url}/3ds`, return_url: null } } });

    const approved = await fetch(res.body.next_action.redirect_to_url.url, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'outcome=approve',
    });
    expect(approved.status).toBe(303);
    expect(approved.headers.get('location')).toBe(`${res.body.checkout_url}?lang=en`);
    expect((await call('GET', `/v1/orders/${id}`, { key })).body).toMatchObject({ status: 'requires_capture', amount_authorized: 2500, next_action: null });
  });

  it('3-D Secure card: close abandons the challenge', async () => {
    const { key } = await newMerchant();
    const id = await newOrder(key);
    const res = await confirm(key, id, CARDS.threeDSecure);
    expect(res.status, res.text).toBe(200);
    expect(res.body.status).toBe('requires_action');

    const closed = await call('POST', `/v1/orders/${id}/close`, { key });
    expect(closed.status, closed.text).toBe(200);
    expect(closed.body).toMatchObject({ status: 'closed', close_reason: 'merchant', next_action: null });
    expect(await balanceOf(key)).toEqual({ available: 0, pending: 0, in_payout: 0, authorized: 0 });
  });

  it('async 0259: processing, then succeeded once the callback travels queue → notifier → notify', async () => {
    const { key } = await newMerchant();
    const id = await newOrder(key);
    const res = await confirm(key, id, CARDS.asyncSuccess);
    expect(res.status, res.text).toBe(200);
    expect(res.body.status).toBe('processing');

    const settled = await waitForOrder(key, id, (o) => o.status !== 'processing');
    expect(settled).toMatchObject({ status: 'succeeded', amount_captured: 2500 });
    expect(await balanceOf(key)).toEqual({ available: 0, pending: 2500 - cardFee(2500), in_payout: 0, authorized: 0 });
  });

  it('async 0341: processing, then back to requires_payment with last_payment_error', async () => {
    const { key } = await newMerchant();
    const id = await newOrder(key);
    const res = await confirm(key, id, CARDS.asyncFailure);
    expect(res.status, res.text).toBe(200);
    expect(res.body.status).toBe('processing');

    const settled = await waitForOrder(key, id, (o) => o.status !== 'processing');
    expect(settled).toMatchObject({ status: 'requires_payment', last_payment_error: { type: 'card_error', decline_code: 'card_declined' } });
    expect(await balanceOf(key)).toEqual({ available: 0, pending: 0, in_payout: 0, authorized: 0 });
  });

  it('timeout 0119: the lost answer is queried, never charged twice', async () => {
    const { key } = await newMerchant();
    const id = await newOrder(key);
    const res = await confirm(key, id, CARDS.timeout);
    expect(res.status, res.text).toBe(200);
    expect(['succeeded', 'processing']).toContain(res.body.status);
    const settled = await waitForOrder(key, id, (o) => o.status !== 'processing');
    expect(settled.status).toBe('succeeded');

    // Exactly one attempt, and exactly one authorization at the channel.
    const attempts = await attemptsOf(id);
    expect(attempts).toHaveLength(1);
    const trade = await sandboxTrade(attempts[0]!.id);
    expect(trade).toMatchObject({ trade_status: 'TRADE_SUCCESS', captured_amount: 2500 });
    // The channel also notifies the result it reached: once that callback went through, nothing moved twice.
    await callbacksDrained();
    expect(await balanceOf(key)).toEqual({ available: 0, pending: 2500 - cardFee(2500), in_payout: 0, authorized: 0 });
    expect((await call('GET', `/v1/orders/${id}`, { key })).body).toMatchObject({ status: 'succeeded', amount_captured: 2500 });
  });

  it('10 concurrent confirms of one order: exactly one 200, the others 409, one authorization', async () => {
    const { key } = await newMerchant();
    const id = await newOrder(key);
    const results = await Promise.all(Array.from({ length: 10 }, () => confirm(key, id, CARDS.success)));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 200), statuses.join(',')).toHaveLength(1);
    for (const r of results.filter((r) => r.status !== 200)) {
      expect(r.status, r.text).toBe(409);
      expect(r.body.error.code).toMatch(/^order_status_(processing|succeeded)$/);
    }
    expect(await attemptsOf(id)).toHaveLength(1);
    expect(await balanceOf(key)).toEqual({ available: 0, pending: 2500 - cardFee(2500), in_payout: 0, authorized: 0 });
  });
});

describe('POST /channels/sandbox/notify', () => {
  it('duplicated and reordered callbacks (validly signed) are acknowledged and change nothing', async () => {
    // Prepare: an async order settled by its real callback.
    const { key } = await newMerchant();
    const id = await newOrder(key);
    const processing = await confirm(key, id, CARDS.asyncSuccess);
    const settled = await waitForOrder(key, id, (o) => o.status !== 'processing');
    expect(settled.status).toBe('succeeded');
    const trade = (await sandboxTrade(processing.body.payment_id))!;
    const signer = await sandboxSigner();
    const send = async (wire: WireTrade) =>
      call('POST', '/channels/sandbox/notify', {
        raw: await signedNotificationBody(notificationParams(wire, new Date()), signer),
        headers: { 'Content-Type': NOTIFICATION_CONTENT_TYPE },
      });

    // Act: the same result again (same notify_id), then an older one arriving late (a decline at seq 1).
    const duplicate = await send(wireTradeOf(trade));
    const reordered = await send(wireTradeOf(trade, { trade_status: 'TRADE_CLOSED', seq: '1', sub_code: 'ACQ.CARD_DECLINED' }));

    // Assess
    expect([duplicate.status, duplicate.text]).toEqual([200, 'success']);
    expect([reordered.status, reordered.text]).toEqual([200, 'success']);
    expect((await call('GET', `/v1/orders/${id}`, { key })).body).toMatchObject({ status: 'succeeded', amount_captured: 2500, last_payment_error: null });
    expect(await balanceOf(key)).toEqual({ available: 0, pending: 2500 - cardFee(2500), in_payout: 0, authorized: 0 });
  });

  it('refuses a forged notification (wrong key) with "fail" and changes nothing', async () => {
    // Prepare: an order waiting on 3-D Secure, and a well-formed notification saying it was paid, signed with a wrong key.
    const { key } = await newMerchant();
    const id = await newOrder(key);
    const waiting = await confirm(key, id, CARDS.threeDSecure);
    expect(waiting.body.status).toBe('requires_action');
    const trade = (await sandboxTrade(waiting.body.payment_id))!;
    const forged: WireTrade = { ...(trade as WireTrade), trade_status: 'TRADE_SUCCESS', seq: String(Number(trade.seq) + 10), total_amount: '25.00', captured_amount: '25.00' } as WireTrade;
    const body = await signedNotificationBody(notificationParams(forged, new Date()), new HmacSigner(randomBytes(32)));

    // Act: no API key, as the channel calls it.
    const res = await call('POST', '/channels/sandbox/notify', { raw: body, headers: { 'Content-Type': NOTIFICATION_CONTENT_TYPE } });
    const garbage = await call('POST', '/channels/sandbox/notify', { raw: 'sign=AAAA&out_trade_no=x', headers: { 'Content-Type': NOTIFICATION_CONTENT_TYPE } });

    // Assess: refused in the channel's words, with no details; the order and the balance did not move.
    expect(res.status).toBe(400);
    expect(res.text).toBe('fail');
    expect(garbage.status).toBe(400);
    expect(garbage.text).toBe('fail');
    expect((await call('GET', `/v1/orders/${id}`, { key })).body).toMatchObject({ status: 'requires_action', amount_captured: 0 });
    expect(await balanceOf(key)).toEqual({ available: 0, pending: 0, in_payout: 0, authorized: 0 });
  });
});
