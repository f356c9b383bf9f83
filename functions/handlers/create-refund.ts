import { api } from '../http/api';
import { payments } from '../payments';

/** POST /v1/refunds */
export const handler = api(async (req) => ({ status: 201, body: await payments().refund(req, req.body) }));
