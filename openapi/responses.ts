import * as z from 'zod';
import { AUDIT_ACTIONS } from '../functions/audit/context';
import { EVENT_TYPES } from '../functions/events/event';
import { ORDER_STATUSES, PAYER_LOCALES } from '../functions/orders/order';
import { REFUND_REASONS } from '../functions/payments/payment';
import { SETTLEMENT_STATUSES } from '../functions/settlements/settlement';

/**
 * Response schemas: what the API answers, object by object. Strict objects (additionalProperties: false) with every
 * field required as the *ToApi functions always write it (null, never absent), so the e2e contract test
 * (test/e2e/contract.ts) fails on a field added, renamed or dropped without the spec. Only fields that are absent by
 * design (an erased order's payer_erased_at, a new endpoint's secret) are optional.
 */

// A format, not zod's datetime regex: the same check (ajv-formats in the contract test) at a fraction of the size.
const time = z.string().meta({ format: 'date-time', description: 'ISO 8601 time (UTC).', examples: ['2026-12-01T09:30:00.000Z'] });
const minor = z.int().meta({ description: 'An amount in the currency\'s minor units (integer): 1050 is USD 10.50, 500 is JPY 500.' });
const currency = z.string().regex(/^[A-Z]{3}$/).meta({ description: 'ISO 4217 code, uppercase.', examples: ['USD'] });
const list = <T extends z.ZodType>(item: T, url: string) =>
  z.strictObject({
    object: z.literal('list'),
    url: z.string().meta({ examples: [url] }),
    has_more: z.boolean().meta({ description: 'More items follow: ask again with starting_after=<the last id of data>.' }),
    data: z.array(item),
  });

export const errorObject = z
  .strictObject({
    error: z
      .object({
        type: z.enum(['invalid_request_error', 'authentication_error', 'idempotency_error', 'card_error', 'permission_error', 'rate_limit_error', 'api_error']),
        code: z.string().meta({ description: 'Machine-readable reason; see the list in this schema\'s description.' }),
        message: z.string().meta({ description: 'What went wrong, the value at fault and the fix (card numbers masked).' }),
        param: z.string().optional().meta({ description: 'The parameter at fault, dotted (payer.email).' }),
        request_id: z.string().optional().meta({ description: 'The Request-Id header of this response: quote it to support.' }),
      })
      // Codes add context such as order_id, status, decline_code or declined_attempts (functions/commons/errors.ts `extra`).
      .catchall(z.union([z.string(), z.number(), z.boolean()])),
  })
  .meta({ id: 'Error' });

const cardSummary = z.strictObject({ brand: z.string(), last4: z.string(), exp_month: z.int(), exp_year: z.int(), fingerprint: z.string() });
const payer = z.strictObject({
  name: z.string().optional(),
  email: z.string().optional(),
  phone: z.string().optional(),
  locale: z.enum(PAYER_LOCALES).optional(),
});

export const order = z
  .strictObject({
    id: z.string().meta({ examples: ['ord_8Q1xZ2pLk3Vb'] }),
    object: z.literal('order'),
    livemode: z.literal(false),
    merchant_order_no: z.string(),
    status: z.enum(ORDER_STATUSES),
    amount: minor,
    amount_refunded: minor,
    currency,
    description: z.string().nullable(),
    capture_method: z.enum(['automatic', 'manual']),
    payer: payer.nullable().meta({ description: 'Masked outside the create response and GET of the order\'s own merchant.' }),
    payer_erased_at: time.optional().meta({ description: 'Only on orders whose payer was erased on request.' }),
    metadata: z.record(z.string(), z.string()),
    notify_url: z.string().nullable(),
    return_url: z.string().nullable(),
    checkout_url: z.string(),
    expires_at: time,
    closed_at: time.nullable(),
    close_reason: z.enum(['merchant', 'expired']).nullable(),
    created_at: time,
    updated_at: time,
    version: z.int(),
    amount_authorized: minor,
    amount_captured: minor,
    payment_id: z.string().nullable(),
    payment_method_details: z
      .discriminatedUnion('type', [z.strictObject({ type: z.literal('card'), card: cardSummary }), z.strictObject({ type: z.literal('wallet') })])
      .nullable(),
    last_payment_error: z
      .strictObject({ type: z.enum(['card_error', 'api_error']), code: z.string(), decline_code: z.string().optional(), message: z.string(), payment_id: z.string() })
      .nullable(),
    next_action: z
      .strictObject({ type: z.literal('redirect_to_url'), redirect_to_url: z.strictObject({ url: z.string(), return_url: z.string().nullable() }) })
      .nullable(),
    paid_at: time.nullable(),
  })
  .meta({ id: 'Order' });

export const refund = z
  .strictObject({
    id: z.string().meta({ examples: ['re_3kQ9vX1mZp'] }),
    object: z.literal('refund'),
    order_id: z.string(),
    amount: minor,
    currency,
    status: z.enum(['pending', 'succeeded', 'failed']),
    reason: z.enum(REFUND_REASONS).nullable(),
    failure_reason: z.string().nullable(),
    created_at: time,
    version: z.int(),
  })
  .meta({ id: 'Refund' });

const window = z.strictObject({ from: time, to: time });
export const settlement = z
  .strictObject({
    id: z.string().meta({ examples: ['stl_abcdefghijklmnopqrstuvwx'] }),
    object: z.literal('settlement'),
    merchant_id: z.string(),
    currency,
    status: z.enum(SETTLEMENT_STATUSES),
    amount: minor.meta({ description: 'The net paid out (totals.net).' }),
    totals: z.strictObject({ gross: minor, refunds: minor, fees: minor, fx: minor, adjustments: minor, carried_in: minor, net: minor, entry_count: z.int() }),
    payout: z
      .strictObject({
        status: z.string(),
        bank_account_last4: z.string(),
        attempts: z.int(),
        reference: z.string().nullable(),
        paid_at: time.nullable(),
        failure_code: z.string().nullable(),
        failure_message: z.string().nullable(),
      })
      .nullable(),
    cutoff: time,
    delay_days: z.int(),
    windows: z.strictObject({ delayed: window, immediate: window }),
    run_id: z.string(),
    created_at: time,
    updated_at: time,
    version: z.int(),
  })
  .meta({ id: 'SettlementObject', description: 'A settlement as its events carry it.' });

const part = z.strictObject({ part: z.int(), lines: z.int(), bytes: z.int(), sha256: z.string(), content_digest: z.string(), url: z.string() });
export const settlementReport = z
  .strictObject({
    object: z.literal('settlement_report'),
    settlement_id: z.string(),
    lines: z.int(),
    bytes: z.int(),
    sha256: z.string(),
    content_digest: z.string().meta({ description: 'RFC 9530 Content-Digest of the whole report.' }),
    parts: z.array(part),
  })
  .meta({ id: 'SettlementReport' });

export const settlementWithReport = settlement
  .extend({ bank_account_last4: z.string().nullable(), report: settlementReport.nullable() })
  .meta({ id: 'Settlement' });

export const settlementTransaction = z
  .strictObject({
    object: z.literal('settlement_transaction'),
    id: z.string(),
    type: z.string(),
    order_id: z.string().nullable(),
    refund_id: z.string().nullable(),
    amount: minor,
    currency,
    fee: minor,
    fx: z
      .strictObject({ source_currency: currency, source_amount: minor, base_rate: z.string(), rate: z.string(), markup_bps: z.int(), rate_effective_at: time })
      .nullable(),
    stream: z.enum(['delayed', 'immediate']),
    created_at: time,
  })
  .meta({ id: 'SettlementTransaction' });

export const bill = z
  .strictObject({
    object: z.literal('bill'),
    date: z.string().meta({ format: 'date' }),
    time_zone: z.string(),
    lines: z.int(),
    sha256: z.string(),
    content_digest: z.string(),
    parts: z.array(part),
  })
  .meta({ id: 'Bill', description: 'The manifest of a bill in several parts; a bill of one part is answered as CSV.' });

const balanceAmounts = z.array(z.strictObject({ currency, amount: minor }));
export const balance = z
  .strictObject({ object: z.literal('balance'), available: balanceAmounts, pending: balanceAmounts, in_payout: balanceAmounts, authorized: balanceAmounts })
  .meta({ id: 'Balance' });

const actor = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('merchant_key'), key_id: z.string() }),
  z.strictObject({ type: z.literal('operator'), name: z.literal('Payplane operator') }),
  z.strictObject({ type: z.literal('system'), name: z.string() }),
]);
export const auditEvent = z
  .strictObject({
    object: z.literal('audit_event'),
    id: z.string().meta({ examples: ['aud_000000000012AbCdEfGhIjKl'] }),
    chain: z.string(),
    seq: z.int(),
    prev_hash: z.string(),
    action: z.enum(AUDIT_ACTIONS),
    actor,
    merchant_id: z.string().optional(),
    target: z.strictObject({ type: z.string(), id: z.string() }),
    request_id: z.string(),
    created_at: time,
    before: z.unknown().optional().meta({ description: 'The configuration before the change, masked.' }),
    after: z.unknown().optional().meta({ description: 'The configuration after the change, masked.' }),
    hash: z.string().meta({ description: 'SHA-256 (hex) of the RFC 8785 canonical JSON of the entry without its hash.' }),
  })
  .meta({ id: 'AuditEvent' });

export const webhookEndpoint = z
  .strictObject({
    id: z.string().meta({ examples: ['we_7YhQ2kLm9Pz'] }),
    object: z.literal('webhook_endpoint'),
    url: z.string(),
    enabled_events: z.array(z.union([z.literal('*'), z.enum(EVENT_TYPES)])),
    description: z.string().nullable(),
    disabled: z.boolean(),
    disabled_reason: z.string().nullable(),
    previous_secret_expires_at: time.nullable(),
    livemode: z.literal(false),
    created_at: time,
    updated_at: time,
    secret: z.string().optional().meta({ description: 'The signing secret (whsec_…), only in the response that creates or rolls it.' }),
  })
  .meta({ id: 'WebhookEndpoint' });

export const deletedWebhookEndpoint = z
  .strictObject({ id: z.string(), object: z.literal('webhook_endpoint'), deleted: z.literal(true) })
  .meta({ id: 'DeletedWebhookEndpoint' });

export const eventResend = z
  .strictObject({
    object: z.literal('event_resend'),
    event: z.string(),
    queued: z.array(z.strictObject({ endpoint: z.string().nullable(), notify_url: z.boolean(), attempt: z.int() })),
  })
  .meta({ id: 'EventResend' });

export const endpointRecovery = z
  .strictObject({ object: z.literal('webhook_endpoint_recovery'), endpoint: z.string(), since: time, queued: z.int(), has_more: z.boolean() })
  .meta({ id: 'WebhookEndpointRecovery' });

/** An event of one type, whose data.object is `object` (docs/events.md). */
export const eventOf = (type: z.ZodType, object: z.ZodType) =>
  z.strictObject({
    id: z.string().meta({ examples: ['evt_0AbCdEfG1234567890abcdef'] }),
    object: z.literal('event'),
    type,
    created_at: time,
    api_version: z.string().meta({ examples: ['2026-12-01'] }),
    livemode: z.literal(false),
    data: z.strictObject({
      object,
      previous_attributes: z.record(z.string(), z.unknown()).optional().meta({ description: 'The fields the change altered, with their values before it.' }),
    }),
    request: z.strictObject({ id: z.string(), idempotency_key: z.string().nullable() }).nullable().meta({ description: 'The API call that caused the change; null for the channel, sweeps and the reconciler.' }),
  });

export const objectOfEvent = (type: (typeof EVENT_TYPES)[number]) => (type.startsWith('order.') ? order : type.startsWith('refund.') ? refund : settlement);

/** The component name of an event type's schema: order.payment_failed → OrderPaymentFailedEvent. */
export const eventId = (type: string) => `${type.split(/[._]/).map((w) => w[0]!.toUpperCase() + w.slice(1)).join('')}Event`;

export const eventsByType = Object.fromEntries(EVENT_TYPES.map((type) => [type, eventOf(z.literal(type), objectOfEvent(type)).meta({ id: eventId(type) })]));

export const event = z.union(Object.values(eventsByType)).meta({ id: 'Event' });

/** GET /v1/events/{id}: the event, with where it went and every attempt (functions/events/repository.ts deliveriesOf). */
const deliveries = {
  deliveries: z.array(z.strictObject({ target: z.string(), status: z.string(), attempts: z.int(), last_attempt_at: time.nullable(), next_attempt_at: time.nullable() })),
  delivery_attempts: z.array(
    z.strictObject({ target: z.string(), url: z.string(), attempted_at: time, status_code: z.int().nullable(), latency_ms: z.number().nullable(), error: z.string().nullable() }),
  ),
};
export const eventWithDeliveries = z
  .union(EVENT_TYPES.map((type) => eventOf(z.literal(type), objectOfEvent(type)).extend(deliveries)))
  .meta({ id: 'EventWithDeliveries', description: 'An event, with where it went and every attempt (oldest first).' });

export const jwks = z
  .strictObject({
    keys: z.array(
      z.strictObject({ kty: z.enum(['OKP', 'EC']), crv: z.enum(['Ed25519', 'P-256']), x: z.string(), y: z.string().optional(), kid: z.string(), alg: z.enum(['EdDSA', 'ES256']), use: z.literal('sig') }),
    ),
  })
  .meta({ id: 'JsonWebKeySet' });

export const lists = {
  orders: list(order, '/v1/orders').meta({ id: 'OrderList' }),
  refunds: list(refund, '/v1/orders/ord_8Q1xZ2pLk3Vb/refunds').meta({ id: 'RefundList' }),
  events: list(event, '/v1/events').meta({ id: 'EventList' }),
  webhookEndpoints: list(webhookEndpoint, '/v1/webhook_endpoints').meta({ id: 'WebhookEndpointList' }),
  settlements: list(settlementWithReport, '/v1/settlements').meta({ id: 'SettlementList' }),
  settlementTransactions: list(settlementTransaction, '/v1/settlements/stl_abcdefghijklmnopqrstuvwx/transactions').meta({ id: 'SettlementTransactionList' }),
  auditEvents: list(auditEvent, '/v1/audit_events').meta({ id: 'AuditEventList' }),
};
