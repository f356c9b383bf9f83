import { payoutChannel } from '../channels/payouts';
import { dynamo } from '../commons/clients';
import { InvalidRequestError } from '../commons/errors';
import { accountsIndexPage } from '../ledger/balance';
import { compensate as compensatePayout, payout as sendPayout, type PayoutDeps } from './payout';
import { summarize as summarizeRun, type RunSummary, type SummaryDeps } from './reconcile';
import { writeReport } from './report';
import { SettlementStore } from './store';
import { settle as settleOne, settlementDeps, type ScanState, type SettleItem, type SettleResult } from './settle';

/**
 * The settlement state machine's Task states (COMMON.md § The state machine; lib/constructs/settlement.ts wires them,
 * functions/handlers/settlement-<step>.ts are one-line wrappers). Each takes the state's input and returns its
 * output, small and flat: nothing large travels through the execution's state (256 KB), the Summary finds the run's
 * settlements by their gsi2 entry `RUN#<run_id>`.
 *
 * `deps` is for in-process callers (tests, seeded fault runs): a clock, a table, a rail. Handlers pass none.
 */
export type { ScanState, SettleItem, RunSummary };

export interface RunInput {
  cutoff?: string;
  merchant_id?: string;
}

/** Merchant accounts per Prepare page: one Map iteration each (the Map's history: lib/constructs/settlement.ts). */
export const PREPARE_PAGE = 100;

export type TaskDeps = PayoutDeps & SummaryDeps & { preparePage?: number };

let cached: TaskDeps | undefined;
/** The deps of a Lambda container: built once, from the environment. */
export function taskDeps(overrides?: Partial<TaskDeps>): TaskDeps {
  if (overrides) return { ...settlementDeps(overrides), channel: overrides.channel ?? payoutChannel(), ...overrides };
  cached ??= { ...settlementDeps(), channel: payoutChannel() };
  return cached;
}

export async function prepare(
  i: { cutoff?: string; merchant_id?: string; run_id: string; next?: string },
  deps: TaskDeps = taskDeps(),
): Promise<{ cutoff: string; run_id: string; merchant_id?: string; items: SettleItem[]; next?: string }> {
  const now = deps.now();
  const cutoff = i.cutoff ?? now.toISOString();
  const t = new Date(cutoff);
  if (Number.isNaN(t.getTime()) || t.toISOString() !== cutoff) {
    throw new InvalidRequestError('invalid_cutoff', `cutoff '${cutoff}' is not an ISO 8601 UTC time with milliseconds; use e.g. 2026-12-02T00:00:00.000Z.`, { param: 'cutoff' });
  }
  if (t.getTime() > now.getTime()) {
    throw new InvalidRequestError('cutoff_in_future', `cutoff ${cutoff} is after now (${now.toISOString()}); a run settles what became available before its cutoff, so give a time that has passed.`, { param: 'cutoff' });
  }
  const page = await accountsIndexPage({ table: deps.table, merchantId: i.merchant_id, limit: deps.preparePage ?? PREPARE_PAGE, startKey: i.next ? decodeNext(i.next) : undefined });
  const items = page.accounts.map((a) => ({ ...a, cutoff, run_id: i.run_id }));
  return {
    cutoff,
    run_id: i.run_id,
    ...(i.merchant_id ? { merchant_id: i.merchant_id } : {}),
    items,
    ...(page.next ? { next: Buffer.from(JSON.stringify(page.next)).toString('base64url') } : {}),
  };
}

function decodeNext(next: string): Record<string, unknown> {
  try {
    return JSON.parse(Buffer.from(next, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch (error) {
    throw new InvalidRequestError('invalid_next', `next '${next.slice(0, 40)}' is not a page token Prepare returned.`, { param: 'next', cause: error });
  }
}

export async function settle(i: SettleItem, deps: TaskDeps = taskDeps()): Promise<SettleResult> {
  return settleOne(i, deps);
}

export async function payout(i: { settlement_id: string }, deps: TaskDeps = taskDeps()): Promise<{ settlement_id: string; status: 'paid' }> {
  return sendPayout(i, deps);
}

export async function compensate(
  i: { settlement_id: string; error?: { Error: string; Cause: string } },
  deps: TaskDeps = taskDeps(),
): Promise<{ settlement_id: string; status: 'paid' | 'failed' }> {
  return compensatePayout(i, deps);
}

/** The settlement's CSV report and its digests (report.ts, stored with the settlement for the API). */
export async function report(i: { settlement_id: string }, deps: TaskDeps = taskDeps()): Promise<{ settlement_id: string; lines: number; sha256: string }> {
  return writeReport(i.settlement_id, new SettlementStore({ db: dynamo(), table: deps.table }));
}

export async function summarize(i: { cutoff: string; run_id: string; days?: string[] }, deps: TaskDeps = taskDeps()): Promise<RunSummary> {
  return summarizeRun(i, deps);
}
