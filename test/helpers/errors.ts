/**
 * The stable code a refusal carries, or 'ok' when there was none: tests compare it with the code
 * they expect, so a call that should have been refused fails the comparison.
 */
import assert from 'node:assert/strict';
import { FleetkeyError } from '../../src/errors.ts';

export function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof FleetkeyError, String(e));
    return e.code;
  }
  return 'ok';
}

export async function codeOfAsync(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof FleetkeyError, String(e));
    return e.code;
  }
  return 'ok';
}
