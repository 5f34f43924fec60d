import * as tf from "@tensorflow/tfjs";
import { PNG } from "pngjs";
import { Dataset, disposeBatch, requireData } from "../data/types";
import { Graph } from "../graph/graph";
import { forward } from "../graph/forward";
import { QuantSim } from "../quant/quantsim";

export interface ImageComparisonOptions {
  data: Dataset;
  /** How many examples to show, the first of `data` (default 2). */
  examples?: number;
  /** The image output to show, by name (default the first output). */
  output?: string;
  /** The output's pixel range, drawn as black to white: default [0, 255] when FP32's outputs exceed 1.5, else [0, 1]. */
  range?: [number, number];
  /** The FP32 model to compare with (default the first simulation's graph). */
  reference?: Graph;
}

/** One quantized variant of one example: its image, its difference from FP32, and its PSNR there. */
export interface ImagePanel {
  variant: string;
  /** PNG data URLs. */
  image: string;
  difference: string;
  /** PSNR of this example against FP32, peak = the range's width (dB); null when identical. */
  psnr: number | null;
}

export interface ImageComparisonResult {
  step: "image-comparison";
  output: string;
  /** [height, width, channels] of one output image. */
  shape: [number, number, number];
  range: [number, number];
  /** Differences are drawn as |quantized − FP32| × gain (the same gain for every variant, so they compare). */
  gain: number;
  examples: { index: number; fp32: string; panels: ImagePanel[] }[];
  diagnosis: string;
}

/**
 * Image outputs side by side: for the first examples of `data`, the FP32
 * model's output, each simulation's output, and their difference (amplified
 * by one gain for all, so "before" and "after" a fix compare at a glance).
 * The subject is one simulation, or several by name ({ before, after }).
 * What a super-resolution or segmentation model's score cannot show: where
 * in the picture the error is.
 */
export async function compareImages(subject: QuantSim | Readonly<Record<string, QuantSim>>, options: ImageComparisonOptions): Promise<ImageComparisonResult> {
  const data = requireData("compareImages", options);
  const sims: [string, QuantSim][] = subject instanceof QuantSim ? [["quantized", subject]] : Object.entries(subject);
  if (sims.length === 0 || sims.some(([, s]) => !(s instanceof QuantSim))) throw new Error("compareImages: the subject must be a QuantSim, or simulations by name ({ before, after })");
  const count = options.examples ?? 2;
  if (!Number.isInteger(count) || count < 1 || count > 16) throw new Error(`compareImages: examples must be a whole number from 1 to 16, got ${options.examples}`);
  const graph = options.reference ?? sims[0][1].graph;
  const outputIndex = options.output === undefined ? 0 : graph.outputs.indexOf(options.output);
  if (outputIndex < 0) throw new Error(`compareImages: the model has no output "${options.output}" (outputs: ${graph.outputs.join(", ")})`);
  const outputName = graph.outputs[outputIndex];

  // 1. The first `count` examples: FP32 and every variant, as host arrays.
  const fp32: Float32Array[] = [];
  const variants: Float32Array[][] = sims.map(() => []);
  let shape: [number, number, number] | undefined;
  for await (const batch of data.batches()) {
    try {
      const take = Math.min(count - fp32.length, batch.inputs[0].shape[0]);
      const inputs = batch.inputs.map((t) => tf.slice(t, 0, take));
      try {
        const collect = (outputs: tf.Tensor[], into: Float32Array[]) => {
          try {
            const out = outputs[outputIndex];
            if (out.rank !== 4 || (out.shape[3] !== 1 && out.shape[3] !== 3)) {
              throw new Error(`compareImages: output "${outputName}" has shape [batch, ${out.shape.slice(1).join(", ")}], not images [batch, height, width, 1 or 3]`);
            }
            shape = [out.shape[1]!, out.shape[2]!, out.shape[3]!];
            const values = out.dataSync() as Float32Array;
            const size = shape[0] * shape[1] * shape[2];
            for (let i = 0; i < take; i++) into.push(values.slice(i * size, (i + 1) * size));
          } finally {
            tf.dispose(outputs);
          }
        };
        collect(forward(graph, inputs), fp32);
        sims.forEach(([, sim], v) => {
          // A copy, so that the caller's simulation is left as it was (no cached quantized weights).
          const copy = sim.with({});
          try {
            collect(copy.forward(inputs), variants[v]);
          } finally {
            copy.dispose();
          }
        });
      } finally {
        tf.dispose(inputs);
      }
    } finally {
      disposeBatch(batch);
    }
    if (fp32.length >= count) break;
  }
  if (!shape) throw new Error("compareImages: the data is empty");

  // 2. One range and one gain for every picture.
  const max = Math.max(...fp32.map((a) => a.reduce((m, v) => Math.max(m, v), -Infinity)));
  const range = options.range ?? (max > 1.5 ? [0, 255] : [0, 1]);
  if (!(range[1] > range[0])) throw new Error(`compareImages: range must be [low, high] with low < high, got ${JSON.stringify(range)}`);
  const width = range[1] - range[0];
  let largest = 0;
  for (const perVariant of variants) perVariant.forEach((a, e) => a.forEach((v, i) => (largest = Math.max(largest, Math.abs(v - fp32[e][i])))));
  const gain = niceGain(largest > 0 ? (0.8 * width) / largest : 1);

  // 3. Pictures and per-example PSNR.
  const [h, w, c] = shape;
  const examples = fp32.map((ref, e) => ({
    index: e,
    fp32: pngUrl(ref, h, w, c, (v) => (v - range[0]) / width),
    panels: sims.map(([name], v) => {
      const q = variants[v][e];
      let se = 0;
      for (let i = 0; i < q.length; i++) se += (q[i] - ref[i]) ** 2;
      const diff = q.map((x, i) => Math.abs(x - ref[i]));
      return {
        variant: name,
        image: pngUrl(q, h, w, c, (x) => (x - range[0]) / width),
        difference: pngUrl(diff, h, w, c, (d) => (gain * d) / width),
        psnr: se === 0 ? null : 10 * Math.log10((width * width) / (se / q.length)),
      };
    }),
  }));
  return { step: "image-comparison", output: outputName, shape, range: [range[0], range[1]], gain, examples, diagnosis: describe(examples, gain) };
}

/** Whether a graph's first output is a batch of images, [batch, height, width, 1 or 3]. */
export function imageOutput(graph: Graph): boolean {
  const shape = graph.node(graph.outputs[0]).outputShape;
  return shape.length === 4 && (shape[3] === 1 || shape[3] === 3);
}

/** 1, 2 or 5 × 10^k at or below `g`, so the view can say "× 20". */
function niceGain(g: number): number {
  if (g <= 1) return 1;
  const p = 10 ** Math.floor(Math.log10(g));
  return [5, 2, 1].map((m) => m * p).find((x) => x <= g)!;
}

/** An image (HWC values mapped to [0, 1] by `scale`, clamped) as a PNG data URL. */
function pngUrl(values: Float32Array, h: number, w: number, c: number, scale: (v: number) => number): string {
  const png = new PNG({ width: w, height: h });
  for (let p = 0; p < h * w; p++) {
    for (let k = 0; k < 3; k++) png.data[4 * p + k] = Math.round(255 * Math.min(1, Math.max(0, scale(values[p * c + (c === 3 ? k : 0)]))));
    png.data[4 * p + 3] = 255;
  }
  return `data:image/png;base64,${PNG.sync.write(png).toString("base64")}`;
}

function describe(examples: ImageComparisonResult["examples"], gain: number): string {
  const names = examples[0].panels.map((p) => p.variant);
  const mean = (name: string) => {
    const values = examples.map((e) => e.panels.find((p) => p.variant === name)!.psnr).filter((v): v is number => v !== null);
    return values.length ? `${(values.reduce((a, b) => a + b, 0) / values.length).toFixed(1)} dB` : "identical to FP32";
  };
  return `${names.map((n) => `${n}: PSNR ${mean(n)}`).join(", ")} on ${examples.length} example${examples.length > 1 ? "s" : ""} (peak = the pixel range). Differences are drawn ×${gain}: bright where the quantized output departs from FP32.`;
}
