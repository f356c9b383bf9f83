import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Webhook } from 'standardwebhooks';
import type { PlatformEvent } from '../functions/events/event';
import { apiCall, listAll, type MerchantApi } from './merchant-api';

/**
 * `payplane listen`: polls `GET /v1/events` (nothing but the key: no tunnel, no WebSocket) and forwards each new
 * event to a developer's server, signed in the Standard Webhooks format with a secret of this session (the
 * platform's own signature cannot be made here: it needs the endpoint's secret and the platform key).
 *
 * Event ids are stamped when the change is decided and commit a moment later, so an id can appear below one
 * already seen. Each poll therefore re-reads the last LAG_MS (of the server's clock, not the laptop's) and drops
 * what this session has seen: nothing is missed that commits within LAG_MS, and nothing is forwarded twice.
 */
export const LAG_MS = 60_000;
export const POLL_MS = 1_000;
const FORWARD_TIMEOUT_MS = 10_000;

export interface Forwarded {
  event: PlatformEvent;
  /** The receiver's HTTP status, or null when the request failed (error says why). */
  status: number | null;
  error?: string;
  latency_ms: number;
}

export interface ListenOptions {
  forwardTo: URL;
  /** Only these types; all when undefined. */
  types?: ReadonlySet<string>;
  /** Forward events created at or after this time; default: from now (what exists at start is not forwarded). */
  since?: Date;
  signal: AbortSignal;
  /** The session's `whsec_…`; default: a new one. */
  secret?: string;
  onReady(info: { secret: string; from: Date }): void;
  onForwarded(f: Forwarded): void;
  pollMs?: number;
}

export const newSessionSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

/** Runs until `signal` aborts; resolves with how many events it forwarded. */
export async function listen(api: MerchantApi, o: ListenOptions): Promise<number> {
  const secret = o.secret ?? newSessionSecret();
  const webhook = new Webhook(secret);
  // The first call checks the key (a 401 ends the session before it prints anything) and reads the server's clock.
  const first = await apiCall<{ data: PlatformEvent[] }>(api, 'GET', '/v1/events', { query: { limit: 1 }, signal: o.signal });
  const start = first.date ?? new Date();
  const from = o.since ?? start;
  const seen = new Map<string, number>(); // id → created_at ms, pruned below the window
  let floor = Math.min(from.getTime(), start.getTime() - LAG_MS);
  if (!o.since) for (const e of (await window(api, floor, o.signal)).data) seen.set(e.id, Date.parse(e.created_at));
  o.onReady({ secret, from });
  let forwarded = 0;
  while (!o.signal.aborted) {
    try {
      const { data, date } = await window(api, floor, o.signal);
      for (const event of data.reverse()) {
        if (seen.has(event.id) || o.signal.aborted) continue;
        seen.set(event.id, Date.parse(event.created_at));
        if (Date.parse(event.created_at) < from.getTime()) continue;
        if (o.types && !o.types.has(event.type)) continue;
        o.onForwarded(await forward(webhook, o.forwardTo, event, o.signal));
        forwarded++;
      }
      floor = Math.max(from.getTime(), (date ?? new Date()).getTime() - LAG_MS);
      for (const [id, created] of seen) if (created < floor) seen.delete(id);
      await sleep(o.pollMs ?? POLL_MS, undefined, { signal: o.signal });
    } catch (error) {
      if (o.signal.aborted) break;
      throw error;
    }
  }
  return forwarded;
}

/** Every event created at or after `floor`, oldest last. */
const window = (api: MerchantApi, floor: number, signal: AbortSignal) =>
  listAll<PlatformEvent>(api, '/v1/events', { 'created[gte]': new Date(floor).toISOString() }, signal);

async function forward(webhook: Webhook, to: URL, event: PlatformEvent, signal: AbortSignal): Promise<Forwarded> {
  const body = JSON.stringify(event);
  const now = new Date();
  const headers = {
    'Content-Type': 'application/json',
    'User-Agent': 'payplane-cli listen',
    'webhook-id': event.id,
    'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
    'webhook-signature': webhook.sign(event.id, now, body),
  };
  const began = Date.now();
  try {
    const res = await fetch(to, { method: 'POST', headers, body, signal: AbortSignal.any([signal, AbortSignal.timeout(FORWARD_TIMEOUT_MS)]) });
    await res.arrayBuffer();
    return { event, status: res.status, latency_ms: Date.now() - began };
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name;
    return { event, status: null, error: cause, latency_ms: Date.now() - began };
  }
}
