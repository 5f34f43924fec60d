import * as tf from "@tensorflow/tfjs";
import { sweepEnabled } from "../src/analysis/sweeps";
import { allBypassed } from "../src/analysis/variants";
import { useEngine } from "../src/engine/engine";
import { OnnxProgram } from "../src/engine/onnx/program";
import { engineThreads } from "../src/engine/onnx/runtime";
import { foldBatchNorms } from "../src/fix/fold-batch-norm";
import { loadGraph } from "../src/graph/load-model";
import { QuantSim } from "../src/quant/quantsim";
import { forward } from "../src/graph/forward";
import { nsfwjsMobileNetV2 } from "../test/fixtures/models";
import { compareMs, medianMs } from "./timing";

export interface OnnxEngineBench {
  batch: number;
  threads: number;
  /** FP32 forward: tfjs (wasm) time / ONNX Runtime time; goal >= 8. */
  fp32Speedup: number;
  onnxFp32Ms: number;
  tfjsFp32Ms: number;
  /** W8A8 (BatchNorm folded, quantizers by our fusion rules) / FP32, both on ONNX Runtime; goal <= 1.5. */
  quantizedRatio: number;
  onnxW8A8Ms: number;
  onnxFoldedFp32Ms: number;
  /** The enable-one sweep: tfjs (FP32-cached) time / ONNX Runtime time; goal >= 8. */
  sweepSpeedup: number;
  sweepOnnxMs: number;
  /** The ONNX Runtime sweep with every variant on the main thread (QDEBUG_WORKERS=0). */
  sweepOneThreadMs: number;
  sweepTfjsMs: number;
  sweepRows: number;
  sweepExamples: number;
  sameWorstFive: boolean;
}

/** Times one simulation's forward on ONNX Runtime (sessions built and warmed first). */
async function onnxForwardMs(graph: import("../src/graph/graph").Graph, sim: QuantSim, x: tf.Tensor): Promise<[number, OnnxProgram]> {
  const program = new OnnxProgram(graph, sim.sites, { segments: 1 });
  const ms = await medianMs(() => program.run([x], [{ key: "sim", sim }], () => undefined), 9, 3);
  return [ms, program];
}

/** MobileNetV2 (nsfwjs) at batch 8: the ONNX Runtime engine against tfjs, in one run. */
export async function benchOnnxEngine(batch = 8): Promise<OnnxEngineBench> {
  const graph = await loadGraph(nsfwjsMobileNetV2());
  const { graph: folded } = foldBatchNorms(graph);
  const x = tf.randomUniform([batch, 224, 224, 3], -1, 1, "float32", 4);
  const data = { name: "bench batch", size: batch, async *batches() { yield { inputs: [x.clone()] }; } };
  // The sweep runs over several batches, as it does on real data: sessions are built and warmed once per sweep.
  const sweepBatches = 4;
  const sweepData = {
    name: "bench batches",
    size: batch * sweepBatches,
    async *batches() {
      for (let b = 0; b < sweepBatches; b++) yield { inputs: [tf.randomUniform([batch, 224, 224, 3], -1, 1, "float32", 10 + b)] };
    },
  };
  const programs: OnnxProgram[] = [];
  const sims: QuantSim[] = [];
  try {
    useEngine("onnx");
    // 1. FP32: ONNX Runtime vs tfjs's forward, alternating.
    const fp32 = allBypassed(QuantSim.create(graph));
    sims.push(fp32);
    // One variant runs unsegmented, on every thread: what scoring a single simulation does.
    const program = new OnnxProgram(graph, fp32.sites, { segments: 1 });
    programs.push(program);
    await program.run([x], [{ key: "fp32", sim: fp32 }], () => undefined);
    const [onnxFp32Ms, tfjsFp32Ms] = await compareMs(
      () => program.run([x], [{ key: "fp32", sim: fp32 }], () => undefined),
      async () => {
        const [y] = forward(graph, x);
        await y.data();
        y.dispose();
      },
      5,
      1,
    );
    // 2. W8A8 vs FP32 on the folded graph, both on ONNX Runtime.
    const w8a8 = await QuantSim.create(folded).calibrate(data);
    const foldedFp32 = allBypassed(w8a8);
    sims.push(w8a8, foldedFp32);
    const [onnxW8A8Ms, p1] = await onnxForwardMs(folded, w8a8, x);
    const [onnxFoldedFp32Ms, p2] = await onnxForwardMs(folded, foldedFp32, x);
    programs.push(p1, p2);
    // 3. The enable-one sweep (unfolded, 8-bit, SQNR) on each engine, same calibration.
    const sim = await QuantSim.create(graph).calibrate(data);
    sims.push(sim);
    let t0 = Date.now();
    const onnx = await sweepEnabled(sim, { data: sweepData, metric: "sqnr" });
    const sweepOnnxMs = Date.now() - t0;
    // The same sweep with every variant on the main thread: what the worker threads add.
    const workers = process.env.QDEBUG_WORKERS;
    process.env.QDEBUG_WORKERS = "0";
    t0 = Date.now();
    try {
      await sweepEnabled(sim, { data: sweepData, metric: "sqnr" });
    } finally {
      if (workers === undefined) delete process.env.QDEBUG_WORKERS;
      else process.env.QDEBUG_WORKERS = workers;
    }
    const sweepOneThreadMs = Date.now() - t0;
    useEngine("tfjs");
    t0 = Date.now();
    const tfjs = await sweepEnabled(sim, { data: sweepData, metric: "sqnr" });
    const sweepTfjsMs = Date.now() - t0;
    const worst = (rows: typeof onnx.rows) => [...rows].sort((a, b) => a.score - b.score).slice(0, 5).map((r) => r.key).join(",");
    return {
      batch,
      threads: engineThreads(),
      fp32Speedup: tfjsFp32Ms / onnxFp32Ms,
      onnxFp32Ms,
      tfjsFp32Ms,
      quantizedRatio: onnxW8A8Ms / onnxFoldedFp32Ms,
      onnxW8A8Ms,
      onnxFoldedFp32Ms,
      sweepSpeedup: sweepTfjsMs / sweepOnnxMs,
      sweepOnnxMs,
      sweepOneThreadMs,
      sweepTfjsMs,
      sweepRows: onnx.rows.length,
      sweepExamples: sweepData.size,
      sameWorstFive: worst(onnx.rows) === worst(tfjs.rows),
    };
  } finally {
    useEngine();
    for (const p of programs) await p.dispose();
    for (const s of sims) s.dispose();
    x.dispose();
    folded.dispose();
    graph.dispose();
  }
}
