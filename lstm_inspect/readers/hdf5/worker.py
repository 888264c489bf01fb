"""h5py in a child process, for what the parser (parser.py) does not read.

libhdf5 loops forever on some damaged files, in native code that holds the GIL, where no signal
handler or timer of this process can stop it; a child process runs under a CPU-time limit and is
killed as soon as the parent is interrupted. The child lists the whole tree at once and answers
with the same interface as the parser (tree.py), then reads datasets on demand.
"""

from __future__ import annotations

import io
import json
import os
import sys
import zlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..ranges import FileRange
from .tree import (
    CLASS_NAMES,
    EXTRA_BUDGET,
    MAX_DEFLATE_RATIO,
    READ_PIECE,
    Attributes,
    Budget,
    Damaged,
    Dataset,
    Group,
    Node,
    OutsideFile,
    link_name,
    product,
    shown,
)

if TYPE_CHECKING:
    import numpy as np

__all__ = ["WORKER_CPU_SECONDS", "H5pyWorker"]

# CPU seconds a worker may spend on one request, plus one per this many bytes of the file: reading
# a 1 GB dataset costs h5py about 1 s, inflating one about 5 s; libhdf5's endless loops on damaged
# files spend them all. CPU time, not wall time, so that a busy machine does not fail a file.
WORKER_CPU_SECONDS = 10
_WORKER_BYTES_PER_CPU_SECOND = 16 << 20
_MAX_SOFT_LINKS = 16  # H5L_NUM_LINKS: libhdf5 follows this many soft links in one path
# What h5py raises for what it cannot read in a file, or a zip member damaged under it: in the
# worker these mean "damaged", anything else is a bug there and comes back with its traceback.
_H5PY_ERRORS = (OSError, KeyError, ValueError, RuntimeError, TypeError, EOFError, zlib.error)
_BYTES_TAG = "\0bytes"  # marks bytes in the worker's JSON; no HDF5 attribute name holds a NUL


class H5pyWorker:
    """h5py in a child process, opened on the same file descriptor.

    The child lists the whole tree at once (tree()), then reads datasets on demand (read()). It
    runs each request under a CPU-time limit (RLIMIT_CPU, WORKER_CPU_SECONDS plus one second per
    16 MiB of the file) and is killed when the parent is interrupted, so that a libhdf5 loop ends
    in Damaged, and Ctrl-C in KeyboardInterrupt, at once. `start`, `size`: the HDF5 bytes of the
    file; `member`: the zip member holding them, when they are deflated.
    """

    def __init__(self, fd: int, start: int, size: int, member: str | None = None) -> None:
        import subprocess  # here: listing a file the parser reads never starts a process

        package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
        code = (
            f"import sys; sys.path.insert(0, {package_root!r}); "
            "from lstm_inspect.readers.hdf5.worker import _serve; _serve()"
        )
        self._size = size
        # One BLAS thread: the worker does no arithmetic, and each thread would reserve memory.
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        self._process: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, "-c", code, str(fd), str(start), str(size), member or "", str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            pass_fds=(fd,),
            env=env,
        )
        self._failure: str | None = None

    def tree(self) -> Group:
        """The root group, every object and attribute listed by h5py."""
        answer = self._request({"op": "tree"})
        return _ListedTree(self, answer["objects"], answer["root"]).root

    def read(self, path: str) -> np.ndarray:
        """The values of the dataset at `path`, in the stored byte order."""
        import numpy as np

        answer = self._request({"op": "read", "path": path})
        dtype, shape = np.dtype(answer["dtype"]), tuple(answer["shape"])
        if dtype.kind not in "iufV" or dtype.hasobject or any(d < 0 for d in shape):
            raise RuntimeError(f"the h5py worker sent an array of {dtype} {shape}")
        out = np.empty(shape, dtype)
        self._receive_into(out.reshape(-1).view(np.uint8))
        return out

    def close(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait()
            for pipe in (process.stdin, process.stdout):
                if pipe is not None:
                    pipe.close()

    def _request(self, request: dict[str, Any]) -> dict[str, Any]:
        if self._failure is not None:
            raise Damaged(self._failure)
        if self._process is None:
            raise ValueError("the h5py worker is closed")
        request["cpu"] = WORKER_CPU_SECONDS + self._size // _WORKER_BYTES_PER_CPU_SECOND
        try:
            assert self._process.stdin is not None
            message = json.dumps(request).encode()
            self._process.stdin.write(len(message).to_bytes(8, "little") + message)
            self._process.stdin.flush()
            header = bytearray(8)
            self._receive_into(header)
            text = bytearray(int.from_bytes(header, "little"))
            self._receive_into(text)
        except BrokenPipeError:
            self._died(request["cpu"])
        except BaseException:
            # Ctrl-C among them: libhdf5 may be in one of its loops, which only a kill ends.
            self.close()
            raise
        answer = json.loads(text, object_hook=_untag)
        if answer.get("ok"):
            return answer  # type: ignore[no-any-return]
        if answer.get("error") == "outside":
            raise OutsideFile(answer["message"])
        if answer.get("error") == "damaged":
            raise Damaged(answer["message"])
        raise RuntimeError(f"the h5py worker failed:\n{answer.get('message')}")

    def _receive_into(self, target: Any) -> None:
        assert self._process is not None and self._process.stdout is not None
        view, done, fd = memoryview(target).cast("B"), 0, self._process.stdout.fileno()
        while done < len(view):
            got = os.readv(fd, [view[done : done + READ_PIECE]])
            if not got:
                self._died(None)
            done += got

    def _died(self, cpu: int | None) -> None:
        assert self._process is not None
        import signal

        status = self._process.wait()
        self.close()
        if status == -signal.SIGXCPU:
            self._failure = (
                f"libhdf5 did not finish within {cpu or WORKER_CPU_SECONDS} s of CPU time (it loops "
                "forever on some damaged files)"
            )
        else:
            self._failure = f"libhdf5 stopped reading it (exit status {status})"
        raise Damaged(self._failure)


def _untag(value: dict[str, Any]) -> Any:
    return bytes.fromhex(value[_BYTES_TAG]) if len(value) == 1 and _BYTES_TAG in value else value


class _ListedTree:
    """What the worker listed: object key -> {"kind", "attrs", "members" | "shape", "dtype"}."""

    def __init__(self, worker: H5pyWorker, objects: dict[str, dict[str, Any]], root: str) -> None:
        self.worker, self.objects = worker, objects
        self._member_maps: dict[str, dict[str, str]] = {}
        node = self.node("/", root)
        if not isinstance(node, Group):
            raise Damaged("the root object is not a group")
        self.root: Group = node

    def members(self, key: str) -> dict[str, str]:
        """Member name -> object key, of the group `key`: made once, looked up many times."""
        found = self._member_maps.get(key)
        if found is None:
            found = self._member_maps[key] = dict(self.objects[key]["members"])
        return found

    def node(self, name: str, key: str) -> Node:
        kind = self.objects[key]["kind"]
        cls = _ListedGroup if kind == "group" else _ListedDataset if kind == "dataset" else _ListedNode
        return cls(self, name, key)


class _ListedNode(Node):
    def __init__(self, tree: _ListedTree, name: str, key: str) -> None:
        self._tree, self._entry, self._key, self.name, self.key = tree, tree.objects[key], key, name, int(key)

    @property
    def attrs(self) -> Mapping[str, Any]:
        return Attributes(self._entry["attrs"], lambda value: value)


class _ListedGroup(_ListedNode, Group):
    @property
    def root(self) -> Group:
        return self._tree.root

    def items(self) -> list[tuple[str, Node]]:
        return [(name, self._tree.node(self._child(name), key)) for name, key in self._entry["members"]]

    def member(self, name: str) -> Node | None:
        key = self._tree.members(self._key).get(name)
        return None if key is None else self._tree.node(self._child(name), key)


class _ListedDataset(_ListedNode, Dataset):
    @property
    def shape(self) -> tuple[int, ...] | None:
        shape = self._entry["shape"]
        return None if shape is None else tuple(shape)

    @property
    def dtype(self) -> str:
        return str(self._entry["dtype"])

    def read(self) -> np.ndarray:
        return self._tree.worker.read(self.name)


# ---- the child's side ------------------------------------------------------------------------


def _serve() -> None:
    """The worker: requests (8-byte length, JSON) on stdin; answers the same way on stdout, an
    array's bytes after its answer. Arguments: fd, start, size, zip member (or ""), parent's pid."""
    import resource
    import signal

    fd, start, size, member = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    try:  # Linux: die with the parent (killed by SIGTERM, say), not only at the CPU limit
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (linux/prctl.h)
    except (OSError, AttributeError):
        pass
    if os.getppid() != int(sys.argv[5]):
        return  # the parent is gone already
    requests, answers = sys.stdin.buffer, os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever else writes to stdout goes where stderr goes, not into the answers
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides, and kills
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a libhdf5 crash leaves no core file behind
    opened: list[Any] = []
    while len(header := requests.read(8)) == 8:
        request = json.loads(requests.read(int.from_bytes(header, "little")))
        used = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
        limit = int(used) + 1 + request["cpu"]
        resource.setrlimit(resource.RLIMIT_CPU, (limit, resource.RLIM_INFINITY))
        payload = None
        try:
            if not opened:
                opened.append(_open_h5py(fd, start, size, member))
            if request["op"] == "tree":
                answer: dict[str, Any] = {"ok": True, **_dump(opened[0], size)}
            else:
                payload = _read_h5py(opened[0], request["path"])
                answer = {"ok": True, "dtype": payload.dtype.str, "shape": list(payload.shape)}
        except OutsideFile as e:
            answer = {"ok": False, "error": "outside", "message": str(e)}
        except Damaged as e:
            answer = {"ok": False, "error": "damaged", "message": str(e)}
        except MemoryError:
            answer = {"ok": False, "error": "damaged", "message": "libhdf5 needed more memory than there is"}
        except _H5PY_ERRORS as e:
            answer = {"ok": False, "error": "damaged", "message": f"h5py: {e}"}
        except Exception:
            import traceback

            answer = {"ok": False, "error": "bug", "message": traceback.format_exc()}
        text = json.dumps(answer, default=_tag).encode()
        answers.write(len(text).to_bytes(8, "little") + text)
        if payload is not None:
            answers.write(memoryview(payload.reshape(-1)).cast("B"))
        answers.flush()


def _tag(value: Any) -> Any:
    if isinstance(value, bytes):
        return {_BYTES_TAG: value.hex()}
    return str(value)  # numbers h5py gives in types JSON lacks (complex), which Keras never writes


def _open_h5py(fd: int, start: int, size: int, member: str) -> Any:
    import h5py  # type: ignore[import-untyped]

    source: Any = FileRange(io.FileIO(fd, closefd=False), start, size)
    if member:
        import zipfile

        source = zipfile.ZipFile(source).open(member)
    try:
        return h5py.File(source, "r", locking=False)
    except _H5PY_ERRORS as e:
        raise Damaged(f"libhdf5 cannot open it ({e})") from None


def _resolve(h5: Any, group: Any, name: str, hops: int = 0) -> Any:
    """The object the link `name` of `group` leads to, or None; soft links followed here, link by
    link, so that no external link is (libhdf5 would open the other file)."""
    import h5py  # type: ignore[import-untyped]

    if hops > _MAX_SOFT_LINKS:
        raise Damaged("soft links lead round in a circle")
    link = group.get(name, getlink=True)
    if isinstance(link, h5py.ExternalLink):
        raise OutsideFile(
            f"links to an object in another file, {shown(os.fsencode(link.filename))} (an HDF5 external link)"
        )
    if isinstance(link, h5py.HardLink):
        return group[name]
    if not isinstance(link, h5py.SoftLink):
        return None  # a user-defined link: libhdf5 does not follow it either
    node = h5 if link.path.startswith("/") else group
    for part in link.path.split("/"):
        if part in ("", "."):
            continue
        node = _resolve(h5, node, part, hops + 1) if isinstance(node, h5py.Group) else None
        if node is None:
            return None
    return node


def _dump(h5: Any, size: int) -> dict[str, Any]:
    """Every object reached from the root, each once, with its attributes and members."""
    import h5py  # type: ignore[import-untyped]

    budget = Budget(size + EXTRA_BUDGET)
    objects: dict[str, dict[str, Any]] = {}
    stack = [h5]
    root = str(h5py.h5o.get_info(h5.id).addr)
    while stack:
        obj = stack.pop()
        key = str(h5py.h5o.get_info(obj.id).addr)
        if key in objects:
            continue
        attrs = {name: _plain(obj.attrs[name], budget) for name in obj.attrs}
        entry: dict[str, Any] = {"attrs": attrs}
        if isinstance(obj, h5py.Group):
            members = []
            for raw_name in obj:
                name = link_name(raw_name) if isinstance(raw_name, bytes) else raw_name
                child = _resolve(h5, obj, name)
                if child is None:
                    continue  # a link that leads nowhere: no member, as h5py's items() skips it
                budget.charge(len(name) + 64)
                members.append([name, str(h5py.h5o.get_info(child.id).addr)])
                stack.append(child)
            entry.update(kind="group", members=members)
        elif isinstance(obj, h5py.Dataset):
            entry.update(kind="dataset", shape=None if obj.shape is None else list(obj.shape), dtype=_h5py_dtype(obj))
        else:
            entry.update(kind="other")
        objects[key] = entry
    return {"objects": objects, "root": root}


def _plain(value: Any, budget: Budget) -> Any:
    """An h5py attribute value as plain Python, as the parser gives it (Node.attrs)."""
    import h5py  # type: ignore[import-untyped]

    if isinstance(value, h5py.Empty):
        return None
    if getattr(value, "ndim", 0):  # an array; numpy scalars and 0-d arrays have ndim 0
        value = value.ravel().tolist()
    elif hasattr(value, "tolist"):
        value = value.tolist()
    for item in value if isinstance(value, list) else [value]:
        budget.charge(len(item) if isinstance(item, (str, bytes)) else 8)
    return value


def _h5py_dtype(dataset: Any) -> str:
    """Dataset.dtype, from h5py: the same names the parser gives."""
    import h5py  # type: ignore[import-untyped]

    cls = dataset.id.get_type().get_class()
    if cls == h5py.h5t.STRING or (cls == h5py.h5t.VLEN and h5py.check_string_dtype(dataset.dtype) is not None):
        return "string"
    return CLASS_NAMES.get(cls) or str(dataset.dtype.name)


def _read_h5py(h5: Any, path: str) -> Any:
    """A dataset's values, read by h5py once the checks the parser makes on its own reads pass."""
    import numpy as np

    node = _dataset_at(h5, path)
    _check_storage(node)
    value = np.asarray(node[()])
    if value.dtype.kind not in "iufV" or value.dtype.hasobject:
        raise Damaged(f"h5py reads it as {value.dtype}, not as numbers")
    return np.asarray(value, order="C")  # not ascontiguousarray: that makes a scalar 1-d


def _dataset_at(h5: Any, path: str) -> Any:
    import h5py  # type: ignore[import-untyped]

    node: Any = h5
    for part in path.split("/"):
        if part in ("", "."):
            continue
        node = _resolve(h5, node, part) if isinstance(node, h5py.Group) else None
        if node is None:
            break
    if not isinstance(node, h5py.Dataset):
        raise Damaged(f"h5py finds no dataset at {path}")
    return node


def _check_storage(node: Any) -> None:
    """Refuse a dataset whose values live in other files, or that stores fewer bytes than it declares."""
    import h5py  # type: ignore[import-untyped]

    plist = node.id.get_create_plist()
    if plist.get_external_count():
        names = ", ".join(shown(plist.get_external(i)[0]) for i in range(min(plist.get_external_count(), 3)))
        raise OutsideFile(f"keeps its values in other files, {names} (HDF5 external storage)")
    layout = plist.get_layout()
    if layout == h5py.h5d.VIRTUAL:
        names = ", ".join(shown(os.fsencode(plist.get_virtual_filename(i))) for i in range(plist.get_virtual_count()))
        raise OutsideFile(f"is an HDF5 virtual dataset, which reads its values from {names}")
    if node.shape is None:
        raise Damaged("a null dataspace: the dataset holds no value")
    declared, stored = node.dtype.itemsize * product(node.shape), node.id.get_storage_size()
    if layout == h5py.h5d.CHUNKED:
        expected = product(-(-d // c) for d, c in zip(node.shape, node.chunks))
        present = node.id.get_num_chunks()
        if present != expected:
            raise Damaged(
                f"it declares {declared} bytes in {expected} chunks but the file stores {present} of "
                f"them ({stored} bytes): a partly written dataset"
            )
    # HDF5 lets a dataset declare any shape and store nothing (unwritten space reads as the fill
    # value): refuse what no stored, or compressed, bytes could hold.
    if declared > max(stored, 1) * MAX_DEFLATE_RATIO:
        raise Damaged(f"it declares {declared} bytes but the file stores {stored} for it")
    if declared and not stored:
        raise Damaged(f"it declares {declared} bytes but the file stores none of them")
