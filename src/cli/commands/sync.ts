/**
 * `skillsync sync [--full] [--json]`: one sync run against the configured marketplace into the
 * configured store, then exit. A progress bar on a terminal (pages, skills, rate, ETA when the
 * total is known), a one-line summary otherwise, the run record with --json.
 *
 * Exit codes: 0 success, 1 partial or failed (or refused: another run in progress), 2 bad
 * configuration. An interrupted run (Ctrl-C, SIGTERM, a kill) leaves its checkpoint: the next
 * `skillsync sync` resumes from it.
 */
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { addConfigOptions } from '../../config/cli-options.js';
import { validOverrides } from '../../config/live-config.js';
import { applyOverrides, loadConfig } from '../../config/load-config.js';
import type { ConfigKey } from '../../config/options.js';
import { ConfigError, isSkillsyncError } from '../../core/errors.js';
import { createMarketplaceClient } from '../../remote/marketplace-client.js';
import { openStore } from '../../store/open-store.js';
import type { Store } from '../../store/store.js';
import { clientOptionsFromConfig, engineOptionsFromConfig } from '../../sync/engine-config.js';
import { SyncEngine, type PageProgress, type SyncResult } from '../../sync/sync-engine.js';

interface SyncFlags extends Record<string, unknown> {
  full?: boolean;
  json?: boolean;
  envFile?: string;
}

export function register(program: Command): void {
  const command = program
    .command('sync')
    .description(
      'Run one sync of the marketplace into the local store, then exit (0 success, 1 partial/failed, 2 bad configuration).',
    )
    .option('--full', 'force a full listing (default: incremental when the server allows it)')
    .option('--json', 'print the run record as JSON');
  addConfigOptions(command);
  command.action(async (opts: SyncFlags) => {
    process.exitCode = await runSync(opts);
  });
}

function fail(message: string, code: number): number {
  process.stderr.write(`skillsync sync: ${message}\n`);
  return code;
}

export async function runSync(opts: SyncFlags): Promise<number> {
  let store: Store;
  let engine: SyncEngine;
  let config;
  let sources;
  try {
    ({ config, sources } = loadConfig({
      flags: opts,
      ...(typeof opts.envFile === 'string' ? { envFile: opts.envFile } : {}),
    }));
    store = await openStore(config.databaseUrl);
  } catch (err) {
    if (err instanceof ConfigError) return fail(err.message, 2);
    if (isSkillsyncError(err)) return fail(`${err.code}: ${err.message}`, 2);
    throw err;
  }
  try {
    // The settings an operator changed through the admin API (conflict strategy, page size...)
    // hold for this run too, as they do in the service (they live in the store); a flag given
    // to this command still wins.
    const saved = validOverrides(config, await store.getConfigOverrides());
    for (const key of Object.keys(saved)) if (sources[key as ConfigKey] === 'flag') delete saved[key];
    config = applyOverrides(config, saved);
  } catch (err) {
    await store.close();
    if (err instanceof ConfigError) return fail(err.message, 2);
    if (isSkillsyncError(err)) return fail(`${err.code}: ${err.message}`, 2);
    throw err;
  }
  let remote;
  try {
    remote = createMarketplaceClient(clientOptionsFromConfig(config));
    engine = new SyncEngine({ remote, store, options: engineOptionsFromConfig(config) });
  } catch (err) {
    await store.close();
    if (isSkillsyncError(err)) return fail(err.message, 2);
    throw err;
  }

  const tty = process.stderr.isTTY === true && opts.json !== true;
  const progress = tty ? startProgress(engine) : null;
  const stop = (): void => {
    void engine.close();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let result: SyncResult;
  try {
    result = await engine.syncAll({ trigger: 'cli', mode: opts.full === true ? 'full' : 'auto' });
  } finally {
    progress?.stop();
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await engine.close();
    await remote.close();
    await store.close();
  }
  if (opts.json === true) process.stdout.write(`${JSON.stringify(result.run ?? result, null, 2)}\n`);
  else process.stdout.write(`${summary(result)}\n`);
  return result.status === 'success' ? 0 : 1;
}

export function summary(result: SyncResult): string {
  const run = result.run;
  if (run === null) return `sync ${result.status}: ${result.error?.message ?? ''}`.trim();
  const seconds = ((run.finishedAt ?? run.startedAt) - run.startedAt) / 1000;
  const parts = [
    `sync ${run.status}`,
    `run ${run.id}`,
    `${run.mode}${run.resumedFromCheckpoint ? ' (resumed)' : ''}`,
    `${run.pages} pages`,
    `${run.upserted} upserted`,
    `${run.unchanged} unchanged`,
    `${run.deleted} deleted`,
  ];
  if (run.quarantined > 0) parts.push(`${run.quarantined} quarantined`);
  if (run.deletionsHeld > 0) parts.push(`${run.deletionsHeld} deletions held (confirm as an operator)`);
  if (run.conflictsDetected > 0)
    parts.push(
      `conflicts ${run.conflictsDetected} detected / ${run.conflictsResolved} resolved / ${run.conflictsManual} manual`,
    );
  parts.push(`${seconds.toFixed(1)} s`);
  let line = parts.join(', ');
  if (run.error !== null) line += ` - ${run.error}`;
  return line;
}

function startProgress(engine: SyncEngine): { stop(): void } {
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: ' {mode} |{bar}| {value}/{total} skills | {pages} pages | {rate}/s | ETA {eta_formatted}',
      hideCursor: true,
      etaBuffer: 20,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let startedAt = 0;
  const off = engine.on('pageApplied', (p: PageProgress) => {
    const elapsed = Math.max(0.001, (Date.now() - startedAt) / 1000);
    const payload = { mode: p.mode, pages: p.pages, rate: Math.round(p.skills / elapsed) };
    // Unknown total (no `total` in the answers): the bar grows with what was seen, no ETA.
    const total = p.total ?? p.skills;
    if (!started) {
      started = true;
      bar.start(Math.max(total, p.skills), p.skills, payload);
    } else {
      bar.setTotal(Math.max(total, p.skills));
      bar.update(p.skills, payload);
    }
  });
  const offStart = engine.on('runStarted', () => {
    startedAt = Date.now();
  });
  return {
    stop() {
      off();
      offStart();
      if (started) bar.stop();
    },
  };
}
