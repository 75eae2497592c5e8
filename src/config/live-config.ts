/**
 * The running service's configuration: the start-up Config plus runtime overrides made through
 * the admin API. An update is validated by the table's parsers, persisted in the store (so it
 * survives restarts) and then announced to listeners, which apply it to the live components
 * (engine strategy and options, scheduler interval, WebSocket enable/disable).
 */
import { applyOverrides } from './load-config.js';
import type { Config } from './options.js';

export interface OverridesStore {
  getConfigOverrides(): Promise<Record<string, unknown>>;
  setConfigOverrides(patch: Record<string, unknown>): Promise<Record<string, unknown>>;
}

export type ConfigListener = (next: Config, previous: Config) => void | Promise<void>;

export class LiveConfig {
  readonly #base: Config;
  #current: Config;
  #overrides: Record<string, unknown> = {};
  readonly #store: OverridesStore;
  readonly #listeners: ConfigListener[] = [];

  constructor(base: Config, store: OverridesStore) {
    this.#base = base;
    this.#current = base;
    this.#store = store;
  }

  /** Loads the persisted overrides. A persisted value the table no longer accepts is dropped. */
  async init(): Promise<void> {
    const valid = validOverrides(this.#base, await this.#store.getConfigOverrides());
    this.#overrides = valid;
    this.#current = applyOverrides(this.#base, valid);
  }

  get current(): Config {
    return this.#current;
  }

  get overrides(): Readonly<Record<string, unknown>> {
    return this.#overrides;
  }

  onChange(listener: ConfigListener): void {
    this.#listeners.push(listener);
  }

  /** Validates (throws ConfigError), persists, applies. A null value removes an override. */
  async update(patch: Record<string, unknown>): Promise<Config> {
    const merged: Record<string, unknown> = { ...this.#overrides };
    for (const [k, v] of Object.entries(patch)) {
      if (v === null) delete merged[k];
      else merged[k] = v;
    }
    // Validate everything before persisting anything.
    for (const k of Object.keys(patch))
      applyOverrides(this.#base, patch[k] === null ? {} : { [k]: patch[k] });
    const next = applyOverrides(this.#base, merged);
    await this.#store.setConfigOverrides(patch);
    const previous = this.#current;
    this.#overrides = merged;
    this.#current = next;
    for (const listener of this.#listeners) await listener(next, previous);
    return next;
  }
}

/**
 * The persisted overrides that `base` still accepts: one from an older version or out of a
 * narrowed range is dropped (the start-up value holds).
 */
export function validOverrides(base: Config, saved: Record<string, unknown>): Record<string, unknown> {
  const valid: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(saved)) {
    try {
      applyOverrides(base, { [k]: v });
      valid[k] = v;
    } catch {
      // dropped, see above
    }
  }
  return valid;
}
