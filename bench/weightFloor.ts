/**
 * The floor under any fp32 forward step of a GPT-2 on onnxruntime: a graph holding only the weight matrix products
 * of the network (per layer c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj; then the tied LM head), chained so that each
 * reads the previous one's output, with no attention, LayerNorm, GELU, cache or softmax. Its time over R rows is
 * what reading and multiplying the weights costs; a full step cannot be faster. Weight values do not change the
 * time, so they are random.
 */
import { DataType, encodeModel, type NodeSpec, type TensorSpec } from '../extension/engine/graph/onnxProto';
import { f32, ModelSession } from '../extension/engine/graph/session';

export interface FloorShape {
  nLayer: number;
  nEmbd: number;
  vocab: number;
}

export async function weightFloorSession(shape: FloorShape, threads = 2): Promise<(rows: number) => Promise<void>> {
  const { nLayer: L, nEmbd: E, vocab: V } = shape;
  const initializers: TensorSpec[] = [];
  const nodes: NodeSpec[] = [];
  let seed = 1;
  const random = (n: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5) * 0.05;
    return a;
  };
  const tensor = (name: string, dims: number[], data: Float32Array | BigInt64Array) => {
    initializers.push({ name, dataType: data instanceof Float32Array ? DataType.FLOAT : DataType.INT64, dims, raw: new Uint8Array(data.buffer) });
    return name;
  };
  const matmul = (x: string, name: string, rows: number, cols: number) => {
    nodes.push({ op: 'MatMul', inputs: [x, tensor(name, [rows, cols], random(rows * cols))], outputs: [`${name}.out`], name });
    return `${name}.out`;
  };
  const zero = tensor('zero', [1], new BigInt64Array([0n]));
  const one = tensor('one', [1], new BigInt64Array([1n]));
  const width = tensor('width', [1], new BigInt64Array([BigInt(E)]));
  let x = 'x'; // [R, E]
  for (let l = 0; l < L; l++) {
    const qkv = matmul(x, `h.${l}.attn.c_attn`, E, 3 * E); // [R, 3E]
    nodes.push({ op: 'Slice', inputs: [qkv, zero, width, one], outputs: [`h.${l}.q`], name: `h.${l}.q` }); // [R, E]
    const attn = matmul(`h.${l}.q`, `h.${l}.attn.c_proj`, E, E); // [R, E]
    const fc = matmul(attn, `h.${l}.mlp.c_fc`, E, 4 * E); // [R, 4E]
    x = matmul(fc, `h.${l}.mlp.c_proj`, 4 * E, E); // [R, E]
  }
  // The tied LM head as the engine computes it: Gemm with wte [V, E] transposed.
  nodes.push({ op: 'Gemm', inputs: [x, tensor('wte', [V, E], random(V * E))], outputs: ['logits'], name: 'lm_head', attrs: { transB: 1 } });
  const model = await encodeModel({
    nodes,
    initializers,
    inputs: [{ name: 'x', dataType: DataType.FLOAT, dims: ['R', E] }],
    outputs: [{ name: 'logits', dataType: DataType.FLOAT, dims: ['R', V] }],
    opset: 17,
    name: 'weight-floor',
  });
  const session = await ModelSession.create(model, { threads });
  return async (rows: number) => {
    await session.run({ x: f32(new Float32Array(rows * E).fill(0.1), [rows, E]) }, ['logits']);
  };
}
