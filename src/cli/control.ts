/**
 * The owner's control plane (issue #4): `fleetkey key|policy|grant|approvers|approval|request ...`.
 *
 * Documents are signed HERE, on the owner's machine, with the owner key file, and only then sent
 * to the server, which verifies and forwards them to every signer. Approvers sign their approvals
 * with their own keys, agents their requests with theirs. No secret is ever sent anywhere.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes, bytesToHex } from '@noble/hashes/utils.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { p256 } from '@noble/curves/nist.js';
import { FleetkeyError } from '../errors.ts';
import { publicKeyOf, signAgentRequest, signApproval, signControlDoc, type ControlDoc, type KeyType } from '../control/index.ts';
import { readOwnerSecret, readSecretKeyFile } from '../control/owner.ts';
import { newOperatorToken, signOperatorDoc } from '../control/operators.ts';
import { api, clusterJson, int, need, print, readInput, unavailable, type Flags } from './common.ts';
import { resendWhile } from '../retry.ts';
import type { CliModule } from './module.ts';

const HELP = `Owner control plane (documents are signed locally with the owner key: --owner-key FILE, FLEETKEY_OWNER_KEY_FILE, or .fleetkey/owner.key)
  fleetkey key create [--key-type ed25519|p256] --out FILE        a key for an agent or an approver (secret file 0600; prints the public key)
  fleetkey policy set WALLET FILE                                 sign and publish a policy (its "version" must grow)
  fleetkey policy show WALLET
  fleetkey grant create --agent-key HEX|@FILE [--key-type ed25519|p256] --wallets W1,W2 [--expires 24h|ISO] [--max-uses N] [--label L] [--id ID]
  fleetkey grant list
  fleetkey grant revoke ID                                        every signer refuses the grant from the next request on
  fleetkey approvers set FILE                                     {"alice": {"keyType": "ed25519", "publicKey": "…"}, …}
  fleetkey approval list
  fleetkey operator-token create --role viewer|operator [--label L]   a console / API token (printed once; the server keeps its SHA-256)
  fleetkey operator-token list
  fleetkey operator-token revoke ID                               refused (401) from the next request on
  fleetkey approval approve|reject REQUEST_ID --approver NAME --approver-key FILE [--key-type ed25519|p256]
Agents (the SDK does this for programs)
  fleetkey request --grant ID --agent-key FILE [--key-type ed25519|p256] --wallet W --kind KIND --payload DATA|@file [--chain-id N] [--network NAME] [--expires 5m] [--request-id ID] [--retry-for 30]
      (while the server answers 503 or cannot be reached, the same signed request is sent again for
      up to --retry-for seconds: it is signed and counted once, ever; 0 = no retries)`;

function ownerSecret(flags: Flags): Uint8Array {
  const k = ownerSecretIfAny(flags);
  if (k) return k;
  throw new FleetkeyError('bad_request', 'no owner key: pass --owner-key FILE or set FLEETKEY_OWNER_KEY_FILE');
}

/** The owner key from --owner-key, FLEETKEY_OWNER_KEY_FILE or `fleetkey dev`'s cluster.json, if there is one. */
export function ownerSecretIfAny(flags: Flags): Uint8Array | undefined {
  const explicit = (flags['owner-key'] as string | undefined) ?? process.env.FLEETKEY_OWNER_KEY_FILE;
  if (explicit) return readOwnerSecret(explicit);
  const fromDev = clusterJson()?.ownerKey;
  return fromDev ? readOwnerSecret(fromDev) : undefined;
}

function keyType(flags: Flags): KeyType {
  const t = (flags['key-type'] as string | undefined) ?? 'ed25519';
  if (t !== 'ed25519' && t !== 'p256') throw new FleetkeyError('validation_failed', '--key-type must be ed25519 or p256');
  return t;
}

/** "90s", "5m", "24h", "7d" from now, or an ISO date. */
function until(v: string | undefined, fallbackMs: number): number {
  if (!v) return Date.now() + fallbackMs;
  const m = /^(\d+)(s|m|h|d)$/.exec(v);
  if (m) return Date.now() + Number(m[1]) * { s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[m[2] as 's']!;
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new FleetkeyError('validation_failed', `not a duration (5m, 24h, 7d) or ISO date: ${v}`);
  return t;
}

async function publish(flags: Flags, doc: ControlDoc): Promise<{ kind: string; status: string; digest: string; delivered: string[]; pending: string[] }> {
  return api('POST', '/v1/control', signControlDoc(doc, ownerSecret(flags)));
}

function published(flags: Flags, r: { kind: string; status: string; delivered: string[]; pending: string[] }, what: string): number {
  print(flags, r, () => `${what}: ${r.status}; delivered to ${r.delivered.length} signer(s)${r.pending.length ? `, pending for ${r.pending.join(', ')} (delivered when they are back)` : ''}`);
  return 0;
}

export const controlCli: CliModule = {
  nouns: ['key', 'policy', 'grant', 'approvers', 'approval', 'request', 'operator-token'],
  options: {
    'owner-key': { type: 'string' },
    'agent-key': { type: 'string' },
    'approver-key': { type: 'string' },
    'key-type': { type: 'string' },
    approver: { type: 'string' },
    wallets: { type: 'string' },
    expires: { type: 'string' },
    'max-uses': { type: 'string' },
    id: { type: 'string' },
    out: { type: 'string' },
    grant: { type: 'string' },
    'request-id': { type: 'string' },
    'retry-for': { type: 'string' },
    role: { type: 'string' },
  },
  help: HELP,
  async run(noun, verb, args, flags) {
    const arg = args[0];
    switch (`${noun} ${verb ?? ''}`.trim()) {
      case 'key create': {
        const t = keyType(flags);
        const out = need(flags, 'out');
        if (existsSync(out)) throw new FleetkeyError('conflict', `${out} exists; not overwriting a key`);
        const secret = t === 'ed25519' ? ed25519.utils.randomSecretKey() : p256.utils.randomSecretKey();
        writeFileSync(out, bytesToHex(secret) + '\n', { mode: 0o600 });
        const r = { keyType: t, publicKey: publicKeyOf(secret, t), file: out };
        print(flags, r, () => `${t} key written to ${out} (0600)\n  public key  ${r.publicKey}`);
        return 0;
      }
      case 'policy set': {
        const [walletId, file] = args;
        if (!walletId || !file) throw new FleetkeyError('validation_failed', 'usage: fleetkey policy set WALLET FILE');
        const policy = JSON.parse(readInput(file === '-' ? '-' : `@${file}`)) as { version?: unknown };
        const r = await publish(flags, { kind: 'policy', walletId, version: policy.version as number, policy, issuedAt: Date.now() });
        return published(flags, r, `policy v${String(policy.version)} for ${walletId}`);
      }
      case 'policy show': {
        if (!arg) throw new FleetkeyError('validation_failed', 'usage: fleetkey policy show WALLET');
        const r = await api<{ version: number; policy: unknown }>('GET', `/v1/wallets/${encodeURIComponent(arg)}/policy`);
        print(flags, r, () => `version ${r.version}\n${JSON.stringify(r.policy, null, 2)}`);
        return 0;
      }
      case 'grant create': {
        const raw = need(flags, 'agent-key');
        const publicKey = (raw.startsWith('@') ? readFileSync(raw.slice(1), 'utf8') : raw).trim().toLowerCase().replace(/^0x/, '');
        const id = (flags.id as string | undefined) ?? `grant_${bytesToHex(randomBytes(8))}`;
        const maxUses = int(flags, 'max-uses');
        const now = Date.now();
        const doc: ControlDoc = {
          kind: 'grant',
          id,
          agent: { keyType: keyType(flags), publicKey } as never,
          wallets: need(flags, 'wallets').split(',').map((w) => w.trim()).filter(Boolean),
          expiresAt: until(flags.expires as string | undefined, 24 * 3600_000),
          ...(maxUses !== undefined ? { maxUses } : {}),
          ...(flags.label ? { label: flags.label as string } : {}),
          issuedAt: now,
        };
        const r = await publish(flags, doc);
        return published(flags, { ...r, id } as never, `grant ${id}`);
      }
      case 'grant list': {
        const r = await api<{ grants: { id: string; status: string; wallets: string[]; expiresAt: number; uses: number; maxUses?: number; label?: string }[] }>('GET', '/v1/grants');
        print(flags, r.grants, () =>
          r.grants.map((g) => `${g.id}  ${g.status.padEnd(7)}  uses ${g.uses}${g.maxUses ? `/${g.maxUses}` : ''}  until ${new Date(g.expiresAt).toISOString()}  ${g.wallets.join(',')}${g.label ? `  (${g.label})` : ''}`).join('\n') || '(no grants)',
        );
        return 0;
      }
      case 'grant revoke': {
        if (!arg) throw new FleetkeyError('validation_failed', 'usage: fleetkey grant revoke ID');
        return published(flags, await publish(flags, { kind: 'revocation', grantId: arg, issuedAt: Date.now() }), `revocation of ${arg}`);
      }
      case 'approvers set': {
        if (!arg) throw new FleetkeyError('validation_failed', 'usage: fleetkey approvers set FILE');
        const approvers = JSON.parse(readInput(arg === '-' ? '-' : `@${arg}`));
        // Versions only have to grow: the issue time in ms does.
        const now = Date.now();
        return published(flags, await publish(flags, { kind: 'approvers', version: now, approvers, issuedAt: now }), 'approver registry');
      }
      case 'approval list': {
        const r = await api<{ requests: { requestId: string; walletId: string; grantId: string; expiresAt: string; approvals?: { required: number; approvers: string[]; granted: string[] }[]; approvedBy?: string[] }[] }>('GET', '/v1/approvals');
        print(flags, r.requests, () =>
          r.requests.map((q) => `${q.requestId}  wallet ${q.walletId}  grant ${q.grantId}  until ${q.expiresAt}  ${(q.approvals ?? []).map((a) => `${q.approvedBy?.length ?? 0}/${a.required} of ${a.approvers.join(',')}`).join('; ')}`).join('\n') || '(nothing waiting)',
        );
        return 0;
      }
      case 'approval approve':
      case 'approval reject': {
        if (!arg) throw new FleetkeyError('validation_failed', `usage: fleetkey approval ${verb} REQUEST_ID --approver NAME --approver-key FILE`);
        const cur = await api<{ requestDigest: string }>('GET', `/v1/requests/${encodeURIComponent(arg)}`);
        const signed = signApproval({ kind: 'approval', requestDigest: cur.requestDigest, decision: verb as 'approve' | 'reject', approver: need(flags, 'approver'), issuedAt: Date.now() }, readSecretKeyFile(need(flags, 'approver-key'), 'approver key'), keyType(flags));
        const r = await api<{ status: string; signature?: string }>('POST', `/v1/approvals/${encodeURIComponent(arg)}`, signed);
        print(flags, r, () => `${arg}: ${r.status}${r.signature ? `\n  signature  ${r.signature}` : ''}`);
        return 0;
      }
      case 'operator-token create': {
        const role = need(flags, 'role');
        if (role !== 'viewer' && role !== 'operator') throw new FleetkeyError('validation_failed', '--role must be viewer or operator');
        // The token is made here, where the owner signs: the server only ever receives its hash.
        const t = newOperatorToken();
        const doc = { kind: 'operator_token' as const, id: t.id, role: role as 'viewer' | 'operator', ...(flags.label ? { label: flags.label as string } : {}), tokenHash: t.tokenHash, issuedAt: Date.now() };
        const r = await api<{ id: string; role: string }>('POST', '/v1/operator-tokens', signOperatorDoc(doc, ownerSecret(flags)));
        print(flags, { ...r, token: t.token }, () => `operator token ${r.id} (${r.role})\n  token  ${t.token}\n  (shown once: fleetkey keeps only its SHA-256)`);
        return 0;
      }
      case 'operator-token list': {
        const r = await api<{ tokens: { id: string; role: string; label?: string; createdAt: number; lastUsedAt: number | null; status: string }[] }>('GET', '/v1/operator-tokens');
        const iso = (t: number | null) => (t === null ? '-' : new Date(t).toISOString());
        print(flags, r.tokens, () => r.tokens.map((t) => `${t.id}  ${t.role.padEnd(8)}  ${t.status.padEnd(7)}  created ${iso(t.createdAt)}  last used ${iso(t.lastUsedAt)}${t.label ? `  (${t.label})` : ''}`).join('\n') || 'no operator tokens');
        return 0;
      }
      case 'operator-token revoke': {
        if (!arg) throw new FleetkeyError('validation_failed', 'usage: fleetkey operator-token revoke ID');
        const r = await api<{ id: string; status: string }>('POST', `/v1/operator-tokens/${encodeURIComponent(arg)}/revoke`, signOperatorDoc({ kind: 'operator_token_revocation', id: arg, issuedAt: Date.now() }, ownerSecret(flags)));
        print(flags, r, () => `operator token ${r.id}: ${r.status}`);
        return 0;
      }
      case 'request': {
        const raw = readInput(need(flags, 'payload'));
        const kind = need(flags, 'kind');
        const data = /^\s*[[{]/.test(raw) ? JSON.parse(raw) : raw;
        const chainId = flags['chain-id'] === undefined ? undefined : /^\d+$/.test(flags['chain-id'] as string) ? Number(flags['chain-id']) : (flags['chain-id'] as string);
        const now = Date.now();
        const signed = signAgentRequest(
          {
            grantId: need(flags, 'grant'),
            walletId: need(flags, 'wallet'),
            requestId: (flags['request-id'] as string | undefined) ?? `r${bytesToHex(randomBytes(12))}`,
            payload: { kind: kind as never, data, ...(chainId !== undefined || flags.network ? { opts: { ...(chainId !== undefined ? { chainId } : {}), ...(flags.network ? { network: flags.network as string } : {}) } } : {}) },
            issuedAt: now,
            expiresAt: until(flags.expires as string | undefined, 5 * 60_000),
          },
          readSecretKeyFile(need(flags, 'agent-key'), 'agent key'),
          keyType(flags),
        );
        const r = await resendWhile(() => api<{ status: string; requestId: string; signature?: string }>('POST', '/v1/requests', signed), unavailable, (int(flags, 'retry-for') ?? 30) * 1000);
        print(flags, r, () => `${r.requestId}: ${r.status}${r.signature ? `\n  signature  ${r.signature}` : ''}`);
        return 0;
      }
    }
    return undefined;
  },
};
