/**
 * Loads libsecp256k1 (WebAssembly, through ../frost-group.ts) under DKLs23's point multiplications
 * (./util.ts). Imported for its effect by ./index.ts, the protocol's entry; kept apart so the SDK's
 * public-key derivation (./derive.ts) does not pull WebAssembly or a top-level await into a browser bundle.
 */
import { GROUPS, type Group } from '../frost-group.ts';
import { useWasmGroup } from './util.ts';

useWasmGroup(GROUPS.wasm.secp256k1 as Group<Uint8Array>);
