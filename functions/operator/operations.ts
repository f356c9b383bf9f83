import { StartExecutionCommand, type SFNClient } from '@aws-sdk/client-sfn';
import * as z from 'zod';
import { InternalError, NotFoundError } from '../commons/errors';
import { appliedRate, formatDecimal, parseRate, setRate, type FxRate } from '../fx';
import type { FeeScheduleOverride } from '../ledger/fees';
import { createMerchant, createRestrictedKey, revokeKey, rollKey, setMerchantFees, setPayoutSettings, setRateLimits, setReceipts, type MerchantDeps, type PayoutSettingsView } from '../merchants/service';
import type { Scope } from '../merchants/scopes';
import type { MerchantLimits } from '../merchants/usage';
import { erasePayer } from '../orders/erase';
import { operatorApi, type ApiResult, type OperatorRequest } from '../http/api';
import { parseInput } from '../http/validation';
import { parseCutoff, parseRunMerchant, runName } from '../settlements/run';
import { OPERATOR_ROUTES, routeKey, type OperatorCommand, type OperatorFunctionId } from './routes';

/**
 * What each operator route does: validate the body's shape (the services validate the values and name the
 * parameter), call the service with the operator's AuditContext as its last argument, answer what
 * `payplane <command> --json` prints. Secrets a service returns (a new API key) are in the answer, once.
 */

export interface OperatorDeps {
  /** The main table, and what the merchant services of the function need (usage plans, a sealer). */
  merchants?: MerchantDeps;
  /** The settlement state machine, for POST /operator/settlement_runs. */
  settlement?: { sfn: Pick<SFNClient, 'send'>; stateMachineArn: string };
}

export interface MerchantCreated {
  object: 'merchant';
  id: string;
  name: string;
  created_at: string;
  livemode: false;
  key_id: string;
  secret_key: string;
  /** Only when created with fees. */
  fee_schedule?: FeeScheduleOverride;
}

export interface MerchantFees {
  object: 'merchant';
  id: string;
  name: string;
  created_at: string;
  /** null: no override, the platform default applies. */
  fee_schedule: FeeScheduleOverride | null;
}

export interface KeyRolledBody {
  merchant_id: string;
  key_id: string;
  secret_key: string;
  revoked_key_ids: string[];
}

export interface RestrictedKeyCreated {
  object: 'api_key';
  merchant_id: string;
  key_id: string;
  /** rk_test_…, shown once. */
  restricted_key: string;
  scopes: Scope[];
}

export interface KeyRevokedBody {
  merchant_id: string;
  key_id: string;
  kind: 'secret' | 'restricted';
  /** False: it was already revoked. */
  revoked: boolean;
}

export interface MerchantLimitsSet extends MerchantLimits {
  merchant_id: string;
  usage_plan_id: string;
}

export interface MerchantReceiptsSet {
  merchant_id: string;
  receipts: { email: boolean; sms: boolean };
}

export interface MerchantPayoutsSet {
  merchant_id: string;
  /** Defaults applied; the bank account as its last 4 digits only (null: none on file yet). */
  payout: PayoutSettingsView;
}

export interface FxRateSet {
  object: 'fx_rate';
  rate: FxRate;
  /** The rate merchants are converted at: rate × (1 − markup). */
  applied_rate: string;
  /** False: the same rate was already set at that time (nothing changed). */
  created: boolean;
}

export interface SettlementRunStarted {
  object: 'settlement_run';
  execution_arn: string;
  /** The execution's name: the run id of the settlements it makes. */
  run_id: string;
  started_at: string;
  cutoff?: string;
  merchant_id?: string;
}

/** A body of exactly these parameters; their values are the services' to check (their errors name the parameter). */
const body = <K extends string>(...keys: K[]) =>
  z.strictObject(Object.fromEntries(keys.map((k) => [k, z.unknown().optional()]))) as unknown as z.ZodType<{ [P in K]: unknown }>;

const merchantsOf = (deps: OperatorDeps): MerchantDeps => deps.merchants ?? missing('the main table (merchants)');
function missing(what: string): never {
  throw new InternalError('operator_deps_missing', `This operator function was deployed without ${what}.`);
}

type Operation = (deps: OperatorDeps, req: OperatorRequest) => Promise<ApiResult>;

const OPERATIONS: Record<OperatorCommand, Operation> = {
  'merchants create': async (deps, req) => {
    const input = parseInput(body('name', 'fees'), req.body);
    const created = await createMerchant(merchantsOf(deps), input, {}, req.by);
    const result: MerchantCreated = { object: 'merchant', ...created.merchant, livemode: false, key_id: created.keyId, secret_key: created.secretKey.reveal() };
    return { status: 201, body: result };
  },
  'merchants fees set': async (deps, req) => {
    const input = parseInput(body('fees'), req.body);
    const merchant = await setMerchantFees(merchantsOf(deps), { merchantId: req.params.id, fees: input.fees }, req.by);
    const result: MerchantFees = { object: 'merchant', ...merchant, fee_schedule: merchant.fee_schedule ?? null };
    return { status: 200, body: result };
  },
  'merchants limits set': async (deps, req) => {
    const input = parseInput(body('rate_limit', 'burst_limit'), req.body);
    const set = await setRateLimits(merchantsOf(deps), { merchantId: req.params.id, rateLimit: input.rate_limit, burstLimit: input.burst_limit }, req.by);
    const result: MerchantLimitsSet = { merchant_id: set.merchantId, rateLimit: set.rateLimit, burstLimit: set.burstLimit, usage_plan_id: set.usagePlanId };
    return { status: 200, body: result };
  },
  'merchants receipts set': async (deps, req) => {
    const input = parseInput(body('email', 'sms'), req.body);
    const set = await setReceipts(merchantsOf(deps), { merchantId: req.params.id, email: input.email, sms: input.sms }, req.by);
    const result: MerchantReceiptsSet = { merchant_id: set.merchantId, receipts: set.receipts };
    return { status: 200, body: result };
  },
  'merchants payouts set': async (deps, req) => {
    const input = parseInput(body('currency', 'delay_days', 'bank_account'), req.body);
    const set = await setPayoutSettings(
      merchantsOf(deps),
      { merchantId: req.params.id, currency: input.currency, delayDays: input.delay_days, bankAccount: input.bank_account },
      req.by,
    );
    const result: MerchantPayoutsSet = { merchant_id: set.merchantId, payout: set.payout };
    return { status: 200, body: result };
  },
  'keys roll': async (deps, req) => {
    parseInput(body(), req.body);
    const rolled = await rollKey(merchantsOf(deps), { merchantId: req.params.id }, req.by);
    const result: KeyRolledBody = { merchant_id: rolled.merchantId, key_id: rolled.keyId, secret_key: rolled.secretKey.reveal(), revoked_key_ids: rolled.revokedKeyIds };
    return { status: 201, body: result };
  },
  'keys create': async (deps, req) => {
    const input = parseInput(body('scopes'), req.body);
    const created = await createRestrictedKey(merchantsOf(deps), { merchantId: req.params.id, scopes: input.scopes }, req.by);
    const result: RestrictedKeyCreated = { object: 'api_key', merchant_id: created.merchantId, key_id: created.keyId, restricted_key: created.secretKey.reveal(), scopes: created.scopes };
    return { status: 201, body: result };
  },
  'keys revoke': async (deps, req) => {
    parseInput(body(), req.body);
    const revoked = await revokeKey(merchantsOf(deps), { keyId: req.params.id }, req.by);
    const result: KeyRevokedBody = { merchant_id: revoked.merchantId, key_id: revoked.keyId, kind: revoked.kind, revoked: revoked.revoked };
    return { status: 200, body: result };
  },
  'fx set': async (deps, req) => {
    const input = parseInput(body('from', 'to', 'rate', 'markup_bps', 'effective_at'), req.body);
    // Who set it is the principal AWS authenticated, never a name the client sends.
    const principal = req.by.actor.type === 'operator' ? req.by.actor.principal : 'unknown';
    const set = await setRate(merchantsOf(deps), { ...input, set_by: principal }, req.now, req.by);
    const result: FxRateSet = { object: 'fx_rate', rate: set.rate, applied_rate: formatDecimal(appliedRate(parseRate(set.rate.rate), set.rate.markup_bps)), created: set.created };
    return { status: set.created ? 201 : 200, body: result };
  },
  'settlements run': async (deps, req) => {
    const input = parseInput(body('cutoff', 'merchant_id'), req.body);
    const cutoff = parseCutoff(input.cutoff);
    const merchantId = parseRunMerchant(input.merchant_id);
    const { sfn, stateMachineArn } = deps.settlement ?? missing('the settlement state machine');
    const name = runName(cutoff);
    // The Prepare step records `actor` and `request_id` in the run's audit entry (settlement.run).
    const execution = { ...(cutoff ? { cutoff } : {}), ...(merchantId ? { merchant_id: merchantId } : {}), source: 'operator', actor: req.by.actor, request_id: req.by.requestId };
    const started = await sfn.send(new StartExecutionCommand({ stateMachineArn, name, input: JSON.stringify(execution) }));
    const result: SettlementRunStarted = {
      object: 'settlement_run',
      execution_arn: started.executionArn!,
      run_id: name,
      started_at: new Date(started.startDate ?? req.now).toISOString(),
      ...(cutoff ? { cutoff } : {}),
      ...(merchantId ? { merchant_id: merchantId } : {}),
    };
    return { status: 201, body: result };
  },
  'payers erase': async (deps, req) => {
    parseInput(body(), req.body);
    return { status: 200, body: await erasePayer(merchantsOf(deps), { orderId: req.params.id }, req.by) };
  },
};

/**
 * The Lambda handler of one operator function: the routes OPERATOR_ROUTES gives it, and no other (a route wired to
 * the wrong function answers 404 rather than running with another function's grants). `deps` is called per request
 * and may cache its clients.
 */
export function operatorHandler(fn: OperatorFunctionId, deps: () => OperatorDeps) {
  const mine = new Map(
    (Object.entries(OPERATOR_ROUTES) as [OperatorCommand, (typeof OPERATOR_ROUTES)[OperatorCommand]][])
      .filter(([, route]) => route.fn === fn)
      .map(([command, route]) => [routeKey(route), OPERATIONS[command]]),
  );
  return operatorApi(async (req) => {
    const operation = mine.get(req.route);
    if (!operation) throw new NotFoundError('operator route', req.route, 'route');
    return operation(deps(), req);
  });
}
