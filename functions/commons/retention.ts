import { CLAIM_RETENTION_SECONDS } from '../receipts/config';
import { EVENT_RETENTION_SECONDS } from '../events/event';
import { IDEMPOTENCY_TTL_SECONDS } from '../http/idempotency';
import { CHANNEL_EVENT_RETENTION_SECONDS } from '../payments/repository';
import { CARD_WINDOW_MS } from '../payments/velocity';
import { SANDBOX_RETENTION_SECONDS } from '../channels/sandbox/store';

/**
 * Every kind of item the code writes to the tables, and how long each is kept (docs/data.md is this list as a
 * table; test/unit/retention-doc.test.ts holds the two together, and test/integration/retention.test.ts writes one
 * item of every kind through the code and checks it against its entry).
 *
 * How an item goes:
 * - `ttl`: DynamoDB TTL deletes it; its writer sets `ttlAttribute` to at most `maxTtlSeconds` after the write.
 * - `never`: nothing deletes it; it stays in the hot table for the period named in `kept` (and longer: no purge
 *   exists yet, docs/data.md § Hot table). Its writer sets no TTL attribute.
 * - `archive`: moved out of the hot table by a job. No item type goes that way today; the kind exists so that the
 *   registry, the doc and the test already say what such an item must look like (no TTL attribute either).
 */
export type Disposal = 'ttl' | 'archive' | 'never';

export interface ItemType {
  /** The item's `type` attribute where it has one (the name docs/data.md uses). */
  name: string;
  table: 'main' | 'idempotency';
  /** How its key looks, for people: `ORDER#<ord_id>` / `ORDER`. */
  key: string;
  /** How its key looks, for the classifier (the idempotency table has no sk). */
  pk: RegExp;
  sk?: RegExp;
  holds: string;
  readers: string;
  kept: string;
  goes: Disposal;
  ttlAttribute?: 'ttl' | 'expiration';
  /** For `ttl`: the latest a writer may set the TTL to, in seconds after the write. */
  maxTtlSeconds?: number;
  why: string;
  /** Where it is written. */
  writer: string;
}

const DAY = 24 * 3600;
const days = (seconds: number) => `${seconds / DAY} days`;
/** The money records' period: the longest bookkeeping / AML retention the platform meets (EU AMLD: 5 years; DE HGB/AO, FR: up to 10). */
const BOOKS = '10 years after the order (at least; nothing removes it)';
const BOOKS_WHY = 'bookkeeping and AML record keeping (5–10 years); card-network dispute windows (up to ~540 days) and refunds need it first';

export const ITEM_TYPES: readonly ItemType[] = [
  // ── Merchants and their keys ──
  {
    name: 'merchant',
    table: 'main',
    key: '`MERCHANT#<mch_id>` / `MERCHANT`',
    pk: /^MERCHANT#mch_[A-Za-z0-9]+$/,
    sk: /^MERCHANT$/,
    holds: 'name, fee override, receipts and payout settings (bank account sealed, last 4), active key',
    readers: 'authorizer, payments, settlement, receipts, operator CLI',
    kept: 'the merchant’s life, then 10 years',
    goes: 'never',
    why: 'the merchant relationship; its settlements and payouts are books records',
    writer: 'functions/merchants/service.ts, repository.ts',
  },
  {
    name: 'api_key',
    table: 'main',
    key: '`APIKEY#<sha256(key)>` / `APIKEY`',
    pk: /^APIKEY#[0-9a-f]{64}$/,
    sk: /^APIKEY$/,
    holds: 'a key’s hash, kind, scopes, status (active / revoked)',
    readers: 'authorizer, operator CLI',
    kept: 'the merchant’s life (revoked keys too)',
    goes: 'never',
    why: 'a revoked key must keep answering “revoked”; audit entries name key ids',
    writer: 'functions/merchants/service.ts',
  },
  {
    name: 'api_key_id',
    table: 'main',
    key: '`KEYID#<key_id>` / `KEYID`',
    pk: /^KEYID#[A-Za-z0-9_]+$/,
    sk: /^KEYID$/,
    holds: 'key id → key hash, merchant',
    readers: 'revoke, operator CLI',
    kept: 'as its API key',
    goes: 'never',
    why: 'as its API key',
    writer: 'functions/merchants/service.ts',
  },
  // ── Orders and payments ──
  {
    name: 'order',
    table: 'main',
    key: '`ORDER#<ord_id>` / `ORDER` (+ gsi1, gsi2 copies)',
    pk: /^ORDER#ord_[A-Za-z0-9]+$/,
    sk: /^ORDER$/,
    holds: 'the order and its payment state; payer sealed (erasable) and masked',
    readers: 'API, payments, receipts, settlement reports, bills',
    kept: BOOKS,
    goes: 'never',
    why: BOOKS_WHY,
    writer: 'functions/changes/writer.ts (orders/subject.ts)',
  },
  {
    name: 'order_no',
    table: 'main',
    key: '`MERCHANT#<mch_id>#ORDERNO#<merchant_order_no>` / `ORDERNO`',
    pk: /^MERCHANT#mch_[A-Za-z0-9]+#ORDERNO#.+$/,
    sk: /^ORDERNO$/,
    holds: 'the claim of a merchant order number → order id',
    readers: 'order create',
    kept: 'as its order',
    goes: 'never',
    why: 'a merchant order number stays unique while its order exists (Alipay’s out_trade_no)',
    writer: 'functions/orders/service.ts',
  },
  {
    name: 'payment',
    table: 'main',
    key: '`PAYMENT#<pay_id>` / `PAYMENT`',
    pk: /^PAYMENT#pay_[A-Za-z0-9]+$/,
    sk: /^PAYMENT$/,
    holds: 'one payment attempt: channel, status, amount, decline code',
    readers: 'channel results, reconciler, settlement reconciliation',
    kept: BOOKS,
    goes: 'never',
    why: 'maps the channel’s statement lines and disputes back to the order; bookkeeping (5–10 years)',
    writer: 'functions/payments/repository.ts',
  },
  {
    name: 'refund',
    table: 'main',
    key: '`REFUND#<re_id>` / `REFUND` (+ gsi1)',
    pk: /^REFUND#re_[A-Za-z0-9]+$/,
    sk: /^REFUND$/,
    holds: 'a refund and its state',
    readers: 'API, receipts, reconciler, settlement reports',
    kept: BOOKS,
    goes: 'never',
    why: BOOKS_WHY,
    writer: 'functions/changes/writer.ts (payments/refund-subject.ts)',
  },
  {
    name: 'channel_event',
    table: 'main',
    key: '`CHANNELEVENT#<channel>#<event id>` / `EVENT`',
    pk: /^CHANNELEVENT#[a-z]+#.+$/,
    sk: /^EVENT$/,
    holds: 'a channel notification already applied (dedupe)',
    readers: 'channel notify handler',
    kept: days(CHANNEL_EVENT_RETENTION_SECONDS),
    goes: 'ttl',
    ttlAttribute: 'ttl',
    maxTtlSeconds: CHANNEL_EVENT_RETENTION_SECONDS,
    why: 'channels resend for about a day (Alipay ~25 h, WeChat Pay ~24 h); older duplicates are stale by sequence anyway',
    writer: 'functions/payments/repository.ts',
  },
  {
    name: 'card_velocity',
    table: 'main',
    key: '`CARDVELOCITY#<platform fingerprint>#<hour>` / `VELOCITY`',
    pk: /^CARDVELOCITY#.+#\d{4}-\d\d-\d\dT\d\d:00:00\.000Z$/,
    sk: /^VELOCITY$/,
    holds: 'a card’s declines in one clock hour (no card data: an HMAC)',
    readers: 'confirm',
    kept: '2 hours',
    goes: 'ttl',
    ttlAttribute: 'ttl',
    maxTtlSeconds: (2 * CARD_WINDOW_MS) / 1000,
    why: 'the card-testing limit counts one hour; the next hour’s window starts afresh',
    writer: 'functions/payments/repository.ts, velocity.ts',
  },
  // ── Ledger ──
  {
    name: 'transfer',
    table: 'main',
    key: '`TRANSFER#<id>` / `TRANSFER` (+ gsi1 entry `ENTRY#…`)',
    pk: /^TRANSFER#.+$/,
    sk: /^TRANSFER$/,
    holds: 'one ledger transfer (debit, credit, amount; the merchant’s entry in gsi1)',
    readers: 'balance, settlement, settlement reports, bills',
    kept: BOOKS,
    goes: 'never',
    why: 'the books: immutable, and the accounts’ sums are only checkable against all of them',
    writer: 'functions/ledger/transfers.ts',
  },
  {
    name: 'account',
    table: 'main',
    key: '`MERCHANT#<mch_id>` / `ACCOUNT#<CUR>#merchant`; `ACCOUNT#<id>` / `ACCOUNT`',
    pk: /^(MERCHANT#mch_[A-Za-z0-9]+|ACCOUNT#.+)$/,
    sk: /^(ACCOUNT#[A-Z]{3}#merchant|ACCOUNT)$/,
    holds: 'a ledger account’s running sums',
    readers: 'balance API, payments, settlement',
    kept: 'the merchant’s life, then 10 years',
    goes: 'never',
    why: 'the books; a balance is never recomputed from expired transfers',
    writer: 'functions/ledger/transfers.ts',
  },
  {
    name: 'settlement_cursor',
    table: 'main',
    key: '`MERCHANT#<mch_id>` / `ACCOUNT#<CUR>#settlement`',
    pk: /^MERCHANT#mch_[A-Za-z0-9]+$/,
    sk: /^ACCOUNT#[A-Z]{3}#settlement$/,
    holds: 'how far a merchant’s entries are settled, its carry',
    readers: 'settlement',
    kept: 'the merchant’s life',
    goes: 'never',
    why: 'without it the next run would settle entries twice',
    writer: 'functions/settlements/settle.ts',
  },
  {
    name: 'settlement',
    table: 'main',
    key: '`SETTLEMENT#<stl_id>` / `SETTLEMENT` (+ gsi1, gsi2)',
    pk: /^SETTLEMENT#stl_[A-Za-z0-9]+$/,
    sk: /^SETTLEMENT$/,
    holds: 'a settlement: windows, totals, payout state, the report’s digests',
    readers: 'settlements API, reports, bills, reconciliation',
    kept: BOOKS.replace('the order', 'the settlement'),
    goes: 'never',
    why: 'merchants’ reconciliation of payouts; books',
    writer: 'functions/changes/writer.ts (settlements/subject.ts), settlements/store.ts',
  },
  {
    name: 'fx_rate',
    table: 'main',
    key: '`FXRATE#<from>#<to>` / `<effective_at>` (+ gsi1)',
    pk: /^FXRATE#[A-Z]{3}#[A-Z]{3}$/,
    sk: /^\d{4}-\d\d-\d\dT.+Z$/,
    holds: 'an exchange rate from its effective time, who set it',
    readers: 'confirm, operator CLI',
    kept: '10 years (at least; nothing removes it)',
    goes: 'never',
    why: 'a converted payment’s rate must be explainable for as long as its books are kept',
    writer: 'functions/fx/table.ts',
  },
  // ── Events and notifications ──
  {
    name: 'event',
    table: 'main',
    key: '`EVENTS#<mch_id>` / `<evt_id>`',
    pk: /^EVENTS#mch_[A-Za-z0-9]+$/,
    sk: /^evt_[A-Za-z0-9]+$/,
    holds: 'an event (outbox): its body as sent, payer masked',
    readers: 'events API, publisher, deliverer, receipts',
    kept: days(EVENT_RETENTION_SECONDS),
    goes: 'ttl',
    ttlAttribute: 'ttl',
    maxTtlSeconds: EVENT_RETENTION_SECONDS,
    why: 'Stripe keeps events 30 days; deliveries retry for 3 days and can be resent or recovered (14 days) within it',
    writer: 'functions/changes/writer.ts (events/event.ts)',
  },
  {
    name: 'webhook_delivery',
    table: 'main',
    key: '`DELIVERY#<evt_id>` / `TARGET#<we_id|notify_url>` (+ gsi1 when failed)',
    pk: /^DELIVERY#evt_[A-Za-z0-9]+$/,
    sk: /^TARGET#.+$/,
    holds: 'one event’s delivery to one target: status, attempts, next attempt',
    readers: 'deliverer, resend, recover',
    kept: 'as its event (30 days from the event)',
    goes: 'ttl',
    ttlAttribute: 'ttl',
    maxTtlSeconds: EVENT_RETENTION_SECONDS,
    why: 'meaningless without its event',
    writer: 'functions/notifications/deliveries.ts',
  },
  {
    name: 'webhook_attempt',
    table: 'main',
    key: '`DELIVERY#<evt_id>` / `ATTEMPT#<target>#<nnn>`',
    pk: /^DELIVERY#evt_[A-Za-z0-9]+$/,
    sk: /^ATTEMPT#.+#\d{3}$/,
    holds: 'one HTTP attempt: URL, status code, latency, error',
    readers: 'merchants (attempts), operators',
    kept: 'as its event (30 days from the event)',
    goes: 'ttl',
    ttlAttribute: 'ttl',
    maxTtlSeconds: EVENT_RETENTION_SECONDS,
    why: 'meaningless without its event',
    writer: 'functions/notifications/deliveries.ts',
  },
  {
    name: 'webhook_endpoint',
    table: 'main',
    key: '`WEBHOOKENDPOINT#<we_id>` / `ENDPOINT` (+ gsi1)',
    pk: /^WEBHOOKENDPOINT#we_[A-Za-z0-9]+$/,
    sk: /^ENDPOINT$/,
    holds: 'an endpoint: URL, events, secrets (sealed), breaker state',
    readers: 'publisher, deliverer, webhook endpoints API',
    kept: 'until the merchant deletes it',
    goes: 'never',
    why: 'configuration; `DELETE /v1/webhook_endpoints/{id}` deletes the item',
    writer: 'functions/webhooks/endpoints.ts',
  },
  {
    name: 'webhook_endpoint_count',
    table: 'main',
    key: '`MERCHANT#<mch_id>#WEBHOOKENDPOINTS` / `COUNT`',
    pk: /^MERCHANT#mch_[A-Za-z0-9]+#WEBHOOKENDPOINTS$/,
    sk: /^COUNT$/,
    holds: 'how many endpoints a merchant has (the cap of 16)',
    readers: 'webhook endpoint create',
    kept: 'the merchant’s life',
    goes: 'never',
    why: 'the cap holds only while the count does',
    writer: 'functions/webhooks/endpoints.ts',
  },
  {
    name: 'platform_key',
    table: 'main',
    key: '`PLATFORMKEY` / `ED25519`',
    pk: /^PLATFORMKEY$/,
    sk: /^ED25519$/,
    holds: 'the platform’s Ed25519 notification key (private half sealed)',
    readers: 'deliverer, public keys route',
    kept: 'the stage’s life',
    goes: 'never',
    why: 'merchants pin its public key',
    writer: 'functions/notifications/platform-key.ts',
  },
  {
    name: 'receipt',
    table: 'main',
    key: '`RECEIPT#<evt_id>#<email|sms>` / `RECEIPT`',
    pk: /^RECEIPT#evt_[A-Za-z0-9]+#(email|sms)$/,
    sk: /^RECEIPT$/,
    holds: 'a receipt’s claim: sending / sent / failed, the provider’s message id (no address)',
    readers: 'receipts sender',
    kept: days(CLAIM_RETENTION_SECONDS),
    goes: 'ttl',
    ttlAttribute: 'ttl',
    maxTtlSeconds: CLAIM_RETENTION_SECONDS,
    why: 'outlives every redelivery of its event (events are kept 30 days)',
    writer: 'functions/receipts/claims.ts',
  },
  // ── The sandbox channel and payout rail (the simulated PSP's and bank's own records) ──
  {
    name: 'sandbox_trade',
    table: 'main',
    key: '`SANDBOX#<pay_id>` / `TRADE`',
    pk: /^SANDBOX#pay_[A-Za-z0-9]+$/,
    sk: /^TRADE$/,
    holds: 'the simulated PSP’s trade: amounts, status, card brand and last 4',
    readers: 'sandbox bank, notifier',
    kept: days(SANDBOX_RETENTION_SECONDS),
    goes: 'ttl',
    ttlAttribute: 'ttl',
    maxTtlSeconds: SANDBOX_RETENTION_SECONDS,
    why: 'outlives the refund window (about a year), as a PSP keeps trades',
    writer: 'functions/channels/sandbox/store.ts',
  },
  {
    name: 'sandbox_trade_no',
    table: 'main',
    key: '`SANDBOXREF#<trade_no>` / `TRADENO`',
    pk: /^SANDBOXREF#.+$/,
    sk: /^TRADENO$/,
    holds: 'the PSP’s trade number → trade',
    readers: 'sandbox bank',
    kept: days(SANDBOX_RETENTION_SECONDS),
    goes: 'ttl',
    ttlAttribute: 'ttl',
    maxTtlSeconds: SANDBOX_RETENTION_SECONDS,
    why: 'as its trade',
    writer: 'functions/channels/sandbox/store.ts',
  },
  {
    name: 'sandbox_statement_line',
    table: 'main',
    key: '`SANDBOXSTMT#<YYYY-MM-DD>` / `<at>#<kind>#<id>`',
    pk: /^SANDBOXSTMT#\d{4}-\d\d-\d\d$/,
    sk: /^.+#(capture|refund)#.+$/,
    holds: 'a line of the PSP’s daily statement',
    readers: 'settlement reconciliation',
    kept: days(SANDBOX_RETENTION_SECONDS),
    goes: 'ttl',
    ttlAttribute: 'ttl',
    maxTtlSeconds: SANDBOX_RETENTION_SECONDS,
    why: 'as its trade',
    writer: 'functions/channels/sandbox/store.ts',
  },
  {
    name: 'sandbox_payout',
    table: 'main',
    key: '`SANDBOXPAYOUT#<stl_id>` / `PAYOUT`',
    pk: /^SANDBOXPAYOUT#stl_[A-Za-z0-9]+$/,
    sk: /^PAYOUT$/,
    holds: 'the simulated bank transfer of a settlement (account last 4 only)',
    readers: 'settlement payout, compensate',
    kept: days(SANDBOX_RETENTION_SECONDS),
    goes: 'ttl',
    ttlAttribute: 'ttl',
    maxTtlSeconds: SANDBOX_RETENTION_SECONDS,
    why: 'the bank’s own record; the settlement keeps the platform’s',
    writer: 'functions/channels/payouts/sandbox.ts',
  },
  {
    name: 'sandbox_payout_line',
    table: 'main',
    key: '`SANDBOXPAYOUTSTMT#<YYYY-MM-DD>` / `<paid_at>#<stl_id>`',
    pk: /^SANDBOXPAYOUTSTMT#\d{4}-\d\d-\d\d$/,
    sk: /^.+#stl_[A-Za-z0-9]+$/,
    holds: 'a line of the bank’s payout statement',
    readers: 'settlement reconciliation',
    kept: days(SANDBOX_RETENTION_SECONDS),
    goes: 'ttl',
    ttlAttribute: 'ttl',
    maxTtlSeconds: SANDBOX_RETENTION_SECONDS,
    why: 'as its payout',
    writer: 'functions/channels/payouts/sandbox.ts',
  },
  // ── The audit trail (functions/audit; docs/audit.md) ──
  {
    name: 'audit_event',
    table: 'main',
    key: '`AUDIT#<chain>` / `SEQ#<seq, 12 digits>`',
    pk: /^AUDIT#(merchant:mch_[A-Za-z0-9]+|platform)$/,
    sk: /^SEQ#\d{12}$/,
    holds: 'one configuration change: actor, action, target, before/after masked, hash-chained',
    readers: 'audit events API, `audit verify`',
    kept: 'the chain’s life (at least 12 months)',
    goes: 'never',
    why: 'PCI DSS v4 10.5.1 (12 months, 3 at hand); deleting an entry breaks the chain, so none is',
    writer: 'functions/audit/append.ts',
  },
  {
    name: 'audit_head',
    table: 'main',
    key: '`AUDIT#<chain>` / `HEAD` (+ gsi2 `AUDIT_HEADS`)',
    pk: /^AUDIT#(merchant:mch_[A-Za-z0-9]+|platform)$/,
    sk: /^HEAD$/,
    holds: 'a chain’s last seq and hash',
    readers: 'commitAudited, heads signer',
    kept: 'as its chain',
    goes: 'never',
    why: 'the next entry is conditioned on it',
    writer: 'functions/audit/append.ts',
  },
  {
    name: 'audit_run_marker',
    table: 'main',
    key: '`AUDIT#platform` / `RUN#<run id>`',
    pk: /^AUDIT#platform$/,
    sk: /^RUN#.+$/,
    holds: 'that a settlement run’s `settlement.run` entry is written (no content of its own)',
    readers: 'settlement Prepare (a retried step records its run once)',
    kept: '35 days',
    goes: 'ttl',
    ttlAttribute: 'ttl',
    maxTtlSeconds: 35 * 86400,
    why: 'only a retry of the same execution needs it, within minutes; the entry itself stays in the chain',
    writer: 'functions/settlements/tasks.ts',
  },
  // ── The idempotency table ──
  {
    name: 'idempotency_key',
    table: 'idempotency',
    key: '`<mch_id>#<Idempotency-Key>`',
    pk: /^mch_[A-Za-z0-9]+#.+$/,
    holds: 'a request’s claim and its final response (sealed: it may show the payer)',
    readers: 'every POST with an Idempotency-Key',
    kept: days(IDEMPOTENCY_TTL_SECONDS).replace('1 days', '24 hours'),
    goes: 'ttl',
    ttlAttribute: 'expiration',
    maxTtlSeconds: IDEMPOTENCY_TTL_SECONDS,
    why: 'Stripe keeps keys at least 24 h; a retry after a day is a new request',
    writer: 'functions/http/idempotency.ts',
  },
];

/** The item type of a stored item, by table and key; undefined when no entry matches (a test fails on that). */
export function itemTypeOf(table: ItemType['table'], item: Record<string, unknown>): ItemType | undefined {
  const pk = String(table === 'idempotency' ? item.id : item.pk);
  const sk = item.sk === undefined ? undefined : String(item.sk);
  const matches = ITEM_TYPES.filter((t) => t.table === table && t.pk.test(pk) && (t.sk ? sk !== undefined && t.sk.test(sk) : sk === undefined));
  // Keys are disjoint by design; two matches is a registry bug the test must see, not a guess.
  return matches.length === 1 ? matches[0] : undefined;
}

/** The item's row in docs/data.md's table (test/unit/retention-doc.test.ts compares them cell by cell). */
export function docRow(t: ItemType): string[] {
  const goes = t.goes === 'ttl' ? `TTL (\`${t.ttlAttribute}\`)` : t.goes;
  return [`\`${t.name}\``, t.key, `${t.holds}; read by ${t.readers}`, t.kept, goes, t.why];
}
