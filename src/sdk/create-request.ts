import type { ErrorCode } from '../errors.ts';
import { FleetkeyApiError } from './errors.ts';
import type { ClientConfig, FleetkeyRequest } from './types.ts';

/**
 * The one place the SDK speaks HTTP: bearer token, JSON both ways, and every failure turned into a
 * {@link FleetkeyApiError} carrying the server's code, message, request id and status.
 */
export function createRequest({ url, token, fetch = globalThis.fetch }: ClientConfig): FleetkeyRequest {
  const base = url.replace(/\/+$/, '');
  return async <T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> => {
    let res: Response;
    try {
      res = await fetch(base + path, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (cause) {
      throw new FleetkeyApiError({ code: 'unreachable', message: `cannot reach the fleetkey server at ${base}`, status: 0, cause });
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    const requestId = res.headers.get('x-request-id') ?? undefined;
    if (res.ok && json !== undefined) return json as T;
    const error = (json as { error?: { code?: unknown; message?: unknown; requestId?: unknown; details?: unknown } } | undefined)?.error;
    if (!res.ok && typeof error?.code === 'string')
      throw new FleetkeyApiError({
        code: error.code as ErrorCode,
        message: typeof error.message === 'string' ? error.message : error.code,
        status: res.status,
        requestId: typeof error.requestId === 'string' ? error.requestId : requestId,
        data: typeof error.details === 'object' && error.details !== null ? (error.details as Record<string, unknown>) : undefined,
      });
    // Not the API's JSON (a proxy's error page, an empty answer): say what came back.
    throw new FleetkeyApiError({ code: 'internal', message: `HTTP ${res.status} from ${method} ${path}: not a fleetkey API answer (${text.slice(0, 120) || 'empty body'})`, status: res.status, requestId });
  };
}
