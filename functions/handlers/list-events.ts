import { api } from '../http/api';
import { events } from '../events';

/** GET /v1/events */
export const handler = api(async (req) => ({ status: 200, body: await events().list(req, req.query) }));
