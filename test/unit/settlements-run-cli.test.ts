import { describe, expect, it } from 'vitest';
import { describeRun, parseCutoff, runName, type SettlementRunResult } from '../../cli/settlements-run';

/** `payplane settlements run`: its arguments, the execution's name, and what it prints (cli/settlements-run.ts). */
describe('settlements run', () => {
  it('takes an ISO 8601 cutoff with a zone, in UTC with milliseconds; anything else is refused with the fix', () => {
    expect(parseCutoff('2026-12-02T08:00:00+08:00')).toBe('2026-12-02T00:00:00.000Z');
    expect(parseCutoff(undefined)).toBeUndefined();
    for (const bad of ['yesterday', '2026-12-02', '2026-12-02T00:00:00', '2026-13-02T00:00:00Z']) {
      expect(() => parseCutoff(bad), bad).toThrow(/Invalid --cutoff: got ".*"\. Give an ISO 8601 time with its zone, e\.g\. --cutoff 2026-12-02T00:00:00Z\./);
    }
  });

  it('names executions run-<cutoff>-<8 hex>: a valid Step Functions name (no colons), different each time', () => {
    const a = runName('2026-12-02T00:00:00.000Z');
    expect(a).toMatch(/^run-20261202T000000Z-[0-9a-f]{8}$/);
    expect(runName('2026-12-02T00:00:00.000Z')).not.toBe(a);
    expect(runName(undefined)).toMatch(/^run-today-[0-9a-f]{8}$/);
  });

  it('prints settlements, net per currency and failures; a failed run, its error and what to do', () => {
    const base = { execution_arn: 'arn:aws:states:us-east-1:0:execution:m:run-x', run_id: 'run-x', started_at: '' };
    const ok: SettlementRunResult = {
      ...base,
      status: 'SUCCEEDED',
      summary: {
        run_id: 'run-x',
        cutoff: 'c',
        settlements: 2,
        by_status: { paid: 1, failed: 1 },
        currencies: { USD: { gross: 10_000, refunds: 0, fees: 320, fx: 0, adjustments: 0, entry_count: 4, carried_in: 0, net: 9_680, paid: 4_840, failed: 4_840, carried_forward: 0, in_payout: 0 } },
        failures: [{ settlement_id: 'stl_a', merchant_id: 'mch_b', currency: 'USD', code: 'account_closed' }],
        checked: { entries: 4, statement_days: [], statement_lines: 4, payout_lines: 1, timing_differences: 0 },
        negative_balances: { count: 0, alert_days: 7, merchants: [] },
      },
    };
    const text = describeRun(ok, 'local cloud');
    expect(text).toContain('Settlements made: 2 (1 paid, 1 failed)');
    expect(text).toContain('USD: net 96.80 (paid 48.40, failed 48.40, carried forward 0.00)');
    expect(text).toContain('stl_a  mch_b  USD  account_closed');
    const failed = describeRun({ ...base, status: 'FAILED', error: 'ReconciliationError', cause: 'Run run-x: 1 reconciliation break: …' }, 'local cloud');
    expect(failed).toContain('ReconciliationError: Run run-x: 1 reconciliation break');
    expect(failed).toContain('run again with the same --cutoff');
  });
});
