import {
  AlgorithmSuiteIdentifier,
  buildClient,
  CommitmentPolicy,
  getLocalCryptographicMaterialsCache,
  KmsKeyringNode,
  NodeCachingMaterialsManager,
} from '@aws-crypto/client-node';
import { required } from './config';
import { Secret } from './secret';

/**
 * Envelope encryption of PII with the AWS Encryption SDK under the stack's KMS key.
 *
 * Each value is bound to its record twice over: the merchant and purpose go into the encryption
 * context (checked by KMS and the SDK), and the record id is sealed inside the authenticated
 * plaintext and checked on open. A ciphertext copied onto another merchant's or another order's
 * record therefore fails to open. Keeping the record id out of the context lets the caching
 * materials manager reuse one data key per merchant for a while, instead of one KMS call per order.
 */
let client: ReturnType<typeof buildClient> | undefined;

/**
 * Built on first use, not at load: a module-level call is a side effect that keeps the whole SDK in every
 * bundle that imports this file, even one whose code never seals or opens (esbuild tree-shakes the rest).
 */
const esdk = () => (client ??= buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT));

/**
 * Key-committing AES-256-GCM without the default suite's ECDSA signature. A signature guards against a
 * reader who may decrypt but must not write; here the same functions, under the same key grants, seal
 * and open, so it would add nothing but a P-384 sign per seal, a verify per open and ~270 bytes per
 * value (a fifth of an order item, paid in write units on every order write and its index copy).
 * Decrypt still accepts signed messages, so values sealed before this remain readable.
 */
const suite = () => AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY;

let cmm: NodeCachingMaterialsManager | undefined;

function materials(): NodeCachingMaterialsManager {
  cmm ??= new NodeCachingMaterialsManager({
    backingMaterials: new KmsKeyringNode({ generatorKeyId: required('KMS_KEY_ARN') }),
    cache: getLocalCryptographicMaterialsCache(1000),
    maxAge: 5 * 60 * 1000,
    maxMessagesEncrypted: 10_000,
  });
  return cmm;
}

export interface Binding {
  /** What the value is, e.g. 'payer'. */
  purpose: string;
  merchantId: string;
  /** The record the value belongs to, e.g. the order id. */
  recordId: string;
}

const contextOf = (b: Binding) => ({ purpose: b.purpose, merchant_id: b.merchantId });

export async function seal(value: Secret<unknown>, binding: Binding): Promise<Uint8Array> {
  return sealWith(materials(), value, binding);
}

/**
 * A sealer on its own KMS client and key, for code that does not run as a function: the operator CLI seals a
 * bank account with the operator's credentials and endpoint. Same format, so `open` reads what it seals.
 */
/** What the Encryption SDK calls a KMS client (the v3 SDK's aggregated `KMS` class is one). */
type EsdkKms = ReturnType<NonNullable<NonNullable<ConstructorParameters<typeof KmsKeyringNode>[0]>['clientProvider']>>;

export function sealerFor(options: { keyArn: string; kms: NonNullable<EsdkKms> }): (value: Secret<unknown>, binding: Binding) => Promise<Uint8Array> {
  const keyring = new KmsKeyringNode({ generatorKeyId: options.keyArn, clientProvider: () => options.kms });
  return (value, binding) => sealWith(keyring, value, binding);
}

async function sealWith(with_: NodeCachingMaterialsManager | KmsKeyringNode, value: Secret<unknown>, binding: Binding): Promise<Uint8Array> {
  const plaintext = JSON.stringify({ record: binding.recordId, value: value.reveal() });
  const { result } = await esdk().encrypt(with_, plaintext, { encryptionContext: contextOf(binding), suiteId: suite() });
  return result;
}

export async function open<T>(ciphertext: Uint8Array, binding: Binding): Promise<Secret<T>> {
  const { plaintext, messageHeader } = await esdk().decrypt(materials(), ciphertext);
  for (const [key, expected] of Object.entries(contextOf(binding))) {
    if (messageHeader.encryptionContext[key] !== expected) {
      throw new Error(`Encryption context mismatch on '${key}': the ciphertext belongs to another record`);
    }
  }
  const sealed = JSON.parse(plaintext.toString('utf8')) as { record: string; value: T };
  if (sealed.record !== binding.recordId) {
    throw new Error('Sealed record id mismatch: the ciphertext belongs to another record');
  }
  return new Secret(sealed.value);
}
