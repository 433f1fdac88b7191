"""Self-describing model files: the architecture and the weights in one file.

A ``.netcl`` file holds everything needed to use a trained model without the
code that built it: the module tree as data (each module's registered type
name and constructor arguments, nested containers included), every parameter
and persistent buffer, each module's train/eval mode, and optional user
metadata such as the input shape or the class names::

    from netcl.io import save_model, load_model

    save_model(model, "digits.netcl", metadata={"input_shape": [1, 8, 8]})
    model = load_model("digits.netcl", device="auto")

Loading rebuilds netcl's own layers and containers with no user code. A
user-defined module can be saved once its class is registered with
:func:`netcl.nn.register` and describes its constructor arguments with
``config()``; the program that loads the file must import that class first.
:func:`read_metadata` and :func:`describe` read a file without building the
model. Loading never runs code taken from the file: there is no pickle in
the format, and a type name is only ever looked up in netcl's registry.

Every problem found in a file raises :class:`ModelFileError`, a subclass of
:class:`~netcl.io.checkpoint.CheckpointError` and so of ``ValueError``. Its
message names the file, the module inside the model where it applies (for
example ``features.3``) and what is wrong.


The model file format, version 1
================================

The format version is numbered apart from netcl's own version and is raised
whenever a reader of an older version could misread a newer file. A reader
of version N reads every version from 1 to N.

A model file is a standard ZIP archive (names in UTF-8, ZIP64 records where
sizes need them). ``unzip -l`` lists it and ``numpy.load`` opens it as an
``.npz``. The archive comment, the last bytes of the file, is
``netcl-model``. It has these entries:

``model.json``
    the *record*, UTF-8 JSON, described below. It is the last entry (it
    lists the CRC-32 of every tensor entry, written before it) and is stored
    uncompressed; ``unzip -p FILE model.json`` prints it.
``tensors/<key>.npy``
    one entry per stored tensor, named by its ``state_dict()`` key (so
    ``numpy.load(FILE)["tensors/0.weight"]`` is an array). Each holds a .npy
    record exactly as in a checkpoint's array file: a .npy version 1.0 header
    (little-endian ``descr``, ``fortran_order`` False, the shape) padded to a
    multiple of 64 bytes, then the raw little-endian C-order data; types numpy
    cannot describe portably (``bfloat16``) are stored as unsigned integers
    of their width holding the raw bits. Entries are deflated or stored.

A reader ignores entries it does not know.

The record
----------
One JSON object with these fields (a reader ignores unknown fields):

``magic``
    the string ``"netcl-model"``.
``version``
    the format version, an integer (1).
``netcl_version``, ``created``
    which netcl wrote the file and when, as an ISO 8601 UTC time
    (informational).
``architecture``
    the root *module node*.
``tensors``
    a list with one object per ``state_dict()`` key, in ``state_dict()``
    order: ``key``; ``kind`` (``"parameter"`` or ``"buffer"``); and either
    ``dtype`` (netcl / numpy name, e.g. ``"float32"``, ``"bfloat16"``),
    ``shape`` (list of ints), ``nbytes`` (of the data) and ``crc32`` (the
    CRC-32, zlib polynomial, of the whole .npy record, header included), or
    ``same_as``: the key of an earlier tensor that is the very same tensor
    (tied weights), which has no entry of its own.
``metadata``
    the user's metadata, encoded as a checkpoint tree (see below).
``checksum``
    CRC-32 of the record without this field, serialised compactly
    (``separators=(",", ":")``, ASCII only, keys in file order).

A *module node* is an object with:

``type``
    the name the module's class is registered under (see
    :func:`netcl.nn.register`); netcl's own classes use their class name.
``class``
    the class's import path, ``"package.module.QualName"`` (informational:
    it is shown in messages, never imported).
``config``
    the constructor arguments, ``config()`` of the module, encoded as a
    checkpoint tree.
``training``
    the module's mode: true in training mode, false in evaluation mode.
``children``
    a list of ``[name, child]`` pairs in registration order, where ``child``
    is a module node, ``null`` for an empty slot, or ``{"shared": path}``
    when the child is a module already met at that dotted ``path`` (the root
    is ``""``).

A *checkpoint tree* is the JSON encoding of plain values that netcl's
checkpoints use too (:mod:`netcl.io._tree`); in a model file it never refers
to arrays:

===========================  ===============================================
value                        JSON
===========================  ===============================================
None, bool, int, str         itself
finite float                 itself
nan, inf, -inf               ``{"float": "nan"}``, ``"inf"``, ``"-inf"``; a
                             NaN other than the standard one adds ``"bits":
                             "0x..."``, its 64 IEEE bits in hexadecimal
list                         a list of nodes
tuple                        ``{"tuple": [nodes]}``
dict with str keys           ``{"dict": {key: node}}``
dict with other keys         ``{"dict_items": [[key, node], ...]}``
===========================  ===============================================

How a model is rebuilt
----------------------
The root node is rebuilt first, then its children in order. A node's module
is made as ``cls(**config)`` with ``cls`` the class registered under
``type``. If the class is a container (its ``is_container`` is true, as for
``Sequential``, ``ModuleList`` and ``ModuleDict``) each child is rebuilt and
added with ``add_module(name, child)``. Any other class makes its children in
its constructor: the reader then checks that they have the names and types
the file lists. Each module's mode is set from ``training``. Then every
tensor is read and checked, tensors listed as ``same_as`` are tied to their
first key, and all of them are loaded with ``load_state_dict(strict=True)``.

A reader must reject: a file that is not a ZIP archive, has no
``model.json`` or has another archive comment; a record without the magic,
with a version above the one it knows, with a checksum mismatch, or of the
wrong shape; an unknown module type; constructor arguments the class
refuses; children that differ from the file's; a missing tensor entry, a
.npy header that differs from the one the record implies, or a CRC-32
mismatch; tensors that do not fit the rebuilt model.

A writer validates the whole model and the metadata before it writes a byte,
then writes the archive to a temporary file next to the target, flushes and
fsyncs it, and replaces the target with it atomically (see
:mod:`netcl.io._atomic`): a crash leaves the old file or the new one.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from netcl.core.tensor import limit_new_tensors
from netcl.io import _atomic, _format, _tensors, _tree
from netcl.io._format import CheckpointError
from netcl.io._zip import ZipWriter, byte_view, crc32

__all__ = [
    "FORMAT_VERSION",
    "ModelFileError",
    "describe",
    "load_model",
    "read_metadata",
    "save_model",
]

log = logging.getLogger(__name__)
StrPath = str | os.PathLike

FORMAT_VERSION = 1
MAGIC = "netcl-model"
RECORD_NAME = "model.json"
TENSOR_DIR = "tensors/"


class ModelFileError(CheckpointError):
    """A model file is damaged, foreign, from a newer netcl, or describes a
    model that cannot be rebuilt here (unknown type, arguments that no longer
    fit). A ``ValueError``; the message names the file, the module path and
    what is wrong."""


# ---- saving ---------------------------------------------------------------------


def save_model(
    model: Any, path: StrPath, metadata: Mapping[str, Any] | None = None
) -> None:
    """Write ``model`` (architecture, weights and modes) to one ``.netcl`` file.

    Args:
        model: a :class:`netcl.nn.Module` whose every module's class is
            registered (netcl's own are) and describes itself with
            ``config()``.
        path: the file to write; missing directories are created and an
            existing file is replaced atomically.
        metadata: optional plain values to keep with the model: a mapping
            with str keys of strings, numbers, bools, None, lists, tuples and
            dicts (no arrays). ``netcl predict`` reads ``"input_shape"`` (the
            shape of one example) and ``"classes"`` (class names) if present.

    Raises:
        TypeError: a module that cannot be described (unregistered class, a
            ``config()`` that fails or is not plain data) or metadata that is
            not plain data; the message names the module path or key.
        OSError: writing failed; any previous file at ``path`` is intact.

    Example:
        >>> from netcl import nn
        >>> net = nn.Sequential(nn.Linear(4, 2), nn.ReLU())
        >>> meta = {"input_shape": [4]}
        >>> save_model(net, "net.netcl", metadata=meta)  # doctest: +SKIP
    """
    from netcl.nn.module import Module

    if not isinstance(model, Module):
        raise TypeError(
            f"save_model expects a netcl.nn.Module, not {type(model).__name__}"
        )
    architecture = _describe_module(model, "", {})
    table, tensors = _tensor_table(model)
    record = {
        "magic": MAGIC,
        "version": FORMAT_VERSION,
        "netcl_version": _netcl_version(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "architecture": architecture,
        "tensors": table,
        "metadata": _plain_tree({} if metadata is None else metadata, "metadata"),
    }
    _write_file(os.fspath(path), record, tensors)
    log.info("saved model %s (%d tensors)", path, len(tensors))


def _describe_module(module, path: str, seen: dict[int, str]) -> dict:
    """The module node of ``module`` (see the format), checking everything."""
    from netcl.nn.module import registered_name

    seen[id(module)] = path
    cls = type(module)
    name = registered_name(module)
    if name is None:
        raise TypeError(
            f"module {_where(path)} is a {_qualname(cls)}, which is not registered, "
            "so a model file could not rebuild it; decorate the class with "
            "@netcl.nn.register and give it a config() method"
        )
    try:
        config = module.config()
    except Exception as exc:
        raise TypeError(
            f"module {_where(path)} ({name}): config() failed: {exc}"
        ) from exc
    if not isinstance(config, Mapping) or not all(isinstance(k, str) for k in config):
        raise TypeError(
            f"module {_where(path)} ({name}): config() must return a dict with str "
            f"keys, got {config!r}"
        )
    children = []
    for child_name, child in module._modules.items():
        child_path = _join(path, child_name)
        if child is None:
            node = None
        elif id(child) in seen:
            node = {"shared": seen[id(child)]}
        else:
            node = _describe_module(child, child_path, seen)
        children.append([child_name, node])
    return {
        "type": name,
        "class": _qualname(cls),
        "config": _plain_tree(config, f"config of module {_where(path)} ({name})"),
        "training": bool(module.training),
        "children": children,
    }


def _plain_tree(value: Mapping, what: str) -> Any:
    """``value`` as a checkpoint-tree skeleton; it may not hold arrays."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be a mapping, not {type(value).__name__}")
    try:
        skeleton, arrays = _tree.flatten(value, zero_d_as_number=True, path=what)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} cannot be stored: {exc}") from exc
    if arrays:
        raise TypeError(
            f"{what} holds an array at {arrays[0].path}; only plain values "
            "(strings, numbers, bools, None, lists, tuples, dicts) can be stored"
        )
    return skeleton


def _tensor_table(model) -> tuple[list[dict], list[tuple[str, Any]]]:
    """The record's tensor table and the ``(key, tensor)`` pairs to write."""
    param_data = {id(p._data) for p in model.parameters()}
    first_key: dict[int, str] = {}
    table, tensors = [], []
    for key, tensor in model.state_dict().items():
        kind = "parameter" if id(tensor._data) in param_data else "buffer"
        same = first_key.setdefault(id(tensor._data), key)
        if same != key:
            table.append({"key": key, "kind": kind, "same_as": same})
            continue
        _, dtype, shape = _tensors.describe(tensor, key)
        table.append({"key": key, "kind": kind, "dtype": dtype, "shape": list(shape)})
        tensors.append((key, tensor))
    return table, tensors


def _write_file(path: str, record: dict, tensors: list[tuple[str, Any]]) -> None:
    """Write the archive atomically: the tensors one at a time (each copied to
    the host on its own), then the record, which lists their CRC-32s."""
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    _atomic.remove_leftovers(path)
    rows = {row["key"]: row for row in record["tensors"]}
    with _atomic.atomic_write(path) as file:
        writer = ZipWriter(file)
        try:
            for key, tensor in tensors:
                row = rows[key]
                stored = _tensors.storage_array(_tensors.to_host(tensor), row["dtype"])
                header = _format.npy_header(stored.dtype, tuple(row["shape"]))
                pieces = [memoryview(header), byte_view(stored)]
                row["nbytes"] = stored.nbytes
                row["crc32"] = writer.add(f"{TENSOR_DIR}{key}.npy", pieces, True)
            record_bytes = memoryview(_format.encode_record(record))
            writer.add(RECORD_NAME, [record_bytes], compress=False)
            writer.close(MAGIC.encode())
        finally:
            writer.shutdown()


# ---- reading the file -----------------------------------------------------------


class _ModelFile:
    """An opened model file: its checked record and its tensors on demand."""

    def __init__(self, path: StrPath) -> None:
        self.path = os.fspath(path)
        try:
            self.archive = zipfile.ZipFile(self.path)
        except OSError:
            raise  # a missing or unreadable file is not a damaged one
        except Exception as exc:  # zipfile fails in many ways on damaged bytes
            raise self.error(
                f"not a readable zip archive ({exc}); the file is truncated, "
                "damaged, or not a netcl model file"
            ) from None
        try:
            self.record = self._read_record()
            if self.archive.comment != MAGIC.encode():
                # The comment ends the file: anything else means lost bytes.
                raise self.error(
                    f"the archive comment is {self.archive.comment!r}, not "
                    f"{MAGIC!r}; the file is truncated or was rewritten by "
                    "another tool"
                )
        except BaseException:
            self.archive.close()
            raise

    def error(self, what: str, module: str | None = None) -> ModelFileError:
        where = "" if module is None else f" (module {_where(module)})"
        return ModelFileError(f"{self.path}{where}: {what}")

    def close(self) -> None:
        self.archive.close()

    def __enter__(self) -> _ModelFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _read_record(self) -> dict:
        if RECORD_NAME not in self.archive.NameToInfo:
            raise self.error(
                f"not a netcl model file (the zip archive has no {RECORD_NAME})"
            )
        data = self.read_entry(RECORD_NAME, "the record")
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise self.error(f"the record is not valid JSON ({exc})") from None
        if not isinstance(doc, dict) or doc.get("magic") != MAGIC:
            raise self.error("not a netcl model file (its record has no magic)")
        version = doc.get("version")
        if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
            raise self.error(
                f"written in model format version {version!r}, but this netcl "
                f"reads versions 1 to {FORMAT_VERSION}; upgrade netcl to load it"
            )
        stored = doc.pop("checksum", None)
        if stored != _record_checksum(doc):
            raise self.error("the record is damaged (checksum mismatch)")
        self._check_shape(doc)
        return doc

    def _check_shape(self, doc: dict) -> None:
        fields = {"architecture": dict, "tensors": list, "metadata": (dict, type(None))}
        for name, kind in fields.items():
            if not isinstance(doc.get(name), kind):
                raise self.error(
                    f"malformed record: field {name!r} is missing or wrong"
                )
        for row in doc["tensors"]:
            if not isinstance(row, dict) or not isinstance(row.get("key"), str):
                raise self.error(f"malformed record: bad tensor entry {row!r}")

    def read_entry(self, name: str, what: str, module: str | None = None) -> bytes:
        """The bytes of one entry, whose CRC-32 zipfile checks as it reads."""
        try:
            return self.archive.read(name)
        except Exception as exc:  # bad CRC, bad deflate data, bad local header...
            raise self.error(
                f"{what} is damaged ({type(exc).__name__}: {exc})", module
            ) from None

    def metadata(self) -> dict:
        try:
            return _tree.unflatten(self.record["metadata"], _no_arrays)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise self.error(f"malformed metadata ({exc})") from None

    def read_tensor(self, row: dict) -> np.ndarray:
        """The array of one tensor-table row, checked against the record."""
        key = row["key"]
        module, _, attr = key.rpartition(".")
        try:
            dtype, shape = row["dtype"], tuple(row["shape"])
            storage = _tensors.storage_dtype(dtype)
            header = _format.npy_header(storage, shape)
            size = len(header) + int(row["nbytes"])
        except (KeyError, TypeError, ValueError) as exc:
            raise self.error(
                f"tensor {attr!r}: malformed entry ({exc})", module
            ) from None
        entry = f"{TENSOR_DIR}{key}.npy"
        if entry not in self.archive.NameToInfo:
            raise self.error(f"tensor {attr!r} is missing from the file", module)
        data = self.read_entry(entry, f"tensor {attr!r}", module)
        if len(data) != size or data[: len(header)] != header:
            raise self.error(
                f"tensor {attr!r} is damaged (its .npy header or size differs "
                "from the record)",
                module,
            )
        if crc32(data) != row.get("crc32"):
            raise self.error(f"tensor {attr!r} is damaged (checksum mismatch)", module)
        stored = np.frombuffer(data, storage, offset=len(header)).reshape(shape)
        return _tensors.from_storage(stored, dtype)


def _record_checksum(doc: dict) -> int:
    # The checksum is defined the way checkpoint records define theirs;
    # encode_record computes it, so both formats share one definition.
    return json.loads(_format.encode_record(doc))["checksum"]


def _no_arrays(name: str):
    raise ValueError(f"metadata refers to an array {name!r}; model files hold none")


# ---- loading --------------------------------------------------------------------


def load_model(path: StrPath, device: Any = "auto"):
    """Rebuild the model saved in ``path`` and put its weights on ``device``.

    Netcl's own layers and containers need no user code; a user-defined
    module's class must be imported (and so registered) before the call. The
    global random state is left as it was, although constructors draw
    initial weights that the file's weights then replace.

    Args:
        path: a file written by :func:`save_model`.
        device: where the weights go: ``"auto"`` (default), ``"cpu"``,
            ``"cl"``, ``"cl:N"`` or a :class:`~netcl.core.device.Device`.

    Returns:
        The model, in the train/eval mode of each module when it was saved.
        On the device it was saved from, its outputs equal the saved
        model's bit for bit.

    Raises:
        ModelFileError: the file is damaged, foreign or from a newer format;
            or it names a module type nobody registered, constructor
            arguments that no longer fit, or tensors that do not fit.
        OSError: the file cannot be read.
        DeviceNotFoundError: ``device`` names no device.

    Example:
        >>> model = load_model("digits.netcl", device="cpu")  # doctest: +SKIP
        >>> model(x).argmax(1)                                  # doctest: +SKIP
    """
    from netcl.core import random
    from netcl.core.device import manager

    target = manager.default(device)
    with _ModelFile(path) as mf:
        rng_state = random.get_rng_state()
        # No constructor may make a tensor larger than the largest one the
        # file holds: a crafted size fails before it allocates.
        biggest = max(map(_numel, mf.record["tensors"]), default=0)
        try:
            with limit_new_tensors(biggest):
                model = _Builder(mf).build(mf.record["architecture"])
        finally:
            random.set_rng_state(rng_state)
        _load_tensors(mf, model)
    return model.to(target)


class _Builder:
    """Rebuilds a module tree from its nodes (see "How a model is rebuilt")."""

    def __init__(self, mf: _ModelFile) -> None:
        self.mf = mf
        self.registry = _registry()
        self.by_path: dict[str, Any] = {}

    def build(self, node: Any, path: str = ""):
        """Make the module of ``node`` and, for a container, its children."""
        node = self._node(node, path)
        cls = self._class(node, path)
        config = self._config(node, path)
        try:
            module = cls(**config)
        except Exception as exc:
            raise self.mf.error(
                f"the constructor arguments no longer fit {node['type']}: "
                f"{node['type']}(**{config!r}) raised {type(exc).__name__}: {exc}",
                path,
            ) from exc
        self._finish(module, node, path, made_by_parent=False)
        return module

    def check(self, module, node: Any, path: str) -> None:
        """Check a module its parent's constructor made against ``node``."""
        node = self._node(node, path)
        if _registered_name(module) != node["type"]:
            raise self.mf.error(
                f"the file lists a {node['type']} here, but rebuilding its parent "
                f"made a {type(module).__name__}; the parent's class has changed",
                path,
            )
        self._finish(module, node, path, made_by_parent=True)

    def _finish(self, module, node: dict, path: str, made_by_parent: bool) -> None:
        self.by_path[path] = module
        # Only this module's own flag: train() would also reset its children,
        # and a shared child keeps the mode of its first appearance.
        module.training = bool(node["training"])
        children = node["children"]
        if not isinstance(children, list):
            raise self.mf.error("malformed record: 'children' is not a list", path)
        if module.is_container and not made_by_parent:
            for name, child in self._pairs(children, path):
                module.add_module(name, self._child(child, _join(path, name)))
            return
        self._check_children(module, children, path)

    def _child(self, node: Any, path: str):
        if node is None:
            return None
        if isinstance(node, dict) and "shared" in node:
            return self._shared(node, path)
        return self.build(node, path)

    def _check_children(self, module, children: list, path: str) -> None:
        names = [name for name, _ in self._pairs(children, path)]
        made = list(module._modules)
        if made != names:
            raise self.mf.error(
                f"rebuilding {type(module).__name__} made the submodules {made}, "
                f"but the file lists {names}; the class has changed since the "
                "file was saved",
                path,
            )
        for name, node in self._pairs(children, path):
            child_path = _join(path, name)
            child = module._modules[name]
            if node is None or child is None:
                if (node is None) != (child is None):
                    raise self.mf.error("an empty submodule slot differs", child_path)
            elif isinstance(node, dict) and "shared" in node:
                if self._shared(node, child_path) is not child:
                    raise self.mf.error("should be shared but is not", child_path)
            else:
                self.check(child, node, child_path)

    def _shared(self, node: dict, path: str):
        target = node["shared"]
        if target not in self.by_path:
            raise self.mf.error(
                f"malformed record: shares the module {target!r}, which comes "
                "later or does not exist",
                path,
            )
        return self.by_path[target]

    def _pairs(self, children: list, path: str):
        for pair in children:
            if not (
                isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)
            ):
                raise self.mf.error(f"malformed record: bad child entry {pair!r}", path)
            yield pair[0], pair[1]

    def _node(self, node: Any, path: str) -> dict:
        keys = {"type", "config", "training", "children"}
        if not isinstance(node, dict) or not keys <= node.keys():
            raise self.mf.error("malformed record: not a module node", path)
        return node

    def _class(self, node: dict, path: str) -> type:
        name = node["type"]
        cls = self.registry.get(name)
        if cls is None:
            saved_from = node.get("class", "?")
            raise self.mf.error(
                f"unknown module type {name!r} (saved from the class {saved_from}); "
                "import the code that defines it before load_model, and register "
                f"the class with @netcl.nn.register or @netcl.nn.register({name!r})",
                path,
            )
        return cls

    def _config(self, node: dict, path: str) -> dict:
        try:
            config = _tree.unflatten(node["config"], _no_arrays)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise self.mf.error(
                f"malformed constructor arguments ({exc})", path
            ) from None
        if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
            raise self.mf.error(f"malformed constructor arguments {config!r}", path)
        return config


def _load_tensors(mf: _ModelFile, model) -> None:
    """Read, check, tie and load every tensor of the file into ``model``."""
    from netcl.nn.module import StateDictError

    values, modules = {}, dict(model.named_modules(remove_duplicate=False))
    for row in mf.record["tensors"]:
        if "same_as" in row:
            _tie(mf, modules, row["key"], row["same_as"])
        else:
            values[row["key"]] = mf.read_tensor(row)
    for row in mf.record["tensors"]:
        if "same_as" in row:
            values[row["key"]] = values.get(row["same_as"])
    _match_dtypes(mf, model, values)
    try:
        model.load_state_dict(values, strict=True)
    except StateDictError as exc:
        keys = exc.missing_keys + exc.unexpected_keys + [k for k, *_ in exc.mismatched]
        module = keys[0].rpartition(".")[0] if keys else None
        detail = "; ".join(str(exc).splitlines()[1:-1]).strip()
        raise mf.error(
            f"the tensors do not fit the rebuilt model ({detail}); the layer's "
            "class or its arguments have changed since the file was saved",
            module,
        ) from None


def _tie(mf: _ModelFile, modules: dict, key: str, first: str) -> None:
    """Make ``key`` the very tensor ``first`` is (tied weights), if not already."""
    owner, _, attr = key.rpartition(".")
    first_owner, _, first_attr = first.rpartition(".")
    if owner not in modules or first_owner not in modules:
        raise mf.error(f"tensor {attr!r} has no module to go to", owner)
    source = getattr(modules[first_owner], first_attr, None)
    if getattr(modules[owner], attr, None) is not source:
        setattr(modules[owner], attr, source)


def _match_dtypes(mf: _ModelFile, model, values: dict) -> None:
    """Cast the rebuilt model to the saved floating dtype (a model saved after
    ``model.to(netcl.bfloat16)``, say); a mix of floating dtypes must match."""
    own = model.state_dict()
    saved = {np.dtype(v.dtype).name for k, v in values.items() if _is_float(v.dtype)}
    built = {own[k].dtype.name for k in values if k in own and own[k].dtype.is_floating}
    if len(saved) == 1 and saved != built:
        model.to(dtype=saved.pop())
        own = model.state_dict()
    for key, value in values.items():
        target = own.get(key)
        if target is not None and target.dtype.name != np.dtype(value.dtype).name:
            owner, _, attr = key.rpartition(".")
            raise mf.error(
                f"tensor {attr!r} was saved as {np.dtype(value.dtype).name}, but the "
                f"rebuilt model holds {target.dtype.name}",
                owner,
            )


def _is_float(dtype: np.dtype) -> bool:
    dtype = np.dtype(dtype)
    return dtype.kind == "f" or dtype.type.__module__.startswith("ml_dtypes")


def read_metadata(path: StrPath) -> dict:
    """The metadata given to :func:`save_model`, read without building the
    model (``{}`` when none was given).

    Raises:
        ModelFileError: the file is damaged, foreign or from a newer format.
    """
    with _ModelFile(path) as mf:
        return mf.metadata()


# ---- describing -----------------------------------------------------------------


def describe(path: StrPath) -> str:
    """A printable summary of a model file without building the model: the
    module tree with each module's parameter count, the total, the mode, and
    the metadata (used by ``netcl ckpt inspect FILE.netcl``).

    Raises:
        ModelFileError: the file is damaged, foreign or from a newer format.
    """
    with _ModelFile(path) as mf:
        record, metadata = mf.record, mf.metadata()
    counts = _parameter_counts(record["tensors"])
    rows: list[tuple[str, int | None]] = []
    modes: set[bool] = set()
    _tree_rows(record["architecture"], "", "", counts, rows, modes)
    lines = [
        f"model {os.fspath(path)}",
        f"  format version {record['version']}, written by netcl "
        f"{record.get('netcl_version', '?')} at {record.get('created', '?')}",
        f"  mode: {_mode_text(modes)}",
        "",
        f"{'parameters':>12}  module",
    ]
    for text, count in rows:
        lines.append(f"{'' if count is None else f'{count:,}':>12}  {text}")
    lines.append(f"{sum(counts.values()):>12,}  total")
    buffers = [r for r in record["tensors"] if r.get("kind") == "buffer"]
    if buffers:
        values = sum(_numel(r) for r in buffers if "same_as" not in r)
        lines.append(f"buffers: {len(buffers)} tensors, {values:,} values")
    lines += _metadata_lines(metadata)
    return "\n".join(lines)


def _parameter_counts(table: list[dict]) -> dict[str, int]:
    """Parameters held directly by each module path, each tensor counted once."""
    counts: dict[str, int] = {}
    for row in table:
        if row.get("kind") == "parameter" and "same_as" not in row:
            owner = row["key"].rpartition(".")[0]
            counts[owner] = counts.get(owner, 0) + _numel(row)
    return counts


def _numel(row: dict) -> int:
    return int(np.prod(row.get("shape", []), dtype=np.int64))


def _tree_rows(node, path, label, counts, rows, modes) -> None:
    indent = "  " * path.count(".") + ("  " if path else "")
    if node is None or "shared" in node:
        what = "(empty)" if node is None else f"(same module as {node['shared']!r})"
        rows.append((f"{indent}{label}{what}", None))
        return
    modes.add(bool(node.get("training")))
    prefix = path + "."
    total = sum(
        n for p, n in counts.items() if p == path or p.startswith(prefix) or not path
    )
    rows.append((f"{indent}{label}{node['type']}{_config_text(node)}", total))
    for name, child in node.get("children", []):
        _tree_rows(child, _join(path, name), f"({name}) ", counts, rows, modes)


def _config_text(node: dict) -> str:
    try:
        config = _tree.unflatten(node.get("config", {}), _no_arrays)
    except (ValueError, TypeError, KeyError, AttributeError):
        return "(?)"
    if not config:
        return ""
    return "(" + ", ".join(f"{k}={v!r}" for k, v in config.items()) + ")"


def _mode_text(modes: set[bool]) -> str:
    if modes == {False}:
        return "eval"
    if modes == {True}:
        return "train"
    return "mixed (some modules train, some eval)"


def _metadata_lines(metadata: dict) -> list[str]:
    if not metadata:
        return ["metadata: none"]
    lines = ["metadata:"]
    for key, value in metadata.items():
        text = repr(value)
        if len(text) > 200:
            text = text[:197] + "..."
        lines.append(f"  {key}: {text}")
    return lines


# ---- small helpers --------------------------------------------------------------


def _registry() -> dict[str, type]:
    import netcl.nn  # noqa: F401  (registers netcl's own layers and containers)
    from netcl.nn.module import module_registry

    return module_registry()


def _registered_name(module) -> str | None:
    from netcl.nn.module import registered_name

    return registered_name(module)


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _where(path: str) -> str:
    return repr(path) if path else "'' (the root)"


def _netcl_version() -> str:
    import netcl

    return getattr(netcl, "__version__", "unknown")
