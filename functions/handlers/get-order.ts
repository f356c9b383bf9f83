import { api } from '../http/api';
import { payments } from '../payments';

/** GET /v1/orders/{id}, with its payment fields. */
export const handler = api(async (req) => ({ status: 200, body: await payments().getOrder(req, req.params.id ?? '') }));
