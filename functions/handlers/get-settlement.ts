import { api } from '../http/api';
import { settlements } from '../settlements/api';

/** GET /v1/settlements/{id}: totals, status, payout and the bank account's last 4 digits. */
export const handler = api(async (req) => ({ status: 200, body: await settlements().get(req, req.params.id ?? '') }));
