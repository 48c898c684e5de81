/**
 * Bitcoin PSBTs (BIP174/370, base64 or hex), read with @scure/btc-signer. Outputs become transfer
 * effects (change marked when an output pays `opts.from`), the fee is inputs − outputs when every
 * input's amount is known, and the signing payloads are the per-input sighashes we can compute:
 *
 * - taproot key path (BIP341, `preimageWitnessV1`), signed with Schnorr by the tweaked internal key;
 * - segwit v0 (BIP143, `preimageWitnessV0`: p2wpkh, p2wsh, p2sh-p2wpkh, p2sh-p2wsh), signed with ECDSA.
 *
 * Only SIGHASH_DEFAULT / ALL commit to the whole transaction: any other sighash type on an input makes
 * the action 'unknown' (its signature would let outputs or inputs change after signing).
 *
 * Not computed (named in notes): legacy pre-segwit inputs, taproot script-path spends, inputs already
 * finalized, and taproot inputs when some input's previous output is missing (BIP341 commits to all).
 */
import { Address, getInputType, NETWORK, OutScript, SigHash, TEST_NETWORK, Transaction } from '@scure/btc-signer';
import { NATIVE_ASSET, type Action, type Decoded, type Effect, type SigningTarget } from '../types.ts';
import { attempt, base64ToBytesStrict, decodeFailed, hexToBytesStrict, isHex, toHex } from '../util.ts';

export interface BitcoinOptions {
  from?: string;
  network?: string;
}

export const BITCOIN_NETWORKS = ['mainnet', 'testnet', 'signet', 'regtest'] as const;
export type BitcoinNetwork = (typeof BITCOIN_NETWORKS)[number];

const NETWORKS: Record<BitcoinNetwork, typeof NETWORK> = {
  mainnet: NETWORK,
  testnet: TEST_NETWORK,
  signet: TEST_NETWORK,
  regtest: { ...TEST_NETWORK, bech32: 'bcrt' },
};

const ANYONECANPAY = 0x80;

type Input = ReturnType<Transaction['getInput']>;
type PrevOut = { script: Uint8Array; amount: bigint };

/** The named network's address parameters (default mainnet), or `decode_failed`. */
export function bitcoinNetwork(network: string | undefined): { name: BitcoinNetwork; net: typeof NETWORK } {
  const name = (network ?? 'mainnet') as BitcoinNetwork;
  const net = Object.hasOwn(NETWORKS, name) ? NETWORKS[name] : undefined;
  if (!net) decodeFailed(`unknown bitcoin network ${network}`, { network, known: BITCOIN_NETWORKS });
  return { name, net };
}

export function decodeBitcoinPsbt(payload: string, opts: BitcoinOptions = {}): Decoded {
  const { name: networkName, net } = bitcoinNetwork(opts.network);
  const text = payload.trim();
  const bytes = isHex(text) && /^(0x)?70736274ff/i.test(text) ? hexToBytesStrict(text, 'bitcoin_psbt') : base64ToBytesStrict(text, 'bitcoin_psbt');
  const tx = attempt('not a valid PSBT', {}, () => Transaction.fromPSBT(bytes, { allowUnknownOutputs: true }));
  const ownScript = opts.from === undefined ? undefined : attempt(`opts.from is not a ${networkName} address`, { from: opts.from }, () => OutScript.encode(Address(net).decode(opts.from!)));

  const notes: string[] = [];
  const effects: Effect[] = [];
  let totalOut = 0n;
  for (let i = 0; i < tx.outputsLength; i++) {
    const out = tx.getOutput(i);
    if (!out.script || out.amount === undefined) decodeFailed(`PSBT output ${i} has no script or amount`, { output: i });
    totalOut += out.amount;
    const to = outputAddress(out.script, net);
    const change = ownScript !== undefined && toHex(ownScript) === toHex(out.script);
    if (to.startsWith('script:') && out.script[0] === 0x6a) notes.push(`output ${i} is an OP_RETURN data output`);
    effects.push({ type: 'transfer', asset: NATIVE_ASSET, to, amount: out.amount, ...(change ? { change: true } : {}) });
  }

  const prevOuts: (PrevOut | undefined)[] = [];
  for (let i = 0; i < tx.inputsLength; i++) prevOuts.push(prevOutOf(tx.getInput(i)));
  const inputs = prevOuts.map((p, i) => {
    const input = tx.getInput(i);
    const outpoint = `${input.txid ? toHex(input.txid).slice(2) : '?'}:${input.index ?? '?'}`;
    return p ? { outpoint, amount: p.amount, address: outputAddress(p.script, net) } : { outpoint };
  });
  const totalIn = prevOuts.every((p) => p) ? prevOuts.reduce((s, p) => s + p!.amount, 0n) : undefined;
  if (totalIn === undefined) notes.push('some input amounts are unknown (no witnessUtxo / nonWitnessUtxo): fee not computed');
  else notes.push(`spends ${totalIn} sat from ${tx.inputsLength} input(s)`);
  if (totalIn !== undefined && totalIn < totalOut) decodeFailed('PSBT outputs spend more than its inputs', { inputs: String(totalIn), outputs: String(totalOut) });
  if (prevOuts.some((p, i) => p && !tx.getInput(i).nonWitnessUtxo && !isTaproot(p))) {
    notes.push('segwit v0 input amounts come from witnessUtxo: an ECDSA signature commits only to its own input amount, so the fee is as trustworthy as the PSBT creator');
  }

  const { payloads, signing, sighashNotes, uncommittedOutputs } = sighashes(tx, prevOuts);
  notes.push(...sighashNotes);
  const payees = effects.filter((e) => e.type === 'transfer' && !e.change);
  const action: Action = {
    chain: 'bitcoin',
    chainId: networkName,
    kind: uncommittedOutputs || tx.outputsLength === 0 ? 'unknown' : 'native_transfer',
    ...(opts.from === undefined ? {} : { from: opts.from }),
    ...(payees[0]?.type === 'transfer' ? { to: payees[0].to } : {}),
    effects,
    ...(totalIn === undefined ? {} : { fee: totalIn - totalOut }),
    inputs,
  };
  if (tx.outputsLength === 0) notes.push('PSBT has no outputs');
  if (notes.length) action.notes = notes;
  return { action, signingPayloads: payloads, signing };
}

function outputAddress(script: Uint8Array, net: typeof NETWORK): string {
  try {
    const decoded = OutScript.decode(script);
    if (decoded.type !== 'unknown') return Address(net).encode(decoded);
  } catch {
    // not a standard output: named by its script
  }
  return `script:${toHex(script).slice(2)}`;
}

function prevOutOf(input: Input): PrevOut | undefined {
  if (input.witnessUtxo) return { script: input.witnessUtxo.script, amount: input.witnessUtxo.amount };
  const out = input.nonWitnessUtxo?.outputs[input.index ?? -1];
  return out ? { script: out.script, amount: out.amount } : undefined;
}

function isTaproot(p: PrevOut): boolean {
  return p.script.length === 34 && p.script[0] === 0x51 && p.script[1] === 0x20;
}

function sighashes(tx: Transaction, prevOuts: (PrevOut | undefined)[]) {
  const payloads: Uint8Array[] = [];
  const signing: SigningTarget[] = [];
  const sighashNotes: string[] = [];
  let uncommittedOutputs = false;
  const allKnown = prevOuts.every((p) => p);
  for (let i = 0; i < tx.inputsLength; i++) {
    const input = tx.getInput(i);
    const prev = prevOuts[i];
    if (input.finalScriptSig || input.finalScriptWitness) {
      sighashNotes.push(`input ${i} is already finalized: nothing to sign`);
      continue;
    }
    if (!prev) {
      sighashNotes.push(`input ${i}: previous output unknown, sighash not computed`);
      continue;
    }
    let type: ReturnType<typeof getInputType>;
    try {
      type = getInputType(input);
    } catch (e) {
      sighashNotes.push(`input ${i}: script type not understood (${e instanceof Error ? e.message : 'unknown'}), sighash not computed`);
      continue;
    }
    const sighash = type.sighash;
    // Only DEFAULT (taproot) and ALL commit to every input and every output. With any other type
    // the signed transaction is not the one decoded here: the action is 'unknown', and agents are
    // refused it outright (`unsupported_sighash`, src/enforce/authorize.ts).
    if (sighash !== SigHash.DEFAULT && sighash !== SigHash.ALL) uncommittedOutputs = true;
    if ((sighash & 0x1f) === SigHash.NONE) sighashNotes.push(`input ${i} uses SIGHASH_NONE: its signature does not commit to any output`);
    else if ((sighash & 0x1f) === SigHash.SINGLE)
      sighashNotes.push(`input ${i} uses SIGHASH_SINGLE: its signature commits only to output ${i}; every other output, change included, can be rewritten after signing`);
    if (sighash & ANYONECANPAY) sighashNotes.push(`input ${i} uses ANYONECANPAY: its signature commits only to its own input; inputs may be added or removed, so the fee shown is not committed`);

    if (type.txType === 'taproot') {
      if (!allKnown) {
        sighashNotes.push(`input ${i} (taproot): BIP341 commits to every input's previous output, some are unknown: sighash not computed`);
        continue;
      }
      if (input.tapLeafScript?.length) sighashNotes.push(`input ${i} (taproot): script-path spends are not computed, only the key path`);
      const digest = attempt(`taproot sighash of input ${i} cannot be computed`, { input: i }, () =>
        tx.preimageWitnessV1(i, prevOuts.map((p) => p!.script), sighash, prevOuts.map((p) => p!.amount)),
      );
      payloads.push(digest);
      signing.push({
        scheme: 'schnorr-bip340',
        input: i,
        sighashType: sighash,
        ...(input.tapInternalKey ? { taprootTweak: { internalKey: toHex(input.tapInternalKey).slice(2), merkleRoot: input.tapMerkleRoot ? toHex(input.tapMerkleRoot).slice(2) : '' } } : {}),
      });
    } else if (type.txType === 'segwit') {
      const scriptCode = type.last.type === 'wpkh' ? OutScript.encode({ type: 'pkh', hash: type.last.hash }) : type.lastScript;
      const digest = attempt(`segwit sighash of input ${i} cannot be computed`, { input: i }, () => tx.preimageWitnessV0(i, scriptCode, sighash, prev.amount));
      payloads.push(digest);
      signing.push({ scheme: 'ecdsa-secp256k1', input: i, sighashType: sighash });
    } else {
      sighashNotes.push(`input ${i} is a legacy (pre-segwit) ${type.type} input: sighash not computed`);
    }
  }
  return { payloads, signing, sighashNotes, uncommittedOutputs };
}
