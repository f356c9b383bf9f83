import { idempotentApi } from '../http/idempotent-api';
import { webhookEndpoints } from '../webhooks';

/** POST /v1/webhook_endpoints/{id}: url, enabled_events, description, disabled. */
export const handler = idempotentApi(async (req) => ({ status: 200, body: await webhookEndpoints().update(req, req.params.id ?? '', req.body) }));
