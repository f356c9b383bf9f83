import { isDeepStrictEqual } from 'node:util';
import { API_VERSION, newEventId, type EventType, type PlatformEvent } from '../events/event';

/** A payer's contact details (orders/order.ts Payer). */
interface Payer {
  name?: string;
  email?: string;
  phone?: string;
}

/**
 * What an event says about a change, for any kind of object: the masked payer, the API fields the change altered,
 * the event itself. Pure. Each kind's own rules (its snapshot, its event types) are its Subject (writer.ts).
 */

/** The API's request context of a change: null for the channel's notifications, sweeps and the reconciler. */
export interface RequestContext {
  id: string;
  idempotency_key: string | null;
}

/**
 * The payer as events show it: enough for a merchant to recognise whose order it is, not enough to contact them.
 * `Jane Doe` → `J***`, `jane@example.com` → `j***@example.com`, `+8613800001234` → `+86*******1234`.
 */
export function maskPayer(payer: Payer): Payer {
  return {
    ...(payer.name !== undefined ? { name: maskName(payer.name) } : {}),
    ...(payer.email !== undefined ? { email: maskEmail(payer.email) } : {}),
    ...(payer.phone !== undefined ? { phone: maskPhone(payer.phone) } : {}),
  };
}

const maskName = (name: string) => `${[...name.trim()][0] ?? ''}***`;

function maskEmail(email: string): string {
  const at = email.lastIndexOf('@');
  return `${[...email.slice(0, Math.max(at, 0))][0] ?? ''}***${email.slice(at)}`;
}

/** E.164 (orders/schemas.ts): "+", the first two digits (a country code's start), stars, the last four. */
function maskPhone(phone: string): string {
  const keepStart = phone.startsWith('+') ? 3 : 2;
  if (phone.length <= keepStart + 4) return '*'.repeat(phone.length);
  return phone.slice(0, keepStart) + '*'.repeat(phone.length - keepStart - 4) + phone.slice(-4);
}

/** The API fields whose values differ, with their values before; `version` always moves by one, so it is left out. */
export function previousAttributes(before: Record<string, unknown>, after: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) {
    if (key === 'version') continue;
    if (!isDeepStrictEqual(before[key], after[key])) out[key] = before[key] ?? null;
  }
  return out;
}

export function buildEvent(
  type: EventType,
  object: PlatformEvent['data']['object'],
  before: Record<string, unknown> | undefined,
  request: RequestContext | null,
  now: Date,
): PlatformEvent {
  return {
    id: newEventId(now),
    object: 'event',
    type,
    created_at: now.toISOString(),
    api_version: API_VERSION,
    livemode: false,
    data: { object, ...(before ? { previous_attributes: previousAttributes(before, object) } : {}) },
    request,
  };
}
