import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { dynamo } from '../../functions/commons/clients';
import { newId } from '../../functions/commons/ids';
import {
  allShards,
  authorizationTransfer,
  captureTransfers,
  commitTransfers,
  computeFee,
  DEFAULT_FEE_SCHEDULE,
  getAccounts,
  getBalances,
  merchantAccounts,
  payoutTransfer,
  refundTransfer,
  voidTransfer,
  type Account,
  type PaymentMethodType,
  type PaymentRef,
  type TransactItem,
  type Transfer,
} from '../../functions/ledger';
import { useLocalServices } from './env';

/**
 * Ledger invariants over random sequences of payment and payout operations, applied through the library to
 * DynamoDB Local and to a small in-memory model of what the business rules allow:
 *   debits equal credits (money is conserved per currency) · no transfer applied twice · refunds never exceed
 *   captures · a merchant goes below zero only by refunds (payout reserves are checked, refunds are not) · a
 *   payout reserve resolves once · every balance (available, pending, in_payout, authorized) equals the model's,
 *   both when the captures are new (pending, T+1) and once they are available.
 * Each run has its own merchant, channel and platform, so only its own accounts are summed.
 * LEDGER_PROPERTY_RUNS=400 runs more sequences; LEDGER_PROPERTY_STATS=1 prints how often each outcome occurred.
 */
let table: string;
beforeAll(() => {
  table = useLocalServices().tables.main;
});

const CURRENCIES = ['USD', 'JPY', 'KWD'] as const;
const schedule = DEFAULT_FEE_SCHEDULE;

// ---------------------------------------------------------------------------------------------
// Generated input

interface OrderSpec {
  amount: number;
  currency: (typeof CURRENCIES)[number];
  method: PaymentMethodType;
}

type Kind = 'authorize' | 'pay' | 'capture' | 'void' | 'refund' | 'reserve' | 'post' | 'void_payout';

type Op =
  /** The next sensible operation for order `o` (`choice` picks among the alternatives), sent `times` at once. */
  | { t: 'step'; o: number; choice: number; percent: number; times: number }
  /** Any operation, however out of place (captures after voids, refunds before payment, …). */
  | { t: 'any'; kind: Kind; o: number; percent: number }
  /** `n` distinct refunds of one order racing. */
  | { t: 'refunds_at_once'; o: number; percent: number; n: number }
  /** A command sent again, as after a lost answer. */
  | { t: 'retry'; k: number }
  /** One earlier command sent `n` times concurrently. */
  | { t: 'duplicates_at_once'; k: number; n: number }
  /** Settling: reserve `percent` of the merchant's headroom in the c-th order's currency (over 100: more than it has). */
  | { t: 'reserve'; c: number; percent: number }
  /** A payout's outcome: post (paid) or void (failed for good) the k-th reserve, `n` times at once. */
  | { t: 'resolve'; k: number; step: 'post' | 'void'; n: number };

const orderArb = fc.record({
  amount: fc.oneof({ weight: 1, arbitrary: fc.integer({ min: 1, max: 100 }) }, { weight: 3, arbitrary: fc.integer({ min: 101, max: 200_000 }) }),
  currency: fc.constantFrom(...CURRENCIES),
  method: fc.constantFrom<PaymentMethodType>('card', 'wallet'),
});
const o = fc.nat({ max: 2 });
const percent = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 1, max: 100 }) },
  { weight: 1, arbitrary: fc.constant(100) },
  { weight: 1, arbitrary: fc.integer({ min: 101, max: 130 }) },
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({ t: fc.constant('step' as const), o, choice: fc.nat(), percent, times: fc.oneof({ weight: 3, arbitrary: fc.constant(1) }, fc.integer({ min: 2, max: 4 })) }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('any' as const), kind: fc.constantFrom<Kind>('authorize', 'pay', 'capture', 'void', 'refund'), o, percent }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('refunds_at_once' as const), o, percent: fc.integer({ min: 5, max: 50 }), n: fc.integer({ min: 2, max: 5 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('retry' as const), k: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('duplicates_at_once' as const), k: fc.nat(), n: fc.integer({ min: 2, max: 4 }) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('reserve' as const), c: o, percent }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('resolve' as const), k: fc.nat(), step: fc.constantFrom<'post' | 'void'>('post', 'void'), n: fc.integer({ min: 1, max: 3 }) }) },
);

/** What a `step` does in each state. */
function stepKind(status: Status, choice: number): Kind {
  switch (status) {
    case 'new':
      return choice % 3 === 0 ? 'pay' : 'authorize';
    case 'requires_capture':
      return choice % 4 === 0 ? 'void' : 'capture';
    case 'succeeded':
      return 'refund';
    case 'closed':
      return choice % 2 === 0 ? 'refund' : 'capture';
  }
}

// ---------------------------------------------------------------------------------------------
// The model: what the business rules allow, per order and per merchant currency

type Status = 'new' | 'requires_capture' | 'succeeded' | 'closed';
interface ModelOrder extends OrderSpec {
  ref: PaymentRef;
  status: Status;
  captured: number;
  refunded: number;
}
interface ModelPayout {
  settlement_id: string;
  currency: string;
  amount: number;
  status: 'pending' | 'posted' | 'voided';
}
interface Model {
  orders: ModelOrder[];
  /** Per currency: the merchant's posted credits − posted debits (captures − fees − refunds − paid payouts). */
  posted: Record<string, number>;
  /** Captures net of fees, written at the run's time: pending (T+1) then, available later. */
  delayed: Record<string, number>;
  refunded: Record<string, number>;
  in_payout: Record<string, number>;
  authorized: Record<string, number>;
  payouts: ModelPayout[];
  /** Transfer ids the model expects to exist. */
  transfers: Set<string>;
  refundIds: Set<string>;
}

/** One operation as the payments code would send it: the state change plus its transfers. */
interface Command {
  label: string;
  transfers: Transfer[];
  items: TransactItem[];
  /** Whether the model allows it now. */
  allowed(m: Model): boolean;
  /** Why the model refuses it (refunds only), for the outcome tally. */
  refusal?(m: Model): string | undefined;
  apply(m: Model): void;
}

const stateKey = (orderId: string) => ({ pk: `LEDGERPROP#${orderId}`, sk: 'ORDER' });
const fee = (spec: OrderSpec, amount: number) => computeFee({ amount, currency: spec.currency, method: spec.method }, schedule);
const part = (amount: number, percent: number) => Math.max(1, Math.floor((amount * percent) / 100));

const add = (r: Record<string, number>, currency: string, amount: number) => (r[currency] = (r[currency] ?? 0) + amount);
/** What the merchant's balance flag protects, over the merchant's total in one currency. */
const headroom = (m: Model, currency: string) => (m.posted[currency] ?? 0) - (m.in_payout[currency] ?? 0);

/** A payout reserve of `percent` of the headroom, or the post or void of an earlier reserve. */
function payoutCommand(op: { t: 'reserve'; c: number; percent: number } | { t: 'resolve'; payout: ModelPayout; step: 'post' | 'void' }, m: Model, run: { merchant: string; platform: string }, now: Date): Command {
  if (op.t === 'reserve') {
    // A currency the run's orders pay in: the others have no account, so nothing to reserve.
    const currency = m.orders[op.c % m.orders.length]!.currency;
    const amount = Math.max(1, Math.floor((headroom(m, currency) * op.percent) / 100));
    const payout: ModelPayout = { settlement_id: `stl_${newId('t')}`, currency, amount, status: 'pending' };
    const t = payoutTransfer({ settlement_id: payout.settlement_id, merchant_id: run.merchant, currency, platform: run.platform }, 'reserve', amount, now);
    const refusal = (mm: Model) => (mm.transfers.has(t.id) ? 'reserve already applied' : headroom(mm, currency) < amount ? 'over the headroom' : undefined);
    return {
      label: `reserve ${amount}/${headroom(m, currency)} ${currency} ${payout.settlement_id}`,
      transfers: [t],
      items: [],
      allowed: (mm) => refusal(mm) === undefined,
      refusal,
      apply: (mm) => {
        add(mm.in_payout, currency, amount);
        mm.payouts.push({ ...payout });
      },
    };
  }
  const { settlement_id, currency, amount } = op.payout;
  const t = payoutTransfer({ settlement_id, merchant_id: run.merchant, currency, platform: run.platform }, op.step, amount, now);
  const find = (mm: Model) => mm.payouts.find((p) => p.settlement_id === settlement_id)!;
  return {
    label: `${op.step === 'post' ? 'post' : 'void_payout'} ${amount} ${currency} ${settlement_id}`,
    transfers: [t],
    items: [],
    allowed: (mm) => find(mm).status === 'pending',
    refusal: (mm) => (find(mm).status === 'pending' ? undefined : `reserve already ${find(mm).status}`),
    apply: (mm) => {
      find(mm).status = op.step === 'post' ? 'posted' : 'voided';
      add(mm.in_payout, currency, -amount);
      if (op.step === 'post') add(mm.posted, currency, -amount);
    },
  };
}

/** Captures take `percent` of the authorized amount (capped at 100); refunds `percent` of what is left to refund. */
function command(op: { kind: Kind; o: number; percent: number }, m: Model, now: Date): Command {
  const index = op.o % m.orders.length;
  const order = m.orders[index]!;
  const { ref, amount, currency } = order;
  const orderAt = (mm: Model) => mm.orders[index]!;
  const newState = (status: Status, captured: number): TransactItem => ({
    Put: {
      TableName: table,
      Item: { ...stateKey(ref.order_id), status, captured, refundable: captured },
      ConditionExpression: 'attribute_not_exists(pk)',
    },
  });
  const fromAwaitingCapture = (status: Status, captured: number): TransactItem => ({
    Update: {
      TableName: table,
      Key: stateKey(ref.order_id),
      UpdateExpression: 'SET #s = :to, captured = :c, refundable = :c',
      ConditionExpression: '#s = :from',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: { ':from': 'requires_capture', ':to': status, ':c': captured },
    },
  });
  switch (op.kind) {
    case 'authorize':
      return {
        label: `authorize #${index} ${amount} ${currency}`,
        transfers: [authorizationTransfer(ref, amount, now)],
        items: [newState('requires_capture', 0)],
        allowed: (mm) => orderAt(mm).status === 'new',
        apply: (mm) => {
          orderAt(mm).status = 'requires_capture';
          add(mm.authorized, currency, amount);
        },
      };
    case 'pay': {
      const transfers = captureTransfers(ref, { amount, fee: fee(order, amount) }, now);
      return {
        label: `pay #${index} ${amount} ${currency}`,
        transfers,
        items: [newState('succeeded', amount)],
        allowed: (mm) => orderAt(mm).status === 'new',
        apply: (mm) => {
          Object.assign(orderAt(mm), { status: 'succeeded', captured: amount });
          add(mm.posted, currency, amount - fee(order, amount));
          add(mm.delayed, currency, amount - fee(order, amount));
        },
      };
    }
    case 'capture': {
      const captured = part(amount, Math.min(100, op.percent));
      return {
        label: `capture #${index} ${captured}/${amount} ${currency}`,
        transfers: captureTransfers(ref, { amount: captured, fee: fee(order, captured), authorized: amount }, now),
        items: [fromAwaitingCapture('succeeded', captured)],
        allowed: (mm) => orderAt(mm).status === 'requires_capture',
        apply: (mm) => {
          Object.assign(orderAt(mm), { status: 'succeeded', captured });
          add(mm.authorized, currency, -amount);
          add(mm.posted, currency, captured - fee(order, captured));
          add(mm.delayed, currency, captured - fee(order, captured));
        },
      };
    }
    case 'void':
      return {
        label: `void #${index} ${amount} ${currency}`,
        transfers: [voidTransfer(ref, amount, now)],
        items: [fromAwaitingCapture('closed', 0)],
        allowed: (mm) => orderAt(mm).status === 'requires_capture',
        apply: (mm) => {
          orderAt(mm).status = 'closed';
          add(mm.authorized, currency, -amount);
        },
      };
    case 'reserve':
    case 'post':
    case 'void_payout':
      throw new Error(`payout kinds are built by payoutCommand, not ${op.kind}`);
    case 'refund': {
      const refundId = newId('re');
      const left = order.captured - order.refunded;
      const refunded = part(left > 0 ? left : amount, op.percent);
      const refundRefusal = (mm: Model) => {
        const x = orderAt(mm);
        if (x.status !== 'succeeded') return `order ${x.status}`;
        if (mm.refundIds.has(refundId)) return 'refund already applied';
        if (x.refunded + refunded > x.captured) return 'over the captured amount';
        // No balance condition: a refund after payout may take the merchant below zero.
        return undefined;
      };
      return {
        label: `refund #${index} ${refunded} ${currency} ${refundId}`,
        transfers: [refundTransfer(ref, { refund_id: refundId, amount: refunded }, now)],
        // The payments code bounds refunds per order on its order item; the ledger does not bound them by balance.
        items: [
          {
            Update: {
              TableName: table,
              Key: stateKey(ref.order_id),
              UpdateExpression: 'ADD refundable :minus, refunded :r',
              ConditionExpression: '#s = :succeeded AND refundable >= :r',
              ExpressionAttributeNames: { '#s': 'status' },
              ExpressionAttributeValues: { ':succeeded': 'succeeded', ':r': refunded, ':minus': -refunded },
            },
          },
        ],
        allowed: (mm) => refundRefusal(mm) === undefined,
        refusal: (mm) => refundRefusal(mm),
        apply: (mm) => {
          orderAt(mm).refunded += refunded;
          add(mm.posted, currency, -refunded);
          add(mm.refunded, currency, refunded);
          mm.refundIds.add(refundId);
        },
      };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Reading the ledger back

/** The merchant's transfers from gsi1: its ledger entries (`ENTRY#…`) and the rest (`TRANSFER#…`: authorizations, voids, payouts). */
async function transfersOf(merchantId: string): Promise<Transfer[]> {
  const out: Transfer[] = [];
  for (const prefix of ['ENTRY#', 'TRANSFER#']) {
    let start: Record<string, unknown> | undefined;
    do {
      const page = await dynamo().send(
        new QueryCommand({
          TableName: table,
          IndexName: 'gsi1',
          KeyConditionExpression: 'gsi1pk = :pk AND begins_with(gsi1sk, :prefix)',
          ExpressionAttributeValues: { ':pk': `MERCHANT#${merchantId}`, ':prefix': prefix },
          ExclusiveStartKey: start,
        }),
      );
      out.push(...((page.Items ?? []) as Transfer[]));
      start = page.LastEvaluatedKey;
    } while (start);
  }
  return out;
}

/** Each account's counters, folded from the transfers alone. */
function countersFrom(transfers: Transfer[]) {
  const acc = new Map<string, { debits_pending: number; debits_posted: number; credits_pending: number; credits_posted: number }>();
  const get = (id: string) => {
    if (!acc.has(id)) acc.set(id, { debits_pending: 0, debits_posted: 0, credits_pending: 0, credits_posted: 0 });
    return acc.get(id)!;
  };
  for (const t of transfers) {
    const d = get(t.debit);
    const c = get(t.credit);
    if (t.phase === 'pending') {
      d.debits_pending += t.amount;
      c.credits_pending += t.amount;
    } else {
      if (t.phase !== 'posted') {
        d.debits_pending -= t.pending_amount!;
        c.credits_pending -= t.pending_amount!;
      }
      if (t.phase !== 'void_pending') {
        d.debits_posted += t.amount;
        c.credits_posted += t.amount;
      }
    }
  }
  return acc;
}

/** The balance when the run's captures are new (pending, T+1) and two days later (available), against the model. */
async function assertBalancesMatch(m: Model, merchantId: string, now: Date, context: string) {
  const later = new Date(now.getTime() + 2 * 86_400_000);
  for (const [at, delayedPending] of [[now, true], [later, false]] as const) {
    const balance = await getBalances(merchantId, { table, now: at, zone: 'UTC', delayDays: 1 });
    const currencies = balance.available.map((b) => b.currency);
    const expected = (currency: string) => {
      const pending = delayedPending ? (m.delayed[currency] ?? 0) : 0;
      return {
        available: headroom(m, currency) - pending,
        pending,
        in_payout: m.in_payout[currency] ?? 0,
        authorized: m.authorized[currency] ?? 0,
      };
    };
    const read = (currency: string) => {
      const of = (list: { currency: string; amount: number }[]) => list.find((b) => b.currency === currency)?.amount;
      return { available: of(balance.available), pending: of(balance.pending), in_payout: of(balance.in_payout), authorized: of(balance.authorized) };
    };
    for (const currency of currencies) expect(read(currency), `${context} at ${at.toISOString()}: ${currency}`).toEqual(expected(currency));
    // Every currency the model has money in is listed.
    for (const currency of CURRENCIES) {
      const e = expected(currency);
      if (e.available || e.pending || e.in_payout || e.authorized) expect(currencies, `${context}: ${currency} listed`).toContain(currency);
    }
  }
}

async function assertInvariants(m: Model, run: { merchant: string; channel: string; platform: string; now: Date }) {
  const ctx = `merchant ${run.merchant}`;
  // Every account of this run: the merchant's, and every shard of its channel and platform.
  const platformIds = CURRENCIES.flatMap((c) => [...allShards('receivable', run.channel, c), ...allShards('fees', run.platform, c), ...allShards('payouts', run.platform, c)]);
  const accounts: Account[] = [...(await merchantAccounts(run.merchant, table)), ...(await getAccounts(platformIds, table)).values()];

  // Debits equal credits, per currency, pending and posted alike.
  for (const currency of CURRENCIES) {
    const mine = accounts.filter((a) => a.currency === currency);
    const sum = (f: (a: Account) => number) => mine.reduce((s, a) => s + f(a), 0);
    expect(sum((a) => a.debits_posted), `${ctx} ${currency} posted`).toBe(sum((a) => a.credits_posted));
    expect(sum((a) => a.debits_pending), `${ctx} ${currency} pending`).toBe(sum((a) => a.credits_pending));
  }

  // No transfer applied twice: exactly the transfers the model expects, and the account counters
  // are exactly the fold of those transfers (a transfer counted twice would show up here).
  const transfers = await transfersOf(run.merchant);
  expect(transfers.map((t) => t.id).sort(), ctx).toEqual([...m.transfers].sort());
  const folded = countersFrom(transfers);
  expect(accounts.length).toBe(folded.size);
  for (const a of accounts) {
    const f = folded.get(a.account_id);
    expect(f, `${ctx}: ${a.account_id} has no transfers`).toBeDefined();
    expect({ dp: a.debits_pending, dP: a.debits_posted, cp: a.credits_pending, cP: a.credits_posted }, a.account_id).toEqual({
      dp: f!.debits_pending,
      dP: f!.debits_posted,
      cp: f!.credits_pending,
      cP: f!.credits_posted,
    });
    // No pending counter negative; the stored headroom is what the flag checks; a merchant is below zero only by
    // refunds: without them (captures − fees − payouts) it never is, as payout reserves are checked.
    expect(a.debits_pending).toBeGreaterThanOrEqual(0);
    expect(a.credits_pending).toBeGreaterThanOrEqual(0);
    if (a.kind === 'merchant') {
      expect(a.headroom).toBe(a.credits_posted - a.debits_posted - a.debits_pending);
      const refunds = transfers.filter((t) => t.kind === 'refund' && t.currency === a.currency).reduce((sum, t) => sum + t.amount, 0);
      expect(a.headroom! + refunds, `${ctx}: ${a.account_id} below zero by more than its refunds`).toBeGreaterThanOrEqual(0);
      if (refunds === 0) expect(a.headroom).toBeGreaterThanOrEqual(0);
    }
  }

  // Refunds never exceed captures, per order.
  for (const order of m.orders) {
    const ofOrder = transfers.filter((t) => t.order_id === order.ref.order_id);
    const captured = ofOrder.filter((t) => t.kind === 'capture').reduce((s, t) => s + t.amount, 0);
    const refunded = ofOrder.filter((t) => t.kind === 'refund').reduce((s, t) => s + t.amount, 0);
    expect(refunded, `${ctx}: order ${order.ref.order_id}`).toBeLessThanOrEqual(captured);
    expect(captured).toBe(order.captured);
    expect(refunded).toBe(order.refunded);
  }

  // Each payout reserve resolved at most once: its pending transfer names the one transfer that resolved it.
  for (const p of m.payouts) {
    const resolutions = transfers.filter((t) => t.kind === 'payout' && t.phase !== 'pending' && t.settlement_id === p.settlement_id);
    expect(resolutions.length, `${ctx}: ${p.settlement_id}`).toBe(p.status === 'pending' ? 0 : 1);
  }

  await assertBalancesMatch(m, run.merchant, run.now, ctx);
}

// ---------------------------------------------------------------------------------------------

/** How often each outcome was exercised, to keep the generators honest (LEDGER_PROPERTY_STATS=1 prints it). */
const outcomes: Record<string, number> = {};
const tally = (key: string) => (outcomes[key] = (outcomes[key] ?? 0) + 1);

describe('ledger invariants over random operation sequences', () => {
  it('hold after every sequence of authorize, capture, void, refund, retries and concurrent duplicates', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(orderArb, { minLength: 1, maxLength: 3 }), fc.array(opArb, { minLength: 1, maxLength: 20 }), async (specs, ops) => {
        // Prepare: a merchant, channel and platform of this run only.
        const now = new Date();
        const run = { merchant: newId('mch'), channel: `ch_${newId('p')}`, platform: `pf_${newId('p')}`, now };
        const model: Model = {
          orders: specs.map((spec) => ({
            ...spec,
            ref: { order_id: newId('ord'), merchant_id: run.merchant, currency: spec.currency, channel: run.channel, platform: run.platform },
            status: 'new',
            captured: 0,
            refunded: 0,
          })),
          posted: {},
          delayed: {},
          refunded: {},
          in_payout: {},
          authorized: {},
          payouts: [],
          transfers: new Set(),
          refundIds: new Set(),
        };
        const history: Command[] = [];

        const send = (c: Command) => commitTransfers({ table, now, transfers: c.transfers, items: c.items });

        const record = (c: Command, committed: boolean) => {
          if (!committed) return;
          c.apply(model);
          c.transfers.forEach((t) => model.transfers.add(t.id));
        };
        /** Sends `c` `times` at once: exactly one goes through if the model allows it, else none. */
        const sendAtOnce = async (c: Command, times: number) => {
          const allowed = c.allowed(model);
          const why = c.refusal?.(model);
          const results = await Promise.all(Array.from({ length: times }, () => send(c)));
          const committed = results.filter((r) => r.committed).length;
          expect(committed, `${times}× ${c.label} (allowed: ${allowed})`).toBe(allowed ? 1 : 0);
          record(c, committed === 1);
          tally(`${c.label.split(' ')[0]} ${allowed ? 'applied' : 'refused'}${why ? `: ${why}` : ''}${times > 1 ? ' (concurrent duplicates)' : ''}`);
        };

        // Act, checking the balance after every step.
        for (const op of ops) {
          if (op.t === 'retry' || op.t === 'duplicates_at_once') {
            if (history.length === 0) continue;
            await sendAtOnce(history[op.k % history.length]!, op.t === 'retry' ? 1 : op.n);
          } else if (op.t === 'refunds_at_once') {
            const cs = Array.from({ length: op.n }, () => command({ kind: 'refund', o: op.o, percent: op.percent }, model, now));
            const order = model.orders[op.o % model.orders.length]!;
            const r = cs[0]!.transfers[0]!.amount;
            const expected =
              order.status === 'succeeded' ? Math.min(op.n, Math.floor((order.captured - order.refunded) / r)) : 0;
            const results = await Promise.all(cs.map(send));
            expect(results.filter((x) => x.committed).length, `${op.n} refunds of ${r} at once`).toBe(expected);
            cs.forEach((c, i) => record(c, results[i]!.committed));
            tally(`refunds at once: ${expected} of ${op.n} applied`);
            history.push(...cs);
          } else if (op.t === 'reserve') {
            const c = payoutCommand(op, model, run, now);
            await sendAtOnce(c, 1);
            history.push(c);
          } else if (op.t === 'resolve') {
            if (model.payouts.length === 0) continue;
            const c = payoutCommand({ t: 'resolve', payout: model.payouts[op.k % model.payouts.length]!, step: op.step }, model, run, now);
            await sendAtOnce(c, op.n);
            history.push(c);
          } else {
            const order = model.orders[op.o % model.orders.length]!;
            const kind = op.t === 'step' ? stepKind(order.status, op.choice) : op.kind;
            const c = command({ kind, o: op.o, percent: op.percent }, model, now);
            await sendAtOnce(c, op.t === 'step' ? op.times : 1);
            history.push(c);
          }
          await assertBalancesMatch(model, run.merchant, now, `after ${op.t}`);
        }

        // Assess
        await assertInvariants(model, run);
      }),
      { numRuns: Number(process.env.LEDGER_PROPERTY_RUNS ?? 40) },
    );
    if (process.env.LEDGER_PROPERTY_STATS) console.log(Object.entries(outcomes).sort().map(([k, n]) => `${n}\t${k}`).join('\n'));
  });
});
