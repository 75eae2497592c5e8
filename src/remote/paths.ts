/**
 * Where each marketplace endpoint lives, relative to the base URL. The real service has moved
 * its routes between releases (`/skills`, `/marketplace/skills`, `/skills/marketplace/skills`),
 * so every path is configurable and the three known layouts are presets.
 *
 * `{skill_id}` in a template is replaced by the URL-encoded skill id.
 */
export interface MarketplacePaths {
  readonly skills: string;
  readonly skill: string;
  readonly categories: string;
  readonly health: string;
  readonly rate: string;
  readonly install: string;
}

export type RouteName = keyof MarketplacePaths;

export const ROUTE_NAMES: readonly RouteName[] = Object.freeze([
  'skills',
  'skill',
  'categories',
  'health',
  'rate',
  'install',
]);

export const PATH_LAYOUTS = ['skills', 'marketplace', 'skills-marketplace'] as const;
export type PathLayout = (typeof PATH_LAYOUTS)[number];

function layout(prefix: string): MarketplacePaths {
  return Object.freeze({
    skills: `${prefix}/skills`,
    skill: `${prefix}/skills/{skill_id}`,
    categories: `${prefix}/categories`,
    health: `${prefix}/health`,
    rate: `${prefix}/skills/{skill_id}/rate`,
    install: `${prefix}/skills/{skill_id}/install`,
  });
}

/** The three layouts the real service has shown, by the path of its skill listing. */
export const PATH_PRESETS: Readonly<Record<PathLayout, MarketplacePaths>> = Object.freeze({
  /** `/skills` */
  skills: layout(''),
  /** `/marketplace/skills` */
  marketplace: layout('/marketplace'),
  /** `/skills/marketplace/skills` */
  'skills-marketplace': layout('/skills/marketplace'),
});

export const DEFAULT_PATHS: MarketplacePaths = PATH_PRESETS.skills;

/**
 * Resolves a layout name or per-endpoint overrides (on top of a layout, `skills` by default)
 * into a full, frozen path table. Throws on a template that is not an absolute path, or a
 * per-skill route without `{skill_id}`, so a bad configuration fails at start-up.
 */
export function resolvePaths(
  spec: PathLayout | (Partial<MarketplacePaths> & { layout?: PathLayout }) | undefined,
): MarketplacePaths {
  if (spec === undefined) return DEFAULT_PATHS;
  if (typeof spec === 'string') {
    const preset = PATH_PRESETS[spec];
    if (!preset)
      throw new TypeError(`unknown path layout "${String(spec)}" (one of ${PATH_LAYOUTS.join(', ')})`);
    return preset;
  }
  const base = resolvePaths(spec.layout);
  const out: Record<RouteName, string> = { ...base };
  for (const name of ROUTE_NAMES) {
    const v = spec[name];
    // An empty override means "from the layout", as in the configuration table.
    if (v !== undefined && v !== '') out[name] = v;
  }
  for (const name of ROUTE_NAMES) {
    const problem = pathTemplateProblem(name, out[name]);
    if (problem !== null) throw new TypeError(`path for "${name}" ${problem}, got "${out[name]}"`);
  }
  return Object.freeze(out);
}

/** Routes whose path names one skill, so their template must hold `{skill_id}`. */
const PER_SKILL: ReadonlySet<RouteName> = new Set<RouteName>(['skill', 'rate', 'install']);

/** What a route's path template must be, in words (for the configuration reference). */
export function pathTemplateRule(name: RouteName): string {
  return PER_SKILL.has(name)
    ? 'an absolute path (/...) holding {skill_id}'
    : 'an absolute path (/...) without query';
}

/** Why `template` cannot be the path of `name` (see pathTemplateRule), or null when it can. */
export function pathTemplateProblem(name: RouteName, template: string): string | null {
  if (!template.startsWith('/') || /[?#\s]/.test(template)) {
    return 'must start with "/" and hold no query, fragment or space';
  }
  if (PER_SKILL.has(name) && !template.includes('{skill_id}')) return 'must contain {skill_id}';
  return null;
}

/** Fills `{skill_id}` with the encoded id. */
export function fillPath(template: string, skillId?: string): string {
  if (skillId === undefined) return template;
  return template.split('{skill_id}').join(encodeURIComponent(skillId));
}
