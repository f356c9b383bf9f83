import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { dynamo } from '../../functions/commons/clients';
import { newId } from '../../functions/commons/ids';
import type { ChannelEvent, PaymentChannel } from '../../functions/channels/channel';
import { ChannelRejectedError, ChannelTimeoutError, ChannelUnavailableError } from '../../functions/channels/errors';
import { SandboxBank } from '../../functions/channels/sandbox/bank';
import type { CallbackJob } from '../../functions/channels/sandbox/queue';
import type { WireRequest, WireResponse } from '../../functions/channels/sandbox/transformers';
import { useLocalServices } from './env';
import { CARDS, card, fee, paymentCase, sandboxWorld } from './payments-world';

/**
 * Payments against DynamoDB Local and the KMS emulator, through the real sandbox channel (its bank
 * keeps trades in the same table). Callbacks go through the sandbox notifier into an in-memory queue
 * and a captured POST, then are verified by the channel and applied with applyChannelEvent, as the
 * notify handler will. Each case has its own merchant and its own platform-side ledger accounts, so
 * "debits equal credits" is checked over exactly the accounts the case touched.
 */

/** Counts the authorizations (`sandbox.trade.pay`) that reach the bank, per payment id. */
class CountingBank extends SandboxBank {
  pays = new Map<string, number>();
  override async handle(req: WireRequest): Promise<WireResponse> {
    if (req.method === 'sandbox.trade.pay') this.pays.set(req.out_trade_no, (this.pays.get(req.out_trade_no) ?? 0) + 1);
    return super.handle(req);
  }
}

let table: string;
const sandboxes = sandboxWorld({ Bank: CountingBank });
const { bank, sandbox } = sandboxes;

beforeAll(() => {
  table = useLocalServices().tables.main;
});

/** One case's world: a merchant, a service whose ledger accounts nobody else uses, helpers. */
function world(channel?: PaymentChannel) {
  const w = paymentCase(table, newId('mch'), channel ?? sandbox);
  const order = (amount = 10_000, over: Record<string, unknown> = {}) => w.order({ amount, payer: { email: 'payer@example.com' }, ...over });
  return { ...w, order };
}

/** Runs the sandbox notifier for the queued callbacks of `paymentId` and returns the verified events it POSTed. */
async function callbacks(paymentId: string): Promise<ChannelEvent[]> {
  return deliver(sandboxes.take(paymentId));
}

async function deliver(jobs: CallbackJob[]): Promise<ChannelEvent[]> {
  const { events, failures } = await sandboxes.deliver(jobs);
  expect(failures).toEqual([]);
  return events;
}

async function storedOrder(id: string) {
  return (await dynamo().send(new GetCommand({ TableName: table, Key: { pk: `ORDER#${id}`, sk: 'ORDER' }, ConsistentRead: true }))).Item!;
}

async function rejection(p: Promise<unknown>): Promise<{ status: number; code: string; message: string; param?: string; extra?: Record<string, unknown> }> {
  try {
    await p;
  } catch (error) {
    return error as never;
  }
  throw new Error('expected a rejection');
}

describe('confirm with a card', () => {
  it('4242…: succeeds at once, keeps only brand/last4/expiry/fingerprint, captures with the fee', async () => {
    // Prepare
    const w = world();
    const a = await w.order(10_000);
    const b = await w.order(2_000);
    // Act
    const paid = await w.service.confirm(w.caller(), a.id, card(CARDS.success));
    const paidAgain = await w.service.confirm(w.caller(), b.id, card('4242 4242 4242 4242'));
    // Assess
    expect(paid).toMatchObject({ status: 'succeeded', amount_captured: 10_000, last_payment_error: null, payer: { email: 'payer@example.com' } });
    expect(paid.payment_id).toMatch(/^pay_/);
    expect(paid.payment_method_details).toEqual({
      type: 'card',
      card: { brand: 'visa', last4: '4242', exp_month: 12, exp_year: 2034, fingerprint: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/) },
    });
    expect(paidAgain.payment_method_details?.type === 'card' && paidAgain.payment_method_details.card.fingerprint).toBe(
      paid.payment_method_details?.type === 'card' && paid.payment_method_details.card.fingerprint,
    );
    const stored = await storedOrder(a.id);
    const text = JSON.stringify(stored, (_, v) => (v instanceof Uint8Array ? '<ciphertext>' : v));
    expect(text).not.toContain(CARDS.success);
    expect(text).not.toContain('cvc');
    expect(stored.card_ciphertext).toBeInstanceOf(Uint8Array);
    expect(await w.balance()).toEqual({ available: 0, pending: 12_000 - fee(10_000) - fee(2_000), in_payout: 0, authorized: 0 });
    await w.assertBalanced();
  });

  it.each([
    [CARDS.declined, 'card_declined', 'card_declined'],
    [CARDS.insufficient, 'card_declined', 'insufficient_funds'],
    [CARDS.expired, 'expired_card', 'expired_card'],
    [CARDS.cvc, 'incorrect_cvc', 'incorrect_cvc'],
  ])('%s: declined (402 %s/%s), stays payable with last_payment_error, then pays with another card', async (number, code, declineCode) => {
    // Prepare
    const w = world();
    const o = await w.order();
    // Act
    const error = await rejection(w.service.confirm(w.caller(), o.id, card(number)));
    const after = await w.service.getOrder(w.caller(), o.id);
    const retried = await w.service.confirm(w.caller(), o.id, card(CARDS.success));
    // Assess
    expect(error).toMatchObject({ status: 402, code, extra: { decline_code: declineCode } });
    expect(after).toMatchObject({ status: 'requires_payment', last_payment_error: { type: 'card_error', code, decline_code: declineCode } });
    expect(retried).toMatchObject({ status: 'succeeded', last_payment_error: null });
    expect(retried.payment_id).not.toBe(after.payment_id);
    expect(await w.balance()).toEqual({ available: 0, pending: 10_000 - fee(10_000), in_payout: 0, authorized: 0 });
    await w.assertBalanced();
  });

  it('refuses to confirm an order past its expiry (it reads as closed) or one that is already paid', async () => {
    const w = world();
    const o = await w.order(10_000, { expires_in: 60 });
    const later = { ...w.caller(), now: new Date(Date.now() + 61_000) };
    expect(await rejection(w.service.confirm(later, o.id, card(CARDS.success)))).toMatchObject({ status: 409, code: 'order_status_closed' });
    await w.service.confirm(w.caller(), o.id, card(CARDS.success));
    expect(await rejection(w.service.confirm(w.caller(), o.id, card(CARDS.success)))).toMatchObject({ status: 409, code: 'order_status_succeeded' });
    expect(await rejection(w.service.confirm(w.caller(), 'ord_nope', card(CARDS.success)))).toMatchObject({ status: 404 });
  });

  it('a failed attempt puts the order back in the expiry index', async () => {
    const w = world();
    const o = await w.order();
    await rejection(w.service.confirm(w.caller(), o.id, card(CARDS.declined)));
    const stored = await storedOrder(o.id);
    expect(stored.gsi2pk).toMatch(/^EXPIRY#/);
    expect(stored.status).toBe('requires_payment');
  });

  it('3-D Secure: requires_action, then approve → succeeded; fail → payable again', async () => {
    const w = world();
    const [a, b] = await Promise.all([w.order(), w.order()]);
    const challenged = await w.service.confirm(w.caller(), a.id, card(CARDS.threeDS));
    expect(challenged).toMatchObject({ status: 'requires_action', next_action: { type: 'redirect_to_url', redirect_to_url: { url: `${challenged.checkout_url}/3ds`, return_url: null } } });
    expect(await w.balance()).toEqual({ available: 0, pending: 0, in_payout: 0, authorized: 0 });

    const approved = await w.service.completeThreeDSecure(w.caller(), a.id, 'approve');
    expect(approved).toMatchObject({ status: 'succeeded', next_action: null, amount_captured: 10_000 });

    await w.service.confirm(w.caller(), b.id, card(CARDS.threeDS));
    const failed = await w.service.completeThreeDSecure(w.caller(), b.id, 'fail');
    expect(failed).toMatchObject({ status: 'requires_payment', last_payment_error: { decline_code: 'authentication_failed' } });
    await w.assertBalanced();
  });

  it('refuses bad card input naming the field, never echoing the number', async () => {
    const w = world();
    const o = await w.order();
    const bad = await rejection(w.service.confirm(w.caller(), o.id, card('4242424242424241')));
    expect(bad).toMatchObject({ status: 400, code: 'parameter_invalid', param: 'payment_method.card.number' });
    expect(bad.message).not.toContain('4242424242424241');
    expect(bad.message).toContain('a string of 16 characters'); // described by its type only, never quoted
    const month = await rejection(w.service.confirm(w.caller(), o.id, { payment_method: { type: 'card', card: { number: CARDS.success, exp_month: 13, exp_year: 2030, cvc: '123' } } }));
    expect(month).toMatchObject({ status: 400, param: 'payment_method.card.exp_month' });
    const cvc = await rejection(w.service.confirm(w.caller(), o.id, { payment_method: { type: 'card', card: { number: CARDS.success, exp_month: 1, exp_year: 2030, cvc: '12a4' } } }));
    expect(cvc).toMatchObject({ status: 400, param: 'payment_method.card.cvc' });
    expect(cvc.message).not.toContain('12a4');
    const method = await rejection(w.service.confirm(w.caller(), o.id, { payment_method: { type: 'cash' } }));
    expect(method).toMatchObject({ status: 400, param: 'payment_method.type' });
    expect((await w.service.getOrder(w.caller(), o.id)).status).toBe('requires_payment');
  });
});

describe('asynchronous results', () => {
  it('async success card: processing, then the callback settles it; a redelivery is harmless', async () => {
    const w = world();
    const o = await w.order();
    const pending = await w.service.confirm(w.caller(), o.id, card(CARDS.asyncSuccess));
    expect(pending.status).toBe('processing');
    expect(await w.balance()).toEqual({ available: 0, pending: 0, in_payout: 0, authorized: 0 });

    const [event] = await callbacks(pending.payment_id!);
    expect(event).toMatchObject({ status: 'succeeded', paymentId: pending.payment_id });
    expect(await w.service.applyChannelEvent(event!)).toMatchObject({ outcome: 'applied', status: 'succeeded' });
    expect(await w.service.applyChannelEvent(event!)).toMatchObject({ outcome: 'duplicate' });
    // The channel sends the same result again (same event id, fresh signature).
    const [again] = await deliver([{ v: 1, out_trade_no: pending.payment_id! }]);
    expect(again!.eventId).toBe(event!.eventId);
    expect(await w.service.applyChannelEvent(again!)).toMatchObject({ outcome: 'duplicate' });

    expect(await w.service.getOrder(w.caller(), o.id)).toMatchObject({ status: 'succeeded', amount_captured: 10_000 });
    expect(await w.balance()).toEqual({ available: 0, pending: 10_000 - fee(10_000), in_payout: 0, authorized: 0 });
    await w.assertBalanced();
  });

  it('async failure card: processing, then requires_payment with last_payment_error', async () => {
    const w = world();
    const o = await w.order();
    const pending = await w.service.confirm(w.caller(), o.id, card(CARDS.asyncFailure));
    const [event] = await callbacks(pending.payment_id!);
    expect(await w.service.applyChannelEvent(event!)).toMatchObject({ outcome: 'applied', status: 'requires_payment' });
    expect(await w.service.getOrder(w.caller(), o.id)).toMatchObject({ status: 'requires_payment', last_payment_error: { code: 'card_declined' } });
    await w.assertBalanced();
  });

  it('wallet: processing, then succeeded with the wallet fee', async () => {
    const w = world();
    const o = await w.order();
    const pending = await w.service.confirm(w.caller(), o.id, { payment_method: { type: 'wallet' } });
    expect(pending).toMatchObject({ status: 'processing', payment_method_details: { type: 'wallet' } });
    const [event] = await callbacks(pending.payment_id!);
    await w.service.applyChannelEvent(event!);
    expect(await w.balance()).toEqual({ available: 0, pending: 10_000 - fee(10_000, 'wallet'), in_payout: 0, authorized: 0 });
    await w.assertBalanced();
  });

  it('reordered callbacks: an older result arriving after a newer one is ignored', async () => {
    // Prepare: a manual-capture wallet payment the channel authorizes (seq 2), then captures (seq 3).
    const w = world();
    const o = await w.order(10_000, { capture_method: 'manual' });
    const pending = await w.service.confirm(w.caller(), o.id, { payment_method: { type: 'wallet' } });
    const [authorized] = await callbacks(pending.payment_id!);
    expect(authorized).toMatchObject({ status: 'requires_capture' });
    await sandbox.capture(authorized!.channelRef, 10_000);
    const [captured] = await deliver([{ v: 1, out_trade_no: pending.payment_id! }]);
    expect(captured!.sequence).toBeGreaterThan(authorized!.sequence);
    // Act: newest first
    expect(await w.service.applyChannelEvent(captured!)).toMatchObject({ outcome: 'applied', status: 'succeeded' });
    expect(await w.service.applyChannelEvent(authorized!)).toMatchObject({ outcome: 'stale' });
    // Assess
    expect(await w.service.getOrder(w.caller(), o.id)).toMatchObject({ status: 'succeeded', amount_captured: 10_000 });
    expect(await w.balance()).toEqual({ available: 0, pending: 10_000 - fee(10_000, 'wallet'), in_payout: 0, authorized: 0 });
    await w.assertBalanced();
  });

  it('ignores an event for a payment it does not know', async () => {
    const w = world();
    const event: ChannelEvent = { eventId: newId('evt'), paymentId: newId('pay'), channelRef: 'x', status: 'succeeded', amount: 1, currency: 'USD', sequence: 1, occurredAt: new Date().toISOString() };
    expect(await w.service.applyChannelEvent(event)).toEqual({ outcome: 'ignored', reason: 'unknown_payment' });
  });
});

describe('lost answers', () => {
  it('timeout card: queries before deciding, authorizes once, and the later callback changes nothing', async () => {
    const w = world();
    const o = await w.order();
    const paid = await w.service.confirm(w.caller(), o.id, card(CARDS.timeout));
    expect(paid.status).toBe('succeeded');
    expect(bank.pays.get(paid.payment_id!)).toBe(1);
    const events = await callbacks(paid.payment_id!);
    for (const e of events) expect(['stale', 'recorded', 'duplicate']).toContain((await w.service.applyChannelEvent(e)).outcome);
    expect(await w.balance()).toEqual({ available: 0, pending: 10_000 - fee(10_000), in_payout: 0, authorized: 0 });
    await w.assertBalanced();
  });

  it('no answer and no query: stays processing, never authorizes twice; syncPayment settles it later', async () => {
    // A channel whose answers are lost and whose query is down.
    const flaky: PaymentChannel = Object.assign(Object.create(sandbox) as PaymentChannel, {
      id: 'sandbox' as const,
      authorize: async (req: Parameters<PaymentChannel['authorize']>[0]) => {
        await sandbox.authorize(req);
        throw new ChannelTimeoutError('sandbox', 'lost');
      },
      query: async () => {
        throw new ChannelUnavailableError('sandbox', 'down');
      },
    });
    const w = world(flaky);
    const o = await w.order();
    const stuck = await w.service.confirm(w.caller(), o.id, card(CARDS.success));
    expect(stuck.status).toBe('processing');
    expect(await rejection(w.service.confirm(w.caller(), o.id, card(CARDS.success)))).toMatchObject({ status: 409, code: 'order_status_processing' });
    expect(bank.pays.get(stuck.payment_id!)).toBe(1);

    const healed = w.newService({ channel: () => sandbox });
    expect(await healed.syncPayment(w.caller(), o.id)).toMatchObject({ status: 'succeeded' });
    await w.assertBalanced();
  });
});

describe('concurrency', () => {
  it('10 concurrent confirms of one order: exactly one authorization, the others get 409 naming the status', async () => {
    const w = world();
    const o = await w.order();
    const before = [...bank.pays.values()].reduce((a, b) => a + b, 0);
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => w.service.confirm(w.caller(), o.id, card(CARDS.success))));
    const ok = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason);
    expect(ok).toHaveLength(1);
    expect(refused).toHaveLength(9);
    for (const e of refused) expect(e).toMatchObject({ status: 409, code: expect.stringMatching(/^order_status_(processing|succeeded)$/) });
    expect([...bank.pays.values()].reduce((a, b) => a + b, 0) - before).toBe(1);
    expect(await w.balance()).toEqual({ available: 0, pending: 10_000 - fee(10_000), in_payout: 0, authorized: 0 });
    await w.assertBalanced();
  });
});

describe('manual capture and void', () => {
  it('authorizes (pending), then captures in full', async () => {
    const w = world();
    const o = await w.order(10_000, { capture_method: 'manual' });
    const authorized = await w.service.confirm(w.caller(), o.id, card(CARDS.success));
    expect(authorized).toMatchObject({ status: 'requires_capture', amount_authorized: 10_000, amount_captured: 0 });
    expect(await w.balance()).toEqual({ available: 0, pending: 0, in_payout: 0, authorized: 10_000 });
    await w.assertBalanced();
    const captured = await w.service.capture(w.caller(), o.id, {});
    expect(captured).toMatchObject({ status: 'succeeded', amount_captured: 10_000 });
    expect(await w.balance()).toEqual({ available: 0, pending: 10_000 - fee(10_000), in_payout: 0, authorized: 0 });
    expect(await rejection(w.service.capture(w.caller(), o.id, {}))).toMatchObject({ status: 409, code: 'order_status_succeeded' });
    await w.assertBalanced();
  });

  it('captures part; the rest is released', async () => {
    const w = world();
    const o = await w.order(10_000, { capture_method: 'manual' });
    await w.service.confirm(w.caller(), o.id, card(CARDS.success));
    expect(await rejection(w.service.capture(w.caller(), o.id, { amount: 10_001 }))).toMatchObject({ status: 400, code: 'amount_too_large', param: 'amount' });
    const captured = await w.service.capture(w.caller(), o.id, { amount: 6_000 });
    expect(captured).toMatchObject({ status: 'succeeded', amount_captured: 6_000, amount_authorized: 10_000 });
    expect(await w.balance()).toEqual({ available: 0, pending: 6_000 - fee(6_000), in_payout: 0, authorized: 0 });
    await w.assertBalanced();
  });

  it('voids an authorization: closed, nothing pending', async () => {
    const w = world();
    const o = await w.order(10_000, { capture_method: 'manual' });
    await w.service.confirm(w.caller(), o.id, card(CARDS.success));
    const closed = await w.service.voidAuthorization(w.caller(), o.id);
    expect(closed).toMatchObject({ status: 'closed', close_reason: 'merchant' });
    expect(await w.balance()).toEqual({ available: 0, pending: 0, in_payout: 0, authorized: 0 });
    expect(await rejection(w.service.capture(w.caller(), o.id, {}))).toMatchObject({ status: 409, code: 'order_status_closed' });
    expect(await w.service.voidAuthorization(w.caller(), o.id)).toMatchObject({ status: 'closed' });
    await w.assertBalanced();
  });
});

describe('refunds', () => {
  it('partial refunds keep the order succeeded; the sum never exceeds the captured amount, whatever the balance', async () => {
    const w = world();
    const o = await w.order(10_000);
    await w.service.confirm(w.caller(), o.id, card(CARDS.success));
    const re = await w.service.refund(w.caller(), { order_id: o.id, amount: 3_000, reason: 'requested_by_customer' });
    expect(re).toMatchObject({ id: expect.stringMatching(/^re_/), object: 'refund', order_id: o.id, amount: 3_000, currency: 'USD', status: 'succeeded', reason: 'requested_by_customer' });
    expect(await w.service.getOrder(w.caller(), o.id)).toMatchObject({ status: 'succeeded', amount_refunded: 3_000 });
    expect(await w.balance()).toEqual({ available: -3_000, pending: 10_000 - fee(10_000), in_payout: 0, authorized: 0 });
    expect(await rejection(w.service.refund(w.caller(), { order_id: o.id, amount: 7_001 }))).toMatchObject({ status: 400, code: 'amount_too_large' });
    // Default amount: what is left of the order, even past the merchant's balance (fees are kept): a refund may
    // take the merchant below zero, and the next settlement nets it off.
    const rest = await w.service.refund(w.caller(), { order_id: o.id });
    expect(rest).toMatchObject({ status: 'succeeded', amount: 7_000 });
    expect(await rejection(w.service.refund(w.caller(), { order_id: o.id, amount: 1 }))).toMatchObject({ status: 409, code: 'charge_already_refunded' });
    expect(await w.service.getRefund(w.caller(), re.id)).toEqual(re);
    expect((await w.service.listRefunds(w.caller(), o.id)).data.map((r) => r.id).sort()).toEqual([re.id, rest.id].sort());
    expect(await rejection(w.service.getRefund(world().caller(), re.id))).toMatchObject({ status: 404 });
    expect(await w.balance()).toEqual({ available: -10_000, pending: 10_000 - fee(10_000), in_payout: 0, authorized: 0 });
    await w.assertBalanced();
  });

  it('refuses refunds of an order that is not succeeded', async () => {
    const w = world();
    const o = await w.order();
    expect(await rejection(w.service.refund(w.caller(), { order_id: o.id, amount: 1 }))).toMatchObject({ status: 409, code: 'order_status_requires_payment' });
    expect(await rejection(w.service.refund(w.caller(), { order_id: o.id, amount: 0 }))).toMatchObject({ status: 400, param: 'amount' });
  });

  it('50 concurrent refunds of 1 unit on a 10-unit order: exactly 10 succeed', async () => {
    // Prepare: another payment funds the balance (the fee of a 10-unit payment is all of it).
    const w = world();
    const funding = await w.order(100_000);
    await w.service.confirm(w.caller(), funding.id, card(CARDS.success));
    const o = await w.order(10);
    await w.service.confirm(w.caller(), o.id, card(CARDS.success));
    // Act
    const results = await Promise.allSettled(Array.from({ length: 50 }, () => w.service.refund(w.caller(), { order_id: o.id, amount: 1 })));
    // Assess
    const ok = results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<{ status: string }>).value);
    expect(ok).toHaveLength(10);
    expect(ok.every((r) => r.status === 'succeeded')).toBe(true);
    for (const r of results.filter((x): x is PromiseRejectedResult => x.status === 'rejected')) {
      // Refused by the order's condition (or, read after the tenth, by the order itself).
      expect([r.reason.status, r.reason.code]).toSatisfy(([status, code]: [number, string]) =>
        (status === 400 && code === 'amount_too_large') || (status === 409 && code === 'charge_already_refunded'),
      );
    }
    expect(await w.service.getOrder(w.caller(), o.id)).toMatchObject({ status: 'succeeded', amount_refunded: 10 });
    expect((await w.service.listRefunds(w.caller(), o.id)).data).toHaveLength(10);
    expect(await w.balance()).toEqual({ available: -10, pending: 100_010 - fee(100_000) - fee(10), in_payout: 0, authorized: 0 });
    await w.assertBalanced();
  });

  it('a refund the channel refuses is compensated; one it does not answer stays pending', async () => {
    // Prepare: a channel whose refunds fail one way, then the other.
    let mode: 'refuse' | 'silent' = 'refuse';
    const flaky: PaymentChannel = Object.assign(Object.create(sandbox) as PaymentChannel, {
      id: 'sandbox' as const,
      authorize: (req: Parameters<PaymentChannel['authorize']>[0]) => sandbox.authorize(req),
      refund: async () => {
        if (mode === 'refuse') throw new ChannelRejectedError('sandbox', 'amount_too_large', 'refused');
        throw new ChannelTimeoutError('sandbox', 'lost');
      },
    });
    const w = world(flaky);
    const o = await w.order(10_000);
    await w.service.confirm(w.caller(), o.id, card(CARDS.success));
    // Act + Assess: refused → failed, reservation and transfer reversed
    expect(await rejection(w.service.refund(w.caller(), { order_id: o.id, amount: 1_000 }))).toMatchObject({ status: 409, code: 'amount_too_large' });
    const [failed] = (await w.service.listRefunds(w.caller(), o.id)).data;
    expect(failed).toMatchObject({ status: 'failed', amount: 1_000 });
    expect(await w.service.getOrder(w.caller(), o.id)).toMatchObject({ amount_refunded: 0 });
    expect(await w.balance()).toEqual({ available: 0, pending: 10_000 - fee(10_000), in_payout: 0, authorized: 0 });
    await w.assertBalanced();
    // no answer → pending, the amount stays reserved
    mode = 'silent';
    const pending = await w.service.refund(w.caller(), { order_id: o.id, amount: 2_000 });
    expect(pending.status).toBe('pending');
    expect(await w.service.getOrder(w.caller(), o.id)).toMatchObject({ amount_refunded: 2_000 });
    expect(await w.balance()).toEqual({ available: -2_000, pending: 10_000 - fee(10_000), in_payout: 0, authorized: 0 });
    await w.assertBalanced();
  });
});
