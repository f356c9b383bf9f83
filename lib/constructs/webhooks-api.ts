import type { Stack } from 'aws-cdk-lib';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { PayplaneApi } from './payplane-api';
import { PayplaneFunction, type TableAccess } from './payplane-function';
import type { PayplaneTable } from './payplane-table';
import type { Stage } from '../stage-config';

/** The functions of the webhook endpoints and events APIs (FunctionId names them). */
export type WebhooksApiFunctionId =
  | 'CreateWebhookEndpoint'
  | 'ListWebhookEndpoints'
  | 'GetWebhookEndpoint'
  | 'UpdateWebhookEndpoint'
  | 'DeleteWebhookEndpoint'
  | 'RollWebhookEndpointSecret'
  | 'ListEvents'
  | 'GetEvent';

export interface WebhooksApiProps {
  readonly stage: Stage;
  readonly api: PayplaneApi;
  /** Endpoints (WEBHOOKENDPOINT#, their count), events (EVENTS#) and deliveries (DELIVERY#) live here. */
  readonly mainTable: PayplaneTable;
  /** The POST routes' Idempotency-Keys. */
  readonly idempotencyTable: PayplaneTable;
  /** Seals the endpoints' signing secrets (purpose `webhook_secret`) and the POST routes' stored responses. */
  readonly key: IKey;
}

/**
 * The webhook endpoints API (`/v1/webhook_endpoints…`) and the events API (`/v1/events…`): one function per route,
 * each granted exactly what its code sends (functions/webhooks/endpoints.ts, functions/events/repository.ts).
 * Only the routes that create a secret may seal one, only the create opens one (to answer a resumed request),
 * and the reads never touch the key: they never show a secret.
 *
 * The functions are defined in the stack's own scope, not under a construct of this feature: their construct ids
 * are the FunctionIds the local cloud, the fault injection and the docs name (lib/payplane-stack.ts).
 */
export function addWebhooksApi(stack: Stack, props: WebhooksApiProps): Record<WebhooksApiFunctionId, PayplaneFunction> {
  const { stage, api, mainTable, idempotencyTable, key } = props;
  const idempotencyKeys: TableAccess = { actions: ['PutItem', 'UpdateItem', 'DeleteItem'] };
  // Each binding also sets its resource's variable (TABLE_NAME, IDEMPOTENCY_TABLE_NAME, KMS_KEY_ARN).
  const fn = (id: WebhooksApiFunctionId, entry: string, description: string) =>
    new PayplaneFunction(stack, id, { stage, entry: `functions/handlers/${entry}.ts`, description });

  const functions: Record<WebhooksApiFunctionId, PayplaneFunction> = {
    // Every change is one transaction with its audit entry (functions/audit/append.ts): GetItem the chain's head, PutItem
    // the entry and the head.
    // The endpoint and its slot in the merchant's count; GetItem also reads the endpoint a run that died wrote.
    CreateWebhookEndpoint: fn('CreateWebhookEndpoint', 'create-webhook-endpoint', 'POST /v1/webhook_endpoints')
      .bindTable(mainTable, { actions: ['GetItem', 'PutItem', 'UpdateItem'] })
      .bindTable(idempotencyTable, idempotencyKeys)
      // Seals the new secret and the stored response; opens a stored response, and the secret a run that died wrote.
      .bindKey(key, 'both', ['webhook_secret', 'idempotent-response']),
    // GetItem: the starting_after cursor's endpoint.
    ListWebhookEndpoints: fn('ListWebhookEndpoints', 'list-webhook-endpoints', 'GET /v1/webhook_endpoints') //
      .bindTable(mainTable, { actions: ['GetItem'], indexes: ['gsi1'] }),
    GetWebhookEndpoint: fn('GetWebhookEndpoint', 'get-webhook-endpoint', 'GET /v1/webhook_endpoints/{id}') //
      .bindTable(mainTable, { actions: ['GetItem'] }),
    // Reads the endpoint, then one update conditioned on it; it changes no secret.
    UpdateWebhookEndpoint: fn('UpdateWebhookEndpoint', 'update-webhook-endpoint', 'POST /v1/webhook_endpoints/{id}')
      .bindTable(mainTable, { actions: ['GetItem', 'PutItem', 'UpdateItem'] })
      .bindTable(idempotencyTable, idempotencyKeys)
      .bindKey(key, 'both', ['idempotent-response']),
    // Reads the endpoint (the entry's before), then deletes it and frees its slot. DELETE carries no Idempotency-Key:
    // deleting twice is a 404.
    DeleteWebhookEndpoint: fn('DeleteWebhookEndpoint', 'delete-webhook-endpoint', 'DELETE /v1/webhook_endpoints/{id}') //
      .bindTable(mainTable, { actions: ['GetItem', 'PutItem', 'DeleteItem', 'UpdateItem'] }),
    // Reads the endpoint, then a conditional update. Keeps the previous secret's ciphertext as it is: never opens it.
    RollWebhookEndpointSecret: fn('RollWebhookEndpointSecret', 'roll-webhook-endpoint-secret', 'POST /v1/webhook_endpoints/{id}/roll_secret')
      .bindTable(mainTable, { actions: ['GetItem', 'PutItem', 'UpdateItem'] })
      .bindTable(idempotencyTable, idempotencyKeys)
      .bindKey(key, 'encrypt', ['webhook_secret', 'idempotent-response'])
      .bindKey(key, 'decrypt', ['idempotent-response']),
    // A Query of the caller's EVENTS# partition.
    ListEvents: fn('ListEvents', 'list-events', 'GET /v1/events').bindTable(mainTable, { actions: ['Query'] }),
    // The event by key, then a Query of its DELIVERY# partition.
    GetEvent: fn('GetEvent', 'get-event', 'GET /v1/events/{id}').bindTable(mainTable, { actions: ['GetItem', 'Query'] }),
  };

  api.addRoute('POST', '/v1/webhook_endpoints', functions.CreateWebhookEndpoint);
  api.addRoute('GET', '/v1/webhook_endpoints', functions.ListWebhookEndpoints);
  api.addRoute('GET', '/v1/webhook_endpoints/{id}', functions.GetWebhookEndpoint);
  api.addRoute('POST', '/v1/webhook_endpoints/{id}', functions.UpdateWebhookEndpoint);
  api.addRoute('DELETE', '/v1/webhook_endpoints/{id}', functions.DeleteWebhookEndpoint);
  api.addRoute('POST', '/v1/webhook_endpoints/{id}/roll_secret', functions.RollWebhookEndpointSecret);
  api.addRoute('GET', '/v1/events', functions.ListEvents);
  api.addRoute('GET', '/v1/events/{id}', functions.GetEvent);
  return functions;
}
