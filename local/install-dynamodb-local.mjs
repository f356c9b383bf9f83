// Fetches the official DynamoDB Local (Java) on `npm ci`.
// It ships inside amplify-dynamodb-simulator's tarball; installing that package as a dependency
// would pull ~280 unrelated packages, so we unpack only its emulator/ folder, pinned by integrity.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const PACKAGE = 'amplify-dynamodb-simulator@2.9.30';
const INTEGRITY =
  'sha512-xTeeRLvzEfqyd5lh3bH4c0kHvSHHmmhD5ZDsHFKAQ5g2Zl6JqlFdutaQhCLHzxEp6Ry1o7TB6niIoXuQAnSewQ==';
const target = resolve(import.meta.dirname, '..', '.dynamodb');

if (existsSync(join(target, 'DynamoDBLocal.jar'))) process.exit(0);

const work = mkdtempSync(join(tmpdir(), 'ddb-local-'));
try {
  const file = execFileSync('npm', ['pack', PACKAGE, '--silent', '--pack-destination', work], {
    encoding: 'utf8',
  }).trim().split('\n').pop();
  const tarball = join(work, file);
  const digest = 'sha512-' + createHash('sha512').update(readFileSync(tarball)).digest('base64');
  if (digest !== INTEGRITY) throw new Error(`${PACKAGE} integrity mismatch: got ${digest}, expected ${INTEGRITY}`);
  execFileSync('tar', ['-xzf', tarball, '-C', work, 'package/emulator']);
  rmSync(target, { recursive: true, force: true });
  mkdirSync(resolve(target, '..'), { recursive: true });
  renameSync(join(work, 'package', 'emulator'), target);
  console.log(`DynamoDB Local installed in ${target}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
