import { api } from '../http/api';
import { settlements } from '../settlements/api';

/** GET /v1/settlements/{id}/transactions: the settlement's ledger entries, in report order. */
export const handler = api(async (req) => ({ status: 200, body: await settlements().transactions(req, req.params.id ?? '', req.query) }));
