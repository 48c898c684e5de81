/**
 * zod schemas of every control-plane object. All objects are strict (an unknown field is an error,
 * reported at its path), numbers are safe integers, hex is lowercase, and the only free-form parts
 * (a request's payload data, a grant's ERC-7715 `permissions`) must be canonical-JSON encodable.
 */
import { z } from 'zod';
import { canonicalJson, CanonicalJsonError } from '../audit/canonical.ts';
import { FleetkeyError, isFleetkeyError } from '../errors.ts';
import { formatPath, validatePolicy } from '../policy/index.ts';

/** Lowercase hex of exactly n characters (or one of several lengths). */
const hex = (n: number | number[]) => {
  const lens = Array.isArray(n) ? n : [n];
  return z.string().refine((s) => /^[0-9a-f]*$/.test(s) && lens.includes(s.length), `lowercase hex of ${lens.map((l) => l / 2).join(' or ')} bytes`);
};
/** Epoch milliseconds. */
export const msSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const version = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
/** Wallet, grant and approver ids: printable, no spaces, at most 128 characters. */
export const idSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$/, 'id: 1-128 characters of A-Z a-z 0-9 _ . : @ - (starting with a letter or digit)');
/** A request id: 8-128 characters of A-Z a-z 0-9 _ - (a UUID or ULID fits). */
export const requestIdSchema = z.string().regex(/^[A-Za-z0-9_-]{8,128}$/, 'requestId: 8-128 characters of A-Z a-z 0-9 _ -');
export const sigSchema = hex(128);

/** A key an agent or approver signs with. Ed25519: 32 bytes; P-256: SEC1 compressed (33) or uncompressed (65). */
export const publicKeySchema = z.discriminatedUnion('keyType', [
  z.strictObject({ keyType: z.literal('ed25519'), publicKey: hex(32 * 2) }),
  z.strictObject({ keyType: z.literal('p256'), publicKey: hex([33 * 2, 65 * 2]) }),
]);
export type AgentKey = z.infer<typeof publicKeySchema>;

/** base64url without padding (WebAuthn's encoding of binary fields). */
const b64url = (max: number) => z.string().min(1).max(max).regex(/^[A-Za-z0-9_-]+$/, 'base64url without padding');

/**
 * A passkey (WebAuthn ES256 credential): an approver's key, or an owner key pinned by every signer.
 * `origin` is scheme://host[:port] with no path (what clientDataJSON.origin holds); `rpId` a host name.
 */
export const webauthnKeySchema = z.strictObject({
  keyType: z.literal('webauthn-p256'),
  publicKey: hex([33 * 2, 65 * 2]),
  credentialId: b64url(1366),
  rpId: z.string().regex(/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/, 'rpId: a lowercase host name'),
  origin: z.string().regex(/^https?:\/\/[a-z0-9.[\]:-]{1,261}$/, 'origin: scheme://host[:port], no path'),
});

/** `navigator.credentials.get()`'s response fields, base64url: a passkey's signature in place of a hex `sig`. */
export const webauthnAssertionSchema = z.strictObject({
  authenticatorData: b64url(1024),
  clientDataJSON: b64url(4096),
  signature: b64url(128),
});

/** An approver signs with Ed25519, P-256 (hex), or a passkey. */
export const approverKeySchema = z.discriminatedUnion('keyType', [...publicKeySchema.options, webauthnKeySchema]);
export type ApproverKey = z.infer<typeof approverKeySchema>;

/** A hex signature, or a WebAuthn assertion (for a passkey). */
export const signatureSchema = z.union([sigSchema, webauthnAssertionSchema]);

/** Any JSON value that canonicalJson accepts (no undefined in arrays, no class instances, finite numbers). */
const canonicalValue = z.unknown().superRefine((v, ctx) => {
  try {
    canonicalJson(v);
  } catch (e) {
    if (!(e instanceof CanonicalJsonError)) throw e;
    ctx.addIssue({ code: 'custom', message: `not canonical JSON: ${e.message}` });
  }
});

/** The policy JSON, checked by the policy engine's own validator; the signed bytes are the raw JSON. */
const policyJson = z.unknown().superRefine((v, ctx) => {
  try {
    canonicalJson(v);
    validatePolicy(v);
  } catch (e) {
    if (e instanceof CanonicalJsonError) return void ctx.addIssue({ code: 'custom', message: `not canonical JSON: ${e.message}` });
    if (!isFleetkeyError(e)) throw e;
    const issues = (e.details?.issues as { path: string; message: string }[] | undefined) ?? [{ path: '(root)', message: e.message }];
    for (const i of issues) ctx.addIssue({ code: 'custom', message: i.message, params: { subpath: i.path } });
  }
});

export const policyDocSchema = z
  .strictObject({ kind: z.literal('policy'), walletId: idSchema, version, policy: policyJson, issuedAt: msSchema })
  .superRefine((d, ctx) => {
    const pv = (d.policy as { version?: unknown } | null)?.version;
    if (pv !== d.version) ctx.addIssue({ code: 'custom', path: ['version'], message: `must equal policy.version (${String(pv)})` });
  });

export const grantDocSchema = z
  .strictObject({
    kind: z.literal('grant'),
    id: idSchema,
    agent: publicKeySchema,
    wallets: z.array(idSchema).min(1).max(10_000),
    expiresAt: msSchema,
    maxUses: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
    policyVersion: version.optional(),
    label: z.string().max(200).optional(),
    issuedAt: msSchema,
    /** ERC-7715 permission requests (`{ chainId, expiry, signer, permission, rules? }`), kept verbatim; not enforced here. */
    permissions: z.array(z.record(z.string(), canonicalValue)).max(100).optional(),
  })
  .superRefine((g, ctx) => {
    if (new Set(g.wallets).size !== g.wallets.length) ctx.addIssue({ code: 'custom', path: ['wallets'], message: 'duplicate wallet' });
    if (g.expiresAt <= g.issuedAt) ctx.addIssue({ code: 'custom', path: ['expiresAt'], message: 'must be after issuedAt' });
  });

export const revocationDocSchema = z.strictObject({ kind: z.literal('revocation'), grantId: idSchema, issuedAt: msSchema });

export const approversDocSchema = z.strictObject({
  kind: z.literal('approvers'),
  version,
  approvers: z.record(idSchema, approverKeySchema),
  issuedAt: msSchema,
});

/** A wallet's standing (a device wallet revoked or suspended by its fleet): latest `seq` wins; 'revoked' is final. */
export const walletStatusDocSchema = z.strictObject({
  kind: z.literal('wallet_status'),
  walletId: idSchema,
  status: z.enum(['active', 'suspended', 'revoked']),
  seq: version,
  issuedAt: msSchema,
});

/**
 * The network each scheme's wallets live on, fixed at creation (owner-signed `wallet_create`, the
 * signed public package, every signer's record). Policies match the wallet's network, never a
 * network named by the caller. Ed25519 wallets are Solana wallets (cluster names as the decoder
 * reports them, the `chainIds` policies use); secp256k1-schnorr wallets are Bitcoin taproot wallets.
 * ecdsa-secp256k1 wallets have none: an EVM transaction carries its own chain id (EIP-155), which
 * the signature covers.
 */
export const WALLET_NETWORKS = {
  ed25519: ['mainnet-beta', 'devnet', 'testnet'],
  'secp256k1-schnorr': ['mainnet', 'testnet', 'regtest'],
  'ecdsa-secp256k1': [],
} as const satisfies Record<string, readonly string[]>;
/** When the creator names none: Solana mainnet and Bitcoin mainnet (the ones that hold value, so the strictest caps apply). */
export const DEFAULT_WALLET_NETWORK: Record<string, string | undefined> = { ed25519: 'mainnet-beta', 'secp256k1-schnorr': 'mainnet' };
export type WalletScheme = keyof typeof WALLET_NETWORKS;

/** What every committee order must hold (wallet_create, wallet_reshare): a live window, distinct holders, t ≤ n. */
function checkCommittee(d: { issuedAt: number; expiresAt: number; holders: string[]; threshold: number }, ctx: z.RefinementCtx): void {
  if (d.expiresAt <= d.issuedAt) ctx.addIssue({ code: 'custom', path: ['expiresAt'], message: 'must be after issuedAt' });
  if (new Set(d.holders).size !== d.holders.length) ctx.addIssue({ code: 'custom', path: ['holders'], message: 'duplicate holder' });
  if (d.threshold > d.holders.length) ctx.addIssue({ code: 'custom', path: ['threshold'], message: 'exceeds the number of holders' });
}

/**
 * The owner's order to create a wallet (or a fleet root): scheme, threshold, the signer nodes that
 * hold its shares (in party-index order: `holders[i]` is party i + 1), its network, and its id, which
 * names it once ever. Every holder checks it before taking part in the key generation and records
 * it as used; the id of the document ends up in the public package every holder signs.
 */
export const walletCreateDocSchema = z
  .strictObject({
    kind: z.literal('wallet_create'),
    /** `wal_` and 24 lowercase hex characters (96 random bits): the creator picks it, so it is unique. */
    walletId: z.string().regex(/^wal_[0-9a-f]{24}$/, 'walletId: wal_ followed by 24 lowercase hex characters'),
    scheme: z.enum(['ed25519', 'secp256k1-schnorr', 'ecdsa-secp256k1']),
    threshold: z.number().int().min(1).max(64),
    holders: z.array(z.string().regex(/^[\w-]{1,64}$/, 'a node id')).min(1).max(64),
    network: z.string().min(1).max(32).optional(),
    issuedAt: msSchema,
    expiresAt: msSchema,
  })
  .superRefine((d, ctx) => {
    checkCommittee(d, ctx);
    if (d.threshold === 1 && d.holders.length > 1) ctx.addIssue({ code: 'custom', path: ['threshold'], message: 'threshold 1 only as 1-of-1 (a 1-of-n key would be whole on every holder)' });
    if (d.scheme === 'ecdsa-secp256k1' && d.threshold < 2) ctx.addIssue({ code: 'custom', path: ['threshold'], message: 'ecdsa-secp256k1 needs a threshold of at least 2' });
    const nets: readonly string[] = WALLET_NETWORKS[d.scheme];
    if (nets.length === 0 && d.network !== undefined) ctx.addIssue({ code: 'custom', path: ['network'], message: `${d.scheme} wallets have no network (the transaction names its chain)` });
    if (nets.length > 0 && (d.network === undefined || !nets.includes(d.network))) ctx.addIssue({ code: 'custom', path: ['network'], message: `one of ${nets.join(', ')}` });
  });

export const PAYLOAD_KINDS = ['evm_transaction', 'evm_message', 'evm_typed_data', 'solana_transaction', 'solana_message', 'bitcoin_psbt', 'bitcoin_message', 'raw_message', 'raw_hash'] as const;

/** What is to be signed: decoded by every signer itself (src/chains), never taken on trust. */
export const payloadSchema = z.strictObject({
  kind: z.enum(PAYLOAD_KINDS),
  data: canonicalValue.refine((v) => v !== undefined && v !== null, 'required'),
  opts: z
    .strictObject({ chainId: z.union([z.string().min(1).max(64), z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)]).optional(), from: z.string().min(1).max(128).optional(), network: z.string().min(1).max(32).optional() })
    .optional(),
});
export type Payload = z.infer<typeof payloadSchema>;

/**
 * The owner's own signing authorization (admin signing, including raw hashes): verified by every
 * signer like an agent request, but not judged by a policy. Never stored as a standing document.
 */
export const signDocSchema = z
  .strictObject({ kind: z.literal('sign'), walletId: idSchema, requestId: requestIdSchema, payload: payloadSchema, expiresAt: msSchema, issuedAt: msSchema })
  .superRefine((r, ctx) => {
    if (r.expiresAt <= r.issuedAt) ctx.addIssue({ code: 'custom', path: ['expiresAt'], message: 'must be after issuedAt' });
  });

/**
 * The owner's order to export a wallet's key (issue 11): every holder that accepts it encrypts its
 * share to `recipient` (the owner's offline X25519 recovery public key, hex) and logs the export. Only
 * for a wallet whose policy says `"exportable": true`; never stored as a standing document.
 */
export const exportDocSchema = z
  .strictObject({
    kind: z.literal('export'),
    walletId: idSchema,
    recipient: z.string().regex(/^[0-9a-f]{64}$/, 'recipient: an X25519 public key, 64 lowercase hex characters'),
    issuedAt: msSchema,
    expiresAt: msSchema,
  })
  .superRefine((r, ctx) => {
    if (r.expiresAt <= r.issuedAt) ctx.addIssue({ code: 'custom', path: ['expiresAt'], message: 'must be after issuedAt' });
  });

/**
 * The owner's order to move a wallet (a wallet or a fleet root) to a new committee (issue 11):
 * `holders[i]` becomes party i + 1 of epoch `epoch + 1` with `threshold`. It names the epoch it
 * moves the wallet from, so once the wallet has moved it orders nothing any more (an order cannot be
 * replayed to move the wallet again); until then a failed attempt may be retried under it. Every
 * dealer and every new holder checks it (src/enforce/wallet-reshare.ts); never stored as a standing
 * document. `orderId` names it in every holder's audit chain.
 */
export const walletReshareDocSchema = z
  .strictObject({
    kind: z.literal('wallet_reshare'),
    orderId: z.string().regex(/^rso_[0-9a-f]{24}$/, 'orderId: rso_ followed by 24 lowercase hex characters'),
    walletId: idSchema,
    epoch: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    threshold: z.number().int().min(2).max(64),
    holders: z.array(z.string().regex(/^[\w-]{1,64}$/, 'a node id')).min(2).max(64),
    issuedAt: msSchema,
    expiresAt: msSchema,
  })
  .superRefine(checkCommittee);

export const controlDocSchema = z.discriminatedUnion('kind', [policyDocSchema, grantDocSchema, revocationDocSchema, approversDocSchema, walletStatusDocSchema, signDocSchema, walletCreateDocSchema, exportDocSchema, walletReshareDocSchema]);
export type ExportDoc = z.infer<typeof exportDocSchema>;

export type PolicyDoc = z.infer<typeof policyDocSchema>;
export type GrantDoc = z.infer<typeof grantDocSchema>;
export type RevocationDoc = z.infer<typeof revocationDocSchema>;
export type ApproversDoc = z.infer<typeof approversDocSchema>;
export type WalletStatusDoc = z.infer<typeof walletStatusDocSchema>;
export type SignDoc = z.infer<typeof signDocSchema>;
export type WalletCreateDoc = z.infer<typeof walletCreateDocSchema>;
export type WalletReshareDoc = z.infer<typeof walletReshareDocSchema>;
export type ControlDoc = z.infer<typeof controlDocSchema>;

/**
 * `{ doc, sig, signer }`: sig is the owner's Ed25519 signature (hex) of the doc and signer its public
 * key (hex); or, for an owner passkey, sig is a WebAuthn assertion and signer the passkey object
 * itself, equal to one of the pinned owner keys.
 */
export const signedControlDocSchema = z.strictObject({ doc: z.unknown(), sig: signatureSchema, signer: z.union([hex(64), webauthnKeySchema]) });
export interface SignedControlDoc<D extends ControlDoc = ControlDoc> {
  doc: D;
  sig: string | WebAuthnAssertion;
  signer: string | WebAuthnKeyShape;
}
export type WebAuthnKeyShape = z.infer<typeof webauthnKeySchema>;
export type WebAuthnAssertion = z.infer<typeof webauthnAssertionSchema>;

export const agentRequestSchema = z
  .strictObject({
    grantId: idSchema,
    walletId: idSchema,
    requestId: requestIdSchema,
    payload: payloadSchema,
    expiresAt: msSchema,
    issuedAt: msSchema,
  })
  .superRefine((r, ctx) => {
    if (r.expiresAt <= r.issuedAt) ctx.addIssue({ code: 'custom', path: ['expiresAt'], message: 'must be after issuedAt' });
  });
export type AgentRequest = z.infer<typeof agentRequestSchema>;

/** `{ request, sig }`: sig by the grant's agent key. */
export const signedAgentRequestSchema = z.strictObject({ request: z.unknown(), sig: sigSchema });
export interface SignedAgentRequest {
  request: AgentRequest;
  sig: string;
}

export const approvalSchema = z.strictObject({
  kind: z.literal('approval'),
  requestDigest: hex(64),
  decision: z.enum(['approve', 'reject']),
  approver: idSchema,
  issuedAt: msSchema,
});
export type Approval = z.infer<typeof approvalSchema>;
/** `{ approval, sig }`: sig is hex (Ed25519 / P-256 approver) or a WebAuthn assertion (passkey approver). */
export const signedApprovalSchema = z.strictObject({ approval: z.unknown(), sig: signatureSchema });
export interface SignedApproval {
  approval: Approval;
  sig: string | WebAuthnAssertion;
}

/**
 * Parses `value` with `schema` or throws FleetkeyError('validation_failed') naming the first bad
 * field as `<what>.<path>`; every issue is in `details.issues`. Values are never echoed.
 */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issues: { path: string; message: string }[] = [];
  for (const i of r.error.issues) {
    if (i.code === 'unrecognized_keys') for (const k of i.keys) issues.push({ path: joinPath(what, [...i.path, k]), message: `unknown field "${k}"` });
    else {
      const sub = i.code === 'custom' && typeof i.params?.subpath === 'string' && i.params.subpath !== '(root)' ? i.params.subpath : '';
      const base = joinPath(what, i.path);
      issues.push({ path: sub ? (sub.startsWith('[') ? base + sub : `${base}.${sub}`) : base, message: i.message });
    }
  }
  const first = issues[0];
  throw new FleetkeyError('validation_failed', `invalid ${what}: ${first.path}: ${first.message}${issues.length > 1 ? ` (and ${issues.length - 1} more)` : ''}`, {
    details: { path: first.path, issues },
  });
}

function joinPath(what: string, path: readonly PropertyKey[]): string {
  const p = formatPath(path);
  return p === '(root)' ? what : p.startsWith('[') ? what + p : `${what}.${p}`;
}
