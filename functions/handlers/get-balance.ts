import { api } from '../http/api';
import { payments } from '../payments';

/** GET /v1/balance: pending and available per currency. */
export const handler = api(async (req) => ({ status: 200, body: await payments().balance(req) }));
