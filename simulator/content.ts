/**
 * Skill and category content as pure functions of (seed, index, version).
 *
 * The simulator never stores a skill's JSON: a million skills at ~1 KB would be a gigabyte.
 * It stores a few numbers per skill (catalog.ts) and rebuilds the content on demand from
 * pools of pre-escaped JSON fragments, by string concatenation, which costs about a
 * microsecond a skill. The same (seed, index, version) always gives the same bytes.
 */
import { hash4 } from './rng.js';

/** Thirty base categories: [name, display name, skill types that fit]. */
const BASE_CATEGORIES: readonly (readonly [string, string])[] = [
  ['data-processing', 'Data Processing'],
  ['web-scraping', 'Web Scraping'],
  ['devops', 'DevOps'],
  ['security', 'Security'],
  ['machine-learning', 'Machine Learning'],
  ['nlp', 'Natural Language'],
  ['computer-vision', 'Computer Vision'],
  ['databases', 'Databases'],
  ['cloud', 'Cloud'],
  ['monitoring', 'Monitoring'],
  ['testing', 'Testing'],
  ['documentation', 'Documentation'],
  ['finance', 'Finance'],
  ['marketing', 'Marketing'],
  ['sales', 'Sales'],
  ['customer-support', 'Customer Support'],
  ['productivity', 'Productivity'],
  ['communication', 'Communication'],
  ['file-management', 'File Management'],
  ['image-generation', 'Image Generation'],
  ['audio', 'Audio'],
  ['video', 'Video'],
  ['research', 'Research'],
  ['education', 'Education'],
  ['healthcare', 'Healthcare'],
  ['legal', 'Legal'],
  ['hr', 'Human Resources'],
  ['ecommerce', 'E-commerce'],
  ['iot', 'IoT'],
  ['automation', 'Automation'],
];

export const MAX_BASE_CATEGORIES = BASE_CATEGORIES.length;

const SKILL_TYPES = ['python', 'npm', 'shell', 'prompt', 'api'] as const;

const ADJECTIVES = [
  'Fast',
  'Smart',
  'Robust',
  'Simple',
  'Secure',
  'Batch',
  'Streaming',
  'Incremental',
  'Parallel',
  'Adaptive',
  'Lightweight',
  'Advanced',
  'Precise',
  'Resilient',
  'Scalable',
  'Unified',
  'Auto',
  'Quick',
  'Deep',
  'Live',
];
const NOUNS = [
  'Parser',
  'Extractor',
  'Analyzer',
  'Summarizer',
  'Converter',
  'Validator',
  'Scheduler',
  'Monitor',
  'Classifier',
  'Translator',
  'Generator',
  'Indexer',
  'Crawler',
  'Notifier',
  'Formatter',
  'Resolver',
  'Aggregator',
  'Exporter',
  'Importer',
  'Inspector',
  'Optimizer',
  'Planner',
  'Reporter',
  'Tracker',
];
const TOPICS = [
  'CSV',
  'JSON',
  'PDF',
  'Invoice',
  'Log',
  'Email',
  'Ticket',
  'Metric',
  'Image',
  'Sitemap',
  'Contract',
  'Receipt',
  'Calendar',
  'Spreadsheet',
  'Webhook',
  'Transcript',
  'Dataset',
  'Report',
  'Schema',
  'Queue',
];
const AUTHORS = [
  'atom-labs',
  'ada.lovelace',
  'grace-h',
  'linus.t',
  'margaret.h',
  'alan.turing',
  'katherine.j',
  'dennis.r',
  'barbara.l',
  'ken.t',
  'radia.p',
  'tim.bl',
  'frances.a',
  'john.mc',
  'edsger.d',
  'donald.k',
  'sophie.w',
  'guido.vr',
  'yukihiro.m',
  'anders.h',
  'Zoë Ångström',
  'José Núñez',
];
const SENTENCES = [
  'Processes large inputs in constant memory by streaming records instead of loading them at once.',
  'Retries transient failures with exponential backoff and reports permanent ones clearly.',
  'Works offline and caches intermediate results between runs to save time.',
  'Validates every record against a schema and quarantines the ones that fail.',
  'Supports dry runs so you can see what would change before anything is written.',
  'Emits structured logs and metrics that plug into your existing dashboards.',
  'Handles Unicode correctly, including combining marks, emoji and right-to-left scripts.',
  'Configurable through environment variables or a small YAML file; sensible defaults throughout.',
  'Designed for agents: every output is machine-readable JSON with stable field names.',
  'Rate-limits itself to stay within the quotas of the services it calls.',
  'Deduplicates results by content hash, so repeated runs are idempotent.',
  'Includes examples for the most common workflows and a troubleshooting guide.',
  'Ships with tests and type hints; contributions are welcome.',
  'Scales from a laptop to a cluster without code changes.',
  'Redacts secrets and personal data before anything leaves the machine.',
  'Understands "quoted" values, back\\slashes and tabs\tinside fields.',
];
const PY_PACKAGES = [
  'requests',
  'pandas',
  'numpy',
  'pydantic',
  'httpx',
  'beautifulsoup4',
  'lxml',
  'scikit-learn',
  'torch',
  'transformers',
  'pillow',
  'sqlalchemy',
  'boto3',
  'rich',
  'typer',
  'pyyaml',
  'openpyxl',
];
const NPM_PACKAGES = [
  'undici',
  'zod',
  'cheerio',
  'lodash',
  'dayjs',
  'sharp',
  'pdf-lib',
  'ws',
  'commander',
  'yaml',
  'csv-parse',
  'pino',
  'fast-xml-parser',
  'ioredis',
  'pg',
  'better-sqlite3',
];
const TAGS = [
  'etl',
  'ai',
  'automation',
  'cli',
  'batch',
  'realtime',
  'cloud',
  'local',
  'beta',
  'stable',
  'official',
  'community',
  'fast',
  'secure',
  'gpu',
  'no-code',
  'enterprise',
  'free',
  'open-source',
  'utility',
];

/** JSON-escaped (quoted) forms, computed once. */
const q = (s: string): string => JSON.stringify(s);
const esc = (s: string): string => JSON.stringify(s).slice(1, -1);
const Q_AUTHORS = AUTHORS.map(q);
const Q_TYPES = SKILL_TYPES.map(q);

export interface CategoryInfo {
  readonly name: string;
  readonly displayName: string;
}

/** Category names: the base thirty, then `extra-N` for categories the mutation engine adds. */
export function baseCategory(i: number): CategoryInfo {
  const c = BASE_CATEGORIES[i % BASE_CATEGORIES.length] ?? ['misc', 'Misc'];
  return { name: c[0], displayName: c[1] };
}

/** Per-category fragments. */
interface CategoryTemplate {
  /** `,"category":"x"` */
  readonly categoryMember: string;
  /** Escaped `atom run x/` */
  readonly commandPrefix: string;
  /** Escaped code header. */
  readonly codePrefix: string;
}
const CATEGORY_TEMPLATES: CategoryTemplate[] = BASE_CATEGORIES.map(([name]) => ({
  categoryMember: `,"category":${q(name)}`,
  commandPrefix: esc(`atom run ${name}/`),
  codePrefix: esc(
    `import json\nfrom skills.${name.replace(/-/g, '_')} import run\n\ndef main(args):\n    """Entry point."""\n`,
  ),
}));

/**
 * Lists of k consecutive pool items starting at s (wrapping), pre-joined: table[s][k-1].
 * Descriptions, tags and packages are picked from these, so no join runs per skill.
 */
function listTable(pool: readonly string[], maxCount: number, step: number, sep: string): string[][] {
  return pool.map((_, s) => {
    const out: string[] = [];
    let acc = '';
    for (let k = 0; k < maxCount; k++) {
      acc += (k > 0 ? sep : '') + (pool[(s + k * step) % pool.length] as string);
      out.push(acc);
    }
    return out;
  });
}
const DESCRIPTIONS = listTable(SENTENCES.map(esc), 6, 5, ' ');
const TAG_LISTS = listTable(TAGS.map(q), 4, 7, ',');
const PY_LISTS = listTable(PY_PACKAGES.map(q), 3, 7, ',');
const NPM_LISTS = listTable(NPM_PACKAGES.map(q), 3, 7, ',');

const COMBOS = ADJECTIVES.length * TOPICS.length * NOUNS.length;

/** Per-name fragments (a name is one of ADJECTIVES x TOPICS x NOUNS), built on first use. */
interface NameTemplate {
  readonly name: string;
  /** `,"name":"N","description":"N: ` */
  readonly head: string;
  /** `"N"` */
  readonly nameJson: string;
  /** Escaped `N: `, the start of the description. */
  readonly descHead: string;
  /** Escaped slug. */
  readonly slug: string;
  /** Escaped code lines `    step_k = run(args, "slug", ` for k = 0..4. */
  readonly steps: readonly string[];
}
const NAME_TEMPLATES: (NameTemplate | undefined)[] = new Array<NameTemplate | undefined>(COMBOS);

function nameCombo(seed: number, index: number): number {
  return hash4(seed, index, 0, 11) % COMBOS;
}

function nameTemplate(combo: number): NameTemplate {
  let t = NAME_TEMPLATES[combo];
  if (t) return t;
  const a = combo % ADJECTIVES.length;
  const b = Math.floor(combo / ADJECTIVES.length) % TOPICS.length;
  const c = Math.floor(combo / (ADJECTIVES.length * TOPICS.length));
  const name = `${ADJECTIVES[a]} ${TOPICS[b]} ${NOUNS[c]}`;
  const slug = name.toLowerCase().replace(/ /g, '-');
  t = {
    name,
    head: `,"name":${q(name)},"description":"${esc(name)}: `,
    nameJson: q(name),
    descHead: `${esc(name)}: `,
    slug: esc(slug),
    steps: [0, 1, 2, 3, 4].map((k) => esc(`    step_${k} = run(args, "${slug}", `)),
  };
  NAME_TEMPLATES[combo] = t;
  return t;
}

export function skillName(seed: number, index: number): string {
  return nameTemplate(nameCombo(seed, index)).name;
}

/** Index of the base category a skill belongs to (fixed for its life). */
export function skillCategory(seed: number, index: number, categoryCount: number): number {
  return hash4(seed, index, 0, 12) % categoryCount;
}

const LICENSES = [
  ',"metadata":{"license":"MIT","revision":',
  ',"metadata":{"license":"Apache-2.0","revision":',
];
const NEWLINE = esc('\n');
const CODE_TAIL = esc('    return json.dumps(step_0)\n');

// Category x skill type x author: at most 30 x 5 x 22 joined strings, built on first use.
const META: (string | undefined)[] = [];
function metaMembers(category: number, type: number, author: number): string {
  const key = (category * SKILL_TYPES.length + type) * Q_AUTHORS.length + author;
  let m = META[key];
  if (m === undefined) {
    m = `${(CATEGORY_TEMPLATES[category] as CategoryTemplate).categoryMember},"skill_type":${Q_TYPES[type]},"author":${Q_AUTHORS[author]}`;
    META[key] = m;
  }
  return m;
}

/** The JSON-escaped pieces of one skill's content, picked by hashes of (seed, index, version). */
interface SkillParts {
  nt: NameTemplate;
  desc: string;
  category: string;
  type: string;
  author: string;
  /** `,"category":..,"skill_type":..,"author":..` in listing order, from a small cache. */
  meta: string;
  version: string;
  tags: string;
  py: string;
  npm: string;
  command: string;
  code: string;
  /** Inside of the examples array. */
  examples: string;
  /** The parameters object, in listing key order and in canonical key order. */
  params: string;
  paramsCanonical: string;
  license: number;
  revision: number;
  region: number;
  shard: number;
}

function skillParts(seed: number, index: number, version: number, categoryCount: number): SkillParts {
  const h0 = hash4(seed, index, version, 1);
  const h1 = hash4(seed, index, version, 2);
  const h2 = hash4(seed, index, 0, 3);
  const categoryIdx = skillCategory(seed, index, categoryCount);
  const cat = CATEGORY_TEMPLATES[categoryIdx] as CategoryTemplate;
  const nt = nameTemplate(nameCombo(seed, index));
  const typeIdx = h2 % SKILL_TYPES.length;
  // A quarter of the skills are minimal (one sentence, no code, examples or parameters), the
  // rest have 1-6 sentences and 1-4 code lines: about 0.6 to 1.8 KB, ~1.2 KB on average.
  const minimal = (h2 >>> 8) % 4 === 0;
  const command = cat.commandPrefix + nt.slug;
  let code = '';
  if (!minimal) {
    code = cat.codePrefix;
    const nCode = 1 + ((h1 >>> 4) % 4);
    for (let k = 0; k < nCode; k++) code += (nt.steps[k] as string) + version + ')' + NEWLINE;
    code += CODE_TAIL;
  }
  const limit = 10 + (h0 % 990);
  return {
    nt,
    desc: (DESCRIPTIONS[h1 % DESCRIPTIONS.length] as string[])[minimal ? 0 : h0 % 6] as string,
    category: cat.categoryMember,
    type: Q_TYPES[typeIdx] as string,
    author: Q_AUTHORS[h2 % Q_AUTHORS.length] as string,
    meta: metaMembers(categoryIdx, typeIdx, h2 % Q_AUTHORS.length),
    version: `${1 + (h2 % 3)}.${version - 1}.${h0 % 10}`,
    tags: (TAG_LISTS[(h0 >>> 3) % TAG_LISTS.length] as string[])[(h0 >>> 11) % 4] as string,
    py: typeIdx === 0 ? ((PY_LISTS[(h1 >>> 5) % PY_LISTS.length] as string[])[(h1 >>> 9) % 3] as string) : '',
    npm:
      typeIdx === 1 ? ((NPM_LISTS[(h1 >>> 5) % NPM_LISTS.length] as string[])[(h1 >>> 9) % 3] as string) : '',
    command,
    code,
    examples: minimal ? '' : '"' + command + ' --input data.json","' + command + ' --dry-run"',
    params: minimal
      ? '{}'
      : '{"input":{"type":"string","required":true},"limit":{"type":"integer","default":' + limit + '}}',
    paramsCanonical: minimal
      ? '{}'
      : '{"input":{"required":true,"type":"string"},"limit":{"default":' + limit + ',"type":"integer"}}',
    license: h2 & 1,
    revision: version,
    region: 1 + (h2 % 3),
    shard: h2 % 64,
  };
}

/**
 * The content of a skill, as a JSON fragment that starts right after the id member and ends
 * before the aggregates: `,"name":...,"x_origin":{...}`. Pure in (seed, index, version).
 * Only concatenation of precomputed pieces and small integers: about a microsecond.
 */
export function skillContentFragment(
  seed: number,
  index: number,
  version: number,
  categoryCount: number,
): string {
  const p = skillParts(seed, index, version, categoryCount);
  return (
    p.nt.head +
    p.desc +
    '"' +
    p.meta +
    ',"version":"' +
    p.version +
    '","tags":[' +
    p.tags +
    '],"python_packages":[' +
    p.py +
    '],"npm_packages":[' +
    p.npm +
    '],"examples":[' +
    p.examples +
    '],"code":"' +
    p.code +
    '","command":"' +
    p.command +
    '","parameters":' +
    p.params +
    LICENSES[p.license] +
    p.revision +
    ',"homepage":"https://example.com/skills/' +
    p.nt.slug +
    '"},"x_origin":{"region":"eu-' +
    p.region +
    '","shard":' +
    p.shard +
    '}'
  );
}

export interface SkillAggregates {
  averageRating: number;
  ratingCount: number;
  installCount: number;
}

/**
 * The same skill in canonical JSON (src/remote/canonical.ts: keys sorted by code unit, no
 * timestamps), built directly so the digest of a million skills does not parse and re-sort
 * a million objects. test/simulator-catalog.test.ts checks it equals canonicalJson of the
 * parsed listing JSON.
 */
export function skillCanonicalJson(
  seed: number,
  index: number,
  version: number,
  categoryCount: number,
  skillIdJson: string,
  agg: SkillAggregates,
): string {
  const p = skillParts(seed, index, version, categoryCount);
  return (
    '{"author":' +
    p.author +
    ',"average_rating":' +
    agg.averageRating +
    p.category +
    ',"code":"' +
    p.code +
    '","command":"' +
    p.command +
    '","description":"' +
    p.nt.descHead +
    p.desc +
    '","examples":[' +
    p.examples +
    '],"install_count":' +
    agg.installCount +
    ',"metadata":{"homepage":"https://example.com/skills/' +
    p.nt.slug +
    '","license":' +
    (p.license === 0 ? '"MIT"' : '"Apache-2.0"') +
    ',"revision":' +
    p.revision +
    '},"name":' +
    p.nt.nameJson +
    ',"npm_packages":[' +
    p.npm +
    '],"parameters":' +
    p.paramsCanonical +
    ',"python_packages":[' +
    p.py +
    '],"rating_count":' +
    agg.ratingCount +
    ',"skill_id":' +
    skillIdJson +
    ',"skill_type":' +
    p.type +
    ',"tags":[' +
    p.tags +
    '],"version":"' +
    p.version +
    '","x_origin":{"region":"eu-' +
    p.region +
    '","shard":' +
    p.shard +
    '}}'
  );
}

export function categoryDescription(name: string, version: number): string {
  return `Skills for ${name.replace(/-/g, ' ')} (revision ${version}).`;
}

export const SKILL_TYPE_NAMES: readonly string[] = SKILL_TYPES;

/** The skill_type of a skill (fixed for its life). */
export function skillTypeOf(seed: number, index: number): string {
  return SKILL_TYPES[hash4(seed, index, 0, 3) % SKILL_TYPES.length] as string;
}
