import { listAuditEvents } from '../audit/api';
import { api } from '../http/api';

/** GET /v1/audit_events: the caller's own audit trail (docs/audit.md). */
export const handler = api(async (req) => ({ status: 200, body: await listAuditEvents(req, req.query) }));
