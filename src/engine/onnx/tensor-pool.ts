import type * as Ort from "onnxruntime-node";

/**
 * Float buffers of the shapes segments hand on, reused from batch to batch and
 * variant to variant: ORT's own output allocation costs more than a small
 * segment's compute. A shape keeps at most as many free buffers as were ever
 * taken at once. Each new session's first run returns buffers ORT allocated,
 * and keeping all of those grew a sweep by a batch's values per variant
 * (selfie segmentation: 3 GB by the end of its enable-one sweep).
 */
export class TensorPool {
  private readonly free = new Map<string, Ort.Tensor[]>();
  private readonly inUse = new Map<string, number>();
  private readonly mostInUse = new Map<string, number>();

  constructor(private readonly ort: typeof Ort) {}

  take(dims: readonly number[]): Ort.Tensor {
    const key = dims.join("x");
    const using = (this.inUse.get(key) ?? 0) + 1;
    this.inUse.set(key, using);
    this.mostInUse.set(key, Math.max(this.mostInUse.get(key) ?? 0, using));
    return this.free.get(key)?.pop() ?? new this.ort.Tensor("float32", new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);
  }

  give(t: Ort.Tensor): void {
    if (t.type !== "float32") return;
    const key = t.dims.join("x");
    this.inUse.set(key, Math.max(0, (this.inUse.get(key) ?? 0) - 1));
    const list = this.free.get(key) ?? [];
    // Before any take, keep one: the next run of that shape takes it.
    if (list.length < Math.max(1, this.mostInUse.get(key) ?? 0)) list.push(t);
    this.free.set(key, list);
  }

  /** Free buffers held, over every shape (for tests). */
  get freeCount(): number {
    return [...this.free.values()].reduce((a, l) => a + l.length, 0);
  }
}
