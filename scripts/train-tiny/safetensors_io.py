"""Minimal safetensors writer and reader (numpy only).

Format: 8-byte little-endian header length N, N bytes of JSON header {name: {dtype, shape, data_offsets: [begin, end]}},
then the raw little-endian tensor bytes; offsets are relative to the end of the header.
"""
import json
import struct

import numpy as np

_DTYPES = {'F16': np.float16, 'F32': np.float32}
_NAMES = {np.dtype(np.float16): 'F16', np.dtype(np.float32): 'F32'}


def save(path, tensors, metadata=None):
    """Writes {name: np.ndarray} in sorted name order, header padded with spaces to a multiple of 8 bytes."""
    header = {}
    if metadata:
        header['__metadata__'] = {k: str(v) for k, v in metadata.items()}
    offset = 0
    names = sorted(tensors)
    for name in names:
        arr = np.ascontiguousarray(tensors[name])
        if arr.dtype not in _NAMES:
            raise ValueError(f'{name}: dtype {arr.dtype} is not supported (use float16 or float32)')
        header[name] = {'dtype': _NAMES[arr.dtype], 'shape': list(arr.shape), 'data_offsets': [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    raw = json.dumps(header, separators=(',', ':')).encode('utf-8')
    raw += b' ' * (-len(raw) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(raw)))
        f.write(raw)
        for name in names:
            f.write(np.ascontiguousarray(tensors[name]).astype(np.dtype(tensors[name].dtype).newbyteorder('<')).tobytes())


def load(path):
    """Returns ({name: np.ndarray}, metadata)."""
    with open(path, 'rb') as f:
        data = f.read()
    (n,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8:8 + n])
    metadata = header.pop('__metadata__', {})
    body = memoryview(data)[8 + n:]
    out = {}
    for name, info in header.items():
        begin, end = info['data_offsets']
        dtype = np.dtype(_DTYPES[info['dtype']]).newbyteorder('<')
        arr = np.frombuffer(body[begin:end], dtype=dtype).reshape(info['shape'])
        out[name] = arr
    return out, metadata
