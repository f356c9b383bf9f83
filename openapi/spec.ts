import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as z from 'zod';
import { listAuditEventsSchema } from '../functions/audit/api';
import { API_VERSION, EVENT_TYPES } from '../functions/events/event';
import { recoverSchema, resendSchema } from '../functions/notifications/recovery';
import { createOrderSchema, listOrdersSchema, orderIdSchema } from '../functions/orders/schemas';
import { captureSchema, confirmSchema, refundIdSchema, refundSchema } from '../functions/payments/schemas';
import { listSettlementsSchema, listTransactionsSchema, reportQuerySchema, settlementIdSchema } from '../functions/settlements/api';
import { createEndpointSchema, endpointIdSchema, eventIdSchema, listEndpointsSchema, listEventsSchema, rollSecretSchema, updateEndpointSchema } from '../functions/webhooks/schemas';
import * as r from './responses';

/**
 * The OpenAPI 3.1 document, built from the zod schemas that validate requests (functions/…/schemas.ts) and the
 * response schemas (responses.ts). `npm run openapi` writes it to docs/openapi.json; test/unit/openapi.test.ts fails
 * when the committed file is not what this builds. Nothing here is bundled into a Lambda: GET /v1/openapi.json
 * serves the committed JSON.
 */

const ROOT = join(import.meta.dirname, '..');
const SCHEMAS = '#/components/schemas/';

type Method = 'GET' | 'POST' | 'DELETE';
/** One route: what it takes (zod) and what it answers (status → a response schema, or CSV). */
export interface Route {
  method: Method;
  path: string;
  operationId: string;
  summary: string;
  tag: string;
  params?: Record<string, z.ZodType>;
  query?: z.ZodObject;
  body?: z.ZodType;
  example?: unknown;
  ok: { status: number; schema: z.ZodType; description: string; csv?: boolean; contentType?: string };
  /** Errors beyond those every route can answer (ERRORS). */
  errors?: number[];
  public?: boolean;
}

const id = { id: orderIdSchema };

/** Every /v1 route of the template but this document's own (test/infra/openapi.test.ts holds them equal). */
export const ROUTES: Route[] = [
  { method: 'POST', path: '/v1/orders', operationId: 'CreateOrder', summary: 'Create an order', tag: 'Orders', body: createOrderSchema(false), example: { merchant_order_no: 'A-1001', amount: 1050, currency: 'USD', description: 'Two coffees', payer: { email: 'payer@example.com' } }, ok: { status: 201, schema: r.order, description: 'The order, requires_payment' }, errors: [409] },
  { method: 'GET', path: '/v1/orders', operationId: 'ListOrders', summary: 'List orders, newest first', tag: 'Orders', query: listOrdersSchema, ok: { status: 200, schema: r.lists.orders, description: 'A page of orders' }, errors: [404] },
  { method: 'GET', path: '/v1/orders/{id}', operationId: 'GetOrder', summary: 'Retrieve an order', tag: 'Orders', params: id, ok: { status: 200, schema: r.order, description: 'The order' }, errors: [404] },
  { method: 'POST', path: '/v1/orders/{id}/close', operationId: 'CloseOrder', summary: 'Close an unpaid order, or void its authorization', tag: 'Orders', params: id, ok: { status: 200, schema: r.order, description: 'The closed order' }, errors: [404, 409] },
  { method: 'POST', path: '/v1/orders/{id}/confirm', operationId: 'ConfirmOrder', summary: 'Pay an order with a payment method', tag: 'Payments', params: id, body: confirmSchema, example: { payment_method: { type: 'card', card: { number: '4242424242424242', exp_month: 12, exp_year: 2030, cvc: '123' } } }, ok: { status: 200, schema: r.order, description: 'The order after the attempt (succeeded, requires_capture, requires_action or processing)' }, errors: [402, 404, 409] },
  { method: 'POST', path: '/v1/orders/{id}/capture', operationId: 'CaptureOrder', summary: 'Capture an authorized order, wholly or in part', tag: 'Payments', params: id, body: captureSchema, example: { amount: 500 }, ok: { status: 200, schema: r.order, description: 'The succeeded order' }, errors: [404, 409] },
  { method: 'GET', path: '/v1/orders/{id}/refunds', operationId: 'ListRefunds', summary: 'List the refunds of an order', tag: 'Refunds', params: id, ok: { status: 200, schema: r.lists.refunds, description: 'The order\'s refunds' }, errors: [404] },
  { method: 'POST', path: '/v1/refunds', operationId: 'CreateRefund', summary: 'Refund a succeeded order, wholly or in part', tag: 'Refunds', body: refundSchema, example: { order_id: 'ord_8Q1xZ2pLk3Vb', amount: 500, reason: 'requested_by_customer' }, ok: { status: 201, schema: r.refund, description: 'The refund' }, errors: [402, 404, 409] },
  { method: 'GET', path: '/v1/refunds/{id}', operationId: 'GetRefund', summary: 'Retrieve a refund', tag: 'Refunds', params: { id: refundIdSchema }, ok: { status: 200, schema: r.refund, description: 'The refund' }, errors: [404] },
  { method: 'GET', path: '/v1/balance', operationId: 'GetBalance', summary: 'The balance per currency', tag: 'Balance', ok: { status: 200, schema: r.balance, description: 'Available, pending, in payout and authorized, per currency' } },
  { method: 'GET', path: '/v1/audit_events', operationId: 'ListAuditEvents', summary: 'List your audit trail, newest first', tag: 'Audit', query: listAuditEventsSchema, ok: { status: 200, schema: r.lists.auditEvents, description: 'A page of audit events' } },
  { method: 'GET', path: '/v1/settlements', operationId: 'ListSettlements', summary: 'List settlements, newest first', tag: 'Settlements', query: listSettlementsSchema, ok: { status: 200, schema: r.lists.settlements, description: 'A page of settlements' }, errors: [404] },
  { method: 'GET', path: '/v1/settlements/{id}', operationId: 'GetSettlement', summary: 'Retrieve a settlement', tag: 'Settlements', params: { id: settlementIdSchema }, ok: { status: 200, schema: r.settlementWithReport, description: 'The settlement' }, errors: [404] },
  { method: 'GET', path: '/v1/settlements/{id}/transactions', operationId: 'ListSettlementTransactions', summary: 'List the ledger entries a settlement pays', tag: 'Settlements', params: { id: settlementIdSchema }, query: listTransactionsSchema, ok: { status: 200, schema: r.lists.settlementTransactions, description: 'A page of transactions, in report order' }, errors: [404] },
  { method: 'GET', path: '/v1/settlements/{id}/report', operationId: 'GetSettlementReport', summary: 'The settlement report: CSV, or the manifest of its parts', tag: 'Settlements', params: { id: settlementIdSchema }, query: reportQuerySchema, ok: { status: 200, schema: r.settlementReport, description: 'The CSV (one part, or ?part=N), else the manifest', csv: true }, errors: [404] },
  { method: 'GET', path: '/v1/bills/{date}', operationId: 'GetBill', summary: 'The trade bill of a business day: CSV, or the manifest of its parts', tag: 'Settlements', params: { date: z.iso.date().meta({ description: 'The business day, YYYY-MM-DD.', examples: ['2026-12-01'] }) }, query: reportQuerySchema, ok: { status: 200, schema: r.bill, description: 'The CSV (one part, or ?part=N), else the manifest', csv: true } },
  { method: 'POST', path: '/v1/webhook_endpoints', operationId: 'CreateWebhookEndpoint', summary: 'Create a webhook endpoint', tag: 'Webhooks', body: createEndpointSchema(false), example: { url: 'https://shop.example/payplane/webhooks', enabled_events: ['order.succeeded', 'refund.succeeded'] }, ok: { status: 201, schema: r.webhookEndpoint, description: 'The endpoint, with its secret (shown once)' }, errors: [409] },
  { method: 'GET', path: '/v1/webhook_endpoints', operationId: 'ListWebhookEndpoints', summary: 'List webhook endpoints', tag: 'Webhooks', query: listEndpointsSchema, ok: { status: 200, schema: r.lists.webhookEndpoints, description: 'A page of endpoints' }, errors: [404] },
  { method: 'GET', path: '/v1/webhook_endpoints/{id}', operationId: 'GetWebhookEndpoint', summary: 'Retrieve a webhook endpoint', tag: 'Webhooks', params: { id: endpointIdSchema }, ok: { status: 200, schema: r.webhookEndpoint, description: 'The endpoint' }, errors: [404] },
  { method: 'POST', path: '/v1/webhook_endpoints/{id}', operationId: 'UpdateWebhookEndpoint', summary: 'Update a webhook endpoint', tag: 'Webhooks', params: { id: endpointIdSchema }, body: updateEndpointSchema(false), example: { disabled: false }, ok: { status: 200, schema: r.webhookEndpoint, description: 'The endpoint' }, errors: [404, 409] },
  { method: 'DELETE', path: '/v1/webhook_endpoints/{id}', operationId: 'DeleteWebhookEndpoint', summary: 'Delete a webhook endpoint', tag: 'Webhooks', params: { id: endpointIdSchema }, ok: { status: 200, schema: r.deletedWebhookEndpoint, description: 'Deleted' }, errors: [404] },
  { method: 'POST', path: '/v1/webhook_endpoints/{id}/roll_secret', operationId: 'RollWebhookEndpointSecret', summary: 'Roll the signing secret; the old one signs too until it expires', tag: 'Webhooks', params: { id: endpointIdSchema }, body: rollSecretSchema, example: { expires_in: 86400 }, ok: { status: 200, schema: r.webhookEndpoint, description: 'The endpoint, with its new secret (shown once)' }, errors: [404, 409] },
  { method: 'POST', path: '/v1/webhook_endpoints/{id}/recover', operationId: 'RecoverWebhookEndpoint', summary: 'Queue again every delivery to the endpoint that failed since a time', tag: 'Webhooks', params: { id: endpointIdSchema }, body: recoverSchema, example: { since: '2026-12-01T00:00:00Z' }, ok: { status: 200, schema: r.endpointRecovery, description: 'How many deliveries were queued' }, errors: [404, 409] },
  { method: 'GET', path: '/v1/events', operationId: 'ListEvents', summary: 'List events, newest first', tag: 'Events', query: listEventsSchema, ok: { status: 200, schema: r.lists.events, description: 'A page of events' }, errors: [404] },
  { method: 'GET', path: '/v1/events/{id}', operationId: 'GetEvent', summary: 'Retrieve an event', tag: 'Events', params: { id: eventIdSchema }, ok: { status: 200, schema: r.eventWithDeliveries, description: 'The event and its deliveries' }, errors: [404] },
  { method: 'POST', path: '/v1/events/{id}/resend', operationId: 'ResendEvent', summary: 'Deliver an event again', tag: 'Events', params: { id: eventIdSchema }, body: resendSchema, example: { endpoint: 'we_7YhQ2kLm9Pz' }, ok: { status: 200, schema: r.eventResend, description: 'The deliveries queued' }, errors: [404, 409] },
  { method: 'GET', path: '/v1/platform/public_keys', operationId: 'PlatformPublicKeys', summary: 'The JWKS of the platform signature and the checkout\'s signed return_url', tag: 'Platform', public: true, ok: { status: 200, schema: r.jwks, description: 'A JSON Web Key Set (RFC 7517)', contentType: 'application/jwk-set+json' } },
  { method: 'GET', path: '/v1/openapi.json', operationId: 'OpenApi', summary: 'This document', tag: 'Platform', public: true, ok: { status: 200, schema: z.record(z.string(), z.unknown()), description: 'The OpenAPI 3.1 document' } },
];

/** What any merchant route can answer (the authorizer, the usage plan, the wrapper, API Gateway's own answers). */
const ERRORS: Record<number, string> = {
  400: 'Invalid request: the message names the parameter, the value and the fix',
  401: 'No valid API key',
  402: 'The card was declined (card_error with decline_code)',
  403: 'The key lacks the route\'s scope, or the request was refused',
  404: 'No such object (of your account)',
  409: 'The object\'s state does not allow it, or the Idempotency-Key is in use',
  413: 'The body is over 64 KB',
  429: 'Too many requests: wait Retry-After seconds',
  500: 'Our error: retry with the same Idempotency-Key',
  502: 'The function failed: retry with the same Idempotency-Key',
  504: 'The function timed out: retry with the same Idempotency-Key',
};
const COMMON_ERRORS = [400, 401, 403, 429, 500, 502, 504];
const PUBLIC_ERRORS = [429, 500, 502, 504];

const jsonSchema = (schema: z.ZodType, io: 'input' | 'output') => {
  const { $schema, ...rest } = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as Record<string, unknown>;
  void $schema;
  return rest;
};

/** The error codes the functions throw (`new XError('code', …)`), read from their source: the list stays complete. */
function errorCodes(): string[] {
  const codes = new Set<string>();
  const walk = (dir: string) => {
    for (const entry of readdirSyncSorted(dir)) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts')) {
        for (const m of readFileSync(path, 'utf8').matchAll(/new [A-Z][A-Za-z]*Error\(\s*'([a-z][a-z0-9_]+)'/g)) codes.add(m[1]!);
      }
    }
  };
  walk(join(ROOT, 'functions'));
  return [...codes].sort();
}

const readdirSyncSorted = (dir: string) => readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name));

/** The catalogue of docs/events.md: type → when it is sent. */
function eventDescriptions(): Record<string, string> {
  const rows = readFileSync(join(ROOT, 'docs', 'events.md'), 'utf8').matchAll(/^\| `([a-z_]+\.[a-z_]+)` \| [a-z]+ \| (.+) \|$/gm);
  return Object.fromEntries([...rows].map((m) => [m[1]!, m[2]!]));
}

const bodyRequired = (body: z.ZodType) => ((jsonSchema(body, 'input').required as string[] | undefined)?.length ?? 0) > 0;

export function buildSpec() {
  // Registered once per document: component ids must not collide with an earlier build's (tests build twice).
  const components = z.toJSONSchema(z.globalRegistry, { target: 'draft-2020-12', io: 'output', unrepresentable: 'any', uri: (id) => `${SCHEMAS}${id}` }).schemas;
  const schemas: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(components)) {
    const { $schema, $id, ...rest } = schema as Record<string, unknown>;
    void $schema;
    void $id;
    schemas[name] = rest;
  }
  const codes = errorCodes();
  (schemas.Error as { description?: string }).description = `The error object of every 4xx and 5xx. Codes: ${codes.map((c) => `\`${c}\``).join(', ')}; API Gateway's own answers add codes such as \`rate_limited\` and \`api_key_invalid\`.`;

  const ref = (schema: z.ZodType) => {
    const meta = z.globalRegistry.get(schema) as { id?: string } | undefined;
    return meta?.id ? { $ref: `${SCHEMAS}${meta.id}` } : jsonSchema(schema, 'output');
  };

  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of ROUTES) {
    const parameters: unknown[] = [];
    for (const [name, schema] of Object.entries(route.params ?? {})) parameters.push({ name, in: 'path', required: true, schema: jsonSchema(schema, 'input') });
    if (route.query) {
      const query = jsonSchema(route.query, 'input') as { properties?: Record<string, Record<string, unknown>>; required?: string[] };
      for (const [name, schema] of Object.entries(query.properties ?? {})) {
        const { description, ...rest } = schema;
        parameters.push({ name, in: 'query', required: query.required?.includes(name) ?? false, schema: rest, ...(description ? { description } : {}) });
      }
    }
    if (route.method === 'POST') parameters.push({ $ref: '#/components/parameters/IdempotencyKey' });
    const errors = [...(route.public ? PUBLIC_ERRORS : COMMON_ERRORS), ...(route.errors ?? []), ...(route.method === 'POST' ? [409, 413] : [])];
    const responses: Record<string, unknown> = {
      [route.ok.status]: {
        description: route.ok.description,
        headers: { 'Request-Id': { $ref: '#/components/headers/RequestId' } },
        content: {
          [route.ok.contentType ?? 'application/json']: { schema: ref(route.ok.schema) },
          ...(route.ok.csv ? { 'text/csv': { schema: { type: 'string' } } } : {}),
        },
      },
    };
    for (const status of [...new Set(errors)].sort()) responses[status] = { $ref: `#/components/responses/E${status}` };
    paths[route.path] ??= {};
    paths[route.path]![route.method.toLowerCase()] = {
      operationId: route.operationId,
      summary: route.summary,
      tags: [route.tag],
      ...(route.public ? { security: [] } : {}),
      ...(parameters.length ? { parameters } : {}),
      ...(route.body
        ? { requestBody: { required: bodyRequired(route.body), content: { 'application/json': { schema: jsonSchema(route.body, 'input'), ...(route.example ? { example: route.example } : {}) } } } }
        : {}),
      responses,
    };
  }

  const described = eventDescriptions();
  const webhooks = Object.fromEntries(
    EVENT_TYPES.map((type) => [
      type,
      {
        post: {
          operationId: `webhook_${type.replace('.', '_')}`,
          summary: type,
          description: `${described[type] ?? `The settlement's status changed (docs/settlement.md).`} Signed per Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature) and with Payplane-Platform-Signature (docs/webhooks.md).`,
          tags: ['Webhooks'],
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: `${SCHEMAS}${r.eventId(type)}` } } } },
          responses: { '2XX': { description: 'Received: any 2xx ends the retries' } },
        },
      },
    ]),
  );

  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'Payplane API',
      version: API_VERSION,
      description: 'Orders, payments, refunds, webhooks and settlements. Amounts are integers in the currency\'s minor units. Generated from the validators (openapi/spec.ts): do not edit docs/openapi.json by hand; run `npm run openapi`.',
    },
    servers: [{ url: 'http://127.0.0.1:4566/local', description: 'The local cloud (npm start); a deployed stage is https://<api>/<stage>' }],
    security: [{ ApiKey: [] }],
    tags: [...new Set(ROUTES.map((route) => route.tag))].map((name) => ({ name })),
    paths,
    webhooks,
    components: {
      securitySchemes: { ApiKey: { type: 'http', scheme: 'bearer', bearerFormat: 'sk_test_…', description: 'Your secret (or restricted) API key: `Authorization: Bearer sk_test_…`.' } },
      parameters: {
        IdempotencyKey: {
          name: 'Idempotency-Key',
          in: 'header',
          required: false,
          description: 'Up to 255 characters. A retry with the same key and body gets the first answer (Idempotent-Replayed: true) and creates nothing twice; kept 24 h.',
          schema: { type: 'string', maxLength: 255 },
          example: 'order-A-1001',
        },
      },
      headers: { RequestId: { description: 'The request\'s id: quote it to support.', schema: { type: 'string' } } },
      responses: Object.fromEntries(
        Object.entries(ERRORS).map(([status, description]) => [
          `E${status}`,
          { description, headers: { 'Request-Id': { $ref: '#/components/headers/RequestId' } }, content: { 'application/json': { schema: { $ref: `${SCHEMAS}Error` } } } },
        ]),
      ),
      schemas,
    },
  };
}
