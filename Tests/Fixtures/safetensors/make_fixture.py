#!/usr/bin/env python3
"""Writes reference.safetensors with the Hugging Face `safetensors` package (numpy backend),
independent of our reader, plus reference.json with the values it holds in float64.

    pip install safetensors numpy && python3 make_fixture.py
"""
import json
import pathlib

import numpy as np
from safetensors.numpy import save_file

here = pathlib.Path(__file__).parent
rng = np.random.default_rng(7)
f32 = rng.standard_normal((3, 4)).astype(np.float32)
f16 = np.array([[0.0, -0.0, 1.0, -2.5], [65504.0, 6.1035156e-05, 5.9604645e-08, -1.0e-4]], dtype=np.float16)
# bfloat16: numpy has no dtype; store the upper halves of float32 values as uint16 and
# patch the header dtype, which is what bf16 is.
bf_src = np.array([1.0, -3.140625, 0.0078125, 256.0, -0.5, 100.5], dtype=np.float32)
bf_bits = (bf_src.view(np.uint32) >> 16).astype(np.uint16)
i64 = np.array([0, -1, 2**40, 7], dtype=np.int64)
f64 = np.array([1.0 / 3.0, -2.0, 1e-300], dtype=np.float64)

tensors = {"w.f32": f32, "h.f16": f16, "b.bf16": bf_bits.reshape(2, 3), "ids.i64": i64, "d.f64": f64,
           "empty": np.zeros((0, 5), dtype=np.float32)}
path = here / "reference.safetensors"
save_file(tensors, str(path), metadata={"format": "pt", "encoder.gram.num_rows": "123"})

# Patch U16 → BF16 in the header ("BF16" is one byte longer, so rewrite the length prefix).
raw = path.read_bytes()
n = int.from_bytes(raw[:8], "little")
header = raw[8:8 + n].decode()
assert header.count('"U16"') == 1
new_header = header.replace('"U16"', '"BF16"').encode()
path.write_bytes(len(new_header).to_bytes(8, "little") + new_header + raw[8 + n:])

values = {
    "w.f32": {"shape": [3, 4], "values": f32.astype(np.float64).ravel().tolist()},
    "h.f16": {"shape": [2, 4], "values": f16.astype(np.float64).ravel().tolist()},
    "b.bf16": {"shape": [2, 3], "values": bf_src.astype(np.float64).tolist()},
    "ids.i64": {"shape": [4], "values": i64.tolist()},
    "d.f64": {"shape": [3], "values": f64.tolist()},
    "empty": {"shape": [0, 5], "values": []},
}
(here / "reference.json").write_text(json.dumps({"tensors": values, "metadata": {"format": "pt", "encoder.gram.num_rows": "123"}}, indent=1))
print("wrote", path, path.stat().st_size, "bytes")
