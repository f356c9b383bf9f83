import { api } from '../http/api';
import { webhookEndpoints } from '../webhooks';

/** POST /v1/webhook_endpoints: the answer carries the signing secret, the only time it is shown. */
export const handler = api(async (req) => ({ status: 201, body: await webhookEndpoints().create(req, req.body) }));
