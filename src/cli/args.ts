/**
 * A small argv parser: positionals, `--flag`, `--key value` and `--key=value`.
 * Each command declares its flags so a typo is an error, not a silent default.
 */
export interface ParsedArgs {
  positionals: string[];
  flags: Map<string, string | true>;
}

export function parseArgs(argv: readonly string[], spec: { boolean: readonly string[]; value: readonly string[] }): ParsedArgs {
  const positionals: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const known = () => [...spec.boolean, ...spec.value].map((k) => `--${k}`).join(", ") || "none";
    if (/^-[^-]/.test(arg)) throw new Error(`unknown flag ${arg}: flags start with two dashes (flags: ${known()})`);
    if (!arg.startsWith("--")) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const key = arg.slice(2, eq < 0 ? undefined : eq);
    if (flags.has(key)) throw new Error(`--${key} is given twice`);
    if (spec.boolean.includes(key)) {
      if (eq >= 0) throw new Error(`--${key} takes no value`);
      flags.set(key, true);
    } else if (spec.value.includes(key)) {
      const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
      if (value === undefined || (eq < 0 && value.startsWith("--"))) throw new Error(`--${key} needs a value`);
      flags.set(key, value);
    } else {
      throw new Error(`unknown flag --${key} (flags: ${known()})`);
    }
  }
  return { positionals, flags };
}

export function numberFlag(args: ParsedArgs, key: string, fallback: number): number {
  const v = args.flags.get(key);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (v === true || !Number.isFinite(n)) throw new Error(`--${key} must be a number, got ${JSON.stringify(v)}`);
  return n;
}
