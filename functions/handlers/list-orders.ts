import { api } from '../http/api';
import { orders } from '../orders';

/** GET /v1/orders */
export const handler = api(async (req) => ({ status: 200, body: await orders().list(req, req.query) }));
