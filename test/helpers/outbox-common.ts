/** Shared by the outbox tests and the crash child (which must not import the simulator). */
export const OUTBOX_TOKEN = 'outbox-test-token-0123456789';

/** A small seeded PRNG (mulberry32): every random choice in the tests replays from its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
