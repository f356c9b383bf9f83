import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import { BatchWriteItemCommand, DescribeTableCommand, DynamoDBClient, paginateScan, ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import canonicalize from 'canonicalize';
import { z } from 'zod';
import { InvalidRequestError } from '../functions/commons/errors';
import { checkLedger } from '../functions/ledger/check';
import { ensureUsageKey } from '../functions/merchants/usage';
import { LOCAL_FILE_ENV, ROOT } from './target';

/**
 * `payplane backup create|restore`: the local cloud's tables to one file and back (docs/operations.md § Local
 * backups). Local only: it reads and writes every item, so it acts as the local cloud's administrator (the
 * credentials the local cloud's own seeding uses), never as the operator, whose policy reads no whole table.
 *
 * The file is gzip of JSON lines: the manifest, then one line per item, `{"table": <logical id>, "item": <DynamoDB
 * JSON, binary as base64>}`. A table's SHA-256 is over its items' RFC 8785 canonical JSON, sorted and joined by
 * newlines, so it does not depend on scan order and the same items always give the same digest.
 */
export const BACKUP_FORMAT = 'payplane.backup.v1';

const ADMIN = { accessKeyId: 'local', secretAccessKey: 'local' };

const localSchema = z.object({
  region: z.string(),
  stage: z.string(),
  restApiId: z.string(),
  endpoints: z.object({ dynamodb: z.url(), admin: z.url(), apigateway: z.url() }),
  tables: z.object({ byLogicalId: z.record(z.string(), z.string()) }),
});
type Local = z.infer<typeof localSchema>;

const manifestSchema = z.object({
  format: z.literal(BACKUP_FORMAT),
  created_at: z.string(),
  stage: z.string(),
  /** The local KMS key material the sealed values need, by fingerprint (never the material itself). */
  key_material: z.string().regex(/^lkm_[0-9a-f]{24}$/),
  tables: z.array(z.object({ logical_id: z.string(), name: z.string(), key_schema: z.array(z.object({ AttributeName: z.string(), KeyType: z.string() })), items: z.number().int().nonnegative(), sha256: z.string().regex(/^[0-9a-f]{64}$/) })),
});
export type BackupManifest = z.infer<typeof manifestSchema>;

/** A refusal: nothing was written. */
const refuse = (code: string, message: string) => new InvalidRequestError(code, message);

function readLocal(env: NodeJS.ProcessEnv): Local {
  const file = env[LOCAL_FILE_ENV] ?? resolve(ROOT, '.payplane', 'local.json');
  if (!existsSync(file)) throw refuse('local_cloud_not_running', `The local cloud is not running: ${file} does not exist. Start it with \`npm start\`.`);
  return localSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
}

const dynamo = (local: Local) => new DynamoDBClient({ region: local.region, endpoint: local.endpoints.dynamodb, credentials: ADMIN, maxAttempts: 5 });

async function admin<T>(local: Local, method: string, path: string): Promise<T> {
  const res = await fetch(`${local.endpoints.admin}${path}`, { method });
  if (!res.ok) throw new Error(`The local cloud's ${method} ${path} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as T;
}

type Json = Record<string, unknown>;
/** DynamoDB JSON with binary values as base64 (JSON has no bytes), and back. */
const toJson = (av: AttributeValue): unknown => {
  if (av.B) return { B: Buffer.from(av.B).toString('base64') };
  if (av.BS) return { BS: av.BS.map((b) => Buffer.from(b).toString('base64')) };
  if (av.M) return { M: Object.fromEntries(Object.entries(av.M).map(([k, v]) => [k, toJson(v)])) };
  if (av.L) return { L: av.L.map(toJson) };
  return av;
};
const fromJson = (v: Json): AttributeValue => {
  if (typeof v.B === 'string') return { B: Buffer.from(v.B, 'base64') };
  if (Array.isArray(v.BS)) return { BS: (v.BS as string[]).map((b) => Buffer.from(b, 'base64')) };
  if (v.M) return { M: Object.fromEntries(Object.entries(v.M as Record<string, Json>).map(([k, x]) => [k, fromJson(x)])) };
  if (v.L) return { L: (v.L as Json[]).map(fromJson) };
  return v as unknown as AttributeValue;
};
const itemJson = (item: Record<string, AttributeValue>) => Object.fromEntries(Object.entries(item).map(([k, v]) => [k, toJson(v)]));

/** A table's digest: its items' canonical JSON, sorted, joined by newlines. */
export function tableDigest(items: readonly Json[]): string {
  const lines = items.map((i) => canonicalize(i)!).sort();
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}

export interface BackupCreated {
  file: string;
  manifest: BackupManifest;
}

export async function backupCreate(input: { out?: string }, env: NodeJS.ProcessEnv = process.env): Promise<BackupCreated> {
  const local = readLocal(env);
  // The material first: a key pair made after the export would be missing from it.
  const material = await admin<{ fingerprint: string }>(local, 'POST', '/__kms/material/export');
  const db = dynamo(local);
  const tables: BackupManifest['tables'] = [];
  const lines: string[] = [];
  try {
    for (const [logicalId, name] of Object.entries(local.tables.byLogicalId).sort()) {
      const { Table } = await db.send(new DescribeTableCommand({ TableName: name }));
      const items: Json[] = [];
      for await (const page of paginateScan({ client: db }, { TableName: name, ConsistentRead: true })) items.push(...(page.Items ?? []).map(itemJson));
      for (const item of items) lines.push(JSON.stringify({ table: logicalId, item }));
      tables.push({ logical_id: logicalId, name, key_schema: (Table?.KeySchema ?? []).map((k) => ({ AttributeName: k.AttributeName!, KeyType: k.KeyType! })), items: items.length, sha256: tableDigest(items) });
    }
  } finally {
    db.destroy();
  }
  const manifest: BackupManifest = { format: BACKUP_FORMAT, created_at: new Date().toISOString(), stage: local.stage, key_material: material.fingerprint, tables };
  const file = resolve(input.out ?? join(ROOT, '.payplane', 'backups', `${local.stage}-${manifest.created_at.replace(/[:.]/g, '-')}.ppbak.gz`));
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, gzipSync(`${[JSON.stringify(manifest), ...lines].join('\n')}\n`), { mode: 0o600 });
  return { file, manifest };
}

/** Reads and checks a backup file; throws a refusal naming what is wrong. Nothing is written. */
export function readBackup(file: string): { manifest: BackupManifest; items: Map<string, Json[]> } {
  if (!existsSync(file)) throw refuse('backup_not_found', `No backup file at ${file}. Give the path \`backup create\` printed.`);
  let text: string;
  try {
    text = gunzipSync(readFileSync(file)).toString('utf8');
  } catch (error) {
    throw refuse('backup_damaged', `${file} is damaged: it does not decompress (${(error as Error).message}). Restore another backup; nothing was written.`);
  }
  const [head, ...rest] = text.split('\n').filter((l) => l.length);
  let manifest: BackupManifest;
  const items = new Map<string, Json[]>();
  try {
    manifest = manifestSchema.parse(JSON.parse(head ?? ''));
    for (const line of rest) {
      const { table, item } = JSON.parse(line) as { table: string; item: Json };
      items.set(table, [...(items.get(table) ?? []), item]);
    }
  } catch (error) {
    throw refuse('backup_damaged', `${file} is not a ${BACKUP_FORMAT} file (${(error as Error).message.split('\n')[0]}). Nothing was written.`);
  }
  for (const t of manifest.tables) {
    const got = items.get(t.logical_id) ?? [];
    const digest = tableDigest(got);
    if (got.length !== t.items || digest !== t.sha256) {
      throw refuse(
        'backup_digest_mismatch',
        `${file}: table ${t.logical_id} holds ${got.length} items with SHA-256 ${digest}, but its manifest says ${t.items} items, ${t.sha256}: the file was altered or damaged. Nothing was written.`,
      );
    }
  }
  const unknown = [...items.keys()].filter((k) => !manifest.tables.some((t) => t.logical_id === k));
  if (unknown.length) throw refuse('backup_digest_mismatch', `${file} holds items of ${unknown.join(', ')}, which its manifest does not list. Nothing was written.`);
  return { manifest, items };
}

export interface BackupRestored {
  file: string;
  key_material: string;
  tables: { logical_id: string; name: string; items: number }[];
  merchants: number;
}

export async function backupRestore(input: { file: string }, env: NodeJS.ProcessEnv = process.env): Promise<BackupRestored> {
  const file = resolve(input.file);
  const { manifest, items } = readBackup(file);
  const local = readLocal(env);
  // Every check before any write: key material, the stage's tables, empty tables, the ledger.
  const { fingerprint } = await admin<{ fingerprint: string }>(local, 'GET', '/__kms/material');
  if (fingerprint !== manifest.key_material) {
    const kept = join(ROOT, '.payplane', 'key-material', manifest.key_material);
    throw refuse(
      'key_material_mismatch',
      `This backup's sealed values need local key material ${manifest.key_material}; the running cloud has ${fingerprint}. ` +
        (existsSync(kept)
          ? `Start a fresh cloud with it: npm start -- --in-memory --stage ${manifest.stage} --key-material ${manifest.key_material}, then restore again.`
          : `That material is not in ${kept}: restore on the machine that made the backup (its .payplane/key-material/), or copy the directory here.`) +
        ' Nothing was written.',
    );
  }
  const db = dynamo(local);
  try {
    for (const t of manifest.tables) {
      const name = local.tables.byLogicalId[t.logical_id];
      if (!name) throw refuse('backup_stage_mismatch', `The running cloud has no table ${t.logical_id} (stage ${local.stage}; the backup is of stage ${manifest.stage}). Start the cloud with --stage ${manifest.stage}. Nothing was written.`);
      const { Count } = await db.send(new ScanCommand({ TableName: name, Limit: 1, Select: 'COUNT' }));
      if (Count) throw refuse('restore_target_not_empty', `Table ${t.logical_id} (${name}) of the running cloud is not empty: restore only into a fresh cloud (npm start -- --in-memory --key-material ${manifest.key_material}). Nothing was written.`);
    }
    const main = manifest.tables.find((t) => t.logical_id.startsWith('MainTable'));
    const problems = main ? checkLedger((items.get(main.logical_id) ?? []).map((i) => unmarshall(Object.fromEntries(Object.entries(i).map(([k, v]) => [k, fromJson(v as Json)]))))) : [];
    if (problems.length) throw refuse('backup_ledger_broken', `The backup's ledger does not hold (${problems.length}): ${problems.slice(0, 5).join('; ')}. Nothing was written.`);
    const restored: BackupRestored['tables'] = [];
    for (const t of manifest.tables) {
      const name = local.tables.byLogicalId[t.logical_id]!;
      const requests = (items.get(t.logical_id) ?? []).map((i) => ({ PutRequest: { Item: Object.fromEntries(Object.entries(i).map(([k, v]) => [k, fromJson(v as Json)])) } }));
      for (let i = 0; i < requests.length; i += 25) {
        let pending: typeof requests | undefined = requests.slice(i, i + 25);
        for (let attempt = 0; pending?.length; attempt++) {
          if (attempt > 8) throw new Error(`Restoring ${t.logical_id}: DynamoDB left ${pending.length} items unprocessed 8 times; run restore again into a fresh cloud.`);
          const out = await db.send(new BatchWriteItemCommand({ RequestItems: { [name]: pending } }));
          pending = out.UnprocessedItems?.[name] as typeof requests | undefined;
          if (pending?.length) await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
        }
      }
      restored.push({ logical_id: t.logical_id, name, items: requests.length });
    }
    // API Gateway's usage-plan keys are not in the tables: each merchant gets its own again, or its key gets 403.
    const merchants = main ? (items.get(main.logical_id) ?? []).filter((i) => (i.sk as { S?: string })?.S === 'MERCHANT').map((i) => (i.pk as { S: string }).S.slice('MERCHANT#'.length)) : [];
    const apiGateway = new APIGatewayClient({ region: local.region, endpoint: local.endpoints.apigateway, credentials: ADMIN });
    for (const id of merchants) await ensureUsageKey({ apiGateway, restApiId: local.restApiId, stageName: local.stage }, id);
    apiGateway.destroy();
    return { file, key_material: manifest.key_material, tables: restored, merchants: merchants.length };
  } finally {
    db.destroy();
  }
}
