import { idempotentApi } from '../http/idempotent-api';
import { payments } from '../payments';

/** POST /v1/refunds */
export const handler = idempotentApi(async (req) => ({ status: 201, body: await payments().refund(req, req.body) }));
