"""Benchmark: scanning the non-pickle formats (issue "every other model format").

Generates, once, under ``bench/.data/`` (real files written by the real libraries, real
bytes on disk: no sparse files, so "bytes read" means something):

- a multi-GB safetensors folder in the Hugging Face layout: 4 shards of real tensors,
  ``model.safetensors.index.json``, ``config.json``, tokenizer and generation configs;
- a ~500 MB ONNX model with its initializers inline, and the same model saved with
  external data (``onnx.save(..., save_as_external_data=True)``), scanned as a folder;
- a ~500 MB GGUF file written by ``gguf.GGUFWriter``, with a chat template.

Each is scanned in a fresh process after evicting it from the page cache (see
``_measure.py``); the row gives size, time, MB/s, files/s, peak RSS and bytes read.

Usage: ``python bench/bench_formats.py [--scale 1.0]`` (1.0: 4 GB of safetensors, 500 MB
ONNX and GGUF).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import DATA, MB, _build, row  # bench/ is not a package

#: Side of the square float32 matrices the generators write (64 MiB each).
SIDE = 4096


def _matrices(total_mb: int, seed: int) -> list[object]:
    """Float32 matrices of about `total_mb` MiB together, random (incompressible)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    per = SIDE * SIDE * 4 // MB
    count, rest = divmod(max(total_mb, 1), per)
    shapes = [(SIDE, SIDE)] * count + ([(rest * MB // 4 // SIDE, SIDE)] if rest else [])
    return [rng.standard_normal(shape, dtype=np.float32) for shape in shapes]


def make_safetensors_folder(path: Path, total_mb: int, shards: int = 4) -> None:
    """A sharded safetensors checkpoint as `save_pretrained` lays it out."""
    from safetensors.numpy import save_file

    path.mkdir(parents=True)
    weight_map: dict[str, str] = {}
    total = 0
    for shard in range(shards):
        name = f"model-{shard + 1:05d}-of-{shards:05d}.safetensors"
        tensors = {f"model.layers.{shard}.mlp.w{i}.weight": m
                   for i, m in enumerate(_matrices(total_mb // shards, seed=shard))}
        save_file(tensors, str(path / name), metadata={"format": "pt"})  # type: ignore[arg-type]
        weight_map.update(dict.fromkeys(tensors, name))
        total += sum(t.nbytes for t in tensors.values())
        del tensors
    (path / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    (path / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": SIDE,
        "num_hidden_layers": shards, "torch_dtype": "float32", "vocab_size": 32000}))
    (path / "generation_config.json").write_text(json.dumps({"bos_token_id": 1,
                                                             "eos_token_id": 2}))
    (path / "tokenizer_config.json").write_text(json.dumps({
        "bos_token": "<s>", "eos_token": "</s>", "model_max_length": 4096,
        "chat_template": CHAT_TEMPLATE}))


CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% endif %}"
    "{% endfor %}"
)


def _onnx_model(total_mb: int) -> object:
    """An MLP whose MatMul weights are ~`total_mb` MiB of initializers."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    weights = _matrices(total_mb, seed=100)
    nodes, inits = [], []
    current = "input"
    for i, w in enumerate(w for w in weights if w.shape == (SIDE, SIDE)):  # type: ignore[attr-defined]
        assert isinstance(w, np.ndarray)
        inits.append(numpy_helper.from_array(w, f"layer{i}.weight"))
        inits.append(numpy_helper.from_array(np.zeros(SIDE, np.float32), f"layer{i}.bias"))
        nodes += [
            helper.make_node("MatMul", [current, f"layer{i}.weight"], [f"mm{i}"], f"MatMul_{i}"),
            helper.make_node("Add", [f"mm{i}", f"layer{i}.bias"], [f"add{i}"], f"Add_{i}"),
            helper.make_node("Relu", [f"add{i}"], [f"h{i}"], f"Relu_{i}"),
        ]
        current = f"h{i}"
    nodes.append(helper.make_node("Softmax", [current], ["output"], "Softmax", axis=-1))
    graph = helper.make_graph(
        nodes, "bench_mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", SIDE])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", SIDE])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                             producer_name="modelward-bench")


def make_onnx_inline(path: Path, total_mb: int) -> None:
    import onnx

    onnx.save(_onnx_model(total_mb), str(path))  # type: ignore[arg-type]


def make_onnx_external(path: Path, total_mb: int) -> None:
    import onnx

    path.mkdir(parents=True)
    onnx.save(_onnx_model(total_mb), str(path / "model.onnx"),  # type: ignore[arg-type]
              save_as_external_data=True, all_tensors_to_one_file=True,
              location="model.onnx.data", size_threshold=1024)


def make_gguf(path: Path, total_mb: int) -> None:
    """A llama-style GGUF file with f32 tensors and the usual tokenizer metadata."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("modelward-bench")
    writer.add_context_length(4096)
    writer.add_embedding_length(SIDE)
    writer.add_block_count(8)
    writer.add_head_count(32)
    writer.add_tokenizer_model("llama")
    tokens = [f"tok{i}".encode() for i in range(32000)]
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * len(tokens))
    writer.add_token_types([1] * len(tokens))
    writer.add_chat_template(CHAT_TEMPLATE)
    for i, w in enumerate(_matrices(total_mb, seed=200)):
        assert isinstance(w, np.ndarray)
        writer.add_tensor(f"blk.{i}.ffn_up.weight", w)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0,
                        help="size factor (1.0: 4 GB safetensors, 500 MB ONNX and GGUF)")
    args = parser.parse_args()
    DATA.mkdir(exist_ok=True)
    st_mb = max(64, int(4096 * args.scale))
    mid_mb = max(64, int(500 * args.scale))
    print(f"== scan: other formats (scale {args.scale}) ==")
    print(f"{'case':<34} {'size':>12} {'time':>10} {'rate':>15} {'files':>15}")
    row("safetensors folder (4 shards)", _build(DATA / f"safetensors_{st_mb}",
                                                lambda p: make_safetensors_folder(p, st_mb)))
    row("ONNX, initializers inline", _build(DATA / f"onnx_inline_{mid_mb}.onnx",
                                            lambda p: make_onnx_inline(p, mid_mb)))
    row("ONNX + external data (folder)", _build(DATA / f"onnx_external_{mid_mb}",
                                                lambda p: make_onnx_external(p, mid_mb)))
    row("GGUF", _build(DATA / f"model_{mid_mb}.gguf", lambda p: make_gguf(p, mid_mb)))


if __name__ == "__main__":
    main()
