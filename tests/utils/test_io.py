"""Tests of medssl3d.utils.io: atomic writers and the weights-only checkpoint reader."""

from __future__ import annotations

import json
import math
import os
import re
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from medssl3d.utils import atomic_torch_save, atomic_write_json, load_weights, require_file
from medssl3d.utils.io import atomic_write


class _Custom:
    """A picklable object that ``torch.load(weights_only=True)`` must refuse."""

    def __init__(self) -> None:
        self.value = 3


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------- atomic_write


@pytest.mark.parametrize("mode,payload", [("wb", b"new bytes"), ("w", "new text\n")])
def test_atomic_write_replaces_content(tmp_path, mode, payload):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    result = atomic_write(target, lambda f: f.write(payload), mode=mode)
    assert result == target
    got = target.read_bytes() if mode == "wb" else target.read_text()
    assert got == payload
    assert _listing(tmp_path) == ["out.bin"]
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644  # not mkstemp's 0o600


def test_atomic_write_creates_parent_folders(tmp_path):
    target = tmp_path / "a" / "b" / "c.txt"
    atomic_write(str(target), lambda f: f.write("x"), mode="w")
    assert target.read_text() == "x"


@pytest.mark.parametrize("error", [RuntimeError("disk on fire"), KeyboardInterrupt()])
def test_atomic_write_failure_keeps_previous_file(tmp_path, error):
    target = tmp_path / "ckpt.pt"
    target.write_bytes(b"previous content")

    def writer(f):
        f.write(b"half of the new")
        f.flush()
        raise error

    with pytest.raises(type(error)):
        atomic_write(target, writer)
    assert target.read_bytes() == b"previous content"
    assert _listing(tmp_path) == ["ckpt.pt"]  # no .ckpt.pt.*.tmp left behind


def test_atomic_write_failure_without_previous_file_leaves_nothing(tmp_path):
    with pytest.raises(ValueError):
        atomic_write(tmp_path / "new.txt", lambda f: (_ for _ in ()).throw(ValueError("boom")), mode="w")
    assert _listing(tmp_path) == []


# ---------------------------------------------------------------- atomic_torch_save / load_weights


def test_atomic_torch_save_readable_weights_only(tmp_path):
    state = {
        "w": torch.arange(6.0).reshape(2, 3),
        "step": 7,
        "name": "unet",
        "hist": [0.5, 0.25],
        "n": {"b": torch.ones(2)},
    }
    path = atomic_torch_save(state, tmp_path / "ckpt" / "model.pt")
    loaded = torch.load(path, weights_only=True)
    assert loaded.keys() == state.keys()
    torch.testing.assert_close(loaded["w"], state["w"])
    torch.testing.assert_close(loaded["n"]["b"], state["n"]["b"])
    assert (loaded["step"], loaded["name"], loaded["hist"]) == (7, "unet", [0.5, 0.25])
    again = load_weights(path)
    torch.testing.assert_close(again["w"], state["w"])
    assert _listing(path.parent) == ["model.pt"]


def test_atomic_torch_save_unpicklable_keeps_previous_file(tmp_path):
    path = atomic_torch_save({"w": torch.zeros(2)}, tmp_path / "model.pt")
    with pytest.raises(Exception):
        atomic_torch_save({"fn": lambda x: x}, path)  # lambdas cannot be pickled
    torch.testing.assert_close(load_weights(path)["w"], torch.zeros(2))
    assert _listing(tmp_path) == ["model.pt"]


def test_load_weights_map_location(tmp_path):
    path = atomic_torch_save({"w": torch.ones(3)}, tmp_path / "m.pt")
    assert load_weights(path, map_location=torch.device("cpu"))["w"].device.type == "cpu"


def test_load_weights_missing_file_names_path(tmp_path):
    missing = tmp_path / "nope" / "model.pt"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        load_weights(missing)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_weights(tmp_path)  # a folder is not a checkpoint


def _write_custom(path):
    torch.save({"obj": _Custom()}, path)


def _write_garbage(path):
    Path(path).write_bytes(b"\x00\x01 this is not a checkpoint \xff" * 10)


def _write_empty(path):
    Path(path).write_bytes(b"")


def _write_truncated(path):
    torch.save({"w": torch.zeros(100)}, path)
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("writer", [_write_custom, _write_garbage, _write_empty, _write_truncated])
def test_load_weights_foreign_file_value_error(tmp_path, writer):
    path = tmp_path / "bad.pt"
    writer(path)
    with pytest.raises(ValueError, match=r"weights_only=True") as info:
        load_weights(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("obj,type_name", [([torch.zeros(2)], "list"), (torch.zeros(2), "Tensor"), (3, "int")])
def test_load_weights_non_dict_value_error(tmp_path, obj, type_name):
    path = atomic_torch_save(obj, tmp_path / "x.pt")
    with pytest.raises(ValueError, match=rf"holds a {type_name}, expected a dictionary"):
        load_weights(path)


# ---------------------------------------------------------------- atomic_write_json


def test_atomic_write_json_converts_tensors_numpy_and_paths(tmp_path):
    obj = {
        "tensor": torch.tensor([[1.0, 2.5], [3.0, 4.0]]),
        "scalar_tensor": torch.tensor(7),
        "array": np.arange(3, dtype=np.int64),
        "np_float32": np.float32(0.5),
        "np_int": np.int64(12),
        "path": Path("/data/Task07") / "imagesTr",
        "nested": [{"p": Path("a/b")}],
    }
    path = atomic_write_json(obj, tmp_path / "out.json")
    text = path.read_text()
    assert text.endswith("}\n")
    assert json.loads(text) == {
        "tensor": [[1.0, 2.5], [3.0, 4.0]],
        "scalar_tensor": 7,
        "array": [0, 1, 2],
        "np_float32": 0.5,
        "np_int": 12,
        "path": "/data/Task07/imagesTr",
        "nested": [{"p": "a/b"}],
    }
    assert '\n  "tensor"' in text  # indent=2


def test_atomic_write_json_indent_none_single_line(tmp_path):
    path = atomic_write_json({"a": 1}, tmp_path / "o.json", indent=None)
    assert path.read_text() == '{"a": 1}\n'


def test_atomic_write_json_nan_allowed_by_default(tmp_path):
    path = atomic_write_json({"loss": float("nan")}, tmp_path / "o.json")
    assert "NaN" in path.read_text()
    assert math.isnan(json.loads(path.read_text())["loss"])


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), np.array([1.0, np.nan]), torch.tensor([np.inf])])
def test_atomic_write_json_rejects_nan_keeps_previous(tmp_path, bad):
    path = atomic_write_json({"ok": 1}, tmp_path / "metrics.json")
    with pytest.raises(ValueError):
        atomic_write_json({"loss": bad}, path, allow_nan=False)
    assert json.loads(path.read_text()) == {"ok": 1}
    assert _listing(tmp_path) == ["metrics.json"]


def test_atomic_write_json_unserialisable_type_error(tmp_path):
    with pytest.raises(TypeError, match="set is not JSON serialisable"):
        atomic_write_json({"s": {1, 2}}, tmp_path / "o.json")
    assert _listing(tmp_path) == []


# ---------------------------------------------------------------- require_file


def test_require_file_returns_string(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"x")
    assert require_file(path) == str(path)
    assert isinstance(require_file(path), str)


@pytest.mark.parametrize(
    "hint,pattern",
    [
        ("", r"Required file not found: .*model\.pt\.$"),
        ("train first", r"Required file not found: .*model\.pt; train first\.$"),
    ],
)
def test_require_file_missing(tmp_path, hint, pattern):
    with pytest.raises(FileNotFoundError, match=pattern):
        require_file(tmp_path / "model.pt", hint)


def test_require_file_folder_is_not_a_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path))):
        require_file(tmp_path)
