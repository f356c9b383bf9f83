/**
 * Who changed configuration, as the audit trail records it (docs/data.md § Audit trail).
 *
 * An actor is always established by the platform, never claimed by the client:
 * - `merchant_key`: the API key the authorizer resolved (its id, never the key);
 * - `operator`: the IAM principal API Gateway authenticated on the operator route (requestContext.identity.userArn).
 *   Merchants never see it: their reads show "Payplane operator";
 * - `system`: the platform itself (the settlement schedule, the local cloud's demo seed).
 */
export type Actor =
  | { type: 'merchant_key'; key_id: string }
  | { type: 'operator'; principal: string }
  | { type: 'system'; name: string };

/** What every configuration change is given by its caller, besides its input. */
export interface AuditContext {
  actor: Actor;
  /** API Gateway's request id (or the execution's name for a scheduled run). */
  requestId: string;
}

/** The actions the trail records; `<object>.<verb>`, past tense, as in events. */
export const AUDIT_ACTIONS = [
  'merchant.created',
  'api_key.created',
  'api_key.rolled',
  'api_key.revoked',
  'merchant.fees_set',
  'merchant.limits_set',
  'merchant.payouts_set',
  'merchant.receipts_set',
  'fx_rate.set',
  'settlement.run',
  'webhook_endpoint.created',
  'webhook_endpoint.updated',
  'webhook_endpoint.secret_rolled',
  'webhook_endpoint.deleted',
  'payer.erased',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];
