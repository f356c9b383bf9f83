import { KMSClient } from '@aws-sdk/client-kms';
import type { ScheduledEvent } from 'aws-lambda';
import { signAuditHeads } from '../audit/heads';
import { dynamo, s3 } from '../commons/clients';
import { required } from '../commons/config';
import { lambda } from '../commons/lambda';
import { logger } from '../commons/logger';

let kms: KMSClient | undefined;

/** Daily (EventBridge Scheduler, lib/constructs/audit-heads.ts): signs every audit chain head and writes the document to S3. */
export const handler = lambda<ScheduledEvent | { source?: string }, { key: string; chains: number }>().handler(async () => {
  kms ??= new KMSClient({});
  const mode = env('AUDIT_HEADS_LOCK_MODE');
  const retentionDays = Number(env('AUDIT_HEADS_RETENTION_DAYS'));
  if ((mode !== 'COMPLIANCE' && mode !== 'GOVERNANCE') || !(Number.isInteger(retentionDays) && retentionDays > 0)) {
    throw new Error(`AUDIT_HEADS_LOCK_MODE=${mode} / AUDIT_HEADS_RETENTION_DAYS=${retentionDays}: expected COMPLIANCE or GOVERNANCE and a whole number of days (lib/stage-config.ts auditHeads).`);
  }
  const { key, signed } = await signAuditHeads({
    db: dynamo(),
    kms,
    s3: s3(),
    tableName: required('TABLE_NAME'),
    keyId: env('AUDIT_HEADS_KEY_ARN'),
    bucket: env('AUDIT_HEADS_BUCKET'),
    lock: { mode, retentionDays },
    log: (message, fields) => logger.error(message, fields),
  });
  logger.info('audit heads signed', { key, chains: signed.document.chains.length });
  return { key, chains: signed.document.chains.length };
});

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`Environment variable ${name} is not set for this function (lib/constructs/audit-heads.ts sets it)`);
  return value;
}
