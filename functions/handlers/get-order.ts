import { api } from '../http/api';
import { orders } from '../orders';

/** GET /v1/orders/{id} */
export const handler = api(async (req) => ({ status: 200, body: await orders().get(req, req.params.id ?? '') }));
