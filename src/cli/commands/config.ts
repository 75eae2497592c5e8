import type { Command } from 'commander';

// Placeholder until its issue lands: the command exists so the CLI is whole; it refuses to run.
export function register(program: Command): void {
  program
    .command('config')
    .description('(not built yet)')
    .action(() => {
      process.stderr.write('skillsync config: not built yet\n');
      process.exitCode = 2;
    });
}
