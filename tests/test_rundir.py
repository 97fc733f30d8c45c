"""The run-directory floor on its own (no JAX): the manifest and what it says a directory is,
the one store's round trip, digest, damage and partial writes, and the atomic files."""

import json
import shutil

import numpy as np
import pytest

from meta_evo.errors import RunDirError
from meta_evo.rundir import io, layout
from meta_evo.rundir.store import CheckpointError, Store


@pytest.mark.parametrize("kind", layout.KINDS)
def test_create_writes_the_manifest_and_kind_of_reads_it(tmp_path, kind):
    out = layout.create(tmp_path / "a" / kind, kind)
    assert json.loads((out / "manifest.json").read_text()) == {"kind": kind, "format": 2}
    assert layout.kind_of(out) == kind
    with pytest.raises(RunDirError, match="exists already"):
        layout.create(out, kind)


def test_kind_of_refuses_what_it_cannot_use(tmp_path):
    with pytest.raises(RunDirError, match="no such run directory"):
        layout.kind_of(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunDirError, match="not a run directory"):
        layout.kind_of(tmp_path / "empty")
    old = tmp_path / "old"  # written before manifests: a config and nothing saying what it is
    old.mkdir()
    (old / "config.yaml").write_text("seed: 0\n")
    with pytest.raises(RunDirError, match="another version of meta-evo.*meta-evo run\\|sweep"):
        layout.kind_of(old)
    (old / "manifest.json").write_text(json.dumps({"kind": "sweep", "format": 1}))
    with pytest.raises(RunDirError, match="format 1"):
        layout.kind_of(old)
    (old / "manifest.json").write_text("{")
    with pytest.raises(RunDirError, match="not readable"):
        layout.kind_of(old)
    with pytest.raises(ValueError, match="kind"):
        layout.write_manifest(old, "notebook")


def _arrays():
    return {"a00000": np.arange(6, dtype=np.float32).reshape(2, 3),
            "a00001": np.array(7, np.int64), "a00002": np.array([True, False])}


def test_store_round_trip_is_exact_and_keeps_the_newest(tmp_path):
    store = Store(tmp_path / "ck", tmp_path / "ck.damaged", keep=2, keep_steps=(0,))
    for step in range(4):
        store.save(step, {k: v + step if v.dtype != bool else v for k, v in _arrays().items()},
                   {"structure": ["l", []], "note": step})
    assert store.steps() == [0, 2, 3]  # the 2 newest and step 0
    extra = store.read_extra(3)
    assert extra["note"] == 3 and extra["format"] == 2 and len(extra["sha256"]) == 64
    got = store.read(3, extra)
    for k, v in _arrays().items():
        want = v + 3 if v.dtype != bool else v
        assert got[k].dtype == want.dtype and got[k].tobytes() == want.tobytes()


def test_store_digest_catches_changed_bytes_and_newest_good_falls_back(tmp_path):
    store = Store(tmp_path / "ck", tmp_path / "bad")
    for step in (0, 1):
        store.save(step, _arrays(), {"structure": ["n"], "step": step})
    extra = store.read_extra(1)
    extra["specs"]["a00000"] = ["<f4", [3, 2]]  # what the bytes mean has changed
    with pytest.raises(CheckpointError):
        store.read(1, extra)
    (tmp_path / "ck" / "1" / "extra" / "metadata").write_text("{garbage")
    shutil.copytree(tmp_path / "ck" / "0", tmp_path / "ck" / "2.orbax-checkpoint-tmp-1")
    warned = []
    step, got = store.newest_good(lambda s, e, a: (e["step"], a), warned.append,
                                  lambda s: f"checkpoint {s}")
    assert step == 0 and got[0] == 0 and np.array_equal(got[1]["a00000"], _arrays()["a00000"])
    assert len(warned) == 2 and "unfinished checkpoint write" in warned[0]
    assert warned[1].startswith("checkpoint 1 is damaged") and "using checkpoint 0" in warned[1]
    assert sorted(p.name for p in (tmp_path / "bad").iterdir()) == ["1", "2.orbax-checkpoint-tmp-1"]
    assert store.steps() == [0]


def test_atomic_files(tmp_path):
    io.write_json(tmp_path / "x.json", {"a": [1, None]})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": [1, None]}
    io.append_jsonl(tmp_path / "m.jsonl", [{"g": 1}, {"g": 2}])
    with (tmp_path / "m.jsonl").open("a") as f:
        f.write('{"g": 3')  # torn by a kill mid-write
    assert io.read_jsonl(tmp_path / "m.jsonl") == [{"g": 1}, {"g": 2}]
    io.write_lines(tmp_path / "m.jsonl", ['{"g": 1}'])
    assert io.read_jsonl(tmp_path / "m.jsonl") == [{"g": 1}]
    assert io.to_py(np.array([1.5, np.nan, np.inf])) == [1.5, None, None]
    assert not list(tmp_path.glob("*.tmp"))
