"""``geopush events import``: a file into a running service (its events stored and
learned from), a re-import counted as duplicates, and a bad line stopping
the import before anything is sent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from server.app import create_app
from server.auth import DEFAULT_TENANT, Role, generate_key, hash_key, new_key_id
from server.cli.__main__ import main
from server.settings import Settings
from server.store import MemoryStore
from triggers.behaviour.rules import DEFAULT_TAG_RULES, learn_tags

pytestmark = pytest.mark.asyncio(loop_scope="session")

NOON = 1_772_452_800.0


def write_csv(path: Path, rows: int) -> Path:
    lines = ["user_id,ts,kind,item_id,category,price,event_id,item_name,tags"]
    for i in range(rows):
        kind = "purchase" if i % 10 == 9 else "view"
        lines.append(f"mum-{i % 7},{NOON + i},{kind},sku-{i % 13},baby,19.5,e{i},"
                     f"Bottle {i % 13},baby;feeding")
    path.write_text("\n".join(lines) + "\n")
    return path


async def serve(store: MemoryStore) -> tuple[TestServer, str]:
    server = TestServer(create_app(Settings(timer_interval_s=3600.0, outbox_workers=0),
                                   store=store, clock=lambda: NOON + 3600))
    await server.start_server()
    key = generate_key()
    await store.ensure_tenant(DEFAULT_TENANT)
    await store.create_key(DEFAULT_TENANT, key_id=new_key_id(), key_hash=hash_key(key),
                           role=Role.SDK, name="import")
    return server, key


async def test_a_csv_file_is_imported_once_and_learned_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = MemoryStore()
    server, key = await serve(store)
    try:
        path = write_csv(tmp_path / "events.csv", 2500)
        args = ["events", "import", str(path), "--target", str(server.make_url("/")),
                "--key", key]
        assert await asyncio.to_thread(main, args) == 0
        first = capsys.readouterr()
        assert f"{path}: 2,500 events: 2,500 stored, 0 already there, 0 rejected" in first.out
        assert await asyncio.to_thread(main, args) == 0
        assert "0 stored, 2,500 already there" in capsys.readouterr().out
    finally:
        await server.close()
    features = await store.get_features(DEFAULT_TENANT, "mum-0")
    assert features is not None
    (tag,) = learn_tags(DEFAULT_TAG_RULES, features, NOON + 3600)
    assert tag.tag == "mother_baby" and tag.reason.startswith("36 purchases of baby")


@pytest.mark.parametrize("case", [
    (15, "19.5", lambda: "cheap", [":16: price: "]),
    # The service refuses it (future_ts); checked first, the lines above it are not sent
    # and the import does not stop half done (nor slip into a database unchecked).
    (12, f"{NOON + 11:.0f}", lambda: f"{time.time() + 7200:.0f}", [
        ":13: ts: 7",  # 7200 s, or 7199 on a slow machine
        " s ahead of this machine's clock (more than 300 s: future_ts)"]),
], ids=["bad price", "hours ahead"])
async def test_a_bad_line_stops_the_import_before_anything_is_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
    case: tuple[int, str, Callable[[], str], list[str]],
) -> None:
    row, old, new, said = case  # the row, what of it changes into what, what is said
    store = MemoryStore()
    server, key = await serve(store)
    path = write_csv(tmp_path / "events.csv", 20)
    lines = path.read_text().splitlines()
    assert old in lines[row]
    lines[row] = lines[row].replace(old, new())
    path.write_text("\n".join(lines) + "\n")
    try:
        status = await asyncio.to_thread(main, ["events", "import", str(path), "--target",
                                                str(server.make_url("/")), "--key", key])
    finally:
        await server.close()
    assert status == 2
    err = capsys.readouterr().err
    assert all(f"{path}{words}" in err if words.startswith(":") else words in err
               for words in said), err
    assert await store.list_behaviour(DEFAULT_TENANT, "mum-0") == []


async def test_target_or_database_is_required(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = write_csv(tmp_path / "events.csv", 1)
    assert await asyncio.to_thread(main, ["events", "import", str(path)]) == 2
    assert "--target" in capsys.readouterr().err

