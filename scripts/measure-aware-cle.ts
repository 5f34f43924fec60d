/**
 * Activation-aware CLE against vanilla CLE on a real network: nsfwjs's
 * MobileNetV2 with BatchNorm folded, per-tensor weights and activations,
 * scored by top-1 agreement with the folded FP32 model on 48 crops of six real
 * photos (the same inputs calibrate; as scripts/measure-cle-mobilenet.ts).
 * Prints, per variant, how uneven the activations between the equalized pairs
 * are (largest over median channel range: the median and the worst pair), how
 * uneven the weights' output channels are, and the scores at the SETTINGS
 * below (per-tensor W8A8, W8A6, W8A5; per-channel weights with A6 and A5; and
 * every quantizer off, which must give 100 %: the variants keep FP32).
 *
 * Run: node dist/scripts/measure-aware-cle.js [--alphas 0.1,0.25,0.5] [--relu6 per-channel,keep]
 */
import * as tf from "@tensorflow/tfjs";
import { useBackend } from "../src/backend";
import { scoreAll } from "../src/analysis/evaluation";
import { toDataset } from "../src/data/dataset";
import { activationAwareCle, ActivationAwareCleResult, AwareRelu6Mode, spread } from "../src/fix/activation-aware-cle";
import { crossLayerEqualization } from "../src/fix/cross-layer-equalization";
import { foldBatchNorms } from "../src/fix/fold-batch-norm";
import { Graph } from "../src/graph/graph";
import { loadGraph } from "../src/graph/load-model";
import { QuantSim } from "../src/quant/quantsim";
import { nsfwjsMobileNetV2 } from "../test/fixtures/models";
import { photoCrops } from "../test/fixtures/photos";

/** The settings scored, as overrides of the calibrated W8A8 per-tensor simulation. */
const PER_CHANNEL = { "*.kernel": { perChannel: true }, "*.depthwise_kernel": { perChannel: true } };
export const SETTINGS: Record<string, Record<string, Record<string, unknown>>> = {
  "FP32 (quantizers off)": { "**": { enabled: false } },
  "W8A8": {},
  "W8A6": { "*.output": { bitwidth: 6 } },
  "W8A5": { "*.output": { bitwidth: 5 } },
  "W8A6 per-channel": { ...PER_CHANNEL, "*.output": { bitwidth: 6 } },
  "W8A5 per-channel": { ...PER_CHANNEL, "*.output": { bitwidth: 5 } },
};

const median = (v: number[]) => [...v].sort((a, b) => a - b)[(v.length - 1) >> 1];

/** Per weight layer, largest over median output-channel range; the median over layers and the worst. */
function weightSpread(graph: Graph): { median: number; worst: number } {
  const ratios = graph.nodes
    .filter((n) => n.params.kernel || n.params.depthwise_kernel)
    .map((n) =>
      tf.tidy(() => {
        const k = n.params.kernel ?? n.params.depthwise_kernel;
        const axis = n.op === "depthwiseConv2d" ? 2 : k.rank - 1;
        return spread(Array.from(tf.max(tf.abs(k), k.shape.map((_, i) => i).filter((i) => i !== axis)).dataSync()));
      }),
    );
  return { median: median(ratios), worst: Math.max(...ratios) };
}

function activationSpread(r: ActivationAwareCleResult, key: "original" | "cle" | "aware") {
  const v = r.activations.map((a) => a.ratio[key]);
  return { median: median(v), worst: Math.max(...v) };
}

export async function measureAwareCle(options: { alphas?: number[]; relu6?: AwareRelu6Mode[] } = {}) {
  const alphas = options.alphas ?? [0.1, 0.25, 0.5];
  const modes = options.relu6 ?? ["per-channel"];
  const original = await loadGraph(nsfwjsMobileNetV2());
  const { graph } = foldBatchNorms(original);
  original.dispose();
  const photos = photoCrops(224);
  const data = toDataset(photos, { batchSize: 8 });
  const graphs: { key: string; graph: Graph; activations?: { median: number; worst: number }; weights: { median: number; worst: number } }[] = [];
  const vanilla = crossLayerEqualization(graph, { relu6: "per-channel" });
  let first: ActivationAwareCleResult | undefined;
  const rows: Record<string, unknown>[] = [];
  try {
    graphs.push({ key: "no CLE", graph, weights: weightSpread(graph) });
    graphs.push({ key: "vanilla CLE", graph: vanilla.graph, weights: weightSpread(vanilla.graph) });
    for (const relu6 of modes) {
      for (const alpha of relu6 === "keep" ? [0.5] : alphas) {
        const t = Date.now();
        const r = await activationAwareCle(graph, { data, alpha, relu6 });
        if (!first) {
          first = r;
          graphs[0].activations = activationSpread(r, "original");
          graphs[1].activations = activationSpread(r, "cle");
        }
        const bound = r.relu6Bound.reduce((s, b) => ({ pinned: s.pinned + b.pinned, capped: s.capped + b.capped }), { pinned: 0, capped: 0 });
        graphs.push({ key: `aware α=${alpha} ${relu6}`, graph: r.graph, activations: activationSpread(r, "aware"), weights: weightSpread(r.graph) });
        if (relu6 === "keep") rows.push({ key: `aware α=${alpha} keep`, ...bound, seconds: (Date.now() - t) / 1000 });
      }
    }
    // One calibration per graph (W8A8 per tensor); the other settings reuse its statistics.
    const sims: QuantSim[] = [];
    try {
      for (const g of graphs) sims.push(await QuantSim.create(g.graph, { weights: { bitwidth: 8 }, activations: { bitwidth: 8 } }).calibrate(data));
      const scores: Record<string, Map<string, number>> = {};
      for (const [name, patch] of Object.entries(SETTINGS)) {
        const variants = graphs.map((g, i) => ({ key: g.key, sim: sims[i].with(patch) }));
        try {
          // The first variant's graph (BatchNorm folded, no CLE) is the FP32 reference for all.
          scores[name] = await scoreAll(name, variants, { data, metric: "agreement" });
        } finally {
          variants.forEach((v) => v.sim.dispose());
        }
      }
      const table = graphs.map((g) => ({ variant: g.key, activationRatio: g.activations, weightRatio: g.weights, ...Object.fromEntries(Object.keys(SETTINGS).map((k) => [k, scores[k].get(g.key)!])) }));
      return { examples: photos.shape[0], pairs: first!.pairs.length, table, relu6Bound: rows, diagnosis: first!.diagnosis };
    } finally {
      sims.forEach((s) => s.dispose());
    }
  } finally {
    for (const g of graphs) g.graph.dispose();
    photos.dispose();
  }
}

if (require.main === module) {
  (async () => {
    await useBackend();
    const i = process.argv.indexOf("--alphas");
    const alphas = i >= 0 ? process.argv[i + 1].split(",").map(Number) : undefined;
    const j = process.argv.indexOf("--relu6");
    const relu6 = j >= 0 ? (process.argv[j + 1].split(",") as AwareRelu6Mode[]) : undefined;
    const t = Date.now();
    const r = await measureAwareCle({ alphas, relu6 });
    const f = (x?: { median: number; worst: number }) => (x ? `${x.median.toFixed(2)} / ${x.worst.toFixed(1)}` : "");
    console.log(`${r.examples} photos, ${r.pairs} pairs`);
    const names = Object.keys(SETTINGS);
    console.log(`| variant | activation ratio, median / worst pair | weight ratio, median / worst layer | ${names.join(" | ")} |`);
    console.log(`| --- | --- | --- | ${names.map(() => "---").join(" | ")} |`);
    for (const row of r.table) console.log(`| ${row.variant} | ${f(row.activationRatio)} | ${f(row.weightRatio)} | ${names.map((k) => `${((row as unknown as Record<string, number>)[k] * 100).toFixed(1)} %`).join(" | ")} |`);
    console.log(JSON.stringify(r.relu6Bound));
    console.log(r.diagnosis);
    console.log(`${((Date.now() - t) / 1000).toFixed(0)} s; tensors left: ${tf.memory().numTensors}`);
  })();
}
