import { api } from '../http/api';
import { orders } from '../orders';

/** POST /v1/orders */
export const handler = api(async (req) => ({ status: 201, body: await orders().create(req, req.body) }));
