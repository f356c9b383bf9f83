import type { Secret } from '../../commons/secret';

/**
 * The one interface a payout rail implements (bank transfer, in platform terms): the settlement engine
 * (settlements/payout.ts) pays a settlement's net to the merchant's bank account through it. Amounts are integers
 * in the currency's minor unit.
 *
 * Idempotency: everything is keyed by the settlement id. A repeated `send` returns the first final answer without
 * paying again (or a refusal, `id_reused`, with another amount or currency); once `cancel` has stopped a payout,
 * no later `send` pays it. A payout resolves once: `paid`, `failed` or `canceled`, never two of them.
 */
export interface PayoutChannel {
  readonly id: PayoutChannelId;
  /** Pays `amount` to the account, or says why not. `transient` failures may succeed if sent again. */
  send(request: PayoutRequest): Promise<PayoutResult>;
  /** The rail's record of a settlement's payout; undefined if it never received one. */
  status(settlementId: string): Promise<PayoutRecord | undefined>;
  /** Stops a payout that is not paid (the compensation): the answer is the record after, `paid` if too late. */
  cancel(settlementId: string): Promise<PayoutRecord>;
  /** The payouts paid on a UTC day (YYYY-MM-DD), as the rail's statement lists them, by paid_at. */
  statement(day: string): Promise<PayoutStatementLine[]>;
}

export type PayoutChannelId = 'sandbox';

export interface PayoutRequest {
  settlement_id: string;
  merchant_id: string;
  amount: number;
  currency: string;
  /** The bank account number, digits only, opened from its KMS envelope just for this call. */
  bank_account: Secret<string>;
}

export type PayoutResult =
  | { status: 'paid'; reference: string; paid_at: string; attempts: number }
  | { status: 'failed'; transient: boolean; code: string; message: string; attempts: number };

export interface PayoutRecord {
  settlement_id: string;
  status: 'pending' | 'paid' | 'failed' | 'canceled';
  amount: number;
  currency: string;
  attempts: number;
  bank_account_last4: string;
  reference?: string;
  paid_at?: string;
  failure_code?: string;
  failure_message?: string;
}

export interface PayoutStatementLine {
  settlement_id: string;
  merchant_id: string;
  amount: number;
  currency: string;
  reference: string;
  paid_at: string;
}
