import { useBackend } from "../backend";
import { activeEngine } from "../engine/engine";
import { loadGraph, loadLayersModelFromFile } from "../graph/load-model";
import { verifyAgainstModel, VerifyResult } from "../runner/verify";
import { parseArgs } from "./args";
import { checkFlags } from "./flag-rules";
import { loadOptionsFromArgs } from "./quant-run";
import { textTable } from "./table";

export const INFO_USAGE = `qdebug info <model.json> [--json] [--verify] [--outputs a,b] [--backend wasm|cpu|tensorflow]
  Prints the model's graph: nodes in execution order with op kind, output shape and parameter count.
  --json     print the same as JSON
  --verify   run the graph and model.predict on the same seeded random batch; print the largest relative difference
  --outputs  graph models: cut the graph at these TF tensor names (comma-separated), before control flow`;

export async function info(argv: readonly string[], out: (s: string) => void): Promise<number> {
  const args = parseArgs(argv, { boolean: ["json", "verify"], value: ["backend", "outputs"] });
  checkFlags(args);
  if (args.positionals.length !== 1) throw new Error(`info needs one model path\n${INFO_USAGE}`);
  const backend = await useBackend(args.flags.get("backend") as string | undefined);
  const file = args.positionals[0];
  const graph = await loadGraph(file, loadOptionsFromArgs(args));
  try {
    let verify: VerifyResult | undefined;
    if (args.flags.has("verify")) {
      const model = await loadLayersModelFromFile(file);
      try {
        verify = verifyAgainstModel(graph, model);
      } finally {
        model.dispose();
      }
    }
    const nodes = graph.summary();
    if (args.flags.has("json")) {
      out(JSON.stringify({ model: file, backend: backend.name, engine: activeEngine(), inputs: graph.inputSpecs, outputs: graph.outputs, paramCount: graph.paramCount(), nodes, verify }, null, 2));
      return 0;
    }
    const shape = (s: readonly (number | null)[]) => `[${s.map((d) => d ?? "?").join(", ")}]`;
    const engine = activeEngine();
    out(`model ${graph.name} (${file}) on backend ${backend.name}; analyses run on ${engine.name === "onnx" ? `ONNX Runtime (${engine.package}, ${engine.threads} threads)` : "tfjs"}`);
    out(`inputs: ${graph.inputSpecs.map((s) => `${s.name} ${shape(s.shape)} ${s.dtype}`).join(", ")}`);
    out(`outputs: ${graph.outputs.join(", ")}`);
    out("");
    out(textTable(["#", "node", "op", "layer class", "output shape", "params"], nodes.map((n) => [n.index, n.name, n.op, n.layerClass, shape(n.outputShape), n.paramCount])));
    out("");
    out(`${nodes.length} nodes, ${graph.paramCount().toLocaleString("en-US")} parameters`);
    if (verify) {
      for (const o of verify.outputs) out(`verify ${o.output}: max abs diff ${o.maxAbsDiff.toExponential(2)}, max rel diff ${o.maxRelDiff.toExponential(2)}`);
      const ok = verify.maxRelDiff <= 1e-5;
      out(`verify: largest relative difference graph vs model.predict = ${verify.maxRelDiff.toExponential(2)} (${ok ? "OK" : "MISMATCH"}, tolerance 1e-5)`);
      return ok ? 0 : 2;
    }
    return 0;
  } finally {
    graph.dispose();
  }
}
