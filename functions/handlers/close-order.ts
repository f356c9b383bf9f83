import { idempotentApi } from '../http/idempotent-api';
import { payments } from '../payments';

/** POST /v1/orders/{id}/close: closes an unpaid order, or voids its authorization (requires_capture, requires_action). */
export const handler = idempotentApi(async (req) => ({ status: 200, body: await payments().close(req, req.params.id ?? '') }));
