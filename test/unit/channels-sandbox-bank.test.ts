import { randomBytes } from 'node:crypto';
import type { SQSEvent } from 'aws-lambda';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Secret } from '../../functions/commons/secret';
import type { AuthorizeRequest } from '../../functions/channels/channel';
import { ChannelRejectedError, ChannelTimeoutError, ChannelUnavailableError } from '../../functions/channels/errors';
import { SandboxChannel } from '../../functions/channels/sandbox';
import { SandboxBank } from '../../functions/channels/sandbox/bank';
import { deliverSandboxCallbacks } from '../../functions/channels/sandbox/notifier';
import type { CallbackJob, CallbackQueue } from '../../functions/channels/sandbox/queue';
import { HmacSigner } from '../../functions/channels/sandbox/signer';
import type { StoredRefund, TradeRecord, TradeRecords } from '../../functions/channels/sandbox/store';

/**
 * The sandbox bank's rules without AWS: an in-memory store with the same conditional semantics as
 * store.ts, and a fake queue. test/integration/channels-sandbox.test.ts runs the same flows on DynamoDB Local.
 */
class MemoryTrades implements TradeRecords {
  readonly trades = new Map<string, TradeRecord>();
  private readonly byNo = new Map<string, string>();

  async create(trade: TradeRecord) {
    const existing = this.trades.get(trade.out_trade_no);
    if (existing) return { created: false as const, existing: structuredClone(existing) };
    this.trades.set(trade.out_trade_no, structuredClone(trade));
    this.byNo.set(trade.trade_no, trade.out_trade_no);
    return { created: true as const };
  }
  async get(outTradeNo: string) {
    const t = this.trades.get(outTradeNo);
    return t && structuredClone(t);
  }
  async getByTradeNo(tradeNo: string) {
    const out = this.byNo.get(tradeNo);
    return out === undefined ? undefined : this.get(out);
  }
  async transition(outTradeNo: string, from: TradeRecord['trade_status'][], set: Partial<TradeRecord>, now: Date) {
    const t = this.trades.get(outTradeNo);
    if (!t || !from.includes(t.trade_status)) return { ok: false as const, current: t && structuredClone(t) };
    Object.assign(t, set, { seq: t.seq + 1, gmt_modified: now.toISOString() });
    return { ok: true as const, trade: structuredClone(t) };
  }
  async addRefund(outTradeNo: string, refundId: string, refund: StoredRefund, now: Date) {
    const t = this.trades.get(outTradeNo);
    if (!t || t.trade_status !== 'TRADE_SUCCESS' || t.refundable_amount < refund.amount || t.refunds[refundId]) {
      return { ok: false as const, current: t && structuredClone(t) };
    }
    t.refunds[refundId] = refund;
    t.refundable_amount -= refund.amount;
    t.refunded_amount += refund.amount;
    t.seq += 1;
    t.gmt_modified = now.toISOString();
    return { ok: true as const, trade: structuredClone(t) };
  }
}

class FakeQueue implements CallbackQueue {
  readonly jobs: { job: CallbackJob; delaySeconds: number }[] = [];
  failNext = false;
  async enqueue(job: CallbackJob, delaySeconds: number) {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('SQS unavailable');
    }
    this.jobs.push({ job, delaySeconds });
  }
  /** The queued jobs as the SQS event Lambda would receive. */
  event(): SQSEvent {
    return {
      Records: this.jobs.splice(0).map(({ job }, i) => ({ messageId: `m${i}`, body: JSON.stringify(job), attributes: {} }) as SQSEvent['Records'][number]),
    };
  }
}

const signer = new HmacSigner(randomBytes(32));

function setup(delay = 2) {
  let now = new Date('2030-03-01T12:00:00.000Z');
  const store = new MemoryTrades();
  const queue = new FakeQueue();
  const bank = new SandboxBank({ store, queue, now: () => now, callbackDelaySeconds: () => delay });
  const channel = new SandboxChannel({ bank, signer, now: () => now });
  return { store, queue, bank, channel, advance: (s: number) => (now = new Date(now.getTime() + s * 1000)), now: () => now };
}

let n = 0;
const pay = (number: string | null, over: Partial<AuthorizeRequest> = {}): AuthorizeRequest => ({
  paymentId: `pay_unit_${++n}`,
  amount: 1000,
  currency: 'USD',
  capture: true,
  method: number === null ? { type: 'wallet' } : { type: 'card', card: new Secret({ number, exp_month: 12, exp_year: 2034, cvc: '123' }) },
  notifyUrl: 'https://platform.example/channels/sandbox/notify',
  ...over,
});

describe('asynchronous results are scheduled on the callback queue', () => {
  it.each([
    ['4000000000000259', 'async success'],
    ['4000000000000341', 'async failure'],
    [null, 'wallet'],
  ] as const)('%s (%s): processing, one job with the configured delay', async (number, _label) => {
    const { channel, queue } = setup(7);
    const req = pay(number);
    await expect(channel.authorize(req)).resolves.toMatchObject({ status: 'processing' });
    expect(queue.jobs).toEqual([{ job: { v: 1, out_trade_no: req.paymentId }, delaySeconds: 7 }]);
  });

  it('schedules nothing for synchronous outcomes', async () => {
    const { channel, queue } = setup();
    for (const number of ['4242424242424242', '4000000000000002', '4000000000003220', '4242424242424241']) await channel.authorize(pay(number));
    expect(queue.jobs).toEqual([]);
  });

  it('the timeout card: records the authorization, schedules its notification, and throws a retryable timeout', async () => {
    const { channel, queue, store } = setup();
    const req = pay('4000000000000119', { capture: false });
    const error = await channel.authorize(req).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChannelTimeoutError);
    expect(error).toMatchObject({ retryable: true, outcomeUnknown: true, status: 503 });
    expect(store.trades.get(req.paymentId)?.trade_status).toBe('TRADE_AUTHORIZED');
    expect(queue.jobs).toHaveLength(1);
    // Retrying with the same paymentId gets the recorded answer, not a second authorization.
    await expect(channel.authorize(req)).resolves.toMatchObject({ status: 'requires_capture' });
    expect(store.trades.size).toBe(1);
  });

  it('a lost enqueue surfaces as unavailability; the retry schedules the result again', async () => {
    const { channel, queue } = setup();
    const req = pay('4000000000000259');
    queue.failNext = true;
    await expect(channel.authorize(req)).rejects.toMatchObject({ name: 'ChannelUnavailableError', outcomeUnknown: true });
    await expect(channel.query(req.paymentId)).resolves.toMatchObject({ status: 'processing' });
    await expect(channel.authorize(req)).resolves.toMatchObject({ status: 'processing' });
    expect(queue.jobs).toHaveLength(1);
  });

  it('the bank decides at settle_at even without its callback: query then reports the result', async () => {
    const { channel, advance } = setup(5);
    const req = pay('4000000000000341');
    await channel.authorize(req);
    await expect(channel.query(req.paymentId)).resolves.toMatchObject({ status: 'processing' });
    advance(5);
    await expect(channel.query(req.paymentId)).resolves.toMatchObject({ status: 'failed', declineCode: 'card_declined', sequence: 2 });
  });
});

describe('the notifier', () => {
  it('settles, signs and POSTs the result; the channel verifies what it sent', async () => {
    // Prepare
    const { channel, queue, bank, now } = setup();
    const req = pay('4000000000000259', { capture: false });
    await channel.authorize(req);
    const posts: { url: string; body: string; type: string | null }[] = [];
    const fetch = (async (url: string, init: RequestInit) => {
      posts.push({ url, body: String(init.body), type: new Headers(init.headers).get('content-type') });
      return new Response('success');
    }) as typeof globalThis.fetch;
    // Act
    const result = await deliverSandboxCallbacks(queue.event(), { bank, signer, fetch, now });
    // Assess
    expect(result.batchItemFailures).toEqual([]);
    expect(posts).toHaveLength(1);
    expect(posts[0]!.url).toBe(req.notifyUrl);
    const event = await channel.parseNotification({ 'content-type': posts[0]!.type! }, posts[0]!.body);
    expect(event).toMatchObject({ paymentId: req.paymentId, status: 'requires_capture', amount: 1000, currency: 'USD', sequence: 2 });
  });

  it('fails the record (SQS retries) unless the answer is 200 success, and drops unreadable jobs', async () => {
    const { channel, queue, bank, now } = setup();
    await channel.authorize(pay(null));
    await channel.authorize(pay('4000000000000259'));
    const event = queue.event();
    event.Records.push({ messageId: 'junk', body: 'not json', attributes: {} } as SQSEvent['Records'][number]);
    const answers = [new Response('fail', { status: 200 }), new Response('success', { status: 500 })];
    const fetch = (async () => answers.shift()!) as unknown as typeof globalThis.fetch;
    const result = await deliverSandboxCallbacks(event, { bank, signer, fetch, now });
    expect(result.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(['m0', 'm1']);
  });

  it('fails the record when the platform cannot be reached', async () => {
    const { channel, queue, bank, now } = setup();
    await channel.authorize(pay(null));
    const fetch = (async () => {
      throw new TypeError('fetch failed');
    }) as typeof globalThis.fetch;
    expect((await deliverSandboxCallbacks(queue.event(), { bank, signer, fetch, now })).batchItemFailures).toHaveLength(1);
  });
});

describe('refunds never exceed the capture (property)', () => {
  it('any sequence of refunds, with repeats, sums to at most the captured amount', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 500 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 1, max: 200 })), { maxLength: 20 }),
        async (captured, refunds) => {
          const { channel } = setup();
          const req = pay('4242424242424242', { amount: captured });
          const { channelRef } = await channel.authorize(req);
          const accepted = new Map<string, number>();
          for (const [id, amount] of refunds) {
            try {
              const r = await channel.refund(channelRef, `re_${id}`, amount);
              expect(r.status).toBe('succeeded');
              if (accepted.has(`re_${id}`)) expect(accepted.get(`re_${id}`)).toBe(amount);
              accepted.set(`re_${id}`, amount);
            } catch (error) {
              expect(error).toBeInstanceOf(ChannelRejectedError);
            }
          }
          const total = [...accepted.values()].reduce((a, b) => a + b, 0);
          expect(total).toBeLessThanOrEqual(captured);
          const truth = await channel.query(req.paymentId);
          expect(truth?.amountRefunded).toBe(total);
          expect(truth?.refunds).toHaveLength(accepted.size);
        },
      ),
      { numRuns: 50 },
    );
  });
});

it('maps an unavailable store to ChannelUnavailableError with the outcome unknown', async () => {
  const broken = new MemoryTrades();
  broken.get = async () => {
    throw new Error('ECONNRESET');
  };
  const channel = new SandboxChannel({ bank: new SandboxBank({ store: broken, queue: new FakeQueue() }), signer });
  const error = await channel.authorize(pay('4242424242424242')).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ChannelUnavailableError);
  expect(error).toMatchObject({ retryable: true, outcomeUnknown: true, expose: false });
});
