import { FleetkeyError, type ErrorCode } from '../errors.ts';

export { FleetkeyError, type ErrorCode };

/**
 * What the SDK throws when a fleetkey server answers with an error or cannot be reached.
 *
 * `code` is the server's stable error code (`not_found`, `validation_failed`, `policy_denied`, …),
 * `status` the HTTP status (0 when no answer came back) and `requestId` the id the server logged
 * the request under. It is a {@link FleetkeyError}, the one error base of fleetkey.
 *
 * The server's `details` object is kept as `data`, not `details`: viem reads `details` as a string
 * on any error thrown inside its actions (to recognise node errors), and these errors are thrown
 * inside viem's `sendTransaction` when a fleetkey account signs.
 */
export class FleetkeyApiError extends FleetkeyError {
  readonly requestId: string | undefined;
  readonly data: Record<string, unknown> | undefined;
  constructor(o: { code: ErrorCode; message: string; status: number; requestId?: string; data?: Record<string, unknown>; cause?: unknown }) {
    super(o.code, o.message, { status: o.status, cause: o.cause });
    this.requestId = o.requestId;
    this.data = o.data;
  }
}
