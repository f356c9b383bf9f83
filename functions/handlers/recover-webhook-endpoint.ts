import { required } from '../commons/config';
import { idempotentApi } from '../http/idempotent-api';
import { recoverEndpoint } from '../notifications/recovery';

/** POST /v1/webhook_endpoints/{id}/recover `{"since": ISO}`: every delivery to it that failed since then, queued once more. */
export const handler = idempotentApi(async (req) => ({ status: 200, body: await recoverEndpoint(required('TABLE_NAME'), req, req.params.id ?? '', req.body) }));
