"""Static analysis of Python source shipped with models (``trust_remote_code`` files).

Hugging Face ``auto_map`` entries make ``from_pretrained(..., trust_remote_code=True)``
import Python files from the model repository; whatever runs at import, or in the
methods the loader calls, runs with the user's rights. This module parses the source
with `ast` (never imports or executes it) and reports what the code *can* do, and when:

- **import time**: module-level statements, class bodies, decorators, default values,
  base classes, and module-local functions or classes that those call (transitively);
- **load time**: methods loaders call while building the model (``__init__``,
  ``post_init``, ``_init_weights``...), reported with import time since
  ``from_pretrained`` runs them;
- **call time**: other function bodies, reported with the function's name.

Capabilities are resolved through import aliases, ``from x import y as z``,
``__import__('os')``, ``importlib.import_module('os')``, ``getattr(mod, 'name')`` and
``sys.modules['os']``, so renamed imports do not hide them. Strings passed to
``exec``/``eval`` are analysed as code in turn.
"""

from __future__ import annotations

import ast
import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

__all__ = ["Capability", "ModuleReport", "PyEvent", "analyze_source"]

MAX_EXEC_DEPTH: Final = 3
LOAD_TIME_METHODS: Final = frozenset({
    "__init__", "__new__", "__post_init__", "__init_subclass__", "__set_name__",
    "__class_getitem__", "post_init", "_init_weights", "init_weights", "_post_init",
})


class Capability(enum.Enum):
    """What a call gives the code."""

    PROCESS = "runs processes"
    CODE = "executes dynamic code"
    NATIVE = "loads native code"
    NETWORK = "opens network connections"
    DESERIALIZE = "deserializes code-carrying data"
    DECODE = "decodes hidden data"
    ENV = "reads the environment"
    FILE_WRITE = "writes or deletes files outside the model folder"
    OBFUSCATION = "hides what it calls"


_PREFIXES: Final[tuple[tuple[str, Capability], ...]] = (
    ("subprocess.", Capability.PROCESS), ("os.system", Capability.PROCESS),
    ("os.popen", Capability.PROCESS), ("os.exec", Capability.PROCESS),
    ("os.spawn", Capability.PROCESS), ("os.fork", Capability.PROCESS),
    ("os.posix_spawn", Capability.PROCESS), ("os.startfile", Capability.PROCESS),
    ("pty.spawn", Capability.PROCESS), ("commands.", Capability.PROCESS),
    ("platform.popen", Capability.PROCESS), ("asyncio.create_subprocess", Capability.PROCESS),
    ("builtins.exec", Capability.CODE), ("builtins.eval", Capability.CODE),
    ("builtins.compile", Capability.CODE), ("builtins.__import__", Capability.CODE),
    ("importlib.import_module", Capability.CODE), ("importlib.__import__", Capability.CODE),
    ("importlib.util.spec_from_file_location", Capability.CODE),
    ("importlib.util.module_from_spec", Capability.CODE),
    ("importlib.machinery.SourceFileLoader", Capability.CODE),
    ("runpy.", Capability.CODE), ("imp.load_", Capability.CODE),
    ("types.CodeType", Capability.CODE),
    ("types.FunctionType", Capability.CODE), ("code.interact", Capability.CODE),
    ("code.InteractiveInterpreter", Capability.CODE),
    ("ctypes.", Capability.NATIVE), ("_ctypes.", Capability.NATIVE), ("cffi.", Capability.NATIVE),
    ("socket.", Capability.NETWORK), ("urllib.request.", Capability.NETWORK),
    ("urllib.urlopen", Capability.NETWORK), ("urllib2.", Capability.NETWORK),
    ("urllib3.", Capability.NETWORK), ("requests.", Capability.NETWORK),
    ("httpx.", Capability.NETWORK), ("http.client.", Capability.NETWORK),
    ("ftplib.", Capability.NETWORK), ("smtplib.", Capability.NETWORK),
    ("telnetlib.", Capability.NETWORK), ("aiohttp.", Capability.NETWORK),
    ("paramiko.", Capability.NETWORK), ("websocket.", Capability.NETWORK),
    ("websockets.", Capability.NETWORK), ("xmlrpc.client.", Capability.NETWORK),
    ("pickle.load", Capability.DESERIALIZE), ("pickle.Unpickler", Capability.DESERIALIZE),
    ("_pickle.", Capability.DESERIALIZE), ("cPickle.", Capability.DESERIALIZE),
    ("marshal.load", Capability.DESERIALIZE), ("dill.load", Capability.DESERIALIZE),
    ("cloudpickle.load", Capability.DESERIALIZE), ("shelve.open", Capability.DESERIALIZE),
    ("yaml.unsafe_load", Capability.DESERIALIZE), ("jsonpickle.decode", Capability.DESERIALIZE),
    ("base64.", Capability.DECODE), ("codecs.decode", Capability.DECODE),
    ("binascii.a2b", Capability.DECODE), ("binascii.unhexlify", Capability.DECODE),
    ("bytes.fromhex", Capability.DECODE), ("zlib.decompress", Capability.DECODE),
    ("gzip.decompress", Capability.DECODE), ("bz2.decompress", Capability.DECODE),
    ("lzma.decompress", Capability.DECODE),
    ("os.environ", Capability.ENV), ("os.getenv", Capability.ENV),
    ("builtins.open", Capability.FILE_WRITE), ("os.remove", Capability.FILE_WRITE),
    ("os.unlink", Capability.FILE_WRITE), ("os.rmdir", Capability.FILE_WRITE),
    ("os.chmod", Capability.FILE_WRITE), ("os.rename", Capability.FILE_WRITE),
    ("os.replace", Capability.FILE_WRITE), ("shutil.rmtree", Capability.FILE_WRITE),
    ("shutil.move", Capability.FILE_WRITE), ("shutil.copy", Capability.FILE_WRITE),
)
_DECODE_SAFE: Final = frozenset({"base64.b64encode", "base64.urlsafe_b64encode",
                                 "base64.encodebytes", "base64.b32encode"})
CAPABILITY_MODULES: Final[dict[str, Capability]] = {
    "subprocess": Capability.PROCESS, "pty": Capability.PROCESS, "commands": Capability.PROCESS,
    "ctypes": Capability.NATIVE, "cffi": Capability.NATIVE, "socket": Capability.NETWORK,
    "urllib.request": Capability.NETWORK, "urllib2": Capability.NETWORK,
    "requests": Capability.NETWORK, "httpx": Capability.NETWORK,
    "http.client": Capability.NETWORK, "ftplib": Capability.NETWORK,
    "smtplib": Capability.NETWORK, "telnetlib": Capability.NETWORK,
    "paramiko": Capability.NETWORK, "aiohttp": Capability.NETWORK,
    "pickle": Capability.DESERIALIZE, "marshal": Capability.DESERIALIZE,
    "dill": Capability.DESERIALIZE, "cloudpickle": Capability.DESERIALIZE,
    "runpy": Capability.CODE,
}
_BUILTIN_NAMES: Final = frozenset({
    "exec", "eval", "compile", "__import__", "open", "getattr", "globals", "vars", "locals",
    "breakpoint",
})
_BLOB: Final = re.compile(r"^[A-Za-z0-9+/=_\-\s]{256,}$|^[0-9a-fA-F\s]{256,}$")
_SECRET_NAME: Final = re.compile(r"TOKEN|KEY|SECRET|PASS|CRED|AWS|HF_|OPENAI|AUTH", re.I)
_ROT13: Final = frozenset({"rot13", "rot_13", "rot-13"})


@dataclass(frozen=True, slots=True)
class PyEvent:
    """A capability used somewhere in the module.

    Attributes:
        capability: what the call gives the code.
        name: resolved dotted name (``subprocess.run``) or a description.
        scope: ``<module>`` for import time, else the function's qualified name.
        import_time: runs when the module is imported or the model is loaded.
        line: 1-based line number.
        evidence: the source fragment.
        payload: evidently a payload (exec of decoded data, exec of downloaded code).
        high: obfuscation of the kind only payloads use (builtins lookups).
    """

    capability: Capability
    name: str
    scope: str
    import_time: bool
    line: int
    evidence: str
    payload: bool = False
    high: bool = False


@dataclass(slots=True)
class ModuleReport:
    """Everything found in one source file."""

    events: list[PyEvent] = field(default_factory=list)
    imports: list[tuple[str, Capability, int]] = field(default_factory=list)


def analyze_source(source: str, filename: str = "<model code>") -> ModuleReport:
    """Analyse Python source statically.

    Raises:
        SyntaxError: the source does not parse.
        RecursionError: the tree is too deep to walk.
    """
    tree = ast.parse(source, filename=filename)
    analyzer = _Analyzer()
    analyzer.run(tree)
    return analyzer.report


def _dotted_prefix(name: str) -> Capability | None:
    if name in _DECODE_SAFE:
        return None
    for prefix, cap in _PREFIXES:
        if name == prefix or name.startswith(prefix) or name == prefix.rstrip("."):
            return cap
    return None


def _snippet(node: ast.AST) -> str:
    try:
        text = ast.unparse(node)
    except (ValueError, TypeError, RecursionError):
        return type(node).__name__
    return text if len(text) <= 200 else text[:197] + "..."


class _Analyzer:
    """One pass collecting definitions and aliases, one pass collecting events."""

    def __init__(self, depth: int = 0) -> None:
        self.depth = depth
        self.aliases: dict[str, str] = {}
        self.star_modules: list[str] = []
        self.functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        self.classes: dict[str, ast.ClassDef] = {}
        self.report = ModuleReport()

    # -- pass 1: names -------------------------------------------------------------------
    def run(self, tree: ast.Module) -> None:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    local = alias.asname or alias.name.split(".")[0]
                    self.aliases[local] = alias.name if alias.asname else local
                    self._note_import(alias.name, node.lineno)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    if alias.name == "*":
                        self.star_modules.append(node.module)
                    else:
                        self.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                    self._note_import(f"{node.module}.{alias.name}", node.lineno)
        # Plain assignments of a resolvable capability (``imp = __import__``,
        # ``e = getattr(builtins, "ex" + "ec")``) alias it; two rounds settle chains.
        assigns = [n for n in ast.walk(tree) if isinstance(n, ast.Assign)
                   and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)]
        for _ in range(2):
            for node in assigns:
                target = node.targets[0]
                assert isinstance(target, ast.Name)
                if target.id in self.aliases:
                    continue
                resolved = self.resolve(node.value)
                if resolved is not None and (resolved.startswith("builtins")
                                             or _dotted_prefix(resolved) is not None):
                    self.aliases[target.id] = resolved
        for stmt in tree.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.functions[stmt.name] = stmt
            elif isinstance(stmt, ast.ClassDef):
                self.classes[stmt.name] = stmt
        self._module(tree)

    def _note_import(self, name: str, line: int) -> None:
        for module, cap in CAPABILITY_MODULES.items():
            if name == module or name.startswith(module + "."):
                self.report.imports.append((name, cap, line))
                return

    # -- pass 2: scopes ------------------------------------------------------------------
    def _module(self, tree: ast.Module) -> None:
        called: set[str] = set()
        for stmt in tree.body:
            if _is_main_guard(stmt):
                assert isinstance(stmt, ast.If)
                for inner in stmt.body:
                    self._walk(inner, "__main__ block", import_time=False, called=set())
                continue
            self._walk(stmt, "<module>", import_time=True, called=called)
        # Module-local functions and classes used at import time run at import time.
        done: set[str] = set()
        walked: set[str] = set()
        while called - done:
            name = sorted(called - done)[0]
            done.add(name)
            for body, scope in self._targets(name):
                walked.add(scope)
                for inner in body:
                    self._walk(inner, scope, import_time=True, called=called)
        for cls in self.classes.values():
            for item in cls.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    qual = f"{cls.name}.{item.name}"
                    if qual in walked:
                        continue
                    load = item.name in LOAD_TIME_METHODS
                    for inner in item.body:
                        self._walk(inner, qual, import_time=load, called=set())
        for fname, func in self.functions.items():
            if fname not in walked:
                for inner in func.body:
                    self._walk(inner, fname, import_time=False, called=set())

    def _targets(self, name: str) -> Iterator[tuple[list[ast.stmt], str]]:
        if name in self.functions:
            yield self.functions[name].body, name
        elif name in self.classes:
            for item in self.classes[name].body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name in (
                        "__init__", "__new__", "__call__"):
                    yield item.body, f"{name}.{item.name}"

    def _walk(self, root: ast.AST, scope: str, *, import_time: bool, called: set[str]) -> None:
        """Visit `root` in `scope`; nested function bodies become their own call-time scope."""
        top_functions = {id(f) for f in self.functions.values()}
        top_classes = {id(c) for c in self.classes.values()}
        stack: list[tuple[ast.AST, str, bool]] = [(root, scope, import_time)]
        while stack:
            node, where, now = stack.pop()
            if isinstance(node, ast.Lambda):
                stack.extend((d, where, now) for d in node.args.defaults)
                stack.append((node.body, f"{where}.<lambda>", False))
                continue
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                # Decorators and defaults run where the def statement runs.
                heads = [*node.decorator_list, *node.args.defaults,
                         *(d for d in node.args.kw_defaults if d is not None)]
                for dec in node.decorator_list:
                    self._note_local_call(dec, called, now)
                stack.extend((h, where, now) for h in heads)
                if id(node) not in top_functions:
                    inner = node.name if where == "<module>" else f"{where}.{node.name}"
                    stack.extend((s, inner, False) for s in node.body)
                continue
            if isinstance(node, ast.ClassDef):
                heads = [*node.bases, *(k.value for k in node.keywords), *node.decorator_list]
                for head in heads:
                    self._note_local_call(head, called, now)
                stack.extend((h, where, now) for h in heads)
                qual = node.name if where == "<module>" else f"{where}.{node.name}"
                for item in node.body:
                    is_def = isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
                    if is_def and id(node) in top_classes:
                        # Bodies of top-level methods are their own scopes (see _module).
                        assert isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
                        stack.extend((h, where, now) for h in [
                            *item.decorator_list, *item.args.defaults])
                        continue
                    stack.append((item, qual if is_def else where, now))
                continue
            if isinstance(node, ast.Call):
                self._call(node, where, now, called)
            elif isinstance(node, (ast.Attribute, ast.Subscript)):
                self._access(node, where, now)
            elif isinstance(node, ast.Constant):
                self._constant(node, where, now)
            stack.extend((child, where, now) for child in ast.iter_child_nodes(node))

    def _note_local_call(self, node: ast.AST, called: set[str], now: bool) -> None:
        if not now:
            return
        target = node.func if isinstance(node, ast.Call) else node
        if isinstance(target, ast.Name) and (target.id in self.functions or
                                             target.id in self.classes):
            called.add(target.id)

    # -- resolution ----------------------------------------------------------------------
    def resolve(self, node: ast.AST) -> str | None:
        """Dotted name an expression refers to, through aliases and dynamic lookups."""
        if isinstance(node, ast.Name):
            if node.id in self.aliases:
                return self.aliases[node.id]
            if node.id in ("__builtins__", "builtins"):
                return "builtins"
            if node.id in _BUILTIN_NAMES and node.id not in self.functions:
                return f"builtins.{node.id}"
            for module in self.star_modules:
                if _dotted_prefix(f"{module}.{node.id}"):
                    return f"{module}.{node.id}"
            return None
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            if base is None and isinstance(node.value, ast.Constant) and isinstance(
                    node.value.value, bytes) and node.attr == "fromhex":
                return "bytes.fromhex"
            if base is None and isinstance(node.value, ast.Name) and node.value.id == "bytes":
                return f"bytes.{node.attr}"
            return f"{base}.{node.attr}" if base else None
        if isinstance(node, ast.Call):
            func = self.resolve(node.func)
            text = _const_str(node.args[0]) if node.args else None
            if func in ("builtins.__import__", "importlib.import_module") and text:
                return text
            if func == "builtins.getattr" and len(node.args) >= 2:
                attr = _const_str(node.args[1])
                base = self.resolve(node.args[0])
                if base and attr:
                    return f"{base}.{attr}"
            if func == "builtins.vars" and len(node.args) == 1:
                base = self.resolve(node.args[0])  # vars(module) is its namespace
                return f"{base}.__dict__" if base else None
            if func in ("builtins.globals", "builtins.locals", "builtins.vars") \
                    and not node.args:
                return "<globals>"
            return None
        if isinstance(node, ast.Subscript):
            base = self.resolve(node.value)
            key = _const_str(node.slice)
            if key:
                if base == "sys.modules":
                    return key
                if base == "<globals>":
                    return "builtins" if key == "__builtins__" else self.resolve(
                        ast.Name(key, ast.Load()))
                if base in ("builtins", "builtins.globals()"):
                    return f"builtins.{key}"
                if base is not None and base.endswith(".__dict__"):
                    return f"{base[: -len('.__dict__')]}.{key}"
            return None
        return None

    # -- events --------------------------------------------------------------------------
    def _add(self, cap: Capability, name: str, where: str, now: bool, node: ast.AST,
             *, payload: bool = False, high: bool = False) -> None:
        self.report.events.append(PyEvent(cap, name, where, now, getattr(node, "lineno", 0),
                                          _snippet(node), payload, high))

    def _call(self, node: ast.Call, where: str, now: bool, called: set[str]) -> None:
        self._note_local_call(node, called, now)
        name = self.resolve(node.func)
        if name is None:
            if isinstance(node.func, ast.Attribute) and node.func.attr in ("load", "loads") and \
                    isinstance(node.func.value, ast.Name) and node.func.value.id == "yaml":
                name = "yaml.load"
            else:
                return
        if name == "builtins.getattr" and node.args and self.resolve(node.args[0]) == "builtins":
            self._add(Capability.OBFUSCATION, "getattr(builtins, ...)", where, now, node, high=True)
        if name in ("codecs.decode", "codecs.encode") and any(
                isinstance(a, ast.Constant) and str(a.value).lower() in _ROT13
                for a in [*node.args, *(k.value for k in node.keywords)]):
            self._add(Capability.OBFUSCATION, "rot13", where, now, node)
        if name == "yaml.load" and not any(
                k.arg == "Loader" and "Safe" in _snippet(k.value) for k in node.keywords) and not (
                len(node.args) > 1 and "Safe" in _snippet(node.args[1])):
            self._add(Capability.DESERIALIZE, name, where, now, node)
            return
        cap = _dotted_prefix(name)
        if cap is None:
            return
        if cap is Capability.FILE_WRITE:
            if _writes_outside(name, node):
                self._add(cap, name, where, now, node)
            return
        if cap is Capability.ENV:
            self._add(cap, name, where, now, node, high=_secret_env(node))
            return
        if name in ("importlib.import_module", "builtins.__import__") and node.args and \
                isinstance(node.args[0], ast.Constant):
            return  # a constant import: resolved, and its uses are classified by name
        if cap is Capability.CODE and name in ("builtins.exec", "builtins.eval",
                                               "builtins.compile"):
            self._exec(node, name, where, now)
            return
        self._add(cap, name, where, now, node)

    def _exec(self, node: ast.Call, name: str, where: str, now: bool) -> None:
        arg = node.args[0] if node.args else None
        if isinstance(arg, ast.Constant) and isinstance(arg.value, (str, bytes)):
            if self.depth < MAX_EXEC_DEPTH:
                inner = _Analyzer(self.depth + 1)
                try:
                    code = arg.value if isinstance(arg.value, str) else arg.value.decode()
                    inner.run(ast.parse(code))
                except (SyntaxError, ValueError, UnicodeDecodeError, RecursionError):
                    self._add(Capability.CODE, name, where, now, node)
                    return
                for event in inner.report.events:
                    self.report.events.append(PyEvent(
                        event.capability, event.name, where, now and event.import_time,
                        getattr(node, "lineno", 0), f"{name.split('.')[-1]}: {event.evidence}",
                        event.payload, event.high))
            self._add(Capability.CODE, name, where, now, node)
            return
        payload = arg is not None and any(
            isinstance(sub, ast.Call) and (
                _dotted_prefix(self.resolve(sub.func) or "") in (Capability.DECODE,
                                                                  Capability.NETWORK)
                or (isinstance(sub.func, ast.Attribute) and sub.func.attr == "decode"
                    and any(isinstance(c, ast.Call) and _dotted_prefix(
                        self.resolve(c.func) or "") is Capability.DECODE
                        for c in ast.walk(sub.func.value))))
            for sub in ast.walk(arg))
        self._add(Capability.CODE, name, where, now, node, payload=payload)

    def _access(self, node: ast.Attribute | ast.Subscript, where: str, now: bool) -> None:
        name = self.resolve(node)
        if name is None and isinstance(node, ast.Subscript) and _const_str(node.slice) is None:
            # A computed key into a namespace: ``__builtins__["ex" + x]``, ``vars(os)[k]``.
            base = self.resolve(node.value)
            if base is not None and (base in ("builtins", "<globals>", "sys.modules")
                                     or base.endswith(".__dict__")):
                self._add(Capability.OBFUSCATION, f"{base}[<computed name>]", where, now, node,
                          high=True)
            return
        if name is None:
            if isinstance(node, ast.Attribute) and node.attr in ("__builtins__", "__globals__",
                                                                  "__subclasses__"):
                self._add(Capability.OBFUSCATION, node.attr, where, now, node, high=True)
            return
        if name == "os.environ" or (isinstance(node, ast.Subscript) and
                                    self.resolve(node.value) == "os.environ"):
            self._add(Capability.ENV, "os.environ", where, now, node, high=_secret_env(node))
        elif name.startswith("builtins.") and isinstance(node, ast.Subscript):
            self._add(Capability.OBFUSCATION, name, where, now, node, high=True)


    def _constant(self, node: ast.Constant, where: str, now: bool) -> None:
        value = node.value
        if isinstance(value, bytes):
            try:
                value = value.decode("ascii")
            except UnicodeDecodeError:
                return
        if isinstance(value, str) and len(value) >= 256 and " " not in value.strip()[:256] \
                and _BLOB.match(value):
            self._add(Capability.OBFUSCATION, f"encoded blob of {len(value)} characters", where,
                      now, node)


def _const_str(node: ast.AST | None, depth: int = 0) -> str | None:
    """The string a constant expression evaluates to (``"ex" + "ec"``, ``"".join([...])``).

    Only literal strings, ``+`` between them and ``"".join`` of a literal list or tuple are
    folded; anything else is None (a computed value).
    """
    if node is None or depth > 32:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _const_str(node.left, depth + 1), _const_str(node.right, depth + 1)
        return None if left is None or right is None else left + right
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "join" and len(node.args) == 1 and not node.keywords
            and isinstance(node.args[0], (ast.List, ast.Tuple))):
        sep = _const_str(node.func.value, depth + 1)
        parts = [_const_str(e, depth + 1) for e in node.args[0].elts]
        if sep is not None and all(p is not None for p in parts):
            return sep.join(p for p in parts if p is not None)
    return None


def _is_main_guard(stmt: ast.stmt) -> bool:
    if not isinstance(stmt, ast.If) or not isinstance(stmt.test, ast.Compare):
        return False
    parts = [stmt.test.left, *stmt.test.comparators]
    return any(isinstance(p, ast.Name) and p.id == "__name__" for p in parts) and any(
        isinstance(p, ast.Constant) and p.value == "__main__" for p in parts)


def _const_path(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
        return str(node.values[0].value)
    return None


def _outside(path: str) -> bool:
    return path.startswith(("/", "~", "..", "\\")) or "/../" in path or re.match(
        r"^[A-Za-z]:[\\/]", path) is not None


def _writes_outside(name: str, node: ast.Call) -> bool:
    path = _const_path(node.args[0] if node.args else None)
    if path is None or not _outside(path):
        return False
    if name == "builtins.open":
        mode_node = node.args[1] if len(node.args) > 1 else next(
            (k.value for k in node.keywords if k.arg == "mode"), None)
        mode = _const_path(mode_node) or "r"
        return any(c in mode for c in "wax+")
    return True


def _secret_env(node: ast.AST) -> bool:
    """Whether an environment access reads everything or a secret-looking variable."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and _SECRET_NAME.search(
                sub.value):
            return True
    parent_call = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
        node.func.attr in ("copy", "items", "keys", "values")
    return parent_call or (isinstance(node, ast.Call) and isinstance(node.func, ast.Name))
