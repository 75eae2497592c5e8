import type { Command } from 'commander';

// Placeholder until its issue lands: the command exists so the CLI is whole; it refuses to run.
export function register(program: Command): void {
  program
    .command('simulate')
    .description('(not built yet)')
    .action(() => {
      process.stderr.write('skillsync simulate: not built yet\n');
      process.exitCode = 2;
    });
}
