import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, QueryCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '../../commons/clients';
import { required } from '../../commons/config';
import { InternalError } from '../../commons/errors';
import { randomBase62 } from '../../commons/ids';
import { SANDBOX_RETENTION_SECONDS } from '../sandbox/store';
import type { PayoutChannel, PayoutRecord, PayoutRequest, PayoutResult, PayoutStatementLine } from './channel';

/**
 * The sandbox payout rail: a simulated bank transfer, kept in the main table (the "bank side", like the sandbox
 * payment channel's trades):
 *   payout          pk SANDBOXPAYOUT#<settlement id>       sk PAYOUT                  one per settlement, ever
 *   statement line  pk SANDBOXPAYOUTSTMT#<YYYY-MM-DD>      sk <paid_at>#<settlement>  written with the payout's `paid`
 * both with a TTL of 400 days, as the sandbox's trades (docs/data.md).
 *
 * Deterministic accounts, by the last 4 digits of the account number (docs/settlement.md § Sandbox payout accounts):
 *   …0119  fails twice with `bank_unavailable` (transient), then succeeds: Step Functions' Retry gets it through
 *   …0002  fails for good with `account_closed`: the compensation voids the reserve
 *   other  succeeds at once
 * Every write is conditioned on the record as read (status and attempts), so concurrent sends pay once.
 */
export const SANDBOX_PAYOUT_ACCOUNTS = {
  succeeds: '000123456789',
  transientTwice: '000123450119',
  closed: '000123450002',
} as const;

const TRANSIENT_FAILURES = 2;
const MAX_RACES = 4;
const ACCOUNT = /^\d{4,34}$/;

const payoutKey = (settlementId: string) => ({ pk: `SANDBOXPAYOUT#${settlementId}`, sk: 'PAYOUT' });
const lineKey = (paidAt: string, settlementId: string) => ({ pk: `SANDBOXPAYOUTSTMT#${paidAt.slice(0, 10)}`, sk: `${paidAt}#${settlementId}` });
/** The rail's records go as the sandbox's trades do (docs/data.md): after the statements' reconciliation needs them. */
const ttlOf = (at: string) => Math.floor(Date.parse(at) / 1000) + SANDBOX_RETENTION_SECONDS;

interface StoredPayout extends PayoutRecord {
  merchant_id: string;
  created_at: string;
  updated_at: string;
}

export class SandboxPayoutChannel implements PayoutChannel {
  readonly id = 'sandbox' as const;

  constructor(
    private readonly table: () => string = () => required('TABLE_NAME'),
    private readonly now: () => Date = () => new Date(),
  ) {}

  async send(request: PayoutRequest): Promise<PayoutResult> {
    const account = request.bank_account.reveal();
    for (let race = 0; race < MAX_RACES; race++) {
      const record = await this.record(request.settlement_id);
      if (record) {
        if (record.status === 'canceled') return { status: 'failed', transient: false, code: 'canceled', message: 'The payout was canceled before it was paid.', attempts: record.attempts };
        if (record.amount !== request.amount || record.currency !== request.currency) {
          throw new InternalError(
            'payout_id_reused',
            `Settlement ${request.settlement_id} was sent for ${record.amount} ${record.currency}, now for ${request.amount} ${request.currency}; a settlement's payout never changes.`,
          );
        }
        const final = resultOf(record);
        if (final) return final;
      }
      const attempts = (record?.attempts ?? 0) + 1;
      const now = this.now().toISOString();
      const last4 = account.slice(-4);
      const base: StoredPayout = {
        settlement_id: request.settlement_id,
        merchant_id: request.merchant_id,
        status: 'pending',
        amount: request.amount,
        currency: request.currency,
        attempts,
        bank_account_last4: last4,
        created_at: record?.created_at ?? now,
        updated_at: now,
      };
      let next: StoredPayout;
      if (!ACCOUNT.test(account)) next = { ...base, status: 'failed', failure_code: 'invalid_account', failure_message: 'The account number must be 4 to 34 digits.' };
      else if (last4 === '0002') next = { ...base, status: 'failed', failure_code: 'account_closed', failure_message: 'The bank account is closed.' };
      else if (last4 === '0119' && attempts <= TRANSIENT_FAILURES) next = { ...base, failure_code: 'bank_unavailable', failure_message: 'The bank did not answer; send again.' };
      else next = { ...base, status: 'paid', reference: `po_${randomBase62(20)}`, paid_at: now };
      if (!(await this.write(record, next))) continue; // lost a race: read the winner's record
      return resultOf(next) ?? { status: 'failed', transient: true, code: next.failure_code!, message: next.failure_message!, attempts };
    }
    throw new InternalError('payout_contended', `Payout of settlement ${request.settlement_id}: lost ${MAX_RACES} races at the sandbox rail.`);
  }

  async status(settlementId: string): Promise<PayoutRecord | undefined> {
    const record = await this.record(settlementId);
    return record && publicRecord(record);
  }

  async cancel(settlementId: string): Promise<PayoutRecord> {
    const now = this.now().toISOString();
    try {
      // A record that does not exist yet is created canceled: a send that arrives later never pays.
      const { Attributes } = await dynamo().send(
        new UpdateCommand({
          TableName: this.table(),
          Key: payoutKey(settlementId),
          UpdateExpression:
            'SET #type = :type, settlement_id = :id, #status = :canceled, updated_at = :now, created_at = if_not_exists(created_at, :now), #ttl = if_not_exists(#ttl, :ttl), amount = if_not_exists(amount, :zero), currency = if_not_exists(currency, :none), attempts = if_not_exists(attempts, :zero), bank_account_last4 = if_not_exists(bank_account_last4, :none)',
          ConditionExpression: 'attribute_not_exists(pk) OR #status = :pending',
          ExpressionAttributeNames: { '#type': 'type', '#status': 'status', '#ttl': 'ttl' },
          ExpressionAttributeValues: { ':ttl': ttlOf(now), ':type': 'sandbox_payout', ':id': settlementId, ':canceled': 'canceled', ':pending': 'pending', ':now': now, ':zero': 0, ':none': '' },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return publicRecord(Attributes as StoredPayout);
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      return publicRecord((await this.record(settlementId))!); // paid, failed or canceled already: that stands
    }
  }

  async statement(day: string): Promise<PayoutStatementLine[]> {
    const lines: PayoutStatementLine[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await dynamo().send(
        new QueryCommand({ TableName: this.table(), KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': `SANDBOXPAYOUTSTMT#${day}` }, ExclusiveStartKey: start }),
      );
      for (const item of page.Items ?? []) {
        lines.push({ settlement_id: item.settlement_id, merchant_id: item.merchant_id, amount: item.amount, currency: item.currency, reference: item.reference, paid_at: item.paid_at });
      }
      start = page.LastEvaluatedKey;
    } while (start);
    return lines;
  }

  private async record(settlementId: string): Promise<StoredPayout | undefined> {
    const { Item } = await dynamo().send(new GetCommand({ TableName: this.table(), Key: payoutKey(settlementId), ConsistentRead: true }));
    return Item as StoredPayout | undefined;
  }

  /** Writes `next` if the record is still as read; false when another writer moved it first. */
  private async write(before: StoredPayout | undefined, next: StoredPayout): Promise<boolean> {
    const put = {
      TableName: this.table(),
      Item: { ...payoutKey(next.settlement_id), type: 'sandbox_payout', ttl: ttlOf(next.created_at), ...next },
      ...(before
        ? { ConditionExpression: '#status = :pending AND attempts = :attempts', ExpressionAttributeNames: { '#status': 'status' }, ExpressionAttributeValues: { ':pending': 'pending', ':attempts': before.attempts } }
        : { ConditionExpression: 'attribute_not_exists(pk)' }),
    };
    try {
      if (next.status !== 'paid') {
        await dynamo().send(new PutCommand(put));
        return true;
      }
      // The statement line in the same transaction as the payment: the rail's statement is its record of payments.
      const line = { ...lineKey(next.paid_at!, next.settlement_id), type: 'sandbox_payout_line', ttl: ttlOf(next.paid_at!), settlement_id: next.settlement_id, merchant_id: next.merchant_id, amount: next.amount, currency: next.currency, reference: next.reference, paid_at: next.paid_at };
      await dynamo().send(new TransactWriteCommand({ TransactItems: [{ Put: put }, { Put: { TableName: this.table(), Item: line, ConditionExpression: 'attribute_not_exists(pk)' } }] }));
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException || error instanceof TransactionCanceledException) return false;
      throw error;
    }
  }
}

function resultOf(r: PayoutRecord): PayoutResult | undefined {
  if (r.status === 'paid') return { status: 'paid', reference: r.reference!, paid_at: r.paid_at!, attempts: r.attempts };
  if (r.status === 'failed') return { status: 'failed', transient: false, code: r.failure_code ?? 'failed', message: r.failure_message ?? 'The payout failed.', attempts: r.attempts };
  return undefined;
}

function publicRecord(r: StoredPayout): PayoutRecord {
  return {
    settlement_id: r.settlement_id,
    status: r.status,
    amount: r.amount,
    currency: r.currency,
    attempts: r.attempts,
    bank_account_last4: r.bank_account_last4,
    ...(r.reference ? { reference: r.reference } : {}),
    ...(r.paid_at ? { paid_at: r.paid_at } : {}),
    ...(r.failure_code ? { failure_code: r.failure_code } : {}),
    ...(r.failure_message ? { failure_message: r.failure_message } : {}),
  };
}
