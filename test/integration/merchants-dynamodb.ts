import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CreateTableCommand, DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { inject } from 'vitest';
import type { MerchantDeps } from '../../functions/merchants/service';

/**
 * DynamoDB for the merchants integration tests. Uses the services of the integration global
 * setup when it provides them (`inject('localServices')`); otherwise starts its own DynamoDB
 * Local, in memory on a free port, with a main table of the contract's shape.
 */
export interface MerchantsDb {
  endpoint: string;
  region: string;
  tableName: string;
  deps: MerchantDeps;
  stop(): Promise<void>;
}

const ROOT = resolve(import.meta.dirname, '../..');
const REGION = 'us-east-1';
const CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

interface Provided {
  region: string;
  endpoints: { dynamodb: string };
  tables: { main: string };
}

export async function merchantsDb(): Promise<MerchantsDb> {
  const provided = (inject as (key: string) => unknown)('localServices') as Provided | undefined;
  if (provided) {
    const endpoint = provided.endpoints.dynamodb;
    return { endpoint, region: provided.region, tableName: provided.tables.main, deps: deps(endpoint, provided.region, provided.tables.main), stop: async () => {} };
  }
  const port = await freePort();
  // -disableTelemetry: no network; a scratch cwd: DynamoDB Local drops a metadata file there.
  const scratch = mkdtempSync(join(tmpdir(), 'ddb-merchants-'));
  const java: ChildProcess = spawn(
    'java',
    [
      `-Djava.library.path=${join(ROOT, '.dynamodb/DynamoDBLocal_lib')}`,
      '-jar',
      join(ROOT, '.dynamodb/DynamoDBLocal.jar'),
      '-inMemory',
      '-sharedDb',
      '-disableTelemetry',
      '-port',
      String(port),
    ],
    { cwd: scratch, stdio: 'ignore' },
  );
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new DynamoDBClient({ endpoint, region: REGION, credentials: CREDENTIALS, maxAttempts: 1 });
  const stop = async () => {
    client.destroy();
    if (java.exitCode === null) {
      const exited = new Promise((done) => java.once('exit', done));
      java.kill();
      await exited;
    }
    rmSync(scratch, { recursive: true, force: true });
  };
  try {
    for (let waited = 0; ; waited += 100) {
      if (java.exitCode !== null) throw new Error(`DynamoDB Local exited with ${java.exitCode} (is Java installed?)`);
      try {
        await client.send(new ListTablesCommand({}));
        break;
      } catch (error) {
        if (waited > 30_000) throw error;
        await sleep(100);
      }
    }
    const tableName = 'payplane-main-test';
    await client.send(new CreateTableCommand(mainTable(tableName)));
    return { endpoint, region: REGION, tableName, deps: deps(endpoint, REGION, tableName), stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

function deps(endpoint: string, region: string, tableName: string): MerchantDeps {
  const db = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint, region, credentials: CREDENTIALS }), {
    marshallOptions: { removeUndefinedValues: true },
  });
  return { db, tableName };
}

/** The contract's main table (docs/CONTRACT-draft.md § Tables), minus what DynamoDB Local ignores. */
function mainTable(TableName: string) {
  const gsi = (name: string) => ({
    IndexName: name,
    KeySchema: [
      { AttributeName: `${name}pk`, KeyType: 'HASH' as const },
      { AttributeName: `${name}sk`, KeyType: 'RANGE' as const },
    ],
    Projection: { ProjectionType: 'ALL' as const },
  });
  return {
    TableName,
    BillingMode: 'PAY_PER_REQUEST' as const,
    KeySchema: [
      { AttributeName: 'pk', KeyType: 'HASH' as const },
      { AttributeName: 'sk', KeyType: 'RANGE' as const },
    ],
    AttributeDefinitions: ['pk', 'sk', 'gsi1pk', 'gsi1sk', 'gsi2pk', 'gsi2sk'].map((AttributeName) => ({
      AttributeName,
      AttributeType: 'S' as const,
    })),
    GlobalSecondaryIndexes: [gsi('gsi1'), gsi('gsi2')],
  };
}

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? done(address.port) : fail(new Error('no port'))));
    });
  });
}
