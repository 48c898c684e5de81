/** A derivation worker of DerivePool (fleet-derive.ts): answers each SecpJob with its child keys. */
import { parentPort, workerData } from 'node:worker_threads';
import { secpFixedBase } from '../crypto/derive.ts';
import { runSecpJob, type SecpJob } from './fleet-derive.ts';

const base = secpFixedBase((workerData as { window: number }).window);
parentPort!.postMessage('ready');
parentPort!.on('message', (job: SecpJob) => {
  try {
    const keys = runSecpJob(job, base);
    parentPort!.postMessage({ keys }, keys.map((k) => k.publicKey.buffer as ArrayBuffer));
  } catch (e) {
    parentPort!.postMessage({ error: (e as Error).message });
  }
});
