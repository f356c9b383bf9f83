import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { newId } from '../../functions/commons/ids';
import type { ChannelPayment, PaymentChannel } from '../../functions/channels/channel';
import { ChannelResultMismatchError, ChannelTimeoutError } from '../../functions/channels/errors';
import { NOTIFICATION_CONTENT_TYPE, notificationParams, signedNotificationBody, type WireTrade } from '../../functions/channels/sandbox/transformers';
import { useLocalServices } from './env';
import { CARDS, card, fee, paymentCase, sandboxWorld } from './payments-world';

/**
 * Channel results are checked against the attempt (issue 7 finding 4): a correctly signed notification, or a
 * query answer, for another amount or currency than the attempt's is refused, changes nothing (order, attempt,
 * ledger, event dedupe) and is counted as the ChannelResultMismatch metric the stack alarms on.
 */
let table: string;
const world = sandboxWorld();
const { sandbox, signer } = world;

beforeAll(() => {
  table = useLocalServices().tables.main;
});

/** The EMF lines Powertools writes to stdout, parsed. */
function emfLines() {
  const lines: Record<string, any>[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    for (const line of String(chunk).split('\n')) if (line.includes('"_aws"')) lines.push(JSON.parse(line));
    return true;
  });
  return { lines, mismatches: () => lines.filter((l) => 'ChannelResultMismatch' in l), restore: () => spy.mockRestore() };
}
afterEach(() => vi.restoreAllMocks());

/** A signed notification of `paymentId`'s trade, saying it was paid, as the sandbox would POST it, verified by the channel. */
async function signedSuccess(paymentId: string, over: Partial<WireTrade>) {
  const trade = (await sandbox.query(paymentId))!;
  const wire: WireTrade = {
    trade_no: trade.channelRef,
    out_trade_no: paymentId,
    trade_status: 'TRADE_SUCCESS',
    total_amount: '50.00',
    currency: 'USD',
    authorized_amount: '50.00',
    captured_amount: '50.00',
    refunded_amount: '0.00',
    refunds: [],
    seq: String(trade.sequence + 5),
    gmt_modified: new Date().toISOString(),
    ...over,
  };
  const body = await signedNotificationBody({ ...notificationParams(wire, new Date()), notify_id: newId('ntf') }, signer);
  return sandbox.parseNotification({ 'content-type': NOTIFICATION_CONTENT_TYPE }, body);
}

describe('a notification for another amount or currency', () => {
  it.each([
    ['0.01 USD', { total_amount: '0.01', captured_amount: '0.01' }, 1, 'USD'],
    ['50.00 EUR', { currency: 'EUR' }, 5_000, 'EUR'],
  ])('correctly signed TRADE_SUCCESS for %s on a 50.00 USD order: refused, counted, nothing moves; the real result still applies', async (_, over, amount, currency) => {
    // Prepare: a 50.00 USD order waiting for its asynchronous result.
    const w = paymentCase(table, newId('mch'), sandbox);
    const o = await w.order({ amount: 5_000 });
    const pending = await w.service.confirm(w.caller(), o.id, card(CARDS.asyncSuccess));
    expect(pending.status).toBe('processing');
    const event = await signedSuccess(pending.payment_id!, over);
    expect(event).toMatchObject({ status: 'succeeded', amount, currency }); // the signature verified
    const emf = emfLines();
    // Act
    const refused = await w.service.applyChannelEvent(event).catch((e: unknown) => e);
    emf.restore();
    // Assess: refused, counted once with the alarm's dimensions, nothing applied
    expect(refused).toBeInstanceOf(ChannelResultMismatchError);
    expect(emf.mismatches()).toHaveLength(1);
    expect(emf.mismatches()[0]).toMatchObject({ ChannelResultMismatch: 1, service: 'payplane', stage: expect.any(String) });
    expect(emf.mismatches()[0]!.function).toBeUndefined();
    expect(await w.service.getOrder(w.caller(), o.id)).toMatchObject({ status: 'processing', amount_captured: 0 });
    expect(await w.balance()).toEqual({ available: 0, pending: 0, in_payout: 0, authorized: 0 });
    // The refusal burnt neither the sequence nor anything else: the channel's real result applies as usual.
    const [real] = await world.callbacks(pending.payment_id!);
    expect(await w.service.applyChannelEvent(real!)).toMatchObject({ outcome: 'applied', status: 'succeeded' });
    expect(await w.service.applyChannelEvent(event).catch((e: unknown) => e)).toBeInstanceOf(ChannelResultMismatchError);
    expect(await w.service.getOrder(w.caller(), o.id)).toMatchObject({ status: 'succeeded', amount_captured: 5_000 });
    expect(await w.balance()).toEqual({ available: 0, pending: 5_000 - fee(5_000), in_payout: 0, authorized: 0 });
    await w.assertBalanced();
  });
});

describe('a query answer for another amount or currency', () => {
  it.each([
    ['amount', { amount: 1 }],
    ['currency', { currency: 'EUR' }],
  ])('wrong %s: confirm and the reconciler leave the order processing; the true answer settles it once', async (_, lie: Partial<ChannelPayment>) => {
    // A channel whose authorize answer is lost and whose query misstates the payment.
    const lying: PaymentChannel = Object.assign(Object.create(sandbox) as PaymentChannel, {
      id: 'sandbox' as const,
      authorize: async (req: Parameters<PaymentChannel['authorize']>[0]) => {
        await sandbox.authorize(req);
        throw new ChannelTimeoutError('sandbox', 'lost');
      },
      query: async (id: string) => ({ ...(await sandbox.query(id))!, ...lie }),
    });
    const w = paymentCase(table, newId('mch'), lying);
    const o = await w.order({ amount: 5_000 });
    const emf = emfLines();
    const stuck = await w.service.confirm(w.caller(), o.id, card(CARDS.success));
    const swept = await w.service.syncPayment(w.caller(), o.id);
    emf.restore();
    expect(stuck.status).toBe('processing');
    expect(swept.status).toBe('processing');
    expect(emf.mismatches()).toHaveLength(2);
    expect(await w.balance()).toEqual({ available: 0, pending: 0, in_payout: 0, authorized: 0 });

    const healed = w.newService({ channel: () => sandbox });
    expect(await healed.syncPayment(w.caller(), o.id)).toMatchObject({ status: 'succeeded', amount_captured: 5_000 });
    expect(await w.balance()).toEqual({ available: 0, pending: 5_000 - fee(5_000), in_payout: 0, authorized: 0 });
    await w.assertBalanced();
  });
});
