/**
 * The white paper's CLE case on a real network: nsfwjs's MobileNetV2 with
 * BatchNorm folded and per-tensor 8-bit weights, scored by top-1 agreement with
 * FP32 on crops of six real photos, before and after cross-layer equalization.
 * Run: node dist/scripts/measure-cle-mobilenet.js
 */
import * as tf from "@tensorflow/tfjs";
import { useBackend } from "../src/backend";
import { crossLayerEqualization } from "../src/fix/cross-layer-equalization";
import { foldBatchNorms } from "../src/fix/fold-batch-norm";
import { scoreBeforeAfter } from "../src/fix/before-after";
import { loadGraph } from "../src/graph/load-model";
import { QuantSim } from "../src/quant/quantsim";
import { toDataset } from "../src/data/dataset";
import { nsfwjsMobileNetV2 } from "../test/fixtures/models";
import { photoCrops } from "../test/fixtures/photos";

export async function measureCleOnMobileNet(options: { weightBits?: number; activationBits?: number; relu6?: "relu" | "per-channel" } = {}) {
  const original = await loadGraph(nsfwjsMobileNetV2());
  const { graph } = foldBatchNorms(original);
  original.dispose();
  const cle = crossLayerEqualization(graph, { relu6: options.relu6 });
  const photos = photoCrops(224);
  const data = toDataset(photos, { batchSize: 8 });
  const config = { weights: { bitwidth: options.weightBits ?? 8 }, activations: { bitwidth: options.activationBits ?? 8 } };
  const before = await QuantSim.create(graph, config).calibrate(data);
  const after = await QuantSim.create(cle.graph, config).calibrate(data);
  const scores = await scoreBeforeAfter({ before, after }, { data, metric: "agreement", step: "CLE on MobileNetV2" });
  before.dispose();
  after.dispose();
  cle.graph.dispose();
  graph.dispose();
  photos.dispose();
  return { examples: photos.shape[0], pairs: cle.pairs.length, relu6Replaced: cle.relu6Replaced.length, relu6Rescaled: cle.relu6Rescaled.length, ...scores };
}

if (require.main === module) {
  (async () => {
    await useBackend();
    for (const relu6 of ["relu", "per-channel"] as const) {
      for (const bits of [8, 6]) {
        const t = Date.now();
        const r = await measureCleOnMobileNet({ weightBits: bits, relu6 });
        console.log(JSON.stringify({ relu6, weightBits: bits, ...r, seconds: (Date.now() - t) / 1000 }));
      }
    }
    console.log("tensors left:", tf.memory().numTensors);
  })();
}
