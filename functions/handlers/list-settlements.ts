import { api } from '../http/api';
import { settlements } from '../settlements/api';

/** GET /v1/settlements: the merchant's settlements, newest first. */
export const handler = api(async (req) => ({ status: 200, body: await settlements().list(req, req.query) }));
