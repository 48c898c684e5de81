/**
 * Reservation receipts: how "every signer counts" becomes "the cluster counts once".
 *
 * With per-signer counters, each signer counts only the requests it takes part in, so a server that
 * sends each request to a different t-subset of the n share holders gets up to ⌊n·limit/t⌋ signed
 * while every signer stays within the limit. Under `counters: "strict"` (the default) a request that
 * touches a rolling limit is counted by **every** share holder before any of them issues a share:
 *
 * 1. the server picks the signing set S (t or more holders) and asks each holder **outside** S to
 *    reserve it (POST /v1/reserve). A holder runs the full check of src/enforce/authorize.ts with
 *    its own documents and counters, then reserves **and commits** the amounts in one transaction
 *    and answers with a receipt signed by its node identity key;
 * 2. a holder in S asked for a share (FROST /v1/sign, a DKLs23 signing session) issues it only with
 *    a valid receipt, for this request id and request digest, from every holder of the wallet that
 *    is not in S, where S is the set the holder's own protocol input names (FROST: the commitment
 *    list it signs over; DKLs23: the session's signers). It counts the request itself in the
 *    transaction that issues its share (FROST: the one that consumes its nonce; DKLs23: the commit
 *    before its last-round message leaves).
 *
 * Bound: every honest holder's counter includes every signed request, so none exceeds the limit.
 * A signature on the request comes from some signing set S of at least t holders, so S holds an
 * honest member (at most t-1 are compromised). That member checked receipts from every holder
 * outside S, and an honest holder signs a receipt only after counting: the honest holders outside
 * S counted. Inside S, every honest member counted before its share left it, and a valid
 * signature needs every member's share computed over that same S:
 * - FROST (RFC 9591): each share is z_i = d_i + e_i·rho_i + lambda_i·s_i·c, with the binding
 *   factors rho, the group commitment R and the Lagrange coefficients lambda all fixed by the
 *   commitment list, i.e. by S. Completing a signature over S without an honest member's share
 *   means producing lambda_j·s_j·c for that member with its key share unknown. The property used
 *   is what Bellare, Crites, Komlo, Maller, Tessaro and Zhu ("Better than Advertised Security for
 *   Non-Interactive Threshold Signatures", CRYPTO 2022) call TS-UF-3: a valid signature on m
 *   implies one signing request (m, S, commitment list) that every honest member of S answered.
 *   They prove it for FROST with per-signer binding factors over the whole list (their FROST1),
 *   which is how RFC 9591 computes rho; it is the one assumption this bound adds to plain
 *   unforgeability, and the place for a reviewer to look first.
 * - DKLs23: the signature is assembled from every signer's last-round values (w_i, u_i), and an
 *   honest signer sends its own only after its count is committed.
 * So the bound holds with a compromised server and up to t-1 compromised signers, as before.
 * (Until issue 13 every member of S also had to show the receipts of the other members of S: one
 * more round of t policy checks and fsync'd commits before any share, for counts that the share
 * transactions take anyway.)
 *
 * A receipt is a commitment, not a reservation that expires: a holder that is not among the signers
 * never learns whether the signature was made, and releasing on timeout would give back the n/t
 * bound. A request that gets its receipts but is never signed keeps counting until its window passes;
 * the same request sent again (same request id) within RECEIPT_MAX_AGE_MS is signed without counting
 * twice; later, its receipts are stale and it cannot be signed any more (the agent sends a new one).
 *
 * Cost (issue 13). Two steps remain, and they cannot be fewer: a share may leave an honest holder
 * only once the holders outside its signing set have counted. Only n-t holders take part in the
 * first step (one of a 2-of-3 wallet), and each holder runs the policy check once per request.
 * Each step's cryptography is cheaper too:
 * receipts are signed and verified with libsodium's Ed25519 (WebAssembly, `crypto_sign_detached`,
 * `crypto_sign_verify_detached`) instead of noble's BigInt arithmetic. The guarantee is unchanged:
 * - a receipt is still an RFC 8032 Ed25519 signature by the holder's pinned identity key over the
 *   same domain-separated bytes; Ed25519 signing is deterministic, so libsodium produces the very
 *   bytes noble produced (test/enforce/receipts.test.ts checks this, and that each verifier accepts
 *   the other's receipts);
 * - libsodium's verifier accepts no more than noble's strict one: it too requires s < L and
 *   canonical encodings, uses the cofactorless equation, and in addition refuses small-order R and
 *   public keys, which an honest holder's receipt never has. A receipt that counts is therefore
 *   still one its holder signed; forging one still means forging Ed25519.
 */
import { z } from 'zod';
import { hexToBytes } from '@noble/hashes/utils.js';
import { DOMAINS, signBytes, signingInput } from '../control/keys.ts';
import { sodiumVerifyEd25519 } from '../control/fast-verify.ts';
import { FleetkeyError } from '../errors.ts';

const receiptBodySchema = z.strictObject({
  kind: z.literal('reservation'),
  nodeId: z.string().min(1).max(64),
  walletId: z.string().min(1).max(80),
  requestId: z.string().min(1).max(128),
  requestDigest: z.string().regex(/^[0-9a-f]{64}$/),
  committedAt: z.number().int().min(0),
});
export const receiptSchema = z.strictObject({ receipt: receiptBodySchema, sig: z.string().regex(/^[0-9a-f]{128}$/) });
export type ReceiptBody = z.infer<typeof receiptBodySchema>;
export type Receipt = z.infer<typeof receiptSchema>;

/** Signs a receipt with a node's Ed25519 identity key (RFC 8032; libsodium's, installed by ../control/fast-verify.ts). */
export function signReceipt(body: ReceiptBody, signSecret: Uint8Array): Receipt {
  return { receipt: body, sig: signBytes(signingInput(DOMAINS.receipt, body), signSecret, 'ed25519') };
}

/** True only for a valid RFC 8032 signature by `publicKeyHex`; never throws. */
function verifyReceiptSig(sigHex: string, msg: Uint8Array, publicKeyHex: string): boolean {
  try {
    return sodiumVerifyEd25519(hexToBytes(sigHex), msg, hexToBytes(publicKeyHex));
  } catch {
    return false;
  }
}

/**
 * A receipt older than this does not count: a request is counted at most this long before it is
 * signed, so a server cannot collect receipts now and spend them in a later window. (A rolling
 * window then bounds what is signed in any window of its length plus this, at counting time.)
 */
export const RECEIPT_MAX_AGE_MS = 5 * 60_000;
/** Clock skew tolerated between share holders. */
const RECEIPT_SKEW_MS = 60_000;

export interface ReceiptCheck {
  walletId: string;
  requestId: string;
  requestDigest: string;
  /** Node ids that must each have signed a receipt (every holder of the wallet other than the checking node). */
  holders: readonly string[];
  /** A holder's pinned Ed25519 identity key (hex), or undefined if it is not a known peer. */
  keyOf(nodeId: string): string | undefined;
  now: number;
}

/**
 * Throws `reservation_missing` (naming the holders) unless `receipts` holds, for every holder, a
 * receipt it signed for exactly this wallet, request id and request digest, at most
 * RECEIPT_MAX_AGE_MS old. Extra, stale or malformed receipts are ignored; only the first receipt
 * that matches a holder is verified, and only a valid one counts.
 */
export function checkReceipts(receipts: readonly unknown[] | undefined, c: ReceiptCheck): void {
  const valid = new Set<string>();
  // One signature verification per holder at most, so a list of 64 copies costs no more than n−1.
  const tried = new Set<string>();
  for (const raw of receipts ?? []) {
    const r = receiptSchema.safeParse(raw);
    if (!r.success) continue;
    const b = r.data.receipt;
    if (b.walletId !== c.walletId || b.requestId !== c.requestId || b.requestDigest !== c.requestDigest || !c.holders.includes(b.nodeId)) continue;
    if (b.committedAt < c.now - RECEIPT_MAX_AGE_MS || b.committedAt > c.now + RECEIPT_SKEW_MS) continue;
    if (tried.has(b.nodeId)) continue;
    tried.add(b.nodeId);
    const key = c.keyOf(b.nodeId);
    if (key && verifyReceiptSig(r.data.sig, signingInput(DOMAINS.receipt, b), key)) valid.add(b.nodeId);
  }
  const missing = c.holders.filter((h) => !valid.has(h));
  if (missing.length)
    throw new FleetkeyError('reservation_missing', `this wallet's policy counts limits at every share holder (counters: "strict"); no valid receipt from ${missing.join(', ')} for request ${c.requestId}`, {
      details: { requestId: c.requestId, missing },
    });
}
