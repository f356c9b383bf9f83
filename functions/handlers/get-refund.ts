import { api } from '../http/api';
import { payments } from '../payments';

/** GET /v1/refunds/{id} */
export const handler = api(async (req) => ({ status: 200, body: await payments().getRefund(req, req.params.id ?? '') }));
