import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import * as z from 'zod';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '../commons/clients';
import { open } from '../commons/crypto';
import { logger } from '../commons/logger';
import { Secret } from '../commons/secret';
import { eventKey, type EventItem, type PlatformEvent } from '../events/event';
import { getMerchant, RECEIPTS_OFF } from '../merchants/repository';
import type { Payer, PayerLocale } from '../orders/order';
import { PaymentRepository } from '../payments/repository';
import type { PaymentOrder, Refund } from '../payments/payment';
import { ReceiptClaims, type ReceiptChannel } from './claims';
import { receiptsConfig } from './config';
import { sesEmail, snsSms, type EmailSender, type SmsSender } from './providers';
import { renderReceipt, type ReceiptFacts } from './templates';

/**
 * The receipts sender: one message `{"event_id","merchant_id"}` per order.succeeded / refund.succeeded event
 * (sent by the publisher to the receipts queue) → the payer's receipt by email (SES) and SMS (SNS).
 *
 *   validate the message → load the event item, the merchant's receipt settings, the order (and the refund)
 *   → decide which channels apply (the merchant turned it on, the order has the contact) and render
 *   → per channel: claim (claims.ts) → send → mark sent, or release the claim on failure.
 *
 * The payer's email and phone are opened here and nowhere else (purpose 'payer'); they stay in Secrets and are
 * never logged. A failed channel fails the message (batch item failure): SQS redelivers it, the channel already
 * sent is not sent again, and after the queue's maxReceiveCount the message waits in the dead-letter queue.
 */

const messageSchema = z.object({
  event_id: z.string().regex(/^evt_[A-Za-z0-9]{1,64}$/),
  merchant_id: z.string().regex(/^mch_[A-Za-z0-9]{1,64}$/),
});

export type ChannelOutcome = 'sent' | 'already_sent' | 'in_progress' | 'off' | 'no_contact';

export interface MessageOutcome {
  /** Why nothing was looked at further; absent when the event was a receipt's. */
  skipped?: 'event_not_found' | 'not_a_receipt_event' | 'order_not_found' | 'refund_not_found';
  channels: Partial<Record<ReceiptChannel, ChannelOutcome>>;
}

export interface ReceiptsDeps {
  table: string;
  from: string;
  configurationSet?: string;
  email: EmailSender;
  sms: SmsSender;
  now: () => Date;
}

export function defaultDeps(): ReceiptsDeps {
  const config = receiptsConfig();
  return {
    table: config.TABLE_NAME,
    from: config.RECEIPTS_EMAIL_FROM,
    configurationSet: config.RECEIPTS_CONFIGURATION_SET,
    email: sesEmail,
    sms: snsSms,
    now: () => new Date(),
  };
}

/** A channel's send failed; the message goes back to the queue. */
export class ReceiptSendError extends Error {
  constructor(
    readonly channel: ReceiptChannel,
    readonly eventId: string,
    cause: unknown,
  ) {
    super(`Sending the ${channel} receipt of ${eventId} failed: ${(cause as Error)?.name ?? 'Error'}`, { cause });
    this.name = 'ReceiptSendError';
  }
}

export async function sendReceipts(event: SQSEvent, deps: ReceiptsDeps = defaultDeps()): Promise<SQSBatchResponse> {
  const results = await Promise.allSettled(event.Records.map((record) => processRecord(record, deps)));
  const batchItemFailures = results.flatMap((r, i) => {
    if (r.status === 'fulfilled') return [];
    const record = event.Records[i]!;
    // The error names the channel, the event and the provider's error type: never an address or a number.
    logger.error('receipt not sent; the message will be retried', { messageId: record.messageId, error: r.reason as Error });
    return [{ itemIdentifier: record.messageId }];
  });
  return { batchItemFailures };
}

function processRecord(record: SQSRecord, deps: ReceiptsDeps): Promise<MessageOutcome> {
  let body: unknown;
  try {
    body = JSON.parse(record.body);
  } catch {
    body = undefined;
  }
  const parsed = messageSchema.safeParse(body);
  // A malformed message never succeeds: failing it sends it to the dead-letter queue for an operator to see.
  if (!parsed.success) return Promise.reject(new Error(`Receipt message ${record.messageId} is not {"event_id":"evt_…","merchant_id":"mch_…"}`));
  return sendReceipt(parsed.data, deps);
}

/** One event's receipts. Exported for tests that drive a message without a queue. */
export async function sendReceipt(message: { event_id: string; merchant_id: string }, deps: ReceiptsDeps): Promise<MessageOutcome> {
  const { event_id: eventId, merchant_id: merchantId } = message;
  const log = { eventId, merchantId };
  // ── load ──
  const { Item } = await dynamo().send(new GetCommand({ TableName: deps.table, Key: eventKey(merchantId, eventId), ConsistentRead: true }));
  const item = Item as EventItem | undefined;
  // Past its 30 days (TTL) or never written: nothing to tell the payer about any more.
  if (!item || item.merchant_id !== merchantId) return skip('event_not_found', log);
  if (item.event_type !== 'order.succeeded' && item.event_type !== 'refund.succeeded') return skip('not_a_receipt_event', log);
  const event = JSON.parse(item.body) as PlatformEvent;
  const payments = new PaymentRepository(deps.table);
  let refund: Refund | undefined;
  if (event.type === 'refund.succeeded') {
    refund = await payments.getRefund(merchantId, event.data.object.id);
    if (!refund) return skip('refund_not_found', log);
  }
  const [order, merchant] = await Promise.all([payments.getOrder(merchantId, refund?.order_id ?? event.data.object.id), getMerchant({ db: dynamo(), tableName: deps.table }, merchantId)]);
  if (!order) return skip('order_not_found', log);
  const settings = merchant?.receipts ?? RECEIPTS_OFF;

  // ── decide ──
  const wanted = (['email', 'sms'] as const).filter((c) => settings[c]);
  const outcome: MessageOutcome = { channels: { email: settings.email ? undefined : 'off', sms: settings.sms ? undefined : 'off' } };
  if (!wanted.length || !order.payer_ciphertext) {
    for (const c of wanted) outcome.channels[c] = 'no_contact';
    logger.info('receipt: nothing to send', { ...log, channels: outcome.channels });
    return outcome;
  }
  // The one place the payer's contact details are opened.
  const payer = await open<Payer>(order.payer_ciphertext, { purpose: 'payer', merchantId, recordId: order.id });
  const contact = { email: payer.reveal().email, sms: payer.reveal().phone };
  const receipt = renderReceipt(factsOf(order, refund, merchant?.name ?? merchantId, event));

  // ── effects, per channel ──
  const claims = new ReceiptClaims(deps.table);
  const failures: ReceiptSendError[] = [];
  await Promise.all(
    wanted.map(async (channel) => {
      const to = contact[channel];
      if (!to) {
        outcome.channels[channel] = 'no_contact';
        return;
      }
      const claim = await claims.claim(eventId, merchantId, channel, deps.now());
      if (!claim.claimed) {
        outcome.channels[channel] = claim.status === 'sent' ? 'already_sent' : 'in_progress';
        return;
      }
      let messageId: string;
      try {
        messageId =
          channel === 'email'
            ? await deps.email.send(new Secret(to), receipt, { from: deps.from, configurationSet: deps.configurationSet })
            : await deps.sms.send(new Secret(to), receipt.sms);
      } catch (error) {
        await claims.failed(eventId, channel, claim.token, `${(error as Error).name}: ${(error as Error).message}`.replace(/\S+@\S+|\+\d{7,15}/g, '[redacted]'));
        failures.push(new ReceiptSendError(channel, eventId, error));
        return;
      }
      await claims.sent(eventId, channel, claim.token, messageId, deps.now());
      outcome.channels[channel] = 'sent';
      logger.info('receipt sent', { ...log, channel, providerMessageId: messageId, locale: localeOf(order) });
    }),
  );
  if (failures.length) throw failures.length === 1 ? failures[0] : new AggregateError(failures, failures.map((f) => f.message).join('; '));
  return outcome;
}

function skip(reason: NonNullable<MessageOutcome['skipped']>, log: Record<string, string>): MessageOutcome {
  logger.warn('receipt: skipped', { ...log, reason });
  return { skipped: reason, channels: {} };
}

const localeOf = (order: PaymentOrder): PayerLocale => order.payer_locale ?? 'en';

function factsOf(order: PaymentOrder, refund: Refund | undefined, merchantName: string, event: PlatformEvent): ReceiptFacts {
  return {
    kind: refund ? 'refund' : 'payment',
    locale: localeOf(order),
    merchantName,
    // A payment's receipt shows what was paid: the captured amount (a manual capture may take less than the order's).
    amount: refund ? refund.amount : (order.amount_captured ?? order.amount),
    currency: refund ? refund.currency : order.currency,
    orderId: order.id,
    merchantOrderNo: order.merchant_order_no,
    description: order.description,
    refundId: refund?.id,
    at: (refund ? refund.updated_at : order.paid_at) ?? event.created_at,
  };
}
