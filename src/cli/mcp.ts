/**
 * `fleetkey mcp`: fleetkey's tools for LLM agents over the Model Context Protocol (src/sdk/mcp.ts),
 * on stdio (default: stdout carries only JSON-RPC, notes go to stderr) or Streamable HTTP
 * (`--http HOST:PORT`, every request must carry `Authorization: Bearer <FLEETKEY_MCP_TOKEN>`).
 * It acts as an agent: its own key file and the owner's grant, never the admin token.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import { FleetkeyError } from '../errors.ts';
import { readSecretKeyFile } from '../control/owner.ts';
import { secretEquals } from '../http/common.ts';
import { createAgent } from '../sdk/agent.ts';
import type { FleetkeyMcpOptions } from '../sdk/mcp.ts';
import type { Flags } from './common.ts';
import type { CliModule } from './module.ts';

const HELP = `MCP server for LLM agents (acts as an agent: its own key and the owner's grant)
  fleetkey mcp [--url URL] [--agent-key FILE] [--grant ID] [--key-type ed25519|p256] [--rpc eip155:8453=URL ...] [--http HOST:PORT]
      (or FLEETKEY_URL, FLEETKEY_AGENT_KEY_FILE, FLEETKEY_GRANT; stdio by default; with --http, Streamable HTTP at /mcp
       behind the bearer token FLEETKEY_MCP_TOKEN, or a fresh one printed on stderr)`;

function mcpOptions(flags: Flags): FleetkeyMcpOptions {
  const url = (flags.url as string | undefined) ?? process.env.FLEETKEY_URL;
  const keyFile = (flags['agent-key'] as string | undefined) ?? process.env.FLEETKEY_AGENT_KEY_FILE;
  const grantId = (flags.grant as string | undefined) ?? process.env.FLEETKEY_GRANT;
  if (!url) throw new FleetkeyError('bad_request', 'no server: pass --url or set FLEETKEY_URL');
  if (!keyFile) throw new FleetkeyError('bad_request', 'no agent key: pass --agent-key FILE or set FLEETKEY_AGENT_KEY_FILE');
  if (!grantId) throw new FleetkeyError('bad_request', 'no grant: pass --grant ID or set FLEETKEY_GRANT');
  const keyType = (flags['key-type'] as string | undefined) ?? 'ed25519';
  if (keyType !== 'ed25519' && keyType !== 'p256') throw new FleetkeyError('validation_failed', '--key-type must be ed25519 or p256');
  const rpc: Record<string, string> = {};
  for (const r of (flags.rpc as string[] | undefined) ?? []) {
    const m = /^(eip155:\d{1,12})=(https?:\/\/\S+)$/.exec(r);
    if (!m) throw new FleetkeyError('validation_failed', `--rpc ${r}: expected eip155:CHAIN_ID=http(s)://…`);
    rpc[m[1]] = m[2];
  }
  const agent = createAgent({ url: url.replace(/\/$/, ''), grantId, secretKey: readSecretKeyFile(keyFile, 'agent key'), keyType });
  return { agent, rpc };
}

async function serveHttp(options: FleetkeyMcpOptions, listen: string): Promise<void> {
  const m = /^(.+):(\d{1,5})$/.exec(listen);
  if (!m) throw new FleetkeyError('validation_failed', `--http ${listen}: expected HOST:PORT`);
  let token = process.env.FLEETKEY_MCP_TOKEN;
  if (!token) {
    token = bytesToHex(randomBytes(24));
    process.stderr.write(`fleetkey mcp: bearer token ${token} (set FLEETKEY_MCP_TOKEN to choose one)\n`);
  }
  const expected = token;
  // Loaded here, not at the top: every other CLI verb starts without the MCP SDK.
  const { StreamableHTTPServerTransport } = await import('@modelcontextprotocol/sdk/server/streamableHttp.js');
  const { createFleetkeyMcpServer } = await import('../sdk/mcp.ts');
  const http = createServer((req: IncomingMessage, res: ServerResponse) => {
    const auth = req.headers.authorization ?? '';
    const given = /^Bearer (.+)$/.exec(auth)?.[1];
    if (!given || !secretEquals(given, expected)) {
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer' }).end(JSON.stringify({ error: { code: 'unauthorized', message: 'missing or wrong bearer token' } }));
      req.resume();
      return;
    }
    if (new URL(req.url ?? '/', 'http://x').pathname !== '/mcp') {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'not_found', message: 'the MCP endpoint is /mcp' } }));
      req.resume();
      return;
    }
    // Stateless: a server and a transport per HTTP request, so no session outlives its request.
    const server = createFleetkeyMcpServer(options);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    server
      .connect(transport)
      .then(() => transport.handleRequest(req, res))
      .catch((e: unknown) => {
        process.stderr.write(`fleetkey mcp: ${e instanceof Error ? e.message : String(e)}\n`);
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'internal', message: 'MCP request failed' } }));
      });
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(Number(m[2]), m[1].replace(/^\[|\]$/g, ''), () => resolve());
  });
  const a = http.address();
  process.stderr.write(`fleetkey mcp: Streamable HTTP on http://${m[1]}:${typeof a === 'object' && a ? a.port : m[2]}/mcp\n`);
  const stop = () => http.close(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  await new Promise(() => undefined);
}

export const mcpCli: CliModule = {
  nouns: ['mcp'],
  options: {
    url: { type: 'string' },
    http: { type: 'string' },
    rpc: { type: 'string', multiple: true },
  },
  help: HELP,
  async run(_noun, verb, _args, flags) {
    if (verb !== undefined) return undefined;
    const options = mcpOptions(flags);
    if (flags.http) {
      await serveHttp(options, flags.http as string);
      return 0;
    }
    const { StdioServerTransport } = await import('@modelcontextprotocol/sdk/server/stdio.js');
    const { createFleetkeyMcpServer } = await import('../sdk/mcp.ts');
    const server = createFleetkeyMcpServer(options);
    const transport = new StdioServerTransport();
    const closed = new Promise<void>((resolve) => (transport.onclose = resolve));
    await server.connect(transport);
    process.stdin.once('end', () => void server.close());
    await closed;
    return 0;
  },
};
