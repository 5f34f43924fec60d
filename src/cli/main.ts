import { info, INFO_USAGE } from "./info";
import { quantize, QUANTIZE_USAGE } from "./quantize";
import { analyze, ANALYZE_USAGE } from "./analyze";
import { debug, DEBUG_USAGE } from "./debug";


const USAGE = `qdebug: debug quantized TensorFlow.js models

commands:
${INFO_USAGE}

${QUANTIZE_USAGE}

${ANALYZE_USAGE}

${DEBUG_USAGE}



The backend can also be forced with QDEBUG_BACKEND=wasm|cpu|tensorflow.`;

type Command = (argv: readonly string[], out: (s: string) => void) => Promise<number>;
const COMMANDS: Record<string, Command> = { info, quantize, analyze, debug };

/** CLI entry: returns the process exit code; errors propagate to bin/qdebug.js, which prints them. */
export async function main(argv: readonly string[], out: (s: string) => void = (s) => process.stdout.write(`${s}\n`)): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    out(USAGE);
    return command === undefined ? 1 : 0;
  }
  const run = COMMANDS[command];
  if (!run) throw new Error(`unknown command "${command}" (commands: ${Object.keys(COMMANDS).join(", ")}; see qdebug help)`);
  return run(rest, out);
}
