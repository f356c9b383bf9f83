import { Stack, Token } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { StateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { OPERATOR_ROUTES, type OperatorFunctionId } from '../../functions/operator/routes';
import type { Stage } from '../stage-config';
import { acknowledge } from './acknowledge';
import type { PayplaneApi } from './payplane-api';
import { PayplaneFunction } from './payplane-function';
import type { PayplaneTable } from './payplane-table';

export type { OperatorFunctionId };

export interface OperatorApiProps {
  readonly stage: Stage;
  readonly api: PayplaneApi;
  /** Merchants, API keys, FX rates and orders live here (and, once audited, the audit chains: AUDIT#…). */
  readonly mainTable: PayplaneTable;
  /** The stack's key: bank accounts are sealed with it (purpose bank_account). */
  readonly key: IKey;
  /** The settlement state machine `settlements run` starts. */
  readonly settlementStateMachine: StateMachine;
}

/** The audit strand's chains (pk AUDIT#<chain>) are written in the same transaction as each change. */
const AUDIT_PARTITIONS = ['AUDIT#*'];

/**
 * The operator API: `/operator/…` on the public REST API, AuthorizationType AWS_IAM, one route per
 * configuration-changing command of the CLI (functions/operator/routes.ts). API Gateway checks the caller's SigV4
 * signature and `execute-api:Invoke` on the method; the handler records the principal it names
 * (requestContext.identity.userArn) as the change's actor. The operator's own policy (docs/operator-policy.json)
 * grants Invoke on these routes instead of writes to the table.
 *
 * Five functions, split by what they may touch: merchants and keys (+ usage plans), payout settings (+ sealing
 * bank accounts), FX rates, settlement runs (StartExecution only), payer erasure. Construct ids = FunctionIds.
 */
export function addOperatorApi(stack: Stack, props: OperatorApiProps): Record<OperatorFunctionId, PayplaneFunction> {
  const { stage, api, mainTable, key, settlementStateMachine } = props;
  const fn = (id: OperatorFunctionId, entry: string, description: string) =>
    new PayplaneFunction(stack, id, { stage, entry: `functions/handlers/${entry}.ts`, description });
  const region = Stack.of(stack).region;
  const partition = Stack.of(stack).partition;
  const apigateway = (path: string) => `arn:${partition}:apigateway:${region}::${path}`;
  // cdk-nag names a resource as synthesized: the stage's region is a literal, the partition a pseudo parameter.
  const nagRegion = Token.isUnresolved(region) ? '<AWS::Region>' : region;
  const apigatewayFinding = (path: string) => `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:apigateway:${nagRegion}::${path}]`;

  // functions/merchants/service.ts: merchant, API key and key-id items, read by key and written in transactions
  // (ConditionCheck: a restricted key's merchant exists); gsi1: a merchant's keys (roll revokes them all).
  const merchants = fn('OperatorMerchants', 'operator-merchants', 'Operator API: merchants, fees, limits, receipts, keys (/operator/merchants…, /operator/keys…)')
    .bindTable(mainTable, {
      actions: ['GetItem', 'PutItem', 'UpdateItem', 'ConditionCheckItem'],
      indexes: ['gsi1'],
      onlyPartitions: ['MERCHANT#*', 'APIKEY#*', 'KEYID#*', ...AUDIT_PARTITIONS],
    });
  // functions/merchants/usage.ts: each merchant's API Gateway key and usage plan (rate limits).
  merchants.role.addToPrincipalPolicy(
    new iam.PolicyStatement({ actions: ['apigateway:GET', 'apigateway:POST'], resources: [apigateway('/apikeys'), apigateway('/usageplans')] }),
  );
  merchants.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['apigateway:PATCH'], resources: [apigateway('/usageplans/*')] }));
  merchants.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['apigateway:POST'], resources: [apigateway('/usageplans/*/keys')] }));
  merchants.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['apigateway:DELETE'], resources: [apigateway('/usageplans/*/keys/*')] }));
  merchants.fn.addEnvironment('REST_API_ID', api.restApi.restApiId);
  // The stage's name is the stage (PayplaneApi); not deploymentStage.stageName, which depends on these methods.
  merchants.fn.addEnvironment('API_STAGE_NAME', stage);
  acknowledge(
    merchants,
    apigatewayFinding('/usageplans/*'),
    'Usage plans of merchants with their own rate limit are created at run time (payplane-<stage>-<merchant id>): their ids are not known to the template.',
  );
  acknowledge(
    merchants,
    apigatewayFinding('/usageplans/*/keys'),
    'A merchant\'s API Gateway key joins the default plan or its own plan, created at run time: the plan id is not known to the template.',
  );
  acknowledge(
    merchants,
    apigatewayFinding('/usageplans/*/keys/*'),
    'Moving a merchant to its own plan removes its key (created at run time) from the plan it was in: neither id is known to the template.',
  );

  // functions/merchants/service.ts setPayoutSettings: the merchant's payout settings and, in the same transaction, its audit entry and chain head.
  const payouts = fn('OperatorPayouts', 'operator-payouts', 'Operator API: PUT /operator/merchants/{id}/payouts')
    .bindTable(mainTable, { actions: ['GetItem', 'PutItem', 'UpdateItem'], onlyPartitions: ['MERCHANT#*', ...AUDIT_PARTITIONS] })
    // Seals the bank account; never opens one (the answer shows the last 4 digits kept beside it).
    .bindKey(key, 'encrypt', ['bank_account']);

  // functions/fx/table.ts setRate: a conditional Put of the rate, then (on a duplicate) a Get of the one in place.
  const fxRates = fn('OperatorFxRates', 'operator-fx-rates', 'Operator API: POST /operator/fx_rates') //
    .bindTable(mainTable, { actions: ['GetItem', 'PutItem'], onlyPartitions: ['FXRATE#*', ...AUDIT_PARTITIONS] });

  const settlements = fn('OperatorSettlements', 'operator-settlements', 'Operator API: POST /operator/settlement_runs (starts the settlement state machine)');
  settlements.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['states:StartExecution'], resources: [settlementStateMachine.stateMachineArn] }));
  settlements.fn.addEnvironment('SETTLEMENT_STATE_MACHINE_ARN', settlementStateMachine.stateMachineArn);

  // functions/orders/erase.ts: the order, its derived items, the audit entry (payer.erased).
  const payers = fn('OperatorPayers', 'operator-payers', 'Operator API: POST /operator/orders/{id}/erase_payer') //
    .bindTable(mainTable, { actions: ['GetItem', 'UpdateItem', 'PutItem'] });

  const functions: Record<OperatorFunctionId, PayplaneFunction> = {
    OperatorMerchants: merchants,
    OperatorPayouts: payouts,
    OperatorFxRates: fxRates,
    OperatorSettlements: settlements,
    OperatorPayers: payers,
  };
  for (const route of Object.values(OPERATOR_ROUTES)) api.addIamRoute(route.method, route.resource, functions[route.fn]);
  return functions;
}
