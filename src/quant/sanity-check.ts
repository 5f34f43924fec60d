import { Dataset, requireData } from "../data/types";
import { OutputComparison } from "../eval/output-comparison";
import { compareWithFp32 } from "../eval/side-by-side";
import { ProgressFn } from "../progress";
import { computeEncoding, Encoding } from "./encoding";
import { QuantSim } from "./quantsim";

export type SanityVariantName = "32-bit" | "bypassed" | "32-bit, ranges opened";

export interface SanityVariant extends OutputComparison {
  variant: SanityVariantName;
  pass: boolean;
}

export interface SanityCheckResult {
  step: "fp32-sanity-check";
  /** Largest relative output error allowed (relative to the FP32 outputs' scale). */
  tolerance: number;
  /**
   * "32-bit" and "bypassed"; and "32-bit, ranges opened" when the 32-bit error
   * exceeds the tolerance, run to tell float rounding from clipping.
   */
  checks: SanityVariant[];
  /**
   * The 32-bit error exceeds the tolerance, but opening every range (so nothing
   * clips) leaves it as large: it is float32's last-bit rounding, amplified by
   * this model, not a fault of the simulation.
   */
  roundingNoise: boolean;
  pass: boolean;
  /** Plain-language reading of the result. */
  diagnosis: string;
}

/**
 * The guidebook's first debugging step: the simulation must reproduce the FP32
 * model when quantization cannot matter — every quantizer at 32 bits (rounding
 * noise ~1e-9 of the range) and every quantizer bypassed (exactly FP32). If
 * either fails, the simulation pipeline itself is broken, not the quantization.
 * Ranges come from `sim`'s calibration; run it on the data it was calibrated on,
 * since 32-bit quantizers still clip values outside their calibrated range.
 */
export interface SanityCheckOptions {
  /** The data `sim` was calibrated on (32-bit quantizers still clip outside their ranges). */
  data: Dataset;
  /** Largest relative output error at 32 bits (default 1e-4). */
  tolerance?: number;
  onProgress?: ProgressFn;
}

/**
 * The 32-bit error at most this many times the error with ranges opened counts
 * as the same rounding noise (two runs of last-bit noise differ in their worst
 * value; clipping makes the calibrated one orders of magnitude larger).
 */
const SAME_NOISE_RATIO = 2;
/**
 * Last-bit rounding at every quantizer keeps outputs far above this SQNR (even
 * amplified 10^4 times, as BlazePose does); a broken quantizer formula falls far below.
 */
const ROUNDING_NOISE_MIN_SQNR_DB = 60;

export async function fp32SanityCheck(sim: QuantSim, options: SanityCheckOptions): Promise<SanityCheckResult> {
  const data = requireData("fp32SanityCheck", options);
  const tolerance = options.tolerance ?? 1e-4;
  const at32 = sim.with({ "**": { bitwidth: 32 } });
  const bypassed = sim.with({ "**": { enabled: false } });
  let opened: QuantSim | undefined;
  try {
    const result = await compareWithFp32(sim.graph, { data, variants: { "32-bit": at32, bypassed }, onProgress: options.onProgress, task: "FP32 sanity check" });
    const agrees = (c: OutputComparison) => c.top1Agreement === null || c.top1Agreement === 1;
    const c32 = result.variants["32-bit"];
    const off: SanityVariant = { variant: "bypassed", ...result.variants.bypassed, pass: result.variants.bypassed.maxRelError === 0 && agrees(result.variants.bypassed) };
    if (c32.maxRelError <= tolerance && agrees(c32)) return finish(tolerance, [{ variant: "32-bit", ...c32, pass: true }, off], false);
    // Beyond the tolerance: rerun with every range opened wide. If nothing changes, no value was clipped and the
    // error is float32's rounding (each 32-bit quantizer moves values by a last bit), which deep models amplify.
    opened = at32.withEncodings(openedEncodings(at32));
    const again = await compareWithFp32(sim.graph, { data, variants: { opened }, onProgress: options.onProgress, task: "FP32 sanity check, ranges opened" });
    const co = again.variants.opened;
    const noiseLike = co.sqnrDb === null || co.sqnrDb >= ROUNDING_NOISE_MIN_SQNR_DB;
    // Rounding noise can flip a near-tie's class, in both runs alike; clipping flips more.
    const flipsNoMore = (c32.top1Agreement ?? 1) >= (co.top1Agreement ?? 1);
    const roundingNoise = noiseLike && flipsNoMore && c32.maxRelError <= Math.max(tolerance, SAME_NOISE_RATIO * co.maxRelError);
    const at: SanityVariant = { variant: "32-bit", ...c32, pass: roundingNoise };
    const wide: SanityVariant = { variant: "32-bit, ranges opened", ...co, pass: noiseLike };
    return finish(tolerance, [at, off, wide], roundingNoise);
  } finally {
    at32.dispose();
    bypassed.dispose();
    opened?.dispose();
  }
}

function finish(tolerance: number, checks: SanityVariant[], roundingNoise: boolean): SanityCheckResult {
  const pass = checks.every((c) => c.pass);
  return { step: "fp32-sanity-check", tolerance, checks, roundingNoise, pass, diagnosis: diagnose(tolerance, checks, roundingNoise, pass) };
}

function diagnose(tolerance: number, checks: SanityVariant[], roundingNoise: boolean, pass: boolean): string {
  const [c32, off, wide] = checks;
  const e = (v: number) => v.toExponential(1);
  const db = (c: SanityVariant) => (c.sqnrDb === null ? "" : `, SQNR ${c.sqnrDb.toFixed(0)} dB`);
  if (!off.pass) {
    return `The simulation does not reproduce FP32 even with every quantizer bypassed (largest relative error ${e(off.maxRelError)}): the model graph or the runner differs from the FP32 model. Fix this before any quantization analysis.`;
  }
  if (pass && !roundingNoise) {
    return `The simulation is sound: with every quantizer at 32 bits the outputs stay within ${e(c32.maxRelError)} of FP32 (relative), and with every quantizer bypassed they are identical. Any accuracy drop you see later comes from quantization itself.`;
  }
  if (pass) {
    return `The simulation is sound. With every quantizer at 32 bits the outputs differ from FP32 by up to ${e(c32.maxRelError)} (relative${db(c32)})${c32.maxRelError > tolerance ? `, above the ${tolerance} tolerance` : ", and change some top-1 classes"}; but with every range opened wide, so that nothing can be clipped, they differ as much (${e(wide.maxRelError)}${db(wide)}). So no value is clipped: each 32-bit quantizer changes values by float32's last bit, and this model amplifies such rounding. With every quantizer bypassed the outputs are identical. Any accuracy drop you see later comes from quantization itself.`;
  }
  if (wide && !wide.pass) {
    return `Even with every range opened to three times its width, the 32-bit simulation differs from FP32 by up to ${e(wide.maxRelError)} (relative${db(wide)}): more than float rounding can explain. Either the data holds values far outside the calibrated ranges (run the check on the data the simulation was calibrated on), or the quantizers distort values at 32 bits.`;
  }
  const clipped = wide ? ` With every range opened wide it differs by only ${e(wide.maxRelError)}, so the calibrated ranges clip values:` : "";
  return `With every quantizer at 32 bits the outputs differ from FP32 by up to ${e(c32.maxRelError)} (relative; tolerance ${tolerance}).${clipped} the quantizers distort values even at 32 bits. Check the calibrated ranges (values outside them are clipped) on this data.`;
}

/** Every quantizer's 32-bit range widened by its own width on both sides: nothing the data holds is clipped. */
function openedEncodings(sim: QuantSim): Map<string, Encoding | Encoding[]> {
  const open = (enc: Encoding) => {
    const width = Math.max(enc.max - enc.min, Number.MIN_VALUE);
    return computeEncoding(enc.min - width, enc.max + width, enc.bitwidth, enc.scheme);
  };
  const encodings = new Map<string, Encoding | Encoding[]>();
  for (const q of sim.quantizers()) {
    if (q.encoding) encodings.set(q.name, Array.isArray(q.encoding) ? q.encoding.map(open) : open(q.encoding));
  }
  return encodings;
}
