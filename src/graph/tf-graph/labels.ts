/**
 * Short readable labels from TF node names, for tables and views:
 * "StatefulPartitionedCall/model/conv2d_3/BiasAdd" → "conv2d_3". Wrapper scopes
 * and the trailing op name are dropped; the label stays unique in the graph
 * (the full name is kept where shortening would collide).
 */
const WRAPPERS = /^(StatefulPartitionedCall(_\d+)?|PartitionedCall(_\d+)?|model(_\d+)?|functional(_\d+)?|sequential(_\d+)?)$/;
const OP_SUFFIXES = /^(BiasAdd|Conv2D(_\d+)?|MatMul|Relu6?|Relu_\d+|Sigmoid|Tanh|add(_\d+)?|Add(V2)?|mul(_\d+)?|Mul|depthwise|Reshape|Squeeze|Mean|Softmax|concat|ConcatV2|resize|ResizeBilinear|Pad|MaxPool|AvgPool|Prelu|FusedBatchNormV3|BatchNorm|truediv|sub|Sub|transpose|StridedSlice|Sum|Max)$/;

export function shortLabel(name: string): string {
  // Keras's tf_op_layer_ wrapper scopes repeat the op's own name.
  let parts = name.split("/").filter((p) => !WRAPPERS.test(p)).map((p) => p.replace(/^tf_op_layer_/, ""));
  if (parts.length > 1 && OP_SUFFIXES.test(parts[parts.length - 1])) parts = parts.slice(0, -1);
  parts = parts.filter((p, i) => i === 0 || p !== parts[i - 1]);
  if (parts.length > 2) parts = parts.slice(-2);
  return parts.join("/") || name;
}

/** Labels for all names, each unique: a label two nodes would share goes back to their full names. */
export function uniqueLabels(names: readonly string[]): Map<string, string> {
  const short = names.map(shortLabel);
  const count = new Map<string, number>();
  for (const s of short) count.set(s, (count.get(s) ?? 0) + 1);
  return new Map(names.map((n, i) => [n, count.get(short[i])! > 1 ? n : short[i]]));
}
