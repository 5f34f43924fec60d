/**
 * Sends display_data to the notebook through the running tslab kernel.
 *
 * tslab's public `display` sends one MIME type per message, but a plot needs
 * several in one message (each front end picks the richest it renders). tslab
 * keeps the function that writes display messages on its `jupyter` module
 * (`lastWriteDisplayData(content, update)`); the kernel and the notebook's code
 * share one Node process, so that module is found in Node's module cache,
 * whichever copy of tslab the kernel was started from.
 */
type WriteDisplayData = (content: { data: Record<string, unknown>; metadata: Record<string, unknown>; transient: { display_id?: string } }, update: boolean) => void;

function kernelWriter(): WriteDisplayData | undefined {
  const cache = (require as NodeJS.Require).cache;
  for (const [file, mod] of Object.entries(cache)) {
    if (!/[\\/]tslab[\\/]dist[\\/]jupyter\.js$/.test(file)) continue;
    const write = (mod?.exports as { lastWriteDisplayData?: WriteDisplayData } | undefined)?.lastWriteDisplayData;
    if (typeof write === "function") return write;
  }
  return undefined;
}

/** Whether this code runs inside a tslab kernel that can display. */
export function inNotebook(): boolean {
  return kernelWriter() !== undefined;
}

/** Sends one bundle; with `displayId`, later sends with the same id replace it in place. */
export function sendDisplay(bundle: { data: Record<string, unknown>; metadata: Record<string, unknown> }, displayId?: string, update = false): void {
  const write = kernelWriter();
  if (!write) throw new Error("not running in a tslab kernel: nothing to display to");
  write({ data: bundle.data, metadata: bundle.metadata, transient: displayId ? { display_id: displayId } : {} }, update);
}
