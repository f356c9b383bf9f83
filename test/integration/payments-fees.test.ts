import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { dynamo } from '../../functions/commons/clients';
import type { FeeScheduleOverride } from '../../functions/ledger';
import { createMerchant, setMerchantFees, type MerchantDeps } from '../../functions/merchants/service';
import type { PaymentServiceDeps } from '../../functions/payments/service';
import { useLocalServices } from './env';
import { CARDS, card, paymentCase, sandboxWorld } from './payments-world';
import { TEST_BY } from '../actors';

/**
 * Fee schedules end to end against DynamoDB Local: merchants' overrides stored on the merchant item
 * (as the CLI sets them), the platform default from FEE_SCHEDULE, and the rate snapshotted on the order
 * at confirm so that a later capture (API or channel callback) charges the rate the payer paid under.
 */

let table: string;
let merchants: MerchantDeps;
const { sandbox, callbacks } = sandboxWorld();

beforeAll(() => {
  table = useLocalServices().tables.main;
  merchants = { db: dynamo(), tableName: table };
});

const CARD = card(CARDS.success);
const WALLET = { payment_method: { type: 'wallet' } };

/** Every read of a merchant's fees fails: proves a path charges the snapshot without reading the merchant. */
const noMerchantRead: PaymentServiceDeps['merchantFees'] = async (id) => {
  throw new Error(`unexpected read of the fees of ${id}`);
};

/** A merchant (optionally with a fee override) with its own ledger accounts, and services as separate containers would build them. */
async function merchant(fees?: FeeScheduleOverride) {
  const { merchantId } = await createMerchant(merchants, { name: 'Fees test', fees }, {}, TEST_BY);
  const m = paymentCase(table, merchantId, sandbox);
  const order = (over: Record<string, unknown> = {}) => m.order({ payer: { email: 'payer@example.com' }, ...over });
  /** Fees charged (the platform's fee accounts), with debits = credits checked over this merchant's accounts. */
  const feesCharged = async () => {
    const accounts = [...(await m.accounts()).entries()];
    const sum = (k: 'debits_posted' | 'credits_posted', kind = '') => accounts.filter(([id]) => id.startsWith(kind)).reduce((s, [, a]) => s + a[k], 0);
    expect(sum('debits_posted')).toBe(sum('credits_posted'));
    return sum('credits_posted', 'fees:');
  };
  return { merchantId, service: m.newService, caller: m.caller, order, feesCharged };
}

async function storedOrder(id: string) {
  return (await dynamo().send(new GetCommand({ TableName: table, Key: { pk: `ORDER#${id}`, sk: 'ORDER' }, ConsistentRead: true }))).Item!;
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
    await setMerchantFees(merchants, { merchantId: m.merchantId, fees: { card: { percent_bps: 500, fixed: 0 } } }, TEST_BY);
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
    await setMerchantFees(merchants, { merchantId: m.merchantId, fees: {} }, TEST_BY);
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
    await setMerchantFees(merchants, { merchantId: m.merchantId, fees: { card: { percent_bps: 400, fixed: 0 } } }, TEST_BY);
    // Act
    await m.service().capture(m.caller(), o.id, {});
    // Assess
    expect(await m.feesCharged()).toBe(400);
  });
});
