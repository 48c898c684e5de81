/**
 * Sending the same request again while nothing was decided (a signer down, no answer, the first
 * attempt still running). Only for requests that are safe to repeat byte for byte: an agent request
 * is signed and counted once per request id, ever.
 */

/** Runs `send` again after 0.5, 1, 2, 4 … s (at most 5 s apart) while `again(error)` holds, for at most `forMs`. */
export async function resendWhile<T>(send: () => Promise<T>, again: (e: unknown) => boolean, forMs: number): Promise<T> {
  const deadline = Date.now() + forMs;
  for (let wait = 500; ; wait = Math.min(wait * 2, 5000)) {
    try {
      return await send();
    } catch (e) {
      if (!again(e) || Date.now() + wait > deadline) throw e;
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}
