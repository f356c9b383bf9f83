import { GetCommand, QueryCommand, type DynamoDBDocumentClient, type TransactWriteCommandInput } from '@aws-sdk/lib-dynamodb';
import type { FeeScheduleOverride } from '../ledger/fees';
import type { Binding } from '../commons/crypto';
import type { Secret } from '../commons/secret';
import type { KeyKind } from './keys';
import { withDefaults, type PayoutSettings, type PayoutSettingsItem } from './payouts';
import type { UsageDeps } from './usage';

/**
 * Merchants and API keys in the main table (item shapes: docs/CONTRACT-draft.md § Tables).
 * This file knows DynamoDB; service.ts knows the rules.
 */
export interface MerchantDeps {
  db: DynamoDBDocumentClient;
  tableName: string;
  /** Clock, injectable for tests. @default () => new Date() */
  now?: () => Date;
  /**
   * API Gateway, to give a merchant its usage-plan key (usage.ts). The operator CLI and the local cloud's
   * seeding pass it; the authorizer needs none.
   * @default - no API Gateway calls (unit and integration tests of the table alone)
   */
  usage?: UsageDeps;
  /**
   * Seals a bank account number (commons/crypto.ts `seal`, or the operator CLI's own KMS client with the same
   * format). Only setting payout settings needs it; it is injected so that the authorizer's bundle, which
   * shares this module, carries no Encryption SDK.
   * @default - none: setting a bank account fails with an InternalError
   */
  seal?: (value: Secret<string>, binding: Binding) => Promise<Uint8Array>;
}

export interface MerchantItem {
  pk: string;
  sk: 'MERCHANT';
  type: 'merchant';
  id: string;
  name: string;
  created_at: string;
  /**
   * The one active key, and a counter bumped by every roll. Each roll is conditioned on the
   * counter it read, so concurrent rolls serialise on this item (gsi1 alone is eventually
   * consistent and could miss a key written a moment ago).
   */
  active_key_id?: string;
  active_key_hash?: string;
  /** Absent on items written without it (fixtures): the first roll then relies on gsi1 and sets it. */
  key_version?: number;
  /** The operator's override of the platform fee schedule (ledger/fees.ts); absent: the platform default. */
  fee_schedule?: FeeScheduleOverride;
  /** Payer receipts per channel (functions/receipts); absent: both off. */
  receipts?: ReceiptSettings;
  /** Payout settings (payouts.ts): only what the operator set; absent: every default. */
  payout?: PayoutSettingsItem;
}

/** Whether the merchant's payers get a receipt by email and by SMS on order.succeeded / refund.succeeded. */
export interface ReceiptSettings {
  email: boolean;
  sms: boolean;
}

/** Receipts are off until the operator turns a channel on (`payplane merchants receipts set`). */
export const RECEIPTS_OFF: ReceiptSettings = { email: false, sms: false };

export type ApiKeyStatus = 'active' | 'revoked';

export interface ApiKeyItem {
  pk: string;
  sk: 'APIKEY';
  type: 'api_key';
  key_id: string;
  merchant_id: string;
  status: ApiKeyStatus;
  /** Absent on keys issued before restricted keys existed: those are secret keys. */
  kind?: KeyKind;
  /** A restricted key's scopes (scopes.ts). */
  scopes?: string[];
  livemode: false;
  created_at: string;
  revoked_at?: string;
  gsi1pk: string;
  gsi1sk: string;
}

export const merchantKey = (merchantId: string) => ({ pk: `MERCHANT#${merchantId}`, sk: 'MERCHANT' as const });
export const apiKeyKey = (keyHash: string) => ({ pk: `APIKEY#${keyHash}`, sk: 'APIKEY' as const });
/** Key id → key hash, so `keys revoke --key <id>` finds a key by the id the operator sees. */
export const keyIdKey = (keyId: string) => ({ pk: `KEYID#${keyId}`, sk: 'KEYID' as const });

export interface KeyIdItem {
  pk: string;
  sk: 'KEYID';
  type: 'api_key_id';
  key_hash: string;
  merchant_id: string;
}

export function hashOfApiKeyItem(item: Pick<ApiKeyItem, 'pk'>): string {
  return item.pk.slice('APIKEY#'.length);
}

export function merchantItem(m: {
  id: string;
  name: string;
  createdAt: string;
  keyId: string;
  keyHash: string;
  feeSchedule?: FeeScheduleOverride;
  receipts?: ReceiptSettings;
}): MerchantItem {
  return {
    ...merchantKey(m.id),
    type: 'merchant',
    id: m.id,
    name: m.name,
    created_at: m.createdAt,
    active_key_id: m.keyId,
    active_key_hash: m.keyHash,
    key_version: 1,
    ...(m.feeSchedule ? { fee_schedule: m.feeSchedule } : {}),
    ...(m.receipts ? { receipts: m.receipts } : {}),
  };
}

export function apiKeyItem(k: {
  keyId: string;
  keyHash: string;
  merchantId: string;
  createdAt: string;
  kind?: KeyKind;
  scopes?: string[];
}): ApiKeyItem {
  return {
    ...apiKeyKey(k.keyHash),
    type: 'api_key',
    key_id: k.keyId,
    merchant_id: k.merchantId,
    status: 'active',
    kind: k.kind ?? 'secret',
    ...(k.scopes ? { scopes: k.scopes } : {}),
    livemode: false,
    created_at: k.createdAt,
    gsi1pk: `MERCHANT#${k.merchantId}`,
    gsi1sk: `APIKEY#${k.createdAt}#${k.keyId}`,
  };
}

export function keyIdItem(k: { keyId: string; keyHash: string; merchantId: string }): KeyIdItem {
  return { ...keyIdKey(k.keyId), type: 'api_key_id', key_hash: k.keyHash, merchant_id: k.merchantId };
}

/** The key's record, by the id the operator sees; strongly consistent (revocation reads it then writes). */
export async function getApiKeyById(deps: MerchantDeps, keyId: string): Promise<ApiKeyItem | undefined> {
  const { Item } = await deps.db.send(new GetCommand({ TableName: deps.tableName, Key: keyIdKey(keyId), ConsistentRead: true }));
  if (!Item) return undefined;
  const key = await deps.db.send(
    new GetCommand({ TableName: deps.tableName, Key: apiKeyKey((Item as KeyIdItem).key_hash), ConsistentRead: true }),
  );
  return key.Item as ApiKeyItem | undefined;
}

export async function getMerchant(deps: MerchantDeps, merchantId: string): Promise<MerchantItem | undefined> {
  const { Item } = await deps.db.send(
    new GetCommand({ TableName: deps.tableName, Key: merchantKey(merchantId), ConsistentRead: true }),
  );
  return Item as MerchantItem | undefined;
}

/**
 * A merchant's fee override alone (the key hash stays in the table). Eventually consistent: overrides change
 * rarely, and the payments' cache in front of this read already accepts a minute of lag.
 */
export async function getMerchantFees(deps: MerchantDeps, merchantId: string): Promise<FeeScheduleOverride | undefined> {
  const { Item } = await deps.db.send(
    new GetCommand({ TableName: deps.tableName, Key: merchantKey(merchantId), ProjectionExpression: 'fee_schedule' }),
  );
  return Item?.fee_schedule as FeeScheduleOverride | undefined;
}

/** The update that sets (or, with none, removes) a merchant's fee override, if the merchant exists. */
export function feesUpdate(deps: MerchantDeps, merchantId: string, fees: FeeScheduleOverride | undefined): TransactItems[number] {
  return {
    Update: {
      TableName: deps.tableName,
      Key: merchantKey(merchantId),
      UpdateExpression: fees ? 'SET fee_schedule = :fees' : 'REMOVE fee_schedule',
      ConditionExpression: 'attribute_exists(pk)',
      ExpressionAttributeValues: fees ? { ':fees': fees } : undefined,
    },
  };
}

/**
 * The update that replaces a merchant's receipt settings, on condition that they are still what the caller read
 * (`read`; undefined: none), so two changes never silently drop one another.
 */
export function receiptsUpdate(deps: MerchantDeps, merchantId: string, receipts: ReceiptSettings, read: ReceiptSettings | undefined): TransactItems[number] {
  return {
    Update: {
      TableName: deps.tableName,
      Key: merchantKey(merchantId),
      UpdateExpression: 'SET receipts = :receipts',
      ConditionExpression: read
        ? 'attribute_exists(pk) AND receipts.email = :email AND receipts.sms = :sms'
        : 'attribute_exists(pk) AND attribute_not_exists(receipts)',
      ExpressionAttributeValues: { ':receipts': receipts, ...(read ? { ':email': read.email, ':sms': read.sms } : {}) },
    },
  };
}

/**
 * A merchant's payout settings with the defaults applied (payouts.ts); an unknown merchant gets the defaults.
 * Eventually consistent unless `consistent` (settling reads them strongly: the delay it settles with is recorded
 * on the settlement); the balance and confirm accept a moment's lag.
 */
export async function getMerchantPayoutSettings(deps: MerchantDeps, merchantId: string, options: { consistent?: boolean } = {}): Promise<PayoutSettings> {
  const { Item } = await deps.db.send(
    new GetCommand({ TableName: deps.tableName, Key: merchantKey(merchantId), ProjectionExpression: 'payout', ConsistentRead: options.consistent === true }),
  );
  return withDefaults(Item?.payout as PayoutSettingsItem | undefined);
}

/**
 * The update that replaces the merchant's payout settings with `payout`, on condition that they are still what the
 * caller read (`read`: their version, or undefined for none), so two operators' changes never silently drop one another.
 */
export function payoutUpdate(deps: MerchantDeps, merchantId: string, payout: PayoutSettingsItem, read: number | undefined): TransactItems[number] {
  return {
    Update: {
      TableName: deps.tableName,
      Key: merchantKey(merchantId),
      UpdateExpression: 'SET payout = :payout',
      ConditionExpression: read === undefined ? 'attribute_exists(pk) AND attribute_not_exists(payout)' : 'attribute_exists(pk) AND payout.version = :read',
      ExpressionAttributeValues: { ':payout': payout, ...(read === undefined ? {} : { ':read': read }) },
    },
  };
}

/** Eventually consistent on purpose: the authorizer's hot path, and keys change rarely. */
export async function getApiKey(deps: MerchantDeps, keyHash: string): Promise<ApiKeyItem | undefined> {
  const { Item } = await deps.db.send(new GetCommand({ TableName: deps.tableName, Key: apiKeyKey(keyHash) }));
  return Item as ApiKeyItem | undefined;
}

/** Secret keys gsi1 lists as active (eventually consistent: may lag a concurrent write); never restricted ones. */
export async function listActiveSecretKeys(deps: MerchantDeps, merchantId: string): Promise<ApiKeyItem[]> {
  const items: ApiKeyItem[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await deps.db.send(
      new QueryCommand({
        TableName: deps.tableName,
        IndexName: 'gsi1',
        KeyConditionExpression: 'gsi1pk = :pk AND begins_with(gsi1sk, :prefix)',
        FilterExpression: '#status = :active AND (attribute_not_exists(#kind) OR #kind = :secret)',
        ExpressionAttributeNames: { '#status': 'status', '#kind': 'kind' },
        ExpressionAttributeValues: { ':pk': `MERCHANT#${merchantId}`, ':prefix': 'APIKEY#', ':active': 'active', ':secret': 'secret' },
        ExclusiveStartKey: start,
      }),
    );
    items.push(...((page.Items ?? []) as ApiKeyItem[]));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

export type TransactItems = NonNullable<TransactWriteCommandInput['TransactItems']>;
