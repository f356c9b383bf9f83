import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The local cloud's outbox: every email the local SES sends and every SMS the local SNS sends is a file
 * in `<dataDir>/outbox/` (`.payplane/outbox/` for `npm start`; a temporary directory for in-memory clouds),
 * named `<UTC time>-<message id>.eml` / `.json` so `ls` lists them in sending order.
 *
 * - `.eml`: an RFC 5322 / MIME message as SES would hand it to the recipient's server (From, To, Subject,
 *   Date, Message-ID, multipart/alternative text + HTML, UTF-8 in base64 bodies and RFC 2047 encoded-word
 *   headers), so a mail client opens it as is.
 * - `.json`: `{ to, body, sent_at, message_id, sms_type?, sender_id? }`.
 */

export interface EmailMessage {
  messageId: string;
  from: string;
  to: string[];
  cc?: string[];
  replyTo?: string[];
  subject: string;
  text?: string;
  html?: string;
  configurationSet?: string;
  date: Date;
}

export interface SmsMessage {
  to: string;
  body: string;
  sent_at: string;
  message_id: string;
  sms_type?: string;
  sender_id?: string;
}

export class Outbox {
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  /** Writes an email built from SES Simple content; returns the file's path. */
  writeEmail(message: EmailMessage): string {
    return this.write(`${fileTime(message.date)}-${message.messageId}.eml`, buildEml(message));
  }

  /** Writes a message that is already MIME (SES Raw content) as it came. */
  writeRawEmail(messageId: string, date: Date, raw: Buffer): string {
    return this.write(`${fileTime(date)}-${messageId}.eml`, raw);
  }

  writeSms(message: SmsMessage): string {
    return this.write(`${fileTime(new Date(message.sent_at))}-${message.message_id}.json`, `${JSON.stringify(message, null, 2)}\n`);
  }

  /** File names in sending order. */
  list(extension?: '.eml' | '.json'): string[] {
    return readdirSync(this.dir)
      .filter((f) => (extension ? f.endsWith(extension) : f.endsWith('.eml') || f.endsWith('.json')))
      .sort();
  }

  read(file: string): string {
    return readFileSync(join(this.dir, file), 'utf8');
  }

  /** Write-then-rename: a reader never sees half a message. */
  private write(name: string, content: string | Buffer): string {
    const path = join(this.dir, name);
    writeFileSync(`${path}.tmp`, content);
    renameSync(`${path}.tmp`, path);
    return path;
  }
}

/** `20261201T083000123Z`: sortable, and valid in file names everywhere (no colons). */
function fileTime(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace('.', '');
}

const CRLF = '\r\n';

/** The RFC 5322 message of an SES Simple email (CRLF line ends, 7-bit clean). */
export function buildEml(m: EmailMessage): string {
  const boundary = `=_payplane_${randomBytes(12).toString('hex')}`;
  const headers = [
    `From: ${encodeAddressList([m.from])}`,
    `To: ${encodeAddressList(m.to)}`,
    ...(m.cc?.length ? [`Cc: ${encodeAddressList(m.cc)}`] : []),
    ...(m.replyTo?.length ? [`Reply-To: ${encodeAddressList(m.replyTo)}`] : []),
    `Subject: ${encodeWord(m.subject)}`,
    `Date: ${rfc5322Date(m.date)}`,
    // SES's own form: <message id>@<region>.amazonses.com; the local one says so.
    `Message-ID: <${m.messageId}@email.local.amazonses.com>`,
    'MIME-Version: 1.0',
    ...(m.configurationSet ? [`X-SES-CONFIGURATION-SET: ${m.configurationSet}`] : []),
  ];
  const part = (type: 'plain' | 'html', body: string) =>
    [`Content-Type: text/${type}; charset=UTF-8`, 'Content-Transfer-Encoding: base64', '', base64Lines(body)].join(CRLF);
  const parts = [...(m.text !== undefined ? [part('plain', m.text)] : []), ...(m.html !== undefined ? [part('html', m.html)] : [])];
  if (parts.length === 1) {
    // One body: no multipart wrapper, as SES sends it.
    return [...headers, parts[0]!].join(CRLF) + CRLF;
  }
  return (
    [
      ...headers,
      `Content-Type: multipart/alternative; boundary="${boundary}"`,
      '',
      ...parts.flatMap((p) => [`--${boundary}`, p]),
      `--${boundary}--`,
    ].join(CRLF) + CRLF
  );
}

/** Base64 in lines of 76 characters (RFC 2045 §6.8). */
function base64Lines(text: string): string {
  const b64 = Buffer.from(text, 'utf8').toString('base64');
  return b64.match(/.{1,76}/g)?.join(CRLF) ?? '';
}

/** RFC 2047 encoded-word (`=?UTF-8?B?…?=`) for non-ASCII text, split so no word passes 75 characters. */
export function encodeWord(text: string): string {
  // eslint-disable-next-line no-control-regex
  if (/^[\x20-\x7e]*$/.test(text)) return text;
  const words: string[] = [];
  let chunk = '';
  for (const char of text) {
    // 45 bytes of UTF-8 → 60 base64 characters + 12 of `=?UTF-8?B?` / `?=`: under 75; never splits a character.
    if (Buffer.byteLength(chunk + char, 'utf8') > 45) {
      words.push(chunk);
      chunk = '';
    }
    chunk += char;
  }
  if (chunk) words.push(chunk);
  return words.map((w) => `=?UTF-8?B?${Buffer.from(w, 'utf8').toString('base64')}?=`).join(`${CRLF} `);
}

/** `Name <a@b>` with the display name encoded when it is not ASCII; a bare address stays bare. */
function encodeAddressList(addresses: string[]): string {
  return addresses
    .map((address) => {
      const m = /^\s*(.*?)\s*<([^>]+)>\s*$/.exec(address);
      if (!m || !m[1]) return address.trim();
      const name = m[1].replace(/^"(.*)"$/, '$1');
      // eslint-disable-next-line no-control-regex
      const display = /^[\x20-\x7e]*$/.test(name) ? `"${name.replace(/(["\\])/g, '\\$1')}"` : encodeWord(name);
      return `${display} <${m[2]}>`;
    })
    .join(', ');
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `Tue, 01 Dec 2026 08:30:00 +0000` (RFC 5322 §3.3). */
export function rfc5322Date(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${DAYS[d.getUTCDay()]}, ${p(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}
