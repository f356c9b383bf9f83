import { parseArgs } from 'node:util';
import { InvalidRequestError } from '../functions/commons/errors';
import { closeSync, openSync, writeSync } from 'node:fs';
import { fxList, fxSet, keysCreate, payersErase, keysRevoke, keysRoll, merchantsCreate, merchantsFeesSet, merchantsLimitsSet, merchantsPayoutsSet, merchantsReceiptsSet, settlementsList, settlementsReport, settlementsShow, type SettlementShown } from './commands';
import { SCOPES } from '../functions/merchants/scopes';
import { auditVerify, describeVerdict } from './audit';
import { backupCreate, backupRestore } from './backup';
import { latestVerifiedSignedHeads } from '../functions/audit/heads';
import { describeRun, settlementsRun } from './settlements-run';
import { resolveTarget, type Target, type TargetOptions } from './target';
import type { MerchantApi } from './merchant-api';
import { runEventsList, runEventsResend, runEventsShow, runListen, runOrdersList, runOrdersShow, runRefundsCreate, runTrigger, type ApiRun } from './merchant-commands';

export const USAGE = `Usage: payplane <command> [options]

Commands:
  merchants create --name <name> [--fees <json>]
                                    Create a merchant and its first secret key (sk_test_…)
  merchants fees set --merchant <mch_id> --fees <json>
                                    Replace the merchant's fee override; '{}' removes it (the
                                    platform default applies). JSON, per method, any part:
                                    '{"card":{"percent_bps":250,"fixed":30},"wallet":{"percent_bps":150}}'
                                    (percent_bps 250 = 2.50 %; fixed 30 = 0.30, scaled per currency)
  merchants limits set --merchant <mch_id> --rate <req/s> --burst <n>
                                    Give the merchant its own rate limit (default: the stage's,
                                    e.g. 100 req/s, burst 200); up to 10000 req/s, burst 5000
  merchants receipts set --merchant <mch_id> [--email on|off] [--sms on|off]
                                    Turn payer receipts (order.succeeded, refund.succeeded) on or off
                                    per channel; off by default; a channel not given keeps its setting
  merchants payouts set --merchant <mch_id> [--currency <ISO 4217>] [--delay-days <0-30>]
                        [--bank-account <digits>]
                                    Set where and when settlement pays the merchant: its settlement
                                    currency (default: the platform's, USD), its payout delay in
                                    business days (default 1: T+1) and its bank account (sealed with
                                    KMS; only the last 4 digits are ever shown); a setting not given
                                    keeps its value
  keys roll --merchant <mch_id>     Issue a new secret key, revoke every active secret key (restricted
                                    keys stay), and flush the API's authorizer cache so revoked keys
                                    get 401 at once
  keys create --merchant <mch_id> --scope <scopes>
                                    Issue a restricted key (rk_test_…) limited to comma-separated
                                    scopes: ${SCOPES.join(', ')}
  keys revoke --key <key_id>        Revoke one key, secret or restricted, and flush the authorizer cache
  settlements list [--merchant <mch_id>] [--limit <n>]
                                    Settlements, newest first (default 20): one merchant's, or every
                                    merchant's
  settlements show <stl_id>         One settlement: totals, status, payout, bank account last 4, report
  settlements report <stl_id> [--out <file.csv>]
                                    The settlement report as CSV (to the file, else to stdout) and its
                                    SHA-256, checked against the digest the Report step stored
  fx set <from> <to> <rate> [--markup-bps <n>] [--effective-at <ISO time>]
                                    Add an exchange rate: one <from> buys <rate> <to>, e.g. fx set EUR USD
                                    1.0845 --markup-bps 100 (base rate and markup kept apart; markup 0-10000
                                    bps, default 0). Takes effect at --effective-at (default: now); rates are
                                    history, never changed. Payments confirm at the rate in force then.
  fx list [<from> <to>]             The rate table (or one pair's history), oldest first
  payers erase --order <ord_id>     Erase the payer's personal data (name, email, phone, address) from the
                                    order and from what derives from it; the ledger, events and audit trail
                                    carry none. Audited, and cannot be undone
  settlements run [--cutoff <ISO time>] [--merchant <mch_id>]
                                    Run settlement now: starts the settlement state machine, waits, and
                                    prints the settlements made, net per currency and failures. Entries
                                    available before the cutoff are settled (default: the start of the
                                    current business day); running a cutoff again pays nothing twice
  audit verify [--merchant <mch_id>]
                                    Recompute the audit trail's hash chains from seq 1: every chain (the
                                    platform's and each merchant's), or one merchant's; prints OK with
                                    counts, or the first broken link (chain, seq, entry id, what is wrong),
                                    checked against the latest signed heads (a cut tail shows there)
  backup create [--out <file>]      Local cloud only: every table to one gzip file with a manifest, item
                                    counts and a SHA-256 per table; exports the KMS key material it needs
                                    to .payplane/key-material/<fingerprint>
  backup restore <file>             Local cloud only, into a fresh one started with the backup's key
                                    material (npm start -- --in-memory --key-material <fingerprint>):
                                    refuses a file whose digests do not match, other key material, a
                                    non-empty table or a broken ledger, before writing anything

Merchant commands (through the public /v1 API with a merchant's key; on the local cloud the demo merchant's,
unless --api-key names another):
  listen --forward-to <url> [--events <type,…>] [--since <ISO time>]
                                    Poll GET /v1/events and forward each new event (created from now, or
                                    --since) to your server, once, signed in the Standard Webhooks format with
                                    the session secret (whsec_…) it prints at start; one line per event with
                                    your server's status. Ctrl-C stops it
  trigger <event type>              Make the objects that cause the event (sandbox test cards) and print the
                                    event: order.created, order.processing, order.requires_action,
                                    order.requires_capture, order.succeeded, order.payment_failed,
                                    order.refunded, order.closed, refund.created, refund.succeeded
  events list [--type <type>] [--limit <1-100>]
  events show <evt_id>              The event and its deliveries
  events resend <evt_id> [--endpoint <we_id>]
                                    Deliver it again to the merchant's webhook endpoints (or one)
  orders list [--status <status>] [--limit <1-100>]
  orders show <ord_id>
  refunds create --order <ord_id> [--amount <minor units>] [--reason <reason>]
                                    Refund the order (default: what is left); 500 = 5.00 USD
  --api-key <sk_…>                  The merchant's key (against a stage: this or PAYPLANE_API_KEY)
  --api-url <url>                   A deployed stage's API, e.g. https://abc.execute-api.eu-west-1.amazonaws.com/dev
                                    (or PAYPLANE_API_URL): nothing but the key needed, no AWS credentials

Target (default: the local cloud started with \`npm start\`, read from .payplane/local.json):
  --stage <dev|prod>                A deployed stage (CloudFormation stack Payplane-<stage>)
  --region <region>                 AWS region of the stage (default: AWS_REGION / your profile)
  --profile <name>                  AWS profile for your own IAM credentials (default chain otherwise)

Options:
  --json                            Print the result as JSON
  -h, --help                        Show this help

Changes go through the operator API (/operator/…, SigV4-signed with your IAM credentials, which the
platform records as who made them); reads go to the table. Keys are shown once: only their hash is stored. Exit codes: 0 done; 1 failed (for keys roll and
keys revoke, also: done but the authorizer cache not flushed; for settlements run, the execution
failed, e.g. a reconciliation break; for audit verify, a broken chain); 2 bad arguments.`;

export interface Io {
  out(text: string): void;
  /** Raw bytes to stdout, no newline added (a CSV on stdout keeps its digest). @default out */
  write?(text: string): void;
  err(text: string): void;
  env: NodeJS.ProcessEnv;
}

const processIo: Io = {
  out: (text) => process.stdout.write(`${text}\n`),
  write: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(`${text}\n`),
  env: process.env,
};

/** Argument errors use the one hierarchy: code `cli_usage` prints the usage, exit 2. */
const usage = (message: string) => new InvalidRequestError('cli_usage', message);

const OPTIONS = {
  name: { type: 'string' },
  merchant: { type: 'string' },
  fees: { type: 'string' },
  scope: { type: 'string' },
  key: { type: 'string' },
  order: { type: 'string' },
  rate: { type: 'string' },
  burst: { type: 'string' },
  email: { type: 'string' },
  sms: { type: 'string' },
  currency: { type: 'string' },
  'delay-days': { type: 'string' },
  'bank-account': { type: 'string' },
  'markup-bps': { type: 'string' },
  'effective-at': { type: 'string' },
  cutoff: { type: 'string' },
  stage: { type: 'string' },
  region: { type: 'string' },
  profile: { type: 'string' },
  limit: { type: 'string' },
  out: { type: 'string' },
  'api-key': { type: 'string' },
  'api-url': { type: 'string' },
  'forward-to': { type: 'string' },
  events: { type: 'string' },
  since: { type: 'string' },
  type: { type: 'string' },
  status: { type: 'string' },
  amount: { type: 'string' },
  reason: { type: 'string' },
  endpoint: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

type Option = keyof typeof OPTIONS;
const FEES_HINT = `--fees '{"card":{"percent_bps":250,"fixed":30}}'`;
type Run = (t: Target, v: Values, io: Io, args: string[]) => Promise<number>;
/** `args`: the positionals after the command's name it takes (fx set EUR USD 1.0845), as [fewest, most]. */
type Spec = { required: Option[]; optional?: Option[]; args?: [number, number]; hint: string } & ({ run: Run } | { api: ApiRun });
const COMMANDS: Record<string, Spec> = {
  listen: { required: ['forward-to'], optional: ['events', 'since'], hint: '--forward-to http://localhost:8080/hook --events order.succeeded', api: runListen },
  trigger: { required: [], args: [1, 1], hint: 'order.succeeded', api: runTrigger },
  'events list': { required: [], optional: ['type', 'limit'], hint: '--type order.succeeded --limit 20', api: runEventsList },
  'events show': { required: [], args: [1, 1], hint: 'evt_…', api: runEventsShow },
  'events resend': { required: [], optional: ['endpoint'], args: [1, 1], hint: 'evt_… --endpoint we_…', api: runEventsResend },
  'orders list': { required: [], optional: ['status', 'limit'], hint: '--status succeeded --limit 20', api: runOrdersList },
  'orders show': { required: [], args: [1, 1], hint: 'ord_…', api: runOrdersShow },
  'refunds create': { required: ['order'], optional: ['amount', 'reason'], hint: '--order ord_… --amount 500', api: runRefundsCreate },
  'merchants create': { required: ['name'], optional: ['fees'], hint: '--name "Acme Coffee"', run: runMerchantsCreate },
  'merchants fees set': { required: ['merchant', 'fees'], hint: `--merchant mch_… ${FEES_HINT}`, run: runMerchantsFeesSet },
  'merchants limits set': { required: ['merchant', 'rate', 'burst'], hint: '--merchant mch_… --rate 500 --burst 1000', run: runMerchantsLimitsSet },
  'merchants receipts set': { required: ['merchant'], optional: ['email', 'sms'], hint: '--merchant mch_… --email on --sms off', run: runMerchantsReceiptsSet },
  'merchants payouts set': {
    required: ['merchant'],
    optional: ['currency', 'delay-days', 'bank-account'],
    hint: '--merchant mch_… --currency USD --delay-days 1 --bank-account 000123456789',
    run: runMerchantsPayoutsSet,
  },
  'keys roll': { required: ['merchant'], hint: '--merchant mch_…', run: runKeysRoll },
  'keys create': { required: ['merchant', 'scope'], hint: '--merchant mch_… --scope orders:read,refunds:write', run: runKeysCreate },
  'keys revoke': { required: ['key'], hint: '--key key_…', run: runKeysRevoke },
  'settlements list': { required: [], optional: ['merchant', 'limit'], hint: '--merchant mch_…', run: runSettlementsList },
  'settlements show': { required: [], args: [1, 1], hint: 'stl_…', run: runSettlementsShow },
  'settlements report': { required: [], optional: ['out'], args: [1, 1], hint: 'stl_… --out report.csv', run: runSettlementsReport },
  'fx set': { required: [], optional: ['markup-bps', 'effective-at'], args: [3, 3], hint: 'EUR USD 1.0845 --markup-bps 100', run: runFxSet },
  'fx list': { required: [], args: [0, 2], hint: 'EUR USD', run: runFxList },
  'settlements run': { required: [], optional: ['cutoff', 'merchant'], hint: '--cutoff 2026-12-02T00:00:00Z', run: runSettlementsRun },
  'audit verify': { required: [], optional: ['merchant'], hint: '--merchant mch_…', run: runAuditVerify },
  'payers erase': { required: ['order'], hint: '--order ord_…', run: runPayersErase },
  'backup create': { required: [], optional: ['out'], hint: '--out day.ppbak.gz', run: runBackupCreate },
  'backup restore': { required: [], args: [1, 1], hint: '.payplane/backups/test-….ppbak.gz', run: runBackupRestore },
};
const COMMON: Option[] = ['stage', 'region', 'profile', 'json', 'help'];
const MERCHANT: Option[] = ['api-key', 'api-url'];

/** Runs the CLI in-process; returns the exit code. `resolve` is injectable for tests. */
export async function main(
  argv: string[],
  io: Io = processIo,
  resolve: (o: TargetOptions, env: NodeJS.ProcessEnv) => Promise<Target> = resolveTarget,
): Promise<number> {
  let target: Target | undefined;
  try {
    let parsed: { values: Values; positionals: string[] };
    try {
      parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
    } catch (error) {
      throw usage((error as Error).message);
    }
    const { values, positionals } = parsed;
    if (values.help || positionals.length === 0) {
      (values.help ? io.out : io.err)(USAGE);
      return values.help ? 0 : 2;
    }
    // The longest command name the positionals start with; what follows are its arguments.
    const name = Object.keys(COMMANDS)
      .filter((n) => positionals.join(' ') === n || positionals.join(' ').startsWith(`${n} `))
      .sort((a, b) => b.length - a.length)[0];
    const command = name ? COMMANDS[name] : undefined;
    if (!name || !command) throw usage(`Unknown command '${positionals.join(' ')}'. Commands: ${Object.keys(COMMANDS).join(', ')}.`);
    const args = positionals.slice(name.split(' ').length);
    const [fewest, most] = command.args ?? [0, 0];
    if (args.length < fewest || args.length > most) {
      throw usage(
        most === 0
          ? `Unknown command '${positionals.join(' ')}'. Commands: ${Object.keys(COMMANDS).join(', ')}.`
          : `'${name}' takes ${fewest === most ? fewest : `${fewest} to ${most}`} arguments, got ${args.length} (${args.join(' ') || 'none'}), e.g. payplane ${name} ${command.hint}.`,
      );
    }
    if (name === 'fx list' && args.length === 1) throw usage(`'fx list' takes a pair (<from> <to>) or nothing, got '${args[0]}', e.g. payplane fx list EUR USD.`);
    for (const [option, value] of Object.entries(values)) {
      const allowed = [...COMMON, ...('api' in command ? MERCHANT : []), ...command.required, ...(command.optional ?? [])];
      if (value !== undefined && !allowed.includes(option as Option)) {
        throw usage(`Option --${option} does not apply to '${name}'.`);
      }
    }
    const missing = command.required.filter((option) => values[option] === undefined);
    if (missing.length) throw usage(`'${name}' needs ${missing.map((o) => `--${o}`).join(' and ')}, e.g. ${command.hint}.`);
    const targetOptions = parseTarget(values);
    if ('api' in command) {
      const url = values['api-url'] ?? io.env.PAYPLANE_API_URL;
      if (url !== undefined && values.stage !== undefined) throw usage('--api-url and --stage both name a stage: give one.');
      return await command.api(await merchantApi(url === undefined ? await resolve(targetOptions, io.env) : undefined, url, values, io.env), values, io, args);
    }
    target = await resolve(targetOptions, io.env);
    return await command.run(target, values, io, args);
  } catch (error) {
    if (error instanceof InvalidRequestError) {
      const help = error.code === 'cli_usage' ? USAGE : 'Run payplane --help for usage.';
      io.err(`payplane: ${error.message}\n\n${help}`);
      return 2;
    }
    io.err(`payplane: ${target?.explain(error) ?? (error as Error).message ?? String(error)}`);
    if (io.env.PAYPLANE_DEBUG) io.err(String((error as Error).stack ?? error));
    return 1;
  }
}

/**
 * Whose data a merchant command reads and changes: the key of --api-key; else, on the local cloud, the seeded demo
 * merchant's; else (a stage) PAYPLANE_API_KEY. A stage by --api-url needs no AWS credentials; by --stage, its URL
 * comes from the stack.
 */
async function merchantApi(target: Target | undefined, url: string | undefined, values: Values, env: NodeJS.ProcessEnv): Promise<MerchantApi> {
  const given = values['api-key'];
  if (given !== undefined && !/^(sk|rk)_(test|live)_\S+$/.test(given)) throw usage(`Invalid --api-key '${given.slice(0, 8)}…': a merchant key looks like sk_test_… or rk_test_… (payplane merchants create prints one).`);
  if (target?.kind === 'local') {
    const api = await target.api();
    const key = given ?? api.demoKey;
    if (!key) throw usage(`The ${target.label} has no demo merchant (started with a backup, or an older npm start): pass --api-key sk_test_… of a merchant (payplane merchants create --name …).`);
    return { url: api.url, key, label: `${target.label} as ${given ? 'the merchant of --api-key' : 'the demo merchant'}` };
  }
  const key = given ?? env.PAYPLANE_API_KEY;
  const where = url ?? (await target!.api()).url;
  if (!key) throw usage(`A stage needs the merchant's key: pass --api-key sk_test_… or set PAYPLANE_API_KEY (the local cloud uses its demo merchant's).`);
  if (!/^https?:\/\//.test(where)) throw usage(`Invalid --api-url '${where}': use the stage's base URL, e.g. https://abc.execute-api.eu-west-1.amazonaws.com/dev.`);
  return { url: where, key, label: target ? target.label : `API at ${where}` };
}

function parseTarget(values: Values): TargetOptions {
  if (values.stage === undefined) {
    if (values.region !== undefined || values.profile !== undefined) {
      throw usage('--region and --profile select a deployed stage: add --stage dev or --stage prod.');
    }
    return {};
  }
  if (values.stage !== 'dev' && values.stage !== 'prod') {
    throw usage(`Invalid --stage '${values.stage}': use dev or prod (omit it for the local cloud).`);
  }
  return { stage: values.stage, region: values.region, profile: values.profile };
}

/** `--fees` is JSON; the schedule itself is validated by the operation, which names the field. */
function feesOption(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new InvalidRequestError(
      'parameter_invalid',
      `Invalid --fees: got ${JSON.stringify(text)}, which is not JSON. Quote the whole object for your shell, e.g. ${FEES_HINT}.`,
      { param: 'fees' },
    );
  }
}

async function runMerchantsCreate(target: Target, values: Values, io: Io): Promise<number> {
  const created = await merchantsCreate(target, { name: values.name, fees: feesOption(values.fees) });
  if (values.json) {
    io.out(JSON.stringify(created, null, 2));
  } else {
    io.out(
      [
        `Created merchant ${created.id} ("${created.name}") on the ${target.label}.`,
        ...(created.fee_schedule ? [`  Fee override: ${JSON.stringify(created.fee_schedule)}`] : []),
        '',
        `  Secret key (${created.key_id}):  ${created.secret_key}`,
        '',
        'This key is shown once and cannot be retrieved again: store it in your secret manager now.',
        `If it is lost or leaked, issue a new one with: payplane keys roll --merchant ${created.id}`,
      ].join('\n'),
    );
  }
  return 0;
}

async function runMerchantsFeesSet(target: Target, values: Values, io: Io): Promise<number> {
  const merchant = await merchantsFeesSet(target, { merchantId: values.merchant, fees: feesOption(values.fees) });
  if (values.json) {
    io.out(JSON.stringify(merchant, null, 2));
  } else {
    io.out(
      [
        merchant.fee_schedule
          ? `Set the fee override of merchant ${merchant.id} ("${merchant.name}") on the ${target.label}:\n\n  ${JSON.stringify(merchant.fee_schedule)}\n\nMethods and fields it does not list keep the platform default.`
          : `Removed the fee override of merchant ${merchant.id} ("${merchant.name}") on the ${target.label}: the platform default applies.`,
        'Payments confirmed from now on are charged this (running functions pick it up within 60 s);',
        'payments already confirmed keep the rate they were confirmed with.',
      ].join('\n'),
    );
  }
  return 0;
}

async function runMerchantsLimitsSet(target: Target, values: Values, io: Io): Promise<number> {
  // Numbers from text; the operation checks the range and names the option.
  const number = (text: string | undefined) => (text !== undefined && /^\d+$/.test(text) ? Number(text) : text);
  const set = await merchantsLimitsSet(target, { merchantId: values.merchant, rateLimit: number(values.rate), burstLimit: number(values.burst) });
  if (values.json) io.out(JSON.stringify(set, null, 2));
  else {
    io.out(
      `Merchant ${set.merchant_id} on the ${target.label} is now limited to ${set.rateLimit} requests/s with bursts of ${set.burstLimit} ` +
        `(usage plan ${set.usage_plan_id}), across all its keys. API Gateway applies it from the next request.`,
    );
  }
  return 0;
}

async function runMerchantsReceiptsSet(target: Target, values: Values, io: Io): Promise<number> {
  const set = await merchantsReceiptsSet(target, { merchantId: values.merchant, email: values.email, sms: values.sms });
  if (values.json) io.out(JSON.stringify(set, null, 2));
  else {
    const word = (on: boolean) => (on ? 'on' : 'off');
    io.out(
      `Receipts of merchant ${set.merchant_id} on the ${target.label}: email ${word(set.receipts.email)}, SMS ${word(set.receipts.sms)}. ` +
        'They apply from the next succeeded payment or refund, to orders that carry the payer\'s email or phone.',
    );
  }
  return 0;
}

async function runMerchantsPayoutsSet(target: Target, values: Values, io: Io): Promise<number> {
  const set = await merchantsPayoutsSet(target, {
    merchantId: values.merchant,
    currency: values.currency,
    delayDays: values['delay-days'],
    bankAccount: values['bank-account'],
  });
  if (values.json) io.out(JSON.stringify(set, null, 2));
  else {
    const p = set.payout;
    io.out(
      [
        `Payout settings of merchant ${set.merchant_id} on the ${target.label}:`,
        '',
        `  Settlement currency:  ${p.settlement_currency}`,
        `  Payout delay:         ${p.delay_days} business day${p.delay_days === 1 ? '' : 's'} (T+${p.delay_days})`,
        `  Bank account:         ${p.bank_account_last4 ? `…${p.bank_account_last4} (sealed)` : 'none on file: settlements cannot be paid out until one is set'}`,
        '',
        'The next settlement run uses them; entries already settled are not moved.',
      ].join('\n'),
    );
  }
  return 0;
}

async function runKeysCreate(target: Target, values: Values, io: Io): Promise<number> {
  const created = await keysCreate(target, { merchantId: values.merchant, scopes: values.scope });
  if (values.json) io.out(JSON.stringify(created, null, 2));
  else {
    io.out(
      [
        `Created a restricted key for merchant ${created.merchant_id} on the ${target.label}.`,
        '',
        `  Restricted key (${created.key_id}):  ${created.restricted_key}`,
        `  Scopes: ${created.scopes.join(', ')}`,
        '',
        'This key is shown once and cannot be retrieved again: store it in your secret manager now.',
        `Revoke it with: payplane keys revoke --key ${created.key_id}`,
      ].join('\n'),
    );
  }
  return 0;
}

async function runKeysRevoke(target: Target, values: Values, io: Io): Promise<number> {
  const revoked = await keysRevoke(target, { keyId: values.key });
  if (values.json) io.out(JSON.stringify(revoked, null, 2));
  else {
    io.out(
      revoked.revoked
        ? `Revoked the ${revoked.kind} key ${revoked.key_id} of merchant ${revoked.merchant_id} on the ${target.label}.` +
            (revoked.kind === 'secret' ? `\nThe merchant has no secret key now: issue one with payplane keys roll --merchant ${revoked.merchant_id}` : '')
        : `The key ${revoked.key_id} of merchant ${revoked.merchant_id} was already revoked; nothing changed.`,
    );
  }
  return cacheWarning(revoked, target, io, 'The revocation is committed');
}

async function runKeysRoll(target: Target, values: Values, io: Io): Promise<number> {
  const rolled = await keysRoll(target, { merchantId: values.merchant });
  if (values.json) {
    io.out(JSON.stringify(rolled, null, 2));
  } else {
    const revoked = rolled.revoked_key_ids.length ? rolled.revoked_key_ids.join(', ') : 'none';
    io.out(
      [
        `Rolled the secret key of merchant ${rolled.merchant_id} on the ${target.label}.`,
        '',
        `  New secret key (${rolled.key_id}):  ${rolled.secret_key}`,
        `  Revoked: ${revoked}`,
        '',
        'This key is shown once and cannot be retrieved again: store it in your secret manager now.',
      ].join('\n'),
    );
  }
  return cacheWarning(rolled, target, io, 'The new key is above');
}

async function runSettlementsList(target: Target, values: Values, io: Io): Promise<number> {
  const limit = values.limit === undefined ? undefined : /^\d+$/.test(values.limit) && +values.limit >= 1 && +values.limit <= 1000 ? +values.limit : NaN;
  if (Number.isNaN(limit)) throw usage(`Invalid --limit '${values.limit}': use an integer from 1 to 1000, e.g. --limit 50.`);
  const list = await settlementsList(target, { merchantId: values.merchant, limit });
  if (values.json) io.out(JSON.stringify(list, null, 2));
  else if (list.length === 0) io.out(`No settlements${values.merchant ? ` of merchant ${values.merchant}` : ''} on the ${target.label}.`);
  else io.out(list.map(settlementRow).join('\n'));
  return 0;
}

const settlementRow = (s: SettlementShown) =>
  `${s.id}  ${s.merchant_id}  ${s.created_at}  ${s.status.padEnd(15)}  ${s.currency} net ${s.totals.net} (gross ${s.totals.gross}, refunds ${s.totals.refunds}, fees ${s.totals.fees}, fx ${s.totals.fx}, ${s.totals.entry_count} entries)`;

async function runSettlementsShow(target: Target, values: Values, io: Io, [id]: string[]): Promise<number> {
  const s = await settlementsShow(target, { id: id! });
  if (values.json) io.out(JSON.stringify(s, null, 2));
  else {
    io.out(
      [
        settlementRow(s),
        `  cutoff ${s.cutoff}, delay ${s.delay_days} day(s); delayed [${s.windows.delayed.from}, ${s.windows.delayed.to}), immediate [${s.windows.immediate.from}, ${s.windows.immediate.to})`,
        `  totals ${JSON.stringify(s.totals)}`,
        `  payout ${s.payout ? `${s.payout.status}${s.payout.reference ? ` (${s.payout.reference})` : ''}, ${s.payout.attempts} attempt(s)` : 'none'}; bank account ••••${s.bank_account_last4 ?? '????'}`,
        `  report ${s.report ? `${s.report.lines} lines in ${s.report.parts.length} part(s), sha256 ${s.report.sha256}` : 'not written yet'}`,
      ].join('\n'),
    );
  }
  return 0;
}

async function runSettlementsReport(target: Target, values: Values, io: Io, [id]: string[]): Promise<number> {
  const chunks: string[] = [];
  const fd = values.out === undefined ? undefined : openSync(values.out, 'w');
  try {
    const written = await settlementsReport(target, { id: id!, write: fd === undefined ? (t) => chunks.push(t) : (t) => writeSync(fd, t) });
    if (fd === undefined) (io.write ?? io.out)(chunks.join(''));
    const summary = `${written.sha256}  ${values.out ?? '-'}  (${written.lines} lines, ${written.bytes} bytes${written.stored_sha256 ? ', the digest the Report step stored' : ', no stored digest yet'})`;
    if (values.json) (fd === undefined ? io.err : io.out)(JSON.stringify({ ...written, out: values.out ?? null }, null, 2));
    else (fd === undefined ? io.err : io.out)(summary);
    return 0;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

async function runSettlementsRun(target: Target, values: Values, io: Io): Promise<number> {
  const result = await settlementsRun(target, {
    cutoff: values.cutoff,
    merchantId: values.merchant,
    onStarted: (arn) => io.err(`Started ${arn}; waiting for it to finish…`),
  });
  io.out(values.json ? JSON.stringify(result, null, 2) : describeRun(result, target.label));
  return result.status === 'SUCCEEDED' ? 0 : 1;
}

async function runPayersErase(target: Target, values: Values, io: Io): Promise<number> {
  const erased = await payersErase(target, { orderId: values.order });
  io.out(values.json ? JSON.stringify(erased, null, 2) : `${erased.message} (${target.label})`);
  return 0;
}

/** Exit 1 with a warning when the change is committed but the authorizer cache was not flushed. */
function cacheWarning(result: { authorizer_cache_flushed: boolean; authorizer_cache_error?: string }, target: Target, io: Io, done: string): number {
  if (result.authorizer_cache_flushed) return 0;
  io.err(
    `payplane: warning: ${done}, but flushing the authorizer cache failed (${result.authorizer_cache_error}). ` +
      `Revoked keys keep working for up to 300 s. Flush it now: ${target.flushHint}`,
  );
  return 1;
}

async function runFxSet(target: Target, values: Values, io: Io, args: string[]): Promise<number> {
  const [from, to, rate] = args;
  const set = await fxSet(target, { from, to, rate, markup_bps: values['markup-bps'], effective_at: values['effective-at'] });
  if (values.json) io.out(JSON.stringify(set, null, 2));
  else {
    const r = set.rate;
    io.out(
      [
        set.created
          ? `Set the ${r.from}→${r.to} rate on the ${target.label}: 1 ${r.from} = ${r.rate} ${r.to}, markup ${r.markup_bps} bps (merchants get ${set.applied_rate}), effective ${r.effective_at}.`
          : `The ${r.from}→${r.to} rate ${r.rate} (markup ${r.markup_bps} bps) effective ${r.effective_at} was already set on the ${target.label}; nothing changed.`,
        'Payments confirmed from then on convert at it; payments already confirmed keep the rate they locked.',
      ].join('\n'),
    );
  }
  return 0;
}

async function runFxList(target: Target, values: Values, io: Io, args: string[]): Promise<number> {
  const rates = await fxList(target, args.length === 2 ? { from: args[0], to: args[1] } : undefined);
  if (values.json) io.out(JSON.stringify(rates, null, 2));
  else if (rates.length === 0) io.out(`No exchange rates on the ${target.label}. Add one with: payplane fx set EUR USD 1.0845`);
  else {
    io.out(['PAIR     RATE            MARKUP_BPS  EFFECTIVE_AT              SET_BY', ...rates.map((r) => `${`${r.from}/${r.to}`.padEnd(8)} ${r.rate.padEnd(15)} ${String(r.markup_bps).padEnd(11)} ${r.effective_at}  ${r.set_by}`)].join('\n'));
  }
  return 0;
}

async function runAuditVerify(target: Target, values: Values, io: Io): Promise<number> {
  // The latest signed heads, verified against the signing key: a cut tail shows only against them. A newest
  // document that fails its signature throws (SignedHeadsError): never fall back to an older one.
  const heads = target.auditHeads();
  const signed = heads ? await latestVerifiedSignedHeads(heads) : undefined;
  const verified = await auditVerify(target, { merchantId: values.merchant, signedHeads: signed?.document.chains });
  const against = signed
    ? `Checked against the signed heads of ${signed.document.signed_at} (${signed.key}).`
    : 'No signed heads yet (they are signed daily): a cut tail cannot be seen until the first ones are.';
  if (values.json) io.out(JSON.stringify({ ...verified, signed_heads: signed ? { key: signed.key, signed_at: signed.document.signed_at } : null }, null, 2));
  else io.out([...verified.chains.map(describeVerdict), '', against, verified.ok ? `The audit trail on the ${target.label} is intact.` : `The audit trail on the ${target.label} has been tampered with: see BROKEN above.`].join('\n'));
  return verified.ok ? 0 : 1;
}

/** Backups are of the local cloud's tables; a deployed stage has AWS Backup (docs/operations.md). */
function localOnly(target: Target, name: string): void {
  if (target.kind !== 'local') throw usage(`'${name}' backs up the local cloud only; a deployed stage is backed up by AWS Backup (docs/operations.md § Backups and restore (AWS)).`);
}

async function runBackupCreate(target: Target, values: Values, io: Io): Promise<number> {
  localOnly(target, 'backup create');
  const { file, manifest } = await backupCreate({ out: values.out }, io.env);
  if (values.json) io.out(JSON.stringify({ file, manifest }, null, 2));
  else {
    io.out(
      [
        `Backed up the ${target.label} to ${file}`,
        ...manifest.tables.map((t) => `  ${t.logical_id}: ${t.items} items, SHA-256 ${t.sha256}`),
        `Key material: ${manifest.key_material} (kept in .payplane/key-material/${manifest.key_material}; a restore needs it)`,
      ].join('\n'),
    );
  }
  return 0;
}

async function runBackupRestore(target: Target, values: Values, io: Io, args: string[]): Promise<number> {
  localOnly(target, 'backup restore');
  const restored = await backupRestore({ file: args[0]! }, io.env);
  if (values.json) io.out(JSON.stringify(restored, null, 2));
  else {
    io.out(
      [
        `Restored ${restored.file} into the ${target.label}: digests and ledger checked before any write`,
        ...restored.tables.map((t) => `  ${t.logical_id}: ${t.items} items`),
        `  ${restored.merchants} merchants given their API Gateway usage keys again`,
      ].join('\n'),
    );
  }
  return 0;
}

