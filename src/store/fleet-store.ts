/**
 * The server's fleet state: fleets (a pointer to the root wallet from one DKG, the issuer DID and
 * the next free child index), devices (one compact row each), the fleet-signed status list
 * credentials currently published, recorded device readings and the replay log.
 *
 * A device row is what a device costs at rest: the fleet's small integer, the child index, the
 * derived child public key (base64url, 32–33 bytes), the device key as its did:key multibase id
 * (which also says the key type; null for an agent wallet enrolled without a device key), the
 * status, the status sequence number and the enrolment time. On SQLite the table is WITHOUT ROWID
 * (the primary key is the row), so nothing else is stored per device; firmware hashes and
 * credentials are not stored: a credential is issued on request and kept by the device.
 */
import type { Db, Param, Queryable, Row } from './db.ts';

export type DeviceStatus = 'active' | 'suspended' | 'revoked';
const STATUS_CODE: Record<DeviceStatus, number> = { active: 0, suspended: 1, revoked: 2 };
const STATUS_NAME: DeviceStatus[] = ['active', 'suspended', 'revoked'];

const devicesTable = (kind: Db['kind']) =>
  `CREATE TABLE fleet_devices (
     fleet INTEGER NOT NULL, idx INTEGER NOT NULL, pk TEXT NOT NULL, dk TEXT, st INTEGER NOT NULL, sq INTEGER NOT NULL, at BIGINT NOT NULL,
     PRIMARY KEY (fleet, idx))${kind === 'sqlite' ? ' WITHOUT ROWID' : ''}`;

export const fleetMigrations = (kind: Db['kind']) => [
  `CREATE TABLE fleets (
     id TEXT PRIMARY KEY, num INTEGER NOT NULL UNIQUE, scheme TEXT NOT NULL, label TEXT, issuer_did TEXT NOT NULL,
     status_base TEXT NOT NULL, next_index INTEGER NOT NULL, created_at BIGINT NOT NULL);
   ${devicesTable(kind)};
   CREATE UNIQUE INDEX fleet_devices_dk ON fleet_devices (dk) WHERE dk IS NOT NULL;
   CREATE TABLE fleet_status_lists (
     fleet TEXT NOT NULL, purpose TEXT NOT NULL, k INTEGER NOT NULL, version INTEGER NOT NULL, jwt TEXT NOT NULL, issued_at BIGINT NOT NULL,
     PRIMARY KEY (fleet, purpose, k));
   CREATE TABLE fleet_readings (
     id TEXT PRIMARY KEY, fleet TEXT NOT NULL, idx INTEGER NOT NULL, device TEXT NOT NULL, ts BIGINT NOT NULL, nonce TEXT NOT NULL,
     data TEXT NOT NULL, source TEXT NOT NULL, received_at BIGINT NOT NULL);
   CREATE INDEX fleet_readings_by_fleet ON fleet_readings (fleet, received_at, id);
   CREATE TABLE fleet_seen (key TEXT PRIMARY KEY, expires_at BIGINT NOT NULL)`,
];

export interface FleetRecord {
  id: string;
  num: number;
  scheme: string;
  label: string | null;
  issuerDid: string;
  /** Absolute URL prefix of the fleet's status lists: `${statusBase}/${purpose}/${k}`. */
  statusBase: string;
  nextIndex: number;
  createdAt: number;
}

export interface DeviceRecord {
  fleet: string;
  index: number;
  /** Derived child public key (hex). */
  publicKey: string;
  /** did:key of the device key, or null (an agent wallet). */
  deviceDid: string | null;
  status: DeviceStatus;
  /** Sequence number of the last wallet_status document sent for this device (0: none). */
  statusSeq: number;
  enrolledAt: number;
}

/** A new device row: index, derived key bytes, device did:key (or null), enrolment time. */
export interface NewDevice {
  index: number;
  publicKey: Uint8Array;
  deviceDid: string | null;
}

export interface ReadingRecord {
  id: string;
  fleet: string;
  index: number;
  device: string;
  ts: number;
  nonce: string;
  data: unknown;
  source: string;
  receivedAt: number;
}

/** Rows per multi-row INSERT: 5 parameters each, far below SQLite's and PostgreSQL's limits. */
const INSERT_ROWS = 500;

const b64 = {
  enc: (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url'),
  hex: (s: string) => Buffer.from(s, 'base64url').toString('hex'),
};

const DID_KEY = 'did:key:';

export class FleetStore {
  constructor(readonly db: Db) {}

  async init(): Promise<void> {
    await this.db.migrate('fleets', fleetMigrations(this.db.kind));
  }

  async createFleet(f: Omit<FleetRecord, 'num' | 'nextIndex'>): Promise<FleetRecord> {
    return this.db.tx(async (q) => {
      const max = await q.all(`SELECT COALESCE(MAX(num), 0) AS m FROM fleets`);
      const num = Number(max[0].m) + 1;
      await q.run(`INSERT INTO fleets (id, num, scheme, label, issuer_did, status_base, next_index, created_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $7)`, [
        f.id,
        num,
        f.scheme,
        f.label,
        f.issuerDid,
        f.statusBase,
        f.createdAt,
      ]);
      return { ...f, num, nextIndex: 0 };
    });
  }

  async getFleet(id: string): Promise<FleetRecord | undefined> {
    const r = await this.db.all(`SELECT * FROM fleets WHERE id = $1`, [id]);
    return r[0] ? fleetOf(r[0]) : undefined;
  }

  async listFleets(limit: number, after = ''): Promise<FleetRecord[]> {
    return (await this.db.all(`SELECT * FROM fleets WHERE id > $1 ORDER BY id LIMIT $2`, [after, limit])).map(fleetOf);
  }

  /** Hands out `count` consecutive child indexes (one atomic statement, so concurrent callers never share one); answers the first. */
  async reserveIndexes(fleetId: string, count: number): Promise<number> {
    const r = await this.db.all(`UPDATE fleets SET next_index = next_index + $1 WHERE id = $2 RETURNING next_index`, [count, fleetId]);
    return Number(r[0].next_index) - count;
  }

  /**
   * Inserts device rows in one transaction (multi-row INSERTs). A device key already enrolled
   * anywhere makes the whole call fail (unique index), so nothing is half-written.
   */
  async insertDevices(fleet: FleetRecord, devices: readonly NewDevice[], enrolledAt: number): Promise<void> {
    await this.db.tx(async (q) => {
      for (let i = 0; i < devices.length; i += INSERT_ROWS) await insertRows(q, fleet.num, devices.slice(i, i + INSERT_ROWS), enrolledAt);
    });
  }

  async getDevice(fleet: FleetRecord, index: number): Promise<DeviceRecord | undefined> {
    const r = await this.db.all(`SELECT * FROM fleet_devices WHERE fleet = $1 AND idx = $2`, [fleet.num, index]);
    return r[0] ? deviceOf(fleet.id, r[0]) : undefined;
  }

  /** The device enrolled with this device key, and its fleet. */
  async deviceByDid(deviceDid: string): Promise<{ fleet: FleetRecord; device: DeviceRecord } | undefined> {
    if (!deviceDid.startsWith(DID_KEY)) return undefined;
    const r = await this.db.all(
      `SELECT d.*, f.id AS f_id, f.num AS f_num, f.scheme AS f_scheme, f.label AS f_label, f.issuer_did AS f_issuer_did, f.status_base AS f_status_base,
              f.next_index AS f_next_index, f.created_at AS f_created_at
       FROM fleet_devices d JOIN fleets f ON f.num = d.fleet WHERE d.dk = $1`,
      [deviceDid.slice(DID_KEY.length)],
    );
    if (!r[0]) return undefined;
    const f: Row = {};
    for (const [k, v] of Object.entries(r[0])) if (k.startsWith('f_')) f[k.slice(2)] = v;
    const fleet = fleetOf(f);
    return { fleet, device: deviceOf(fleet.id, r[0]) };
  }

  async listDevices(fleet: FleetRecord, limit: number, after = -1): Promise<DeviceRecord[]> {
    const r = await this.db.all(`SELECT * FROM fleet_devices WHERE fleet = $1 AND idx > $2 ORDER BY idx LIMIT $3`, [fleet.num, after, limit]);
    return r.map((x) => deviceOf(fleet.id, x));
  }

  async countDevices(fleet: FleetRecord): Promise<Record<DeviceStatus, number>> {
    const r = await this.db.all(`SELECT st, COUNT(*) AS n FROM fleet_devices WHERE fleet = $1 GROUP BY st`, [fleet.num]);
    const out: Record<DeviceStatus, number> = { active: 0, suspended: 0, revoked: 0 };
    for (const x of r) out[STATUS_NAME[Number(x.st)]] = Number(x.n);
    return out;
  }

  /**
   * Moves a device to `status` and bumps its status sequence number, unless it is revoked
   * (final). Answers the row as it now is (a revoked device stays revoked), or undefined when
   * there is no such device.
   */
  async setStatus(fleet: FleetRecord, index: number, status: DeviceStatus): Promise<DeviceRecord | undefined> {
    await this.db.run(`UPDATE fleet_devices SET st = $1, sq = sq + 1 WHERE fleet = $2 AND idx = $3 AND st <> $4`, [
      STATUS_CODE[status],
      fleet.num,
      index,
      STATUS_CODE.revoked,
    ]);
    return this.getDevice(fleet, index);
  }

  /** Indexes in [from, to) whose status is `status` (to build a status list). */
  async indexesWithStatus(fleet: FleetRecord, status: DeviceStatus, from: number, to: number): Promise<number[]> {
    const r = await this.db.all(`SELECT idx FROM fleet_devices WHERE fleet = $1 AND st = $2 AND idx >= $3 AND idx < $4`, [fleet.num, STATUS_CODE[status], from, to]);
    return r.map((x) => Number(x.idx));
  }

  async getStatusList(fleetId: string, purpose: string, k: number): Promise<{ version: number; jwt: string; issuedAt: number } | undefined> {
    const r = await this.db.all(`SELECT version, jwt, issued_at FROM fleet_status_lists WHERE fleet = $1 AND purpose = $2 AND k = $3`, [fleetId, purpose, k]);
    return r[0] ? { version: Number(r[0].version), jwt: r[0].jwt as string, issuedAt: Number(r[0].issued_at) } : undefined;
  }

  /**
   * Stores a newly signed list if it is newer than the stored one (a later version wins); true if
   * it was stored. Given version = stored + 1 it is a compare-and-set: false means another server
   * stored that version first.
   */
  async putStatusList(fleetId: string, purpose: string, k: number, version: number, jwt: string, issuedAt: number): Promise<boolean> {
    const n = await this.db.run(
      `INSERT INTO fleet_status_lists (fleet, purpose, k, version, jwt, issued_at) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (fleet, purpose, k) DO UPDATE SET version = excluded.version, jwt = excluded.jwt, issued_at = excluded.issued_at
       WHERE fleet_status_lists.version < excluded.version`,
      [fleetId, purpose, k, version, jwt, issuedAt],
    );
    return n === 1;
  }

  /**
   * Replay log: true if `key` was recorded and has not expired at `nowMs`; otherwise records it
   * until `expiresAtMs` and answers false. One atomic statement (the insert wins or it does not).
   */
  async checkAndRemember(key: string, expiresAtMs: number, nowMs: number): Promise<boolean> {
    const n = await this.db.run(
      `INSERT INTO fleet_seen (key, expires_at) VALUES ($1, $2)
       ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE fleet_seen.expires_at <= $3`,
      [key, expiresAtMs, nowMs],
    );
    return n === 0;
  }

  async sweepSeen(nowMs: number): Promise<void> {
    await this.db.run(`DELETE FROM fleet_seen WHERE expires_at <= $1`, [nowMs]);
  }

  async addReading(r: ReadingRecord): Promise<void> {
    await this.db.run(`INSERT INTO fleet_readings (id, fleet, idx, device, ts, nonce, data, source, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, [
      r.id,
      r.fleet,
      r.index,
      r.device,
      r.ts,
      r.nonce,
      JSON.stringify(r.data),
      r.source,
      r.receivedAt,
    ]);
  }

  async listReadings(fleetId: string, limit: number): Promise<ReadingRecord[]> {
    const r = await this.db.all(`SELECT * FROM fleet_readings WHERE fleet = $1 ORDER BY received_at DESC, id DESC LIMIT $2`, [fleetId, limit]);
    return r.map((x) => ({
      id: x.id as string,
      fleet: x.fleet as string,
      index: Number(x.idx),
      device: x.device as string,
      ts: Number(x.ts),
      nonce: x.nonce as string,
      data: JSON.parse(x.data as string),
      source: x.source as string,
      receivedAt: Number(x.received_at),
    }));
  }
}

async function insertRows(q: Queryable, fleetNum: number, rows: readonly NewDevice[], at: number): Promise<void> {
  const params: Param[] = [];
  const values: string[] = [];
  for (const d of rows) {
    const p = params.length;
    values.push(`($${p + 1}, $${p + 2}, $${p + 3}, $${p + 4}, 0, 0, $${p + 5})`);
    params.push(fleetNum, d.index, b64.enc(d.publicKey), d.deviceDid === null ? null : d.deviceDid.slice(DID_KEY.length), at);
  }
  await q.run(`INSERT INTO fleet_devices (fleet, idx, pk, dk, st, sq, at) VALUES ${values.join(', ')}`, params);
}

function fleetOf(r: Row): FleetRecord {
  return {
    id: r.id as string,
    num: Number(r.num),
    scheme: r.scheme as string,
    label: (r.label as string | null) ?? null,
    issuerDid: r.issuer_did as string,
    statusBase: r.status_base as string,
    nextIndex: Number(r.next_index),
    createdAt: Number(r.created_at),
  };
}

function deviceOf(fleetId: string, r: Row): DeviceRecord {
  return {
    fleet: fleetId,
    index: Number(r.idx),
    publicKey: b64.hex(r.pk as string),
    deviceDid: r.dk === null || r.dk === undefined ? null : DID_KEY + (r.dk as string),
    status: STATUS_NAME[Number(r.st)],
    statusSeq: Number(r.sq),
    enrolledAt: Number(r.at),
  };
}
