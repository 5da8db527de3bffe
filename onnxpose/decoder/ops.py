"""Small graph-building helpers on top of onnx-graphsurgeon.

Each helper adds exactly one named ONNX node through ``graph.layer`` and
returns its output tensor, so decoder code reads like the math it implements
and every intermediate tensor keeps a meaningful name (prefixed by the
builder's ``prefix``). Python numbers and numpy arrays passed as inputs become
named constants.

The builder is opset-aware: it builds for ``opset`` (the graph's, default
``onnxpose.spec.OPSET``), and every op whose schema changed between the
opsets onnxpose builds (``onnxpose.spec.OPSETS``) is emitted by one method
that writes that opset's form: ``reduce`` (ReduceMax/Min/Mean/Prod take
``axes`` as an input from opset 18, ReduceSum from 13), ``split`` (sizes as an
input, valid from 13 on; ``num_outputs`` is only an alternative at 18) and
``pad`` (pads and value as inputs, valid from 11 on; the optional ``axes``
input of 18 is not used). ``op`` refuses those op types, so no caller can
write one form by hand. Loop bodies and If branches are built by their own
``GraphBuilder`` (``LoopBody.b``, ``GraphBuilder.branch``) at the same opset;
graph-building functions always take the builder as their first argument.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from onnxpose.spec import OPSET

_NP_TO_ONNX = {
    np.dtype(np.float32): onnx.TensorProto.FLOAT,
    np.dtype(np.float64): onnx.TensorProto.DOUBLE,
    np.dtype(np.int64): onnx.TensorProto.INT64,
    np.dtype(np.int32): onnx.TensorProto.INT32,
    np.dtype(np.bool_): onnx.TensorProto.BOOL,
    np.dtype(np.uint8): onnx.TensorProto.UINT8,
    np.dtype(np.int8): onnx.TensorProto.INT8,
}


#: Reduce ops and the first opset where ``axes`` is an input instead of an attribute.
AXES_AS_INPUT_SINCE = {"ReduceSum": 13, "ReduceMax": 18, "ReduceMin": 18, "ReduceMean": 18,
                       "ReduceProd": 18}
#: Op types whose schema changed within the opsets onnxpose builds: only the builder's
#: own method for each may add them (``reduce``, ``split``, ``pad``).
VERSIONED_OPS = frozenset([*AXES_AS_INPUT_SINCE, "Split", "Pad", "Resize"])


def onnx_dtype(dtype) -> int:
    return _NP_TO_ONNX[np.dtype(dtype)]


class GraphBuilder:
    """Adds named nodes to ``graph``; tensor names are ``f"{prefix}{name}"``.

    ``opset``: the target opset (default: the graph's, else ``onnxpose.spec.OPSET``).
    """

    def __init__(self, graph: gs.Graph, prefix: str = "", opset: int | None = None):
        self.graph = graph
        self.prefix = prefix
        self.opset = int(opset or graph.opset or OPSET)
        self._const_count = 0

    def branch(self, name: str) -> "GraphBuilder":
        """A builder of a new subgraph (an ``If`` branch) at this builder's opset."""
        graph = gs.Graph(name=self.name(name), opset=self.opset)
        return GraphBuilder(graph, self.name(f"{name}/"), self.opset)

    # -- tensors -----------------------------------------------------------
    def name(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def const(self, value, name: str | None = None, dtype=None) -> gs.Constant:
        array = np.asarray(value, dtype=dtype)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        if name is None:
            self._const_count += 1
            name = f"const_{self._const_count}"
        return gs.Constant(self.name(name), np.ascontiguousarray(array))

    def _tensor(self, x):
        if isinstance(x, gs.Tensor):
            return x
        if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
            return self.const(np.int64(x))
        return self.const(x)

    # -- one node ----------------------------------------------------------
    def op(self, op_type: str, inputs, name: str, attrs: dict | None = None,
           num_outputs: int = 1, dtype=None, output_names=None):
        """Add one ``op_type`` node; returns its output (or list of outputs)."""
        if op_type in VERSIONED_OPS:
            raise ValueError(f"{op_type} changed between opsets: use the builder's own method")
        return self._node(op_type, inputs, name, attrs, num_outputs, dtype, output_names)

    def _node(self, op_type: str, inputs, name: str, attrs: dict | None = None,
              num_outputs: int = 1, dtype=None, output_names=None):
        names = output_names or ([name] if num_outputs == 1 else
                                 [f"{name}_{i}" for i in range(num_outputs)])
        outputs = [gs.Variable(self.name(n), dtype=dtype) for n in names]
        self.graph.layer(op=op_type, name=self.name(name) + "_node",
                         inputs=[self._tensor(x) if x is not None else gs.Variable.empty()
                                 for x in inputs],
                         outputs=outputs, attrs=attrs or {})
        return outputs[0] if num_outputs == 1 else outputs

    # -- named wrappers, one per op ------------------------------------------
    def add(self, a, b, name): return self.op("Add", [a, b], name)
    def sub(self, a, b, name): return self.op("Sub", [a, b], name)
    def mul(self, a, b, name): return self.op("Mul", [a, b], name)
    def div(self, a, b, name): return self.op("Div", [a, b], name)
    def mod(self, a, b, name): return self.op("Mod", [a, b], name)
    def neg(self, x, name): return self.op("Neg", [x], name)
    def absolute(self, x, name): return self.op("Abs", [x], name)
    def floor(self, x, name): return self.op("Floor", [x], name)
    def sigmoid(self, x, name): return self.op("Sigmoid", [x], name)
    def relu(self, x, name): return self.op("Relu", [x], name)
    def minimum(self, a, b, name): return self.op("Min", [a, b], name)
    def maximum(self, a, b, name): return self.op("Max", [a, b], name)
    def equal(self, a, b, name): return self.op("Equal", [a, b], name)
    def less(self, a, b, name): return self.op("Less", [a, b], name)
    def greater(self, a, b, name): return self.op("Greater", [a, b], name)
    def greater_or_equal(self, a, b, name): return self.op("GreaterOrEqual", [a, b], name)
    def logical_and(self, a, b, name): return self.op("And", [a, b], name)
    def where(self, cond, a, b, name): return self.op("Where", [cond, a, b], name)
    def identity(self, x, name): return self.op("Identity", [x], name)
    def shape(self, x, name): return self.op("Shape", [x], name)

    def clip(self, x, lo, hi, name):
        return self.op("Clip", [x, lo, hi], name)

    def cast(self, x, to, name):
        return self.op("Cast", [x], name, {"to": onnx_dtype(to)}, dtype=np.dtype(to))

    def transpose(self, x, perm, name):
        return self.op("Transpose", [x], name, {"perm": list(perm)})

    def reshape(self, x, shape, name, allowzero=False):
        """``allowzero``: a 0 in ``shape`` is a size 0, not "copy the input's" (opset 14+)."""
        if allowzero and self.opset < 14:
            raise ValueError("Reshape's allowzero needs opset 14")
        return self.op("Reshape", [x, np.asarray(shape, dtype=np.int64)
                                   if not isinstance(shape, gs.Tensor) else shape], name,
                       {"allowzero": 1} if allowzero else None)

    def concat(self, xs, axis, name):
        return self.op("Concat", list(xs), name, {"axis": axis})

    def split(self, x, sizes, axis, name):
        """Split ``x`` into pieces of ``sizes`` along ``axis`` (sizes as an input: every
        supported opset)."""
        return self._node("Split", [x, np.asarray(sizes, dtype=np.int64)], name,
                          {"axis": axis}, num_outputs=len(sizes))

    def slice(self, x, starts, ends, axes, name, steps=None):
        """``starts``, ``ends``: constants or int64 tensors (runtime bounds, clamped)."""
        bound = lambda v: v if isinstance(v, gs.Tensor) else np.asarray(v, np.int64)  # noqa: E731
        inputs = [x, bound(starts), bound(ends), np.asarray(axes, np.int64)]
        if steps is not None:
            inputs.append(np.asarray(steps, np.int64))
        return self.op("Slice", inputs, name)

    def unsqueeze(self, x, axes, name):
        return self.op("Unsqueeze", [x, np.asarray(axes, dtype=np.int64)], name)

    def squeeze(self, x, axes, name):
        return self.op("Squeeze", [x, np.asarray(axes, dtype=np.int64)], name)

    def gather(self, x, indices, axis, name):
        return self.op("Gather", [x, indices], name, {"axis": axis})

    def gather_elements(self, x, indices, axis, name):
        return self.op("GatherElements", [x, indices], name, {"axis": axis})

    def argmax(self, x, axis, name, keepdims=True):
        # select_last_index=0: on ties the first index wins, as numpy.argmax.
        return self.op("ArgMax", [x], name, {"axis": axis, "keepdims": int(keepdims),
                                            "select_last_index": 0}, dtype=np.int64)

    def topk(self, x, k, axis, name, largest=True, sorted=True):
        k = k if isinstance(k, gs.Tensor) else np.asarray([k], dtype=np.int64)
        values, indices = self.op("TopK", [x, k], name,
                                  {"axis": axis, "largest": int(largest), "sorted": int(sorted)},
                                  num_outputs=2, output_names=[f"{name}_values", f"{name}_indices"])
        return values, indices

    def reduce(self, op_type, x, axes, name, keepdims=False):
        """``op_type`` (ReduceSum/Max/Min/Mean/Prod) over ``axes``, in the target opset's
        form: ``axes`` an input from ``AXES_AS_INPUT_SINCE[op_type]`` on, else an attribute."""
        axes = np.asarray(axes, dtype=np.int64)
        if self.opset >= AXES_AS_INPUT_SINCE[op_type]:
            return self._node(op_type, [x, axes], name, {"keepdims": int(keepdims)})
        return self._node(op_type, [x], name, {"axes": axes.tolist(), "keepdims": int(keepdims)})

    def reduce_mean(self, x, axes, name, keepdims=False):
        return self.reduce("ReduceMean", x, axes, name, keepdims)

    def reduce_sum(self, x, axes, name, keepdims=False):
        return self.reduce("ReduceSum", x, axes, name, keepdims)

    def reduce_max(self, x, axes, name, keepdims=False):
        return self.reduce("ReduceMax", x, axes, name, keepdims)

    def max_pool(self, x, kernel, name, pads=None):
        return self.op("MaxPool", [x], name, {"kernel_shape": list(kernel),
                                              "pads": list(pads or [0] * (2 * len(kernel))),
                                              "strides": [1] * len(kernel)})

    def dequantize(self, x, scale, zero_point, name):
        return self.op("DequantizeLinear", [x, scale, zero_point], name, dtype=np.float32)

    # -- more one-node helpers (multi-pose decoder) ----------------------------
    def scalar(self, value, dtype, name: str | None = None) -> gs.Constant:
        """A 0-d constant (``const`` stores 0-d arrays as shape [1])."""
        if name is None:
            self._const_count += 1
            name = f"const_{self._const_count}"
        return gs.Constant(self.name(name), np.array(value, dtype=dtype).reshape(()))

    def matmul(self, a, b, name): return self.op("MatMul", [a, b], name)

    def matmul_integer(self, a, b, name):
        """uint8/int8 a @ b with int32 sums (``MatMulInteger``, no zero points)."""
        return self.op("MatMulInteger", [a, b], name, dtype=np.int32)

    def gemm(self, a, b, c, name): return self.op("Gemm", [a, b, c], name)  # a @ b + c (2-D)
    def less_or_equal(self, a, b, name): return self.op("LessOrEqual", [a, b], name)

    def cumsum(self, x, axis, name):
        return self.op("CumSum", [x, np.asarray(axis, dtype=np.int64)], name)

    def pad(self, x, pads, name, value=0.0, mode=None):
        """Pad (pads [2 * rank] int64, constant or tensor; ``value`` None: no value input,
        i.e. 0; ``mode``: "constant" when None, or "edge"/"reflect")."""
        pads = pads if isinstance(pads, gs.Tensor) else np.asarray(pads, dtype=np.int64)
        inputs = [x, pads] + ([] if value is None else [np.asarray(value, dtype=np.float32)])
        return self._node("Pad", inputs, name, None if mode is None else {"mode": mode})

    def range_(self, start, limit, delta, name):
        return self.op("Range", [start, limit, delta], name)

    def loop(self, body: gs.Graph, trip_count, cond, loop_vars, name):
        """ONNX Loop over ``body`` (inputs: iteration, condition, *loop_vars;
        outputs: condition, *loop_vars); returns the final loop variables."""
        outputs = self.op("Loop", [trip_count, cond, *loop_vars], name, {"body": body},
                          num_outputs=len(loop_vars))
        return outputs if len(loop_vars) > 1 else [outputs]


class LoopBody:
    """The body graph of an ONNX ``Loop``: inputs (iteration ``step``, ``cond``,
    *``carried``), outputs (cond, *carried, *scanned). ``b`` adds its nodes; tensors of
    the outer graph can be read directly."""

    def __init__(self, gb: GraphBuilder, name: str, carried: list):
        self.graph = gs.Graph(name=gb.name(name), opset=gb.opset)
        self.b = GraphBuilder(self.graph, gb.name(f"{name}/"), gb.opset)
        self.step = gs.Variable(self.b.name("index"), dtype=np.int64, shape=[])
        self.cond = gs.Variable(self.b.name("cond_in"), dtype=np.bool_, shape=[])
        self.carried = [gs.Variable(self.b.name(f"{n}_in"), dtype=d) for n, d in carried]
        self.graph.inputs = [self.step, self.cond, *self.carried]

    def finish(self, outputs: list, dtypes: list, cond=None) -> gs.Graph:
        """The body with ``outputs`` (carried, then scanned); ``cond`` None passes the
        condition through unchanged, as an ``Identity`` node: OpenVINO refuses a body whose
        condition output is its condition input (it counts the inputs wrongly)."""
        for tensor, dtype in zip(outputs, dtypes):
            tensor.dtype = dtype
        if cond is not None:
            cond.dtype, cond.shape = np.bool_, []
        if cond is None:
            cond = self.b.identity(self.cond, "cond_out")
            cond.dtype, cond.shape = np.bool_, []
        self.graph.outputs = [cond, *outputs]
        return self.graph
