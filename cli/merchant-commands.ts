import { InvalidRequestError } from '../functions/commons/errors';
import { toMajorString } from '../functions/commons/money';
import { EVENT_TYPES, type PlatformEvent } from '../functions/events/event';
import { listen } from './listen';
import { apiCall, type MerchantApi } from './merchant-api';
import { trigger, triggerStep } from './trigger';
import type { Io } from './main';

/**
 * The merchant commands: what a merchant's integration does, as a developer does it from a terminal, through the
 * public `/v1` API with the merchant's key (cli/merchant-api.ts).
 */
export interface MerchantValues {
  json?: boolean;
  limit?: string;
  type?: string;
  status?: string;
  order?: string;
  amount?: string;
  reason?: string;
  endpoint?: string;
  events?: string;
  since?: string;
  'forward-to'?: string;
}
export type ApiRun = (api: MerchantApi, v: MerchantValues, io: Io, args: string[]) => Promise<number>;

const usage = (message: string) => new InvalidRequestError('cli_usage', message);

/** Columns padded to their widest cell. */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [head, ...rows].map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

const money = (amount: number, currency: string) => `${toMajorString(amount, currency)} ${currency}`;

function limitOption(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || +text < 1 || +text > 100) throw usage(`Invalid --limit '${text}': use an integer from 1 to 100, e.g. --limit 20.`);
  return +text;
}

function typesOption(text: string): Set<string> {
  const types = text.split(',').map((t) => t.trim());
  const unknown = types.filter((t) => !(EVENT_TYPES as readonly string[]).includes(t));
  if (unknown.length || types.length === 0) {
    throw usage(`Invalid --events '${text}': ${unknown.map((t) => `'${t}'`).join(', ')} is not an event type. Use comma-separated types of: ${EVENT_TYPES.join(', ')}; e.g. --events order.succeeded,refund.succeeded.`);
  }
  return new Set(types);
}

function forwardUrl(text: string): URL {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw usage(`Invalid --forward-to '${text}': use the http(s) URL of your webhook handler, e.g. --forward-to http://localhost:8080/hook.`);
  }
  return url;
}

function sinceOption(text: string | undefined): Date | undefined {
  if (text === undefined) return undefined;
  const at = /^\d{4}-\d{2}-\d{2}T/.test(text) ? new Date(text) : undefined;
  if (!at || Number.isNaN(at.getTime())) throw usage(`Invalid --since '${text}': use an ISO 8601 time, e.g. --since 2026-12-02T09:00:00Z (default: now).`);
  return at;
}

export const runListen: ApiRun = async (api, v, io) => {
  const forwardTo = forwardUrl(v['forward-to']!);
  const types = v.events === undefined ? undefined : typesOption(v.events);
  const since = sinceOption(v.since);
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const count = await listen(api, {
      forwardTo,
      types,
      since,
      signal: controller.signal,
      onReady: ({ secret, from }) =>
        io.out(
          v.json
            ? JSON.stringify({ object: 'listen_session', secret, forward_to: forwardTo.href, events: types ? [...types] : ['*'], from: from.toISOString() })
            : [
                `Ready! Your webhook signing secret is ${secret} (^C to quit)`,
                `Forwarding ${types ? [...types].join(', ') : 'all'} events of the ${api.label} created from ${from.toISOString()} to ${forwardTo.href}`,
                'Verify them with this secret (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature).',
              ].join('\n'),
        ),
      onForwarded: (f) =>
        io.out(
          v.json
            ? JSON.stringify({ event: f.event.id, type: f.event.type, created_at: f.event.created_at, status: f.status, error: f.error ?? null, latency_ms: f.latency_ms })
            : `${f.event.created_at}   --> ${f.event.type.padEnd(22)} [${f.event.id}]   <-- [${f.status ?? `error ${f.error}`}] POST ${forwardTo.href} (${f.latency_ms} ms)`,
        ),
    });
    if (!v.json) io.out(`Stopped: forwarded ${count} event${count === 1 ? '' : 's'}.`);
    return 0;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
};

export const runTrigger: ApiRun = async (api, v, io, [type]) => {
  triggerStep(type!); // an unknown type is refused before anything is made
  const t = await trigger(api, type!);
  if (v.json) io.out(JSON.stringify(t, null, 2));
  else {
    io.out(
      [
        `Triggered ${t.type} on the ${api.label}:`,
        `  order ${t.order.id} (${t.order.status})${t.refund ? `, refund ${t.refund.id} (${t.refund.status})` : ''}`,
        `  event ${t.event.id} (${t.event.type}) — see it with: payplane events show ${t.event.id}`,
      ].join('\n'),
    );
  }
  return 0;
};

interface ListBody<T> {
  data: T[];
  has_more: boolean;
}

export const runEventsList: ApiRun = async (api, v, io) => {
  if (v.type !== undefined && !(EVENT_TYPES as readonly string[]).includes(v.type)) throw usage(`Invalid --type '${v.type}': use one of ${EVENT_TYPES.join(', ')}.`);
  const { body } = await apiCall<ListBody<PlatformEvent>>(api, 'GET', '/v1/events', { query: { limit: limitOption(v.limit) ?? 10, type: v.type } });
  if (v.json) io.out(JSON.stringify(body, null, 2));
  else if (body.data.length === 0) io.out(`No events${v.type ? ` of type ${v.type}` : ''} on the ${api.label}. Cause one with: payplane trigger order.succeeded`);
  else io.out(table(['ID', 'TYPE', 'OBJECT', 'VERSION', 'CREATED'], body.data.map((e) => [e.id, e.type, e.data.object.id, String(e.data.object.version), e.created_at])) + more(body, 'events'));
  return 0;
};

const more = (body: ListBody<unknown>, what: string) => (body.has_more ? `\n(more ${what}: raise --limit, up to 100)` : '');

export const runEventsShow: ApiRun = async (api, v, io, [id]) => {
  const { body } = await apiCall<PlatformEvent & { deliveries: { target: string; status: string; attempts: number; last_attempt_at: string | null }[] }>(api, 'GET', `/v1/events/${encodeURIComponent(id!)}`);
  if (v.json) io.out(JSON.stringify(body, null, 2));
  else {
    const o = body.data.object;
    io.out(
      [
        `${body.id}  ${body.type}  ${body.created_at}`,
        `  object ${o.id} (${o.object}, version ${o.version}${typeof o.status === 'string' ? `, ${o.status}` : ''})`,
        `  changed ${body.data.previous_attributes ? Object.keys(body.data.previous_attributes).join(', ') : '(created)'}`,
        `  request ${body.request ? `${body.request.id}${body.request.idempotency_key ? ` (Idempotency-Key ${body.request.idempotency_key})` : ''}` : 'none (the channel, a sweep or the reconciler)'}`,
        body.deliveries.length
          ? `  deliveries:\n${table(['TARGET', 'STATUS', 'ATTEMPTS', 'LAST_ATTEMPT'], body.deliveries.map((d) => [d.target, d.status, String(d.attempts), d.last_attempt_at ?? '-'])).replace(/^/gm, '    ')}`
          : '  deliveries: none (no webhook endpoint subscribed to it)',
      ].join('\n'),
    );
  }
  return 0;
};

export const runEventsResend: ApiRun = async (api, v, io, [id]) => {
  const { body } = await apiCall<{ event: string; queued: { endpoint: string | null; notify_url: boolean; attempt: number }[] }>(api, 'POST', `/v1/events/${encodeURIComponent(id!)}/resend`, {
    body: v.endpoint === undefined ? {} : { endpoint: v.endpoint },
  });
  if (v.json) io.out(JSON.stringify(body, null, 2));
  else if (body.queued.length === 0) {
    io.out(`Nothing queued: no enabled webhook endpoint is subscribed to ${body.event}'s type and its order has no notify_url. Add an endpoint (POST /v1/webhook_endpoints), or replay it to your laptop with payplane listen --since <its created_at>.`);
  } else io.out(`Queued ${body.event} again:\n${table(['TARGET', 'ATTEMPT'], body.queued.map((q) => [q.endpoint ?? 'notify_url', String(q.attempt)]))}`);
  return 0;
};

interface OrderShown {
  id: string;
  status: string;
  amount: number;
  amount_refunded: number;
  currency: string;
  merchant_order_no: string;
  created_at: string;
  capture_method: string;
  checkout_url: string;
  payment_method_details: { card?: { brand: string; last4: string } } | null;
  last_payment_error: { code: string; message: string } | null;
}

export const runOrdersList: ApiRun = async (api, v, io) => {
  const { body } = await apiCall<ListBody<OrderShown>>(api, 'GET', '/v1/orders', { query: { limit: limitOption(v.limit) ?? 10, status: v.status } });
  if (v.json) io.out(JSON.stringify(body, null, 2));
  else if (body.data.length === 0) io.out(`No orders${v.status ? ` in status ${v.status}` : ''} on the ${api.label}. Make one with: payplane trigger order.created`);
  else io.out(table(['ID', 'STATUS', 'AMOUNT', 'REFUNDED', 'MERCHANT_ORDER_NO', 'CREATED'], body.data.map((o) => [o.id, o.status, money(o.amount, o.currency), money(o.amount_refunded, o.currency), o.merchant_order_no, o.created_at])) + more(body, 'orders'));
  return 0;
};

export const runOrdersShow: ApiRun = async (api, v, io, [id]) => {
  const { body: o } = await apiCall<OrderShown>(api, 'GET', `/v1/orders/${encodeURIComponent(id!)}`);
  if (v.json) io.out(JSON.stringify(o, null, 2));
  else {
    const card = o.payment_method_details?.card;
    io.out(
      [
        `${o.id}  ${o.status}  ${money(o.amount, o.currency)} (refunded ${money(o.amount_refunded, o.currency)})  ${o.merchant_order_no}`,
        `  created ${o.created_at}, capture ${o.capture_method}${card ? `, card ${card.brand} ••••${card.last4}` : ''}`,
        ...(o.last_payment_error ? [`  last payment error: ${o.last_payment_error.code}: ${o.last_payment_error.message}`] : []),
        `  checkout ${o.checkout_url}`,
      ].join('\n'),
    );
  }
  return 0;
};

export const runRefundsCreate: ApiRun = async (api, v, io) => {
  // Whole minor units only: "5.00" would be 5 to some and 500 to others.
  if (v.amount !== undefined && !/^\d+$/.test(v.amount)) throw usage(`Invalid --amount '${v.amount}': use an integer in minor units (500 = 5.00 USD), or omit it to refund what is left.`);
  const body = { order_id: v.order, ...(v.amount === undefined ? {} : { amount: Number(v.amount) }), ...(v.reason === undefined ? {} : { reason: v.reason }) };
  const { body: r } = await apiCall<{ id: string; order_id: string; amount: number; currency: string; status: string; failure_reason: string | null }>(api, 'POST', '/v1/refunds', { body });
  if (v.json) io.out(JSON.stringify(r, null, 2));
  else io.out(`Refund ${r.id} of ${money(r.amount, r.currency)} on order ${r.order_id}: ${r.status}${r.failure_reason ? ` (${r.failure_reason})` : ''}.`);
  return 0;
};
