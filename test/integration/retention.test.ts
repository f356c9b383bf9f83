import { beforeAll, describe, expect, it } from 'vitest';
import type { AuditContext } from '../../functions/audit/context';
import { SANDBOX_PAYOUT_ACCOUNTS, SandboxPayoutChannel } from '../../functions/channels/payouts';
import { TradeStore } from '../../functions/channels/sandbox/store';
import { dynamo } from '../../functions/commons/clients';
import { seal } from '../../functions/commons/crypto';
import { newId } from '../../functions/commons/ids';
import { ITEM_TYPES, itemTypeOf, type ItemType } from '../../functions/commons/retention';
import { listEvents } from '../../functions/events/repository';
import { setRate } from '../../functions/fx/table';
import { idempotent } from '../../functions/http/idempotency';
import { createMerchant, setPayoutSettings, setReceipts, type MerchantDeps } from '../../functions/merchants/service';
import { createDelivery, recordAttempt } from '../../functions/notifications/deliveries';
import { platformSigner, resetPlatformKeyCache } from '../../functions/notifications/platform-key';
import { erasePayer } from '../../functions/orders/erase';
import { sendReceipt } from '../../functions/receipts/sender';
import * as tasks from '../../functions/settlements/tasks';
import { createEndpoint } from '../../functions/webhooks/endpoints';
import { useLocalServices } from './env';
import { card, CARDS, paymentCase, sandboxWorld } from './payments-world';
import { clockAfterEntries, HORIZON_MS, runFor } from './settlement-support';
import { copyOfTable, scanAll } from './table-copy';

/**
 * docs/data.md holds the code to it: one item of every type, written through the code (a merchant and its key, its
 * receipts and payout settings, an FX rate, a webhook endpoint, orders paid, captured, refunded and settled, the
 * channel's callback, a webhook delivery and its attempt, receipts, an idempotent request, the platform key, an
 * erasure's audit entry), in tables of its own, then every item of both tables is classified by the registry
 * (functions/commons/retention.ts) and checked against its entry.
 */
const by: AuditContext = { actor: { type: 'operator', principal: 'arn:aws:iam::000000000000:user/retention-test' }, requestId: 'req-retention' };
let main: string;
let idempotency: string;
let started: number;
let finished: number;
let items: { table: ItemType['table']; item: Record<string, unknown> }[];

beforeAll(async () => {
  const services = useLocalServices();
  [main, idempotency] = await Promise.all([copyOfTable(services.tables.main, 'retention'), copyOfTable(services.tables.idempotency, 'retention-idem')]);
  // Whatever reads the variables (stores' defaults, the idempotency wrapper) reads these tables.
  Object.assign(process.env, { TABLE_NAME: main, IDEMPOTENCY_TABLE_NAME: idempotency });
  started = Math.floor(Date.now() / 1000);

  // A merchant and its configuration, through the operator's service functions.
  const deps: MerchantDeps = { db: dynamo(), tableName: main, seal };
  const { merchantId } = await createMerchant(deps, { name: 'Retention Coffee' }, {}, by);
  await setReceipts(deps, { merchantId, email: 'on', sms: 'on' }, by);
  await setPayoutSettings(deps, { merchantId, currency: 'USD', delayDays: 0, bankAccount: SANDBOX_PAYOUT_ACCOUNTS.succeeds }, by);
  await setRate({ db: dynamo(), tableName: main }, { from: 'EUR', to: 'USD', rate: '1.0825', set_by: 'retention-test' }, new Date(), by);
  const endpoint = await createEndpoint(main, { id: newId('we'), merchantId, url: 'https://hooks.example.com/payplane', enabledEvents: ['*'] }, new Date(), by);

  // Payments: a manual capture with a refund, and an asynchronous one settled by the channel's callback.
  const world = sandboxWorld({ store: new TradeStore(() => main) });
  const w = paymentCase(main, merchantId, world.sandbox);
  const a = await w.order({ capture_method: 'manual', payer: { name: 'Jane Doe', email: 'jane@example.com', phone: '+8613800001234' } });
  // A card that is not one of the published test cards: its attempt takes (and gives back) a velocity slot.
  await w.service.confirm(w.caller(), a.id, card('4111111111111111'));
  await w.service.capture(w.caller(), a.id);
  await w.service.refund(w.caller(), { order_id: a.id, amount: 2_000 });
  const b = await w.order({ amount: 5_000 });
  const processing = await w.service.confirm(w.caller(), b.id, card(CARDS.asyncSuccess));
  for (const event of await world.callbacks(processing.payment_id!)) await w.service.applyChannelEvent(event);

  // Notifications: a delivery and its attempt, the receipts of the paid order, the platform's signing key.
  const { events } = await listEvents(main, merchantId, { limit: 100 });
  const paid = events.find((e) => e.type === 'order.succeeded' && e.data.object.id === a.id)!;
  const now = new Date();
  const ttl = Math.floor(Date.parse(paid.created_at) / 1000) + 30 * 24 * 3600;
  await createDelivery(main, { eventId: paid.id, merchantId, target: { endpointId: endpoint.endpoint.id }, now, ttl });
  await recordAttempt(main, { event_id: paid.id, target: endpoint.endpoint.id, ttl }, { n: 1, at: now, url: endpoint.endpoint.url, statusCode: 200, latencyMs: 12, error: null, status: 'succeeded' });
  const sent = async () => `msg-${newId('x')}`;
  await sendReceipt({ event_id: paid.id, merchant_id: merchantId }, { table: main, from: 'receipts@example.com', email: { send: sent }, sms: { send: sent }, now: () => new Date() });
  resetPlatformKeyCache();
  await platformSigner(main);

  // An idempotent request, as the API's wrapper stores it.
  await idempotent({ merchantId, key: `retention-${newId('k')}`, fingerprint: 'POST /v1/orders {}', requestId: 'req-1', lockMillis: 30_000 }, async () => ({ statusCode: 200, body: '{}' }));

  // The day's settlement, paid out by the sandbox rail (its clock past the settle horizon, as the engine's tests run it).
  const { cutoff, now: settleAt } = clockAfterEntries();
  const t0 = Date.now();
  await runFor(merchantId, cutoff, tasks.taskDeps({ table: main, now: () => new Date(settleAt.getTime() + Date.now() - t0), channel: new SandboxPayoutChannel(() => main), platform: w.ledger.platform }));

  // An erasure: its audit entry on the merchant's chain (once functions/audit/append.ts writes entries).
  await erasePayer({ db: dynamo(), tableName: main }, { orderId: a.id }, by);

  // The settle run's clock is HORIZON_MS ahead: what it writes may expire that much later.
  finished = Math.floor((Date.now() + HORIZON_MS) / 1000) + 1;
  const [m, i] = await Promise.all([scanAll(main), scanAll(idempotency)]);
  items = [...m.map((item) => ({ table: 'main' as const, item })), ...i.map((item) => ({ table: 'idempotency' as const, item }))];
});

const keyOf = ({ table, item }: { table: string; item: Record<string, unknown> }) => (table === 'idempotency' ? `${item.id}` : `${item.pk} / ${item.sk}`);

describe('retention: every item the code writes is a type of docs/data.md, kept as its row says', () => {
  it('every item matches exactly one type of the registry', () => {
    const unknown = items.filter((x) => !itemTypeOf(x.table, x.item)).map(keyOf);
    expect(unknown, 'items that match no type (or several) of functions/commons/retention.ts: add a row (and one to docs/data.md)').toEqual([]);
  });

  it('every type of the registry was written by the flow', () => {
    const seen = new Set(items.map((x) => itemTypeOf(x.table, x.item)?.name));
    // The contract's commitAudited commits the change only until the audit strand's body lands; from then on the
    // audit rows are required like every other (the flow's configuration changes all write entries).
    const auditWrites = items.some((x) => String(x.item.pk).startsWith('AUDIT#'));
    const missing = ITEM_TYPES.filter((t) => !seen.has(t.name) && (auditWrites || !t.name.startsWith('audit_'))).map((t) => t.name);
    expect(missing, 'types in the registry that the flow wrote no item of').toEqual([]);
  });

  it('an item of a TTL type carries its TTL attribute, within the stated duration; the others carry none', () => {
    const wrong: string[] = [];
    for (const x of items) {
      const t = itemTypeOf(x.table, x.item);
      if (!t) continue;
      const other = ['ttl', 'expiration'].filter((a) => a !== t.ttlAttribute && x.item[a] !== undefined);
      if (other.length) wrong.push(`${keyOf(x)} (${t.name}): has ${other.join(', ')}, which its row does not name`);
      if (t.goes !== 'ttl') continue;
      const ttl = x.item[t.ttlAttribute!];
      if (typeof ttl !== 'number') wrong.push(`${keyOf(x)} (${t.name}): no numeric ${t.ttlAttribute}`);
      else if (ttl <= started || ttl > finished + t.maxTtlSeconds!) {
        wrong.push(`${keyOf(x)} (${t.name}): ${t.ttlAttribute} ${ttl} is ${ttl - started} s after the flow started; its row allows up to ${t.maxTtlSeconds} s (${t.kept})`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('items that carry a type attribute carry their row’s name', () => {
    const wrong = items.flatMap((x) => {
      const t = itemTypeOf(x.table, x.item);
      // The audit strand names its items by `object` (COMMON.md); only the other rows are held to `type`.
      if (!t || x.item.type === undefined || t.name.startsWith('audit_')) return [];
      return x.item.type === t.name ? [] : [`${keyOf(x)}: type ${String(x.item.type)}, row ${t.name}`];
    });
    expect(wrong).toEqual([]);
  });
});
