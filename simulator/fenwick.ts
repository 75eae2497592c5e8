/**
 * A Fenwick (binary indexed) tree over 0/1 "live" flags: O(log n) count of live skills before
 * an index and O(log n) lookup of the k-th live skill, so offset pages stay cheap on a
 * million-skill catalog with deletions.
 */
export class Fenwick {
  #tree: Int32Array;
  #size: number;

  constructor(size: number) {
    this.#size = size;
    this.#tree = new Int32Array(size + 1);
  }

  get size(): number {
    return this.#size;
  }

  /** Builds from a predicate in O(n). */
  static from(size: number, isSet: (i: number) => boolean): Fenwick {
    const f = new Fenwick(size);
    const t = f.#tree;
    for (let i = 0; i < size; i++) if (isSet(i)) t[i + 1] = 1;
    for (let i = 1; i <= size; i++) {
      const j = i + (i & -i);
      if (j <= size) t[j] = (t[j] as number) + (t[i] as number);
    }
    return f;
  }

  add(index: number, delta: number): void {
    for (let i = index + 1; i <= this.#size; i += i & -i) this.#tree[i] = (this.#tree[i] as number) + delta;
  }

  /** Number of set flags in [0, index). */
  prefix(index: number): number {
    let sum = 0;
    for (let i = Math.min(index, this.#size); i > 0; i -= i & -i) sum += this.#tree[i] as number;
    return sum;
  }

  /** Index of the k-th set flag (0-based k), or -1 when there are not that many. */
  kth(k: number): number {
    let pos = 0;
    let rem = k + 1;
    let step = 1;
    while (step * 2 <= this.#size) step *= 2;
    for (; step > 0; step >>= 1) {
      const next = pos + step;
      if (next <= this.#size && (this.#tree[next] as number) < rem) {
        pos = next;
        rem -= this.#tree[next] as number;
      }
    }
    return pos < this.#size ? pos : -1;
  }
}
