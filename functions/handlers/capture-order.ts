import { idempotentApi } from '../http/idempotent-api';
import { payments } from '../payments';

/** POST /v1/orders/{id}/capture: captures all or `amount` of a requires_capture order; the rest is released. */
export const handler = idempotentApi(async (req) => ({ status: 200, body: await payments().capture(req, req.params.id ?? '', req.body) }));
