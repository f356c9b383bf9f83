import { InvalidRequestError, PermissionError } from '../commons/errors';
import { msg } from '../commons/messages';

/**
 * What a restricted key (`rk_test_…`) may do. Secret keys may do everything. Each merchant route needs one
 * scope, named in ROUTE_SCOPES (the one place: the API wrapper looks the route up there, and the infra tier
 * checks that every route of the template is listed). `<resource>:write` includes `<resource>:read`.
 */
export const SCOPES = [
  'orders:read',
  'orders:write',
  'refunds:read',
  'refunds:write',
  'balance:read',
  'events:read',
  'events:write',
  'webhook_endpoints:read',
  'webhook_endpoints:write',
  'settlements:read',
  'bills:read',
  'audit_events:read',
] as const;
export type Scope = (typeof SCOPES)[number];

/** `<METHOD> <resource path>` (API Gateway's `event.resource`) → the scope a restricted key needs. */
export const ROUTE_SCOPES: Readonly<Record<string, Scope>> = {
  'POST /v1/orders': 'orders:write',
  'GET /v1/orders': 'orders:read',
  'GET /v1/orders/{id}': 'orders:read',
  'POST /v1/orders/{id}/close': 'orders:write',
  'POST /v1/orders/{id}/confirm': 'orders:write',
  'POST /v1/orders/{id}/capture': 'orders:write',
  'GET /v1/orders/{id}/refunds': 'refunds:read',
  'POST /v1/refunds': 'refunds:write',
  'GET /v1/refunds/{id}': 'refunds:read',
  'GET /v1/balance': 'balance:read',
  'POST /v1/webhook_endpoints': 'webhook_endpoints:write',
  'GET /v1/webhook_endpoints': 'webhook_endpoints:read',
  'GET /v1/webhook_endpoints/{id}': 'webhook_endpoints:read',
  'POST /v1/webhook_endpoints/{id}': 'webhook_endpoints:write',
  'DELETE /v1/webhook_endpoints/{id}': 'webhook_endpoints:write',
  'POST /v1/webhook_endpoints/{id}/roll_secret': 'webhook_endpoints:write',
  'GET /v1/events': 'events:read',
  'GET /v1/events/{id}': 'events:read',
  // Resending sends data to the merchant's own endpoints again: a write of events, not a read.
  'POST /v1/events/{id}/resend': 'events:write',
  'POST /v1/webhook_endpoints/{id}/recover': 'webhook_endpoints:write',
  'GET /v1/settlements': 'settlements:read',
  'GET /v1/settlements/{id}': 'settlements:read',
  'GET /v1/settlements/{id}/transactions': 'settlements:read',
  'GET /v1/settlements/{id}/report': 'settlements:read',
  // The day's payments and refunds, order by order: finance's view, apart from the settlements.
  'GET /v1/bills/{date}': 'bills:read',
  // Who changed the account's configuration, and how (docs/audit.md).
  'GET /v1/audit_events': 'audit_events:read',
};

/** The authorizer's context value for a secret key: every scope. */
export const ALL_SCOPES = '*';

/** Parses `orders:read,refunds:write` (the CLI's --scope): known scopes, at least one, no repeats. */
export function parseScopes(input: unknown): Scope[] {
  const text = typeof input === 'string' ? input : '';
  const parts = text.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = parts.filter((p) => !(SCOPES as readonly string[]).includes(p));
  if (parts.length === 0 || unknown.length) {
    throw new InvalidRequestError(
      'parameter_invalid',
      `Invalid 'scope': got ${JSON.stringify(input ?? null)}${unknown.length ? ` (unknown: ${unknown.join(', ')})` : ''}. ` +
        `Pass a comma-separated list of ${SCOPES.join(', ')}, e.g. --scope orders:read,refunds:write.`,
      { param: 'scope' },
    );
  }
  return [...new Set(parts)] as Scope[];
}

/**
 * Refuses a call whose key lacks the route's scope. `granted` is the authorizer's context value: `*` for a
 * secret key, else the restricted key's scopes, comma-separated.
 */
export function requireScope(granted: string, method: string, resource: string): void {
  if (granted === ALL_SCOPES) return;
  const needed = ROUTE_SCOPES[`${method} ${resource}`];
  const held = new Set(granted.split(','));
  if (needed && (held.has(needed) || held.has(needed.replace(/:read$/, ':write')))) return;
  const scope = needed ?? `${method} ${resource}`;
  throw new PermissionError(
    'missing_scope',
    needed ? msg.missing_scope({ needed, method, resource, granted }) : msg['missing_scope.route']({ method, resource }),
    { param: scope },
  );
}
