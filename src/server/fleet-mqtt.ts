/**
 * MQTT ingest of signed device readings: one topic per fleet, `${prefix}/${fleetId}/readings`.
 * A message is JSON `{"reading": <compact JWS>, "credential": <the device's JWT-VC>}`; the server
 * verifies it exactly as `POST /v1/verify/data` does and records trusted readings. Everything
 * else is counted per fleet and reason (`malformed` for a message that is not that JSON, or whose
 * reading names another fleet than its topic). Messages are handled one at a time in arrival
 * order; past MAX_QUEUE waiting messages new ones are dropped and counted as `overloaded`.
 *
 * Several servers on one store: they subscribe as one MQTT shared subscription
 * (`$share/fleetkey/<prefix>/+/readings`), so the broker hands each message to one of them, and
 * the counters are rows of the shared store (ServerStore.countMqtt), so every server answers the
 * same sums. A broker without shared subscriptions (MQTT 5, or mosquitto ≥ 1.6 for 3.1.1 clients)
 * would deliver nothing: FLEETKEY_MQTT_SHARED=0 subscribes to the plain topic (one server only).
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
  /** The fleet's counters summed over every server on the store; undefined before its first message. */
  counters(fleetId: string): Promise<IngestCounters | undefined>;
  close(): Promise<void>;
}

const MAX_QUEUE = 10_000;
const messageSchema = z.object({ reading: z.string().max(64 * 1024), credential: z.string().max(1 << 20) }).strict();

export async function startMqttIngest(svc: FleetService, o: { url: string; prefix: string; log: Logger }): Promise<MqttIngest> {
  const store = svc.coord.store;
  // A lost count is logged, never thrown: the reading itself is already recorded or refused.
  const count = (fleet: string, reason: string) =>
    store.countMqtt(fleet, reason).catch((e) => o.log.error('mqtt counter write failed', { fleet, reason, error: (e as Error).message }));
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
    if (queued >= MAX_QUEUE) return void count(m[1], 'overloaded');
    queued++;
    chain = chain
      .then(() => handle(m[1], payload))
      .catch((e) => {
        o.log.error('mqtt reading failed', { error: (e as Error).message });
        return count(m[1], 'error');
      })
      .finally(() => void queued--);
  });
  // Subscribe on every (re)connect; a clean session forgets subscriptions.
  client.on('connect', () => {
    lastError = '';
    const topic = `${process.env.FLEETKEY_MQTT_SHARED === '0' ? '' : '$share/fleetkey/'}${o.prefix}/+/readings`;
    client.subscribe(topic, { qos: 1 }, (e) => e && o.log.error('mqtt subscribe failed', { error: e.message }));
    o.log.info('mqtt connected', { url: o.url, topic });
  });
  await new Promise<void>((resolve) => {
    // Do not hold the server's start-up on the broker: it may come later (reconnects every second).
    const t = setTimeout(resolve, 2000);
    client.once('connect', () => (clearTimeout(t), resolve()));
  });
  return {
    topicOf: (fleetId) => `${o.prefix}/${fleetId}/readings`,
    connected: () => client.connected,
    async counters(fleetId) {
      const rows = await store.mqttCounters(fleetId);
      const received = Object.values(rows).reduce((a, b) => a + b, 0);
      if (!received) return undefined;
      const { ok = 0, ...reasons } = rows;
      return { received, accepted: ok, rejected: received - ok, reasons };
    },
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
