import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetExecutionHistoryCommand, SFNClient, type HistoryEvent } from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient, GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { SANDBOX_PAYOUT_ACCOUNTS } from '../../functions/channels/payouts';
import { merchantAccount, accountKey } from '../../functions/ledger/accounts';
import { payoutTransferIds, transferKey } from '../../functions/ledger/transfers';
import type { SettlementRunResult } from '../../cli/settlements-run';
import type { FaultSpec } from '../../local/faults';
import { paidOrder } from './payments-support';
import { call, cloud, newMerchant, payplane } from './support';

/**
 * Settlement's named scenarios (issue 10 §6), through the local cloud: merchants and payments through the API (test
 * card 4242), payout settings and bank accounts set with `payplane merchants payouts set`, and `payplane settlements run` as
 * finance runs it: StartExecution of the template's state machine, whose Task states run in the Lambda runtime with
 * their roles. Each scenario asserts on the execution's history (GetExecutionHistory) and on the money (the
 * settlement, the ledger, the sandbox payout rail). The test stage's windows end 10 s behind now (SETTLEMENT_LAG_SECONDS,
 * lib/stage-config.ts), so the payments are made first, once, and the runs start when they are 10 s old.
 */
const LAG_MS = 10_000;
let db: DynamoDBDocumentClient;
let sfn: SFNClient;
let table: string;

interface Merchant {
  id: string;
  key: string;
  gross: number;
}
const merchants: Record<'happy' | 'transient' | 'closed' | 'crash' | 'concurrent' | 'nothing' | 'fx', Merchant> = {} as never;

async function withPayout(account: string, payments: number[], currency = 'USD'): Promise<Merchant> {
  const m = await newMerchant('Settlement e2e');
  // As finance sets it up: delay 0 (today's payments are available), the sandbox account that picks the path.
  const set = await payplane('merchants', 'payouts', 'set', '--merchant', m.id, '--currency', 'USD', '--delay-days', '0', '--bank-account', account);
  expect(set.code, set.stderr).toBe(0);
  for (const amount of payments) await paidOrder(m.key, { amount, currency });
  return { ...m, gross: payments.reduce((a, b) => a + b, 0) };
}

beforeAll(async () => {
  const c = cloud();
  table = c.tables.main!;
  const admin = { region: c.region, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } };
  db = DynamoDBDocumentClient.from(new DynamoDBClient({ ...admin, endpoint: c.endpoints.dynamodb }));
  sfn = new SFNClient({ ...admin, endpoint: c.endpoints.sfn });
  // A rate for the cross-border merchant's EUR orders (settled in USD), set as finance sets it.
  const fx = await payplane('fx', 'set', 'EUR', 'USD', '1.0845', '--markup-bps', '100');
  expect(fx.code, fx.stderr).toBe(0);
  const made = await Promise.all([
    withPayout(SANDBOX_PAYOUT_ACCOUNTS.succeeds, [2500, 4000]),
    withPayout(SANDBOX_PAYOUT_ACCOUNTS.transientTwice, [3000]),
    withPayout(SANDBOX_PAYOUT_ACCOUNTS.closed, [5000]),
    withPayout(SANDBOX_PAYOUT_ACCOUNTS.succeeds, [1500, 1500]),
    withPayout(SANDBOX_PAYOUT_ACCOUNTS.succeeds, [7000]),
    withPayout(SANDBOX_PAYOUT_ACCOUNTS.succeeds, []),
    withPayout(SANDBOX_PAYOUT_ACCOUNTS.succeeds, [10_000], 'EUR'),
  ]);
  [merchants.happy, merchants.transient, merchants.closed, merchants.crash, merchants.concurrent, merchants.nothing, merchants.fx] = made;
  await new Promise((r) => setTimeout(r, LAG_MS + 1_500));
}, 120_000);

async function run(...args: string[]): Promise<{ code: number; result: SettlementRunResult; stderr: string }> {
  const out = await payplane('settlements', 'run', '--json', ...args);
  return { code: out.code, result: JSON.parse(out.stdout) as SettlementRunResult, stderr: out.stderr };
}

async function history(executionArn: string): Promise<HistoryEvent[]> {
  const events: HistoryEvent[] = [];
  let nextToken: string | undefined;
  do {
    const page = await sfn.send(new GetExecutionHistoryCommand({ executionArn, nextToken, maxResults: 500 }));
    events.push(...(page.events ?? []));
    nextToken = page.nextToken;
  } while (nextToken);
  return events;
}
/** The states entered, in order (Map iterations' states included). */
const entered = (events: HistoryEvent[]) => events.filter((e) => e.type?.endsWith('StateEntered')).map((e) => e.stateEnteredEventDetails!.name!);
/** Each Lambda task's outcomes in order: 'ok', or the error it failed with. */
const outcomes = (events: HistoryEvent[]) =>
  events.filter((e) => e.type === 'LambdaFunctionSucceeded' || e.type === 'LambdaFunctionFailed').map((e) => (e.type === 'LambdaFunctionSucceeded' ? 'ok' : e.lambdaFunctionFailedEventDetails!.error!));

async function settlementsOf(merchantId: string) {
  const page = await db.send(
    new QueryCommand({ TableName: table, IndexName: 'gsi1', KeyConditionExpression: 'gsi1pk = :pk AND begins_with(gsi1sk, :s)', ExpressionAttributeValues: { ':pk': `MERCHANT#${merchantId}`, ':s': 'SETTLEMENT#' } }),
  );
  return (page.Items ?? []) as { id: string; status: string; totals: { gross: number; fees: number; net: number; entry_count: number }; payout?: { attempts: number; failure_code?: string } }[];
}
const get = async (key: { pk: string; sk: string }) => (await db.send(new GetCommand({ TableName: table, Key: key, ConsistentRead: true }))).Item;
const railOf = (settlementId: string) => get({ pk: `SANDBOXPAYOUT#${settlementId}`, sk: 'PAYOUT' });
const accountOf = async (merchantId: string) => (await get(accountKey(merchantAccount(merchantId, 'USD'))))!;
async function eventTypes(key: string): Promise<string[]> {
  const res = await call('GET', '/v1/events?limit=100', { key });
  expect(res.status, res.text).toBe(200);
  return (res.body.data as { type: string }[]).map((e) => e.type).filter((t) => t.startsWith('settlement.'));
}

describe('settlement scenarios through the local cloud', () => {
  it('happy path: one settlement, paid in one attempt, reported and reconciled; the merchant\'s balance went out', async () => {
    const m = merchants.happy;
    // Act
    const { code, result } = await run('--merchant', m.id);
    // Assess: the run
    expect(code, result.cause).toBe(0);
    expect(result).toMatchObject({ status: 'SUCCEEDED', summary: { settlements: 1, by_status: { paid: 1 }, failures: [] } });
    const events = await history(result.execution_arn);
    expect(entered(events)).toEqual(['Prepare', 'EachAccount', 'Settle', 'Settled?', 'Settlement made?', 'Pay?', 'Payout', 'Report', 'AccountDone', 'More pages?', 'Summary']);
    expect(outcomes(events)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
    // The money: net = gross − fees, paid once at the rail, posted in the ledger; nothing left with the merchant.
    const [s] = await settlementsOf(m.id);
    expect(s).toMatchObject({ status: 'paid', totals: { gross: m.gross, entry_count: 4 } });
    expect(s!.totals.net).toBe(s!.totals.gross - s!.totals.fees);
    expect(await railOf(s!.id)).toMatchObject({ status: 'paid', amount: s!.totals.net, attempts: 1 });
    expect((await get(transferKey(payoutTransferIds.post(s!.id))))?.amount).toBe(s!.totals.net);
    const a = await accountOf(m.id);
    expect([a.credits_posted - a.debits_posted, a.debits_pending]).toEqual([0, 0]);
    expect(await eventTypes(m.key)).toEqual(expect.arrayContaining(['settlement.created', 'settlement.paid']));
    // Assess: a second run pays nothing twice (nothing new to take).
    const again = await run('--merchant', m.id);
    expect(again.code).toBe(0);
    expect(await settlementsOf(m.id)).toHaveLength(1);
    expect(outcomes(await history(again.result.execution_arn))).not.toContain('PayoutTransientError');
  });

  it('transient payout failure (account …0119): Retry with backoff twice, then paid', async () => {
    const m = merchants.transient;
    const { code, result } = await run('--merchant', m.id);
    expect(code, result.cause).toBe(0);
    const events = await history(result.execution_arn);
    expect(outcomes(events)).toEqual(['ok', 'ok', 'PayoutTransientError', 'PayoutTransientError', 'ok', 'ok', 'ok']);
    expect(entered(events)).not.toContain('Compensate');
    const [s] = await settlementsOf(m.id);
    expect(s).toMatchObject({ status: 'paid' });
    expect(await railOf(s!.id)).toMatchObject({ status: 'paid', amount: s!.totals.net, attempts: 3 });
  });

  it('permanent payout failure (account …0002): Catch → Compensate voids the reserve, funds back, settlement.failed', async () => {
    const m = merchants.closed;
    const { code, result } = await run('--merchant', m.id);
    // The run itself succeeds: a failed payout is the merchant's, reported, not a broken run.
    expect(code, result.cause).toBe(0);
    expect(result.summary).toMatchObject({ by_status: { failed: 1 }, failures: [{ merchant_id: m.id, code: 'account_closed' }] });
    const events = await history(result.execution_arn);
    expect(entered(events)).toEqual(['Prepare', 'EachAccount', 'Settle', 'Settled?', 'Settlement made?', 'Pay?', 'Payout', 'Compensate', 'Report', 'AccountDone', 'More pages?', 'Summary']);
    expect(outcomes(events)).toEqual(['ok', 'ok', 'PayoutFailedError', 'ok', 'ok', 'ok']);
    const [s] = await settlementsOf(m.id);
    expect(s).toMatchObject({ status: 'failed', payout: { failure_code: 'account_closed' } });
    expect(await get(transferKey(payoutTransferIds.void(s!.id)))).toBeDefined();
    expect(await get(transferKey(payoutTransferIds.post(s!.id)))).toBeUndefined();
    // Funds back: nothing reserved, the net available again (carried into the next settlement).
    const a = await accountOf(m.id);
    expect([a.credits_posted - a.debits_posted, a.debits_pending]).toEqual([s!.totals.net, 0]);
    expect(await eventTypes(m.key)).toContain('settlement.failed');
  });

  it('a crash between steps (Settle dies after its commit), then a run again for the same cutoff: exactly once', async () => {
    const m = merchants.crash;
    const res = await fetch(`${cloud().endpoints.admin}/__faults`, {
      method: 'POST',
      body: JSON.stringify({ function: 'SettlementSettle', operation: 'TransactWriteItems', when: 'after', event: m.id } satisfies FaultSpec),
    });
    expect(res.status).toBe(201);
    const cutoff = new Date().toISOString();
    // Act: the first run dies with the settlement committed but unpaid.
    const first = await run('--merchant', m.id, '--cutoff', cutoff);
    expect(first.code).toBe(1);
    expect(first.result.status).toBe('FAILED');
    expect(await settlementsOf(m.id)).toMatchObject([{ status: 'in_payout' }]);
    // Act: finance runs the same cutoff again.
    const again = await run('--merchant', m.id, '--cutoff', cutoff);
    // Assess: the same settlement, paid once.
    expect(again.code, again.result.cause).toBe(0);
    const all = await settlementsOf(m.id);
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({ status: 'paid', totals: { gross: m.gross } });
    expect(await railOf(all[0]!.id)).toMatchObject({ status: 'paid', attempts: 1, amount: all[0]!.totals.net });
    expect(entered(await history(again.result.execution_arn))).toContain('Payout');
  });

  it('two concurrent runs: one settles and pays, the other finds nothing left', async () => {
    const m = merchants.concurrent;
    const [a, b] = await Promise.all([run('--merchant', m.id), run('--merchant', m.id)]);
    expect([a.code, b.code], `${a.result.cause} ${b.result.cause}`).toEqual([0, 0]);
    const all = await settlementsOf(m.id);
    const paid = all.filter((s) => s.totals.net > 0);
    expect(paid).toHaveLength(1);
    expect(paid[0]).toMatchObject({ status: 'paid', totals: { gross: m.gross } });
    expect(await railOf(paid[0]!.id)).toMatchObject({ status: 'paid', attempts: 1 });
    const acct = await accountOf(m.id);
    expect([acct.credits_posted - acct.debits_posted, acct.debits_pending]).toEqual([0, 0]);
    const payouts = [...(await history(a.result.execution_arn)), ...(await history(b.result.execution_arn))].filter((e) => e.type === 'TaskStateEntered' && e.stateEnteredEventDetails?.name === 'Payout');
    expect(payouts.length).toBeLessThanOrEqual(2);
  });

  it('a merchant with nothing to settle: no settlement, no payout, a clean summary', async () => {
    const m = merchants.nothing;
    const { code, result } = await run('--merchant', m.id);
    expect(code, result.cause).toBe(0);
    expect(result.summary).toMatchObject({ settlements: 0 });
    expect(entered(await history(result.execution_arn))).not.toContain('Payout');
    expect(await settlementsOf(m.id)).toEqual([]);
  });

  it('a cross-border merchant: EUR orders settle in USD at the locked rate, the spread apart, paid once', async () => {
    const m = merchants.fx;
    const { code, result } = await run('--merchant', m.id);
    expect(code, result.cause).toBe(0);
    expect(outcomes(await history(result.execution_arn))).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
    const all = await settlementsOf(m.id);
    expect(all).toHaveLength(1);
    const s = all[0] as (typeof all)[number] & { currency: string; totals: { fx: number; refunds: number } };
    // 100.00 EUR at the base rate 1.0845 is about 108.45 USD; the 1 % markup is the fx spread, kept apart from fees.
    expect(s).toMatchObject({ currency: 'USD', status: 'paid' });
    expect(Math.abs(s.totals.gross - 10_845)).toBeLessThanOrEqual(1);
    expect(s.totals.fx).toBeGreaterThan(0);
    expect(s.totals.net).toBe(s.totals.gross - s.totals.refunds - s.totals.fees - s.totals.fx);
    expect(await railOf(s.id)).toMatchObject({ status: 'paid', amount: s.totals.net, currency: 'USD' });
    expect(result.summary).toMatchObject({ currencies: { USD: { fx: s.totals.fx } } });
  });

  it('refuses a bad --cutoff with the fix, before starting anything (exit 2)', async () => {
    const out = await payplane('settlements', 'run', '--cutoff', 'yesterday');
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/Invalid --cutoff: got "yesterday".*e\.g\. --cutoff 20\d\d-/);
  });
});
