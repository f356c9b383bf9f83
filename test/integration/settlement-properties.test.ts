import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { SANDBOX_PAYOUT_ACCOUNTS } from '../../functions/channels/payouts';
import { dynamo } from '../../functions/commons/clients';
import type { Settlement } from '../../functions/settlements/settlement';
import { settlementFromItem } from '../../functions/settlements/subject';
import { runs } from '../deep';
import { useLocalServices } from './env';
import { clockAfterEntries, putMerchantPayout, runFor, runMerchant, settlementCase } from './settlement-support';

/**
 * Random payments, refunds (also after payout), settle runs with working, flaky and closed bank accounts, and
 * races of runs, interleaved for one merchant; then a last run with a working account. Whatever happened:
 *   - every ledger entry lies in exactly one settlement's window (none twice, none skipped);
 *   - each settlement's net = gross − refunds − fees − fx + adjustments + carried_in, and over them all
 *     Σnet + Σfees + Σfx = Σgross − Σrefunds + Σadjustments + Σcarried_in;
 *   - no payout twice: each paid settlement has one paid payout at the rail, for its net, and the rail paid nothing
 *     else; what was paid plus what is carried equals what the entries credit the merchant.
 * A failure prints fast-check's seed and path; `fc.assert(…, { seed, path })` replays it.
 */
let table: string;
beforeAll(() => {
  table = useLocalServices().tables.main;
});

type Op =
  | { op: 'pay'; amount: number }
  | { op: 'refund'; order: number; part: number }
  | { op: 'settle'; account: keyof typeof SANDBOX_PAYOUT_ACCOUNTS }
  | { op: 'race' };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('pay' as const), amount: fc.integer({ min: 100, max: 50_000 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('refund' as const), order: fc.nat(), part: fc.integer({ min: 1, max: 100 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('settle' as const), account: fc.constantFrom('succeeds', 'transientTwice', 'closed') as fc.Arbitrary<keyof typeof SANDBOX_PAYOUT_ACCOUNTS> }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('race' as const) }) },
);

async function all(query: ConstructorParameters<typeof QueryCommand>[0]) {
  const items: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await dynamo().send(new QueryCommand({ ...query, ExclusiveStartKey: start }));
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

describe('settlement properties', () => {
  it('every entry in exactly one settlement, the sums hold, nothing paid twice', { timeout: 600_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 3, maxLength: 9 }), async (ops) => {
        const m = await settlementCase(table);
        const orders: Array<{ id: string; refundable: number }> = [];
        for (const o of [...ops, { op: 'settle', account: 'succeeds' } as Op]) {
          if (o.op === 'pay') {
            const paid = await m.pay(o.amount);
            orders.push({ id: paid.id, refundable: o.amount });
          } else if (o.op === 'refund' && orders.length) {
            const target = orders[o.order % orders.length]!;
            const amount = Math.min(target.refundable, Math.max(1, Math.floor((target.refundable * o.part) / 100)));
            if (amount > 0) {
              await m.refund(target.id, amount);
              target.refundable -= amount;
            }
          } else if (o.op === 'settle') {
            await putMerchantPayout(table, m.merchantId, SANDBOX_PAYOUT_ACCOUNTS[o.account]);
            const { cutoff, now } = clockAfterEntries();
            await runFor(m.merchantId, cutoff, m.deps(now)); // its Summary throws on any break
          } else if (o.op === 'race') {
            const { cutoff, now } = clockAfterEntries();
            const item = { merchant_id: m.merchantId, currency: 'USD', cutoff, run_id: 'run-race' };
            const later = { ...item, cutoff: new Date(Date.parse(cutoff) + 3).toISOString(), run_id: 'run-race-later' };
            await Promise.all([runMerchant(item, m.deps(now)), runMerchant(item, m.deps(now)), runMerchant(later, m.deps(now))]);
          }
        }

        const settlements: Settlement[] = (
          await all({ TableName: table, IndexName: 'gsi1', KeyConditionExpression: 'gsi1pk = :pk AND begins_with(gsi1sk, :s)', ExpressionAttributeValues: { ':pk': `MERCHANT#${m.merchantId}`, ':s': 'SETTLEMENT#' } })
        ).map(settlementFromItem);
        const entries = await all({ TableName: table, IndexName: 'gsi1', KeyConditionExpression: 'gsi1pk = :pk AND begins_with(gsi1sk, :e)', ExpressionAttributeValues: { ':pk': `MERCHANT#${m.merchantId}`, ':e': 'ENTRY#USD#' } });

        if (entries.length === 0) {
          expect(settlements).toEqual([]);
          return;
        }
        // Every entry in exactly one window.
        for (const e of entries) {
          const stream = e.entry_stream as 'delayed' | 'immediate';
          const owners = settlements.filter((s) => s.windows[stream].from <= (e.created_at as string) && (e.created_at as string) < s.windows[stream].to);
          expect(owners.map((s) => s.id), `entry ${e.id as string}`).toHaveLength(1);
        }
        // The sums.
        const sum = (f: keyof Settlement['totals']) => settlements.reduce((t, s) => t + s.totals[f], 0);
        for (const s of settlements) {
          const t = s.totals;
          expect(t.net).toBe(t.gross - t.refunds - t.fees - t.fx + t.adjustments + t.carried_in);
        }
        expect(sum('net') + sum('fees') + sum('fx')).toBe(sum('gross') - sum('refunds') + sum('adjustments') + sum('carried_in'));
        expect(sum('entry_count')).toBe(entries.length);
        // Nothing paid twice: one rail payout per paid settlement, for its net; paid + carried = what the entries credit.
        const paid = settlements.filter((s) => s.status === 'paid');
        for (const s of settlements) {
          const record = await m.rail.status(s.id);
          if (s.status === 'paid') expect(record).toMatchObject({ status: 'paid', amount: s.totals.net });
          else expect(record?.status).not.toBe('paid');
        }
        const cursor = (await m.cursor())!;
        const credited = entries.reduce((t, e) => t + (e.entry_amount as number), 0);
        expect(paid.reduce((t, s) => t + s.totals.net, 0) + cursor.carry).toBe(credited);
        const account = await m.account();
        expect(account.debits_pending).toBe(0);
        expect(account.headroom).toBe(cursor.carry);
      }),
      { numRuns: runs(5, 50), endOnFailure: true },
    );
  });
});
