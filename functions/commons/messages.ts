import type { Localized } from './lang';

/**
 * The catalog of the messages a client reads, in every language, keyed by error code (`code.variant` where one
 * code has several messages). Each entry is a function of the values it quotes, so English and Chinese quote the
 * same values and cannot drift; `satisfies` refuses an entry without both languages. Every message names the
 * field, the value and the fix. test/unit/error-messages.test.ts holds the throw sites to this catalog.
 */
export const msg = {
  // functions/http/errors.ts: what a client reads of any 5xx (the error itself stays in the log)
  internal_error: () => ({
    en: 'An unexpected error occurred on our side. Retry with the same Idempotency-Key; if it persists, contact support with the request id.',
    'zh-CN': '我方发生了意外错误。请使用相同的 Idempotency-Key 重试；如果问题持续，请携带 request id 联系客服。',
  }),

  // functions/http/api.ts: the request as a whole
  api_key_missing: () => ({
    en: 'No valid API key was provided. Send `Authorization: Bearer sk_test_...`.',
    'zh-CN': '未提供有效的 API 密钥（Authorization 请求头为空）。请发送 `Authorization: Bearer sk_test_...`。',
  }),
  'api_key_missing.header': () => ({
    en: "No API key provided. Send your secret key in the Authorization header: 'Authorization: Bearer sk_test_…'.",
    'zh-CN': "未提供 API 密钥（Authorization 请求头为空）。请在 Authorization 请求头中发送您的密钥：'Authorization: Bearer sk_test_…'。",
  }),
  'api_key_malformed.scheme': () => ({
    en: "The Authorization header must use the Bearer scheme: 'Authorization: Bearer sk_test_…'.",
    'zh-CN': "Authorization 请求头必须使用 Bearer 方案：'Authorization: Bearer sk_test_…'。",
  }),
  'api_key_malformed.prefix': (p: { secret: string; restricted: string; length: number }) => ({
    en: `The API key provided is not a Payplane key: they are '${p.secret}' (secret) or '${p.restricted}' (restricted) followed by ${p.length} letters and digits. Copy the whole key.`,
    'zh-CN': `所提供的 API 密钥不是 Payplane 密钥：密钥以 '${p.secret}'（密钥）或 '${p.restricted}'（受限密钥）开头，后跟 ${p.length} 个字母和数字。请复制完整的密钥。`,
  }),
  'api_key_malformed.secret': () => ({
    en: "The API key provided is not a Payplane secret key ('sk_test_' + 32 letters and digits).",
    'zh-CN': "所提供的 API 密钥不是 Payplane 密钥（应为 'sk_test_' 加 32 个字母和数字）。请复制完整的密钥。",
  }),
  api_key_unknown: (p: { hint: string }) => ({
    en: `Invalid API key provided: ${p.hint}. Check that you copied the whole key.`,
    'zh-CN': `API 密钥无效：${p.hint}。请检查是否复制了完整的密钥。`,
  }),
  api_key_revoked: (p: { hint: string }) => ({
    en: `The API key ${p.hint} has been rolled or revoked and no longer works. Use the merchant's current key.`,
    'zh-CN': `API 密钥 ${p.hint} 已被轮换或吊销，不再可用。请使用该商户当前的密钥。`,
  }),
  missing_scope: (p: { needed: string; method: string; resource: string; granted: string }) => ({
    en:
      `This restricted key lacks the scope '${p.needed}', which ${p.method} ${p.resource} needs (it has: ${p.granted || 'none'}). ` +
      `Use a restricted key that has '${p.needed}', or the secret key.`,
    'zh-CN': `此受限密钥缺少 ${p.method} ${p.resource} 所需的权限范围 '${p.needed}'（现有：${p.granted || '无'}）。请使用具有 '${p.needed}' 的受限密钥，或使用密钥。`,
  }),
  'missing_scope.route': (p: { method: string; resource: string }) => ({
    en: `${p.method} ${p.resource} is not open to restricted keys. Use the secret key.`,
    'zh-CN': `${p.method} ${p.resource} 不对受限密钥开放（权限范围 '${p.method} ${p.resource}'）。请使用密钥。`,
  }),
  body_too_large: (p: { size: number; limit: number }) => ({
    en: `The request body is ${p.size} bytes; the limit is ${p.limit} bytes. Send less data, e.g. shorter metadata values.`,
    'zh-CN': `请求体为 ${p.size} 字节，上限为 ${p.limit} 字节。请发送更少的数据，例如缩短 metadata 的值。`,
  }),
  body_too_deep: (p: { limit: number }) => ({
    en: `The request body nests objects and arrays more than ${p.limit} levels deep. Send a flatter body: no parameter of this API is nested more than 3 levels.`,
    'zh-CN': `请求体中对象和数组的嵌套超过 ${p.limit} 层。请发送更扁平的请求体：本 API 的参数嵌套都不超过 3 层。`,
  }),
  body_not_json: (p: { reason: string }) => ({
    en: `The request body is not valid JSON (${p.reason}). Send a JSON object with Content-Type: application/json.`,
    'zh-CN': `请求体不是有效的 JSON（${p.reason}）。请以 Content-Type: application/json 发送一个 JSON 对象。`,
  }),
  body_not_object: (p: { got: 'array' | 'null' | string }) => ({
    en: `The request body must be a JSON object, got ${p.got === 'array' ? 'an array' : p.got === 'null' ? 'null' : `a ${p.got}`}. Wrap the parameters in {...}.`,
    'zh-CN': `请求体必须是 JSON 对象，收到的是 ${p.got === 'array' ? '数组' : p.got === 'null' ? 'null' : p.got}。请将参数包在 {...} 中。`,
  }),
  parameter_repeated: (p: { name: string; count: number }) => ({
    en: `Query parameter '${p.name}' was given ${p.count} times. Send it once.`,
    'zh-CN': `查询参数 '${p.name}' 出现了 ${p.count} 次。请只发送一次。`,
  }),

  // functions/http/validation.ts: zod issues (the fix comes localized from validation.ts's issue text)
  parameter_unknown: (p: { param: string }) => ({
    en: `Received unknown parameter '${p.param}'. Remove it: it is not part of this API.`,
    'zh-CN': `收到未知参数 '${p.param}'。请删除它：它不属于本 API。`,
  }),
  parameter_missing: (p: { param: string; fix: Localized }) => ({
    en: `Missing required parameter '${p.param}'. ${p.fix.en}`,
    'zh-CN': `缺少必填参数 '${p.param}'（收到：无）。${p.fix['zh-CN']}`,
  }),
  parameter_invalid: (p: { param: string; got: Localized; fix: Localized }) => ({
    en: `Invalid '${p.param}': got ${p.got.en}. ${p.fix.en}`,
    'zh-CN': `参数 '${p.param}' 无效：收到 ${p.got['zh-CN']}。${p.fix['zh-CN']}`,
  }),
  'parameter_invalid.outcome': (p: { got: string }) => ({
    en: `Invalid 'outcome': got ${p.got}. Use "approve" or "fail".`,
    'zh-CN': `参数 'outcome' 无效：收到 ${p.got}。请使用 "approve" 或 "fail"。`,
  }),

  // functions/http/idempotency.ts
  idempotency_key_in_use: (p: { key: string }) => ({
    en: `Another request with Idempotency-Key '${p.key}' is still being processed. Retry after it completes to receive its result.`,
    'zh-CN': `使用 Idempotency-Key '${p.key}' 的另一个请求仍在处理中。请在其完成后重试以获取其结果。`,
  }),
  idempotency_key_reused: (p: { key: string }) => ({
    en: `Idempotency-Key '${p.key}' was already used with different parameters or on another endpoint. Use a new key for a new request, or resend exactly the original request to get its result.`,
    'zh-CN': `Idempotency-Key '${p.key}' 已用于参数不同或另一个接口的请求。新请求请使用新的密钥，或原样重发原请求以获取其结果。`,
  }),
  idempotency_key_invalid: (p: { length: number }) => ({
    en: `Invalid Idempotency-Key header: it must be 1-255 printable ASCII characters without spaces (got ${p.length} characters). A UUID v4 is a good choice.`,
    'zh-CN': `Idempotency-Key 请求头无效：必须是 1-255 个不含空格的可打印 ASCII 字符（收到 ${p.length} 个字符）。建议使用 UUID v4。`,
  }),

  // functions/commons/errors.ts NotFoundError
  resource_missing: (p: { resource: string; id: string }) => ({
    en: `No such ${p.resource}: '${p.id}'. Check the id, and that it belongs to the API key in use.`,
    'zh-CN': `不存在的 ${p.resource}：'${p.id}'。请检查该 id，以及它是否属于当前使用的 API 密钥。`,
  }),

  // orders and payments
  'order_status.transition': (p: { id: string; from: string; to: string }) => ({
    en: `Order '${p.id}' is ${p.from}, so it cannot become ${p.to}. Retrieve the order to see its current status.`,
    'zh-CN': `订单 '${p.id}' 的状态为 ${p.from}，因此不能变为 ${p.to}。请查询该订单以了解其当前状态。`,
  }),
  'order_status.refund': (p: { id: string; status: string }) => ({
    en: `Order '${p.id}' is ${p.status}; only a succeeded order can be refunded.`,
    'zh-CN': `订单 '${p.id}' 的状态为 ${p.status}；只有状态为 succeeded 的订单才能退款。请等待支付成功，或检查 order_id。`,
  }),
  duplicate_merchant_order_no: (p: { no: string; existing: string }) => ({
    en: `merchant_order_no '${p.no}' is already used by order '${p.existing}'. Retrieve that order, or use a new merchant_order_no for a new order.`,
    'zh-CN': `merchant_order_no '${p.no}' 已被订单 '${p.existing}' 使用。请查询该订单，或为新订单使用新的 merchant_order_no。`,
  }),
  order_attempts_exhausted: (p: { id: string; limit: number }) => ({
    en: `Order '${p.id}' was declined ${p.limit} times, the most one order takes (a defence against card testing), so it takes no more payment attempts. Create a new order to take this payment.`,
    'zh-CN': `订单 '${p.id}' 已被拒绝 ${p.limit} 次，达到单个订单的上限（防范盗卡测试），不再接受支付尝试。请创建新订单来收取这笔付款。`,
  }),
  'amount_too_large.capture': (p: { amount: number; authorized: string }) => ({
    en: `Invalid 'amount': got ${p.amount}. Capture at most the authorized ${p.authorized}.`,
    'zh-CN': `参数 'amount' 无效：收到 ${p.amount}。请款金额最多为已授权的金额 ${p.authorized}。`,
  }),
  'amount_too_large.refund': (p: { amount: number; id: string; refundable: number; major: string; currency: string; captured: number }) => ({
    en: `Invalid 'amount': got ${p.amount}. Order '${p.id}' has ${p.refundable} (${p.major} ${p.currency}) left to refund of ${p.captured} captured; refund at most that.`,
    'zh-CN': `参数 'amount' 无效：收到 ${p.amount}。订单 '${p.id}' 已请款 ${p.captured}，剩余可退款 ${p.refundable}（${p.major} ${p.currency}）；退款金额请勿超过此数。`,
  }),
  charge_already_refunded: (p: { id: string; refunded: number; captured: number }) => ({
    en: `Order '${p.id}' has been refunded in full (${p.refunded} of ${p.captured}).`,
    'zh-CN': `订单 '${p.id}' 已全额退款（${p.captured} 中已退 ${p.refunded}）。无需再退款；请检查 order_id。`,
  }),
  refund_contended: (p: { id: string }) => ({
    en: `Too many refunds of order '${p.id}' at once; retry this one with the same Idempotency-Key.`,
    'zh-CN': `订单 '${p.id}' 同时发起的退款过多；请使用相同的 Idempotency-Key 重试此次退款。`,
  }),
  unknown_channel: (p: { id: string; channels: string }) => ({
    en: `No payment channel '${p.id}'. Channels: ${p.channels}.`,
    'zh-CN': `参数 'channel' 无效：不存在支付通道 '${p.id}'。可用的通道：${p.channels}。`,
  }),

  // functions/webhooks/endpoints.ts
  webhook_endpoint_limit: (p: { limit: number }) => ({
    en:
      `This account already has ${p.limit} webhook endpoints, the most it may have. ` +
      'Delete one it no longer uses (DELETE /v1/webhook_endpoints/{id}), or subscribe an existing endpoint to more event types (POST /v1/webhook_endpoints/{id} with enabled_events).',
    'zh-CN':
      `此账户已有 ${p.limit} 个 webhook 端点，已达上限。` +
      '请删除不再使用的端点（DELETE /v1/webhook_endpoints/{id}），或为现有端点订阅更多事件类型（POST /v1/webhook_endpoints/{id}，使用 enabled_events）。',
  }),
} satisfies Record<string, (p: never) => Localized>;

export type MessageKey = keyof typeof msg;
