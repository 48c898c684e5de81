/**
 * ecdsa-secp256k1 threshold ECDSA after DKLs23 (Doerner, Kondi, Lee, shelat, ePrint 2023/765).
 * Pure protocol core: no I/O. See README.md in this folder for the paper mapping, the checks, the
 * parameters and the security notes. NOT externally audited.
 */
import './fast.ts';
export { dkg, refresh, pairSetup, type DkgParams, type RefreshParams } from './dkg.ts';
export { sign, type SignParams, type SignResult } from './sign.ts';
export { deriveChild, deriveChildPublic, derivePath, derivePathPublic } from './derive.ts';
export { runInProcess, type RunOptions } from './runner.ts';
export { SCHEME } from './share.ts';
export { KAPPA, ELL, OT_SEC, MPRIME } from './ot/extension.ts';
