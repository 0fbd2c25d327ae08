// A small schema DSL: one declaration gives both the TypeScript type (`Infer<typeof S>`) and a
// validator that never throws, collects every error with its field path, applies defaults, and
// can describe itself so reference docs are generated from the same source.
//
// Rules of the road: `null` counts as absent (YAML writes `field:` for "nothing"), a subtree's
// refinements run only when the subtree itself is valid (they may assume the declared type), and
// outputs are fresh objects, so a validated value never aliases its input.
import type { FieldError } from '../errors.js';

export type ValidationResult<T> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

/** Reports a problem at a path relative to the value being refined (`''` = the value itself). */
export type Report = (relativePath: string, message: string) => void;
export type Refinement<T> = (value: T, report: Report) => void;

/** One row of a schema's self-description, for reference docs and drift checks. */
export interface FieldDescription {
  /** Path with `[]` for list items, e.g. `spec.ports[].port`. */
  field: string;
  type: string;
  required: boolean;
  default?: unknown;
  description?: string;
}

const INVALID: unique symbol = Symbol('invalid');
type Parsed<T> = T | typeof INVALID;

export abstract class Schema<T> {
  declare readonly _output: T;
  description: string | undefined;
  private refinements: Refinement<unknown>[] = [];
  private transforms: ((value: unknown) => unknown)[] = [];

  /** Human type, e.g. `integer ≥ 1 and ≤ 65535`; used in messages and docs. */
  abstract typeLabel(): string;
  /** Whether the input has the JSON type this schema expects (used to pick a union branch). */
  abstract matchesType(input: unknown): boolean;
  protected abstract parse(input: unknown, path: string, errors: FieldError[]): Parsed<T>;
  /** Nested schemas by relative path segment, for self-description. */
  children(): [string, Schema<unknown>][] {
    return [];
  }

  /** Validates below `path`, appending to `errors`; the internal entry point for combinators. */
  run(input: unknown, path: string, errors: FieldError[]): Parsed<T> {
    const before = errors.length;
    let value: unknown = this.parse(input, path, errors);
    if (value === INVALID || errors.length > before) return INVALID;
    for (const refine of this.refinements) {
      refine(value, (relativePath, message) => errors.push({ path: joinPath(path, relativePath), message }));
    }
    if (errors.length > before) return INVALID;
    for (const transform of this.transforms) value = transform(value);
    return value as T;
  }

  validate(input: unknown): ValidationResult<T> {
    const errors: FieldError[] = [];
    const value = this.run(input, '', errors);
    return value === INVALID || errors.length > 0 ? { ok: false, errors } : { ok: true, value };
  }

  describe(text: string): this {
    const copy = this.clone();
    copy.description = text;
    return copy;
  }

  /** Adds a check beyond the declared shape (uniqueness, cross-field rules…). */
  refine(check: Refinement<T>): this {
    const copy = this.clone();
    copy.refinements = [...this.refinements, check as Refinement<unknown>];
    return copy;
  }

  /** Normalizes a valid value (e.g. fills a default that depends on a sibling field). */
  transform(fn: (value: T) => T): this {
    const copy = this.clone();
    copy.transforms = [...this.transforms, fn as (value: unknown) => unknown];
    return copy;
  }

  optional(): OptionalSchema<T> {
    return new OptionalSchema(this);
  }

  /** Makes the field optional on input; when absent, `value` (deep-copied) is filled in. */
  default(value: T): DefaultSchema<T> {
    return new DefaultSchema(this, value);
  }

  protected clone(): this {
    return Object.assign(Object.create(Object.getPrototypeOf(this) as object) as this, this);
  }
}

export type Infer<S extends Schema<unknown>> = S['_output'];

/**
 * A field that may be absent (undefined or null): it describes itself as its inner schema does,
 * and subclasses say what an absent value becomes.
 */
abstract class AbsentableSchema<T extends Out, Out> extends Schema<Out> {
  constructor(readonly inner: Schema<T>) {
    super();
    this.description = inner.description;
  }
  typeLabel(): string {
    return this.inner.typeLabel();
  }
  matchesType(input: unknown): boolean {
    return input === undefined || input === null || this.inner.matchesType(input);
  }
  protected parse(input: unknown, path: string, errors: FieldError[]): Parsed<Out> {
    return input === undefined || input === null ? this.absent() : this.inner.run(input, path, errors);
  }
  protected abstract absent(): Out;
  override children(): [string, Schema<unknown>][] {
    return this.inner.children();
  }
}

export class OptionalSchema<T> extends AbsentableSchema<T, T | undefined> {
  declare readonly _optional: true;
  protected absent(): undefined {
    return undefined;
  }
}

export class DefaultSchema<T> extends AbsentableSchema<T, T> {
  constructor(
    inner: Schema<T>,
    readonly defaultValue: T,
  ) {
    super(inner);
  }
  protected absent(): T {
    return structuredClone(this.defaultValue);
  }
}

// ---------------------------------------------------------------------------------------------
// Scalars

export interface StringFormat {
  /** Completes "must be …", e.g. `a DNS-1123 label (lowercase letters, digits and "-")`. */
  description: string;
  test: RegExp | ((value: string) => boolean);
}

export interface StringOptions {
  minLength?: number;
  maxLength?: number;
  format?: StringFormat;
}

export class StringSchema<T extends string> extends Schema<T> {
  constructor(
    readonly options: StringOptions,
    readonly allowed: readonly T[] | undefined,
  ) {
    super();
  }
  typeLabel(): string {
    if (this.allowed) return `one of ${this.allowed.join(', ')}`;
    const { minLength, maxLength, format } = this.options;
    const limits = [
      minLength !== undefined && minLength > 1 ? `at least ${minLength} characters` : '',
      maxLength !== undefined ? `at most ${maxLength} characters` : '',
    ].filter(Boolean);
    const noun = minLength === 1 ? 'non-empty string' : 'string';
    const base = format ? `${noun}: ${format.description}` : noun;
    return limits.length > 0 ? `${base}; ${limits.join(', ')}` : base;
  }
  matchesType(input: unknown): boolean {
    return typeof input === 'string';
  }
  protected parse(input: unknown, path: string, errors: FieldError[]): Parsed<T> {
    const fail = (message: string): typeof INVALID => {
      errors.push({ path, message });
      return INVALID;
    };
    if (typeof input !== 'string') {
      const hint = typeof input === 'number' || typeof input === 'boolean' ? ' (quote it in YAML)' : '';
      const wanted = this.allowed ? `one of ${this.allowed.join(', ')}` : 'a string';
      return fail(`must be ${wanted}, got ${describeValue(input)}${hint}`);
    }
    if (this.allowed) {
      if ((this.allowed as readonly string[]).includes(input)) return input as T;
      const sameIgnoringCase = this.allowed.find((a) => a.toLowerCase() === input.toLowerCase());
      const hint = sameIgnoringCase
        ? ` (values are case-sensitive: did you mean "${sameIgnoringCase}"?)`
        : '';
      return fail(`must be one of ${this.allowed.join(', ')}, got ${describeValue(input)}${hint}`);
    }
    const { minLength, maxLength, format } = this.options;
    if (minLength !== undefined && input.length < minLength) {
      return fail(
        minLength === 1
          ? 'must not be empty'
          : `must be at least ${minLength} characters, got ${input.length}`,
      );
    }
    if (maxLength !== undefined && input.length > maxLength) {
      return fail(`must be at most ${maxLength} characters, got ${input.length}`);
    }
    if (format) {
      const valid = typeof format.test === 'function' ? format.test(input) : format.test.test(input);
      if (!valid) return fail(`must be ${format.description}, got ${describeValue(input)}`);
    }
    return input as T;
  }
}

export function string<const E extends readonly string[]>(
  options: StringOptions & { enum: E },
): StringSchema<E[number]>;
export function string(options?: StringOptions): StringSchema<string>;
export function string(options: StringOptions & { enum?: readonly string[] } = {}): StringSchema<string> {
  const { enum: allowed, ...rest } = options;
  return new StringSchema(rest, allowed);
}

export interface NumberOptions {
  min?: number;
  max?: number;
}

export class NumberSchema extends Schema<number> {
  constructor(
    readonly integer: boolean,
    readonly options: NumberOptions,
  ) {
    super();
  }
  typeLabel(): string {
    const { min, max } = this.options;
    const bounds = [min !== undefined ? `≥ ${min}` : '', max !== undefined ? `≤ ${max}` : ''].filter(Boolean);
    const base = this.integer ? 'integer' : 'number';
    return bounds.length > 0 ? `${base} ${bounds.join(' and ')}` : base;
  }
  matchesType(input: unknown): boolean {
    return typeof input === 'number';
  }
  protected parse(input: unknown, path: string, errors: FieldError[]): Parsed<number> {
    const { min, max } = this.options;
    const valid =
      typeof input === 'number' &&
      (this.integer ? Number.isSafeInteger(input) : Number.isFinite(input)) &&
      (min === undefined || input >= min) &&
      (max === undefined || input <= max);
    if (valid) return input;
    const hint =
      typeof input === 'string' && input.trim() !== '' && !Number.isNaN(Number(input))
        ? ' (remove the quotes)'
        : '';
    errors.push({
      path,
      message: `must be ${article(this.typeLabel())}, got ${describeValue(input)}${hint}`,
    });
    return INVALID;
  }
}

export const int = (options: NumberOptions = {}): NumberSchema => new NumberSchema(true, options);
export const number = (options: NumberOptions = {}): NumberSchema => new NumberSchema(false, options);

export class BooleanSchema extends Schema<boolean> {
  typeLabel(): string {
    return 'boolean';
  }
  matchesType(input: unknown): boolean {
    return typeof input === 'boolean';
  }
  protected parse(input: unknown, path: string, errors: FieldError[]): Parsed<boolean> {
    if (typeof input === 'boolean') return input;
    errors.push({ path, message: `must be true or false, got ${describeValue(input)}` });
    return INVALID;
  }
}

export const boolean = (): BooleanSchema => new BooleanSchema();

export class LiteralSchema<L extends string | number | boolean> extends Schema<L> {
  constructor(readonly literal: L) {
    super();
  }
  typeLabel(): string {
    return JSON.stringify(this.literal);
  }
  matchesType(input: unknown): boolean {
    return typeof input === typeof this.literal;
  }
  protected parse(input: unknown, path: string, errors: FieldError[]): Parsed<L> {
    if (input === this.literal) return this.literal;
    errors.push({ path, message: `must be ${JSON.stringify(this.literal)}, got ${describeValue(input)}` });
    return INVALID;
  }
}

export const literal = <const L extends string | number | boolean>(value: L): LiteralSchema<L> =>
  new LiteralSchema(value);

// ---------------------------------------------------------------------------------------------
// Collections

export interface ArrayOptions {
  minItems?: number;
  maxItems?: number;
}

export class ArraySchema<T> extends Schema<T[]> {
  constructor(
    readonly item: Schema<T>,
    readonly options: ArrayOptions,
  ) {
    super();
  }
  typeLabel(): string {
    const { minItems, maxItems } = this.options;
    const bounds = [
      minItems !== undefined && minItems > 0 ? `at least ${minItems}` : '',
      maxItems !== undefined ? `at most ${maxItems}` : '',
    ].filter(Boolean);
    const itemLabel = this.item instanceof ObjectSchema ? 'objects' : this.item.typeLabel();
    return `list of ${itemLabel}${bounds.length > 0 ? ` (${bounds.join(', ')})` : ''}`;
  }
  matchesType(input: unknown): boolean {
    return Array.isArray(input);
  }
  protected parse(input: unknown, path: string, errors: FieldError[]): Parsed<T[]> {
    if (!Array.isArray(input)) {
      errors.push({ path, message: `must be a list, got ${describeValue(input)}` });
      return INVALID;
    }
    const { minItems, maxItems } = this.options;
    if (minItems !== undefined && input.length < minItems) {
      errors.push({ path, message: `must have at least ${plural(minItems, 'item')}, got ${input.length}` });
    }
    if (maxItems !== undefined && input.length > maxItems) {
      errors.push({ path, message: `must have at most ${plural(maxItems, 'item')}, got ${input.length}` });
    }
    const out: T[] = [];
    input.forEach((element: unknown, i) => {
      const itemPath = `${path}[${i}]`;
      if (element === null || element === undefined) {
        errors.push({ path: itemPath, message: `must be ${article(this.item.typeLabel())}, got null` });
        return;
      }
      const value = this.item.run(element, itemPath, errors);
      if (value !== INVALID) out.push(value);
    });
    return out;
  }
  override children(): [string, Schema<unknown>][] {
    return [['[]', this.item]];
  }
}

export const array = <T>(item: Schema<T>, options: ArrayOptions = {}): ArraySchema<T> =>
  new ArraySchema(item, options);

export interface RecordOptions {
  key?: Schema<string>;
  maxEntries?: number;
}

/** A map with arbitrary keys (labels, annotations, selectors). */
export class RecordSchema<T> extends Schema<Record<string, T>> {
  constructor(
    readonly value: Schema<T>,
    readonly options: RecordOptions,
  ) {
    super();
  }
  typeLabel(): string {
    return `map of string to ${this.value.typeLabel()}`;
  }
  matchesType(input: unknown): boolean {
    return isPlainObject(input);
  }
  protected parse(input: unknown, path: string, errors: FieldError[]): Parsed<Record<string, T>> {
    if (!isPlainObject(input)) {
      errors.push({
        path,
        message: `must be a map of string to ${this.value.typeLabel()}, got ${describeValue(input)}`,
      });
      return INVALID;
    }
    const keys = Object.keys(input);
    const { maxEntries, key: keySchema } = this.options;
    if (maxEntries !== undefined && keys.length > maxEntries) {
      errors.push({ path, message: `must have at most ${plural(maxEntries, 'entry')}, got ${keys.length}` });
    }
    const out: Record<string, T> = {};
    for (const key of keys) {
      const entryPath = keyPath(path, key);
      if (keySchema) {
        const keyErrors: FieldError[] = [];
        keySchema.run(key, entryPath, keyErrors);
        for (const e of keyErrors) errors.push({ path: e.path, message: `invalid key: ${e.message}` });
      }
      const value = this.value.run(input[key], entryPath, errors);
      // defineProperty, because a plain assignment of the key "__proto__" would set the prototype.
      if (value !== INVALID)
        Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  override children(): [string, Schema<unknown>][] {
    return [];
  }
}

export const record = <T>(value: Schema<T>, options: RecordOptions = {}): RecordSchema<T> =>
  new RecordSchema(value, options);

type Shape = { [field: string]: Schema<unknown> };
type OptionalKeys<S extends Shape> = {
  [K in keyof S]: S[K] extends { readonly _optional: true } ? K : never;
}[keyof S];
type Flatten<T> = { [K in keyof T]: T[K] } & {};
export type InferShape<S extends Shape> = Flatten<
  { [K in Exclude<keyof S, OptionalKeys<S>>]: Infer<S[K]> } & {
    [K in OptionalKeys<S>]?: Exclude<Infer<S[K]>, undefined>;
  }
>;

export interface ObjectOptions {
  /** Fields accepted on input and dropped from the output (e.g. server-set read-only fields). */
  ignored?: readonly string[];
}

export class ObjectSchema<S extends Shape> extends Schema<InferShape<S>> {
  constructor(
    readonly shape: S,
    readonly options: ObjectOptions,
  ) {
    super();
  }
  typeLabel(): string {
    return 'object';
  }
  matchesType(input: unknown): boolean {
    return isPlainObject(input);
  }
  protected parse(input: unknown, path: string, errors: FieldError[]): Parsed<InferShape<S>> {
    const fields = Object.keys(this.shape);
    if (!isPlainObject(input)) {
      errors.push({
        path,
        message: `must be an object with fields ${fields.join(', ')}, got ${describeValue(input)}`,
      });
      return INVALID;
    }
    const ignored = this.options.ignored ?? [];
    for (const key of Object.keys(input)) {
      if (Object.hasOwn(this.shape, key) || ignored.includes(key)) continue;
      const suggestion = closest(key, fields);
      errors.push({
        path: keyPath(path, key),
        message: `unknown field "${key}"; allowed: ${fields.join(', ')}${suggestion ? ` (did you mean "${suggestion}"?)` : ''}`,
      });
    }
    const out: Record<string, unknown> = {};
    for (const [field, schema] of Object.entries(this.shape)) {
      const raw = Object.hasOwn(input, field) ? input[field] : undefined;
      const fieldPath = keyPath(path, field);
      if (
        (raw === undefined || raw === null) &&
        !(schema instanceof OptionalSchema || schema instanceof DefaultSchema)
      ) {
        errors.push({
          path: fieldPath,
          message: `required field is missing; expected ${article(schema.typeLabel())}`,
        });
        continue;
      }
      const value = schema.run(raw, fieldPath, errors);
      if (value !== INVALID && value !== undefined) out[field] = value;
    }
    return out as InferShape<S>;
  }
  override children(): [string, Schema<unknown>][] {
    return Object.entries(this.shape);
  }
}

export const object = <S extends Shape>(shape: S, options: ObjectOptions = {}): ObjectSchema<S> =>
  new ObjectSchema(shape, options);

type InferUnion<Options extends readonly Schema<unknown>[]> = Infer<Options[number]>;

/**
 * One of several schemas. The branch is picked by JSON type (number vs string…); when several
 * branches share the type, the first that validates wins, else the first branch's errors show.
 */
export class UnionSchema<Options extends readonly Schema<unknown>[]> extends Schema<InferUnion<Options>> {
  constructor(readonly options: Options) {
    super();
  }
  typeLabel(): string {
    return this.options.map((o) => o.typeLabel()).join(' or ');
  }
  matchesType(input: unknown): boolean {
    return this.options.some((o) => o.matchesType(input));
  }
  protected parse(input: unknown, path: string, errors: FieldError[]): Parsed<InferUnion<Options>> {
    const candidates = this.options.filter((o) => o.matchesType(input));
    if (candidates.length === 0) {
      errors.push({
        path,
        message: `must be ${this.options.map((o) => article(o.typeLabel())).join(' or ')}, got ${describeValue(input)}`,
      });
      return INVALID;
    }
    let firstErrors: FieldError[] | undefined;
    for (const candidate of candidates) {
      const attempt: FieldError[] = [];
      const value = candidate.run(input, path, attempt);
      if (value !== INVALID && attempt.length === 0) return value as InferUnion<Options>;
      firstErrors ??= attempt;
    }
    errors.push(...(firstErrors ?? []));
    return INVALID;
  }
}

export const union = <const Options extends readonly Schema<unknown>[]>(
  ...options: Options
): UnionSchema<Options> => new UnionSchema(options);

// ---------------------------------------------------------------------------------------------
// Self-description

/** Every field below `schema`, depth first, with paths rooted at `prefix`. */
export function describeFields(schema: Schema<unknown>, prefix = ''): FieldDescription[] {
  const rows: FieldDescription[] = [];
  for (const [segment, child] of schema.children()) {
    const field = segment === '[]' ? `${prefix}[]` : keyPath(prefix, segment);
    if (segment !== '[]') {
      const row: FieldDescription = {
        field,
        type: child.typeLabel(),
        required: !(child instanceof OptionalSchema || child instanceof DefaultSchema),
      };
      if (child instanceof DefaultSchema) row.default = child.defaultValue;
      if (child.description !== undefined) row.description = child.description;
      rows.push(row);
    }
    rows.push(...describeFields(child, field));
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Helpers shared with the kind modules

const PLAIN_SEGMENT = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** The path of a literal key below `base`: `spec.ports`, or `labels["app.kubernetes.io/name"]` for odd keys. */
export function keyPath(base: string, key: string): string {
  if (PLAIN_SEGMENT.test(key)) return base === '' ? key : `${base}.${key}`;
  return `${base}[${JSON.stringify(key)}]`;
}

/** Appends a relative path written by a refinement: `[1].name`, `ports[1].name`, `timeouts.request`. */
export function joinPath(base: string, segment: string): string {
  if (segment === '') return base;
  if (segment.startsWith('[') || segment.startsWith('.')) return `${base}${segment}`;
  const [head = segment, ...rest] = splitFirstSegment(segment);
  const joined = PLAIN_SEGMENT.test(head)
    ? base === ''
      ? head
      : `${base}.${head}`
    : `${base}[${JSON.stringify(head)}]`;
  return rest.length > 0 ? `${joined}${rest.join('')}` : joined;
}

// A relative path from a refinement ("ports[1].name") must not be quoted as one odd key.
function splitFirstSegment(segment: string): string[] {
  const relative = /^([A-Za-z_][A-Za-z0-9_-]*)((?:\[\d+\]|\.[A-Za-z_][A-Za-z0-9_-]*)+)$/.exec(segment);
  return relative ? [relative[1] ?? segment, relative[2] ?? ''] : [segment];
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A short, safe rendering of an input value for messages. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string')
    return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  return typeof value;
}

function article(label: string): string {
  if (label.startsWith('one of') || label.startsWith('"')) return label;
  return /^[aeiou]/i.test(label) ? `an ${label}` : `a ${label}`;
}

function plural(n: number, noun: string): string {
  if (n === 1) return `1 ${noun}`;
  return `${n} ${noun.endsWith('y') ? `${noun.slice(0, -1)}ies` : `${noun}s`}`;
}

/** The allowed name closest to a mistyped one, if it is plausibly a typo. */
function closest(input: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = editDistance(input.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return bestDistance <= Math.max(1, Math.floor(input.length / 4)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 3 || a.length > 64 || b.length > 64) return Infinity;
  let beforePrevious: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      // An adjacent transposition ("weigth" for "weight") counts as one edit, not two.
      const transposition =
        i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]
          ? (beforePrevious[j - 2] ?? 0) + 1
          : Infinity;
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution, transposition));
    }
    beforePrevious = previous;
    previous = current;
  }
  return previous[b.length] ?? Infinity;
}
