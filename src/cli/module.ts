/**
 * A group of CLI nouns kept in its own file: its flags (merged into the one strict parser), its
 * lines of `--help`, and its verbs. main.ts dispatches a noun to the module that names it.
 */
import type { ParseArgsConfig } from 'node:util';
import type { Flags } from './common.ts';

export interface CliModule {
  nouns: readonly string[];
  options: NonNullable<ParseArgsConfig['options']>;
  help: string;
  /** Runs `fleetkey NOUN VERB ARGS...`; returns the exit code, or undefined for an unknown verb. */
  run(noun: string, verb: string | undefined, args: string[], flags: Flags): Promise<number | undefined>;
}
