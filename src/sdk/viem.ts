/**
 * `@fleetkey/sdk/viem`: the viem account alone. Importing it loads viem and the client it signs through, never
 * another framework's integration (each sits behind its own subpath and optional peer dependency).
 */
export { toViemAccount } from './to-viem-account.ts';
