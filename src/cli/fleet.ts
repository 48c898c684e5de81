/** Fleets, devices, credentials, DIDs and device data (issue #5): `fleetkey fleet|device|credential|did|data ...`. */
import { createVerified } from './wallet-create.ts';
import { FleetkeyError } from '../errors.ts';
import { devicePath as sdkDevicePath } from '../sdk/actions/device-path.ts';
import { api, int, need, print, readInput, type Flags } from './common.ts';
import type { CliModule } from './module.ts';

/** Devices per request of `device enroll --count` (the server takes up to 100,000): small enough for a progress line every few seconds. */
const CHUNK = 10_000;

type Fleet = { id: string; scheme: string; threshold: number; signers: number; address: string; issuerDid: string; nextIndex: number; label: string | null; devices?: Record<string, number> };
type Device = { walletId: string; address: string; did: string; deviceDid: string | null; status: string };

/** `wal_….INDEX` → the device's API path (the SDK's), with the CLI's usage line on a bad id. */
function devicePath(walletId: string | undefined, verb: string): string {
  try {
    return sdkDevicePath(walletId ?? '');
  } catch {
    throw new FleetkeyError('validation_failed', `usage: fleetkey device ${verb} WALLET_ID   (a device wallet id: wal_….INDEX)`);
  }
}

const show = (o: Record<string, unknown>) => Object.entries(o).map(([k, v]) => `${k.padEnd(12)} ${typeof v === 'object' && v !== null ? JSON.stringify(v) : v}`).join('\n');

async function enrollMany(flags: Flags, fleet: string, count: number): Promise<void> {
  const dids = flags['device-dids'] === undefined ? undefined : readInput(flags['device-dids'] as string).split(/\s+/).filter(Boolean);
  if (dids && dids.length !== count) throw new FleetkeyError('validation_failed', `--device-dids has ${dids.length} entries, --count is ${count}`);
  // Progress only for a person watching: stderr, and only on a terminal.
  const tty = process.stderr.isTTY && !flags.json;
  const t0 = Date.now();
  const out = { fleet, from: -1, count: 0, enrolled: 0, invalid: [] as number[] };
  for (let done = 0; done < count; ) {
    const n = Math.min(CHUNK, count - done);
    const r = await api<{ from: number; count: number; enrolled: number; invalid: number[] }>('POST', `/v1/fleets/${encodeURIComponent(fleet)}/devices/batch`, {
      count: n,
      ...(dids ? { deviceDids: dids.slice(done, done + n) } : {}),
    });
    if (out.from < 0) out.from = r.from;
    done += n;
    out.count += r.count;
    out.enrolled += r.enrolled;
    out.invalid.push(...r.invalid);
    if (tty) process.stderr.write(`\renrolled ${done.toLocaleString('en')} / ${count.toLocaleString('en')}  (${Math.round(done / Math.max(0.001, (Date.now() - t0) / 1000))} devices/s)`);
  }
  if (tty) process.stderr.write('\n');
  print(flags, out, () => `${out.enrolled} device wallets enrolled in ${fleet} from index ${out.from}${out.invalid.length ? ` (BIP32-invalid, skipped: ${out.invalid.join(', ')})` : ''}`);
}

export const fleetCli: CliModule = {
  nouns: ['fleet', 'device', 'credential', 'did', 'data'],
  options: {
    ...Object.fromEntries(['fleet', 'count', 'device-did', 'device-dids', 'firmware', 'expires', 'reading', 'credential', 'after', 'limit'].map((n) => [n, { type: 'string' as const }])),
    yes: { type: 'boolean' },
  },
  help: `Fleets and devices (one DKG per fleet; device wallets are derived children wal_….INDEX, no DKG)
  fleetkey fleet create --scheme ed25519|ecdsa-secp256k1|secp256k1-schnorr [--threshold T --signers N] [--label L] [--network NET] [--policy FILE]
                                                                     (the fleet policy: every device wallet inherits it)
  fleetkey fleet list | fleet show FLEET
  fleetkey device enroll --fleet FLEET [--device-did did:key:…]      one device (its key generated on the device), or an agent wallet
  fleetkey device enroll --fleet FLEET --count N [--device-dids FILE] many at once (progress on a terminal)
  fleetkey device list --fleet FLEET [--after INDEX] [--limit N] | device show WALLET_ID
  fleetkey device revoke WALLET_ID --yes | device suspend WALLET_ID | device resume WALLET_ID
  fleetkey credential issue WALLET_ID --firmware HEX [--expires ISO]   a FleetDeviceCredential (JWT-VC) signed by the fleet
  fleetkey did resolve DID                                             did:key / did:pkh document
  fleetkey data verify --reading JWS|@file|- --credential JWT|@file     is this signed reading from a trusted device?`,

  async run(noun, verb, args, flags) {
    const fleetFlag = () => need(flags, 'fleet');
    if (noun === 'fleet') {
      if (verb === 'create') {
        // The root wallet's parameters, as `wallet create` takes them.
        const extra: Record<string, unknown> = {};
        if (typeof flags.policy === 'string') extra.policy = JSON.parse(readInput(/^[@-]/.test(flags.policy) ? flags.policy : `@${flags.policy}`));
        // As `wallet create`: an owner-signed order, and the holders' signed package checked before anything is shown.
        const { view: f } = await createVerified<Fleet>(flags, '/v1/fleets', extra);
        print(flags, f, () => `${f.id}  ${f.scheme}  ${f.threshold}-of-${f.signers}\n  issuer DID  ${f.issuerDid}\n  address     ${f.address}\nEnrol devices: fleetkey device enroll --fleet ${f.id} [--count N]`);
        return 0;
      }
      if (verb === 'list') {
        const r = await api<{ fleets: Fleet[] }>('GET', '/v1/fleets');
        print(flags, r.fleets, () => r.fleets.map((f) => `${f.id}  ${f.scheme.padEnd(17)}  ${f.threshold}-of-${f.signers}  next index ${f.nextIndex}${f.label ? `  (${f.label})` : ''}`).join('\n') || '(no fleets)');
        return 0;
      }
      if (verb === 'show') {
        if (!args[0]) throw new FleetkeyError('validation_failed', 'usage: fleetkey fleet show FLEET');
        const f = await api<Fleet>('GET', `/v1/fleets/${encodeURIComponent(args[0])}`);
        print(flags, f, () => show(f));
        return 0;
      }
      return undefined;
    }
    if (noun === 'device') {
      if (verb === 'enroll') {
        if (flags.count !== undefined) {
          const count = int(flags, 'count')!;
          if (count < 1) throw new FleetkeyError('validation_failed', '--count must be at least 1');
          await enrollMany(flags, fleetFlag(), count);
          return 0;
        }
        const d = await api<Device>('POST', `/v1/fleets/${encodeURIComponent(fleetFlag())}/devices`, flags['device-did'] ? { deviceDid: flags['device-did'] } : {});
        print(flags, d, () => `${d.walletId}  ${d.address}\n  wallet DID  ${d.did}\n  device DID  ${d.deviceDid ?? '(none: agent wallet)'}`);
        return 0;
      }
      if (verb === 'list') {
        const q = new URLSearchParams({ ...(flags.after ? { after: flags.after as string } : {}), ...(flags.limit ? { limit: flags.limit as string } : {}) }).toString();
        const r = await api<{ devices: Device[]; next: number | null }>('GET', `/v1/fleets/${encodeURIComponent(fleetFlag())}/devices${q ? `?${q}` : ''}`);
        print(flags, r, () => r.devices.map((d) => `${d.walletId}  ${d.status.padEnd(9)}  ${d.address}`).join('\n') + (r.next !== null ? `\n(more: --after ${r.next})` : ''));
        return 0;
      }
      if (verb === 'show') {
        const d = await api<Device>('GET', devicePath(args[0], verb));
        print(flags, d, () => show(d));
        return 0;
      }
      if (verb === 'revoke' || verb === 'suspend' || verb === 'resume') {
        const path = devicePath(args[0], verb);
        if (verb === 'revoke' && !flags.yes) throw new FleetkeyError('validation_failed', 'revocation is final: repeat with --yes');
        const d = await api<Device>('POST', `${path}/${verb}`);
        print(flags, d, () => `${d.walletId}  ${d.status}`);
        return 0;
      }
      return undefined;
    }
    if (noun === 'credential' && verb === 'issue') {
      const r = await api<{ credential: string }>('POST', `${devicePath(args[0], 'credential issue')}/credential`, {
        firmwareHash: need(flags, 'firmware').replace(/^0x/, '').toLowerCase(),
        ...(flags.expires ? { expiresAt: flags.expires } : {}),
      });
      print(flags, r, () => r.credential);
      return 0;
    }
    if (noun === 'did' && verb === 'resolve') {
      if (!args[0]) throw new FleetkeyError('validation_failed', 'usage: fleetkey did resolve DID');
      const r = await api<{ didDocument: unknown }>('GET', `/v1/dids/${encodeURIComponent(args[0])}`);
      print(flags, r, () => JSON.stringify(r.didDocument, null, 2));
      return 0;
    }
    if (noun === 'data' && verb === 'verify') {
      const r = await api<{ trusted: boolean; reason: string; device: string | null; detail?: string; wallet?: { id: string } }>('POST', '/v1/verify/data', {
        reading: readInput(need(flags, 'reading')),
        credential: readInput(need(flags, 'credential')),
      });
      print(flags, r, () => `${r.trusted ? 'TRUSTED' : 'NOT TRUSTED'}: ${r.reason}${r.detail ? ` (${r.detail})` : ''}\n  device  ${r.device ?? '?'}${r.wallet ? `\n  wallet  ${r.wallet.id}` : ''}`);
      return r.trusted ? 0 : 1;
    }
    return undefined;
  },
};
