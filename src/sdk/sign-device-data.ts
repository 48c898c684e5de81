/**
 * Device side: signs a reading with the device key (`sign` is the secure element, TPM, or
 * `localSigner(type, secretKey)`), as a compact JWS that `verifyDeviceData` and the server check.
 */
export { signDeviceData, localSigner, didKeyFromPublicKey } from '../identity/index.ts';
