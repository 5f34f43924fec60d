import { LayerLowering, OpKernel } from "./types";

/**
 * Two small registries, like tfjs's kernel registry: op kernels by op kind, and
 * layer lowerings by Keras class name. Each file in ops/ registers its own, so
 * supporting a new layer is adding one file (and one line in ops/all.ts).
 */
const kernels = new Map<string, OpKernel>();
const lowerings = new Map<string, LayerLowering>();

export function registerOp(kernel: OpKernel): void {
  kernels.set(kernel.op, kernel);
}

export function registerLayer(lowering: LayerLowering): void {
  for (const name of lowering.classNames) lowerings.set(name, lowering);
}

export function getOp(op: string): OpKernel {
  const kernel = kernels.get(op);
  if (!kernel) throw new Error(`no kernel registered for op "${op}"`);
  return kernel;
}

export function getLowering(className: string): LayerLowering | undefined {
  return lowerings.get(className);
}

/** Keras classes the importer supports, sorted, for error messages and docs. */
export function supportedLayerClasses(): string[] {
  return [...lowerings.keys()].sort();
}
