/**
 * Committees change, keys stay (issue #11): `fleetkey wallet reshare ID --to NODE,NODE,… [--threshold T]`,
 * and membership changes: `fleetkey node add JOIN_RECORD`, `node retire NODE`, `node replace OLD NEW`,
 * `node jobs`.
 *
 * How a membership change reaches every process: through the cluster manifest, and only through it.
 * It is the one list every process takes its peers' URLs, identity keys and pinned TLS certificates
 * from (src/tls/manifest.ts), and the operator copies it to every host. `node add` writes the new
 * manifest (new clusterId); each process picks it up when restarted with it. The API server is never
 * trusted to tell a signer who its peers are: a server that could push membership could add a
 * signer of its own and have every wallet reshared to it. A node that is retired or replaced stays
 * in the manifest until its wallets have moved (it may have to deal), then the operator drops it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { FleetkeyError } from '../errors.ts';
import { api, int, need, print, type Flags } from './common.ts';
import type { CliModule } from './module.ts';
import { signControlDoc, type WalletReshareDoc } from '../control/index.ts';
import { newId } from '../http/common.ts';
import { ownerSecretIfAny } from './control.ts';

/** How long a reshare order the CLI signs stays valid: a slow DKLs23 move of one wallet, with room for retries. */
const ORDER_TTL_MS = 30 * 60_000;
/** A node job's orders: the job moves wallets one after another, and resumes after a crash (at most a day: MAX_RESHARE_TTL_MS). */
const JOB_ORDER_TTL_MS = 12 * 60 * 60_000;

/**
 * The body of `POST /v1/wallets/:id/reshare`. With the owner key at hand (--owner-key,
 * FLEETKEY_OWNER_KEY_FILE, or `fleetkey dev`'s) the CLI signs the `wallet_reshare` order itself, for
 * the wallet's current epoch, which every dealer and new holder checks; without it, it sends the
 * plain fields and only a server that holds the owner key can act on them.
 */
export async function reshareBody(flags: Flags, walletId: string, to: string[], threshold?: number): Promise<Record<string, unknown>> {
  const owner = ownerSecretIfAny(flags);
  if (!owner) return { to, ...(threshold !== undefined ? { threshold } : {}) };
  const w = await api<{ epoch: number; threshold: number }>('GET', `/v1/wallets/${encodeURIComponent(walletId)}`);
  return { order: signReshareOrder(owner, walletId, w.epoch, to, threshold ?? Math.min(w.threshold, to.length)) };
}

/** The owner's signed order to move `walletId` from `epoch` to `holders` (party order) with `threshold`. */
export function signReshareOrder(owner: Uint8Array, walletId: string, epoch: number, holders: string[], threshold: number, now = Date.now(), ttlMs = ORDER_TTL_MS) {
  const doc: WalletReshareDoc = { kind: 'wallet_reshare', orderId: newId('rso'), walletId, epoch, threshold, holders, issuedAt: now, expiresAt: now + ttlMs };
  return signControlDoc(doc, owner);
}

export const committeeCli: CliModule = {
  nouns: ['wallet', 'node'],
  options: { to: { type: 'string' }, wait: { type: 'boolean' } },
  help: `Committees (same public key and addresses; the old epoch signs until every new holder has agreed)
  fleetkey wallet reshare ID --to NODE,NODE,… [--threshold T]   move a wallet (a fleet root: with all its devices) to new signer nodes
  fleetkey node add JOIN_RECORD [--manifest FILE]               print the manifest with this signer's join record added (copy it to every host, restart each process)
  fleetkey node retire NODE [--wait]                            move every wallet NODE holds to the other holders (a background job)
  fleetkey node replace OLD NEW [--wait]                        move every wallet OLD holds to NEW at OLD's place (OLD may be gone for good)
  fleetkey node jobs [--json]                                   membership jobs: progress and each wallet's outcome
  The owner key (--owner-key) signs one wallet_reshare order per wallet; every dealer and new holder checks it.`,
  async run(noun, verb, args, flags: Flags) {
    if (noun === 'node') return nodeVerb(verb, args, flags);
    if (verb !== 'reshare') return undefined;
    const id = args[0];
    if (!id) throw new FleetkeyError('validation_failed', 'usage: fleetkey wallet reshare ID --to NODE,NODE,… [--threshold T]');
    const to = need(flags, 'to').split(',').map((s) => s.trim()).filter(Boolean);
    const threshold = int(flags, 'threshold');
    const body = await reshareBody(flags, id, to, threshold);
    const w = await api<{ id: string; threshold: number; signers: number; epoch: number; address: string; participants: { index: number; nodeId: string }[] }>(
      'POST',
      `/v1/wallets/${encodeURIComponent(id)}/reshare`,
      body,
    );
    print(flags, w, () => `${w.id}  ${w.threshold}-of-${w.signers}  epoch ${w.epoch}\n  address     ${w.address} (unchanged)\n  holders     ${w.participants.map((p) => p.nodeId).join(', ')}`);
    return 0;
  },
};

interface JobView {
  id: string;
  kind: string;
  node: string;
  replacement?: string;
  status: string;
  progress: { total: number; done: number; failed: number; pending: number };
  wallets: { walletId: string; status: string; attempts: number; epoch?: number; error?: { code: string; message: string } }[];
}

const jobText = (j: JobView) =>
  [
    `${j.id}  ${j.kind} ${j.node}${j.replacement ? ` -> ${j.replacement}` : ''}  ${j.status}  ${j.progress.done}/${j.progress.total} moved, ${j.progress.failed} failed, ${j.progress.pending} pending`,
    ...j.wallets.map((w) => `  ${w.walletId}  ${w.status}${w.epoch !== undefined ? `  epoch ${w.epoch}` : ''}${w.error ? `  ${w.error.code}: ${w.error.message}` : ''}`),
  ].join('\n');

async function nodeVerb(verb: string | undefined, args: string[], flags: Flags): Promise<number | undefined> {
  if (verb === 'jobs') {
    const { jobs } = await api<{ jobs: JobView[] }>('GET', '/v1/node-jobs');
    print(flags, jobs, () => (jobs.length ? jobs.map(jobText).join('\n') : 'no node jobs'));
    return 0;
  }
  if (verb === 'add') {
    const file = args[0];
    if (!file) throw new FleetkeyError('validation_failed', 'usage: fleetkey node add JOIN_RECORD [--manifest FILE]');
    const { assembleManifest, readManifest } = await import('../tls/manifest.ts');
    const manifest = readManifest(manifestFile(flags));
    let record: unknown;
    try {
      record = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      throw new FleetkeyError('validation_failed', `${file}: not a JSON join record (what fleetkey signer init printed)`);
    }
    // assembleManifest checks the record and refuses a node id or URL listed twice.
    process.stdout.write(JSON.stringify(assembleManifest([...manifest.nodes, record]), null, 2) + '\n');
    return 0;
  }
  if (verb !== 'retire' && verb !== 'replace') return undefined;
  const [node, replacement] = args;
  if (!node || (verb === 'replace' && !replacement)) throw new FleetkeyError('validation_failed', `usage: fleetkey node ${verb === 'retire' ? 'retire NODE' : 'replace OLD NEW'}`);
  const owner = ownerSecretIfAny(flags);
  if (!owner) throw new FleetkeyError('owner_authorization_required', 'node retire / replace signs one wallet_reshare order per wallet: pass --owner-key (or set FLEETKEY_OWNER_KEY_FILE)');
  const orders = [];
  for (let after = ''; ; ) {
    const page = await api<{ wallets: { id: string; epoch: number; threshold: number; participants: { nodeId: string }[] }[]; next: string | null }>('GET', `/v1/wallets?limit=1000${after ? `&after=${encodeURIComponent(after)}` : ''}`);
    for (const w of page.wallets) {
      const ids = w.participants.map((p) => p.nodeId);
      if (!ids.includes(node)) continue;
      const to = ids.flatMap((n) => (n !== node ? [n] : verb === 'replace' ? [replacement!] : []));
      if (verb === 'retire' && to.length < 2) throw new FleetkeyError('validation_failed', `wallet ${w.id} would keep ${to.length} holder(s): add a node first, or replace ${node}`, { details: { walletId: w.id } });
      orders.push(signReshareOrder(owner, w.id, w.epoch, to, Math.min(w.threshold, to.length), Date.now(), JOB_ORDER_TTL_MS));
    }
    if (!page.next) break;
    after = page.next;
  }
  let job = await api<JobView>('POST', '/v1/node-jobs', { kind: verb, node, ...(replacement ? { replacement } : {}), orders });
  while (flags.wait && job.status === 'running') {
    await new Promise((r) => setTimeout(r, 1000));
    job = await api<JobView>('GET', `/v1/node-jobs/${job.id}`);
  }
  print(flags, job, () => jobText(job));
  return flags.wait && job.status !== 'done' ? 1 : 0;
}

/**
 * The manifest `node add` extends: --manifest FILE, else ./cluster-manifest.json (what the README's
 * `fleetkey cluster manifest … > cluster-manifest.json` writes), else .fleetkey/cluster-manifest.json
 * (`fleetkey dev`'s).
 */
function manifestFile(flags: Flags): string {
  if (typeof flags.manifest === 'string') return flags.manifest;
  const found = ['cluster-manifest.json', '.fleetkey/cluster-manifest.json'].find((f) => existsSync(f));
  if (!found) throw new FleetkeyError('validation_failed', 'no manifest: give --manifest FILE (none at ./cluster-manifest.json or .fleetkey/cluster-manifest.json)', { details: { field: '--manifest' } });
  return found;
}
