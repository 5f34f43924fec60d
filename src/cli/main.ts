import { checkOut, WRITING_COMMANDS } from "./output-dir";

type Command = (argv: readonly string[], out: (s: string) => void) => Promise<number>;

/**
 * Commands load on demand: their modules pull in TensorFlow.js (over a second),
 * and a bad --out must fail before that, in a fraction of a second.
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  info: async () => (await import("./info")).info,
  quantize: async () => (await import("./quantize")).quantize,
  analyze: async () => (await import("./analyze")).analyze,
  debug: async () => (await import("./debug")).debug,
  publish: async () => (await import("./publish")).publish,
};

async function usage(): Promise<string> {
  const [info, quantize, analyze, debug, publish] = await Promise.all([import("./info"), import("./quantize"), import("./analyze"), import("./debug"), import("./publish")]);
  return `qdebug: debug quantized TensorFlow.js models

commands:
${info.INFO_USAGE}

${quantize.QUANTIZE_USAGE}

${analyze.ANALYZE_USAGE}

${debug.DEBUG_USAGE}

${publish.PUBLISH_USAGE}

The backend can also be forced with QDEBUG_BACKEND=wasm|cpu|tensorflow.
Analyses run on ONNX Runtime when onnxruntime-node loads: QDEBUG_ENGINE=onnx|tfjs forces one,
QDEBUG_THREADS=N sets its threads, QDEBUG_MEMORY=1.5GB bounds its activations.`;
}

/** CLI entry: returns the process exit code; errors propagate to bin/qdebug.js, which prints them. */
export async function main(argv: readonly string[], out: (s: string) => void = (s) => process.stdout.write(`${s}\n`)): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    out(await usage());
    return command === undefined ? 1 : 0;
  }
  const load = COMMANDS[command];
  if (!load) throw new Error(`unknown command "${command}" (commands: ${Object.keys(COMMANDS).join(", ")}; see qdebug help)`);
  if (WRITING_COMMANDS.includes(command)) {
    // The full check runs again when the command opens its output; this one only fails fast.
    const at = rest.findIndex((a) => a === "--out" || a.startsWith("--out="));
    const value = at < 0 ? undefined : rest[at] === "--out" ? rest[at + 1] : rest[at].slice("--out=".length);
    if (value !== undefined && !value.startsWith("--")) checkOut(value, command);
  }
  return (await load())(rest, out);
}
