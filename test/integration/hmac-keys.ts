import { KMSClient } from '@aws-sdk/client-kms';
import { afterAll, beforeAll } from 'vitest';
import { startKms, type KmsEndpoint } from '../../local/kms';
import { LocalStack } from '../../local/template';

/**
 * A KMS emulator of its own holding HMAC_256 keys declared as the stack declares them, for tests of
 * code that signs or fingerprints with GenerateMac / VerifyMac. `client()` is ready inside tests.
 */
export function useHmacKeys(stackName: string, logicalIds: string[]) {
  const hmac = { Type: 'AWS::KMS::Key', Properties: { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' } };
  const stack = new LocalStack({ Resources: Object.fromEntries(logicalIds.map((id) => [id, hmac])) }, { stackName });
  let endpoint: KmsEndpoint | undefined;
  let client: KMSClient | undefined;
  beforeAll(async () => {
    endpoint = await startKms(stack, { inMemory: true });
    client = new KMSClient({ endpoint: endpoint.url, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  });
  afterAll(async () => {
    client?.destroy();
    await endpoint?.stop();
  });
  return { arn: (logicalId: string) => stack.kmsKeyArn(logicalId), client: () => client! };
}
