/** Which CLI module serves which nouns: read by main.ts before any module is loaded. */
import type { CliModule } from './module.ts';

/**
 * The CLI modules and the nouns each serves, so that a command loads only the modules that may run it
 * (`--help` loads them all). Loading every module took 1.4 s of CPU before the first line of any
 * command, signer or server ran (their imports reach the server, the signer, X.509 and the MCP SDK);
 * test/cli/modules.test.ts checks that each module serves exactly the nouns named here.
 */
export const MODULES: { nouns: readonly string[]; load: () => Promise<CliModule> }[] = [
  { nouns: ['key', 'policy', 'grant', 'approvers', 'approval', 'request', 'operator-token'], load: async () => (await import('./control.ts')).controlCli },
  { nouns: ['fleet', 'device', 'credential', 'did', 'data'], load: async () => (await import('./fleet.ts')).fleetCli },
  { nouns: ['kek'], load: async () => (await import('./kek.ts')).kekCli },
  { nouns: ['wallet', 'node'], load: async () => (await import('./committee.ts')).committeeCli },
  { nouns: ['mcp'], load: async () => (await import('./mcp.ts')).mcpCli },
  { nouns: ['signer'], load: async () => (await import('./signer-backup.ts')).signerBackupCli },
  { nouns: ['wallet', 'recovery-key'], load: async () => (await import('./recovery.ts')).recoveryCli },
];
