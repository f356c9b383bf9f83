import { SendEmailCommand, SESv2Client } from '@aws-sdk/client-sesv2';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import type { Secret } from '../commons/secret';
import type { RenderedReceipt } from './templates';

/**
 * The providers' wire formats, at the edge: SES v2 SendEmail (Simple content: SES builds the MIME message) and
 * SNS Publish to a phone number (a transactional SMS). Endpoints come from AWS_ENDPOINT_URL_SESV2 /
 * AWS_ENDPOINT_URL_SNS (the local cloud) or the region's. Clients are made once per cold start.
 * The recipient arrives as a Secret and is revealed only into the request.
 */
export interface EmailSender {
  send(to: Secret<string>, receipt: RenderedReceipt, options: { from: string; configurationSet?: string }): Promise<string>;
}

export interface SmsSender {
  send(to: Secret<string>, text: string): Promise<string>;
}

let ses: SESv2Client | undefined;
let sns: SNSClient | undefined;

export function resetProviderClients(): void {
  ses?.destroy();
  sns?.destroy();
  ses = sns = undefined;
}

export const sesEmail: EmailSender = {
  async send(to, receipt, options) {
    ses ??= new SESv2Client({});
    const utf8 = (data: string) => ({ Data: data, Charset: 'UTF-8' });
    const out = await ses.send(
      new SendEmailCommand({
        FromEmailAddress: options.from,
        Destination: { ToAddresses: [to.reveal()] },
        ConfigurationSetName: options.configurationSet,
        Content: { Simple: { Subject: utf8(receipt.subject), Body: { Text: utf8(receipt.text), Html: utf8(receipt.html) } } },
      }),
    );
    return out.MessageId ?? '';
  },
};

export const snsSms: SmsSender = {
  async send(to, text) {
    sns ??= new SNSClient({});
    const out = await sns.send(
      new PublishCommand({
        PhoneNumber: to.reveal(),
        Message: text,
        // Transactional: delivered at the best reliability (and price), as a receipt should be.
        MessageAttributes: { 'AWS.SNS.SMS.SMSType': { DataType: 'String', StringValue: 'Transactional' } },
      }),
    );
    return out.MessageId ?? '';
  },
};
