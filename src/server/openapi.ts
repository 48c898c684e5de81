/**
 * The OpenAPI 3.1 description the server serves at /openapi.json. Request bodies come from the
 * same zod schemas the routes validate with (zod's JSON Schema export), so they cannot drift.
 */
import { z } from 'zod';
import { createWalletSchema, signSchema } from './schemas.ts';
import { ethMessageSchema, ethTransactionSchema, ethTypedDataSchema } from './ethereum.ts';
import { agentRequestSchema, approvalSchema, controlDocSchema } from '../control/schemas.ts';

const error = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' }, requestId: { type: 'string' }, details: { type: 'object' } },
    },
  },
};

const wallet = {
  type: 'object',
  required: ['id', 'scheme', 'publicKey', 'address', 'threshold', 'signers', 'epoch'],
  properties: {
    id: { type: 'string', example: 'wal_0123456789abcdef01234567' },
    scheme: { type: 'string', enum: ['ed25519', 'secp256k1-schnorr', 'ecdsa-secp256k1'] },
    publicKey: { type: 'string', description: 'hex: 32-byte Ed25519 key, 32-byte x-only BIP340 key (the taproot output key), or 33-byte compressed secp256k1 key (ECDSA)' },
    address: { type: 'string', description: 'Solana base58 address (ed25519), taproot address (secp256k1-schnorr), or EIP-55 Ethereum address (ecdsa-secp256k1)' },
    threshold: { type: 'integer' },
    signers: { type: 'integer' },
    participants: { type: 'array', items: { type: 'object', properties: { index: { type: 'integer' }, nodeId: { type: 'string' } } } },
    label: { type: ['string', 'null'] },
    network: { type: ['string', 'null'] },
    epoch: { type: 'integer', description: 'share epoch; increases on every refresh' },
    internalKey: { type: 'string', description: 'BIP341 internal key (x-only hex), secp256k1-schnorr only' },
    createdAt: { type: 'string', format: 'date-time' },
  },
};

const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [String(c), { description: 'error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } }]));
const json = (schema: unknown) => ({ content: { 'application/json': { schema } } });

export function openApiDocument() {
  return {
    openapi: '3.1.0',
    info: { title: 'fleetkey', version: '0.1.0', description: 'Threshold key management and policy signing for agents and device fleets.' },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: { Error: error, Wallet: wallet },
    },
    security: [{ bearer: [] }],
    paths: {
      '/healthz': { get: { security: [], summary: 'Liveness, and how many signer nodes answer', responses: { '200': { description: 'ok' } } } },
      '/readyz': {
        get: {
          security: [],
          summary: 'Readiness: the store takes a write, and some wallet has its threshold of signer nodes reachable (with no wallet: one signer node)',
          responses: { '200': { description: '{"status":"ready"}' }, '503': { description: '{"status":"not_ready","reasons":[...]}' } },
        },
      },
      '/metrics': { get: { summary: 'Prometheus text exposition (admin token)', responses: { '200': { description: 'text/plain; version=0.0.4' }, ...errors(401) } } },
      '/v1/wallets': {
        post: {
          summary: 'Create a wallet by distributed key generation across signer nodes (no dealer)',
          requestBody: json(z.toJSONSchema(createWalletSchema)),
          responses: { '201': { description: 'created', ...json({ $ref: '#/components/schemas/Wallet' }) }, ...errors(400, 401, 503) },
        },
        get: {
          summary: 'List wallets',
          parameters: [{ name: 'after', in: 'query', schema: { type: 'string' } }, { name: 'limit', in: 'query', schema: { type: 'integer' } }],
          responses: { '200': { description: 'wallets', ...json({ type: 'object', properties: { wallets: { type: 'array', items: { $ref: '#/components/schemas/Wallet' } }, next: { type: ['string', 'null'] } } }) }, ...errors(401) },
        },
      },
      '/v1/wallets/{id}': {
        get: { summary: 'Show a wallet', parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { '200': { description: 'wallet', ...json({ $ref: '#/components/schemas/Wallet' }) }, ...errors(400, 401, 404) } },
      },
      '/v1/wallets/{id}/sign': {
        post: {
          summary: 'Sign (admin only): {message} bytes with Ed25519 (RFC 8032) or BIP340, or {hash} (32 bytes) with threshold ECDSA, answered as r||s||v',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          requestBody: json(z.toJSONSchema(signSchema, { io: 'input' })),
          responses: {
            '200': { description: 'signature', ...json({ type: 'object', required: ['signature'], properties: { signature: { type: 'string' }, signers: { type: 'array', items: { type: 'string' } } } }) },
            ...errors(400, 401, 404, 502, 503),
          },
        },
      },
      ...Object.fromEntries(
        (
          [
            ['transaction', ethTransactionSchema, 'Sign an Ethereum transaction (EIP-1559, EIP-2930 or legacy; serialized hex or JSON): answers the signed serialization and its hash'],
            ['message', ethMessageSchema, 'Sign an EIP-191 personal message (a string is UTF-8 text; bytes as {"raw": HEX})'],
            ['typed-data', ethTypedDataSchema, 'Sign EIP-712 typed data'],
          ] as const
        ).map(([p, schema, summary]) => [
          `/v1/wallets/{id}/sign/${p}`,
          {
            post: {
              summary: `${summary} (ecdsa-secp256k1 wallets)`,
              parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
              requestBody: json(z.toJSONSchema(schema, { unrepresentable: 'any' })),
              responses: { '200': { description: 'signature', ...json({ type: 'object', properties: { signature: { type: 'string' }, serializedTransaction: { type: 'string' }, hash: { type: 'string' } } }) }, ...errors(400, 401, 404, 502, 503) },
            },
          },
        ]),
      ),
      '/v1/wallets/{id}/refresh': {
        post: { summary: 'Proactive share refresh: new shares on every signer, same public key', parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { '200': { description: 'wallet', ...json({ $ref: '#/components/schemas/Wallet' }) }, ...errors(401, 404, 503) } },
      },
      '/v1/wallets/{id}/reshare': {
        post: { summary: "Moves the wallet to a new committee of signer nodes (new n and t allowed): same public key and address, next epoch. The owner's signed wallet_reshare order (checked by every dealer and new holder), or, to a server that holds the owner key, the committee alone", parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], requestBody: { required: true, ...json({ type: 'object', properties: { order: { type: 'object', description: 'owner-signed { doc: { kind: "wallet_reshare", orderId, walletId, epoch, threshold, holders, issuedAt, expiresAt }, sig, signer }' }, to: { type: 'array', items: { type: 'string' }, minItems: 2, description: 'node ids of the new committee, in index order (with an order: must be its holders)' }, threshold: { type: 'integer', minimum: 2 } } }) }, responses: { '200': { description: 'wallet', ...json({ $ref: '#/components/schemas/Wallet' }) }, ...errors(400, 401, 403, 404, 409, 503) } },
      },
      '/v1/node-jobs': {
        post: { summary: 'Retire or replace a signer node: moves every wallet (root) it holds in a background job, one owner-signed wallet_reshare order per wallet; resumes after a server crash', requestBody: { required: true, ...json({ type: 'object', required: ['kind', 'node', 'orders'], properties: { kind: { type: 'string', enum: ['retire', 'replace'] }, node: { type: 'string' }, replacement: { type: 'string' }, orders: { type: 'array', items: { type: 'object' } } } }) }, responses: { '202': { description: 'the job: status, progress, each wallet\'s outcome' }, ...errors(400, 401, 403) } },
        get: { summary: 'Membership jobs, each with its progress and per-wallet outcome', responses: { '200': { description: '{ jobs }' }, ...errors(401) } },
      },
      '/v1/node-jobs/{id}': {
        get: { summary: 'One membership job', parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { '200': { description: 'the job' }, ...errors(401, 404) } },
      },
      '/v1/wallets/{id}/export': {
        post: {
          summary: "Owner-only recovery export: relays the owner's signed export document to every holder; each checks it and the policy's \"exportable\" flag, logs it, and answers its share sealed to the owner's X25519 recovery key (opened only by `fleetkey wallet export`)",
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          requestBody: { required: true, ...json({ type: 'object', required: ['order'], properties: { order: { type: 'object', description: 'owner-signed { doc: { kind: "export", walletId, recipient, issuedAt, expiresAt }, sig, signer }' } } }) },
          responses: { '200': { description: 'sealed shares', ...json({ type: 'object', properties: { walletId: { type: 'string' }, scheme: { type: 'string' }, threshold: { type: 'integer' }, publicKey: { type: 'string' }, address: { type: 'string' }, network: { type: ['string', 'null'] }, shares: { type: 'array', items: { type: 'object', properties: { nodeId: { type: 'string' }, index: { type: 'integer' }, epoch: { type: 'integer' }, box: { type: 'string' } } } } } }) }, ...errors(400, 401, 403, 404, 503) },
        },
      },
      '/v1/operator-tokens': {
        post: { summary: 'Store an owner-signed operator_token document ({doc, sig, signer}; the document holds the SHA-256 of the token, never the token)', responses: { '201': { description: '{"id","role","label"?,"createdAt","lastUsedAt","revokedAt","status"}' }, ...errors(400, 401, 403, 409) } },
        get: { summary: 'Operator tokens: id, role, label, created, last used, status (admin token)', responses: { '200': { description: '{"tokens": [...]}' }, ...errors(401, 403) } },
      },
      '/v1/operator-tokens/{id}/revoke': { post: { summary: 'Store an owner-signed operator_token_revocation document: the token answers 401 from then on', responses: { '200': { description: 'the token, status "revoked"' }, ...errors(400, 401, 403, 404) } } },
      '/v1/console/session/challenge': { post: { security: [], summary: 'A one-time nonce and its WebAuthn challenge, for a passkey sign-in', responses: { '200': { description: '{"nonce","challenge"}' } } } },
      '/v1/console/session': { post: { security: [], summary: 'Passkey sign-in: {nonce, credentialId, assertion} by a registered owner or approver passkey gives a 15-minute viewer session token', responses: { '200': { description: '{"token","identity","role","owner","expiresAt"}' }, ...errors(400, 401) } } },
      '/v1/console/audit': { get: { summary: "This server's audit entries, newest first: ?limit (1-500, default 50), ?before SEQ (the previous page's next), ?wallet, ?agent, ?outcome (letters, digits and _ . : -, matched as substrings); reads at most 20,000 rows per request", responses: { '200': { description: '{"entries":[…],"next":SEQ|null}' }, ...errors(400, 401) } } },
      '/v1/console/whoami': { get: { summary: 'Who the bearer is (admin, operator token, passkey session) and its role', responses: { '200': { description: '{"kind","id"?,"role","owner"}' }, ...errors(401) } } },
      '/v1/control': {
        post: {
          summary: 'Submit an owner-signed control document (policy, grant, revocation, approvers, wallet_status); verified here and forwarded to every signer',
          requestBody: json({ type: 'object', required: ['doc', 'sig', 'signer'], properties: { doc: z.toJSONSchema(controlDocSchema, { unrepresentable: 'any', io: 'input' }), sig: { description: 'owner Ed25519 signature (hex), or for an owner passkey a WebAuthn assertion { authenticatorData, clientDataJSON, signature } (base64url) whose challenge is the document digest' }, signer: { description: 'owner public key (hex), or the owner passkey object (keyType webauthn-p256), pinned by every signer' } } }),
          responses: { '200': { description: 'stored and forwarded', ...json({ type: 'object', properties: { kind: { type: 'string' }, status: { type: 'string', enum: ['stored', 'exists'] }, digest: { type: 'string' }, delivered: { type: 'array', items: { type: 'string' } }, pending: { type: 'array', items: { type: 'string' } } } }) }, ...errors(400, 401, 409) },
        },
      },
      '/v1/passkeys/key': {
        post: {
          summary: 'Turns a browser passkey (getPublicKey() SPKI, base64url) into the key object an owner signs into an approvers document or pins as an owner key; stores nothing',
          requestBody: json({ type: 'object', required: ['spki', 'credentialId', 'rpId', 'origin'], properties: { spki: { type: 'string' }, credentialId: { type: 'string' }, rpId: { type: 'string' }, origin: { type: 'string' } } }),
          responses: { '200': { description: 'key', ...json({ type: 'object', properties: { keyType: { type: 'string', enum: ['webauthn-p256'] }, publicKey: { type: 'string' }, credentialId: { type: 'string' }, rpId: { type: 'string' }, origin: { type: 'string' } } }) }, ...errors(400, 401) },
        },
      },
      '/v1/control/challenge': {
        post: {
          summary: "A control document's digest and its WebAuthn challenge (base64url of the digest's 32 bytes), for signing it with a passkey",
          requestBody: json({ type: 'object', required: ['doc'], properties: { doc: z.toJSONSchema(controlDocSchema, { unrepresentable: 'any', io: 'input' }) } }),
          responses: { '200': { description: 'digest and challenge', ...json({ type: 'object', properties: { digest: { type: 'string' }, challenge: { type: 'string' } } }) }, ...errors(400, 401) },
        },
      },
      '/v1/grants': { get: { summary: 'Grants, with status (active, expired, revoked) and uses so far', responses: { '200': { description: 'grants' }, ...errors(401) } } },
      '/v1/wallets/{id}/policy': { get: { summary: "The wallet's latest policy", parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { '200': { description: 'policy' }, ...errors(401, 404) } } },
      '/v1/requests': {
        post: {
          security: [],
          summary: "An agent's signed request (authenticated by the agent's signature under an owner-issued grant): signed now, queued for approval, or refused with the policy's reasons",
          requestBody: json({ type: 'object', required: ['request', 'sig'], properties: { request: z.toJSONSchema(agentRequestSchema, { unrepresentable: 'any', io: 'input' }), sig: { type: 'string' }, approvals: { type: 'array' } } }),
          responses: { '200': { description: 'signed: {status, signature, signatures, serializedTransaction?, hash?}' }, '202': { description: 'pending_approval' }, ...errors(400, 401, 403, 409, 429, 502, 503) },
        },
      },
      '/v1/requests/{id}': { get: { security: [], summary: "A request's status and result", parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { '200': { description: 'request' }, ...errors(404) } } },
      '/v1/approvals': { get: { summary: 'Requests waiting for human approval', responses: { '200': { description: 'requests' }, ...errors(401) } } },
      '/v1/approvals/{id}': {
        post: {
          security: [],
          summary: "An approver's signed approve or reject (authenticated by the approver's key in the owner's registry)",
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          requestBody: json({ type: 'object', required: ['approval', 'sig'], properties: { approval: z.toJSONSchema(approvalSchema, { io: 'input' }), sig: { type: 'string' } } }),
          responses: { '200': { description: 'the request (signed at M approvals)' }, ...errors(400, 403, 404, 409) },
        },
      },
      '/v1/public/wallets/{id}': { get: { security: [], summary: "A wallet's public record (id, scheme, publicKey, address, network, threshold, signers, epoch) and the package every holder signed, with the owner's wallet_create order (check with verifyWalletPackage)", parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { '200': { description: 'wallet' }, ...errors(404) } } },
      '/v1/nodes': {
        get: { summary: 'Signer nodes and whether they answer', responses: { '200': { description: 'nodes', ...json({ type: 'array', items: { type: 'object', properties: { id: { type: 'string' }, url: { type: 'string' }, status: { type: 'string', enum: ['up', 'down', 'quarantined'] } } } }) }, ...errors(401) } },
      },
    },
  };
}
