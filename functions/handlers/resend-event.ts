import { required } from '../commons/config';
import { idempotentApi } from '../http/idempotent-api';
import { resendEvent } from '../notifications/recovery';

/** POST /v1/events/{id}/resend: the event delivered again, to every enabled endpoint or to `{"endpoint": "we_…"}`. */
export const handler = idempotentApi(async (req) => ({ status: 200, body: await resendEvent(required('TABLE_NAME'), req, req.params.id ?? '', req.body) }));
