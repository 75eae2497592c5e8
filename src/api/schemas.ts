/**
 * TypeBox schemas shared by the routes. Every route declares its request parts and its
 * responses with these, so validation, serialisation and the OpenAPI document (/docs/json)
 * come from one place. Response objects that carry remote data allow additional properties:
 * the marketplace's unknown fields are kept, never dropped.
 */
import { Type, type Static, type TSchema } from 'typebox';
import { Compile } from 'typebox/compile';

export const ErrorBody = Type.Object(
  {
    statusCode: Type.Integer(),
    code: Type.String({ description: 'A stable SKILLSYNC_ERR_* code (docs/errors.md).' }),
    error: Type.String({ description: 'The HTTP reason phrase.' }),
    message: Type.String(),
  },
  { $id: 'ErrorBody', additionalProperties: false },
);
export type ErrorBody = Static<typeof ErrorBody>;

/** The error responses every route may answer, merged into each route's `response`. */
export function errors(...statuses: number[]): Record<number, TSchema> {
  const out: Record<number, TSchema> = {};
  for (const s of [400, 500, ...statuses]) out[s] = ErrorBody;
  return out;
}
export function adminErrors(...statuses: number[]): Record<number, TSchema> {
  return errors(401, 403, ...statuses);
}

const NullableString = Type.Union([Type.String(), Type.Null()]);
const NullableNumber = Type.Union([Type.Number(), Type.Null()]);
const NullableInteger = Type.Union([Type.Integer(), Type.Null()]);
export const Nullable = { String: NullableString, Number: NullableNumber, Integer: NullableInteger };

export const SkillId = Type.String({ minLength: 1, maxLength: 256 });
export const IdParams = Type.Object({ id: SkillId }, { additionalProperties: false });
export const NumericIdParams = Type.Object(
  { id: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }) },
  { additionalProperties: false },
);

/** How fresh one record is. */
export const RecordFreshness = Type.Object(
  {
    synced_at: Type.String({ description: 'When a sync last saw this record (ISO time).' }),
    expires_at: Type.String(),
    age_seconds: Type.Number(),
    stale: Type.Boolean({ description: 'Past its TTL: still served, marked stale.' }),
    source: Type.String({
      description: 'How it last arrived: full, incremental, websocket, resolve, local.',
    }),
    served_from: Type.Literal('cache'),
  },
  { additionalProperties: false },
);

/** How fresh the catalog as a whole is (lists, categories). */
export const CatalogFreshness = Type.Object(
  {
    synced_at: Type.Union([Type.String(), Type.Null()], {
      description: 'End of the last successful sync (ISO time), null before the first one.',
    }),
    age_seconds: NullableNumber,
    stale: Type.Boolean(),
    source: Type.Literal('cache'),
    remote: Type.Union([Type.Literal('ok'), Type.Literal('degraded'), Type.Literal('unknown')], {
      description: 'State of the marketplace as the last runs saw it; the cache is served either way.',
    }),
  },
  { additionalProperties: false },
);

export const SkillBody = Type.Object(
  {
    skill_id: Type.String(),
    name: Type.String(),
    version: Type.String(),
    description: Type.Optional(NullableString),
    category: Type.Optional(NullableString),
    skill_type: Type.Optional(NullableString),
    author: Type.Optional(NullableString),
    tags: Type.Optional(Type.Union([Type.Array(Type.String()), Type.Null()])),
    average_rating: Type.Optional(NullableNumber),
    rating_count: Type.Optional(NullableInteger),
    install_count: Type.Optional(NullableInteger),
    updated_at: Type.Optional(NullableString),
  },
  { additionalProperties: true },
);

const OverrideTypes = Compile(Type.Partial(SkillBody));

/** Levels of arrays and objects an override value may nest (docs/api.md). */
export const MAX_OVERRIDE_DEPTH = 32;

/** Whether `value` nests more than `levels` arrays/objects; looks no deeper than that. */
function nestsDeeper(value: unknown, levels: number): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (levels === 0) return true;
  for (const v of Array.isArray(value) ? value : Object.values(value))
    if (nestsDeeper(v, levels - 1)) return true;
  return false;
}

/**
 * Overrides (set through PUT /local or as a conflict's explicit resolution) keep the effective
 * skill a SkillBody: a known field (description, tags, ratings...) keeps its documented type.
 * A `{"description": 5}` was stored and then made every answer carrying that skill fail at
 * serialisation (500). Every value also nests at most MAX_OVERRIDE_DEPTH levels: a ~10 KB body
 * nested thousands deep overflowed the call stack in the store (500). Returns the message of
 * the first field that does not fit, or null when all fit.
 */
export function overrideTypeError(overrides: unknown, path: string): string | null {
  if (overrides !== null && typeof overrides === 'object' && !Array.isArray(overrides)) {
    for (const [field, value] of Object.entries(overrides)) {
      if (nestsDeeper(value, MAX_OVERRIDE_DEPTH))
        return `${path}/${field}: an override value nests at most ${MAX_OVERRIDE_DEPTH} levels of arrays and objects`;
    }
  }
  if (OverrideTypes.Check(overrides)) return null;
  const field = OverrideTypes.Errors(overrides)[0]?.instancePath.slice(1) ?? '';
  return `${path}/${field}: an override keeps the type the skill schema gives the field`;
}

export const SkillView = Type.Object(
  {
    skill: SkillBody,
    local_overrides: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
    has_open_conflict: Type.Boolean(),
    freshness: RecordFreshness,
  },
  { additionalProperties: false },
);
export type SkillView = Static<typeof SkillView>;

export const PageQuery = {
  page: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1 })),
  page_size: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
};

export const Paging = {
  page: Type.Integer(),
  page_size: Type.Integer(),
  total: Type.Integer(),
  total_pages: Type.Integer(),
};

export const JsonObject = Type.Record(Type.String(), Type.Unknown());

export const RunView = Type.Object(
  {
    id: Type.Integer(),
    trigger: Type.String(),
    mode: Type.String(),
    status: Type.String(),
    started_at: Type.String(),
    finished_at: NullableString,
    duration_ms: NullableNumber,
    pages: Type.Integer(),
    upserted: Type.Integer(),
    unchanged: Type.Integer(),
    deleted: Type.Integer(),
    quarantined: Type.Integer(),
    conflicts_detected: Type.Integer(),
    conflicts_resolved: Type.Integer(),
    conflicts_manual: Type.Integer(),
    deletions_held: Type.Integer(),
    resumed_from_checkpoint: Type.Boolean(),
    error: NullableString,
  },
  { additionalProperties: false },
);

export const WsStatusView = Type.Object(
  {
    configured: Type.Boolean({ description: 'A WebSocket URL is configured.' }),
    enabled: Type.Boolean(),
    connected: Type.Boolean(),
    state: Type.String(),
    url: NullableString,
    last_connected_at: NullableString,
    last_message_at: NullableString,
    disconnect_reason: NullableString,
    reconnect_attempts: Type.Integer(),
    consecutive_failures: Type.Integer(),
    fallback_since: NullableString,
    next_attempt_at: NullableString,
    last_seq: NullableInteger,
    counts: Type.Record(Type.String(), Type.Integer()),
  },
  { additionalProperties: false },
);

export const ConflictView = Type.Object(
  {
    id: Type.Integer(),
    skill_id: Type.String(),
    type: Type.String(),
    severity: Type.String(),
    status: Type.String(),
    strategy: Type.String(),
    fields: Type.Array(Type.String()),
    resolution: NullableString,
    resolved_by: NullableString,
    resolved_at: NullableString,
    detected_at: Type.String(),
    updated_at: Type.String(),
  },
  { additionalProperties: false },
);

export const FieldDiff = Type.Object(
  {
    field: Type.String(),
    base: Type.Unknown(),
    local: Type.Unknown(),
    remote: Type.Unknown(),
    changed_locally: Type.Boolean(),
    changed_remotely: Type.Boolean(),
    conflicting: Type.Boolean(),
  },
  { additionalProperties: false },
);

export const OutboxView = Type.Object(
  {
    id: Type.Integer(),
    kind: Type.String(),
    chain_key: Type.String(),
    status: Type.String(),
    attempts: Type.Integer(),
    next_attempt_at: Type.String(),
    last_error: NullableString,
    payload: JsonObject,
    result: Type.Union([JsonObject, Type.Null()]),
    created_at: Type.String(),
    updated_at: Type.String(),
  },
  { additionalProperties: false },
);
