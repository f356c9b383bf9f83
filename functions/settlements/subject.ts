import { change, type ObjectChange, type Subject, type WriteResult } from '../changes/writer';
import { InternalError } from '../commons/errors';
import type { EventType } from '../events/event';
import { settlementKey, settlementListKey, type Settlement, type SettlementStatus } from './settlement';

/**
 * How the writer (changes/writer.ts) stores and shows a settlement. Its item carries two index entries from
 * creation on, and keeps them:
 *   gsi1 MERCHANT#<merchant> / SETTLEMENT#<created_at>#<id>  the merchant's list (settlement.ts settlementListKey)
 *   gsi2 RUN#<run_id> / <merchant>#<CUR>                      the run's settlements, for its Summary (tasks.ts)
 */
export const runIndexKey = (s: Pick<Settlement, 'run_id' | 'merchant_id' | 'currency'>) => ({ gsi2pk: `RUN#${s.run_id}`, gsi2sk: `${s.merchant_id}#${s.currency}` });

/** in_payout resolves once, to paid or failed; carried_forward and the two outcomes are final. */
const NEXT: Record<SettlementStatus, readonly SettlementStatus[]> = {
  in_payout: ['paid', 'failed'],
  paid: [],
  failed: [],
  carried_forward: [],
};

export function settlementEventType(before: Settlement | undefined, after: Settlement): EventType | undefined {
  // A settlement created failed (its reserve was refused: settle.ts) has no payout to wait for: its one event says so.
  if (!before) return after.status === 'failed' ? 'settlement.failed' : 'settlement.created';
  if (before.status === after.status) return undefined;
  if (after.status === 'paid') return 'settlement.paid';
  if (after.status === 'failed') return 'settlement.failed';
  return undefined;
}

/** The API object (GET /v1/settlements/{id}, data.object of the settlement events): the bank account as last 4 only. */
export function settlementToApi(s: Settlement) {
  return {
    id: s.id,
    object: 'settlement' as const,
    merchant_id: s.merchant_id,
    currency: s.currency,
    status: s.status,
    amount: s.totals.net,
    totals: {
      gross: s.totals.gross,
      refunds: s.totals.refunds,
      fees: s.totals.fees,
      fx: s.totals.fx,
      adjustments: s.totals.adjustments,
      carried_in: s.totals.carried_in,
      net: s.totals.net,
      entry_count: s.totals.entry_count,
    },
    payout: s.payout
      ? {
          status: s.payout.status,
          bank_account_last4: s.payout.bank_account_last4,
          attempts: s.payout.attempts,
          reference: s.payout.reference ?? null,
          paid_at: s.payout.paid_at ?? null,
          failure_code: s.payout.failure_code ?? null,
          failure_message: s.payout.failure_message ?? null,
        }
      : null,
    cutoff: s.cutoff,
    delay_days: s.delay_days,
    windows: { delayed: { ...s.windows.delayed }, immediate: { ...s.windows.immediate } },
    run_id: s.run_id,
    created_at: s.created_at,
    updated_at: s.updated_at,
    version: s.version,
  };
}
export type ApiSettlement = ReturnType<typeof settlementToApi>;

export const settlementSubject: Subject<Settlement> = {
  kind: 'settlement',
  key: (s) => settlementKey(s.id),
  created: (s) => ({ type: 'settlement', ...settlementListKey(s), ...runIndexKey(s) }),
  index: () => ({}),
  snapshot: (s) => settlementToApi(s),
  eventType: settlementEventType,
  check(before, after) {
    if (before.status !== after.status && !NEXT[before.status].includes(after.status)) {
      throw new InternalError('change_invalid', `Settlement ${after.id} cannot move from ${before.status} to ${after.status}: only an in_payout settlement resolves, once, to paid or failed.`);
    }
  },
};

export const settlementChange = (before: Settlement | undefined, after: Settlement): ObjectChange => change(settlementSubject, before, after);

export const writtenSettlement = (result: WriteResult): Settlement => {
  if (!result.committed || !result.written.settlement) throw new InternalError('change_not_written', 'No settlement was written.');
  return result.written.settlement as Settlement;
};

/** A stored item (GetItem, ALL_OLD of a refusal) as a Settlement: the keys and index attributes dropped. */
export function settlementFromItem(item: Record<string, unknown>): Settlement {
  const { pk, sk, type, gsi1pk, gsi1sk, gsi2pk, gsi2sk, ...rest } = item;
  return rest as unknown as Settlement;
}
