import { idempotentApi } from '../http/idempotent-api';
import { payments } from '../payments';

/** POST /v1/orders/{id}/confirm: pays the order server-side (a decline is a 402 card_error). */
export const handler = idempotentApi(async (req) => ({ status: 200, body: await payments().confirm(req, req.params.id ?? '', req.body) }));
