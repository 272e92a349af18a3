"""``interests predict`` and ``sendtime predict`` on model files that are not whole
models: missing, empty, truncated, of the other kind, hand-made with a header of the
wrong shape or missing or damaged arrays. Each is one line naming the file, never a
traceback."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.learning.conftest import DAY, T0, Run

Damage = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A whole model of each kind, fitted once from the shop's events."""
    from server.cli.__main__ import main  # noqa: PLC0415
    from tests.learning.conftest import HEADER, shop_rows  # noqa: PLC0415

    folder = tmp_path_factory.mktemp("models")
    events = folder / "events.csv"
    events.write_text(HEADER + "".join(shop_rows()))
    out = {kind: folder / f"{kind}.npz" for kind in ("interests", "sendtime")}
    for kind, path in out.items():
        assert main([kind, "fit", "--events", str(events), "--out", str(path)]) == 0
    return out


def predict(geopush: Run, kind: str, model: Path, out: Path) -> int:
    at = ("--at", T0 + 30 * DAY) if kind == "interests" else ()
    return geopush(kind, "predict", "--model", model, *at, "--out", out)


def one_line_naming(err: str, path: Path, said: str) -> bool:
    return "Traceback" not in err and f"{path}: {said}" in err


def _rewritten(source: Path, target: Path, damage: Damage) -> Path:
    with np.load(source, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    damage(arrays)
    np.savez(target, **arrays)
    return target


def _header(value: Any) -> Damage:
    def damage(arrays: dict[str, Any]) -> None:
        arrays["header"] = np.frombuffer(json.dumps(value).encode(), dtype=np.uint8)
    return damage


def _edit_header(**changes: Any) -> Damage:
    def damage(arrays: dict[str, Any]) -> None:
        header = json.loads(arrays["header"].tobytes())
        arrays["header"] = np.frombuffer(json.dumps({**header, **changes}).encode(),
                                         dtype=np.uint8)
    return damage


def _array(name: str, value: Any) -> Damage:
    def damage(arrays: dict[str, Any]) -> None:
        if value is None:
            del arrays[name]
        else:
            arrays[name] = value
    return damage


def _file_bytes(content: Callable[[bytes], bytes]) -> Callable[[Path, Path], Path]:
    def make(source: Path, target: Path) -> Path:
        target.write_bytes(content(source.read_bytes()))
        return target
    return make


@pytest.mark.parametrize("kind", ["interests", "sendtime"])
@pytest.mark.parametrize(("make", "said"), [
    (_file_bytes(lambda _: b""), "not a geopush {kind} model file"),
    (_file_bytes(lambda raw: raw[:len(raw) // 2]), "not a geopush {kind} model file"),
    (_file_bytes(lambda raw: raw[:64]), "not a geopush {kind} model file"),
    (_file_bytes(lambda _: b"user_id,ts,kind\n"), "not a geopush {kind} model file"),
], ids=["empty", "truncated", "first-bytes", "a-csv"])
def test_an_empty_or_truncated_model_file_is_named_not_a_traceback(  # noqa: PLR0917
        tmp_path: Path, models: dict[str, Path], geopush: Run,
        capsys: pytest.CaptureFixture[str], kind: str,
        make: Callable[[Path, Path], Path], said: str) -> None:
    broken = make(models[kind], tmp_path / "broken.npz")
    assert predict(geopush, kind, broken, tmp_path / "out.csv") == 2
    assert one_line_naming(capsys.readouterr().err, broken, said.format(kind=kind))


def test_a_missing_file_a_folder_and_numpy_files_that_are_no_model_are_named(
        tmp_path: Path, models: dict[str, Path], geopush: Run,
        capsys: pytest.CaptureFixture[str]) -> None:
    plain_zip = tmp_path / "notes.npz"
    with zipfile.ZipFile(plain_zip, "w") as z:
        z.writestr("notes.txt", "hello")
    one_array = tmp_path / "zeros.npy"
    np.save(one_array, np.zeros(3))
    for path, said in ((tmp_path / "nowhere.npz", "No such file or directory"),
                       (tmp_path, "Is a directory"),
                       (plain_zip, "not a geopush sendtime model file"),
                       (one_array, "not a geopush sendtime model file"),
                       (models["interests"], "not a geopush sendtime model (it is "
                                             "'geopush.interests')")):
        assert predict(geopush, "sendtime", path, tmp_path / "out.csv") == 2
        assert one_line_naming(capsys.readouterr().err, path, said)


DAMAGED: list[tuple[str, Damage, str]] = [
    ("sendtime", _header([1, 2]), "not a geopush sendtime model file (its header is not "
                                  "an object)"),
    ("interests", _header("geopush.interests"), "not a geopush interests model file (its "
                                                "header is not an object)"),
    ("sendtime", _header({"format": "geopush.sendtime", "version": 1}),
     "a damaged geopush sendtime model: it has no 'params'"),
    ("interests", _header({"format": "geopush.interests", "version": 1}),
     "a damaged geopush interests model: it has no 'until_t'"),
    ("sendtime", _edit_header(params=5), "a damaged geopush sendtime model: "),
    ("sendtime", _array("hour_counts", None), "a damaged geopush sendtime model: it has no "
                                              "'hour_counts'"),
    ("sendtime", _array("hour_counts", np.zeros((4, 3))),
     "a damaged geopush sendtime model: array hour_counts has 3 along axis 1, not 24"),
    ("sendtime", _array("weekday_counts", np.zeros((9, 7))),
     "a damaged geopush sendtime model: array weekday_counts has 9 along axis 0, not 4"),
    ("sendtime", _array("segment_weights", np.array(["a"])),
     "a damaged geopush sendtime model: array segment_weights holds <U1 in 1 dimensions, "
     "not finite numbers in 1"),
    ("sendtime", _array("segment_profiles", np.full((1, 24), np.nan)),
     "a damaged geopush sendtime model: array segment_profiles holds NaN or infinite"),
    ("sendtime", _array("users__offsets", np.array([0, 99])),
     "a damaged geopush sendtime model: the offsets of users do not cut its bytes"),
    ("interests", _array("state_keys", np.zeros(6)),
     "a damaged geopush interests model: array state_keys holds float64 in 1 dimensions, "
     "not integers in 1"),
    ("interests", _array("state_values", np.zeros((6, 2))),
     "a damaged geopush interests model: array state_values has 2 along axis 1"),
    ("interests", _array("booster", np.frombuffer(b"tree\nnonsense", dtype=np.uint8)),
     "a damaged geopush interests model: its ranker does not load"),
    ("interests", _array("categories__offsets", np.array([0, 3, 1, 29])),
     "a damaged geopush interests model: the offsets of categories do not cut its bytes"),
    ("interests", _array("users__bytes", np.frombuffer(b"\xff" * 17, dtype=np.uint8)),
     "a damaged geopush interests model: 'utf-8' codec can't decode"),
]


@pytest.mark.parametrize(("kind", "damage", "said"), DAMAGED,
                         ids=[f"{k}-{s[:50]}" for k, _, s in DAMAGED])
def test_a_model_with_a_damaged_header_or_array_is_named_not_a_traceback(  # noqa: PLR0917
        tmp_path: Path, models: dict[str, Path], geopush: Run,
        capsys: pytest.CaptureFixture[str], kind: str, damage: Damage, said: str) -> None:
    broken = _rewritten(models[kind], tmp_path / "damaged.npz", damage)
    assert predict(geopush, kind, broken, tmp_path / "out.csv") == 2
    err = capsys.readouterr().err
    assert one_line_naming(err, broken, said), err


@pytest.mark.parametrize("kind", ["interests", "sendtime"])
def test_a_whole_model_still_predicts(tmp_path: Path, models: dict[str, Path],
                                      geopush: Run, kind: str) -> None:
    out = tmp_path / "out.csv"
    assert predict(geopush, kind, models[kind], out) == 0
    assert len(out.read_text().splitlines()) > 1


def _ranker(names: list[str]) -> Damage:
    """Replaces the model's ranker with one fitted on random rows of ``names``."""
    import lightgbm as lgb  # noqa: PLC0415

    rng = np.random.default_rng(0)
    data = lgb.Dataset(rng.random((60, len(names))), label=np.r_[np.zeros(30), np.ones(30)],
                       feature_name=names, params={"verbose": -1})
    text = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 4,
                      "min_data_in_leaf": 5}, data, num_boost_round=3).model_to_string()
    return _array("booster", np.frombuffer(text.encode(), dtype=np.uint8))


def test_a_ranker_fitted_before_the_last_features_were_added_still_predicts(
        tmp_path: Path, models: dict[str, Path], geopush: Run) -> None:
    from triggers.learning.features import FEATURES  # noqa: PLC0415

    older = _rewritten(models["interests"], tmp_path / "older.npz",
                       _ranker(list(FEATURES[:-2])))
    out = tmp_path / "out.csv"
    assert predict(geopush, "interests", older, out) == 0
    assert len(out.read_text().splitlines()) > 1


def test_a_ranker_of_features_this_geopush_does_not_compute_is_named(
        tmp_path: Path, models: dict[str, Path], geopush: Run,
        capsys: pytest.CaptureFixture[str]) -> None:
    from triggers.learning.features import FEATURES  # noqa: PLC0415

    other = _rewritten(models["interests"], tmp_path / "other.npz",
                       _ranker([*FEATURES[:5], "weather", *FEATURES[6:]]))
    assert predict(geopush, "interests", other, tmp_path / "out.csv") == 2
    err = capsys.readouterr().err
    assert one_line_naming(err, other, "a damaged geopush interests model: its ranker reads "
                           "features this geopush does not compute (fit it again)"), err
