import { api } from '../http/api';
import { webhookEndpoints } from '../webhooks';

/** GET /v1/webhook_endpoints/{id} (never the secret) */
export const handler = api(async (req) => ({ status: 200, body: await webhookEndpoints().get(req, req.params.id ?? '') }));
