import { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import { merchantDepsFromEnv } from '../merchants/deps';
import { operatorHandler, type OperatorDeps } from '../operator/operations';

let deps: OperatorDeps | undefined;

/** The operator's merchant and key routes (create, fees, limits, receipts, keys roll/create/revoke). */
export const handler = operatorHandler('OperatorMerchants', () => {
  // Usage plans and API Gateway keys: rate limits per merchant (functions/merchants/usage.ts).
  deps ??= { merchants: { ...merchantDepsFromEnv(), usage: { apiGateway: new APIGatewayClient({}), restApiId: env('REST_API_ID'), stageName: env('API_STAGE_NAME') } } };
  return deps;
});

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`Environment variable ${name} is not set for this function`);
  return value;
}
