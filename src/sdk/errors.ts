import { FleetkeyError, type ErrorCode } from '../errors.ts';

export { FleetkeyError, type ErrorCode };

/**
 * What the SDK throws when a fleetkey server answers with an error or cannot be reached.
 *
 * `code` is the server's stable error code (`not_found`, `validation_failed`, `policy_denied`, …),
 * `status` the HTTP status (0 when no answer came back) and `requestId` the id the server logged
 * the request under. It is a {@link FleetkeyError}, the one error base of fleetkey.
 */
export class FleetkeyApiError extends FleetkeyError {
  readonly requestId: string | undefined;
  constructor(o: { code: ErrorCode; message: string; status: number; requestId?: string; details?: Record<string, unknown>; cause?: unknown }) {
    super(o.code, o.message, { status: o.status, details: o.details, cause: o.cause });
    this.requestId = o.requestId;
  }
}
