/**
 * The saved results the view snapshot tests draw (test/fixtures/views/*.json):
 * real runs on the example model (models/mnist-mbv2, 4-bit weights per tensor,
 * so there is a drop to debug) and, where the example has nothing to show
 * (uneven and constant channels, high biases to absorb), on nsfwjs's
 * MobileNetV2. Run once after a change to a result's shape:
 *
 *   npx tsc -p . --outDir .tmp/dist && node .tmp/dist/scripts/make-view-fixtures.js [--out test/fixtures/views]
 *
 * Results are saved as plain JSON without the graphs and simulations the fixes
 * return (they are not data). Histograms keep 64 bins each to keep files small.
 */
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { useBackend } from "../src/backend";
import { toDataset } from "../src/data/dataset";
import { EXAMPLE_MODEL } from "../src/example";
import { loadGraph } from "../src/graph/load-model";
import { QuantSim } from "../src/quant/quantsim";
import { QuantSimConfig } from "../src/quant/settings";
import { fp32SanityCheck } from "../src/quant/sanity-check";
import { score } from "../src/analysis/score";
import { weightsVsActivations } from "../src/analysis/weights-vs-activations";
import { sweepDisabled, sweepEnabled } from "../src/analysis/sweeps";
import { layerError } from "../src/analysis/layer-error";
import { encodingRanges } from "../src/analysis/ranges";
import { weightChannelStats } from "../src/analysis/weight-channels";
import { activationHistograms } from "../src/analysis/histograms";
import { activationAxes } from "../src/analysis/activation-axes";
import { foldBatchNorms } from "../src/fix/fold-batch-norm";
import { crossLayerEqualization } from "../src/fix/cross-layer-equalization";
import { highBiasAbsorption } from "../src/fix/high-bias-absorption";
import { biasCorrection, meanShifts } from "../src/fix/bias-correction";
import { adaround } from "../src/fix/adaround";
import { qat } from "../src/fix/qat";
import { mixedPrecision } from "../src/fix/mixed-precision";
import { debugFlow } from "../src/flow/debug-flow";
import { nsfwjsMobileNetV2 } from "../test/fixtures/models";

/** Keys that hold live objects (graphs, simulations) or timings, not the result's data. */
const DROPPED = new Set(["graph", "sim", "seconds", "elapsedMs"]);

/** Plain JSON of a result: no graph or simulation, no timings, numbers as they are. */
function plain(x: unknown): unknown {
  return JSON.parse(JSON.stringify(x, (key, v) => (DROPPED.has(key) ? undefined : v)));
}

function save(dir: string, name: string, x: unknown): void {
  const file = path.join(dir, `${name}.json`);
  fs.writeFileSync(file, `${JSON.stringify(plain(x), null, 1)}\n`);
  console.log(`${file}: ${(fs.statSync(file).size / 1024).toFixed(0)} KB`);
}

async function example(dir: string): Promise<void> {
  const data = () => toDataset("mnist:0:500", { batchSize: 250 });
  const calibration = () => toDataset("mnist:1000:500", { batchSize: 250 });
  const w4a8: QuantSimConfig = { weights: { bitwidth: 4 }, activations: { bitwidth: 8 } };
  const original = await loadGraph(EXAMPLE_MODEL);
  const folded = foldBatchNorms(original);
  save(dir, "fold-batch-norm", folded);
  const graph = folded.graph;
  const sim = await QuantSim.create(graph, w4a8).calibrate(calibration());
  try {
    save(dir, "score", await score(sim, { data: data(), metric: "accuracy" }));
    save(dir, "sanity", await fp32SanityCheck(sim, { data: data() }));
    save(dir, "split", await weightsVsActivations(sim, { data: data(), metric: "accuracy" }));
    save(dir, "sweep-enabled", await sweepEnabled(sim, { data: data(), metric: "accuracy" }));
    save(dir, "sweep-disabled", await sweepDisabled(sim, { data: data(), metric: "accuracy" }));
    save(dir, "layer-error", await layerError(sim, { data: toDataset("mnist:0:200", { batchSize: 100 }) }));
    save(dir, "ranges", encodingRanges(sim));
    save(dir, "weight-channels", weightChannelStats(sim));
    save(dir, "histograms", activationHistograms(sim, { maxBins: 64 }));
    save(dir, "activation-axes", await activationAxes(graph, { data: toDataset("mnist:0:100", { batchSize: 100 }), nodes: ["Conv1", "block_1_depthwise", "block_5_project"].filter((n) => graph.nodes.some((g) => g.name === n)) }));

    const cle = crossLayerEqualization(graph);
    const cleSim = QuantSim.create(cle.graph, w4a8);
    save(dir, "cross-layer-equalization", { ...cle, channelRanges: { before: weightChannelStats(sim).layers, after: weightChannelStats(cleSim).layers } });
    cleSim.dispose();
    const hba = highBiasAbsorption(cle.graph);
    save(dir, "high-bias-absorption-example", hba);
    hba.graph.dispose();
    cle.graph.dispose();

    const bc = await biasCorrection(sim, { method: "empirical", data: toDataset("mnist:1000:256", { batchSize: 128 }), evaluation: { data: data(), metric: "accuracy" } });
    // The per-channel mean shift each layer had before the correction and has after it, against the same FP32 model.
    const shiftsBefore = await meanShifts(sim, { data: toDataset("mnist:1000:256", { batchSize: 128 }) });
    const shiftsAfter = await meanShifts(bc.sim, { data: toDataset("mnist:1000:256", { batchSize: 128 }), reference: graph });
    save(dir, "bias-correction", bc);
    save(dir, "mean-shifts", { before: shiftsBefore, after: shiftsAfter });
    bc.sim.dispose();
    bc.graph.dispose();

    const ada = await adaround(sim, { data: toDataset("mnist:1000:256", { batchSize: 128 }), iterations: 60, learningRate: 1e-2, examples: 256, seed: 0, curveEvery: 5, evaluation: { data: data(), metric: "accuracy" } });
    save(dir, "adaround", ada);
    ada.sim.dispose();

    const w4a4 = await QuantSim.create(graph, { weights: { bitwidth: 4 }, activations: { bitwidth: 4 } }).calibrate(calibration());
    const trained = await qat(w4a4, { data: calibration(), epochs: 1, seed: 0, validation: data(), evaluation: { data: data(), metric: "accuracy" } });
    save(dir, "qat", trained);
    trained.sim.dispose();
    trained.graph.dispose();
    w4a4.dispose();

    save(dir, "mixed-precision", await mixedPrecision(sim, { candidates: [4, 8], allowedDrop: 0.005, data: data(), metric: "accuracy" }));
  } finally {
    sim.dispose();
    graph.dispose();
    original.dispose();
  }

  const flow = await debugFlow(EXAMPLE_MODEL, { data: data(), calibration: calibration(), metric: "accuracy", target: 0.005, config: { weights: { bitwidth: 4 } }, allowPerChannel: false, seed: 0 });
  save(dir, "debug-flow", flow.record);
  flow.dispose();
}

/** nsfwjs's MobileNetV2: uneven and constant channels (CLE's case) and high biases to absorb. No data needed. */
async function mobileNet(dir: string): Promise<void> {
  const original = await loadGraph(nsfwjsMobileNetV2());
  const { graph } = foldBatchNorms(original);
  original.dispose();
  const cle = crossLayerEqualization(graph);
  const before = QuantSim.create(graph, { weights: { bitwidth: 8 } });
  const after = QuantSim.create(cle.graph, { weights: { bitwidth: 8 } });
  const layers = (s: QuantSim) => weightChannelStats(s).layers;
  save(dir, "channel-ranges-mobilenet", { before: layers(before), after: layers(after) });
  before.dispose();
  after.dispose();
  const hba = highBiasAbsorption(cle.graph);
  save(dir, "high-bias-absorption", hba);
  hba.graph.dispose();
  cle.graph.dispose();
  graph.dispose();
}

if (require.main === module) {
  (async () => {
    await useBackend();
    const flag = process.argv.indexOf("--out");
    const dir = flag > 0 ? process.argv[flag + 1] : path.join("test", "fixtures", "views");
    fs.mkdirSync(dir, { recursive: true });
    const only = process.argv.includes("--mobilenet-only") ? "mobilenet" : process.argv.includes("--example-only") ? "example" : "both";
    if (only !== "mobilenet") await example(dir);
    if (only !== "example") await mobileNet(dir);
    console.log(`tensors left: ${tf.memory().numTensors}`);
  })().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
