import { payoutChannel } from '../channels/payouts';
import { dynamo } from '../commons/clients';
import { commitAudited } from '../audit/append';
import { auditPk, PLATFORM_CHAIN } from '../audit/chain';
import type { Actor, AuditContext } from '../audit/context';
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
  /** Who started the run (the operator route puts the IAM principal here); absent: the daily schedule. */
  actor?: Actor;
  /** The operator request that started it; absent: the execution's name. */
  request_id?: string;
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
  i: { cutoff?: string; merchant_id?: string; run_id: string; next?: string; actor?: unknown; request_id?: unknown },
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
  // The run's audit entry, once: on its first page, before anything is settled.
  if (!i.next) await auditRun({ run_id: i.run_id, cutoff, merchant_id: i.merchant_id }, runBy(i), deps);
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

/** The run's starter as its input names it (the operator route's), or the schedule with the execution's name. */
export function runBy(i: { run_id: string; actor?: unknown; request_id?: unknown }): AuditContext {
  const a = i.actor as Partial<Record<string, unknown>> | undefined;
  const actor: Actor | undefined =
    a?.type === 'operator' && typeof a.principal === 'string'
      ? { type: 'operator', principal: a.principal }
      : a?.type === 'system' && typeof a.name === 'string'
        ? { type: 'system', name: a.name }
        : undefined;
  if (a !== undefined && !actor) {
    throw new InvalidRequestError('invalid_actor', `actor ${JSON.stringify(a).slice(0, 120)} is not an operator ({type:'operator', principal}) or the system ({type:'system', name}).`, { param: 'actor' });
  }
  return {
    actor: actor ?? { type: 'system', name: 'settlement-schedule' },
    requestId: typeof i.request_id === 'string' && i.request_id ? i.request_id : i.run_id,
  };
}

/**
 * `settlement.run` on the platform chain. Idempotent per execution: a marker item keyed by the run id joins the
 * entry's transaction, so a retried Prepare (States.Retry) records the run once.
 */
async function auditRun(run: { run_id: string; cutoff: string; merchant_id?: string }, by: AuditContext, deps: TaskDeps): Promise<void> {
  const db = dynamo();
  const marker = {
    pk: auditPk(PLATFORM_CHAIN),
    sk: `RUN#${run.run_id}`,
    type: 'audit_run_marker',
    // Only a retry of the same execution (minutes) needs it.
    ttl: Math.floor(deps.now().getTime() / 1000) + 35 * 86400,
  };
  const result = await commitAudited(
    { db, tableName: deps.table, now: deps.now },
    [{ Put: { TableName: deps.table, Item: marker, ConditionExpression: 'attribute_not_exists(pk)' } }],
    { action: 'settlement.run', target: { type: 'settlement_run', id: run.run_id }, after: { run_id: run.run_id, cutoff: run.cutoff, merchant_id: run.merchant_id ?? null } },
    by,
  );
  if (!result.committed && result.reasons[0] !== 'ConditionalCheckFailed') {
    throw new Error(`Recording settlement run ${run.run_id} in the audit trail was cancelled (${result.reasons.join(', ')}); Prepare's retry records it.`);
  }
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
