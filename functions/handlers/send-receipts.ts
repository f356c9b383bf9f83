import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { lambda } from '../commons/lambda';
import { sendReceipts } from '../receipts/sender';

/**
 * The receipts queue → the payer's receipt by email (SES) and SMS (SNS), once per (event, channel). A message
 * whose receipt was not sent is reported as a batch item failure, so SQS redelivers only that one.
 */
export const handler = lambda<SQSEvent, SQSBatchResponse>().handler((event) => sendReceipts(event));
