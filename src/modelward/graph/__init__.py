"""Model-graph analysis shared by the ONNX scanner and the ``diff`` subcommand.

- `ir`: a bounded, zero-copy parser of ONNX protobuf bytes into a small graph IR
  (nodes, subgraphs, local functions, tensor metadata); no ``onnx`` import.
- `model`: the IR's data classes (`ir` re-exports them).
- `dataflow`: one flat dataflow graph per model, subgraphs and functions inlined.
- `backdoor`: input-triggered substitutions of the computed result (graph backdoors).
- `dependence`: per-value dependency facts (input data, discretisation, region read,
  main computation) that `backdoor` reasons with.
"""

from __future__ import annotations
