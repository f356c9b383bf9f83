/**
 * The one table of AWS list prices the bench's bill uses (issue 12 §1). Region us-east-1, on-demand / pay-per-request,
 * no free tier, first pricing tier, as published on each service's pricing page on the date below. A price change is
 * an edit here and nowhere else.
 */
export const PRICES = {
  region: 'us-east-1',
  date: '2026-12-02',
  dynamodb: {
    /** On-demand, Standard table class: per write / read request unit (since the November 2024 price cut). */
    writeRequestUnit: 0.625 / 1_000_000,
    readRequestUnit: 0.125 / 1_000_000,
  },
  lambda: {
    request: 0.2 / 1_000_000,
    /** Per GB-second, first 6 billion GB-s a month. */
    gbSecond: { arm64: 0.0000133334, x86_64: 0.0000166667 } as Record<string, number>,
  },
  /** REST API, first 333 million requests a month. */
  apiGatewayRestRequest: 3.5 / 1_000_000,
  /** Standard queues: per request, each 64 KB chunk of a request's payload is one request. */
  sqsRequest: 0.4 / 1_000_000,
  sqsChunkBytes: 64 * 1024,
  kms: {
    /** Symmetric and HMAC key requests (Encrypt, Decrypt, GenerateDataKey, GenerateMac, VerifyMac…). */
    symmetricRequest: 0.03 / 10_000,
    /** Sign / Verify with an asymmetric key other than RSA 2048 (ECC_NIST_P256, ECC_NIST_EDWARDS25519). */
    asymmetricRequest: 0.15 / 10_000,
  },
  /** Standard log class ingestion, per GB (2^30 bytes). */
  cloudWatchLogsIngestionGb: 0.5,
  /** Step Functions Standard, per state transition. */
  stepFunctionsTransition: 0.025 / 1000,
  /** WAF: per web request inspected (the web ACL's $5/month and $1 per rule per month are fixed, not per payment). */
  wafRequest: 0.6 / 1_000_000,
  /** X-Ray: per trace recorded (retrieval and scans are not part of a payment). */
  xrayTraceRecorded: 5 / 1_000_000,
  /** Payer receipts, the merchant's choice: SES per email; SNS SMS per message to the US (base price, carrier fees extra). */
  sesEmail: 0.1 / 1000,
  snsSmsUs: 0.00581,
} as const;
