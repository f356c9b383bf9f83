import type { Stack } from 'aws-cdk-lib';
import type { PayplaneApi } from './payplane-api';
import { PayplaneFunction } from './payplane-function';
import type { PayplaneTable } from './payplane-table';
import type { Stage } from '../stage-config';

/** The functions of the settlements and bills API (FunctionId names them). */
export type SettlementsApiFunctionId = 'ListSettlements' | 'GetSettlement' | 'ListSettlementTransactions' | 'GetSettlementReport' | 'GetBill';

export interface SettlementsApiProps {
  readonly stage: Stage;
  readonly api: PayplaneApi;
  /** Settlements (SETTLEMENT#), the ledger's entries (gsi1 MERCHANT#…/ENTRY#…) and the orders they name live here. */
  readonly mainTable: PayplaneTable;
}

/**
 * The settlements API (`/v1/settlements…`) and the daily bill (`/v1/bills/{date}`), read-only: one function per
 * route, each granted the reads its code sends (functions/settlements/store.ts). No KMS key: nothing they show is
 * sealed (the bank account is shown as the last 4 digits the settlement keeps; orders are read for
 * merchant_order_no only, never their payer).
 *
 * The functions are defined in the stack's own scope (construct ids = FunctionIds), as the webhooks API's are.
 */
export function addSettlementsApi(stack: Stack, props: SettlementsApiProps): Record<SettlementsApiFunctionId, PayplaneFunction> {
  const { stage, api, mainTable } = props;
  const fn = (id: SettlementsApiFunctionId, entry: string, description: string) =>
    new PayplaneFunction(stack, id, { stage, entry: `functions/handlers/${entry}.ts`, description });

  const functions: Record<SettlementsApiFunctionId, PayplaneFunction> = {
    // GetItem: the starting_after cursor's settlement; Query gsi1: the merchant's SETTLEMENT# range.
    ListSettlements: fn('ListSettlements', 'list-settlements', 'GET /v1/settlements') //
      .bindTable(mainTable, { actions: ['GetItem'], indexes: ['gsi1'] }),
    GetSettlement: fn('GetSettlement', 'get-settlement', 'GET /v1/settlements/{id}').bindTable(mainTable, { actions: ['GetItem'] }),
    // The settlement, the cursor's transfer, then its two windows of the merchant's gsi1 ENTRY# range.
    ListSettlementTransactions: fn('ListSettlementTransactions', 'list-settlement-transactions', 'GET /v1/settlements/{id}/transactions') //
      .bindTable(mainTable, { actions: ['GetItem'], indexes: ['gsi1'] }),
    // As the transactions, plus BatchGet of the page's orders (merchant_order_no).
    GetSettlementReport: fn('GetSettlementReport', 'get-settlement-report', 'GET /v1/settlements/{id}/report') //
      .bindTable(mainTable, { actions: ['GetItem', 'BatchGetItem'], indexes: ['gsi1'] }),
    // Query: the merchant's currencies (its ACCOUNT# items); gsi1: the day's entries and transfers; BatchGet: orders.
    GetBill: fn('GetBill', 'get-bill', 'GET /v1/bills/{date}').bindTable(mainTable, { actions: ['Query', 'BatchGetItem'], indexes: ['gsi1'] }),
  };

  api.addRoute('GET', '/v1/settlements', functions.ListSettlements);
  api.addRoute('GET', '/v1/settlements/{id}', functions.GetSettlement);
  api.addRoute('GET', '/v1/settlements/{id}/transactions', functions.ListSettlementTransactions);
  api.addRoute('GET', '/v1/settlements/{id}/report', functions.GetSettlementReport);
  api.addRoute('GET', '/v1/bills/{date}', functions.GetBill);
  return functions;
}
