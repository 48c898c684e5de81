/**
 * The threshold-scheme interface every scheme implements (FROST-Ed25519, FROST-secp256k1/BIP340,
 * threshold ECDSA). Pure: no I/O, no clocks, no storage. The signer node owns transport (it signs
 * every outgoing message with its identity key and encrypts every direct message to its recipient)
 * and persistence; a scheme only turns incoming messages into outgoing ones.
 *
 * Parties are numbered 1..n (the FROST identifier / Shamir x-coordinate). Messages are plain
 * JSON values (hex strings for bytes) so they can be signed, relayed and stored as they are.
 */
export type PartyIndex = number;
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** What a party sends at the end of a round: one broadcast to all, and/or one direct message per peer. */
export interface RoundOutput {
  broadcast?: Json;
  /** Keyed by recipient PartyIndex. The transport encrypts each to its recipient. */
  direct?: Record<number, Json>;
}

/** What a party receives for a round: the other parties' broadcasts and the direct messages to it. */
export interface RoundInput {
  broadcast: Record<number, Json>;
  direct: Record<number, Json>;
}

/**
 * A multi-round protocol run by one party. `round(1, empty)` starts it; each later call feeds the
 * messages of the previous round. After the last round, `finish(input)` consumes the final messages
 * and returns the result. Any inconsistency throws a ProtocolError naming the party at fault.
 */
export interface PartyProtocol<Result> {
  readonly rounds: number;
  round(r: number, input: RoundInput): RoundOutput;
  finish(input: RoundInput): Result;
}

/** Public result of key generation / refresh, identical at every honest party. */
export interface GroupPublic {
  /** Group verifying key, scheme-specific encoding, hex. */
  publicKey: string;
  threshold: number;
  parties: PartyIndex[];
  /** Each party's public verifying share (for blaming cheaters), hex. */
  verifyingShares: Record<number, string>;
  /** Scheme-specific public extras (chain code, commitments, internal key...). */
  extra?: Record<string, Json>;
}

/** One party's secret share; only ever lives inside a signer node and is sealed at rest. */
export interface SecretShare {
  index: PartyIndex;
  /** Scheme-specific secret material as JSON (hex). Never logged, never returned by any API. */
  secret: Json;
}

export interface KeyGenResult {
  public: GroupPublic;
  share: SecretShare;
}

/** Thrown when a protocol check fails. `culprit` names the party whose message failed a check. */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  constructor(
    message: string,
    readonly culprit?: PartyIndex,
  ) {
    super(message);
  }
}
