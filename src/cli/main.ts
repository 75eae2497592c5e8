#!/usr/bin/env node
/**
 * The `skillsync` CLI: one program, one subcommand per job. Each command lives in
 * src/cli/commands/<name>.ts and exports `register(program)`.
 */
import { Command } from 'commander';
import { register as registerSimulate } from './commands/simulate.js';
import { register as registerSync } from './commands/sync.js';
import { register as registerServe } from './commands/serve.js';
import { register as registerDemo } from './commands/demo.js';
import { register as registerConfig } from './commands/config.js';

const program = new Command();
program
  .name('skillsync')
  .description('Keeps a local cache of the Atom SaaS skill marketplace in sync and serves it.');
program.showHelpAfterError();

registerSimulate(program);
registerSync(program);
registerServe(program);
registerDemo(program);
registerConfig(program);

await program.parseAsync(process.argv);
