/** The ONNX graph under construction: nodes, initializers, and constants declared once by name. */
import { DataType, type AttrValue, type NodeSpec, type TensorSpec, type ValueSpec } from './onnxProto';
import type { Weight } from './gpt2Graph';

export class GraphBuilder {
  readonly nodes: NodeSpec[] = [];
  readonly initializers: TensorSpec[] = [];
  private count = 0;

  /** Adds one node and returns the name of its (first) output. */
  op(op: string, inputs: string[], attrs?: Record<string, AttrValue>, nOutputs = 1): string {
    const name = `${op}_${this.count++}`;
    const outputs = Array.from({ length: nOutputs }, (_, i) => (nOutputs === 1 ? name : `${name}_${i}`));
    this.nodes.push({ op, inputs, outputs, name, attrs });
    return outputs[0];
  }

  /** Adds a node whose outputs carry the given names (graph outputs). */
  named(op: string, inputs: string[], outputs: string[], attrs?: Record<string, AttrValue>): void {
    this.nodes.push({ op, inputs, outputs, name: `${op}_${this.count++}`, attrs });
  }

  weight(name: string, data: Weight, dims: number[]): string {
    const size = dims.reduce((a, b) => a * b, 1);
    if (data.byteLength !== size * 4) throw new Error(`graph: ${name} has ${data.byteLength / 4} values, expected ${dims.join('×')}`);
    this.initializers.push({ name, dataType: DataType.FLOAT, dims, raw: data instanceof Float32Array ? bytesOf(data) : data });
    return name;
  }

  private readonly named_ = new Set<string>();

  ints(name: string, values: number[]): string {
    if (this.named_.has(name)) return name; // shared constants (shapes, axes) are declared once
    this.named_.add(name);
    const data = BigInt64Array.from(values.map(BigInt));
    this.initializers.push({ name, dataType: DataType.INT64, dims: [values.length], raw: bytesOf(data) });
    return name;
  }

  /**
   * TopK along the last axis of [R, V], guarded by `If (R > 0)`: onnxruntime 1.30's TopK dies with SIGFPE on zero
   * rows of a large axis (the empty LM-head blocks past the last position). The empty branch slices [0, K] out of x.
   */
  topKRows(x: string, k: number): [string, string] {
    const rows = this.op('Gather', [this.op('Shape', [x]), this.ints('dim_rows', [0])], { axis: 0 }); // [1]
    const any = this.op('Greater', [rows, this.ints('zero', [0])]); // [1] bool
    const id = this.count++;
    const [vals, idx] = [`topk_values_${id}`, `topk_ids_${id}`];
    const out = (name: string, dataType: DataType): ValueSpec => ({ name, dataType, dims: ['R', k] });
    const top = { op: 'TopK', inputs: [x, this.ints(`top_k_${k}`, [k])], outputs: [`${vals}_t`, `${idx}_t`], name: `TopK_${id}`, attrs: { axis: -1, largest: 1, sorted: 1 } };
    const thenBranch = { name: `then_${id}`, nodes: [top], outputs: [out(`${vals}_t`, DataType.FLOAT), out(`${idx}_t`, DataType.INT64)] };
    const empty = { op: 'Slice', inputs: [x, this.ints('zero', [0]), this.ints(`top_k_${k}`, [k]), this.ints('axis_last', [-1])], outputs: [`${vals}_e`], name: `Slice_e_${id}` };
    const emptyIds = { op: 'Cast', inputs: [`${vals}_e`], outputs: [`${idx}_e`], name: `Cast_e_${id}`, attrs: { to: DataType.INT64 } };
    const elseBranch = { name: `else_${id}`, nodes: [empty, emptyIds], outputs: [out(`${vals}_e`, DataType.FLOAT), out(`${idx}_e`, DataType.INT64)] };
    this.named('If', [any], [vals, idx], { then_branch: { graph: thenBranch }, else_branch: { graph: elseBranch } });
    return [vals, idx];
  }

  private readonly scalars = new Map<string, number>();

  /** A float constant, declared once per name (ONNX requires unique initializer names; layers share them). */
  scalar(name: string, value: number): string {
    const known = this.scalars.get(name);
    if (known !== undefined) {
      if (!Object.is(known, Math.fround(value))) throw new Error(`graph: constant ${name} is ${known}, not ${value}`);
      return name;
    }
    this.scalars.set(name, Math.fround(value));
    this.initializers.push({ name, dataType: DataType.FLOAT, dims: [], raw: bytesOf(Float32Array.of(value)) });
    return name;
  }
}

export function bytesOf(a: Float32Array | BigInt64Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
