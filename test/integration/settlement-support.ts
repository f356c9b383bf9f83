import { PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { SANDBOX_PAYOUT_ACCOUNTS, SandboxPayoutChannel } from '../../functions/channels/payouts';
import { dynamo } from '../../functions/commons/clients';
import { seal } from '../../functions/commons/crypto';
import { newId } from '../../functions/commons/ids';
import { Secret } from '../../functions/commons/secret';
import { listEvents } from '../../functions/events/repository';
import { getAccounts, merchantAccount } from '../../functions/ledger';
import { BANK_ACCOUNT_PURPOSE } from '../../functions/merchants/payouts';
import { getCursor, getSettlement } from '../../functions/settlements/settle';
import * as tasks from '../../functions/settlements/tasks';
import { card, CARDS, paymentCase, sandboxWorld } from './payments-world';

/**
 * What the settlement engine's tests share: a merchant with payout settings (its bank account sealed with KMS, as
 * `payplane merchants payouts set` stores it), payments through the real payment service and sandbox channel, and
 * a run of the Task functions in-process in the state machine's order (Prepare → Settle loop → Payout with its
 * Retry → Compensate on failure → Report → Summary), with a clock the case sets: entries are written at the real
 * time, and a settle run only takes what is older than its now − 15 minutes.
 */
export const HORIZON_MS = 16 * 60_000;

export async function putMerchantPayout(table: string, merchantId: string, account: string = SANDBOX_PAYOUT_ACCOUNTS.succeeds, delayDays = 0) {
  const ciphertext = await seal(new Secret(account), { purpose: BANK_ACCOUNT_PURPOSE, merchantId, recordId: merchantId });
  const payout = { settlement_currency: 'USD', delay_days: delayDays, bank_account_last4: account.slice(-4), bank_account_ciphertext: ciphertext, version: 1, updated_at: new Date().toISOString() };
  await dynamo().send(
    new UpdateCommand({
      TableName: table,
      Key: { pk: `MERCHANT#${merchantId}`, sk: 'MERCHANT' },
      UpdateExpression: 'SET #type = if_not_exists(#type, :type), id = :id, #name = if_not_exists(#name, :name), created_at = if_not_exists(created_at, :now), payout = :payout',
      ExpressionAttributeNames: { '#type': 'type', '#name': 'name' },
      ExpressionAttributeValues: { ':type': 'merchant', ':id': merchantId, ':name': 'Settlement test', ':now': new Date().toISOString(), ':payout': payout },
    }),
  );
}

const world = sandboxWorld();

export async function settlementCase(table: string, account: string = SANDBOX_PAYOUT_ACCOUNTS.succeeds) {
  const merchantId = newId('mch');
  await putMerchantPayout(table, merchantId, account);
  const w = paymentCase(table, merchantId, world.sandbox);
  const rail = new SandboxPayoutChannel(() => table);
  /** A paid order of `amount` (card 4242: captured at once, fee charged). */
  const pay = async (amount: number) => {
    const o = await w.order({ amount });
    return w.service.confirm(w.caller(), o.id, card(CARDS.success));
  };
  const refund = (orderId: string, amount: number) => w.service.refund(w.caller(), { order_id: orderId, amount });
  /** A clock that starts at `now` and runs with real time (events of one run keep their order). */
  const deps = (now: Date, over: Partial<tasks.TaskDeps> = {}) => {
    const start = Date.now();
    return tasks.taskDeps({ table, now: () => new Date(now.getTime() + Date.now() - start), channel: rail, platform: w.ledger.platform, ...over });
  };
  /** The merchant's USD ledger account: available headroom = credits_posted − debits_posted − debits_pending. */
  const account_ = async () => {
    const a = (await getAccounts([merchantAccount(merchantId, 'USD')], table)).get(merchantAccount(merchantId, 'USD'))!;
    return { ...a, headroom: a.credits_posted - a.debits_posted - a.debits_pending };
  };
  const events = async () => (await listEvents(table, merchantId, { limit: 100 })).events.filter((e) => e.type.startsWith('settlement.')).reverse();
  return { ...w, merchantId, rail, pay, refund, deps, account: account_, events, cursor: () => getCursor(table, merchantId, 'USD'), settlement: (id: string) => getSettlement(table, id) };
}

export interface RunOutcome {
  settlement_id?: string;
  status?: string;
  net?: number;
  payout_attempts: number;
  errors: string[];
}

/** One merchant's branch of a run, in-process, in the state machine's order. `attempts` is the Payout Retry's. */
export async function runMerchant(item: tasks.SettleItem, deps: tasks.TaskDeps, attempts = 4): Promise<RunOutcome> {
  let r = await tasks.settle(item, deps);
  while (!r.done) r = await tasks.settle(r, deps);
  const out: RunOutcome = { settlement_id: r.settlement_id, status: r.status, net: r.net, payout_attempts: 0, errors: [] };
  if (!r.settlement_id || !(r.net! > 0)) return out;
  for (let attempt = 1; ; attempt++) {
    out.payout_attempts = attempt;
    try {
      out.status = (await tasks.payout({ settlement_id: r.settlement_id }, deps)).status;
      break;
    } catch (error) {
      const e = error as Error;
      out.errors.push(e.name);
      if (e.name === 'PayoutTransientError' && attempt < attempts) continue;
      out.status = (await tasks.compensate({ settlement_id: r.settlement_id, error: { Error: e.name, Cause: JSON.stringify({ errorType: e.name, errorMessage: e.message }) } }, deps)).status;
      break;
    }
  }
  await tasks.report({ settlement_id: r.settlement_id }, deps);
  return out;
}

/** A whole run for one merchant: Prepare (scoped to it), its branches, the Summary. */
export async function runFor(merchantId: string, cutoff: string, deps: tasks.TaskDeps, runId = `run-${cutoff}-${newId('x').slice(2, 10)}`) {
  const prepared = await tasks.prepare({ cutoff, merchant_id: merchantId, run_id: runId }, deps);
  const outcomes = [];
  for (const item of prepared.items) outcomes.push(await runMerchant(item, deps));
  const summary = await tasks.summarize({ cutoff, run_id: runId, days: [cutoff.slice(0, 10)] }, deps);
  return { runId, outcomes, summary };
}

/** The cutoff of "now" for entries just written, and a clock past the settle horizon. */
export function clockAfterEntries(): { cutoff: string; now: Date } {
  const cutoff = new Date().toISOString();
  return { cutoff, now: new Date(Date.parse(cutoff) + HORIZON_MS) };
}

export { PutCommand };
