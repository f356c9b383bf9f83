import {
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
 * The encryption context is bound into each message (and into the KMS call that wraps its
 * data key), so a ciphertext copied onto another merchant's or order's record fails to open.
 * The caching materials manager reuses data keys to keep KMS calls per operation low.
 */
const { encrypt, decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);

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

export type EncryptionContext = Record<string, string>;

export async function seal(value: Secret<unknown>, context: EncryptionContext): Promise<Uint8Array> {
  const { result } = await encrypt(materials(), JSON.stringify(value.reveal()), { encryptionContext: context });
  return result;
}

export async function open<T>(ciphertext: Uint8Array, context: EncryptionContext): Promise<Secret<T>> {
  const { plaintext, messageHeader } = await decrypt(materials(), ciphertext);
  for (const [key, expected] of Object.entries(context)) {
    if (messageHeader.encryptionContext[key] !== expected) {
      throw new Error(`Encryption context mismatch on '${key}': the ciphertext belongs to another record`);
    }
  }
  return new Secret(JSON.parse(plaintext.toString('utf8')) as T);
}
