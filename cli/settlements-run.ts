import { toMajorString } from '../functions/commons/money';
import { DescribeExecutionCommand } from '@aws-sdk/client-sfn';
import type { SettlementRunStarted } from '../functions/operator/operations';
import { parseCutoff, parseRunMerchant } from '../functions/settlements/run';
import { operatorCall } from './operator-client';
import type { RunSummary } from '../functions/settlements/reconcile';
import type { Target } from './target';

/**
 * `payplane settlements run`: one execution of the synthesized settlement state machine (lib/constructs/settlement.ts),
 * started by the operator API (POST /operator/settlement_runs) and watched with DescribeExecution until it closes. The execution's name is the run
 * id the settlements carry (`run-<cutoff>-<random>`); its output is the Summary step's RunSummary.
 */
export interface SettlementRunResult {
  execution_arn: string;
  /** The execution's name: the run id of the settlements it made. */
  run_id: string;
  status: 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED' | string;
  /** The cutoff asked for; absent: Prepare took the start of the current business day. */
  cutoff?: string;
  merchant_id?: string;
  started_at: string;
  stopped_at?: string;
  /** The Summary step's output (settlements made, totals per currency, reconciliation), on success. */
  summary?: RunSummary;
  /** Why the execution failed: the failing step's error (ReconciliationError, States.Timeout…) and cause. */
  error?: string;
  cause?: string;
}

export interface SettlementRunOptions {
  cutoff?: unknown;
  merchantId?: unknown;
  /** First DescribeExecution poll interval; doubles up to 2 s. @default 200 */
  pollMs?: number;
  /** Called once the execution has started (the CLI prints its ARN while it waits). */
  onStarted?: (executionArn: string) => void;
}

export { parseCutoff, runName } from '../functions/settlements/run';

export async function settlementsRun(target: Target, options: SettlementRunOptions): Promise<SettlementRunResult> {
  const cutoff = parseCutoff(options.cutoff);
  const merchantId = parseRunMerchant(options.merchantId);
  const { sfn } = target.settlement();
  // The operator API starts it, with the operator's principal in the input (the run's audit entry names it).
  const started = await operatorCall<SettlementRunStarted>(await target.operator(), 'settlements run', {
    body: { ...(cutoff ? { cutoff } : {}), ...(merchantId ? { merchant_id: merchantId } : {}) },
  });
  const executionArn = started.execution_arn;
  const name = started.run_id;
  options.onStarted?.(executionArn);
  let wait = options.pollMs ?? 200;
  for (;;) {
    const d = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    if (d.status !== 'RUNNING' && d.status !== 'PENDING_REDRIVE') {
      return {
        execution_arn: executionArn,
        run_id: name,
        status: d.status ?? 'UNKNOWN',
        ...(cutoff ? { cutoff } : {}),
        ...(merchantId ? { merchant_id: merchantId } : {}),
        started_at: toIso(d.startDate ?? started.started_at),
        ...(d.stopDate ? { stopped_at: toIso(d.stopDate) } : {}),
        ...(d.status === 'SUCCEEDED' && d.output ? { summary: JSON.parse(d.output) as RunSummary } : {}),
        ...(d.error ? { error: d.error } : {}),
        ...(d.cause ? { cause: d.cause } : {}),
      };
    }
    await new Promise((r) => setTimeout(r, wait));
    wait = Math.min(wait * 2, 2000);
  }
}

const toIso = (d: Date | number | string | undefined) => (d === undefined ? '' : new Date(typeof d === 'number' ? d * 1000 : d).toISOString());

/** The run in words: settlements made, net per currency, failures. */
export function describeRun(result: SettlementRunResult, label: string): string {
  const lines = [`Settlement run ${result.run_id} on the ${label}: ${result.status}${result.cutoff ? ` (cutoff ${result.cutoff})` : ''}.`];
  if (result.status !== 'SUCCEEDED') {
    lines.push(`  ${result.error ?? 'Error'}: ${result.cause ?? '(no cause given)'}`);
    lines.push('  Fix the cause and run again with the same --cutoff: settlements already made are reused, nothing is paid twice.');
    lines.push(`  Execution: ${result.execution_arn}`);
    return lines.join('\n');
  }
  const s = result.summary as Partial<RunSummary> | undefined;
  const byStatus = Object.entries(s?.by_status ?? {}).map(([status, n]) => `${n} ${status}`).join(', ');
  lines.push(`  Settlements made: ${s?.settlements ?? 0}${byStatus ? ` (${byStatus})` : ''}`);
  for (const [currency, c] of Object.entries(s?.currencies ?? {})) {
    const m = (amount: number) => `${toMajorString(amount, currency)}`;
    lines.push(
      `  ${currency}: net ${m(c.net)} (paid ${m(c.paid)}, failed ${m(c.failed)}, carried forward ${m(c.carried_forward)}); ` +
        `gross ${m(c.gross)}, refunds ${m(c.refunds)}, fees ${m(c.fees)}, fx ${m(c.fx)}; ${c.entry_count} entries`,
    );
  }
  if (!s?.settlements) {
    lines.push(
      '  Nothing was available before the cutoff: an entry becomes available after its merchant\'s payout delay ' +
        '(delay_days, default 1: the next business day), and a run never takes entries younger than the settle lag ' +
        '(SETTLEMENT_LAG_SECONDS, 15 minutes outside the test stage).',
    );
  }
  const failures = s?.failures ?? [];
  lines.push(`  Failures: ${failures.length ? '' : 'none'}`);
  for (const f of failures) lines.push(`    ${f.settlement_id}  ${f.merchant_id}  ${f.currency}  ${f.code ?? 'failed'}`);
  if (s?.negative_balances?.count) lines.push(`  Merchants negative past ${s.negative_balances.alert_days} days: ${s.negative_balances.count}`);
  lines.push(`  Reconciled: ${s?.checked?.entries ?? 0} entries, ${s?.checked?.statement_lines ?? 0} statement lines, ${s?.checked?.payout_lines ?? 0} payout lines.`);
  return lines.join('\n');
}
