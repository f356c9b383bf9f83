import { api } from '../http/api';
import { webhookEndpoints } from '../webhooks';

/** DELETE /v1/webhook_endpoints/{id} */
export const handler = api(async (req) => ({ status: 200, body: await webhookEndpoints().delete(req, req.params.id ?? '') }));
