import { merchantDepsFromEnv } from '../merchants/deps';
import { operatorHandler, type OperatorDeps } from '../operator/operations';

let deps: OperatorDeps | undefined;

/** POST /operator/orders/{id}/erase_payer: erases the payer's personal data (functions/orders/erase.ts). */
export const handler = operatorHandler('OperatorPayers', () => (deps ??= { merchants: merchantDepsFromEnv() }));
