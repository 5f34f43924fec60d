import { parseArgs as parseArgv } from "node:util";

/**
 * Command-line arguments, parsed by node:util's `parseArgs` in strict mode:
 * positionals, `--flag`, `--key value` and `--key=value`. Each command declares
 * its flags, so a typo is an error, not a silent default.
 */
export interface ParsedArgs {
  positionals: string[];
  flags: Map<string, string | true>;
}

export interface FlagSpec {
  boolean: readonly string[];
  value: readonly string[];
}

export function parseArgs(argv: readonly string[], spec: FlagSpec): ParsedArgs {
  const known = () => [...spec.boolean, ...spec.value].map((k) => `--${k}`).join(", ") || "none";
  const oneDash = argv.find((a) => /^-[^-]/.test(a) && !spec.value.some((k) => argv[argv.indexOf(a) - 1] === `--${k}`));
  if (oneDash !== undefined) throw new Error(`unknown flag ${oneDash}: flags start with two dashes (flags: ${known()})`);
  const options: Record<string, { type: "boolean" | "string" }> = {};
  for (const k of spec.boolean) options[k] = { type: "boolean" };
  for (const k of spec.value) options[k] = { type: "string" };
  let parsed: ReturnType<typeof parseArgv>;
  try {
    parsed = parseArgv({ args: joinValues(argv, spec), options, strict: true, allowPositionals: true, tokens: true });
  } catch (err) {
    throw new Error(flagError(err as Error & { code?: string }, known));
  }
  const flags = new Map<string, string | true>();
  for (const token of parsed.tokens ?? []) {
    if (token.kind !== "option") continue;
    if (flags.has(token.name)) throw new Error(`--${token.name} is given twice`);
    flags.set(token.name, token.value ?? true);
  }
  return { positionals: parsed.positionals, flags };
}

/**
 * `--key value` as `--key=value` for value flags, so a value may start with one
 * dash (`--target -1` reaches the range check that names it) while a missing
 * value (`--data --out x`) stays an error.
 */
function joinValues(argv: readonly string[], spec: FlagSpec): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const next = argv[i + 1];
    if (arg.startsWith("--") && spec.value.includes(arg.slice(2)) && next !== undefined && !next.startsWith("--")) {
      out.push(`${arg}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

/** node:util's messages in the CLI's words, with the flag named. */
function flagError(err: Error & { code?: string }, known: () => string): string {
  const flag = /'(--?[^' ]+)/.exec(err.message)?.[1] ?? "";
  if (err.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") return `unknown flag ${flag} (flags: ${known()})`;
  if (err.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
    return /does not take an argument/.test(err.message) ? `${flag} takes no value` : `${flag} needs a value`;
  }
  return err.message;
}

export function numberFlag(args: ParsedArgs, key: string, fallback: number): number {
  const v = args.flags.get(key);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (v === true || !Number.isFinite(n)) throw new Error(`--${key} must be a number, got ${JSON.stringify(v)}`);
  return n;
}
