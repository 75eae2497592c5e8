/**
 * Merges the search index's pending list into the index off the write path.
 *
 * The GIN index on the search vector uses fast update: a write appends its ~40 lexeme entries
 * per skill to a pending list, and whoever pushes the list past gin_pending_list_limit merges
 * it into the index (sorting the entries by lexeme, one posting-list update per lexeme). That
 * merge was ~30% of a page's server time, paid inside the page's transaction. autovacuum would
 * merge the list in the background, but it may be off or slow, and its pace is not ours.
 *
 * So the store merges it itself: once writes have added enough rows, one call of
 * gin_clean_pending_list() runs on a pool connection of its own, at most one at a time. The
 * next page is written meanwhile (on a second core when there is one), and larger batches
 * also merge cheaper per entry. Nothing here is needed for correctness: entries in the
 * pending list are found by every search (the list is part of the index), just more slowly,
 * and a writer still merges the list itself when it passes the limit (migration 3 sets that
 * backstop at 4 MB). So a failed merge is only retried by the next one.
 */
import type { Db } from './pg-sql.js';

/** Rows written since the last merge that start the next one (~256 kB of pending entries). */
export const MERGE_AFTER_ROWS = 256;

export class PendingListMerger {
  readonly #sql: Db;
  readonly #afterRows: number;
  #rows = 0;
  #running: Promise<void> | null = null;
  #closed = false;
  /** Set when the role may not merge (only the index's owner may): no more attempts. */
  #refused = false;

  constructor(sql: Db, afterRows = MERGE_AFTER_ROWS) {
    this.#sql = sql;
    this.#afterRows = afterRows;
  }

  /** A committed transaction wrote (inserted or rewrote) `rows` skills. */
  written(rows: number): void {
    if (this.#closed || this.#refused || rows <= 0) return;
    this.#rows += rows;
    if (this.#rows >= this.#afterRows && this.#running === null) this.#running = this.#loop();
  }

  /** Resolves when no merge is running (the one in progress finishes). */
  async idle(): Promise<void> {
    while (this.#running !== null) await this.#running;
  }

  /** No merge starts after this; waits for the one in progress. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.idle();
  }

  async #loop(): Promise<void> {
    try {
      // Rows written while a merge ran are merged by the next round.
      while (!this.#closed && this.#rows >= this.#afterRows) {
        this.#rows = 0;
        await this.#sql`SELECT gin_clean_pending_list('skills_search_idx'::regclass)`;
      }
    } catch (err) {
      // Best effort (see above): the entries stay in the pending list, still searchable, and
      // the next merge or a writer past the limit moves them. A role that does not own the
      // index (42501) can never merge: writers alone do it from then on.
      if ((err as { code?: unknown }).code === '42501') this.#refused = true;
    } finally {
      this.#running = null;
    }
  }
}
