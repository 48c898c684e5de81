/**
 * Who may call which admin route (issue 12): the admin token (everything, as before), an operator
 * token (`viewer` or `operator`, created and revoked by owner-signed documents: src/control/operators.ts),
 * or a console session opened with a registered passkey (owner or approver).
 *
 * ROUTE_ACCESS lists every `/v1` route that is not a GET, and the GETs that are not for every reader:
 * a token or session may call a route only if this table lets its role do so, and a non-GET route
 * missing from the table is refused to every token (deny by default). test/console/operator-tokens.test.ts
 * walks the app's real route table and fails on a mutating route that has no entry here.
 *
 * Levels: `public` (authenticated by a signature in the body, no bearer needed), `viewer` (any
 * token or session), `operator` (operator tokens), `owner` (the admin token, or a session opened
 * with an owner passkey: only for routes whose body is itself an owner-signed document), `admin`
 * (the admin token only). A token never stands in for a signature: the routes that change a policy,
 * a grant, an approval or export a key still verify the owner's or an approver's signature, and every
 * signer does again.
 */
import type { Context, Hono } from 'hono';
import { z } from 'zod';
import { randomBytes } from '@noble/hashes/utils.js';
import { base64urlnopad } from '@scure/base';
import { FleetkeyError } from '../errors.ts';
import { bearer, jsonBody, parse, secretEquals } from '../http/common.ts';
import type { Db } from '../store/db.ts';
import { DOMAINS, verifyWebAuthn, webauthnChallenge, type OwnerKey, type WebAuthnKey } from '../control/keys.ts';
import { webauthnAssertionSchema, webauthnKeySchema } from '../control/schemas.ts';
import { operatorTokenHash, operatorTokenIdSchema, OPERATOR_TOKEN_RE, verifyOperatorDoc, type OperatorRole } from '../control/operators.ts';
import type { Coordinator } from './coordinator.ts';

export type Access = 'public' | 'viewer' | 'operator' | 'owner' | 'admin';

/** `METHOD /path/:param` → who may call it besides the admin token. */
export const ROUTE_ACCESS: Record<string, Access> = {
  // Authenticated by the agent's or approver's signature (the bearer check does not apply).
  'POST /v1/requests': 'public',
  'POST /v1/approvals/:id': 'public',
  'POST /v1/agent/status': 'public',
  'POST /v1/console/session/challenge': 'public',
  'POST /v1/console/session': 'public',
  // Pure computations: nothing is stored or signed.
  'POST /v1/passkeys/key': 'viewer',
  'POST /v1/control/challenge': 'viewer',
  'POST /v1/policy/simulate': 'viewer',
  'POST /v1/verify/data': 'viewer',
  // The operator role: enrol devices, create wallets.
  'POST /v1/wallets': 'operator',
  'POST /v1/fleets/:id/devices': 'operator',
  'POST /v1/fleets/:id/devices/batch': 'operator',
  // Owner-signed documents (grants, revocations, policies, approvers, operator tokens).
  'POST /v1/control': 'owner',
  'POST /v1/operator-tokens': 'owner',
  'POST /v1/operator-tokens/:id/revoke': 'owner',
  'GET /v1/operator-tokens': 'admin',
  // Signing, key changes and fleet administration: the admin token (and the owner's signature where it is needed).
  'POST /v1/wallets/:id/sign': 'admin',
  'POST /v1/wallets/:id/sign/transaction': 'admin',
  'POST /v1/wallets/:id/sign/message': 'admin',
  'POST /v1/wallets/:id/sign/typed-data': 'admin',
  'POST /v1/wallets/:id/refresh': 'admin',
  'POST /v1/wallets/:id/export': 'admin',
  'POST /v1/wallets/:id/reshare': 'admin',
  'POST /v1/node-jobs': 'admin',
  'POST /v1/fleets': 'admin',
  'POST /v1/fleets/:id/devices/:index/revoke': 'admin',
  'POST /v1/fleets/:id/devices/:index/suspend': 'admin',
  'POST /v1/fleets/:id/devices/:index/resume': 'admin',
  'POST /v1/fleets/:id/devices/:index/credential': 'admin',
};

const compiled = Object.entries(ROUTE_ACCESS).map(([k, access]) => {
  const [method, path] = k.split(' ');
  return { method, re: new RegExp(`^${path.replace(/:[a-z]+/g, '[^/]+')}$`), access };
});

/** The table's decision for a request; GETs not listed are for every reader; anything else unlisted: admin only. */
export function accessOf(method: string, path: string): Access {
  const hit = compiled.find((r) => r.method === method && r.re.test(path));
  return hit ? hit.access : method === 'GET' || method === 'HEAD' ? 'viewer' : 'admin';
}

/** Who a bearer is, once it is not the admin token. */
export interface Caller {
  kind: 'operator_token' | 'passkey_session';
  id: string;
  role: OperatorRole;
  /** A session opened with a pinned owner passkey may submit owner-signed documents. */
  owner?: boolean;
}

/** The operator_tokens table: migrated by runServer at start-up, with the server's other tables. */
export const OPERATOR_MIGRATIONS = [
  `CREATE TABLE operator_tokens (id TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, role TEXT NOT NULL, label TEXT, created_at BIGINT NOT NULL,
     last_used_at BIGINT, revoked_at BIGINT, signed_json TEXT NOT NULL, revocation_json TEXT)`,
];

const SESSION_MS = 15 * 60_000;
const CHALLENGE_MS = 2 * 60_000;
const MAX_PENDING = 1000;
/** last_used_at is written at most this often per token (one write per request would be a write per read). */
const TOUCH_MS = 60_000;

const sessionSchema = z.strictObject({ nonce: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'nonce: 43 base64url characters'), credentialId: webauthnKeySchema.shape.credentialId, assertion: webauthnAssertionSchema });

export class OperatorGate {
  /** Passkey sessions, by SHA-256 of the session token (memory only: a restart signs everyone out). */
  private readonly sessions = new Map<string, Caller & { expiresAt: number }>();
  /** Sign-in nonces not yet used: each is taken once. */
  private readonly nonces = new Map<string, number>();

  constructor(
    private readonly db: Db,
    private readonly adminToken: string,
    private readonly ownerKeys: readonly OwnerKey[],
    private readonly approverPasskeys: () => Promise<Record<string, unknown>>,
  ) {}

  /** The middleware for `/v1/*`: the admin token passes; a token or session passes where ROUTE_ACCESS lets its role. */
  async check(c: Context): Promise<void> {
    const access = accessOf(c.req.method, c.req.path);
    if (access === 'public') return;
    const t = bearer(c);
    if (!t) throw new FleetkeyError('unauthorized', 'missing or wrong bearer token');
    if (secretEquals(t, this.adminToken)) return;
    const who = await this.identify(t);
    if (!who) throw new FleetkeyError('unauthorized', 'missing or wrong bearer token');
    const ok = access === 'viewer' || (access === 'operator' && who.role === 'operator') || (access === 'owner' && who.owner === true);
    if (!ok) throw new FleetkeyError('forbidden_role', `a ${who.kind === 'passkey_session' ? 'passkey session' : `${who.role} token`} may not call ${c.req.method} ${c.req.path}`, { details: { role: who.role } });
  }

  /** An operator token (not revoked) or a live passkey session; undefined for anything else. */
  async identify(token: string): Promise<Caller | undefined> {
    const hash = operatorTokenHash(token);
    if (token.startsWith('fks_')) {
      const s = this.sessions.get(hash);
      if (!s || s.expiresAt <= Date.now()) return void this.sessions.delete(hash);
      return s;
    }
    if (!OPERATOR_TOKEN_RE.test(token)) return undefined;
    const [r] = await this.db.all(`SELECT id, role, last_used_at, revoked_at FROM operator_tokens WHERE token_hash = $1`, [hash]);
    if (!r || r.revoked_at !== null) return undefined;
    const now = Date.now();
    if (r.last_used_at === null || now - Number(r.last_used_at) >= TOUCH_MS) await this.db.run(`UPDATE operator_tokens SET last_used_at = $1 WHERE id = $2`, [now, r.id as string]);
    return { kind: 'operator_token', id: r.id as string, role: r.role as OperatorRole };
  }

  /** Stores an owner-signed operator_token document (the token's hash, never the token). */
  async create(signed: unknown): Promise<TokenView> {
    const doc = verifyOperatorDoc(signed, this.ownerKeys);
    if (doc.kind !== 'operator_token') throw new FleetkeyError('validation_failed', 'expected an operator_token document', { details: { path: 'doc.kind' } });
    const [same] = await this.db.all(`SELECT id FROM operator_tokens WHERE id = $1 OR token_hash = $2`, [doc.id, doc.tokenHash]);
    if (same) throw new FleetkeyError('conflict', `operator token ${doc.id} (or its token) exists`);
    await this.db.run(`INSERT INTO operator_tokens (id, token_hash, role, label, created_at, signed_json) VALUES ($1, $2, $3, $4, $5, $6)`, [
      doc.id, doc.tokenHash, doc.role, doc.label ?? null, doc.issuedAt, JSON.stringify(signed),
    ]);
    return (await this.get(doc.id))!;
  }

  /** Stores an owner-signed revocation: the token is refused (401) from the next request on. */
  async revoke(id: string, signed: unknown): Promise<TokenView> {
    const doc = verifyOperatorDoc(signed, this.ownerKeys);
    if (doc.kind !== 'operator_token_revocation' || doc.id !== id) throw new FleetkeyError('validation_failed', `expected an operator_token_revocation document for ${id}`, { details: { path: 'doc' } });
    if (!(await this.get(id))) throw new FleetkeyError('not_found', `no operator token ${id}`);
    await this.db.run(`UPDATE operator_tokens SET revoked_at = $1, revocation_json = $2 WHERE id = $3 AND revoked_at IS NULL`, [doc.issuedAt, JSON.stringify(signed), id]);
    return (await this.get(id))!;
  }

  async get(id: string): Promise<TokenView | undefined> {
    return (await this.list(id))[0];
  }

  async list(id?: string): Promise<TokenView[]> {
    const rows = await this.db.all(
      `SELECT id, role, label, created_at, last_used_at, revoked_at FROM operator_tokens${id ? ' WHERE id = $1' : ''} ORDER BY created_at, id`,
      id ? [id] : [],
    );
    return rows.map((r) => ({
      id: r.id as string,
      role: r.role as OperatorRole,
      ...(r.label !== null ? { label: r.label as string } : {}),
      createdAt: Number(r.created_at),
      lastUsedAt: r.last_used_at === null ? null : Number(r.last_used_at),
      revokedAt: r.revoked_at === null ? null : Number(r.revoked_at),
      status: r.revoked_at === null ? 'active' : 'revoked',
    }));
  }

  /** A one-time nonce and the WebAuthn challenge over it, for a passkey sign-in. */
  challenge(): { nonce: string; challenge: string } {
    const now = Date.now();
    for (const [n, exp] of this.nonces) if (exp <= now || this.nonces.size >= MAX_PENDING) this.nonces.delete(n);
    const nonce = base64urlnopad.encode(randomBytes(32));
    this.nonces.set(nonce, now + CHALLENGE_MS);
    return { nonce, challenge: webauthnChallenge(DOMAINS.session, sessionValue(nonce)) };
  }

  /**
   * Opens a session for a registered passkey: a pinned owner passkey or an approver's passkey in the
   * current registry. The session reads (role `viewer`); an owner passkey's session may also submit
   * owner-signed documents. The nonce is spent whether the assertion verifies or not.
   */
  async signIn(body: unknown): Promise<{ token: string; identity: string; role: OperatorRole; owner: boolean; expiresAt: number }> {
    const b = parse(sessionSchema, body);
    const exp = this.nonces.get(b.nonce);
    this.nonces.delete(b.nonce);
    if (exp === undefined || exp <= Date.now()) throw new FleetkeyError('unauthorized', 'unknown or expired sign-in challenge');
    const candidates: { identity: string; owner: boolean; key: WebAuthnKey }[] = [];
    for (const [i, k] of this.ownerKeys.entries()) if (typeof k !== 'string' && k.credentialId === b.credentialId) candidates.push({ identity: `owner#${i}`, owner: true, key: k });
    for (const [name, k] of Object.entries(await this.approverPasskeys())) {
      const w = webauthnKeySchema.safeParse(k);
      if (w.success && w.data.credentialId === b.credentialId) candidates.push({ identity: `approver:${name}`, owner: false, key: w.data });
    }
    const hit = candidates.find((c) => verifyWebAuthn(b.assertion, DOMAINS.session, sessionValue(b.nonce), c.key));
    if (!hit) throw new FleetkeyError('unauthorized', 'the passkey is not registered, or its assertion does not verify');
    const token = `fks_${base64urlnopad.encode(randomBytes(32))}`;
    const expiresAt = Date.now() + SESSION_MS;
    for (const [h, s] of this.sessions) if (s.expiresAt <= Date.now()) this.sessions.delete(h);
    this.sessions.set(operatorTokenHash(token), { kind: 'passkey_session', id: hit.identity, role: 'viewer', owner: hit.owner, expiresAt });
    return { token, identity: hit.identity, role: 'viewer', owner: hit.owner, expiresAt };
  }

  /** Who the bearer is, for the console (what to show); never the token. */
  async whoami(c: Context): Promise<{ kind: 'admin' | Caller['kind']; id?: string; role: OperatorRole | 'admin'; owner: boolean }> {
    const t = bearer(c)!;
    if (secretEquals(t, this.adminToken)) return { kind: 'admin', role: 'admin', owner: true };
    const who = (await this.identify(t))!;
    return { kind: who.kind, id: who.id, role: who.role, owner: who.owner === true };
  }
}

export interface TokenView {
  id: string;
  role: OperatorRole;
  label?: string;
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
  status: 'active' | 'revoked';
}

const sessionValue = (nonce: string) => ({ kind: 'console_session', nonce });

/** The token routes and the passkey sign-in routes (the gate's middleware is mounted by serverApp). */
export function operatorRoutes(app: Hono<any>, gate: OperatorGate, coord: Coordinator): void {
  app.post('/v1/operator-tokens', async (c) => {
    const v = await gate.create(await jsonBody(c));
    await coord.audit.append({ type: 'admin', outcome: 'operator_token_created', data: { id: v.id, role: v.role } });
    return c.json(v, 201);
  });
  app.get('/v1/operator-tokens', async (c) => c.json({ tokens: await gate.list() }));
  app.post('/v1/operator-tokens/:id/revoke', async (c) => {
    const v = await gate.revoke(parse(operatorTokenIdSchema, c.req.param('id'), 'id'), await jsonBody(c));
    await coord.audit.append({ type: 'admin', outcome: 'operator_token_revoked', data: { id: v.id } });
    return c.json(v);
  });
  app.post('/v1/console/session/challenge', (c) => c.json(gate.challenge()));
  app.post('/v1/console/session', async (c) => c.json(await gate.signIn(await jsonBody(c))));
  app.get('/v1/console/whoami', async (c) => c.json(await gate.whoami(c)));
}
