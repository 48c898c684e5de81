/**
 * One error type for the whole project, shared by core, server, signer, CLI and SDK.
 *
 * `code` is a stable, documented string that scripts may match on; `status` is the HTTP status the
 * API maps it to. Messages are for people and must never contain key material: callers build them
 * from public values only.
 */
export type ErrorCode =
  // request shape
  | 'bad_request'
  | 'invalid_json'
  | 'validation_failed'
  | 'not_found'
  | 'unauthorized'
  | 'forbidden'
  | 'forbidden_role'
  | 'conflict'
  | 'payload_too_large'
  // protocol
  | 'bad_signature'
  | 'unknown_node'
  | 'wrong_session'
  | 'replayed_message'
  | 'protocol_state'
  | 'bad_share'
  | 'nonce_consumed'
  | 'nonce_unknown'
  | 'decrypt_failed'
  | 'cheating_signer'
  | 'session_reused'
  | 'session_busy'
  | 'ban_unrecorded'
  | 'custody_missing'
  // availability
  | 'not_enough_signers'
  | 'signer_unavailable'
  | 'timeout'
  | 'unreachable'
  | 'shutting_down'
  | 'not_ready'
  | 'kek_unavailable'
  // chains / policy (later issues add theirs here)
  | 'decode_failed'
  | 'unsupported'
  | 'policy_denied'
  | 'grant_expired' | 'grant_revoked' | 'grant_exhausted' | 'wallet_not_in_grant' | 'request_expired'
  | 'limit_exceeded' | 'approval_required' | 'approval_rejected' | 'unknown_grant' | 'no_policy' | 'wallet_inactive' | 'owner_authorization_required' | 'in_progress'
  | 'reservation_missing'
  // what an agent may have signed at all (src/enforce/authorize.ts)
  | 'raw_signing_forbidden' | 'scheme_mismatch' | 'unsupported_sighash'
  | 'wrong_network'
  | 'internal';

const STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  invalid_json: 400,
  validation_failed: 400,
  not_found: 404,
  unauthorized: 401,
  forbidden: 403,
  forbidden_role: 403,
  conflict: 409,
  payload_too_large: 413,
  bad_signature: 400,
  unknown_node: 400,
  wrong_session: 400,
  replayed_message: 409,
  protocol_state: 409,
  bad_share: 400,
  nonce_consumed: 409,
  nonce_unknown: 404,
  decrypt_failed: 400,
  cheating_signer: 502,
  session_reused: 409,
  session_busy: 409,
  ban_unrecorded: 503,
  custody_missing: 409,
  not_enough_signers: 503,
  signer_unavailable: 503,
  timeout: 504,
  unreachable: 503,
  shutting_down: 503,
  not_ready: 503,
  kek_unavailable: 503,
  decode_failed: 400,
  unsupported: 400,
  policy_denied: 403,
  grant_expired: 403, grant_revoked: 403, grant_exhausted: 403, wallet_not_in_grant: 403, request_expired: 401,
  limit_exceeded: 429, approval_required: 403, approval_rejected: 403, unknown_grant: 403, no_policy: 403, wallet_inactive: 403, owner_authorization_required: 403, in_progress: 409,
  reservation_missing: 403,
  raw_signing_forbidden: 403, scheme_mismatch: 400, unsupported_sighash: 403,
  wrong_network: 403,
  internal: 500,
};

export type ErrorDetails = Record<string, unknown>;

export class FleetkeyError extends Error {
  override readonly name = 'FleetkeyError';
  readonly code: ErrorCode;
  readonly status: number;
  readonly details?: ErrorDetails;
  constructor(code: ErrorCode, message: string, opts: { details?: ErrorDetails; cause?: unknown; status?: number } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.status = opts.status ?? STATUS[code];
    this.details = opts.details;
  }
  toJSON(requestId?: string) {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.details ? { details: this.details } : {}),
        ...(requestId ? { requestId } : {}),
      },
    };
  }
}

export function isFleetkeyError(e: unknown): e is FleetkeyError {
  return e instanceof FleetkeyError;
}

/** Shorthand used at boundaries: throw a FleetkeyError. */
export function fail(code: ErrorCode, message: string, details?: ErrorDetails): never {
  throw new FleetkeyError(code, message, { details });
}

export function statusOf(code: ErrorCode): number {
  return STATUS[code];
}
