import type { Account } from './balance';
import type { Transfer } from './transfers';

/**
 * The ledger's invariants over a whole table's items (a restored backup, before it is adopted: a restore can hold
 * part of a transaction that was in flight). Returns the broken ones, in words; none means the ledger holds:
 *
 * - every transfer moves a positive integer amount between two different accounts of its currency;
 * - every account's four counters are exactly the fold of the transfers that name it (a lost or doubled transfer,
 *   or a counter written without its transfer, shows here);
 * - so, per currency, debits equal credits, pending and posted alike;
 * - a flagged merchant account's headroom is what its counters say it is.
 */
export function checkLedger(items: readonly Record<string, unknown>[]): string[] {
  const accounts = items.filter((i) => i.type === 'account') as unknown as Account[];
  const transfers = items.filter((i) => i.type === 'transfer') as unknown as Transfer[];
  const problems: string[] = [];
  const byId = new Map(accounts.map((a) => [a.account_id, a]));
  const folded = new Map<string, { dp: number; dP: number; cp: number; cP: number }>();
  const counters = (id: string) => {
    let c = folded.get(id);
    if (!c) folded.set(id, (c = { dp: 0, dP: 0, cp: 0, cP: 0 }));
    return c;
  };
  for (const t of transfers) {
    if (!Number.isSafeInteger(t.amount) || t.amount <= 0) problems.push(`transfer ${t.id} moves ${String(t.amount)}, not a positive integer of minor units`);
    if (t.debit === t.credit) problems.push(`transfer ${t.id} debits and credits the same account ${t.debit}`);
    for (const side of [t.debit, t.credit]) {
      const account = byId.get(side);
      if (!account) problems.push(`transfer ${t.id} names account ${side}, which the table does not hold`);
      else if (account.currency !== t.currency) problems.push(`transfer ${t.id} in ${t.currency} names ${side}, an account in ${account.currency}`);
    }
    const d = counters(t.debit);
    const c = counters(t.credit);
    if (t.phase === 'pending') {
      d.dp += t.amount;
      c.cp += t.amount;
      continue;
    }
    if (t.phase !== 'posted') {
      d.dp -= t.pending_amount ?? 0;
      c.cp -= t.pending_amount ?? 0;
    }
    if (t.phase !== 'void_pending') {
      d.dP += t.amount;
      c.cP += t.amount;
    }
  }
  const totals = new Map<string, { dp: number; dP: number; cp: number; cP: number }>();
  for (const a of accounts) {
    const f = folded.get(a.account_id) ?? { dp: 0, dP: 0, cp: 0, cP: 0 };
    const stored = { dp: a.debits_pending, dP: a.debits_posted, cp: a.credits_pending, cP: a.credits_posted };
    if (stored.dp !== f.dp || stored.dP !== f.dP || stored.cp !== f.cp || stored.cP !== f.cP) {
      problems.push(`account ${a.account_id} holds counters ${JSON.stringify(stored)}, but its transfers add up to ${JSON.stringify(f)}`);
    }
    if (a.headroom !== undefined && a.kind === 'merchant' && a.headroom !== a.credits_posted - a.debits_posted - a.debits_pending) {
      problems.push(`account ${a.account_id} stores headroom ${a.headroom}, but its counters give ${a.credits_posted - a.debits_posted - a.debits_pending}`);
    }
    const t = totals.get(a.currency) ?? { dp: 0, dP: 0, cp: 0, cP: 0 };
    totals.set(a.currency, { dp: t.dp + a.debits_pending, dP: t.dP + a.debits_posted, cp: t.cp + a.credits_pending, cP: t.cP + a.credits_posted });
  }
  for (const [currency, t] of totals) {
    if (t.dP !== t.cP) problems.push(`${currency}: posted debits ${t.dP} ≠ posted credits ${t.cP}`);
    if (t.dp !== t.cp) problems.push(`${currency}: pending debits ${t.dp} ≠ pending credits ${t.cp}`);
  }
  return problems;
}
