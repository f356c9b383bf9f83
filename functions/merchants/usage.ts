import {
  CreateApiKeyCommand,
  CreateUsagePlanCommand,
  CreateUsagePlanKeyCommand,
  DeleteUsagePlanKeyCommand,
  GetApiKeysCommand,
  GetUsagePlansCommand,
  UpdateUsagePlanCommand,
  type APIGatewayClient,
  type UsagePlan,
} from '@aws-sdk/client-api-gateway';
import { InvalidRequestError } from '../commons/errors';
import { usageKeyValue } from './keys';

/**
 * Per-merchant rate limits with API Gateway usage plans (docs/operations.md, "Rate limits"). Each merchant has
 * one API Gateway API key, shared by all its Payplane keys (secret and restricted), so rolling a key or adding
 * a restricted one costs no API Gateway call and a merchant's keys share one bucket. The authorizer returns
 * its value as `usageIdentifierKey`; clients never send it (`apiKeySourceType: AUTHORIZER`), so it is an
 * identifier, not a credential, and is derived from the merchant id instead of being stored.
 *
 * The key joins the stage's default plan (`payplane-<stage>-merchants`, from the template) or, once an
 * operator overrides the merchant's limits, a plan of its own (`payplane-<stage>-<merchant id>`).
 */
export interface UsageDeps {
  apiGateway: Pick<APIGatewayClient, 'send'>;
  restApiId: string;
  stageName: string;
}


const defaultPlanName = (stage: string) => `payplane-${stage}-merchants`;
const merchantPlanName = (stage: string, merchantId: string) => `payplane-${stage}-${merchantId}`;

/** The account-region limits a merchant override may reach (API Gateway's defaults, raisable by AWS). */
export const MAX_RATE_LIMIT = 10_000;
export const MAX_BURST_LIMIT = 5_000;

export interface MerchantLimits {
  rateLimit: number;
  burstLimit: number;
}

/** Creates the merchant's API Gateway key if it has none, and puts it in a plan of the stage if it is in none. */
export async function ensureUsageKey(usage: UsageDeps, merchantId: string): Promise<string> {
  const keyId = await apiKeyOf(usage, merchantId);
  if ((await plansOfKey(usage, keyId)).length === 0) {
    await usage.apiGateway.send(
      new CreateUsagePlanKeyCommand({ usagePlanId: (await planNamed(usage, defaultPlanName(usage.stageName))).id!, keyId, keyType: 'API_KEY' }),
    );
  }
  return keyId;
}

/**
 * Gives the merchant its own usage plan with these limits (created, or updated if it exists) and moves its
 * key there. Between leaving the old plan and joining the new one (two calls) its requests get 403.
 */
export async function setMerchantLimits(usage: UsageDeps, merchantId: string, limits: MerchantLimits): Promise<MerchantLimits & { usagePlanId: string }> {
  const throttle = validateLimits(limits);
  const keyId = await ensureUsageKey(usage, merchantId);
  const name = merchantPlanName(usage.stageName, merchantId);
  let plan = await planNamed(usage, name, false);
  if (plan) {
    await usage.apiGateway.send(
      new UpdateUsagePlanCommand({
        usagePlanId: plan.id,
        patchOperations: [
          { op: 'replace', path: '/throttle/rateLimit', value: String(throttle.rateLimit) },
          { op: 'replace', path: '/throttle/burstLimit', value: String(throttle.burstLimit) },
        ],
      }),
    );
  } else {
    plan = await usage.apiGateway.send(
      new CreateUsagePlanCommand({
        name,
        description: `Rate limit override of merchant ${merchantId}`,
        throttle,
        apiStages: [{ apiId: usage.restApiId, stage: usage.stageName }],
      }),
    );
  }
  for (const other of await plansOfKey(usage, keyId)) {
    if (other.id === plan.id) return { ...throttle, usagePlanId: plan.id! };
    await usage.apiGateway.send(new DeleteUsagePlanKeyCommand({ usagePlanId: other.id, keyId }));
  }
  await usage.apiGateway.send(new CreateUsagePlanKeyCommand({ usagePlanId: plan.id, keyId, keyType: 'API_KEY' }));
  return { ...throttle, usagePlanId: plan.id! };
}

function validateLimits(limits: { rateLimit: unknown; burstLimit: unknown }): MerchantLimits {
  const check = (value: unknown, param: string, max: number) => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
      throw new InvalidRequestError(
        'parameter_invalid',
        `Invalid '${param}': got ${JSON.stringify(value ?? null)}. Pass a whole number from 1 to ${max} (the account-region limit; ask AWS to raise it first), e.g. --rate 500 --burst 1000.`,
        { param },
      );
    }
    return value;
  };
  return { rateLimit: check(limits.rateLimit, 'rate', MAX_RATE_LIMIT), burstLimit: check(limits.burstLimit, 'burst', MAX_BURST_LIMIT) };
}

async function apiKeyOf(usage: UsageDeps, merchantId: string): Promise<string> {
  try {
    const created = await usage.apiGateway.send(
      new CreateApiKeyCommand({ name: merchantId, value: usageKeyValue(merchantId), enabled: true, description: `Usage identifier of merchant ${merchantId}` }),
    );
    return created.id!;
  } catch (error) {
    if ((error as Error).name !== 'ConflictException') throw error;
  }
  let position: string | undefined;
  do {
    const page = await usage.apiGateway.send(new GetApiKeysCommand({ nameQuery: merchantId, position, limit: 500 }));
    const found = page.items?.find((k) => k.name === merchantId);
    if (found) return found.id!;
    position = page.position;
  } while (position);
  throw new Error(`API Gateway refused to create the usage key of ${merchantId} as a duplicate, yet lists none named ${merchantId}.`);
}

/** The plans holding the key that cover this API stage (at most one: API Gateway refuses a second). */
async function plansOfKey(usage: UsageDeps, keyId: string): Promise<UsagePlan[]> {
  return (await allPlans(usage, keyId)).filter((p) => coversStage(usage, p));
}

async function planNamed(usage: UsageDeps, name: string): Promise<UsagePlan>;
async function planNamed(usage: UsageDeps, name: string, required: false): Promise<UsagePlan | undefined>;
async function planNamed(usage: UsageDeps, name: string, required = true): Promise<UsagePlan | undefined> {
  const plan = (await allPlans(usage)).find((p) => p.name === name && coversStage(usage, p));
  if (!plan && required) {
    throw new Error(`No usage plan '${name}' on API ${usage.restApiId} stage ${usage.stageName}. Deploy the current stack (npx cdk deploy).`);
  }
  return plan;
}

async function allPlans(usage: UsageDeps, keyId?: string): Promise<UsagePlan[]> {
  const plans: UsagePlan[] = [];
  let position: string | undefined;
  do {
    const page = await usage.apiGateway.send(new GetUsagePlansCommand({ keyId, position, limit: 500 }));
    plans.push(...(page.items ?? []));
    position = page.position;
  } while (position);
  return plans;
}

const coversStage = (usage: UsageDeps, plan: UsagePlan) =>
  (plan.apiStages ?? []).some((s) => s.apiId === usage.restApiId && s.stage === usage.stageName);
