/**
 * A minimal protobuf writer for the parts of onnx.proto that our graph builder needs (ModelProto, GraphProto,
 * NodeProto, TensorProto, ValueInfoProto, AttributeProto). Field numbers follow onnx/onnx.proto (IR version 8).
 *
 * Messages are built as trees of chunks so that large tensors (hundreds of MB of weights) are referenced, not
 * copied, until `encodeModel` writes the one final buffer.
 */

/** A message under construction: a list of byte chunks and their total length. */
/** Bytes written later, straight into the final buffer (a checkpoint tensor read from its file). */
export interface DeferredBytes {
  byteLength: number;
  write(into: Uint8Array): Promise<void>;
  /** Bytes [from, from + into.length), when the source can give a part (a file writer then streams them). */
  read?(into: Uint8Array, from: number): Promise<void>;
}

type Part = Uint8Array | DeferredBytes;

class Msg {
  readonly parts: Part[] = [];
  length = 0;

  private push(bytes: Part): void {
    this.parts.push(bytes);
    this.length += bytes.byteLength;
  }

  private varint(value: number | bigint): void {
    let v = BigInt.asUintN(64, BigInt(value));
    const out: number[] = [];
    while (v >= 0x80n) {
      out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(Number(v));
    this.push(Uint8Array.from(out));
  }

  private key(field: number, wireType: number): void {
    this.varint((field << 3) | wireType);
  }

  int(field: number, value: number | bigint): this {
    this.key(field, 0);
    this.varint(value);
    return this;
  }

  float(field: number, value: number): this {
    this.key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.push(b);
    return this;
  }

  bytes(field: number, value: Part): this {
    this.key(field, 2);
    this.varint(value.byteLength);
    this.push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  msg(field: number, m: Msg): this {
    this.key(field, 2);
    this.varint(m.length);
    for (const p of m.parts) this.push(p);
    return this;
  }

  /** Packed repeated int64. */
  packedInts(field: number, values: readonly (number | bigint)[]): this {
    const inner = new Msg();
    for (const v of values) inner.varint(v);
    return this.msg(field, inner);
  }
}

export enum DataType {
  FLOAT = 1,
  INT32 = 6,
  INT64 = 7,
  BOOL = 9,
  FLOAT16 = 10,
}

export type AttrValue = number | string | number[] | { float: number } | { graph: SubgraphSpec };

/** A graph held by a node attribute (the branches of `If`): it reads outer values by name and has no inputs. */
export interface SubgraphSpec {
  name: string;
  nodes: NodeSpec[];
  outputs: ValueSpec[];
}

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  name: string;
  attrs?: Record<string, AttrValue>;
  domain?: string;
}

export interface TensorSpec {
  name: string;
  dataType: DataType;
  dims: readonly number[];
  /** Little-endian raw bytes of the tensor (a view onto the caller's typed array, or bytes written later)... */
  raw?: Part;
  /** ...or where they lie in an external file, relative to the model file's folder (ONNX external data). */
  external?: { location: string; offset: number; length: number };
}

/** A dimension: a fixed size or a symbolic name (`'T'`). */
export type Dim = number | string;

export interface ValueSpec {
  name: string;
  dataType: DataType;
  dims: readonly Dim[];
}

export interface ModelSpec {
  nodes: NodeSpec[];
  initializers: TensorSpec[];
  inputs: ValueSpec[];
  outputs: ValueSpec[];
  opset: number;
  name: string;
}

function attribute(name: string, value: AttrValue): Msg {
  const a = new Msg().string(1, name);
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error(`attribute ${name}: use {float: x} for floats`);
    return a.int(3, value).int(20, 2); // i, type INT
  }
  if (typeof value === 'string') return a.string(4, value).int(20, 3); // s, type STRING
  if (Array.isArray(value)) return a.packedInts(8, value).int(20, 7); // ints, type INTS
  if ('graph' in value) return a.msg(6, graphMsg({ ...value.graph, initializers: [], inputs: [] })).int(20, 5); // g, type GRAPH
  return a.float(2, value.float).int(20, 1); // f, type FLOAT
}

function node(spec: NodeSpec): Msg {
  const m = new Msg();
  for (const i of spec.inputs) m.string(1, i);
  for (const o of spec.outputs) m.string(2, o);
  m.string(3, spec.name).string(4, spec.op);
  for (const [k, v] of Object.entries(spec.attrs ?? {})) m.msg(5, attribute(k, v));
  if (spec.domain) m.string(7, spec.domain);
  return m;
}

function tensor(spec: TensorSpec): Msg {
  const m = new Msg();
  if (spec.dims.length) m.packedInts(1, spec.dims);
  m.int(2, spec.dataType).string(8, spec.name);
  if (spec.raw) return m.bytes(9, spec.raw);
  if (!spec.external) throw new Error(`tensor ${spec.name}: give raw bytes or an external location`);
  const entry = (key: string, value: string) => new Msg().string(1, key).string(2, value);
  const { location, offset, length } = spec.external;
  return m
    .msg(13, entry('location', location))
    .msg(13, entry('offset', String(offset)))
    .msg(13, entry('length', String(length)))
    .int(14, 1); // data_location: EXTERNAL
}

function valueInfo(spec: ValueSpec): Msg {
  const shape = new Msg();
  for (const d of spec.dims) shape.msg(1, typeof d === 'number' ? new Msg().int(1, d) : new Msg().string(2, d));
  const tensorType = new Msg().int(1, spec.dataType).msg(2, shape);
  const type = new Msg().msg(1, tensorType);
  return new Msg().string(1, spec.name).msg(2, type);
}

function graphMsg(spec: Omit<ModelSpec, 'opset'>): Msg {
  const graph = new Msg();
  for (const n of spec.nodes) graph.msg(1, node(n));
  graph.string(2, spec.name);
  for (const t of spec.initializers) graph.msg(5, tensor(t));
  for (const v of spec.inputs) graph.msg(11, valueInfo(v));
  for (const v of spec.outputs) graph.msg(12, valueInfo(v));
  return graph;
}

/** Encodes a whole model into one buffer (the only copy of the weights made here). */
export async function encodeModel(spec: ModelSpec): Promise<Uint8Array> {
  const graph = graphMsg(spec);

  const model = new Msg()
    .int(1, 8) // ir_version
    .string(2, 'headlight')
    .msg(7, graph)
    .msg(8, new Msg().string(1, '').int(2, spec.opset));

  const out = new Uint8Array(model.length);
  let at = 0;
  for (const p of model.parts) {
    if (p instanceof Uint8Array) out.set(p, at);
    else await p.write(out.subarray(at, at + p.byteLength));
    at += p.byteLength;
  }
  return out;
}
