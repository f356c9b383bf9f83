import { merchantDepsFromEnv } from '../merchants/deps';
import { operatorHandler, type OperatorDeps } from '../operator/operations';

let deps: OperatorDeps | undefined;

/** POST /operator/fx_rates: adds a rate to the FX rate history. */
export const handler = operatorHandler('OperatorFxRates', () => (deps ??= { merchants: merchantDepsFromEnv() }));
