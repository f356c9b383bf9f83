import { api } from '../http/api';
import { orders } from '../orders';

/** POST /v1/orders/{id}/close */
export const handler = api(async (req) => ({ status: 200, body: await orders().close(req, req.params.id ?? '') }));
