/**
 * The `fleetkey` command: processes (`dev`, `server`, `signer`) and every operator verb over the
 * HTTP API. Noun-verb; `--json` keeps stdout pure JSON for scripts; errors are
 * `{"error":{...}}` with exit code 1 for local errors and 2 for errors the server returned.
 * The server is found from FLEETKEY_URL and FLEETKEY_TOKEN, else ./.fleetkey/cluster.json.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { resolve } from 'node:path';
import { FleetkeyError } from '../errors.ts';
import type { CliModule } from './module.ts';
import { MODULES } from './modules.ts';
import { api, connection, int, need, print, processOptions, readInput, RemoteError, serverFetch, type Flags } from './common.ts';

const HELP = `fleetkey — threshold keys and policy signing for agents and device fleets

Processes
  fleetkey dev [--data DIR] [--port N] [--signers 3] [--threshold 2]   local cluster (server + signer nodes)
  fleetkey server --data DIR [--port N] [--db URL] [--manifest F] [--tls-cert FILE --tls-key FILE] [--insecure-http]
                                                                        API server (signer links: mutual TLS with --manifest)
  fleetkey signer --data DIR [--port N] [--db URL] [--manifest F]       one signer node (mutual TLS with --manifest)
                  [--kek pkcs11:…]                                     (KEK in an HSM; default FLEETKEY_KEK or DATA/kek.key)

Across machines (README "Deploy across machines")
  fleetkey signer init --data DIR --name NAME --advertise https://HOST:PORT [--db URL]
                                               make this node's identity and TLS key here; print its public join record
  fleetkey server init --data DIR --name NAME [--advertise https://HOST:PORT]
  fleetkey cluster manifest FILE... > cluster-manifest.json
                                               check the join records and assemble the manifest every process pins

Wallets and signing (server from FLEETKEY_URL/FLEETKEY_TOKEN or ./.fleetkey/cluster.json)
  fleetkey wallet create --scheme ed25519|secp256k1-schnorr|ecdsa-secp256k1 [--threshold T --signers N] [--label L] [--network NET] [--owner-key FILE]
      (NET: Bitcoin mainnet (default), testnet, regtest; Solana mainnet-beta (default), devnet, testnet; fixed for the wallet's life.
       The owner key signs the wallet_create order; the address is shown only after the holders' signed package is checked
       against the node keys pinned in FLEETKEY_NODE_KEYS (the cluster's peers.json) or .fleetkey/cluster.json)
  fleetkey wallet list
  fleetkey wallet show ID
  fleetkey wallet refresh ID
  fleetkey sign --wallet ID --message HEX      (HEX, '-' for stdin, or @file; Ed25519 / BIP340)
  fleetkey sign --wallet ID --hash HEX32       (a 32-byte digest; ecdsa-secp256k1, r||s||v)
  fleetkey node list
  fleetkey policy simulate --policy FILE --kind KIND --payload HEX|@file|- [--chain-id N] [--from ADDR] [--now ISO]
                                               (offline: decode as a signer would, evaluate, explain; KIND: evm_transaction,
                                                evm_message, evm_typed_data, solana_transaction, solana_message, bitcoin_psbt,
                                                bitcoin_message (both messages need --from), raw_message (owner only: agents are refused))
  fleetkey audit export > audit.jsonl           (the server's hash-chained log, sealed by a signed checkpoint)
  fleetkey audit verify FILE [--key HEX]       (offline; names the first broken entry; exit 1 if broken)

Every verb takes --json; --ca FILE (or FLEETKEY_CA) trusts a self-signed server certificate.`;

const OPTIONS: NonNullable<ParseArgsConfig['options']> = {
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  data: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  db: { type: 'string' },
  'db-schema': { type: 'string' },
  signers: { type: 'string' },
  threshold: { type: 'string' },
  scheme: { type: 'string' },
  label: { type: 'string' },
  network: { type: 'string' },
  wallet: { type: 'string' },
  message: { type: 'string' },
  hash: { type: 'string' },
  key: { type: 'string', multiple: true },
  policy: { type: 'string' },
  kind: { type: 'string' },
  payload: { type: 'string' },
  'chain-id': { type: 'string' },
  from: { type: 'string' },
  now: { type: 'string' },
  quiet: { type: 'boolean' },
  name: { type: 'string' },
  advertise: { type: 'string' },
  manifest: { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'insecure-http': { type: 'boolean' },
  ca: { type: 'string' },
};

/**
 * Parses the command line strictly with the options of the modules that serve its noun, loaded for
 * it. The noun comes from a lenient first pass; if an option of an unloaded module came before the
 * noun and hid it, every module is loaded and the line parsed again.
 */
async function parse(argv: string[]): Promise<{ flags: Flags; positionals: string[]; modules: CliModule[] }> {
  const first = parseArgs({ args: argv, allowPositionals: true, strict: false, options: OPTIONS });
  const noun = first.positionals[0];
  const all = !noun || first.values.help === true;
  for (const wanted of all ? [MODULES] : [MODULES.filter((m) => m.nouns.includes(noun)), MODULES]) {
    const modules = await Promise.all(wanted.map((m) => m.load()));
    const options = { ...OPTIONS, ...(Object.assign({}, ...modules.map((m) => m.options)) as typeof OPTIONS) };
    try {
      const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true, options });
      if (wanted === MODULES || positionals[0] === noun) return { flags: values as Flags, positionals, modules };
    } catch (e) {
      if (wanted === MODULES) throw e;
    }
  }
  throw new Error('unreachable');
}

async function main(argv: string[]): Promise<number> {
  const { flags, positionals, modules } = await parse(argv);
  // --ca FILE: trust this PEM (e.g. a self-signed server certificate) for the server's public API.
  if (typeof flags.ca === 'string') process.env.FLEETKEY_CA = flags.ca;
  const [noun, verb, arg] = positionals;
  if (flags.help || !noun) {
    process.stdout.write([HELP, ...modules.map((m) => m.help).filter(Boolean)].join('\n\n') + '\n');
    return 0;
  }
  // Several modules may share a noun (`wallet reshare`, `wallet export`): the first that knows the verb runs it.
  for (const mod of modules.filter((m) => m.nouns.includes(noun))) {
    const code = await mod.run(noun, verb, positionals.slice(2), flags);
    if (code !== undefined) return code;
  }
  switch (noun) {
    case 'dev': {
      const dataDir = resolve((flags.data as string) ?? '.fleetkey');
      const { LocalCluster } = await import('./cluster.ts');
      const cluster = await LocalCluster.start({
        dataDir,
        port: int(flags, 'port') ?? 7300,
        signers: int(flags, 'signers') ?? 3,
        threshold: int(flags, 'threshold') ?? 2,
        quiet: flags.quiet as boolean | undefined,
        onExit: (name, code, signal) => process.stderr.write(`fleetkey dev: ${name} exited (${signal ?? code})\n`),
      });
      const t = int(flags, 'threshold') ?? 2;
      const info = { ...cluster.info, threshold: t, dataDir };
      if (flags.json) process.stdout.write(JSON.stringify(info) + '\n');
      else
        process.stdout.write(
          `fleetkey dev: ${cluster.info.signers.length} signer nodes and a server are running.\n\n  URL          ${cluster.info.url}\n  console      ${cluster.info.url.replace('//127.0.0.1:', '//localhost:')}/console (sign in with the admin token; passkeys need the name localhost, not an IP)\n  admin token  ${cluster.info.token}\n  data         ${dataDir} (cluster.json)\n  owner key    ${cluster.info.ownerKey} (signs policies, grants and revocations; keep it offline in production)\n\n` +
            `Try:  fleetkey wallet create --scheme ed25519 --threshold ${t} --signers ${cluster.info.signers.length}\nStop with Ctrl-C.\n`,
        );
      const stop = async () => {
        await cluster.stop();
        process.exit(0);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
      await new Promise(() => undefined);
      return 0;
    }
    case 'cluster': {
      if (verb === 'manifest') {
        const files = positionals.slice(2);
        if (!files.length) throw new FleetkeyError('validation_failed', 'usage: fleetkey cluster manifest FILE... (the join records `signer init` / `server init` printed)');
        const { assembleManifest } = await import('../tls/manifest.ts');
        const records = files.map((f) => {
          try {
            return JSON.parse(readInput(f === '-' ? '-' : `@${f}`)) as unknown;
          } catch {
            throw new FleetkeyError('validation_failed', `${f}: not a JSON join record`);
          }
        });
        process.stdout.write(JSON.stringify(assembleManifest(records), null, 2) + '\n');
        return 0;
      }
      break;
    }
    case 'server': {
      if (verb === 'init') {
        const { initServer } = await import('../tls/init.ts');
        process.stdout.write(JSON.stringify(await initServer({ dataDir: need(flags, 'data'), name: need(flags, 'name'), advertise: flags.advertise as string | undefined }), null, 2) + '\n');
        return 0;
      }
      if (verb !== undefined) break;
      watchParent();
      const { runServer } = await import('../server/app.ts');
      drainOnSignal(await runServer(processOptions(flags, 7300)));
      await new Promise(() => undefined);
      return 0;
    }
    case 'signer': {
      if (verb === 'init') {
        const { initSigner } = await import('../tls/init.ts');
        const { pkcs11FromFlags } = await import('../signer/pkcs11.ts');
        const o = processOptions(flags, 0);
        process.stdout.write(JSON.stringify(await initSigner({ dataDir: o.dataDir, name: need(flags, 'name'), advertise: need(flags, 'advertise'), db: o.db, dbSchema: o.dbSchema, pkcs11: pkcs11FromFlags(flags) }), null, 2) + '\n');
        return 0;
      }
      if (verb !== undefined) break;
      watchParent();
      const { runSigner } = await import('../signer/app.ts');
      const { pkcs11FromFlags } = await import('../signer/pkcs11.ts');
      drainOnSignal(await runSigner({ ...processOptions(flags, 0), pkcs11: pkcs11FromFlags(flags) }));
      await new Promise(() => undefined);
      return 0;
    }
    case 'wallet': {
      if (verb === 'create') {
        // The owner orders the wallet; the address is shown only once the holders' signed package checks out (src/cli/wallet-create.ts).
        const { createVerified } = await import('./wallet-create.ts');
        const { view: w, verified: v } = await createVerified<{ id: string }>(flags, '/v1/wallets');
        print(flags, w, () => `${v.id}  ${v.scheme}  ${v.threshold}-of-${v.signers}${v.network ? `  ${v.network}` : ''}\n  public key  ${v.publicKey}\n  address     ${v.address}\n  (checked: signed by every holder ${v.holders.join(', ')})`);
        return 0;
      }
      if (verb === 'list') {
        const r = await api<{ wallets: { id: string; scheme: string; threshold: number; signers: number; address: string; label: string | null }[] }>('GET', '/v1/wallets');
        print(flags, r.wallets, () => r.wallets.map((w) => `${w.id}  ${w.scheme.padEnd(17)}  ${w.threshold}-of-${w.signers}  ${w.address}${w.label ? `  (${w.label})` : ''}`).join('\n') || '(no wallets)');
        return 0;
      }
      if (verb === 'show' || verb === 'refresh') {
        if (!arg) throw new FleetkeyError('validation_failed', `usage: fleetkey wallet ${verb} ID`);
        const w = await api<Record<string, unknown>>(verb === 'show' ? 'GET' : 'POST', `/v1/wallets/${encodeURIComponent(arg)}${verb === 'refresh' ? '/refresh' : ''}`);
        print(flags, w, () => Object.entries(w).map(([k, v]) => `${k.padEnd(12)} ${typeof v === 'object' ? JSON.stringify(v) : v}`).join('\n'));
        return 0;
      }
      break;
    }
    case 'sign': {
      // --message HEX signs bytes (ed25519, secp256k1-schnorr); --hash HEX32 signs a digest (ecdsa-secp256k1).
      const body = flags.hash !== undefined ? { hash: readInput(need(flags, 'hash')).replace(/^0x/, '') } : { message: readInput(need(flags, 'message')).replace(/^0x/, '') };
      const r = await api<{ signature: string }>('POST', `/v1/wallets/${encodeURIComponent(need(flags, 'wallet'))}/sign`, body);
      print(flags, { signature: r.signature }, () => r.signature);
      return 0;
    }
    case 'audit': {
      if (verb === 'export') {
        const { url, token } = connection();
        const res = await serverFetch()(url + '/v1/audit', { headers: { authorization: `Bearer ${token}` } }).catch(() => {
          throw new FleetkeyError('unreachable', `cannot reach the server at ${url}`);
        });
        if (!res.ok) throw new RemoteError((await res.json()) as never);
        process.stdout.write(await res.text());
        return 0;
      }
      if (verb === 'verify') {
        // Offline: needs only the exported file (and, to pin the signer, --key HEX).
        if (!arg) throw new FleetkeyError('validation_failed', 'usage: fleetkey audit verify FILE [--key HEX]');
        const { verifyLog } = await import('../audit/index.ts');
        const r = verifyLog(readInput(arg === '-' ? '-' : `@${arg}`) + '\n', { trustedKeys: flags.key as string[] | undefined });
        const out = { ok: r.ok, entries: r.entries.length, head: r.head, sealedThrough: r.sealedThrough, checkpoints: r.checkpoints.length, ...(r.firstBroken ? { firstBroken: r.firstBroken } : {}) };
        print(flags, out, () =>
          r.ok ? `ok: ${out.entries} entries, sealed through seq ${r.sealedThrough} by ${out.checkpoints} checkpoint(s)` : `BROKEN at line ${r.firstBroken!.line}${r.firstBroken!.seq !== undefined ? ` (seq ${r.firstBroken!.seq})` : ''}: ${r.firstBroken!.reason}`,
        );
        return r.ok ? 0 : 1;
      }
      break;
    }
    case 'policy': {
      if (verb === 'simulate') {
        // Offline: decode the payload as a signer would, evaluate the policy, explain. No signing.
        const { decode } = await import('../chains/index.ts');
        const { validatePolicy, simulate, NO_USAGE } = await import('../policy/index.ts');
        const policy = validatePolicy(readInput(need(flags, 'policy').startsWith('@') || flags.policy === '-' ? need(flags, 'policy') : `@${need(flags, 'policy')}`));
        const raw = readInput(need(flags, 'payload'));
        const payload = /^\s*[[{]/.test(raw) ? JSON.parse(raw) : raw;
        const now = flags.now ? Date.parse(flags.now as string) : Date.now();
        if (Number.isNaN(now)) throw new FleetkeyError('validation_failed', '--now must be an ISO date');
        const decoded = decode(need(flags, 'kind') as never, payload, { ...(flags['chain-id'] ? { chainId: flags['chain-id'] as string } : {}), ...(flags.from ? { from: flags.from as string } : {}) });
        // Offline, with no usage: the fleet id only names the fleet-wide counters under "Would reserve".
        const sim = simulate(policy, decoded.action, { now, usage: NO_USAGE, fleet: 'FLEET' });
        // The policy's answer is for agents; whatever it says, an agent never has the raw kinds signed.
        const rawKind = ['raw_message', 'raw_hash'].includes(flags.kind as string) ? 'an agent request of this kind is refused (raw_signing_forbidden): raw signing is for the owner only' : undefined;
        const out = { decision: sim.decision, action: decoded.action, explanation: sim.explanation, ...(rawKind ? { agent: rawKind } : {}) };
        process.stdout.write((flags.json ? JSON.stringify(out, (_, v) => (typeof v === 'bigint' ? v.toString() : v)) : sim.explanation + (rawKind ? `\n${rawKind}` : '')) + '\n');
        return 0;
      }
      break;
    }
    case 'node': {
      if (verb === 'list') {
        const r = await api<{ id: string; url: string; status: string }[]>('GET', '/v1/nodes');
        print(flags, r, () => r.map((n) => `${n.id}  ${n.status.padEnd(4)}  ${n.url}`).join('\n'));
        return 0;
      }
      break;
    }
  }
  throw new FleetkeyError('bad_request', `unknown command: ${positionals.join(' ')} (fleetkey --help)`);
}

/**
 * SIGTERM (and SIGINT) drains a server or signer: no new requests, the ones in flight finish, then
 * exit 0 (1 if some were still running after FLEETKEY_DRAIN_TIMEOUT_MS, default 30 s). A second
 * signal changes nothing: `fleetkey dev` sends SIGTERM to children that Ctrl-C already reached.
 */
function drainOnSignal(proc: { close(timeoutMs?: number): Promise<boolean> }): void {
  let draining = false;
  const drain = () => {
    if (draining) return;
    draining = true;
    proc.close(Number(process.env.FLEETKEY_DRAIN_TIMEOUT_MS ?? 30_000) || 30_000).then(
      (drained) => exitWhenFlushed(drained ? 0 : 1),
      () => exitWhenFlushed(1),
    );
  };
  process.on('SIGTERM', drain);
  process.on('SIGINT', drain);
}

/** Children of `fleetkey dev` exit when it dies, even by SIGKILL, instead of lingering. */
function watchParent(): void {
  if (!process.env.FLEETKEY_EXIT_WITH_PARENT) return;
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.exit(0);
  }, 1000).unref();
}

/**
 * Ends the process with `code` once everything written to stdout and stderr has left the process.
 * process.exit() at once would drop what a pipe has not yet taken (it holds 64 KiB; Node queues the
 * rest), so `fleetkey device list --json | jq` got a cut-off answer (issue #17). A write's callback
 * runs after every earlier write to that stream is done, so an empty write marks the end. The exit
 * stays explicit (not process.exitCode) so no leftover handle, such as an idle keep-alive socket,
 * can hold the command open.
 */
async function exitWhenFlushed(code: number): Promise<never> {
  await Promise.all([process.stdout, process.stderr].map((s) => new Promise<void>((resolve) => s.write('', () => resolve()))));
  process.exit(code);
}

// A reader that went away (EPIPE, as in `fleetkey … | head`) cannot be written to: nothing more can
// be delivered, and the pending writes' callbacks still run (with the error), so the exit goes ahead.
for (const s of [process.stdout, process.stderr]) s.on('error', () => undefined);

const json = process.argv.includes('--json');
main(process.argv.slice(2)).then(
  (code) => exitWhenFlushed(code),
  (e: unknown) => {
    const remote = e instanceof RemoteError;
    const body = remote
      ? (e as RemoteError).body
      : e instanceof FleetkeyError
        ? e.toJSON()
        : { error: { code: (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') ? 'bad_request' : 'internal', message: (e as Error).message } };
    if (json) process.stdout.write(JSON.stringify(body) + '\n');
    else process.stderr.write(`fleetkey: ${body.error.code}: ${body.error.message}\n`);
    return exitWhenFlushed(remote ? 2 : 1);
  },
);
