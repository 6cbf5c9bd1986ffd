"""Static reading of TorchScript source (``code/`` in TorchScript archives).

``torch.jit.load`` compiles this Python-syntax source and runs it: ``__setstate__``
methods while the archive loads, ``forward`` and friends at inference. TorchScript has no
``os`` or ``subprocess``, but it reaches every registered operator through
``torch.ops.<namespace>.<op>`` (custom operators are native code nobody reviewed) and a
few built-in operators read or write files. This module parses the source with ``ast``
(parsing never executes) and lists those uses; anything it cannot parse is reported, not
skipped.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Final

__all__ = ["CodeUse", "read_code"]

#: Operator namespaces shipped with PyTorch itself.
STANDARD_NAMESPACES: Final = frozenset(
    {
        "aten",
        "prim",
        "quantized",
        "_quantized",
        "profiler",
        "_caffe2",
        "quantized_decomposed",
        "_prims",
        "prims",
        "torchvision",
        "image",
        "rngprims",
        "higher_order",
        "cuda",
        "inductor",
        "mkldnn",
        "mkl",
        "_c10d_functional",
        "c10d_functional",
        "_dtensor",
        "onednn",
        "xnnpack",
    }
)

#: Operators (any namespace) and builtins that touch files, processes or code. (TorchScript's
#: ``getattr`` takes only a string literal and reads a module attribute: the compiler emits
#: ``getattr(self, "0")`` for every Sequential, so it is not reflection and not listed.)
DANGEROUS_NAMES: Final = frozenset(
    {
        "from_file",
        "save",
        "load",
        "_load_for_lite_interpreter",
        "load_library",
        "system",
        "popen",
        "exec",
        "eval",
        "compile",
        "open",
        "__import__",
        "import_module",
        "_jit_pass",
        "_run_emit_module_hook",
    }
)

MAX_SOURCE: Final = 8 << 20


@dataclass(frozen=True, slots=True)
class CodeUse:
    """One notable construct in TorchScript source.

    Attributes:
        kind: ``custom-op``, ``dangerous-call``, ``load-hook`` or ``unparsed``.
        text: the dotted name or method (evidence).
        line: 1-based line number, when known.
    """

    kind: str
    text: str
    line: int | None = None


def _dotted(node: ast.expr) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _registry_use(parts: list[str]) -> tuple[str, str, str, str] | None:
    """An operator or custom class reached through PyTorch's registries, else None.

    ``torch.jit.save`` prints operator calls as ``ops.<namespace>.<op>`` (no ``torch.``
    prefix) and custom classes as ``__torch__.torch.classes.<namespace>.<Class>``; both
    are native code registered by whatever library defines the namespace.

    Returns:
        (``ops`` or ``classes``, namespace, operator or class, evidence text).
    """
    for i, part in enumerate(parts[:-2]):
        if part == "ops" and (i == 0 or parts[i - 1] == "torch"):
            kind = "ops"
        elif part == "classes" and i > 0 and parts[i - 1] == "torch":
            kind = "classes"
        else:
            continue
        start = i - 1 if i > 0 and parts[i - 1] == "torch" else i
        text = ".".join(parts[start : i + 3])
        return kind, parts[i + 1], parts[i + 2], text
    return None


def read_code(source: bytes) -> list[CodeUse]:
    """Notable constructs in one TorchScript source file.

    Returns:
        Uses in source order; a single ``unparsed`` use when the source cannot be parsed.
    """
    if len(source) > MAX_SOURCE:
        return [CodeUse("unparsed", f"source of {len(source)} bytes exceeds {MAX_SOURCE}")]
    try:
        tree = ast.parse(source.decode("utf-8"), mode="exec")
    except (SyntaxError, UnicodeDecodeError, ValueError, MemoryError, RecursionError) as err:
        return [CodeUse("unparsed", f"{type(err).__name__}: {err}"[:200])]
    uses: list[CodeUse] = []
    try:
        nodes = list(ast.walk(tree))
    except RecursionError:
        return [CodeUse("unparsed", "source nests too deeply to analyse")]
    for node in nodes:
        if (
            isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.name == "__setstate__"
        ):
            uses.append(CodeUse("load-hook", node.name, node.lineno))
        elif isinstance(node, ast.Attribute):
            name = _dotted(node)
            if name is None:
                continue
            parts = name.split(".")
            registry = _registry_use(parts)
            if registry is not None:
                kind, namespace, member, text = registry
                if namespace not in STANDARD_NAMESPACES:
                    uses.append(CodeUse("custom-op", text, node.lineno))
                elif kind == "ops" and member in DANGEROUS_NAMES:
                    uses.append(CodeUse("dangerous-call", text, node.lineno))
            elif parts[-1] in DANGEROUS_NAMES and isinstance(getattr(node, "ctx", None), ast.Load):
                uses.append(CodeUse("dangerous-call", name, node.lineno))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in DANGEROUS_NAMES:
                uses.append(CodeUse("dangerous-call", node.func.id, node.lineno))
    unique = {(u.kind, u.text): u for u in reversed(uses)}
    return sorted(unique.values(), key=lambda u: (u.line or 0, u.kind, u.text))
