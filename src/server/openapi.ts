/**
 * The OpenAPI 3.1 description the server serves at /openapi.json. Request bodies come from the
 * same zod schemas the routes validate with (zod's JSON Schema export), so they cannot drift.
 */
import { z } from 'zod';
import { createWalletSchema, signSchema } from './schemas.ts';
import { ethMessageSchema, ethTransactionSchema, ethTypedDataSchema } from './ethereum.ts';

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
      '/v1/nodes': {
        get: { summary: 'Signer nodes and whether they answer', responses: { '200': { description: 'nodes', ...json({ type: 'array', items: { type: 'object', properties: { id: { type: 'string' }, url: { type: 'string' }, status: { type: 'string', enum: ['up', 'down', 'quarantined'] } } } }) }, ...errors(401) } },
      },
    },
  };
}
