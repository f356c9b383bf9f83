import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  hkdfSync,
  randomBytes,
  randomUUID,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from './assembly';
import { AwsJsonError, countCall, listen, readBody, sendJson, type LocalServer } from './http';
import { callerName, INVALID_TOKEN_MESSAGE, type AccessRequest, type LocalIam } from './iam';
import { SIGNING_ALGORITHMS, signMessage, verifyMessage, type SigningAlgorithm } from './kms-crypto';
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
 * Other key types, from the template's KeySpec / KeyUsage:
 * - HMAC_224/256/384/512 + GENERATE_VERIFY_MAC: GenerateMac / VerifyMac. The HMAC key is derived from the
 *   master secret like the AES keys. A MAC that does not verify is KMSInvalidMacException (KMS never
 *   answers MacValid: false).
 * - RSA_2048/3072/4096, ECC_NIST_P256/P384/P521, ECC_SECG_P256K1 + SIGN_VERIFY: Sign / Verify
 *   (MessageType RAW or DIGEST) / GetPublicKey (DER SubjectPublicKeyInfo). The key pair is generated on
 *   first use; a persistent cloud keeps it in .payplane/kms-keys/<key id>.json, wrapped with AES-256-GCM
 *   under a key derived from the master secret (so it lives and dies with that secret), an in-memory
 *   cloud keeps it in memory. A bad signature is KMSInvalidSignatureException.
 * Using a key for what its KeyUsage or KeySpec does not allow is InvalidKeyUsageException.
 *
 * Adding an operation = one entry in OPERATIONS.
 */

export class KmsError extends AwsJsonError {}

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
  /** Symmetric key material: AES-256 for SYMMETRIC_DEFAULT, the HMAC key for HMAC_* specs. */
  material: Buffer;
}

/** HMAC key specs: key length and the one MacAlgorithm each supports. */
const HMAC_SPECS: Record<string, { bytes: number; algorithm: string; hash: string }> = {
  HMAC_224: { bytes: 28, algorithm: 'HMAC_SHA_224', hash: 'sha224' },
  HMAC_256: { bytes: 32, algorithm: 'HMAC_SHA_256', hash: 'sha256' },
  HMAC_384: { bytes: 48, algorithm: 'HMAC_SHA_384', hash: 'sha384' },
  HMAC_512: { bytes: 64, algorithm: 'HMAC_SHA_512', hash: 'sha512' },
};

const RSA_SIGNING = ['RSASSA_PSS_SHA_256', 'RSASSA_PSS_SHA_384', 'RSASSA_PSS_SHA_512', 'RSASSA_PKCS1_V1_5_SHA_256', 'RSASSA_PKCS1_V1_5_SHA_384', 'RSASSA_PKCS1_V1_5_SHA_512'];

/** Asymmetric signing key specs: how node:crypto generates them and which SigningAlgorithms KMS allows. */
const SIGNING_SPECS: Record<string, { generate: ['rsa', { modulusLength: number }] | ['ec', { namedCurve: string }]; algorithms: string[] }> = {
  RSA_2048: { generate: ['rsa', { modulusLength: 2048 }], algorithms: RSA_SIGNING },
  RSA_3072: { generate: ['rsa', { modulusLength: 3072 }], algorithms: RSA_SIGNING },
  RSA_4096: { generate: ['rsa', { modulusLength: 4096 }], algorithms: RSA_SIGNING },
  ECC_NIST_P256: { generate: ['ec', { namedCurve: 'P-256' }], algorithms: ['ECDSA_SHA_256'] },
  ECC_NIST_P384: { generate: ['ec', { namedCurve: 'P-384' }], algorithms: ['ECDSA_SHA_384'] },
  ECC_NIST_P521: { generate: ['ec', { namedCurve: 'P-521' }], algorithms: ['ECDSA_SHA_512'] },
  ECC_SECG_P256K1: { generate: ['ec', { namedCurve: 'secp256k1' }], algorithms: ['ECDSA_SHA_256'] },
};

const generateKeyPairAsync = promisify(generateKeyPair) as (type: string, options: object) => Promise<{ privateKey: KeyObject; publicKey: KeyObject }>;

type Json = Record<string, unknown>;
export type KmsOperation = (kms: LocalKms, input: Json) => Json | Promise<Json>;

const BLOB_VERSION = 0x01;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + 16 + IV_BYTES + TAG_BYTES;

export interface LocalKmsOptions {
  /** Where asymmetric key pairs are kept between runs (wrapped under the master secret); none = memory only. */
  keyStoreDir?: string;
  /** Read-only: key pairs exported by another cloud with the same master secret (`<key material>/kms-keys`). */
  importDir?: string;
}

/** The master secret's file in an exported key material directory. */
export const MATERIAL_SECRET_FILE = 'master-secret';

/**
 * The name of a master secret (and so of every key derived from it): 24 hex digits of HMAC-SHA256 under the
 * secret. One-way: it can be printed, logged and written into a backup's manifest.
 */
export function keyMaterialFingerprint(secret: Buffer): string {
  return `lkm_${createHmac('sha256', secret).update('payplane-local-kms/fingerprint/v1').digest('hex').slice(0, 24)}`;
}

function writeKeyPairFile(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(`${file}.tmp`, text, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

export class LocalKms {
  readonly keys: KmsKey[];
  private readonly calls = new Map<string, number>();
  /** caller (a function's logical id, `operator`, `admin`, or the access key) → operation → calls. */
  private readonly callerCalls = new Map<string, Map<string, number>>();
  private readonly keyPairs = new Map<string, Promise<{ privateKey: KeyObject; publicKey: KeyObject }>>();

  constructor(
    stack: LocalStack,
    private readonly masterSecret: Buffer,
    private readonly options: LocalKmsOptions = {},
  ) {
    const aliases = stack.resourcesOfType('AWS::KMS::Alias').map(([id, r]) => ({
      name: stack.resolveString(r.Properties?.AliasName, `${id}.AliasName`),
      target: stack.resolveString(r.Properties?.TargetKeyId, `${id}.TargetKeyId`),
    }));
    this.keys = stack.resourcesOfType('AWS::KMS::Key').map(([logicalId, r]) => {
      const p = (stack.resolve(r.Properties ?? {}, logicalId) ?? {}) as Json;
      const keyId = stack.kmsKeyId(logicalId);
      const arn = stack.kmsKeyArn(logicalId);
      const keySpec = typeof p.KeySpec === 'string' ? p.KeySpec : 'SYMMETRIC_DEFAULT';
      const hmac = HMAC_SPECS[keySpec];
      return {
        keyId,
        arn,
        logicalId,
        description: typeof p.Description === 'string' ? p.Description : '',
        keySpec,
        keyUsage: typeof p.KeyUsage === 'string' ? p.KeyUsage : 'ENCRYPT_DECRYPT',
        enabled: p.Enabled !== false,
        rotation: p.EnableKeyRotation === true,
        creationDate: 1_700_000_000,
        aliases: aliases.filter((a) => a.target === keyId || a.target === arn).map((a) => a.name),
        material: hmac
          ? Buffer.from(hkdfSync('sha256', masterSecret, 'payplane-local-kms/hmac', `${keyId}/${keySpec}`, hmac.bytes))
          : Buffer.from(hkdfSync('sha256', masterSecret, 'payplane-local-kms', keyId, 32)),
      };
    });
  }

  /** Calls per operation since start (failed calls included), for benchmarks and tests. */
  stats(): Record<string, number> {
    return Object.fromEntries([...this.calls.entries()].sort());
  }

  /** Calls per caller and operation since start: what each function spends on KMS (the benchmark's per-event figures). */
  statsByCaller(): Record<string, Record<string, number>> {
    return Object.fromEntries([...this.callerCalls.entries()].sort().map(([caller, ops]) => [caller, Object.fromEntries([...ops.entries()].sort())]));
  }

  resetStats(): void {
    this.calls.clear();
    this.callerCalls.clear();
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
    const specOk =
      usage === 'ENCRYPT_DECRYPT' ? key.keySpec === 'SYMMETRIC_DEFAULT' : usage === 'GENERATE_VERIFY_MAC' ? key.keySpec in HMAC_SPECS : usage === 'SIGN_VERIFY' ? key.keySpec in SIGNING_SPECS : false;
    if (key.keyUsage !== usage || !specOk) {
      throw new KmsError('InvalidKeyUsageException', `${key.arn} key usage is ${key.keyUsage} (${key.keySpec}), which is not valid for ${operation}.`);
    }
  }

  /** The MAC algorithm of an HMAC key, checked against the request's. */
  macAlgorithm(key: KmsKey, requested: unknown): { algorithm: string; hash: string } {
    const spec = HMAC_SPECS[key.keySpec]!;
    const known = Object.values(HMAC_SPECS).map((s) => s.algorithm);
    if (typeof requested !== 'string' || !known.includes(requested)) {
      throw new KmsError('ValidationException', `1 validation error detected: Value '${String(requested)}' at 'macAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [${known.join(', ')}]`);
    }
    if (requested !== spec.algorithm) {
      throw new KmsError('InvalidKeyUsageException', `${key.arn} is an ${key.keySpec} key: it supports ${spec.algorithm}, not ${requested}.`);
    }
    return spec;
  }

  mac(key: KmsKey, algorithmHash: string, message: Buffer): Buffer {
    return createHmac(algorithmHash, key.material).update(message).digest();
  }

  /** The signing algorithm of a SIGN_VERIFY key, checked against its KeySpec. */
  signingAlgorithm(key: KmsKey, requested: unknown): SigningAlgorithm {
    const alg = typeof requested === 'string' ? SIGNING_ALGORITHMS[requested] : undefined;
    if (!alg) {
      throw new KmsError('ValidationException', `1 validation error detected: Value '${String(requested)}' at 'signingAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [${Object.keys(SIGNING_ALGORITHMS).join(', ')}]`);
    }
    if (!SIGNING_SPECS[key.keySpec]!.algorithms.includes(alg.name)) {
      throw new KmsError('InvalidKeyUsageException', `${key.arn} (${key.keySpec}) does not support ${alg.name}; it supports ${SIGNING_SPECS[key.keySpec]!.algorithms.join(', ')}.`);
    }
    return alg;
  }

  /**
   * The key pair of an asymmetric key: generated on first use, then kept in memory and, in a
   * persistent cloud, in keyStoreDir wrapped under the master secret.
   */
  keyPair(key: KmsKey): Promise<{ privateKey: KeyObject; publicKey: KeyObject }> {
    let pair = this.keyPairs.get(key.keyId);
    if (!pair) {
      pair = this.loadOrGenerate(key);
      this.keyPairs.set(key.keyId, pair);
      pair.catch(() => this.keyPairs.delete(key.keyId));
    }
    return pair;
  }

  private async loadOrGenerate(key: KmsKey): Promise<{ privateKey: KeyObject; publicKey: KeyObject }> {
    const dir = this.options.keyStoreDir;
    const file = dir ? join(dir, `${key.keyId}.json`) : undefined;
    // A cloud started with exported key material (local/main.ts --key-material) finds the source cloud's pairs there.
    for (const candidate of [file, this.options.importDir && join(this.options.importDir, `${key.keyId}.json`)]) {
      const privateKey = candidate && existsSync(candidate) ? this.unwrapKeyPair(key, readFileSync(candidate, 'utf8')) : undefined;
      if (privateKey) {
        if (file && candidate !== file) writeKeyPairFile(file, this.wrapKeyPair(key, privateKey));
        return { privateKey, publicKey: createPublicKey(privateKey) };
      }
    }
    const [type, params] = SIGNING_SPECS[key.keySpec]!.generate;
    const pair = await generateKeyPairAsync(type, params);
    if (file) writeKeyPairFile(file, this.wrapKeyPair(key, pair.privateKey));
    return pair;
  }

  private wrapKey(key: KmsKey): { wrapKey: Buffer; aad: Buffer } {
    return {
      wrapKey: Buffer.from(hkdfSync('sha256', this.masterSecret, 'payplane-local-kms/wrap', key.keyId, 32)),
      aad: Buffer.from(`payplane-local-kms/key-pair/v1\n${key.arn}\n${key.keySpec}`),
    };
  }

  /** A key pair's file (.payplane/kms-keys/<key id>.json): the PKCS#8 private key under AES-256-GCM with a key derived from the master secret. */
  private wrapKeyPair(key: KmsKey, privateKey: KeyObject): string {
    const { wrapKey, aad: aadText } = this.wrapKey(key);
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', wrapKey, iv);
    cipher.setAAD(aadText);
    const der = privateKey.export({ format: 'der', type: 'pkcs8' });
    const body = Buffer.concat([cipher.update(der), cipher.final()]);
    return JSON.stringify({ keyId: key.keyId, arn: key.arn, keySpec: key.keySpec, wrapped: Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64') });
  }

  private unwrapKeyPair(key: KmsKey, text: string): KeyObject | undefined {
    try {
      const stored = JSON.parse(text) as { keySpec: string; wrapped: string };
      if (stored.keySpec !== key.keySpec) return undefined;
      const { wrapKey, aad: aadText } = this.wrapKey(key);
      const blob = Buffer.from(stored.wrapped, 'base64');
      const decipher = createDecipheriv('aes-256-gcm', wrapKey, blob.subarray(0, IV_BYTES));
      decipher.setAAD(aadText);
      decipher.setAuthTag(blob.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      const der = Buffer.concat([decipher.update(blob.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
      return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    } catch {
      // Another master secret (or a damaged file): the old key is unusable, as its ciphertexts would be.
      return undefined;
    }
  }

  /** Names this cloud's key material without disclosing it (keyMaterialFingerprint). */
  get fingerprint(): string {
    return keyMaterialFingerprint(this.masterSecret);
  }

  /**
   * Writes this cloud's key material to `<parent>/<fingerprint>/` (docs/operations.md § Local backups): the master
   * secret (0600) every symmetric and HMAC key derives from, and every asymmetric key pair generated so far, wrapped
   * under it as in kms-keys/. A pair generated later is not in it: export again after it (backup create does, each time).
   */
  async exportMaterial(parent: string): Promise<{ fingerprint: string; dir: string; keyPairs: string[] }> {
    const fingerprint = this.fingerprint;
    const dir = join(parent, fingerprint);
    mkdirSync(join(dir, 'kms-keys'), { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, MATERIAL_SECRET_FILE), this.masterSecret.toString('hex'), { mode: 0o600 });
    chmodSync(join(dir, MATERIAL_SECRET_FILE), 0o600);
    const keyPairs: string[] = [];
    for (const key of this.keys) {
      if (!(key.keySpec in SIGNING_SPECS)) continue;
      const stored = this.options.keyStoreDir && existsSync(join(this.options.keyStoreDir, `${key.keyId}.json`));
      if (!this.keyPairs.has(key.keyId) && !stored) continue;
      const { privateKey } = await this.keyPair(key);
      writeKeyPairFile(join(dir, 'kms-keys', `${key.keyId}.json`), this.wrapKeyPair(key, privateKey));
      keyPairs.push(key.arn);
    }
    writeFileSync(
      join(dir, 'material.json'),
      `${JSON.stringify({ fingerprint, exported_at: new Date().toISOString(), keys: this.keys.map((k) => ({ arn: k.arn, key_spec: k.keySpec })), key_pairs: keyPairs }, null, 2)}\n`,
      { mode: 0o600 },
    );
    return { fingerprint, dir, keyPairs };
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

  /**
   * What IAM evaluates for a call: `kms:<Operation>` on the key it names (for Decrypt without KeyId, the
   * key inside the ciphertext), with `kms:EncryptionContext:<k>` for every context entry, as KMS does.
   * Undefined when the request names no key we know: the operation itself answers NotFound & co.
   */
  accessRequest(operation: string, input: Json): AccessRequest | undefined {
    const action = `kms:${operation}`;
    if (operation === 'ListKeys' || operation === 'ListAliases' || operation === 'GenerateRandom') return { action, resource: '*' };
    let key: KmsKey | undefined;
    try {
      if (input.KeyId !== undefined) key = this.findKey(input.KeyId);
      else if (typeof input.CiphertextBlob === 'string') {
        const id = uuidString(Buffer.from(input.CiphertextBlob, 'base64').subarray(1, 17));
        key = this.keys.find((k) => k.keyId === id);
      }
    } catch {
      return undefined;
    }
    if (!key) return undefined;
    const context: Record<string, string | string[]> = {};
    const ec = input.EncryptionContext;
    if (ec && typeof ec === 'object' && !Array.isArray(ec)) {
      for (const [k, v] of Object.entries(ec as Record<string, unknown>)) context[`kms:EncryptionContext:${k}`] = String(v);
      if (Object.keys(ec).length) context['kms:EncryptionContextKeys'] = Object.keys(ec);
    }
    return { action, resource: key.arn, context };
  }

  /** Runs one operation; counts it; maps unknown failures to KMSInternalException. */
  async handle(operation: string, input: Json, caller = 'unknown'): Promise<Json> {
    this.calls.set(operation, (this.calls.get(operation) ?? 0) + 1);
    countCall(this.callerCalls, caller, operation);
    // Own names only: `X-Amz-Target: <Service>.constructor` must not call Object() on the emulator and answer with its state.
    const op = Object.hasOwn(OPERATIONS, operation) ? OPERATIONS[operation] : undefined;
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
    SigningAlgorithms: key.keyUsage === 'SIGN_VERIFY' ? SIGNING_SPECS[key.keySpec]?.algorithms : undefined,
    MacAlgorithms: key.keyUsage === 'GENERATE_VERIFY_MAC' && HMAC_SPECS[key.keySpec] ? [HMAC_SPECS[key.keySpec]!.algorithm] : undefined,
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

/** Message of Sign / Verify: RAW (≤ 4096 bytes) or DIGEST (exactly the algorithm's digest length). */
function signingInput(input: Json, alg: SigningAlgorithm): { message: Buffer; digest: boolean } {
  const message = blob(input.Message, 'Message');
  const type = input.MessageType ?? 'RAW';
  if (type === 'RAW') {
    if (message.length > 4096) {
      throw new KmsError('ValidationException', 'Message must be at most 4096 bytes with MessageType RAW; hash it yourself and send MessageType DIGEST.');
    }
    return { message, digest: false };
  }
  if (type === 'DIGEST') {
    if (message.length !== alg.digestBytes) throw new KmsError('ValidationException', `Digest is invalid length for algorithm ${alg.name}.`);
    return { message, digest: true };
  }
  throw new KmsError('ValidationException', `MessageType ${String(type)} is not supported (RAW or DIGEST).`);
}

function macMessage(input: Json): Buffer {
  const message = blob(input.Message, 'Message');
  if (message.length > 4096) throw new KmsError('ValidationException', 'Message must be at most 4096 bytes.');
  return message;
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
  GenerateMac: (kms, input) => {
    const key = kms.findKey(input.KeyId);
    kms.usableFor(key, 'GENERATE_VERIFY_MAC', 'GenerateMac');
    const { algorithm, hash } = kms.macAlgorithm(key, input.MacAlgorithm);
    return { KeyId: key.arn, Mac: kms.mac(key, hash, macMessage(input)).toString('base64'), MacAlgorithm: algorithm };
  },
  VerifyMac: (kms, input) => {
    const key = kms.findKey(input.KeyId);
    kms.usableFor(key, 'GENERATE_VERIFY_MAC', 'VerifyMac');
    const { algorithm, hash } = kms.macAlgorithm(key, input.MacAlgorithm);
    const expected = kms.mac(key, hash, macMessage(input));
    const mac = blob(input.Mac, 'Mac');
    if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) {
      throw new KmsError('KMSInvalidMacException', '');
    }
    return { KeyId: key.arn, MacValid: true, MacAlgorithm: algorithm };
  },
  Sign: async (kms, input) => {
    const key = kms.findKey(input.KeyId);
    kms.usableFor(key, 'SIGN_VERIFY', 'Sign');
    const alg = kms.signingAlgorithm(key, input.SigningAlgorithm);
    const { message, digest } = signingInput(input, alg);
    const { privateKey } = await kms.keyPair(key);
    return { KeyId: key.arn, Signature: signMessage(alg, privateKey, message, digest).toString('base64'), SigningAlgorithm: alg.name };
  },
  Verify: async (kms, input) => {
    const key = kms.findKey(input.KeyId);
    kms.usableFor(key, 'SIGN_VERIFY', 'Verify');
    const alg = kms.signingAlgorithm(key, input.SigningAlgorithm);
    const { message, digest } = signingInput(input, alg);
    const signature = blob(input.Signature, 'Signature');
    const { publicKey } = await kms.keyPair(key);
    if (!verifyMessage(alg, publicKey, message, signature, digest)) throw new KmsError('KMSInvalidSignatureException', '');
    return { KeyId: key.arn, SignatureValid: true, SigningAlgorithm: alg.name };
  },
  GetPublicKey: async (kms, input) => {
    const key = kms.findKey(input.KeyId);
    if (!(key.keySpec in SIGNING_SPECS)) {
      throw new KmsError('UnsupportedOperationException', `${key.arn} is a ${key.keySpec} key, which has no public key.`);
    }
    if (key.keyUsage !== 'SIGN_VERIFY') throw new KmsError('UnsupportedOperationException', `The local KMS only implements ${key.keySpec} keys for SIGN_VERIFY.`);
    const { publicKey } = await kms.keyPair(key);
    return {
      KeyId: key.arn,
      PublicKey: publicKey.export({ format: 'der', type: 'spki' }).toString('base64'),
      CustomerMasterKeySpec: key.keySpec,
      KeySpec: key.keySpec,
      KeyUsage: key.keyUsage,
      SigningAlgorithms: SIGNING_SPECS[key.keySpec]!.algorithms,
    };
  },
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

/** Where `backup create` exports key material, one directory per fingerprint (docs/operations.md § Local backups). */
export const KEY_MATERIAL_DIR = join(PROJECT_ROOT, '.payplane', 'key-material');

/**
 * Reads exported key material (`<dir>/master-secret`, `<dir>/kms-keys/`): a cloud started with it opens what the
 * exporting cloud sealed. The directory's name is the material's fingerprint, checked against the secret it holds.
 */
export function readKeyMaterial(dir: string): { secret: Buffer; keyPairsDir: string; fingerprint: string } {
  const file = join(dir, MATERIAL_SECRET_FILE);
  if (!existsSync(file)) {
    throw new Error(`No key material at ${dir} (${file} is missing). Key material is exported by \`npx payplane backup create\` into ${KEY_MATERIAL_DIR}/<fingerprint>.`);
  }
  const secret = Buffer.from(readFileSync(file, 'utf8').trim(), 'hex');
  const fingerprint = keyMaterialFingerprint(secret);
  if (secret.length !== 32 || basename(dir) !== fingerprint) {
    throw new Error(`The key material at ${dir} is damaged: its master secret's fingerprint is ${fingerprint}, not the directory's name ${basename(dir)}.`);
  }
  return { secret, keyPairsDir: join(dir, 'kms-keys'), fingerprint };
}

export async function startKms(
  stack: LocalStack,
  options: { inMemory?: boolean; port?: number; secretFile?: string; keyStoreDir?: string; iam?: LocalIam; keyMaterialDir?: string } = {},
): Promise<KmsEndpoint> {
  const secretFile = options.secretFile ?? join(PROJECT_ROOT, '.payplane', 'kms-master-secret');
  const material = options.keyMaterialDir ? readKeyMaterial(options.keyMaterialDir) : undefined;
  if (material && !options.inMemory && existsSync(secretFile) && !readFileSync(secretFile, 'utf8').trim().startsWith(material.secret.toString('hex'))) {
    throw new Error(
      `This persistent local cloud already has key material of its own (${secretFile}); it cannot take ${material.fingerprint}. ` +
        'Restore into a fresh cloud: npm start -- --in-memory --key-material <fingerprint>, or delete .payplane/ first.',
    );
  }
  if (material && !options.inMemory) {
    mkdirSync(dirname(secretFile), { recursive: true });
    writeFileSync(secretFile, material.secret.toString('hex'), { mode: 0o600 });
  }
  const kms = new LocalKms(stack, material?.secret ?? masterSecret({ inMemory: options.inMemory, file: secretFile }), {
    // Asymmetric key pairs live next to the master secret they are wrapped under.
    keyStoreDir: options.inMemory ? undefined : (options.keyStoreDir ?? join(dirname(secretFile), 'kms-keys')),
    importDir: material?.keyPairsDir,
  });
  const server: LocalServer = await listen((req, res) =>
    handleKmsRequest(kms, req, res, options.iam).catch((error: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { __type: 'KMSInternalException', message: String(error) });
    }),
  options.port ?? 0);
  return { url: server.url, kms, stop: server.close };
}

async function handleKmsRequest(kms: LocalKms, req: IncomingMessage, res: ServerResponse, iam?: LocalIam): Promise<void> {
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
  const operation = target.slice('TrentService.'.length);
  const { refuse } = iam ? await iam.check(req.headers, [kms.accessRequest(operation, input)].filter((r) => r !== undefined)) : {};
  if (refuse) {
    const type = refuse.unknownKey ? 'UnrecognizedClientException' : 'AccessDeniedException';
    sendJson(res, 400, { __type: type, message: refuse.unknownKey ? INVALID_TOKEN_MESSAGE : refuse.message }, { ...headers, 'x-amzn-ErrorType': type });
    return;
  }
  try {
    const output = await kms.handle(operation, input, callerName(req.headers, iam));
    sendJson(res, 200, output, headers);
  } catch (error) {
    if (error instanceof KmsError) {
      sendJson(res, error.status, { __type: error.type, message: error.message }, { ...headers, 'x-amzn-ErrorType': error.type });
    } else {
      sendJson(res, 500, { __type: 'KMSInternalException', message: (error as Error).message }, headers);
    }
  }
}
