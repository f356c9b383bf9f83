import { open } from '../commons/crypto';
import { ContendedError, InternalError } from '../commons/errors';
import { logger } from '../commons/logger';
import type { Secret } from '../commons/secret';
import { payoutTransfer } from '../ledger/transfers';
import { BANK_ACCOUNT_PURPOSE } from '../merchants/payouts';
import type { PayoutChannel, PayoutRecord } from '../channels/payouts/channel';
import type { Settlement, SettlementStatus } from './settlement';
import { cursorUpdate, getCursor, getSettlement, type SettlementDeps } from './settle';
import { settlementChange } from './subject';

/**
 * Paying a settlement out, the second phase of its reserve (docs/settlement.md § Two-phase payouts):
 *   payout()      sends the net to the merchant's bank; paid → ONE writer transaction: the settlement in_payout →
 *                 paid, the reserve posted, settlement.paid. A transient failure throws PayoutTransientError (the
 *                 Payout state retries it by name, with backoff); a permanent one PayoutFailedError (→ Compensate).
 *   compensate()  asks the rail first: a payout that went through after all is posted, never voided. Otherwise it
 *                 cancels at the rail (after which no retried send can pay) and voids: the settlement → failed, the
 *                 reserve voided (the funds are available again), settlement.failed, and the net added to the
 *                 cursor's carry, so the next settlement pays it.
 * A reserve resolves at most once: the post and the void are conditioned on the settlement being in_payout at its
 * version and on the pending transfer being pending (ledger/transfers.ts), so a duplicate or racing payout /
 * compensate changes nothing and answers with the settlement's status.
 */
/**
 * The message starts with the code (`account_closed: …`): Step Functions hands Compensate only the error's name and
 * a Cause holding its message, and the code is what the settlement records.
 */
export class PayoutTransientError extends InternalError {
  constructor(code: string, message: string) {
    super(code, `${code}: ${message}`);
  }
}
export class PayoutFailedError extends InternalError {
  constructor(code: string, message: string) {
    super(code, `${code}: ${message}`);
  }
}
const CODED = /^([a-z][a-z0-9_]{0,63}): ([\s\S]*)$/;


export interface PayoutDeps extends SettlementDeps {
  channel: PayoutChannel;
  /** The merchant's bank account number from its KMS envelope. @default commons/crypto.ts open, bound to the merchant */
  openBankAccount?: (merchantId: string, ciphertext: Uint8Array) => Promise<Secret<string>>;
}

const MAX_ROUNDS = 5;

export async function payout(i: { settlement_id: string }, deps: PayoutDeps): Promise<{ settlement_id: string; status: 'paid' }> {
  const s = await load(deps, i.settlement_id);
  if (s.status === 'paid') return { settlement_id: s.id, status: 'paid' };
  if (s.status !== 'in_payout') {
    throw new PayoutFailedError(s.payout?.failure_code ?? `settlement_${s.status}`, `Settlement ${s.id} is ${s.status}: there is no reserve to pay out.`);
  }
  const settings = await deps.payoutSettings(s.merchant_id);
  if (!settings.bank_account_ciphertext) {
    throw new PayoutFailedError('bank_account_missing', `Merchant ${s.merchant_id} has no bank account on file; set one with npx payplane merchants payouts set --merchant ${s.merchant_id} --bank-account <digits>.`);
  }
  const open_ = deps.openBankAccount ?? ((merchantId, ciphertext) => open<string>(ciphertext, { purpose: BANK_ACCOUNT_PURPOSE, merchantId, recordId: merchantId }));
  const account = await open_(s.merchant_id, settings.bank_account_ciphertext);
  const result = await deps.channel.send({ settlement_id: s.id, merchant_id: s.merchant_id, amount: s.totals.net, currency: s.currency, bank_account: account });
  if (result.status === 'paid') {
    const status = await markPaid(s, { reference: result.reference, paid_at: result.paid_at, attempts: result.attempts, bank_account_last4: account.reveal().slice(-4) }, deps);
    if (status !== 'paid') throw new InternalError('payout_paid_after_void', `Settlement ${s.id} was paid by the rail (${result.reference}) but is ${status} in the ledger; reconcile it by hand.`);
    return { settlement_id: s.id, status: 'paid' };
  }
  if (result.transient) throw new PayoutTransientError(result.code, `Payout of settlement ${s.id} (attempt ${result.attempts}): ${result.message}`);
  throw new PayoutFailedError(result.code, `Payout of settlement ${s.id} failed for good: ${result.message}`);
}

export async function compensate(i: { settlement_id: string; error?: { Error: string; Cause: string } }, deps: PayoutDeps): Promise<{ settlement_id: string; status: 'paid' | 'failed' }> {
  let s = await load(deps, i.settlement_id);
  if (s.status === 'paid' || s.status === 'failed') return { settlement_id: s.id, status: s.status };
  if (s.status !== 'in_payout') throw new InternalError('settlement_not_in_payout', `Settlement ${s.id} is ${s.status}: it has no payout to compensate.`);

  const seen = await deps.channel.status(s.id);
  const record = seen?.status === 'paid' ? seen : await deps.channel.cancel(s.id);
  if (record.status === 'paid') {
    const status = await markPaid(s, { reference: record.reference!, paid_at: record.paid_at!, attempts: record.attempts, bank_account_last4: record.bank_account_last4 }, deps);
    return { settlement_id: s.id, status: status === 'paid' ? 'paid' : 'failed' };
  }

  const failure = failureOf(record, i.error);
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const now = deps.now();
    const cursor = await getCursor(deps.table, s.merchant_id, s.currency);
    const after: Settlement = { ...s, status: 'failed', payout: { ...s.payout!, status: 'failed', attempts: record.attempts, ...failure } };
    const result = await deps.writer.write({
      objects: [settlementChange(s, after)],
      transfers: [payoutTransfer(refOf(s, deps), 'void', s.totals.net, now)],
      items: { cursor: cursorUpdate(deps.table, s.merchant_id, s.currency, cursor, { carry: (cursor?.carry ?? 0) + s.totals.net }, now) },
      request: null,
      now,
    });
    if (result.committed) {
      logger.warn('settlement payout failed: reserve voided, net carried forward', { settlementId: s.id, code: failure.failure_code });
      return { settlement_id: s.id, status: 'failed' };
    }
    if (result.refused === 'settlement') {
      s = await load(deps, s.id);
      if (s.status === 'paid' || s.status === 'failed') return { settlement_id: s.id, status: s.status };
      continue;
    }
    if (result.refused !== 'cursor' && result.refused !== 'contended') {
      throw new InternalError('settlement_not_written', `Voiding the payout of settlement ${s.id} was refused by ${result.all.join(', ')}.`);
    }
  }
  throw new ContendedError('settlement_contended', `Settlement ${s.id}: the cursor kept moving while the payout was voided; run Compensate again.`);
}

/** in_payout → paid with the reserve posted; the status after (paid, or what another resolver made of it). */
async function markPaid(s: Settlement, paid: { reference: string; paid_at: string; attempts: number; bank_account_last4: string }, deps: PayoutDeps): Promise<SettlementStatus> {
  const now = deps.now();
  const after: Settlement = { ...s, status: 'paid', payout: { ...s.payout!, status: 'paid', ...paid } };
  const result = await deps.writer.write({ objects: [settlementChange(s, after)], transfers: [payoutTransfer(refOf(s, deps), 'post', s.totals.net, now)], request: null, now });
  if (result.committed) return 'paid';
  if (result.refused === 'settlement') return (await load(deps, s.id)).status;
  throw new ContendedError('settlement_contended', `Posting the payout of settlement ${s.id} was refused by ${result.all.join(', ')}; run Payout again (the rail answers the same).`);
}

const refOf = (s: Settlement, deps: Pick<SettlementDeps, 'platform'>) => ({ settlement_id: s.id, merchant_id: s.merchant_id, currency: s.currency, platform: deps.platform });

async function load(deps: SettlementDeps, id: string): Promise<Settlement> {
  const s = await getSettlement(deps.table, id);
  if (!s) throw new InternalError('settlement_not_found', `No settlement ${id}; Payout and Compensate take the settlement_id that Settle returned.`);
  return s;
}

const MAX_MESSAGE = 500;

/** Why the payout failed: the rail's own code if it has one, else the error the state machine caught. */
function failureOf(record: PayoutRecord, error: { Error: string; Cause: string } | undefined): { failure_code: string; failure_message: string } {
  // A failed record is the rail's final word; a canceled one only says what its last attempt met.
  let message = record.status === 'failed' ? record.failure_message : undefined;
  let code = record.status === 'failed' ? record.failure_code : undefined;
  if (error) {
    let cause = error.Cause;
    try {
      const parsed = JSON.parse(error.Cause) as { errorMessage?: string };
      if (parsed.errorMessage) cause = parsed.errorMessage;
    } catch {
      // Not the Lambda error shape: keep the cause as it came.
    }
    const coded = CODED.exec(cause);
    code ??= coded?.[1];
    message ??= coded ? coded[2] : cause;
  }
  code ??= record.failure_code ?? error?.Error;
  message ??= record.failure_message;
  return { failure_code: code ?? 'payout_failed', failure_message: (message ?? 'The payout did not go through.').slice(0, MAX_MESSAGE) };
}
