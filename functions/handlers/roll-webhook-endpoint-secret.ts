import { idempotentApi } from '../http/idempotent-api';
import { webhookEndpoints } from '../webhooks';

/** POST /v1/webhook_endpoints/{id}/roll_secret: a new secret, shown once; the old one signs until expires_in. */
export const handler = idempotentApi(async (req) => ({ status: 200, body: await webhookEndpoints().rollSecret(req, req.params.id ?? '', req.body) }));
