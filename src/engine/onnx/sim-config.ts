import { Encoding } from "../../quant/encoding";
import { QuantizerSite } from "../../quant/placement";
import { QuantSim } from "../../quant/quantsim";
import { QuantizerLowering } from "./lower-graph";

/**
 * What one simulation does inside one segment, reduced to a string: two
 * simulations with the same key compute the same values there, so they can
 * share a session (and, on the same inputs, its results).
 */
export function segmentKey(sim: QuantSim, sites: readonly QuantizerSite[]): string {
  const parts: string[] = [];
  for (const site of sites) {
    const enc = sim.encodingOf(site.name);
    if (!enc) continue;
    const s = sim.settingsOf(site.name);
    if (site.kind === "activation" && s.rounding === "stochastic") {
      throw new OnnxUnsupported(`activation quantizer "${site.name}" rounds stochastically`);
    }
    let key = `${site.name}=${encodingKey(enc)}`;
    if (site.kind !== "activation") {
      if (s.rounding === "stochastic") key += `:stochastic:${sim.config.seed ?? 0}`;
      const frozen = sim.frozenWeightOf(site.name);
      if (frozen) key += `:frozen:${identity(frozen)}`;
    }
    parts.push(key);
  }
  return parts.join(";");
}

/** A simulation the ONNX engine cannot run as such (the caller falls back to tfjs). */
export class OnnxUnsupported extends Error {}

function encodingKey(enc: Encoding | Encoding[]): string {
  const list = Array.isArray(enc) ? enc : [enc];
  if (list.length === 1) return `${list[0].numSteps}/${list[0].scale}/${list[0].offset}`;
  return `${list.length}x${list[0].numSteps}/${hashNumbers(list.flatMap((e) => [e.scale, e.offset]))}`;
}

/** Two 32-bit FNV-1a hashes over the numbers' float64 bytes: a short, stable key for per-channel grids. */
function hashNumbers(values: readonly number[]): string {
  const bytes = new Uint8Array(new Float64Array(values).buffer);
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ values.length;
  for (let i = 0; i < bytes.length; i++) {
    a = Math.imul(a ^ bytes[i], 0x01000193);
    b = Math.imul(b ^ bytes[i], 0x5bd1e995);
  }
  return (a >>> 0).toString(16) + (b >>> 0).toString(16);
}

const ids = new WeakMap<object, number>();
let nextId = 1;
function identity(o: object): number {
  let id = ids.get(o);
  if (id === undefined) ids.set(o, (id = nextId++));
  return id;
}

/** The storage an activation grid needs: 8-bit codes, 16-bit codes, or float codes beyond. */
export function storageFor(enc: Encoding): QuantizerLowering["storage"] {
  return enc.numSteps <= 255 ? "uint8" : enc.numSteps <= 65535 ? "uint16" : "float";
}

const WIDER: Record<QuantizerLowering["storage"], number> = { uint8: 0, uint16: 1, float: 2 };
export function widerStorage(a: QuantizerLowering["storage"], b: QuantizerLowering["storage"]): QuantizerLowering["storage"] {
  return WIDER[a] >= WIDER[b] ? a : b;
}

/** The values fed to a lowered activation quantizer for `enc` (see lowerGraph's quantizers). */
export function quantizerFeeds(enc: Encoding, storage: QuantizerLowering["storage"]): { scale: number; zeroPoint: number; lo: number; hi: number } {
  const scale = Math.fround(enc.scale);
  if (storage === "float") return { scale, zeroPoint: 0, lo: enc.offset, hi: enc.offset + enc.numSteps };
  // Codes are stored shifted by -offset (0..numSteps); the clip keeps them on the grid when it has fewer codes than the type.
  return { scale, zeroPoint: -enc.offset, lo: Math.fround(enc.offset * scale), hi: Math.fround((enc.offset + enc.numSteps) * scale) };
}
