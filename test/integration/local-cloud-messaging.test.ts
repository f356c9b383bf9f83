import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SendEmailCommand, SESv2Client } from '@aws-sdk/client-sesv2';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalIam } from '../../local/iam';
import { Outbox } from '../../local/outbox';
import { startSes, type SesEndpoint } from '../../local/ses';
import { startSns, type SnsEndpoint } from '../../local/sns';
import { LocalStack, type CfnTemplate } from '../../local/template';

/**
 * The local SES v2 and SNS through the real @aws-sdk/client-sesv2 (REST-JSON) and @aws-sdk/client-sns (Query):
 * what they answer (MessageId, the services' errors), what they write to the outbox (an .eml a mail client
 * opens, a .json per SMS), and IAM from the template (ses:SendEmail on the identity and configuration-set
 * ARNs, sns:Publish on "*").
 */

const sub = (text: string) => ({ 'Fn::Sub': text });
const role = (name: string, statements: unknown[]) => ({
  [`${name}Role`]: { Type: 'AWS::IAM::Role', Properties: {} },
  [`${name}Policy`]: {
    Type: 'AWS::IAM::Policy',
    Properties: { Roles: [{ Ref: `${name}Role` }], PolicyDocument: { Version: '2012-10-17', Statement: statements } },
  },
  [name]: { Type: 'AWS::Lambda::Function', Properties: { Role: { 'Fn::GetAtt': [`${name}Role`, 'Arn'] } } },
});
const identityArn = sub('arn:aws:ses:${AWS::Region}:${AWS::AccountId}:identity/payplane.example');
const template: CfnTemplate = {
  Resources: {
    Identity: { Type: 'AWS::SES::EmailIdentity', Properties: { EmailIdentity: 'payplane.example' } },
    Receipts: { Type: 'AWS::SES::ConfigurationSet', Properties: { Name: 'payplane-receipts' } },
    ...role('Sender', [
      { Effect: 'Allow', Action: 'ses:SendEmail', Resource: [identityArn, sub('arn:aws:ses:${AWS::Region}:${AWS::AccountId}:configuration-set/payplane-receipts')] },
      { Effect: 'Allow', Action: 'sns:Publish', Resource: '*' },
    ]),
    ...role('IdentityOnly', [{ Effect: 'Allow', Action: 'ses:SendEmail', Resource: identityArn }]),
    ...role('Nothing', [{ Effect: 'Allow', Action: 'sqs:SendMessage', Resource: '*' }]),
  },
};

let dir: string;
let outbox: Outbox;
let ses: SesEndpoint;
let sns: SnsEndpoint;
let iam: LocalIam;
const region = 'us-east-1';
const sesAs = (fn: string) => new SESv2Client({ region, endpoint: ses.url, credentials: iam.credentialsFor(fn) });
const snsAs = (fn: string) => new SNSClient({ region, endpoint: sns.url, credentials: iam.credentialsFor(fn) });

beforeAll(async () => {
  const stack = new LocalStack(structuredClone(template), { stackName: 'Payplane-messaging' });
  iam = new LocalIam(stack, { log: () => {} });
  dir = mkdtempSync(join(tmpdir(), 'payplane-outbox-test-'));
  outbox = new Outbox(dir);
  [ses, sns] = await Promise.all([startSes(stack, { outbox, iam }), startSns(stack, { outbox, iam })]);
});
afterAll(async () => {
  await ses?.stop();
  await sns?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A minimal RFC 5322 / MIME reader: unfolded headers, and each part's body decoded from base64. */
function parseEml(eml: string) {
  const [head = '', ...rest] = eml.split('\r\n\r\n');
  const headers: Record<string, string> = {};
  for (const line of head.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const i = line.indexOf(':');
    headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  const boundary = /boundary="([^"]+)"/.exec(headers['content-type'] ?? '')?.[1];
  const parts = (boundary ? rest.join('\r\n\r\n').split(`--${boundary}`).slice(1, -1) : []).map((p) => {
    const [ph = '', body = ''] = p.replace(/^\r\n/, '').split('\r\n\r\n');
    return { type: /Content-Type: ([^;\r\n]+)/.exec(ph)?.[1], charset: /charset=([^\s;]+)/.exec(ph)?.[1], body: Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8') };
  });
  const decodeWords = (value: string) => value.replace(/=\?UTF-8\?B\?([^?]+)\?=\s*/g, (_m, b64: string) => Buffer.from(b64, 'base64').toString('utf8'));
  return { headers, parts, decodeWords };
}

describe('local SES v2: SendEmail', () => {
  it('answers a MessageId and writes an .eml with From, To, Subject, Date, Message-ID and UTF-8 text and HTML parts', async () => {
    // Prepare
    const client = sesAs('Sender');
    const subject = '付款收据：Demo 商户 US$25.00';
    const text = '您已成功付款 US$25.00。\n订单号：no_123';
    const html = '<p>您已成功付款 <b>US$25.00</b>。</p>';
    // Act
    const out = await client.send(
      new SendEmailCommand({
        FromEmailAddress: 'Payplane receipts <receipts@payplane.example>',
        Destination: { ToAddresses: ['payer@example.com'] },
        ConfigurationSetName: 'payplane-receipts',
        Content: { Simple: { Subject: { Data: subject, Charset: 'UTF-8' }, Body: { Text: { Data: text, Charset: 'UTF-8' }, Html: { Data: html, Charset: 'UTF-8' } } } },
      }),
    );
    // Assess
    expect(out.MessageId).toMatch(/^0100[0-9a-f]{12}-[0-9a-f-]{36}-000000$/);
    const file = outbox.list('.eml').find((f) => f.includes(out.MessageId!));
    expect(file).toMatch(/^\d{8}T\d{9}Z-0100.*\.eml$/);
    const eml = outbox.read(file!);
    // 7-bit clean with CRLF line ends: every mail client reads it.
    expect(eml).toMatch(/^[\x20-\x7e\r\n\t]*$/);
    expect(eml.replace(/\r\n/g, '')).not.toContain('\n');
    const { headers, parts, decodeWords } = parseEml(eml);
    expect(headers.from).toBe('"Payplane receipts" <receipts@payplane.example>');
    expect(headers.to).toBe('payer@example.com');
    expect(decodeWords(headers.subject!)).toBe(subject);
    expect(headers['message-id']).toBe(`<${out.MessageId}@email.local.amazonses.com>`);
    expect(Date.parse(headers.date!)).not.toBeNaN();
    expect(headers.date).toMatch(/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$/);
    expect(headers['mime-version']).toBe('1.0');
    expect(headers['x-ses-configuration-set']).toBe('payplane-receipts');
    expect(parts).toEqual([
      { type: 'text/plain', charset: 'UTF-8', body: text },
      { type: 'text/html', charset: 'UTF-8', body: html },
    ]);
  });

  it('writes Raw content as it came', async () => {
    // Prepare
    const raw = 'From: receipts@payplane.example\r\nTo: payer@example.com\r\nSubject: raw\r\n\r\nbody\r\n';
    // Act
    const out = await sesAs('Sender').send(
      new SendEmailCommand({ FromEmailAddress: 'receipts@payplane.example', Destination: { ToAddresses: ['payer@example.com'] }, Content: { Raw: { Data: Buffer.from(raw) } } }),
    );
    // Assess
    expect(readFileSync(join(dir, outbox.list('.eml').find((f) => f.includes(out.MessageId!))!), 'utf8')).toBe(raw);
  });

  it("refuses a From address outside the template's identities with SES's MessageRejected", async () => {
    // Act: the IAM grant is on the identity, so ask as the administrator to reach the verification check.
    const admin = new SESv2Client({ region, endpoint: ses.url, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
    const error = await admin
      .send(new SendEmailCommand({ FromEmailAddress: 'someone@elsewhere.example', Destination: { ToAddresses: ['payer@example.com'] }, Content: { Simple: { Subject: { Data: 's' }, Body: { Text: { Data: 't' } } } } }))
      .catch((e: Error) => e);
    // Assess
    expect(error).toMatchObject({ name: 'MessageRejected', $metadata: { httpStatusCode: 400 } });
    expect((error as Error).message).toContain('Email address is not verified. The following identities failed the check in region US-EAST-1: someone@elsewhere.example');
  });

  it('answers NotFoundException for a configuration set the template does not have', async () => {
    const error = await sesAs('Sender')
      .send(new SendEmailCommand({ FromEmailAddress: 'receipts@payplane.example', ConfigurationSetName: 'nope', Destination: { ToAddresses: ['a@example.com'] }, Content: { Simple: { Subject: { Data: 's' }, Body: { Text: { Data: 't' } } } } }))
      .catch((e: Error) => e);
    // The sender is granted only its own configuration set, so IAM refuses first, as in AWS.
    expect(error).toMatchObject({ name: 'AccessDeniedException' });
    const admin = new SESv2Client({ region, endpoint: ses.url, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
    const notFound = await admin
      .send(new SendEmailCommand({ FromEmailAddress: 'receipts@payplane.example', ConfigurationSetName: 'nope', Destination: { ToAddresses: ['a@example.com'] }, Content: { Simple: { Subject: { Data: 's' }, Body: { Text: { Data: 't' } } } } }))
      .catch((e: Error) => e);
    expect(notFound).toMatchObject({ name: 'NotFoundException', $metadata: { httpStatusCode: 404 } });
  });

  it('checks ses:SendEmail on the identity ARN, and on the configuration set ARN when the request names one', async () => {
    const send = (fn: string, configurationSet?: string) =>
      sesAs(fn)
        .send(new SendEmailCommand({ FromEmailAddress: 'receipts@payplane.example', ConfigurationSetName: configurationSet, Destination: { ToAddresses: ['a@example.com'] }, Content: { Simple: { Subject: { Data: 's' }, Body: { Text: { Data: 't' } } } } }))
        .catch((e: Error) => e);
    // Act
    const [none, identityOnly, withSet] = await Promise.all([send('Nothing'), send('IdentityOnly'), send('IdentityOnly', 'payplane-receipts')]);
    // Assess
    expect(none).toMatchObject({ name: 'AccessDeniedException', $metadata: { httpStatusCode: 403 } });
    expect((none as Error).message).toMatch(
      /^User: arn:aws:sts::000000000000:assumed-role\/.*NothingRole.*\/Payplane-messaging-Nothing is not authorized to perform: ses:SendEmail on resource: arn:aws:ses:us-east-1:000000000000:identity\/payplane\.example because/,
    );
    expect(identityOnly).toMatchObject({ MessageId: expect.any(String) });
    expect((withSet as Error).message).toContain('ses:SendEmail on resource: arn:aws:ses:us-east-1:000000000000:configuration-set/payplane-receipts');
  });
});

describe('local SNS: Publish to a phone number', () => {
  it('answers a MessageId and writes the SMS as .json {to, body, sent_at, message_id}', async () => {
    // Act
    const out = await snsAs('Sender').send(
      new PublishCommand({
        PhoneNumber: '+8613800138000',
        Message: '【Payplane】您已向 Demo 商户付款 US$25.00。',
        MessageAttributes: { 'AWS.SNS.SMS.SMSType': { DataType: 'String', StringValue: 'Transactional' } },
      }),
    );
    // Assess
    expect(out.MessageId).toMatch(/^[0-9a-f-]{36}$/);
    const file = outbox.list('.json').find((f) => f.includes(out.MessageId!));
    const sms = JSON.parse(outbox.read(file!));
    expect(sms).toEqual({ to: '+8613800138000', body: '【Payplane】您已向 Demo 商户付款 US$25.00。', sent_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), message_id: out.MessageId, sms_type: 'Transactional' });
  });

  it("refuses a number that is not E.164 with SNS's InvalidParameter", async () => {
    const error = await snsAs('Sender').send(new PublishCommand({ PhoneNumber: '13800138000', Message: 'x' })).catch((e: Error) => e);
    expect(error).toMatchObject({ name: 'InvalidParameterException', $metadata: { httpStatusCode: 400 } });
    expect((error as Error).message).toContain('PhoneNumber Reason: 13800138000 is not valid to publish to');
  });

  it('checks sns:Publish on "*" and refuses a role without it (AuthorizationError)', async () => {
    const error = await snsAs('Nothing').send(new PublishCommand({ PhoneNumber: '+15555550100', Message: 'x' })).catch((e: Error) => e);
    expect(error).toMatchObject({ name: 'AuthorizationErrorException', $metadata: { httpStatusCode: 403 } });
    expect((error as Error).message).toMatch(/is not authorized to perform: sns:Publish on resource: \* because no identity-based policy allows/);
    expect(outbox.list('.json').map((f) => JSON.parse(outbox.read(f)).to)).not.toContain('+15555550100');
  });
});
