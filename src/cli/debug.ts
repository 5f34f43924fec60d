import * as fs from "fs";
import * as path from "path";
import { writeResults } from "../analysis/export";
import { takeExamples } from "../data/take";
import { viewOf } from "../display/show";
import { debugFlow } from "../flow/debug-flow";
import { FlowStep, FlowTarget } from "../flow/flow-types";
import { StepTimer } from "../progress";
import { exportQuantizedModel } from "../export/tfjs-quantized";
import { exportGraphModel } from "../export/graph-model";
import { isGraphModelFile } from "../graph/load-model";
import { exportEncodings } from "../quant/aimet-encodings";
import { exportOnnxModel } from "../export/onnx-model";
import { flowReport } from "../report/flow-report";
import { reportDate, withoutTimings } from "../report/reproducible";
import { numberFlag, parseArgs } from "./args";
import { metricFromArgs, prepareQuantRun, QUANT_FLAGS, SCORE_FLAGS, TARGET_FLAGS } from "./quant-run";
import { scoreText } from "../eval/score-text";
import { compareImages, ImageComparisonResult, imageOutput } from "../analysis/image-comparison";
import { QuantSim } from "../quant/quantsim";

export const DEBUG_USAGE = `qdebug debug <model.json> --data <data> (--target <drop> | --min-psnr <dB> | …) --out <dir> [quantization options as for quantize]
  Walks the guidebook's flow chart (sanity check, split, weight fixes, range setting,
  per-layer analysis, fixing quantizers) until the target is met, keeping only the
  fixes that help. A target out of reach (above FP32's own score, or a fidelity
  target that even 16-bit weights and activations miss) is refused before the fixes run. Writes <dir>/record.json (every step, in order,
  with its score and finding), steps.csv, report.html, and the fixed model in
  <dir>/model/: model.json and weights in TF.js's quantized format (loadable by
  tf.loadLayersModel) plus AIMET's encodings.json (activation encodings included), and
  model.onnx (weights on their grid, activation quantizers as QuantizeLinear/DequantizeLinear).
  --target      largest acceptable drop from FP32's own score, for accuracy (0.01 = 1 point)
  --min-psnr dB | --min-sqnr dB | --min-cosine c | --min-agreement a | --min-accuracy a | --max-mse m
                an absolute target; it sets the metric. Fidelity scores (psnr, sqnr, cosine,
                agreement, mse) compare with FP32, which has no score of its own: they need these.
  --metric      accuracy | agreement | sqnr | psnr | mse | cosine (default: accuracy with labels, else
                agreement for class outputs, else sqnr)
  --score-outputs a=2,b=1   multi-output models: the outputs scored, with weights
  --peak P      PSNR's peak signal (default: the FP32 outputs' range)
  --input-range a,b  --mean m  --std s   input scaling, as for analyze
  --eval N      evaluate on the first N examples (default: all)
  --no-per-channel   per-channel weights are not available on the target runtime
  --relu6 relu|per-channel   how CLE treats ReLU6 (default relu, as AIMET)
  --max-raised N     at most N quantizers raised to higher precision (default 4)`;

export async function debug(argv: readonly string[], out: (s: string) => void): Promise<number> {
  const args = parseArgs(argv, { boolean: [...QUANT_FLAGS.boolean, "no-per-channel"], value: [...QUANT_FLAGS.value, ...SCORE_FLAGS, ...TARGET_FLAGS, "eval", "relu6", "max-raised"] });
  const targetFlag = TARGET_FLAGS.find((f) => args.flags.has(f));
  if (targetFlag === undefined) throw new Error(`debug needs a target: --target (the largest acceptable drop from FP32's score, for accuracy) or an absolute one such as --min-psnr 40\n${DEBUG_USAGE}`);
  const value = numberFlag(args, targetFlag, 0);
  const target: FlowTarget = targetFlag === "target" ? value : { [targetFlag.replace(/^(min|max)-/, "")]: value };
  const relu6 = String(args.flags.get("relu6") ?? "relu");
  if (relu6 !== "relu" && relu6 !== "per-channel") throw new Error(`--relu6 must be relu or per-channel, got "${relu6}"`);
  const { backend, graph, config, uncalibrated, data: all, calibration, outDir, output } = await prepareQuantRun("debug", args, DEBUG_USAGE);
  uncalibrated.dispose();
  const fail = (err: unknown): never => {
    graph.dispose();
    output.close();
    throw err;
  };
  const timer = new StepTimer({ batchSize: numberFlag(args, "batch-size", 32) }); // step timings go to stderr only
  const progress = timer.progress;
  const data = args.flags.has("eval") ? takeExamples(all, numberFlag(args, "eval", 0)) : all;
  const scoring = await metricFromArgs(args, data, graph).catch(fail);
  const metric = scoring.metric;
  const targetText = targetFlag === "target" ? `allowed drop ${value}` : `target --${targetFlag} ${value}`;
  out(`model ${graph.name}: ${graph.nodes.length} nodes, backend ${backend.name}; metric ${metric}; ${targetText}`);
  const printStep = (s: FlowStep) => out(`\n${s.index}. ${s.title} [${s.kind === "analysis" ? "analysis" : s.skipped ? "skipped" : s.kept ? "kept" : "not kept"}]${s.score !== null ? ` score ${scoreText({ metric }, s.score)}` : ""}\n   ${s.finding}`);
  const result = await debugFlow(graph, {
    data,
    calibration,
    ...scoring,
    target,
    config,
    allowPerChannel: !args.flags.has("no-per-channel"),
    relu6,
    maxRaised: numberFlag(args, "max-raised", 4),
    onProgress: progress,
    onStep: (s) => {
      timer.record(s.title, s.seconds * 1000); // timed by the flow itself
      printStep(s);
    },
  }).catch(fail);
  try {
    const record = withoutTimings(result.record); // timings differ between runs: the terminal shows them, files do not
    out(`\n${record.diagnosis}`);
    const steps = record.steps.map((s) => ({ index: s.index, box: s.box, title: s.title, kind: s.kind, score: s.score, drop: s.drop, kept: s.kept, skipped: s.skipped, met: s.met, finding: s.finding }));
    const files = writeResults(output.dir, { model: args.positionals[0], backend: backend.name, record }, { steps }, "record");
    // A graph model is written back as a graph model (its GraphDef kept); a layers model with its topology rewritten.
    if (isGraphModelFile(args.positionals[0])) {
      const exported = await timer.run("export", () => exportGraphModel(result.sim, args.positionals[0], path.join(output.dir, "model")));
      // A graph model holds no activation quantizers: their encodings go beside it, as for a layers model.
      fs.writeFileSync(path.join(output.dir, "model", "encodings.json"), `${JSON.stringify(exportEncodings(result.sim), null, 2)}\n`);
      const quantized = exported.weights.filter((w) => w.dtype === "uint8" || w.dtype === "uint16").length;
      out(`\nexported the model to ${path.join(outDir, "model")} as a TF.js graph model: ${quantized} of ${exported.weights.length} weights in TF.js's quantized format, ${exported.bytes.written} bytes (source: ${exported.bytes.source})`);
    } else {
      const exported = await timer.run("export", () => exportQuantizedModel(result.sim, args.positionals[0], path.join(output.dir, "model")));
      const quantized = exported.weights.filter((w) => w.dtype !== "float32").length;
      out(`\nexported the model to ${path.join(outDir, "model")}: ${quantized} of ${exported.weights.length} weights in TF.js's quantized format, ${exported.bytes.quantized} bytes (float32: ${exported.bytes.float32})`);
    }
    const onnx = await timer.run("ONNX export", async () => exportOnnxModel(result.sim, path.join(output.dir, "model"), { encodings: false }));
    out(`and as ONNX (model.onnx): weights on their grid, ${onnx.qdq.length} activation quantizers as QuantizeLinear/DequantizeLinear${onnx.floatCodes.length ? `, ${onnx.floatCodes.length} wider ones as Div/Round/Clip/Mul` : ""}`);
    // Image outputs: the report shows the first examples before the fixes (as configured) and after them, beside FP32's.
    let images: ImageComparisonResult | undefined;
    if (imageOutput(graph)) {
      const baseline = await QuantSim.create(graph, config).calibrate(calibration);
      try {
        images = await timer.run("images", () => compareImages({ "before fixes": baseline, "after fixes": result.sim }, { data, examples: 2, reference: graph }));
      } finally {
        baseline.dispose();
      }
    }
    const html = flowReport(`qdebug debugging flow: ${graph.name}`, `${args.positionals[0]} · backend ${backend.name} · metric ${metric} · ${record.targetText} · ${reportDate()}`, record, images);
    fs.writeFileSync(path.join(output.dir, "report.html"), html);
    output.commit();
    out(`wrote ${files.length + 1} files to ${outDir} (record.json, steps.csv, report.html) and the model in ${path.join(outDir, "model")} (${fs.readdirSync(path.join(outDir, "model")).sort().join(", ")})`);
    timer.finish();
    return record.met ? 0 : 3;
  } finally {
    result.dispose();
    graph.dispose();
    output.close();
  }
}
