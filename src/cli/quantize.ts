import * as fs from "fs";
import * as path from "path";
import { compareWithFp32 } from "../eval/side-by-side";
import { StepTimer } from "../progress";
import { writeEncodings } from "../quant/aimet-encodings";
import { QuantSim } from "../quant/quantsim";
import { fp32SanityCheck } from "../quant/sanity-check";
import { numberFlag, parseArgs } from "./args";
import { prepareQuantRun, QUANT_FLAGS } from "./quant-run";
import { textTable } from "./table";

export const QUANTIZE_USAGE = `qdebug quantize <model.json> --data <data> --out <dir> [options]
  Calibrates a quantization simulation, writes <dir>/encodings.json (AIMET format),
  and prints the FP32 sanity check and the quantized model's metric next to FP32's.
  --data        mnist | mnist-full | a folder of images | a .npy file or folder
  --labels      labels (.npy) when the data has none
  --w-bits N    weight bit-width (default 8)      --a-bits N   activation bit-width (default 8)
  --per-channel per-channel weight quantization
  --w-scheme S  weight scheme: asymmetric | symmetric | strict-symmetric | unsigned-symmetric (default symmetric)
  --a-scheme S  activation scheme, the same choices (default asymmetric)
  --range-method M  activation range method: minmax | percentile | sqnr | mse (default minmax;
                --scheme is its old, deprecated name)
  --percentile  for --range-method percentile (default 99.99)
  --outputs a,b graph models: cut the graph at these TF tensor names before quantizing
  --config      a JSON QuantSimConfig (weights, activations, biases, overrides by name or glob)
  --calib N     calibrate on the first N examples (default 500); evaluation uses all
  --batch-size N (default 32)   --backend wasm|cpu|tensorflow`;

const pct = (v: number | null) => (v === null ? "-" : `${(100 * v).toFixed(2)} %`);

export async function quantize(argv: readonly string[], out: (s: string) => void): Promise<number> {
  const args = parseArgs(argv, QUANT_FLAGS);
  const { backend, graph, config, uncalibrated, data, calibration, outDir, output } = await prepareQuantRun("quantize", args, QUANTIZE_USAGE);
  const steps = new StepTimer({ batchSize: numberFlag(args, "batch-size", 32) }); // step timings go to stderr only, never into quantize.json
  const progress = steps.progress;
  let sim: QuantSim | undefined;
  try {
    out(`model ${graph.name}: ${graph.nodes.length} nodes, backend ${backend.name}`);
    sim = await steps.run("calibration", () => uncalibrated.calibrate(calibration, { onProgress: progress }));
    out(`calibrated ${sim.sites.length} quantizers on ${calibration.name}`);

    const sanity = await steps.run("FP32 sanity check", () => fp32SanityCheck(sim!, { data: calibration, onProgress: progress }));
    out("");
    out("FP32 sanity check");
    out(textTable(["variant", "max abs error", "max rel error", "top-1 agreement", "pass"], sanity.checks.map((c) => [c.variant, c.maxAbsError.toExponential(2), c.maxRelError.toExponential(2), pct(c.top1Agreement), c.pass ? "yes" : "NO"])));
    out(sanity.diagnosis);

    const quantized = sim;
    const result = await steps.run("evaluation", () => compareWithFp32(graph, { data, variants: { quantized }, onProgress: progress, task: "evaluation" }));
    const q = result.variants.quantized;
    out("");
    out(`Quantized vs FP32 on ${data.name} (${result.examples} examples)`);
    out(textTable(["model", "top-1 accuracy", "top-1 agreement with FP32", "output SQNR (dB)"], [
      ["FP32", pct(result.referenceAccuracy), "100.00 %", "-"],
      [`W${config.weights?.bitwidth ?? 8}A${config.activations?.bitwidth ?? 8}`, pct(q.accuracy), pct(q.top1Agreement), q.sqnrDb === null ? "exact" : q.sqnrDb.toFixed(1)],
    ]));

    writeEncodings(sim, path.join(output.dir, "encodings.json"));
    fs.writeFileSync(path.join(output.dir, "quantize.json"), `${JSON.stringify({ model: args.positionals[0], backend: backend.name, config, sanity, evaluation: result, quantizers: sim.quantizers() }, null, 2)}\n`);
    output.commit();
    out("");
    out(`wrote ${path.join(outDir, "encodings.json")} and ${path.join(outDir, "quantize.json")}`);
    steps.finish();
    return sanity.pass ? 0 : 2;
  } finally {
    sim?.dispose();
    graph.dispose();
    output.close();
  }
}
