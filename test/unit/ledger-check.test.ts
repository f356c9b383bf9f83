import { describe, expect, it } from 'vitest';
import { checkLedger } from '../../functions/ledger/check';

/** A capture of 1000 (receivable → merchant) and its fee of 30 (merchant → fees), as the table holds them. */
const account = (account_id: string, kind: string, c: { dp?: number; dP?: number; cp?: number; cP?: number }, headroom?: number) => ({
  type: 'account',
  account_id,
  kind,
  currency: 'USD',
  debits_pending: c.dp ?? 0,
  debits_posted: c.dP ?? 0,
  credits_pending: c.cp ?? 0,
  credits_posted: c.cP ?? 0,
  ...(headroom === undefined ? {} : { headroom }),
});
const transfer = (id: string, debit: string, credit: string, amount: number, phase = 'posted') => ({ type: 'transfer', id, debit, credit, amount, currency: 'USD', phase });
const day = (): Record<string, unknown>[] => [
  account('recv', 'receivable', { dP: 1000 }),
  account('mch', 'merchant', { cP: 1000, dP: 30 }, 970),
  account('fees', 'fees', { cP: 30 }),
  transfer('t1', 'recv', 'mch', 1000),
  transfer('t2', 'mch', 'fees', 30),
];

describe('checkLedger: the invariants a restored table is held to before it is used', () => {
  it('holds for a balanced ledger', () => {
    expect(checkLedger(day())).toEqual([]);
  });

  it('names an account whose counters are not the fold of its transfers (a transfer lost in a partial restore)', () => {
    const items = day().filter((i) => i.id !== 't2');
    const problems = checkLedger(items);
    expect(problems).toContainEqual(expect.stringContaining('account mch holds counters'));
    expect(problems).toContainEqual(expect.stringContaining('account fees holds counters'));
  });

  it('names a currency whose debits and credits differ, and a headroom that does not match', () => {
    const items = day().map((i) => (i.type === 'account' && i.account_id === 'mch' ? { ...i, credits_posted: 1001 } : i));
    const problems = checkLedger(items);
    expect(problems).toContainEqual('USD: posted debits 1030 ≠ posted credits 1031');
    expect(problems).toContainEqual(expect.stringContaining('account mch stores headroom 970, but its counters give 971'));
  });

  it('names a transfer to an account the table does not hold, or of a float amount', () => {
    const problems = checkLedger([...day(), transfer('t3', 'mch', 'nowhere', 0.5)]);
    expect(problems).toContainEqual(expect.stringContaining('transfer t3 names account nowhere'));
    expect(problems).toContainEqual(expect.stringContaining('transfer t3 moves 0.5'));
  });
});
