/**
 * MQTT ingest of signed device readings: one topic per fleet, `${prefix}/${fleetId}/readings`.
 * A message is JSON `{"reading": <compact JWS>, "credential": <the device's JWT-VC>}`; the server
 * verifies it exactly as `POST /v1/verify/data` does and records trusted readings. Everything
 * else is counted per fleet and reason (`malformed` for a message that is not that JSON, or whose
 * reading names another fleet than its topic). Messages are handled one at a time in arrival
 * order; past MAX_QUEUE waiting messages new ones are dropped and counted as `overloaded`.
 */
import mqtt from 'mqtt';
import { z } from 'zod';
import { newId, type Logger } from '../http/common.ts';
import type { DataVerdict, FleetService } from './fleets.ts';

export interface IngestCounters {
  received: number;
  accepted: number;
  rejected: number;
  reasons: Record<string, number>;
}

export interface MqttIngest {
  topicOf(fleetId: string): string;
  connected(): boolean;
  counters(fleetId: string): IngestCounters | undefined;
  close(): Promise<void>;
}

const MAX_QUEUE = 10_000;
const messageSchema = z.object({ reading: z.string().max(64 * 1024), credential: z.string().max(1 << 20) }).strict();

export async function startMqttIngest(svc: FleetService, o: { url: string; prefix: string; log: Logger }): Promise<MqttIngest> {
  const counters = new Map<string, IngestCounters>();
  const count = (fleet: string, reason: string) => {
    let c = counters.get(fleet);
    if (!c) counters.set(fleet, (c = { received: 0, accepted: 0, rejected: 0, reasons: {} }));
    c.received++;
    if (reason === 'ok') c.accepted++;
    else {
      c.rejected++;
      c.reasons[reason] = (c.reasons[reason] ?? 0) + 1;
    }
  };
  const topicRe = new RegExp(`^${o.prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/(wal_[0-9a-f]{24})/readings$`);
  const client = mqtt.connect(o.url, { clientId: newId('fleetkey-server'), reconnectPeriod: 1000, connectTimeout: 5000 });
  let lastError = '';
  client.on('error', (e) => {
    if (e.message !== lastError) o.log.error('mqtt error', { error: e.message });
    lastError = e.message;
  });

  let queued = 0;
  let chain: Promise<void> = Promise.resolve();
  const handle = async (fleetId: string, payload: Buffer) => {
    let verdict: DataVerdict;
    const msg = messageSchema.safeParse(safeJson(payload.toString('utf8')));
    if (!msg.success) return count(fleetId, 'malformed');
    verdict = await svc.verifyData(msg.data.reading, msg.data.credential);
    if (verdict.trusted && verdict.fleet !== fleetId) return count(fleetId, 'malformed');
    if (verdict.trusted && verdict.reading && verdict.wallet) {
      await svc.store.addReading({
        id: newId('rdg'),
        fleet: fleetId,
        index: verdict.wallet.index,
        device: verdict.reading.deviceDid,
        ts: verdict.reading.ts,
        nonce: verdict.reading.nonce,
        data: verdict.reading.data,
        source: 'mqtt',
        receivedAt: Date.now(),
      });
    }
    count(fleetId, verdict.reason);
  };
  client.on('message', (topic, payload) => {
    const m = topicRe.exec(topic);
    if (!m) return;
    if (queued >= MAX_QUEUE) return count(m[1], 'overloaded');
    queued++;
    chain = chain
      .then(() => handle(m[1], payload))
      .catch((e) => {
        o.log.error('mqtt reading failed', { error: (e as Error).message });
        count(m[1], 'error');
      })
      .finally(() => void queued--);
  });
  // Subscribe on every (re)connect; a clean session forgets subscriptions.
  client.on('connect', () => {
    lastError = '';
    client.subscribe(`${o.prefix}/+/readings`, { qos: 1 }, (e) => e && o.log.error('mqtt subscribe failed', { error: e.message }));
    o.log.info('mqtt connected', { url: o.url, topic: `${o.prefix}/+/readings` });
  });
  await new Promise<void>((resolve) => {
    // Do not hold the server's start-up on the broker: it may come later (reconnects every second).
    const t = setTimeout(resolve, 2000);
    client.once('connect', () => (clearTimeout(t), resolve()));
  });
  return {
    topicOf: (fleetId) => `${o.prefix}/${fleetId}/readings`,
    connected: () => client.connected,
    counters: (fleetId) => counters.get(fleetId),
    async close() {
      await client.endAsync();
      await chain;
    },
  };
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}
