import type { AuditContext } from '../functions/audit/context';

/** Who the audit trail says made the tests' configuration changes (fixtures acting as the platform). */
export const TEST_BY: AuditContext = { actor: { type: 'system', name: 'test-fixture' }, requestId: 'test-fixture' };
