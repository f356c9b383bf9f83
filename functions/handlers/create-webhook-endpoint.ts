import { idempotentApi } from '../http/idempotent-api';
import { webhookEndpoints } from '../webhooks';

/** POST /v1/webhook_endpoints: the answer carries the signing secret, the only time it is shown. */
export const handler = idempotentApi(async (req) => ({ status: 201, body: await webhookEndpoints().create(req, req.body) }));
