/**
 * A real store with some of its methods wrapped by a test (to fail once, or to run a hook after
 * a write): every other method is the store's own, bound to it.
 */
import type { Store } from '../../src/store/store.js';

type Method = (...args: unknown[]) => unknown;

/** `wrap(name, fn)` returns the replacement of method `name`, or undefined to keep `fn`. */
export function interceptStore(store: Store, wrap: (name: string, fn: Method) => Method | undefined): Store {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      const fn = (value as Method).bind(target);
      return (typeof prop === 'string' ? wrap(prop, fn) : undefined) ?? fn;
    },
  });
}
