import { randomBytes } from 'node:crypto';
import { InvalidRequestError } from '../commons/errors';

/**
 * Starting a settlement run by hand (`payplane settlements run` → POST /operator/settlement_runs): its arguments
 * and the execution's name. The name is the run id the settlements carry (`run-<cutoff>-<random>`).
 */

/** An ISO 8601 time with a zone (Z or ±hh:mm), normalized to UTC with milliseconds; anything else is refused naming the fix. */
export function parseCutoff(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  const text = String(value);
  const time = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/.test(text) ? Date.parse(text) : Number.NaN;
  if (!Number.isFinite(time)) {
    throw new InvalidRequestError('parameter_invalid', `Invalid --cutoff: got ${JSON.stringify(text)}. Give an ISO 8601 time with its zone, e.g. --cutoff 2026-12-02T00:00:00Z.`, { param: 'cutoff' });
  }
  return new Date(time).toISOString();
}

export function parseRunMerchant(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  const text = String(value);
  if (!/^mch_[A-Za-z0-9]{1,64}$/.test(text)) {
    throw new InvalidRequestError('parameter_invalid', `Invalid --merchant: got ${JSON.stringify(text)}. Give a merchant id, e.g. --merchant mch_3kTq…`, { param: 'merchant' });
  }
  return text;
}

/** `run-<cutoff, compact>-<8 hex>`, or `run-today-…` without a cutoff (a valid execution name: no colons). */
export function runName(cutoff: string | undefined): string {
  const when = cutoff ? cutoff.replace(/[-:]/g, '').replace(/\.\d+/, '') : 'today';
  return `run-${when}-${randomBytes(4).toString('hex')}`;
}
