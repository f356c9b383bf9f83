import { randomBytes } from 'node:crypto';
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { SQSEvent } from 'aws-lambda';
import { beforeAll, describe, expect, it } from 'vitest';
import { dynamo } from '../../functions/commons/clients';
import { newId, randomBase62 } from '../../functions/commons/ids';
import { Secret } from '../../functions/commons/secret';
import type { ChannelEvent } from '../../functions/channels/channel';
import { SandboxChannel } from '../../functions/channels/sandbox';
import { SandboxBank } from '../../functions/channels/sandbox/bank';
import { deliverSandboxCallbacks } from '../../functions/channels/sandbox/notifier';
import type { CallbackJob, CallbackQueue } from '../../functions/channels/sandbox/queue';
import { HmacSigner } from '../../functions/channels/sandbox/signer';
import { TradeStore } from '../../functions/channels/sandbox/store';
import { allShards, getAccounts, merchantAccount, type FeeScheduleOverride } from '../../functions/ledger';
import { createMerchant, setMerchantFees, type MerchantDeps } from '../../functions/merchants/service';
import { OrderRepository } from '../../functions/orders/repository';
import { OrderService, type Caller } from '../../functions/orders/service';
import { HmacFingerprinter } from '../../functions/payments/fingerprint';
import { PaymentRepository } from '../../functions/payments/repository';
import { PaymentService, type PaymentServiceDeps } from '../../functions/payments/service';
import { useLocalServices } from './env';

/**
 * Fee schedules end to end against DynamoDB Local: merchants' overrides stored on the merchant item
 * (as the CLI sets them), the platform default from FEE_SCHEDULE, and the rate snapshotted on the order
 * at confirm so that a later capture (API or channel callback) charges the rate the payer paid under.
 */

class MemoryQueue implements CallbackQueue {
  jobs: CallbackJob[] = [];
  async enqueue(job: CallbackJob): Promise<void> {
    this.jobs.push(job);
  }
}

let table: string;
let merchants: MerchantDeps;
let orders: OrderService;
const queue = new MemoryQueue();
const signer = new HmacSigner(randomBytes(32));
let bank: SandboxBank;
let sandbox: SandboxChannel;
const fingerprinter = new HmacFingerprinter(new Secret(randomBytes(32)));

beforeAll(() => {
  table = useLocalServices().tables.main;
  merchants = { db: dynamo(), tableName: table };
  orders = new OrderService(new OrderRepository(table));
  bank = new SandboxBank({ store: new TradeStore(), queue, callbackDelaySeconds: () => 0 });
  sandbox = new SandboxChannel({ bank, signer });
});

const CARD = { payment_method: { type: 'card', card: { number: '4242424242424242', exp_month: 12, exp_year: 2034, cvc: '123' } } };
const WALLET = { payment_method: { type: 'wallet' } };

/** Every read of a merchant's fees fails: proves a path charges the snapshot without reading the merchant. */
const noMerchantRead: PaymentServiceDeps['merchantFees'] = async (id) => {
  throw new Error(`unexpected read of the fees of ${id}`);
};

/** A merchant (optionally with a fee override) with its own ledger accounts, and services as separate containers would build them. */
async function merchant(fees?: FeeScheduleOverride) {
  const { merchantId } = await createMerchant(merchants, { name: 'Fees test', fees });
  const ledger = { receivableOwner: `rcv_${randomBase62(12)}`, platform: `pf_${randomBase62(12)}` };
  /** A fresh service is a fresh container: nothing cached. */
  const service = (deps: Partial<PaymentServiceDeps> = {}) =>
    new PaymentService({ repository: new PaymentRepository(table), fingerprinter, channel: () => sandbox, ledger, ...deps });
  const caller = (): Caller => ({ merchantId, baseUrl: 'http://127.0.0.1:3000/dev', now: new Date() });
  const order = (over: Record<string, unknown> = {}) =>
    orders.create(caller(), { merchant_order_no: newId('no'), amount: 10_000, currency: 'USD', payer: { email: 'payer@example.com' }, ...over });
  /** Fees charged (the platform's fee accounts), with debits = credits checked over this merchant's accounts. */
  const feesCharged = async () => {
    const ids = [merchantAccount(merchantId, 'USD'), ...allShards('receivable', ledger.receivableOwner, 'USD'), ...allShards('fees', ledger.platform, 'USD')];
    const accounts = [...(await getAccounts(ids, table)).entries()];
    const sum = (k: 'debits_posted' | 'credits_posted', kind = '') => accounts.filter(([id]) => id.startsWith(kind)).reduce((s, [, a]) => s + a[k], 0);
    expect(sum('debits_posted')).toBe(sum('credits_posted'));
    return sum('credits_posted', 'fees:');
  };
  return { merchantId, service, caller, order, feesCharged };
}

async function storedOrder(id: string) {
  return (await dynamo().send(new GetCommand({ TableName: table, Key: { pk: `ORDER#${id}`, sk: 'ORDER' }, ConsistentRead: true }))).Item!;
}

/** The sandbox's queued callbacks of a payment, delivered and verified as the notify handler does. */
async function callbacks(paymentId: string): Promise<ChannelEvent[]> {
  const mine = queue.jobs.filter((j) => j.out_trade_no === paymentId);
  queue.jobs = queue.jobs.filter((j) => j.out_trade_no !== paymentId);
  const bodies: string[] = [];
  const fetchStub = (async (_url: string, init: RequestInit) => {
    bodies.push(String(init.body));
    return new Response('success', { status: 200 });
  }) as unknown as typeof fetch;
  const event = { Records: mine.map((job, i) => ({ messageId: `m${i}`, body: JSON.stringify(job), attributes: { ApproximateReceiveCount: '1' } })) } as unknown as SQSEvent;
  await deliverSandboxCallbacks(event, { bank, signer, fetch: fetchStub, now: () => new Date() });
  return Promise.all(bodies.map((b) => sandbox.parseNotification({ 'content-type': 'application/x-www-form-urlencoded' }, b)));
}

describe('who pays which fee', () => {
  it('a merchant with an override is charged its fee; another merchant the platform default', async () => {
    // Prepare
    const custom = await merchant({ card: { percent_bps: 100, fixed: 0 } });
    const standard = await merchant();
    const [a, b] = await Promise.all([custom.order(), standard.order()]);
    // Act
    await custom.service().confirm(custom.caller(), a.id, CARD);
    await standard.service().confirm(standard.caller(), b.id, CARD);
    // Assess: 1.00 % of 100.00; the default 2.90 % + 0.30
    expect(await custom.feesCharged()).toBe(100);
    expect(await standard.feesCharged()).toBe(320);
    expect((await storedOrder(a.id)).fee_rate).toEqual({ method: 'card', percent_bps: 100, fixed: 0 });
    expect((await storedOrder(b.id)).fee_rate).toEqual({ method: 'card', percent_bps: 290, fixed: 30 });
  });

  it('FEE_SCHEDULE sets the platform default; an override changes only the fields it lists', async () => {
    // Prepare
    const before = process.env.FEE_SCHEDULE;
    process.env.FEE_SCHEDULE = '{"card":{"percent_bps":200,"fixed":50}}';
    try {
      const custom = await merchant({ card: { percent_bps: 100 } });
      const standard = await merchant();
      const [a, b] = await Promise.all([custom.order(), standard.order()]);
      // Act
      await custom.service().confirm(custom.caller(), a.id, CARD);
      await standard.service().confirm(standard.caller(), b.id, CARD);
      // Assess
      expect(await custom.feesCharged()).toBe(100 + 50);
      expect(await standard.feesCharged()).toBe(200 + 50);
    } finally {
      if (before === undefined) delete process.env.FEE_SCHEDULE;
      else process.env.FEE_SCHEDULE = before;
    }
  });
});

describe('the rate is the one in force at confirm', () => {
  it('manual capture after the override changed, in another container: charges the confirm-time rate, reads no merchant', async () => {
    // Prepare
    const m = await merchant({ card: { percent_bps: 100, fixed: 0 } });
    const o = await m.order({ capture_method: 'manual' });
    await m.service().confirm(m.caller(), o.id, CARD);
    await setMerchantFees(merchants, { merchantId: m.merchantId, fees: { card: { percent_bps: 500, fixed: 0 } } });
    // Act
    const captured = await m.service({ merchantFees: noMerchantRead }).capture(m.caller(), o.id, { amount: 6_000 });
    // Assess: 1 % of the 60.00 captured
    expect(captured).toMatchObject({ status: 'succeeded', amount_captured: 6_000 });
    expect(await m.feesCharged()).toBe(60);
    // A payment confirmed after the change gets the new rate.
    const next = await m.order();
    await m.service().confirm(m.caller(), next.id, CARD);
    expect(await m.feesCharged()).toBe(60 + 500);
  });

  it('asynchronous result (channel callback, no authorizer): charges the snapshot, reads no merchant', async () => {
    // Prepare
    const m = await merchant({ wallet: { percent_bps: 50, fixed: 7 } });
    const o = await m.order();
    const pending = await m.service().confirm(m.caller(), o.id, WALLET);
    expect(pending.status).toBe('processing');
    await setMerchantFees(merchants, { merchantId: m.merchantId, fees: {} });
    const [event] = await callbacks(pending.payment_id!);
    // Act
    const outcome = await m.service({ merchantFees: noMerchantRead }).applyChannelEvent(event!);
    // Assess
    expect(outcome).toMatchObject({ outcome: 'applied', status: 'succeeded' });
    expect(await m.feesCharged()).toBe(50 + 7);
  });

  it('an order confirmed before rates were snapshotted is charged the merchant rate at capture', async () => {
    // Prepare: an authorization whose order has no fee_rate, as written before this change
    const m = await merchant({ card: { percent_bps: 100, fixed: 0 } });
    const o = await m.order({ capture_method: 'manual' });
    await m.service().confirm(m.caller(), o.id, CARD);
    await dynamo().send(new UpdateCommand({ TableName: table, Key: { pk: `ORDER#${o.id}`, sk: 'ORDER' }, UpdateExpression: 'REMOVE fee_rate' }));
    await setMerchantFees(merchants, { merchantId: m.merchantId, fees: { card: { percent_bps: 400, fixed: 0 } } });
    // Act
    await m.service().capture(m.caller(), o.id, {});
    // Assess
    expect(await m.feesCharged()).toBe(400);
  });
});
