import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { PROJECT_ROOT } from './assembly';
import { listen, readBody, sendJson, type LocalServer } from './http';
import type { LocalStack } from './template';

/**
 * A KMS-compatible endpoint (AWS JSON 1.1: `POST /`, `X-Amz-Target: TrentService.<Operation>`),
 * scoped to what the stack uses. The AWS SDK (and the Encryption SDK's KmsKeyringNode on top of it)
 * talk to it through AWS_ENDPOINT_URL_KMS.
 *
 * Keys are the template's AWS::KMS::Key resources. Each key's material is derived from a local master
 * secret (persisted in .payplane/, or random per in-memory run), so ciphertexts stay readable across
 * restarts of a persistent local cloud. A ciphertext blob is
 *   0x01 | key id (16 bytes) | IV (12) | GCM tag (16) | AES-256-GCM ciphertext
 * with the key ARN and the canonical encryption context as additional authenticated data, so a wrong
 * context or a tampered blob fails with InvalidCiphertextException as in KMS.
 *
 * Adding an operation = one entry in OPERATIONS.
 */

export class KmsError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = type;
  }
}

export interface KmsKey {
  keyId: string;
  arn: string;
  logicalId: string;
  description: string;
  keySpec: string;
  keyUsage: string;
  enabled: boolean;
  rotation: boolean;
  creationDate: number;
  aliases: string[];
  /** Symmetric key material (AES-256). */
  material: Buffer;
}

type Json = Record<string, unknown>;
export type KmsOperation = (kms: LocalKms, input: Json) => Json | Promise<Json>;

const BLOB_VERSION = 0x01;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + 16 + IV_BYTES + TAG_BYTES;

export class LocalKms {
  readonly keys: KmsKey[];
  private readonly calls = new Map<string, number>();

  constructor(stack: LocalStack, masterSecret: Buffer) {
    const aliases = stack.resourcesOfType('AWS::KMS::Alias').map(([id, r]) => ({
      name: stack.resolveString(r.Properties?.AliasName, `${id}.AliasName`),
      target: stack.resolveString(r.Properties?.TargetKeyId, `${id}.TargetKeyId`),
    }));
    this.keys = stack.resourcesOfType('AWS::KMS::Key').map(([logicalId, r]) => {
      const p = (stack.resolve(r.Properties ?? {}, logicalId) ?? {}) as Json;
      const keyId = stack.kmsKeyId(logicalId);
      const arn = stack.kmsKeyArn(logicalId);
      return {
        keyId,
        arn,
        logicalId,
        description: typeof p.Description === 'string' ? p.Description : '',
        keySpec: typeof p.KeySpec === 'string' ? p.KeySpec : 'SYMMETRIC_DEFAULT',
        keyUsage: typeof p.KeyUsage === 'string' ? p.KeyUsage : 'ENCRYPT_DECRYPT',
        enabled: p.Enabled !== false,
        rotation: p.EnableKeyRotation === true,
        creationDate: 1_700_000_000,
        aliases: aliases.filter((a) => a.target === keyId || a.target === arn).map((a) => a.name),
        material: Buffer.from(hkdfSync('sha256', masterSecret, 'payplane-local-kms', keyId, 32)),
      };
    });
  }

  /** Calls per operation since start (failed calls included), for benchmarks and tests. */
  stats(): Record<string, number> {
    return Object.fromEntries([...this.calls.entries()].sort());
  }

  resetStats(): void {
    this.calls.clear();
  }

  /** Resolves a key id, key ARN, alias name or alias ARN, as KMS does. */
  findKey(keyId: unknown): KmsKey {
    if (typeof keyId !== 'string' || keyId === '') throw new KmsError('ValidationException', 'KeyId is required.');
    const key = this.keys.find(
      (k) =>
        k.keyId === keyId ||
        k.arn === keyId ||
        k.aliases.includes(keyId) ||
        k.aliases.some((a) => keyId === `${k.arn.slice(0, k.arn.indexOf(':key/'))}:${a}`),
    );
    if (!key) {
      const what = keyId.includes('alias/') ? `Alias ${keyId} is not found.` : `Key '${keyId}' does not exist`;
      throw new KmsError('NotFoundException', `${what} (local KMS knows: ${this.keys.map((k) => k.arn).join(', ') || 'no keys'})`);
    }
    if (!key.enabled) throw new KmsError('DisabledException', `${key.arn} is disabled.`);
    return key;
  }

  usableFor(key: KmsKey, usage: string, operation: string): void {
    if (key.keyUsage !== usage || (usage === 'ENCRYPT_DECRYPT' && key.keySpec !== 'SYMMETRIC_DEFAULT')) {
      throw new KmsError('InvalidKeyUsageException', `${key.arn} key usage is ${key.keyUsage} (${key.keySpec}), which is not valid for ${operation}.`);
    }
  }

  encrypt(key: KmsKey, plaintext: Buffer, context: unknown): Buffer {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key.material, iv);
    cipher.setAAD(aad(key, context));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([Buffer.from([BLOB_VERSION]), uuidBytes(key.keyId), iv, cipher.getAuthTag(), body]);
  }

  decrypt(blob: Buffer, context: unknown, expectedKeyId?: unknown): { key: KmsKey; plaintext: Buffer } {
    if (blob.length < HEADER_BYTES || blob[0] !== BLOB_VERSION) {
      throw new KmsError('InvalidCiphertextException', 'The ciphertext is not a ciphertext of this (local) KMS.');
    }
    const keyId = uuidString(blob.subarray(1, 17));
    const key = this.keys.find((k) => k.keyId === keyId);
    if (!key) throw new KmsError('InvalidCiphertextException', 'The ciphertext refers to a key that does not exist here.');
    if (expectedKeyId !== undefined && this.findKey(expectedKeyId).keyId !== key.keyId) {
      throw new KmsError('IncorrectKeyException', 'The key ID in the request does not identify the key that encrypted the ciphertext.');
    }
    if (!key.enabled) throw new KmsError('DisabledException', `${key.arn} is disabled.`);
    const iv = blob.subarray(17, 17 + IV_BYTES);
    const tag = blob.subarray(17 + IV_BYTES, HEADER_BYTES);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.material, iv);
      decipher.setAAD(aad(key, context));
      decipher.setAuthTag(tag);
      return { key, plaintext: Buffer.concat([decipher.update(blob.subarray(HEADER_BYTES)), decipher.final()]) };
    } catch {
      // Wrong encryption context or tampered blob: KMS says nothing more.
      throw new KmsError('InvalidCiphertextException', '');
    }
  }

  /** Runs one operation; counts it; maps unknown failures to KMSInternalException. */
  async handle(operation: string, input: Json): Promise<Json> {
    this.calls.set(operation, (this.calls.get(operation) ?? 0) + 1);
    const op = OPERATIONS[operation];
    if (!op) {
      throw new KmsError(
        'UnsupportedOperationException',
        `The local KMS does not implement ${operation}. Implemented: ${Object.keys(OPERATIONS).join(', ')}. Add it to OPERATIONS in local/kms.ts.`,
      );
    }
    return op(this, input);
  }
}

/** Encryption context as KMS binds it: every key and value, order-independent. */
function aad(key: KmsKey, context: unknown): Buffer {
  const entries = Object.entries(validContext(context)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Buffer.from(`payplane-local-kms/v1\n${key.arn}\n${JSON.stringify(entries)}`, 'utf8');
}

function validContext(context: unknown): Record<string, string> {
  if (context === undefined || context === null) return {};
  if (typeof context !== 'object' || Array.isArray(context) || Object.values(context).some((v) => typeof v !== 'string')) {
    throw new KmsError('ValidationException', 'EncryptionContext must be a map of strings to strings.');
  }
  return context as Record<string, string>;
}

function blob(value: unknown, field: string): Buffer {
  if (typeof value !== 'string' || value === '') throw new KmsError('ValidationException', `${field} is required (base64).`);
  return Buffer.from(value, 'base64');
}

function dataKeyLength(input: Json): number {
  if (input.NumberOfBytes !== undefined) {
    const n = Number(input.NumberOfBytes);
    if (!Number.isInteger(n) || n < 1 || n > 1024) throw new KmsError('ValidationException', 'NumberOfBytes must be between 1 and 1024.');
    return n;
  }
  if (input.KeySpec === 'AES_256') return 32;
  if (input.KeySpec === 'AES_128') return 16;
  throw new KmsError('ValidationException', 'Specify either KeySpec (AES_256 | AES_128) or NumberOfBytes.');
}

function uuidBytes(uuid: string): Buffer {
  return Buffer.from(uuid.replace(/-/g, ''), 'hex');
}

function uuidString(bytes: Buffer): string {
  const h = bytes.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function keyMetadata(key: KmsKey): Json {
  return {
    AWSAccountId: key.arn.split(':')[4],
    KeyId: key.keyId,
    Arn: key.arn,
    CreationDate: key.creationDate,
    Enabled: key.enabled,
    Description: key.description,
    KeyUsage: key.keyUsage,
    KeyState: key.enabled ? 'Enabled' : 'Disabled',
    Origin: 'AWS_KMS',
    KeyManager: 'CUSTOMER',
    CustomerMasterKeySpec: key.keySpec,
    KeySpec: key.keySpec,
    EncryptionAlgorithms: key.keyUsage === 'ENCRYPT_DECRYPT' ? ['SYMMETRIC_DEFAULT'] : undefined,
    MultiRegion: false,
  };
}

function generateDataKey(kms: LocalKms, input: Json, withPlaintext: boolean): Json {
  const key = kms.findKey(input.KeyId);
  kms.usableFor(key, 'ENCRYPT_DECRYPT', 'GenerateDataKey');
  const plaintext = randomBytes(dataKeyLength(input));
  const ciphertext = kms.encrypt(key, plaintext, input.EncryptionContext);
  return {
    KeyId: key.arn,
    CiphertextBlob: ciphertext.toString('base64'),
    ...(withPlaintext ? { Plaintext: plaintext.toString('base64') } : {}),
  };
}

export const OPERATIONS: Record<string, KmsOperation> = {
  GenerateDataKey: (kms, input) => generateDataKey(kms, input, true),
  GenerateDataKeyWithoutPlaintext: (kms, input) => generateDataKey(kms, input, false),
  Encrypt: (kms, input) => {
    const key = kms.findKey(input.KeyId);
    kms.usableFor(key, 'ENCRYPT_DECRYPT', 'Encrypt');
    const plaintext = blob(input.Plaintext, 'Plaintext');
    if (plaintext.length > 4096) throw new KmsError('ValidationException', 'Plaintext must be at most 4096 bytes.');
    return {
      KeyId: key.arn,
      CiphertextBlob: kms.encrypt(key, plaintext, input.EncryptionContext).toString('base64'),
      EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
    };
  },
  Decrypt: (kms, input) => {
    const { key, plaintext } = kms.decrypt(blob(input.CiphertextBlob, 'CiphertextBlob'), input.EncryptionContext, input.KeyId);
    return { KeyId: key.arn, Plaintext: plaintext.toString('base64'), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
  },
  DescribeKey: (kms, input) => ({ KeyMetadata: keyMetadata(kms.findKey(input.KeyId)) }),
  ListKeys: (kms) => ({ Keys: kms.keys.map((k) => ({ KeyId: k.keyId, KeyArn: k.arn })), Truncated: false }),
  ListAliases: (kms) => ({
    Aliases: kms.keys.flatMap((k) =>
      k.aliases.map((a) => ({ AliasName: a, AliasArn: `${k.arn.slice(0, k.arn.indexOf(':key/'))}:${a}`, TargetKeyId: k.keyId })),
    ),
    Truncated: false,
  }),
  GetKeyRotationStatus: (kms, input) => ({ KeyRotationEnabled: kms.findKey(input.KeyId).rotation }),
  GenerateRandom: (_kms, input) => {
    const n = Number(input.NumberOfBytes ?? 32);
    if (!Number.isInteger(n) || n < 1 || n > 1024) throw new KmsError('ValidationException', 'NumberOfBytes must be between 1 and 1024.');
    return { Plaintext: randomBytes(n).toString('base64') };
  },
};

// ---- HTTP endpoint -----------------------------------------------------------------------

export interface KmsEndpoint {
  url: string;
  kms: LocalKms;
  stop(): Promise<void>;
}

/** The master secret: persisted (0600) for a persistent cloud, random for an in-memory one. */
export function masterSecret(options: { inMemory?: boolean; file?: string }): Buffer {
  if (options.inMemory) return randomBytes(32);
  const file = options.file ?? join(PROJECT_ROOT, '.payplane', 'kms-master-secret');
  if (existsSync(file)) {
    const secret = Buffer.from(readFileSync(file, 'utf8').trim(), 'hex');
    if (secret.length === 32) return secret;
  }
  const secret = randomBytes(32);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, secret.toString('hex'), { mode: 0o600 });
  chmodSync(file, 0o600);
  return secret;
}

export async function startKms(stack: LocalStack, options: { inMemory?: boolean; port?: number; secretFile?: string } = {}): Promise<KmsEndpoint> {
  const kms = new LocalKms(stack, masterSecret({ inMemory: options.inMemory, file: options.secretFile }));
  const server: LocalServer = await listen((req, res) => {
    handleKmsRequest(kms, req, res).catch((error: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { __type: 'KMSInternalException', message: String(error) });
    });
  }, options.port ?? 0);
  return { url: server.url, kms, stop: server.close };
}

async function handleKmsRequest(kms: LocalKms, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const requestId = randomUUID();
  const headers = { 'x-amzn-RequestId': requestId, 'Content-Type': 'application/x-amz-json-1.1' };
  if (req.method === 'GET' && req.url === '/__stats') {
    sendJson(res, 200, kms.stats());
    return;
  }
  const target = req.headers['x-amz-target'];
  if (req.method !== 'POST' || typeof target !== 'string' || !target.startsWith('TrentService.')) {
    sendJson(res, 400, { __type: 'UnknownOperationException', message: 'Expected POST / with X-Amz-Target: TrentService.<Operation>' }, headers);
    return;
  }
  const raw = await readBody(req, 1024 * 1024);
  let input: Json;
  try {
    input = raw.length ? (JSON.parse(raw.toString('utf8')) as Json) : {};
  } catch {
    sendJson(res, 400, { __type: 'SerializationException', message: 'The request body is not valid JSON.' }, headers);
    return;
  }
  try {
    const output = await kms.handle(target.slice('TrentService.'.length), input);
    sendJson(res, 200, output, headers);
  } catch (error) {
    if (error instanceof KmsError) {
      sendJson(res, error.status, { __type: error.type, message: error.message }, { ...headers, 'x-amzn-ErrorType': error.type });
    } else {
      sendJson(res, 500, { __type: 'KMSInternalException', message: (error as Error).message }, headers);
    }
  }
}
