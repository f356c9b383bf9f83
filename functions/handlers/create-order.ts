import { idempotentApi } from '../http/idempotent-api';
import { orders } from '../orders';

/** POST /v1/orders */
export const handler = idempotentApi(async (req) => ({ status: 201, body: await orders().create(req, req.body) }));
