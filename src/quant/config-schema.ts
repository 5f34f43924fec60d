import * as path from "path";
import { packageRoot } from "../data/mnist";
import { readJsonFile } from "../json-file";

/**
 * Validates a config file against schema/qdebug-config.schema.json, the single
 * source of truth for its shape (editors use the same file for completion). A
 * small walker over the keywords that schema uses, so no validator ships at run time.
 */
interface Schema {
  type?: "object" | "boolean" | "integer" | "number" | "string";
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
  required?: string[];
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  anyOf?: Schema[];
  $ref?: string;
  definitions?: Record<string, Schema>;
}

export const CONFIG_SCHEMA_FILE = path.join(packageRoot(), "schema", "qdebug-config.schema.json");

let loaded: Schema | undefined;
export function configSchema(): Schema {
  return (loaded ??= readJsonFile(CONFIG_SCHEMA_FILE, "config schema") as Schema);
}

/** Throws, naming the key path and what was expected, on the first value the schema refuses. */
export function validateConfig(value: unknown, schema: Schema = configSchema()): void {
  walk(value, schema, schema, "");
}

function walk(value: unknown, node: Schema, root: Schema, at: string): void {
  if (node.$ref) return walk(value, resolve(node.$ref, root), root, at);
  const where = at === "" ? "the config" : at;
  if (node.anyOf) {
    // Report the branch whose type fits the value (biases: true, or settings), else the list of types.
    const fitting = node.anyOf.map((s) => (s.$ref ? resolve(s.$ref, root) : s)).find((s) => s.type === undefined || typeOf(value, s.type));
    if (!fitting) throw new Error(`${where} must be ${node.anyOf.map((s) => article((s.$ref ? resolve(s.$ref, root) : s).type ?? "value")).join(" or ")}, got ${shown(value)}`);
    return walk(value, fitting, root, at);
  }
  if (node.type && !typeOf(value, node.type)) throw new Error(`${where} must be ${article(node.type)}, got ${shown(value)}`);
  if (node.enum && !node.enum.includes(value)) throw new Error(`${where} must be one of ${node.enum.join(", ")}, got ${shown(value)}`);
  if (typeof value === "number") {
    if (node.minimum !== undefined && value < node.minimum) throw new Error(`${where} must be at least ${node.minimum}, got ${value}`);
    if (node.exclusiveMinimum !== undefined && value <= node.exclusiveMinimum) throw new Error(`${where} must be more than ${node.exclusiveMinimum}, got ${value}`);
    if (node.maximum !== undefined && value > node.maximum) throw new Error(`${where} must be at most ${node.maximum}, got ${value}`);
  }
  if (node.type !== "object" || value === null || typeof value !== "object") return;
  const object = value as Record<string, unknown>;
  for (const key of node.required ?? []) if (!(key in object)) throw new Error(`${where} needs "${key}"`);
  const properties = node.properties ?? {};
  for (const [key, v] of Object.entries(object)) {
    const child: Schema | boolean | undefined = key in properties ? properties[key] : node.additionalProperties;
    const path = node.properties ? (at === "" ? key : `${at}.${key}`) : `${at}[${JSON.stringify(key)}]`;
    if (child === undefined || child === false) {
      throw new Error(`unknown key ${JSON.stringify(key)} ${at === "" ? "at the top level" : `in ${at}`} (allowed: ${Object.keys(properties).join(", ")})`);
    }
    if (child !== true) walk(v, child, root, path);
  }
}

function resolve(ref: string, root: Schema): Schema {
  const match = /^#\/definitions\/(.+)$/.exec(ref);
  const target = match ? root.definitions?.[match[1]] : undefined;
  if (!target) throw new Error(`config schema: unresolvable $ref ${ref}`);
  return target;
}

function typeOf(value: unknown, type: NonNullable<Schema["type"]>): boolean {
  switch (type) {
    case "object":
      return value !== null && typeof value === "object" && !Array.isArray(value);
    case "integer":
      return Number.isInteger(value);
    case "number":
      return typeof value === "number" && Number.isFinite(value);
    default:
      return typeof value === type;
  }
}

const article = (type: string) => (type === "object" ? "an object" : type === "integer" ? "an integer" : `a ${type}`);

function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}
