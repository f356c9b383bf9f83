import { api } from '../http/api';
import { events } from '../events';

/** GET /v1/events/{id}, with its deliveries and every attempt. */
export const handler = api(async (req) => ({ status: 200, body: await events().get(req, req.params.id ?? '') }));
