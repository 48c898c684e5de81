/**
 * Canonical JSON: the one byte encoding that every hash and signature in fleetkey's audit chain
 * (and the policy engine's counter-key scopes) is computed over.
 *
 * Rules (close to RFC 8785 / JCS for the values we allow):
 * - object keys sorted by UTF-16 code units (JavaScript's default sort), no whitespace;
 * - keys whose value is `undefined` are left out (so an absent optional field and a missing one agree);
 * - bigint is written as its decimal string (so `5n` and `"5"` encode the same: amounts travel as strings);
 * - numbers must be finite; strings use JSON.stringify escaping;
 * - anything else (undefined inside arrays, functions, symbols, Date, Uint8Array, Map, class instances)
 *   is refused rather than guessed at, so two implementations cannot silently disagree.
 */
export type CanonicalValue =
  | null
  | boolean
  | number
  | string
  | bigint
  | CanonicalValue[]
  | { [k: string]: CanonicalValue | undefined };

export class CanonicalJsonError extends Error {
  override readonly name = 'CanonicalJsonError';
  constructor(
    message: string,
    readonly path: string,
  ) {
    super(`${message} at ${path || '(root)'}`);
  }
}

export function canonicalJson(value: unknown): string {
  const out: string[] = [];
  write(value, out, '');
  return out.join('');
}

function write(v: unknown, out: string[], path: string): void {
  switch (typeof v) {
    case 'string':
      out.push(JSON.stringify(v));
      return;
    case 'bigint':
      out.push('"', v.toString(10), '"');
      return;
    case 'boolean':
      out.push(v ? 'true' : 'false');
      return;
    case 'number':
      if (!Number.isFinite(v)) throw new CanonicalJsonError('non-finite number', path);
      out.push(JSON.stringify(v));
      return;
    case 'object': {
      if (v === null) {
        out.push('null');
        return;
      }
      if (Array.isArray(v)) {
        out.push('[');
        for (let i = 0; i < v.length; i++) {
          if (i) out.push(',');
          if (v[i] === undefined) throw new CanonicalJsonError('undefined array element', `${path}[${i}]`);
          write(v[i], out, `${path}[${i}]`);
        }
        out.push(']');
        return;
      }
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) {
        throw new CanonicalJsonError(`unsupported object type ${proto?.constructor?.name ?? '?'}`, path);
      }
      const rec = v as Record<string, unknown>;
      const keys = Object.keys(rec).filter((k) => rec[k] !== undefined).sort();
      out.push('{');
      keys.forEach((k, i) => {
        if (i) out.push(',');
        out.push(JSON.stringify(k), ':');
        write(rec[k], out, path ? `${path}.${k}` : k);
      });
      out.push('}');
      return;
    }
    default:
      throw new CanonicalJsonError(`unsupported value of type ${typeof v}`, path);
  }
}

/** Deep copy through the canonical encoding: bigints become decimal strings, undefined keys vanish. */
export function toPlainJson<T = unknown>(value: unknown): T {
  return JSON.parse(canonicalJson(value)) as T;
}
