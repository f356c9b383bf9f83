import { api } from '../http/api';
import { payments } from '../payments';

/** GET /v1/orders/{id}/refunds, oldest first. */
export const handler = api(async (req) => ({ status: 200, body: await payments().listRefunds(req, req.params.id ?? '') }));
