/**
 * Real low-resolution inputs for the super-resolution case study: square crops
 * of the six face-api demo photos (node_modules/@vladmandic/face-api/demo), taken
 * at native resolution after shrinking each photo by `shrink` (so a crop holds
 * a face or a scene, not a patch of skin), written as PNG files.
 *
 *     npx ts-node scripts/make-esrgan-crops.ts <out-dir> [size=48] [perPhoto=2] [shrink=10]
 */
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { PNG } from "pngjs";
import { decodeImage } from "../src/data/images";

/** [y, x] of each crop's center in relative coordinates: the middle, then the upper third (faces). */
const CENTERS = [
  [0.5, 0.5],
  [0.33, 0.5],
  [0.4, 0.3],
  [0.4, 0.7],
];

export function faceApiPhotos(): string[] {
  const dir = path.join(path.dirname(require.resolve("@vladmandic/face-api/package.json")), "demo");
  return [1, 2, 3, 4, 5, 6].map((i) => path.join(dir, `sample${i}.jpg`));
}

/** Crops as one [n, size, size, 3] tensor of pixel values 0..255 (float32). */
export function esrganCrops(size = 48, perPhoto = 2, shrink = 10): tf.Tensor4D {
  return tf.tidy(() =>
    tf.concat(
      faceApiPhotos().flatMap((file) => {
        const img = decodeImage(file);
        const rgb = tf.cast(tf.slice(tf.tensor3d(img.data, [img.height, img.width, 4], "int32"), [0, 0, 0], [img.height, img.width, 3]), "float32");
        const [h, w] = [Math.round(img.height / shrink), Math.round(img.width / shrink)];
        const small = tf.image.resizeBilinear(rgb as tf.Tensor3D, [h, w], true);
        return CENTERS.slice(0, perPhoto).map(([cy, cx]) => {
          const y = Math.max(0, Math.min(h - size, Math.round(cy * h - size / 2)));
          const x = Math.max(0, Math.min(w - size, Math.round(cx * w - size / 2)));
          return tf.round(tf.slice(small, [y, x, 0], [size, size, 3])).expandDims(0);
        });
      }),
    ),
  ) as tf.Tensor4D;
}

if (require.main === module) {
  const [out, size = "48", perPhoto = "2", shrink = "10"] = process.argv.slice(2);
  if (!out) throw new Error("usage: make-esrgan-crops.ts <out-dir> [size] [perPhoto] [shrink]");
  fs.mkdirSync(out, { recursive: true });
  const crops = esrganCrops(Number(size), Number(perPhoto), Number(shrink));
  const [n, h, w] = crops.shape;
  const data = crops.dataSync();
  for (let i = 0; i < n; i++) {
    const png = new PNG({ width: w, height: h });
    for (let p = 0; p < h * w; p++) {
      for (let c = 0; c < 3; c++) png.data[4 * p + c] = data[(i * h * w + p) * 3 + c];
      png.data[4 * p + 3] = 255;
    }
    fs.writeFileSync(path.join(out, `crop${String(i).padStart(2, "0")}.png`), PNG.sync.write(png));
  }
  crops.dispose();
  console.log(`wrote ${n} crops of ${h}×${w} to ${out}`);
}
