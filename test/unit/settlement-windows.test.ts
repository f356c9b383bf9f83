import { describe, expect, it } from 'vitest';
import { classify, zeroTotals } from '../../functions/settlements/entries';
import { EPOCH, settleHorizonMs, SETTLE_HORIZON_MS, windowsOf } from '../../functions/settlements/settle';
import { settlementEventType } from '../../functions/settlements/subject';
import type { Settlement } from '../../functions/settlements/settlement';

describe('settlement windows', () => {
  const cutoff = new Date('2026-12-02T00:00:00.000Z');
  const later = new Date('2026-12-02T06:00:00.000Z');

  it('start at the cursor (or the epoch) and end at the cutoff bound: T+1 at a midnight cutoff takes what was created before yesterday', () => {
    expect(windowsOf(undefined, cutoff, 1, later, 'UTC')).toEqual({
      delayed: { from: EPOCH, to: '2026-12-01T00:00:00.000Z' }, // 12-01's entries are available at 12-02 00:00, not before it
      immediate: { from: EPOCH, to: '2026-12-02T00:00:00.000Z' },
    });
    const cursor = { delayed_through: '2026-11-29T00:00:00.000Z', immediate_through: '2026-12-01T00:00:00.000Z' };
    expect(windowsOf(cursor, cutoff, 0, later, 'UTC')).toEqual({
      delayed: { from: '2026-11-29T00:00:00.000Z', to: '2026-12-02T00:00:00.000Z' },
      immediate: { from: '2026-12-01T00:00:00.000Z', to: '2026-12-02T00:00:00.000Z' },
    });
  });

  it('never end closer than the horizon to now, and are empty rather than backwards', () => {
    const soon = new Date(cutoff.getTime() + 60_000);
    expect(windowsOf(undefined, cutoff, 0, soon, 'UTC').immediate.to).toBe(new Date(soon.getTime() - SETTLE_HORIZON_MS).toISOString());
    const cursor = { delayed_through: '2026-12-01T23:59:00.000Z', immediate_through: '2026-12-01T23:59:00.000Z' };
    expect(windowsOf(cursor, cutoff, 1, soon, 'UTC')).toEqual({
      delayed: { from: cursor.delayed_through, to: cursor.delayed_through },
      immediate: { from: cursor.immediate_through, to: cursor.immediate_through },
    });
  });

  it('SETTLEMENT_LAG_SECONDS overrides the horizon, and a bad value is explained', () => {
    expect(settleHorizonMs({})).toBe(900_000);
    expect(settleHorizonMs({ SETTLEMENT_LAG_SECONDS: '5' })).toBe(5_000);
    expect(() => settleHorizonMs({ SETTLEMENT_LAG_SECONDS: '-1' })).toThrow(/SETTLEMENT_LAG_SECONDS '-1' must be a whole number/);
  });
});

describe('classifying entries', () => {
  it('keeps each sign, so the totals always sum to the entries', () => {
    const t = zeroTotals();
    const entries: Array<[string, number]> = [['capture', 10_000], ['fee', -320], ['refund', -2_000], ['conversion', 5_421], ['fx_spread', -54], ['adjustment', -100], ['adjustment', 250], ['conversion', -1_000]];
    for (const [kind, amount] of entries) classify(t, kind, amount);
    expect(t).toEqual({ gross: 14_421, refunds: 2_000, fees: 320, fx: 54, adjustments: 150, entry_count: 8 });
    expect(t.gross - t.refunds - t.fees - t.fx + t.adjustments).toBe(entries.reduce((s, [, a]) => s + a, 0));
  });
});

describe('settlement events', () => {
  const s = (status: Settlement['status']) => ({ status }) as Settlement;
  it('created, then paid or failed once; other changes are none', () => {
    expect(settlementEventType(undefined, s('in_payout'))).toBe('settlement.created');
    expect(settlementEventType(undefined, s('carried_forward'))).toBe('settlement.created');
    expect(settlementEventType(undefined, s('failed'))).toBe('settlement.failed');
    expect(settlementEventType(s('in_payout'), s('paid'))).toBe('settlement.paid');
    expect(settlementEventType(s('in_payout'), s('failed'))).toBe('settlement.failed');
    expect(settlementEventType(s('paid'), s('paid'))).toBeUndefined();
  });
});
