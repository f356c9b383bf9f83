import { api } from '../http/api';
import { settlements } from '../settlements/api';

/** GET /v1/bills/{date}[?part=N]: the business day's trade bill (payments and refunds) as CSV with its Content-Digest. */
export const handler = api((req) => settlements().bill(req, req.params.date ?? '', req.query));
