/**
 * Installs libsodium's Ed25519 verifier (`crypto_sign_verify_detached`, WebAssembly,
 * `libsodium-wrappers-sumo`) under `verifyBytes`, and its signer under `signBytes` (./keys.ts, end of
 * this file), for the process that imports this
 * module: the signer and the server, through src/enforce/authorize.ts. The profile of a 2-of-3
 * signing over loopback (issue 13) put noble's Ed25519 verification of owner, agent and control-doc
 * signatures at the top of a signer's remaining BigInt time; libsodium does it several times faster.
 *
 * libsodium accepts no signature that noble's strict verifier (`zip215: false`) refuses: it requires
 * s < L and canonical encodings of R and the public key, as noble does, and in addition refuses
 * small-order R and public keys, and checks the cofactorless equation [s]B = R + [k]A, which implies
 * noble's cofactored one. RFC 8032 signatures by honest keys pass both (test/control/fast-verify.test.ts
 * compares them on random keys, messages and tamperings). So what a signer or the server accepts is
 * still a signature the key's holder made; the only difference is that crafted signatures with a
 * torsion component in R, which noble's cofactored check lets through, are now refused.
 */
import sodium from 'libsodium-wrappers-sumo';
import { useEd25519Signer, useEd25519Verifier } from './keys.ts';
import { useDirectCrypto, type DirectCrypto } from '../signer/envelope.ts';

await sodium.ready;

/** RFC 8032 Ed25519 verification on libsodium; false (never a throw) for anything malformed. */
export function sodiumVerifyEd25519(sig: Uint8Array, msg: Uint8Array, pub: Uint8Array): boolean {
  try {
    return sig.length === 64 && pub.length === 32 && sodium.crypto_sign_verify_detached(sig, msg, pub);
  } catch {
    return false;
  }
}

useEd25519Verifier(sodiumVerifyEd25519);

/**
 * RFC 8032 signing on libsodium (`crypto_sign_detached` with the 64-byte key libsodium expands from the
 * 32-byte seed): deterministic, so the same bytes as noble's, several times faster. The server signs
 * an owner document per admin signing (`fleetkey dev`) and every node signs its protocol envelopes.
 * The expanded key lives only for the call and is zeroed after it.
 */
useEd25519Signer({
  sign(msg, secret) {
    const kp = sodium.crypto_sign_seed_keypair(secret);
    try {
      return sodium.crypto_sign_detached(msg, kp.privateKey);
    } finally {
      kp.privateKey.fill(0);
    }
  },
  publicKey(secret) {
    const kp = sodium.crypto_sign_seed_keypair(secret);
    kp.privateKey.fill(0);
    return kp.publicKey;
  },
});

/**
 * The envelope's X25519 and XChaCha20-Poly1305 on libsodium (`crypto_scalarmult`,
 * `crypto_aead_xchacha20poly1305_ietf_*`): the same functions as noble's, in WebAssembly.
 * libsodium's X25519 refuses an all-zero result as noble's does.
 */
export const sodiumDirectCrypto: DirectCrypto = {
  x25519: (secret, pub) => sodium.crypto_scalarmult(secret, pub),
  seal: (key, nonce, ad, pt) => sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(pt, ad, null, nonce, key),
  open: (key, nonce, ad, ct) => sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, ct, ad, nonce, key),
};
useDirectCrypto(sodiumDirectCrypto);
