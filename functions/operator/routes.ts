/**
 * The operator API (`/operator/…`, AuthorizationType AWS_IAM): one route per configuration-changing CLI command.
 * This table is shared by the stack (lib/constructs/operator-api.ts adds each route to its function), the handlers
 * (functions/operator/operations.ts runs each route) and the CLI (cli/operator-client.ts builds each call), so a
 * route has one spelling. No SDK imports here: the CDK app reads it at synth time.
 */
import { InvalidRequestError } from '../commons/errors';

/** The functions of the operator API; each holds only the grants of its own routes (lib/constructs/operator-api.ts). */
export type OperatorFunctionId = 'OperatorMerchants' | 'OperatorPayouts' | 'OperatorFxRates' | 'OperatorSettlements' | 'OperatorPayers';

export const OPERATOR_ROUTES = {
  'merchants create': { method: 'POST', resource: '/operator/merchants', fn: 'OperatorMerchants' },
  'merchants fees set': { method: 'PUT', resource: '/operator/merchants/{id}/fees', fn: 'OperatorMerchants' },
  'merchants limits set': { method: 'PUT', resource: '/operator/merchants/{id}/limits', fn: 'OperatorMerchants' },
  'merchants receipts set': { method: 'PUT', resource: '/operator/merchants/{id}/receipts', fn: 'OperatorMerchants' },
  'keys roll': { method: 'POST', resource: '/operator/merchants/{id}/keys/roll', fn: 'OperatorMerchants' },
  'keys create': { method: 'POST', resource: '/operator/merchants/{id}/keys', fn: 'OperatorMerchants' },
  'keys revoke': { method: 'POST', resource: '/operator/keys/{id}/revoke', fn: 'OperatorMerchants' },
  'merchants payouts set': { method: 'PUT', resource: '/operator/merchants/{id}/payouts', fn: 'OperatorPayouts' },
  'fx set': { method: 'POST', resource: '/operator/fx_rates', fn: 'OperatorFxRates' },
  'settlements run': { method: 'POST', resource: '/operator/settlement_runs', fn: 'OperatorSettlements' },
  'payers erase': { method: 'POST', resource: '/operator/orders/{id}/erase_payer', fn: 'OperatorPayers' },
} as const satisfies Record<string, { method: 'POST' | 'PUT'; resource: string; fn: OperatorFunctionId }>;

export type OperatorCommand = keyof typeof OPERATOR_ROUTES;

/** `method resource`, the key a handler dispatches on (event.httpMethod, event.resource). */
export const routeKey = (route: { method: string; resource: string }) => `${route.method} ${route.resource}`;

/** The path of a route with its `{id}` filled in (URI-encoded), e.g. /operator/merchants/mch_1/fees. */
export function operatorPath(command: OperatorCommand, id?: string): string {
  const { resource } = OPERATOR_ROUTES[command];
  if (!resource.includes('{id}')) return resource;
  if (!id) throw new InvalidRequestError('parameter_missing', `'${command}' needs an id for ${resource}: got ${JSON.stringify(id ?? null)}.`, { param: 'id' });
  return resource.replace('{id}', encodeURIComponent(id));
}
