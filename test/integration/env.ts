import { inject } from 'vitest';
import { resetClients } from '../../functions/commons/clients';

/**
 * Points the functions' own code at the local services the integration global setup started,
 * through the same variables the local cloud gives each function (AWS_ENDPOINT_URL_*).
 */
export function useLocalServices() {
  const services = inject('localServices');
  Object.assign(process.env, {
    AWS_REGION: services.region,
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_ENDPOINT_URL_DYNAMODB: services.endpoints.dynamodb,
    AWS_ENDPOINT_URL_KMS: services.endpoints.kms,
    AWS_ENDPOINT_URL_S3: services.endpoints.s3,
    TABLE_NAME: services.tables.main,
    IDEMPOTENCY_TABLE_NAME: services.tables.idempotency,
    KMS_KEY_ARN: services.kmsKeyArn,
    // What the stack sets (lib/payplane-stack.ts); the paths without a caller (sweeps, notifications) render
    // their events' checkout_url with it. The same base as the payment cases' callers (payments-world.ts).
    PUBLIC_BASE_URL: 'http://127.0.0.1:3000/dev',
  });
  resetClients();
  return services;
}
