import { api } from '../http/api';
import { webhookEndpoints } from '../webhooks';

/** GET /v1/webhook_endpoints */
export const handler = api(async (req) => ({ status: 200, body: await webhookEndpoints().list(req, req.query) }));
