import { GetCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { commitAudited } from '../audit/append';
import type { AuditContext } from '../audit/context';
import { ConflictError, ContendedError, InvalidRequestError } from '../commons/errors';
import { currency } from '../commons/money';
import { formatDecimal, parseMarkupBps, parseRate } from './rate';
import { DEMO_MARKUP_BPS, DEMO_RATES, DEMO_RATES_EFFECTIVE_AT } from './settings';

/**
 * The FX rate table, in the main table: one item per rate and effective time,
 *
 *   pk FXRATE#<from>#<to>   sk <effective_at, ISO 8601 UTC>
 *
 * with the base rate (a decimal string) and the markup (bps) kept apart, and who set it when. A rate is history:
 * it is never changed, a new rate takes over at its own effective time. The rate in force at T is the latest entry
 * effective at or before T: one Query. gsi1 (`FXRATES` / `<from>#<to>#<effective_at>`) lists the whole table for
 * `payplane fx list`.
 */
export interface FxDeps {
  db: DynamoDBDocumentClient;
  tableName: string;
}

export interface FxRate {
  from: string;
  to: string;
  /** Decimal string, normalized (no trailing zeros). */
  rate: string;
  markup_bps: number;
  effective_at: string;
  set_by: string;
  set_at: string;
}

interface FxRateItem extends FxRate {
  pk: string;
  sk: string;
  type: 'fx_rate';
  gsi1pk: string;
  gsi1sk: string;
}

export const FX_RATES_INDEX_PK = 'FXRATES';
export const fxRateKey = (from: string, to: string, effectiveAt: string) => ({ pk: `FXRATE#${from}#${to}`, sk: effectiveAt });

export interface SetRateInput {
  from: unknown;
  to: unknown;
  rate: unknown;
  markup_bps?: unknown;
  effective_at?: unknown;
  set_by: string;
}

function currencyParam(value: unknown, field: 'from' | 'to'): string {
  const code = typeof value === 'string' ? value.trim().toUpperCase() : value;
  if (typeof code !== 'string' || !currency(code)) {
    throw new InvalidRequestError(
      'invalid_fx_currency',
      `Invalid '${field}': got ${JSON.stringify(value)}, which is not a payable ISO 4217 currency code. Use a code such as EUR, USD, JPY or KWD.`,
      { param: field },
    );
  }
  return code;
}

function effectiveAtParam(value: unknown, now: Date): string {
  if (value === undefined) return now.toISOString();
  const text = typeof value === 'string' ? value : '';
  // An explicit zone: a rate's time must not depend on the operator's laptop.
  const ms = /(Z|[+-]\d{2}:\d{2})$/.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(ms) || ms < Date.UTC(2000, 0, 1) || ms >= Date.UTC(10000, 0, 1)) {
    throw new InvalidRequestError(
      'invalid_fx_effective_at',
      `Invalid 'effective_at': got ${JSON.stringify(value)}. Give an ISO 8601 time with its zone, from 2000 on, e.g. 2026-12-02T00:00:00Z.`,
      { param: 'effective_at' },
    );
  }
  return new Date(ms).toISOString();
}

/**
 * Validates and adds a rate, with its `fx_rate.set` entry on the platform's audit chain in the same transaction.
 * Setting the same rate again at the same time is a no-op (no entry: nothing changed); a different one there is refused.
 */
export async function setRate(deps: FxDeps, input: SetRateInput, now: Date | undefined, by: AuditContext): Promise<{ rate: FxRate; created: boolean }> {
  now ??= new Date();
  const from = currencyParam(input.from, 'from');
  const to = currencyParam(input.to, 'to');
  if (from === to) {
    throw new InvalidRequestError('invalid_fx_currency', `Invalid 'to': got ${to}, the same as 'from'. A rate converts between two different currencies.`, { param: 'to' });
  }
  const rate: FxRate = {
    from,
    to,
    rate: formatDecimal(parseRate(input.rate, 'rate')),
    markup_bps: input.markup_bps === undefined ? 0 : parseMarkupBps(input.markup_bps),
    effective_at: effectiveAtParam(input.effective_at, now),
    set_by: input.set_by,
    set_at: now.toISOString(),
  };
  const item: FxRateItem = { ...fxRateKey(from, to, rate.effective_at), type: 'fx_rate', gsi1pk: FX_RATES_INDEX_PK, gsi1sk: `${from}#${to}#${rate.effective_at}`, ...rate };
  const result = await commitAudited(
    { ...deps, now: () => now },
    [{ Put: { TableName: deps.tableName, Item: item, ConditionExpression: 'attribute_not_exists(pk)' } }],
    { action: 'fx_rate.set', target: { type: 'fx_rate', id: `${from}/${to}@${rate.effective_at}` }, after: rate },
    by,
  );
  if (result.committed) return { rate, created: true };
  if (result.reasons[0] !== 'ConditionalCheckFailed') {
    throw new ContendedError('fx_rate_contended', `Setting the ${from}→${to} rate was cancelled (${result.reasons.join(', ')}); nothing changed. Run it again.`);
  }
  const { Item } = await deps.db.send(new GetCommand({ TableName: deps.tableName, Key: fxRateKey(from, to, rate.effective_at), ConsistentRead: true }));
  const existing = toRate(Item as FxRateItem);
  if (existing.rate === rate.rate && existing.markup_bps === rate.markup_bps) return { rate: existing, created: false };
  throw new ConflictError(
    'fx_rate_exists',
    `A ${from}→${to} rate effective at ${rate.effective_at} is already set (${existing.rate}, markup ${existing.markup_bps} bps, by ${existing.set_by}); ` +
      `rates are history and never change. Set the new one with a later --effective-at, or leave it out to take effect now.`,
    { param: 'effective_at' },
  );
}

/** The rate in force for `from`→`to` at `at`: the latest effective at or before it, or undefined. */
export async function rateInForce(deps: FxDeps, from: string, to: string, at: Date): Promise<FxRate | undefined> {
  const { Items } = await deps.db.send(
    new QueryCommand({
      TableName: deps.tableName,
      KeyConditionExpression: 'pk = :pk AND sk <= :at',
      ExpressionAttributeValues: { ':pk': fxRateKey(from, to, '').pk, ':at': at.toISOString() },
      ScanIndexForward: false,
      Limit: 1,
    }),
  );
  const item = Items?.[0] as FxRateItem | undefined;
  return item && toRate(item);
}

/** Every rate (or one pair's), by pair, then effective time. */
export async function listRates(deps: FxDeps, pair?: { from: unknown; to: unknown }): Promise<FxRate[]> {
  const rates: FxRate[] = [];
  let start: Record<string, unknown> | undefined;
  const query = pair
    ? { KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': fxRateKey(currencyParam(pair.from, 'from'), currencyParam(pair.to, 'to'), '').pk } }
    : { IndexName: 'gsi1', KeyConditionExpression: 'gsi1pk = :pk', ExpressionAttributeValues: { ':pk': FX_RATES_INDEX_PK } };
  do {
    const page = await deps.db.send(new QueryCommand({ TableName: deps.tableName, ...query, ExclusiveStartKey: start }));
    rates.push(...((page.Items ?? []) as FxRateItem[]).map(toRate));
    start = page.LastEvaluatedKey;
  } while (start);
  return rates;
}

function toRate(item: FxRateItem): FxRate {
  return { from: item.from, to: item.to, rate: item.rate, markup_bps: item.markup_bps, effective_at: item.effective_at, set_by: item.set_by, set_at: item.set_at };
}

/** Sets the documented sandbox demo rates (settings.ts DEMO_RATES) through setRate; idempotent. */
export async function seedDemoRates(deps: FxDeps, by: AuditContext, setBy = 'seed:demo-rates'): Promise<FxRate[]> {
  const out: FxRate[] = [];
  for (const r of DEMO_RATES) {
    out.push((await setRate(deps, { ...r, markup_bps: DEMO_MARKUP_BPS, effective_at: DEMO_RATES_EFFECTIVE_AT, set_by: setBy }, undefined, by)).rate);
  }
  return out;
}
