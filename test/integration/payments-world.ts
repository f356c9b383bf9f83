import { randomBytes } from 'node:crypto';
import type { SQSEvent } from 'aws-lambda';
import { expect } from 'vitest';
import { newId, randomBase62 } from '../../functions/commons/ids';
import { Secret } from '../../functions/commons/secret';
import type { PaymentChannel } from '../../functions/channels/channel';
import { SandboxChannel } from '../../functions/channels/sandbox';
import { SandboxBank, type BankDeps } from '../../functions/channels/sandbox/bank';
import { deliverSandboxCallbacks } from '../../functions/channels/sandbox/notifier';
import type { CallbackJob, CallbackQueue } from '../../functions/channels/sandbox/queue';
import { HmacSigner } from '../../functions/channels/sandbox/signer';
import { TradeStore } from '../../functions/channels/sandbox/store';
import { allShards, computeFee, getAccounts, merchantAccount, resolveFeeSchedule } from '../../functions/ledger';
import { OrderRepository } from '../../functions/orders/repository';
import { businessDay, dayBounds } from '../../functions/settlements/calendar';
import { OrderService, type Caller } from '../../functions/orders/service';
import { HmacFingerprinter } from '../../functions/payments/fingerprint';
import { PaymentRepository } from '../../functions/payments/repository';
import { PaymentService, type PaymentServiceDeps } from '../../functions/payments/service';

/**
 * The world the payments integration tests build on: the real sandbox channel, with its callbacks held
 * in memory instead of SQS, and cases that each have a merchant and platform-side ledger accounts of
 * their own. DynamoDB Local is shared by every case (and, in a file, by cases running at once), so
 * "debits equal credits" holds only when summed over accounts no other case posts to.
 */

/** The sandbox bank decides by card number (as Stripe's test cards do), so a case picks its path by card. */
export const CARDS = {
  success: '4242424242424242',
  declined: '4000000000000002',
  insufficient: '4000000000009995',
  expired: '4000000000000069',
  cvc: '4000000000000127',
  threeDS: '4000000000003220',
  asyncSuccess: '4000000000000259',
  asyncFailure: '4000000000000341',
  timeout: '4000000000000119',
};
export const card = (number: string) => ({ payment_method: { type: 'card', card: { number, exp_month: 12, exp_year: 2034, cvc: '123' } } });
/** The platform default as configured (FEE_SCHEDULE), so expected balances do not hard-code a rate. */
export const fee = (amount: number, method: 'card' | 'wallet' = 'card') => computeFee({ amount, currency: 'USD', method }, resolveFeeSchedule());

/** In memory, so that a case decides when, how often and whether callbacks are delivered. */
class MemoryQueue implements CallbackQueue {
  jobs: CallbackJob[] = [];
  async enqueue(job: CallbackJob): Promise<void> {
    this.jobs.push(job);
  }
}

/**
 * The real sandbox channel and bank, with callbacks due at once (a case should not wait out the delay)
 * and queued in memory. `Bank` lets a file watch what reaches the bank; `store`, keep trades elsewhere.
 */
export function sandboxWorld<B extends SandboxBank = SandboxBank>({ Bank = SandboxBank as new (deps: BankDeps) => B, store = new TradeStore() } = {}) {
  const queue = new MemoryQueue();
  const signer = new HmacSigner(randomBytes(32));
  const bank = new Bank({ store, queue, callbackDelaySeconds: () => 0 });
  const sandbox = new SandboxChannel({ bank, signer });
  /**
   * Runs `jobs` through the sandbox notifier, capturing its POSTs, and returns the events the channel
   * verifies from them, as the notify handler gets them. `failures` (records SQS would retry) are the
   * caller's to judge: not every file asserts there are none.
   */
  const deliver = async (jobs: CallbackJob[]) => {
    const bodies: string[] = [];
    const fetchStub = (async (_url: string, init: RequestInit) => {
      bodies.push(String(init.body));
      return new Response('success', { status: 200 });
    }) as unknown as typeof fetch;
    const event = { Records: jobs.map((job, i) => ({ messageId: `m${i}`, body: JSON.stringify(job), attributes: { ApproximateReceiveCount: '1' } })) } as unknown as SQSEvent;
    const { batchItemFailures: failures } = await deliverSandboxCallbacks(event, { bank, signer, fetch: fetchStub, now: () => new Date() });
    const events = await Promise.all(bodies.map((b) => sandbox.parseNotification({ 'content-type': 'application/x-www-form-urlencoded' }, b)));
    return { events, failures };
  };
  /** Takes the queued callbacks of a payment off the queue: any not delivered are lost. */
  const take = (paymentId: string) => {
    const mine = queue.jobs.filter((j) => j.out_trade_no === paymentId);
    queue.jobs = queue.jobs.filter((j) => j.out_trade_no !== paymentId);
    return mine;
  };
  const callbacks = async (paymentId: string) => (await deliver(take(paymentId))).events;
  return { queue, bank, sandbox, signer, deliver, take, callbacks };
}

const fingerprinter = new HmacFingerprinter(new Secret(randomBytes(32)));

/** One case: its merchant's orders and payments, posted to ledger accounts nobody else uses. */
export function paymentCase(table: string, merchantId: string, channel: PaymentChannel) {
  const ledger = { receivableOwner: `rcv_${randomBase62(12)}`, platform: `pf_${randomBase62(12)}` };
  const caller = (): Caller => ({ merchantId, baseUrl: 'http://127.0.0.1:3000/dev', now: new Date() });
  const orders = new OrderService(new OrderRepository(table));
  const order = (fields: Record<string, unknown>) => orders.create(caller(), { merchant_order_no: newId('no'), amount: 10_000, currency: 'USD', ...fields });
  /** A new service is a new container: nothing cached (a merchant's fees are, per container). */
  const newService = (deps: Partial<PaymentServiceDeps> = {}) =>
    new PaymentService({ repository: new PaymentRepository(table), fingerprinter, channel: () => channel, ledger, ...deps });
  const service = newService();
  /** By id, every shard included: a posting may land on any shard of the platform's accounts. */
  const accounts = (currency = 'USD') =>
    getAccounts([merchantAccount(merchantId, currency), ...allShards('receivable', ledger.receivableOwner, currency), ...allShards('fees', ledger.platform, currency)], table);
  /** Debits equal credits over the case's accounts, pending and posted. */
  const assertBalanced = async (currency = 'USD') => {
    const all = [...(await accounts(currency)).values()];
    const sum = (k: 'debits_pending' | 'debits_posted' | 'credits_pending' | 'credits_posted') => all.reduce((s, a) => s + a[k], 0);
    expect(sum('debits_posted')).toBe(sum('credits_posted'));
    expect(sum('debits_pending')).toBe(sum('credits_pending'));
    return all;
  };
  /** Business days are UTC here; the case started on this one. */
  const startedDay = dayBounds(businessDay(new Date()));
  /**
   * The USD balance through the API's path, at the caller's time, with the merchant's default delay (T+1): what is
   * captured today is `pending`, refunds come off `available` at once, `authorized` is not captured yet. A case
   * that runs over midnight UTC is read as of the end of the day it started, so that nothing it captured has
   * become available meanwhile.
   */
  const balance = async () => {
    const at = new Date(Math.min(Date.now(), startedDay.end.getTime() - 1));
    const b = await service.balance({ ...caller(), now: at });
    const usd = (list: { currency: string; amount: number }[]) => list.find((x) => x.currency === 'USD')?.amount ?? 0;
    return { available: usd(b.available), pending: usd(b.pending), in_payout: usd(b.in_payout), authorized: usd(b.authorized) };
  };
  return { merchantId, ledger, caller, order, newService, service, accounts, assertBalanced, balance };
}
