/**
 * `skillsync simulate`: runs the marketplace simulator (simulator/) as a process, prints its
 * URLs (API, WebSocket, control) and runs until SIGINT/SIGTERM. Every flag is validated by the
 * simulator's own settings check; a bad value exits with code 2 and names the setting.
 *
 *   skillsync simulate --skills 100000 --changes-per-second 5 --fault error:status=503,rate=0.05
 */
import type { Command } from 'commander';
import { SkillsyncError } from '../../core/errors.js';
import { FEATURES, type Feature } from '../../remote/contract.js';
// The option lists come from the simulator's small modules; its server is loaded when the
// command runs, so other commands do not carry it in memory.
import { FAULT_NAMES, parseFaultArg, type FaultRule } from '../../../simulator/faults.js';
import { LAYOUT_NAMES } from '../../../simulator/layouts.js';
import type { SimulatorOptions } from '../../../simulator/options.js';

interface SimulateFlags {
  port: string;
  host: string;
  seed: string;
  skills: string;
  categories: string;
  changesPerSecond: string;
  features: string;
  layout: string;
  categoriesWrapped?: boolean;
  idAlias?: boolean;
  pageSizeCap: string;
  rateLimit: string;
  fault: string[];
  faultSeed?: string;
  events: boolean;
}

function int(setting: string, text: string): number {
  if (!/^-?\d+$/.test(text.trim()))
    throw new SkillsyncError(
      'SKILLSYNC_ERR_SIM_BAD_SETTING',
      `${setting}: must be an integer, got "${text}"`,
    );
  return Number(text);
}

function num(setting: string, text: string): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v))
    throw new SkillsyncError('SKILLSYNC_ERR_SIM_BAD_SETTING', `${setting}: must be a number, got "${text}"`);
  return v;
}

/** `all`, `none`, or a comma list of the features to switch on (the others go off). */
export function parseFeatures(text: string): Record<Feature, boolean> {
  const t = text.trim();
  const on = new Set<string>(
    t === 'all' ? FEATURES : t === 'none' || t === '' ? [] : t.split(',').map((s) => s.trim()),
  );
  for (const f of on) {
    if (!(FEATURES as readonly string[]).includes(f))
      throw new SkillsyncError(
        'SKILLSYNC_ERR_SIM_BAD_SETTING',
        `--features: unknown feature "${f}"; known: ${FEATURES.join(', ')} (or all, none)`,
      );
  }
  return Object.fromEntries(FEATURES.map((f) => [f, on.has(f)])) as Record<Feature, boolean>;
}

export function simulatorOptionsFromFlags(flags: SimulateFlags, env: NodeJS.ProcessEnv): SimulatorOptions {
  const rules: FaultRule[] = flags.fault.map((f) => parseFaultArg(f));
  const token = env['SKILLSYNC_SIM_TOKEN'];
  const options: SimulatorOptions = {
    port: int('--port', flags.port),
    host: flags.host,
    seed: int('--seed', flags.seed),
    skills: int('--skills', flags.skills),
    categories: int('--categories', flags.categories),
    changesPerSecond: num('--changes-per-second', flags.changesPerSecond),
    features: parseFeatures(flags.features),
    layout: flags.layout as SimulatorOptions['layout'] & string,
    categoriesWrapped: flags.categoriesWrapped === true,
    idAlias: flags.idAlias === true,
    pageSizeCap: int('--page-size-cap', flags.pageSizeCap),
    rateLimitPerMinute: int('--rate-limit', flags.rateLimit),
    emitEvents: flags.events,
    faults: {
      rules,
      ...(flags.faultSeed === undefined ? {} : { seed: int('--fault-seed', flags.faultSeed) }),
    },
  };
  if (token !== undefined && token !== '') options.token = token;
  return options;
}

export function register(program: Command): void {
  program
    .command('simulate')
    .description(
      'Run the Atom SaaS marketplace simulator (HTTP + WebSocket) with a seeded catalog, live changes and optional faults.',
    )
    .option('--port <n>', 'port to listen on (0 = any free port)', '4010')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--seed <n>', 'catalog, change and fault seed', '1')
    .option('--skills <n>', 'initial number of skills', '10000')
    .option('--categories <n>', 'number of base categories (1..30)', '30')
    .option('--changes-per-second <n>', 'live changes per second (0 = none)', '2')
    .option('--features <list>', `extensions on: all, none, or a comma list of ${FEATURES.join(',')}`, 'all')
    .option('--layout <name>', `path layout: ${LAYOUT_NAMES.join(', ')}`, 'skills')
    .option('--categories-wrapped', 'answer /categories as {categories: [...]}')
    .option('--id-alias', 'send skills with `id` instead of `skill_id`')
    .option('--page-size-cap <n>', 'largest page served (1..1000)', '1000')
    .option('--rate-limit <n>', 'requests per minute per instance before 429 (0 = off)', '0')
    .option(
      '--fault <spec>',
      `a fault rule, repeatable: name[:key=value,...], e.g. error:status=503,rate=0.1 (faults: ${FAULT_NAMES.join(', ')})`,
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .option('--fault-seed <n>', 'seed of the fault decisions (default: --seed)')
    .option('--no-events', 'change the catalog without emitting WebSocket events')
    .addHelpText(
      'after',
      '\nThe API token, if any, is read from SKILLSYNC_SIM_TOKEN (never a flag: it would show in ps).',
    )
    .action(async (flags: SimulateFlags) => {
      let handle;
      try {
        const { startSimulator } = await import('../../../simulator/index.js');
        handle = await startSimulator(simulatorOptionsFromFlags(flags, process.env));
      } catch (err) {
        if (err instanceof SkillsyncError) {
          process.stderr.write(`skillsync simulate: ${err.message}\n`);
          process.exitCode = 2;
          return;
        }
        throw err;
      }
      const stats = handle.control.stats();
      process.stdout.write(
        [
          'skillsync simulate: the marketplace simulator is running',
          `  API (ATOM_SAAS_API_URL):      ${handle.url}`,
          `  WebSocket (ATOM_SAAS_WS_URL): ${handle.wsUrl}`,
          `  control:                      ${handle.controlUrl}  (GET ${handle.controlUrl}/stats)`,
          `  layout ${handle.layout}: skills at ${handle.url}${handle.paths.skills}`,
          `  ${stats.liveSkills} skills, ${stats.categories} categories, epoch ${stats.epoch}, ${flags.changesPerSecond} changes/s`,
          '  Ctrl-C to stop',
          '',
        ].join('\n'),
      );
      await new Promise<void>((resolve) => {
        const stop = (): void => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await handle.close();
      process.stdout.write('skillsync simulate: stopped\n');
    });
}
