import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../src/core/errors.js';

describe('docs/errors.md', () => {
  const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
  const rows = new Map<string, string[]>();
  for (const line of doc.split('\n')) {
    const m = /^\|\s*`(SKILLSYNC_ERR_[A-Z0-9_]+)`\s*\|(.*)\|\s*$/.exec(line);
    if (m?.[1] && m[2] !== undefined)
      rows.set(
        m[1],
        m[2].split('|').map((c) => c.trim()),
      );
  }

  it.each(Object.entries(ERROR_CODES))('documents %s with its HTTP status and retryability', (code, info) => {
    const row = rows.get(code);
    expect(row, `${code} is missing from docs/errors.md`).toBeDefined();
    expect(row?.[0]).toBe(String(info.status));
    expect(row?.[1]).toBe(info.retryable ? 'yes' : 'no');
  });

  it('documents no code that does not exist', () => {
    for (const code of rows.keys()) expect(Object.keys(ERROR_CODES)).toContain(code);
  });
});
