import { api } from '../http/api';
import { settlements } from '../settlements/api';

/** GET /v1/settlements/{id}/report[?part=N]: the CSV with its Content-Digest, or the manifest of its parts. */
export const handler = api((req) => settlements().report(req, req.params.id ?? '', req.query));
