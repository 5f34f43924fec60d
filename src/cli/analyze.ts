import * as fs from "fs";
import * as path from "path";
import { analysisReport } from "../report/analysis-report";
import { reportDate } from "../report/reproducible";
import { sanityView } from "../../widgets/sanity-view";
import { splitView } from "../../widgets/split-view";
import { sweepView } from "../../widgets/sweep-view";
import { layerErrorView } from "../../widgets/layer-error-view";
import { rangesView } from "../../widgets/ranges-view";
import { layerExplorerView } from "../../widgets/layer-explorer-view";
import { bitwidthView } from "../../widgets/bitwidth-view";
import { takeExamples } from "../data/take";
import { activationHistograms } from "../analysis/histograms";
import { layerError } from "../analysis/layer-error";
import { encodingRanges } from "../analysis/ranges";
import { sweepDisabled, sweepEnabled } from "../analysis/sweeps";
import { weightChannelStats } from "../analysis/weight-channels";
import { weightsVsActivations } from "../analysis/weights-vs-activations";
import { writeResults } from "../analysis/export";
import { StepTimer } from "../progress";
import { writeEncodings } from "../quant/aimet-encodings";
import { QuantSim } from "../quant/quantsim";
import { fp32SanityCheck } from "../quant/sanity-check";
import { numberFlag, parseArgs } from "./args";
import { metricFromArgs, prepareQuantRun, QUANT_FLAGS, SCORE_FLAGS } from "./quant-run";
import { scoreText } from "../eval/score-text";
import { textTable } from "./table";
import { compareImages, imageOutput } from "../analysis/image-comparison";

export const ANALYZE_USAGE = `qdebug analyze <model.json> --data <data> --out <dir> [quantization options as for quantize]
  Runs the guidebook's analyses and writes <dir>/results.json (sections sanity, split,
  sweepEnabled, sweepDisabled, layerError, ranges, weightChannels, histograms), one CSV per
  table, and <dir>/encodings.json.
  --metric      accuracy | agreement | sqnr | psnr | mse | cosine (default: accuracy with labels, else
                agreement for class outputs [batch, classes], else sqnr). accuracy is a task score (FP32 has one);
                the others are fidelity scores against FP32 (FP32 is the reference and has none)
  --score-outputs a=2,b=1   multi-output models: the outputs scored, with weights (default: all, equally)
  --peak P      PSNR's peak signal (default: the FP32 outputs' range, max − min)
  --input-range a,b   pixel values 0..255 (images, uint8 .npy) become [a, b] (default 0,1 for images)
  --mean m[,m2,m3] --std s[,s2,s3]   then (x − mean) / std, per channel
  --granularity layer | quantizer (sweeps; default layer)
  --eval N      evaluate on the first N examples (default: all)`;

export async function analyze(argv: readonly string[], out: (s: string) => void): Promise<number> {
  const args = parseArgs(argv, { boolean: QUANT_FLAGS.boolean, value: [...QUANT_FLAGS.value, ...SCORE_FLAGS, "granularity", "eval"] });
  const granularity = String(args.flags.get("granularity") ?? "layer");
  if (granularity !== "layer" && granularity !== "quantizer") throw new Error(`--granularity must be layer or quantizer, got ${JSON.stringify(granularity)}`);
  const { backend, graph, config, uncalibrated, data: all, calibration, outDir, output } = await prepareQuantRun("analyze", args, ANALYZE_USAGE);
  // Step timings go to stderr only, never into results.json; a step that runs out of memory names the batch size.
  const steps = new StepTimer({ batchSize: numberFlag(args, "batch-size", 32) });
  const progress = steps.progress;
  let sim: QuantSim | undefined;
  try {
    const data = args.flags.has("eval") ? takeExamples(all, numberFlag(args, "eval", 0)) : all;
    const scoring = await metricFromArgs(args, data, graph);
    const metric = scoring.metric;
    out(`model ${graph.name}: ${graph.nodes.length} nodes, backend ${backend.name}; metric ${metric}`);
    sim = await steps.run("calibration", () => uncalibrated.calibrate(calibration, { onProgress: progress }));
    const evaluation = { data, ...scoring, onProgress: progress };

    const sanity = await steps.run("FP32 sanity check", () => fp32SanityCheck(sim!, { data: calibration, onProgress: progress }));
    out(`\n1. FP32 sanity check: ${sanity.pass ? "pass" : "FAIL"}. ${sanity.diagnosis}`);
    const split = await steps.run("weights vs activations", () => weightsVsActivations(sim!, evaluation));
    const t = (v: number) => scoreText(split.metric, v);
    const splitTable = split.fp32 !== null ? textTable(["variant", "score", "drop"], split.rows.map((r) => [r.variant, t(r.score), r.drop!.toFixed(4)])) : textTable(["variant", "score"], split.rows.map((r) => [r.variant, t(r.score)]));
    out(`\n2. Weights vs activations (${split.metric.label})\n${splitTable}\n${split.diagnosis}`);
    const sweepOn = await steps.run("enable-one sweep", () => sweepEnabled(sim!, { ...evaluation, granularity }));
    const sweepOff = await steps.run("disable-one sweep", () => sweepDisabled(sim!, { ...evaluation, granularity }));
    out(`\n3. Per-layer sweeps (${sweepOn.fp32Score !== null ? `FP32 ${t(sweepOn.fp32Score)}, ` : ""}all quantized ${t(sweepOn.quantizedScore)})`);
    out(textTable(["#", granularity, "only this quantized", "all but this quantized"], sweepOn.rows.map((r, i) => [r.index, r.key, t(r.score), t(sweepOff.rows[i].score)])));
    out(sweepOn.diagnosis);
    out(sweepOff.diagnosis);
    const errors = await steps.run("per-layer error", () => layerError(sim!, { data, onProgress: progress }));
    out(`\n4. Per-layer error: ${errors.diagnosis}`);
    const ranges = encodingRanges(sim);
    const channels = weightChannelStats(sim);
    const histograms = activationHistograms(sim);
    out(`\n5. Ranges and distributions: ${channels.diagnosis} ${histograms.diagnosis}`);

    // Image outputs (super-resolution, segmentation): the report shows them beside FP32's; results.json keeps the numbers only.
    const images = imageOutput(graph) ? await steps.run("images", () => compareImages(sim!, { data, examples: 2 })) : undefined;
    const results = { model: args.positionals[0], backend: backend.name, config, metric, sanity, split, sweepEnabled: sweepOn, sweepDisabled: sweepOff, layerError: errors, ranges, weightChannels: channels, histograms };
    const files = writeResults(output.dir, results, {
      split: split.rows,
      "sweep-enabled": sweepOn.rows,
      "sweep-disabled": sweepOff.rows,
      "layer-error": errors.rows,
      ranges: ranges.rows,
      "weight-channels": channels.rows,
      "weight-layers": channels.layers,
      histograms: histograms.histograms.flatMap((h) => h.bins.map((b) => ({ quantizer: h.quantizer, ...b }))),
    });
    writeEncodings(sim, path.join(output.dir, "encodings.json"));
    const mostClipped = [...histograms.histograms].sort((a, b) => b.clippedFraction - a.clippedFraction || (b.encodingMax - b.encodingMin) - (a.encodingMax - a.encodingMin))[0];
    const html = analysisReport(`qdebug report: ${graph.name}`, `${args.positionals[0]} · backend ${backend.name} · metric ${metric} · ${reportDate()}`, {
      sanity,
      split,
      sweepEnabled: sweepOn,
      sweepDisabled: sweepOff,
      layerError: errors,
      ranges,
      weightChannels: channels,
      histograms,
      images,
    });
    fs.writeFileSync(path.join(output.dir, "report.html"), html);
    output.commit();
    out(`\nwrote ${files.length + 2} files to ${outDir} (report.html, results.json, encodings.json and one CSV per table)`);
    steps.finish();
    return sanity.pass ? 0 : 2;
  } finally {
    sim?.dispose();
    graph.dispose();
    output.close();
  }
}
