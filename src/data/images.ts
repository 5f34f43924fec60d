import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import * as jpeg from "jpeg-js";
import { PNG } from "pngjs";
import { Batch, Dataset } from "./types";

/**
 * A folder of JPEG/PNG images as a dataset, decoded in pure JS (jpeg-js, pngjs)
 * one batch at a time.
 *
 * Layout: either images directly in the folder (no labels), or one sub-folder
 * per class holding its images (label = index of the sub-folder in sorted
 * order; `classes` lists the names). Files are sorted by name; hidden entries
 * (starting with ".") are skipped; anything else is an error.
 */

export interface ImageFolderOptions {
  /** [height, width] every image is resized to; default: the first image's size. */
  size?: [number, number];
  /** 1 = luminance (ITU-R BT.601), 3 = RGB; alpha is dropped. Default 3. */
  channels?: 1 | 3;
  /** Pixel values 0..255 are mapped linearly onto this range. Default [0, 1]. */
  range?: [number, number];
  batchSize?: number;
  /** The example order, given the number of files (indices into `files`); default: sorted order. */
  order?: (count: number) => number[];
}

export interface ImageFolderDataset extends Dataset {
  readonly size: number;
  /** Every image, sorted by class then name. */
  readonly files: string[];
  /** Class names (sorted sub-folder names), when the folder has class sub-folders. */
  readonly classes?: string[];
  /** Label per file (index into `classes`), when the folder has class sub-folders. */
  readonly labels?: number[];
}

const IMAGE_EXTENSIONS = [".jpg", ".jpeg", ".png"];

const isHidden = (name: string) => name.startsWith(".");

function sortedEntries(dir: string): fs.Dirent[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => !isHidden(e.name))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function checkImageFile(file: string, folder: string): void {
  const ext = path.extname(file).toLowerCase();
  if (!IMAGE_EXTENSIONS.includes(ext)) {
    throw new Error(`unsupported file in image folder ${folder}: ${file} (expected ${IMAGE_EXTENSIONS.join(", ")} images; hidden files are skipped)`);
  }
}

/** Lists the images of `dir` (and their class labels, if it has class sub-folders). */
export function listImageFolder(dir: string): { files: string[]; classes?: string[]; labels?: number[] } {
  const entries = sortedEntries(dir);
  if (entries.length === 0) throw new Error(`image folder ${dir} is empty (no non-hidden files)`);
  const folders = entries.filter((e) => e.isDirectory());
  const others = entries.filter((e) => !e.isDirectory());
  if (folders.length === 0) {
    const files = others.map((e) => path.join(dir, e.name));
    files.forEach((f) => checkImageFile(f, dir));
    return { files };
  }
  if (others.length > 0) {
    throw new Error(`image folder ${dir} mixes class sub-folders with files (${path.join(dir, others[0].name)}): put every image in a class sub-folder, or use a flat folder`);
  }
  const files: string[] = [];
  const labels: number[] = [];
  folders.forEach((folder, label) => {
    const classDir = path.join(dir, folder.name);
    for (const e of sortedEntries(classDir)) {
      const file = path.join(classDir, e.name);
      if (e.isDirectory()) throw new Error(`unsupported sub-folder in class folder ${classDir}: ${file} (class folders hold images only)`);
      checkImageFile(file, classDir);
      files.push(file);
      labels.push(label);
    }
  });
  if (files.length === 0) throw new Error(`image folder ${dir} has class sub-folders but no images in them`);
  return { files, classes: folders.map((f) => f.name), labels };
}

/** Decoded image: RGBA bytes, row-major. */
export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Decodes a JPEG or PNG file; the format is detected from its first bytes, not its extension. */
export function decodeImage(file: string): RgbaImage {
  const bytes = fs.readFileSync(file);
  const isPng = bytes.length >= 8 && bytes.readUInt32BE(0) === 0x89504e47;
  const isJpeg = bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
  if (!isPng && !isJpeg) throw new Error(`corrupt image ${file}: not a JPEG or PNG (unrecognized first bytes)`);
  try {
    if (isPng) {
      const png = PNG.sync.read(bytes);
      return { width: png.width, height: png.height, data: png.data };
    }
    const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true });
    return { width: img.width, height: img.height, data: img.data };
  } catch (err) {
    throw new Error(`corrupt image ${file}: ${isPng ? "PNG" : "JPEG"} decoding failed: ${(err as Error).message}`);
  }
}

/** RGBA bytes → float values 0..255 with 1 (luminance) or 3 (RGB) channels. */
function toChannels(img: RgbaImage, channels: 1 | 3): Float32Array {
  const pixels = img.width * img.height;
  const out = new Float32Array(pixels * channels);
  const d = img.data;
  for (let p = 0; p < pixels; p++) {
    const r = d[4 * p];
    const g = d[4 * p + 1];
    const b = d[4 * p + 2];
    if (channels === 1) out[p] = 0.299 * r + 0.587 * g + 0.114 * b;
    else {
      out[3 * p] = r;
      out[3 * p + 1] = g;
      out[3 * p + 2] = b;
    }
  }
  return out;
}

/**
 * A dataset over an image folder. The listing (and unsupported-file errors)
 * happen now; decoding (and corrupt-image errors) happen per batch.
 * Resizing uses bilinear interpolation with half-pixel centers, like TF2's
 * `tf.image.resize` (no anti-aliasing); images already at the size are not resampled.
 */
export function imageFolderDataset(dir: string, options: ImageFolderOptions = {}): ImageFolderDataset {
  const { files, classes, labels } = listImageFolder(dir);
  const channels = options.channels ?? 3;
  const [lo, hi] = options.range ?? [0, 1];
  const batchSize = options.batchSize ?? 32;
  const order = options.order ? options.order(files.length) : files.map((_, i) => i);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`invalid batch size: ${batchSize} (expected a positive integer)`);
  if (channels !== 1 && channels !== 3) throw new Error(`invalid image channel count: ${channels} (expected 1 or 3)`);
  // Without a given size, every image is resized to the first one's.
  let size = options.size;

  function loadBatch(indices: number[]): Batch {
    const decoded = indices.map((i) => {
      const img = decodeImage(files[i]);
      size ??= [img.height, img.width];
      return img;
    });
    const [h, w] = size!;
    const images = tf.tidy(() => {
      const resized = decoded.map((img) => {
        const t = tf.tensor3d(toChannels(img, channels), [img.height, img.width, channels]);
        return img.height === h && img.width === w ? t : tf.image.resizeBilinear(t, [h, w], false, true);
      });
      return tf.stack(resized).mul((hi - lo) / 255).add(lo);
    });
    const batchLabels = labels ? tf.tensor1d(indices.map((i) => labels[i]), "int32") : undefined;
    return batchLabels ? { inputs: [images], labels: batchLabels } : { inputs: [images] };
  }

  const classNote = classes ? `, ${classes.length} classes` : "";
  return {
    name: `images in ${dir} (${order.length} files${classNote})`,
    size: order.length,
    files,
    classes,
    labels,
    async *batches(): AsyncGenerator<Batch> {
      for (let start = 0; start < order.length; start += batchSize) {
        yield loadBatch(order.slice(start, start + batchSize));
      }
    },
  };
}
