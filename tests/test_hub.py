"""Push, pull and list styles against a local Hub-protocol server (tests/hub_server.py), driven by the
real huggingface_hub client; offline use, auth failures, pickles, and faults mid-commit/mid-download."""

from __future__ import annotations

import json
import os
import pickle
import re
import time
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import constants

from conftest import REPO, make_style, smooth_image
from fastnst import HubError, StyleNotFoundError, Stylizer, UnsafeWeightsError
from fastnst.card import save_model_card
from fastnst.cli import main
from fastnst.errors import InvalidStyleError
from fastnst.files import folder_bytes, human_size
from fastnst.hub import PullLimits, cached_styles, list_hub_styles, pull_style, push_style
from fastnst.registry import available_styles
from hub_server import FakeHub, front_matter

STYLE_FILES = {"config.json", "model.safetensors", "README.md", "style.jpg", "example.jpg"}


@pytest.fixture
def hub(monkeypatch):
    """A fresh fake Hub; huggingface_hub pointed at it (conftest already isolates its cache and token)."""
    server = FakeHub().start()
    server.patch_client(monkeypatch)
    yield server
    server.stop()


@pytest.fixture
def alice(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_alice_token")


@pytest.fixture
def offline(monkeypatch):
    """HF_HUB_OFFLINE=1 for this process (huggingface_hub reads the variable at import, so patch it too)."""

    def switch() -> None:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)

    return switch


def full_style(folder: Path, seed: int = 0, name: str = "starry") -> Path:
    make_style(folder, seed=seed, name=name, title="The Starry Night", artist="Vincent van Gogh", year=1889,
               licence="public domain")
    smooth_image(96, 64, seed=10 + seed).save(folder / "style.jpg", quality=90)
    smooth_image(96, 64, seed=20 + seed).save(folder / "example.jpg", quality=90)
    save_model_card(folder)
    return folder


@pytest.fixture
def style_dir(tmp_path) -> Path:
    return full_style(tmp_path / "starry")


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def stylize(ref: str | Path, photo) -> np.ndarray:
    return np.asarray(Stylizer.from_pretrained(ref, device="cpu", precision="fp32")(photo, max_size=None))


def cache_files(repo_id: str) -> list[Path]:
    storage = Path(constants.HF_HUB_CACHE) / ("models--" + repo_id.replace("/", "--"))
    return sorted(p for p in storage.rglob("*") if p.is_file() or p.is_symlink())


# --- the round trip -----------------------------------------------------------------------------

def test_push_list_pull_round_trip_is_bit_identical(hub, alice, style_dir, photo, capsys):
    (style_dir / "checkpoint.pt").write_bytes(b"\x80\x04 a training checkpoint, a pickle")
    before = snapshot(style_dir)
    assert main(["push", str(style_dir), "--repo-id", "alice/starry"]) == 0
    assert capsys.readouterr().out.strip() == f"{hub.url}/alice/starry"
    assert snapshot(style_dir) == before, "push must not write to the style folder"

    remote = hub.files("alice/starry")
    assert set(remote) == STYLE_FILES | {".gitattributes"}, "only style files are pushed, never pickles"
    for name in STYLE_FILES - {"README.md"}:
        assert remote[name] == (style_dir / name).read_bytes()
    # The card was regenerated for the repo id, and its metadata makes the repo discoverable.
    meta = front_matter(remote["README.md"])
    assert meta["library_name"] == "fastnst" and meta["pipeline_tag"] == "image-to-image"
    assert {"fastnst", "style-transfer", "fast-neural-style"} <= set(meta["tags"])
    assert 'Stylizer.from_pretrained("alice/starry")' in remote["README.md"].decode()
    # The client spoke the protocol: card validated, upload modes asked, one NDJSON commit with base64 files.
    assert hub.requests("POST", "/api/validate-yaml") and hub.requests("POST", "/preupload/main")
    (commit,) = hub.commit_payloads
    assert commit[0]["key"] == "header" and commit[0]["value"]["parentCommit"]
    assert {line["value"]["path"] for line in commit[1:]} == STYLE_FILES
    assert all(line["key"] == "file" and line["value"]["encoding"] == "base64" for line in commit[1:])

    # Discovery by tag: other authors' styles are found (over several pages), untagged repos are not.
    for i in range(3):
        hub.add_repo(f"bob/style-{i}", {"README.md": b"---\nlibrary_name: fastnst\ntags: [fastnst]\n---\n",
                                        "config.json": b"{}"})
    hub.add_repo("bob/not-a-style", {"README.md": b"---\nlibrary_name: transformers\n---\n"})
    found = {s.ref: s for s in list_hub_styles()}
    assert set(found) == {"alice/starry", "bob/style-0", "bob/style-1", "bob/style-2"}
    assert len(hub.requests("GET", "/api/models")) >= 2, "the listing should have followed the Link header"
    starry = found["alice/starry"]
    assert (starry.name, starry.title, starry.source) == ("starry", "The Starry Night", "hub")
    assert starry.size_bytes == (style_dir / "model.safetensors").stat().st_size
    assert [s.ref for s in list_hub_styles(author="alice")] == ["alice/starry"]
    assert [s.ref for s in list_hub_styles(search="style-1")] == ["bob/style-1"]

    assert main(["list", "--search", "starry"]) == 0
    out = capsys.readouterr().out
    assert "alice/starry" in out and "hub" in out and "bob/" not in out

    # Pull into an empty cache (listing cached config.json files), then load by repo id: same output.
    shutil.rmtree(constants.HF_HUB_CACHE)
    folder = pull_style("alice/starry")
    assert folder.is_relative_to(Path(constants.HF_HUB_CACHE))
    assert {p.name for p in folder.iterdir()} == STYLE_FILES
    assert (folder / "model.safetensors").read_bytes() == (style_dir / "model.safetensors").read_bytes()
    assert hub.requests("HEAD", "/alice/starry/resolve/") and hub.requests("GET", "/api/models/alice/starry/tree/")
    np.testing.assert_array_equal(stylize("alice/starry", photo), stylize(style_dir, photo))


def test_offline_pull_and_list_use_the_cache(hub, alice, style_dir, photo, offline, capsys):
    push_style(style_dir, "alice/starry")
    online = pull_style("alice/starry")
    offline()
    n = len(hub.log)
    assert pull_style("alice/starry") == online
    np.testing.assert_array_equal(stylize("alice/starry", photo), stylize(style_dir, photo))
    assert len(hub.log) == n, "offline mode must not touch the network"

    other = make_style(style_dir.parent / "mine", name="mine")
    assert main(["list", "--styles", str(other)]) == 0
    captured = capsys.readouterr()
    rows = {line.split()[0]: line.split() for line in captured.out.splitlines()[1:]}
    assert rows["mine"][2] == "local" and rows["starry"][1:3] == ["alice/starry", "cache"]
    assert "Hub not reachable" in captured.err and "HF_HUB_OFFLINE" in captured.err

    with pytest.raises(StyleNotFoundError, match="alice/never-pulled.*not in the local cache.*Connect to the network") as e:
        pull_style("alice/never-pulled")
    assert "fastnst pull" not in str(e.value)  # the advice to a user who just ran `fastnst pull` is not to run it
    assert main(["pull", "alice/never-pulled"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "alice/never-pulled" in err and "Traceback" not in err


def test_unreachable_hub_gives_cached_styles_and_clear_errors(hub, alice, style_dir, monkeypatch, capsys):
    push_style(style_dir, "alice/starry")
    pull_style("alice/starry")
    hub.stop()  # connection refused from now on
    assert pull_style("alice/starry").is_dir()
    with pytest.raises(StyleNotFoundError, match="alice/other"):
        pull_style("alice/other")
    styles, warnings = available_styles("hub:alice/starry,author:alice,alice/other")
    assert [(s.ref, s.source) for s in styles] == [("alice/starry", "cache")]
    assert len(warnings) == 3 and all("Hub not reachable" in w for w in warnings)
    assert "alice/other" in warnings[2] and "fastnst pull alice/other" in warnings[2]
    assert main(["list"]) == 0
    captured = capsys.readouterr()
    assert "alice/starry" in captured.out and "Hub not reachable" in captured.err
    with pytest.raises(HubError, match="could not be reached.*was not changed"):
        push_style(style_dir, "alice/starry")


def test_offline_cli_in_a_fresh_process(hub, alice, style_dir):
    """HF_HUB_OFFLINE=1 as a user sets it: in the environment of a new `fastnst` process."""
    push_style(style_dir, "alice/starry")
    folder = pull_style("alice/starry")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": hub.url, "PYTHONPATH": str(REPO)}
    code = ("import sys; from fastnst.cli import main; "
            "rc1 = main(['pull', 'alice/starry']); rc2 = main(['pull', 'nobody/unknown']); sys.exit(rc1 * 10 + rc2)")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert done.stdout.strip() == str(folder)
    assert "nobody/unknown" in done.stderr and "Traceback" not in done.stderr


# --- auth, pickles, validation ------------------------------------------------------------------

def test_push_without_a_token_names_an_unreachable_hub_first(style_dir, offline):
    """Not logged in and no Hub: the message is about the Hub, which is the first thing to fix."""
    with pytest.raises(HubError, match=r"cannot be reached \(http://127.0.0.1:9/: ConnectError\)") as e:
        push_style(style_dir, "alice/starry", endpoint="http://127.0.0.1:9")
    assert "not logged in" not in str(e.value)
    offline()
    with pytest.raises(HubError, match="cannot be reached .HF_HUB_OFFLINE=1"):
        push_style(style_dir, "alice/starry")


def test_auth_failures_are_one_line_messages(hub, style_dir, monkeypatch, capsys):
    before = snapshot(style_dir)
    with pytest.raises(HubError, match="not logged in.*hf auth login"):
        push_style(style_dir, "alice/starry")
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(HubError, match="rejected the token.*HTTP 401"):
        push_style(style_dir, "alice/starry")
    assert main(["push", str(style_dir), "--repo-id", "alice/starry"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("fastnst: error: push to alice/starry failed") and err.count("\n") == 1
    monkeypatch.setenv("HF_TOKEN", "hf_alice_token")
    with pytest.raises(HubError, match="HTTP 403.*write access"):
        push_style(style_dir, "bob/starry")
    assert hub.repos == {} and snapshot(style_dir) == before
    # A private repo is invisible to others: a clear "not found or private" message, no traceback.
    push_style(style_dir, "alice/secret", private=True)
    monkeypatch.setenv("HF_TOKEN", "hf_bob_token")
    with pytest.raises(StyleNotFoundError, match="alice/secret.*private"):
        pull_style("alice/secret")
    assert [s.ref for s in list_hub_styles()] == []
    monkeypatch.setenv("HF_TOKEN", "hf_expired")
    with pytest.raises(HubError, match="alice/secret: the Hub rejected the token"):
        Stylizer.from_pretrained("alice/secret", device="cpu")


def test_pickle_only_and_fake_safetensors_repos_are_refused(hub, alice, photo):
    config = json.dumps({"channels": 8, "num_residual": 2, "style": {"name": "evil"}}).encode()
    payload = pickle.dumps({"weights": [1, 2, 3]})
    hub.add_repo("mallory/pickled", {"config.json": config, "pytorch_model.bin": payload})
    with pytest.raises(UnsafeWeightsError, match="pytorch_model.bin"):
        pull_style("mallory/pickled")
    with pytest.raises(InvalidStyleError, match="mallory/pickled"):
        Stylizer.from_pretrained("mallory/pickled", device="cpu")
    assert not hub.requests("GET", "pytorch_model.bin"), "pickles must never be downloaded"

    hub.add_repo("mallory/renamed", {"config.json": config, "model.safetensors": payload})
    with pytest.raises(UnsafeWeightsError, match="mallory/renamed.*not safetensors.*removed from the cache"):
        pull_style("mallory/renamed")
    assert not [p for p in cache_files("mallory/renamed") if p.name == "model.safetensors"]
    with pytest.raises(UnsafeWeightsError):
        pull_style("mallory/renamed")  # refused again, not served from the cache


def test_push_validates_the_folder_before_any_request(hub, alice, tmp_path):
    broken = make_style(tmp_path / "broken")
    (broken / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(UnsafeWeightsError):
        push_style(broken, "alice/broken")
    pickled = make_style(tmp_path / "pickled")
    (pickled / "model.safetensors").rename(pickled / "model.pth")
    with pytest.raises(UnsafeWeightsError, match="model.pth"):
        push_style(pickled, "alice/pickled")
    with pytest.raises(InvalidStyleError):
        push_style(tmp_path, "alice/nothing")
    bad_image = make_style(tmp_path / "bad-image")
    (bad_image / "style.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(InvalidStyleError, match="style.jpg"):
        push_style(bad_image, "alice/bad-image")
    with pytest.raises(StyleNotFoundError, match="owner/name"):
        push_style(make_style(tmp_path / "ok"), "no-namespace")
    assert hub.log == []


def test_push_checks_the_weights_against_the_whole_architecture(hub, alice, tmp_path):
    """The check builds the network from config.json's architecture keys: a style with a skip gain (a
    tensor more) pushes, and the same weights under a config that lacks it are refused."""
    from fastnst import TransformerNet

    folder = tmp_path / "gain"
    TransformerNet(channels=8, num_residual=2, input_skip=True, centred_skip=True, skip_gain=True,
                   upsample="bilinear", style={"name": "gain"}).save_pretrained(folder)
    push_style(folder, "alice/gain")
    assert hub.log
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "skip_gain": False}))
    with pytest.raises(InvalidStyleError, match="skip.gain"):
        push_style(folder, "alice/gain2")


# --- faults mid-commit and mid-download ---------------------------------------------------------

@pytest.mark.parametrize("fault, message", [
    ({"commit_status": (500, "internal error")}, "server error.*HTTP 500"),
    ({"commit_status": (409, "conflicting commit")}, "conflict"),
    ({"commit_race": True}, "conflict.*HTTP 412"),
    ({"commit_drop": "before"}, "dropped the connection"),
    ({"commit_drop": "after"}, "dropped the connection"),
    ("down", "could not be reached"),
])
def test_failed_push_leaves_local_folder_intact_and_remote_atomic(hub, alice, tmp_path, fault, message):
    v1 = full_style(tmp_path / "v1", seed=1)
    push_style(v1, "alice/starry")
    old = hub.files("alice/starry")
    v2 = full_style(tmp_path / "v2", seed=2)
    before = snapshot(v2)
    if fault == "down":
        hub.stop()
    else:
        hub.faults.update(fault)
    with pytest.raises(HubError, match=message) as err:
        push_style(v2, "alice/starry")
    assert "was not changed" in str(err.value) and "safe" in str(err.value)
    assert snapshot(v2) == before
    if fault == "down":
        return
    now = {k: v for k, v in hub.files("alice/starry").items() if k != "race.txt"}  # race.txt: the other client's
    assert old["model.safetensors"] != (v2 / "model.safetensors").read_bytes()
    if fault == {"commit_drop": "after"}:  # applied, then the answer was lost: fully updated
        assert all(now[n] == (v2 / n).read_bytes() for n in STYLE_FILES - {"README.md"})
    else:  # refused or cut off: untouched
        assert now == old
    hub.faults.clear()
    push_style(v2, "alice/starry")  # running it again completes the push
    assert hub.files("alice/starry")["model.safetensors"] == (v2 / "model.safetensors").read_bytes()


def test_pull_a_revision(hub, alice, tmp_path, capsys):
    from huggingface_hub import HfApi

    v1, v2 = full_style(tmp_path / "v1", seed=1), full_style(tmp_path / "v2", seed=2)
    push_style(v1, "alice/starry")
    first = HfApi().model_info("alice/starry").sha
    push_style(v2, "alice/starry")
    (main_ref,) = HfApi().list_repo_refs("alice/starry").branches
    assert main_ref.name == "main" and main_ref.target_commit == hub.repos["alice/starry"].head.oid != first
    assert main(["pull", "alice/starry", "--revision", first]) == 0
    old = Path(capsys.readouterr().out.strip())
    assert old.name == first and (old / "model.safetensors").read_bytes() == (v1 / "model.safetensors").read_bytes()
    assert (pull_style("alice/starry") / "model.safetensors").read_bytes() == (v2 / "model.safetensors").read_bytes()
    with pytest.raises(StyleNotFoundError, match="revision"):
        pull_style("alice/starry", revision="no-such-branch")


# --- bounded pulls: a public demo downloads what strangers name ------------------------------------

def test_a_huge_advertised_file_is_refused_before_any_download(hub, alice, style_dir, capsys):
    push_style(style_dir, "alice/huge")
    hub.faults["advertise"] = {"model.safetensors": 20 * 2**30}
    t0 = time.monotonic()
    with pytest.raises(HubError, match=r"refused before downloading: model.safetensors is 20.0 GB, over the 64.0 MB"):
        pull_style("alice/huge")
    assert time.monotonic() - t0 < 1.0
    assert hub.requests("GET", "/resolve/") == [] and not cache_files("alice/huge"), "not one file was fetched"
    hub.faults["advertise"] = {"style.jpg": 5 * 2**30}
    with pytest.raises(HubError, match="style.jpg is 5.0 GB, over the 20.0 MB allowed for a style's image"):
        pull_style("alice/huge")
    # the command line raises the caps with --max-mb, and names the file
    hub.faults["advertise"] = {"model.safetensors": 300 * 2**20}
    assert main(["pull", "alice/huge", "--max-mb", "200"]) == 1
    assert "model.safetensors is 300.0 MB, over the 200.0 MB" in capsys.readouterr().err


def test_sizes_are_measured_without_links_and_written_in_binary_units(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.bin").write_bytes(b"x" * 1000)
    (tmp_path / "sub" / "b.bin").write_bytes(b"y" * 24)
    (tmp_path / "link.bin").symlink_to(tmp_path / "a.bin")   # a Hub cache's snapshot links: counted once, as blobs
    assert folder_bytes(tmp_path) == 1024
    assert folder_bytes(tmp_path / "missing") == 0
    assert [human_size(n) for n in (None, 1000, 1024, 49_000 * 2**10 // 1000, 300 * 2**20, 20 * 2**30)] == \
        ["?", "1000 B", "1 kB", "49 kB", "300.0 MB", "20.0 GB"]


def test_a_file_vanishing_while_sizes_are_counted_is_skipped(tmp_path, monkeypatch):
    """A pull watches the cache folder while the download process makes and deletes temporary files."""
    (tmp_path / "kept.bin").write_bytes(b"x" * 100)
    (tmp_path / "tmp_dir").mkdir()
    (tmp_path / "tmp_dir" / "probe").write_bytes(b"y" * 7)
    (tmp_path / "gone.bin").write_bytes(b"z" * 50)
    real_scandir = os.scandir

    def listing_then_deleting(path):
        entries = list(real_scandir(path))  # listed, then the other process removes its files
        if Path(path) == tmp_path:
            (tmp_path / "gone.bin").unlink()
            (tmp_path / "tmp_dir" / "probe").unlink()
            (tmp_path / "tmp_dir").rmdir()
        return iter(entries)

    monkeypatch.setattr(os, "scandir", listing_then_deleting)
    assert folder_bytes(tmp_path) == 100


def test_a_server_sending_more_than_it_advertised_is_cut_off(hub, alice, style_dir):
    push_style(style_dir, "alice/liar")
    real = (style_dir / "model.safetensors").stat().st_size
    hub.faults["advertise"] = {"model.safetensors": 1000}   # listed and HEAD as 1000 bytes, served in full
    cap = 50_000
    assert real > 4 * cap
    with pytest.raises(HubError, match="grew past 49 kB while downloading: the Hub sent more than it advertised"):
        pull_style("alice/liar", limits=PullLimits(max_weights_bytes=cap, max_image_bytes=cap, max_text_bytes=cap,
                                                   max_total_bytes=10 * cap))
    written = [p for p in cache_files("alice/liar") if p.is_file() and not p.is_symlink()]
    assert all(p.stat().st_size <= cap for p in written), [(p.name, p.stat().st_size) for p in written]
    assert not [p for p in written if p.name.endswith(".incomplete")]


def test_a_slow_server_times_out_with_a_clear_message(hub, alice, style_dir):
    push_style(style_dir, "alice/slow")
    hub.faults["slow_download"] = {"file": "model.safetensors", "bytes_per_s": 5000}  # ~40 s for the weights
    t0 = time.monotonic()
    with pytest.raises(HubError, match="did not finish within 3 s .a slow or stalled Hub.*Nothing partial is kept"):
        pull_style("alice/slow", limits=PullLimits(timeout_s=3))
    assert time.monotonic() - t0 < 15
    assert not [p for p in cache_files("alice/slow") if p.name.endswith(".incomplete")]


def test_interrupted_download_resumes(hub, alice, style_dir, monkeypatch):
    # The client writes in DOWNLOAD_CHUNK_SIZE pieces (10 MB); small pieces let a tiny file resume mid-way.
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 1024)
    push_style(style_dir, "alice/starry")
    hub.faults["drop_download"] = {"file": "model.safetensors", "after": 5000, "times": 1}
    folder = pull_style("alice/starry")
    assert (folder / "model.safetensors").read_bytes() == (style_dir / "model.safetensors").read_bytes()
    first, second = [r["range"] for r in hub.requests("GET", "model.safetensors")]
    resumed_at = int(re.fullmatch(r"bytes=(\d+)-", second).group(1))
    assert first is None and 0 < resumed_at <= 5000, "the second request must resume where the first was cut"


def test_interrupted_download_fails_cleanly_without_half_file(hub, alice, style_dir, photo, offline):
    push_style(style_dir, "alice/starry")
    hub.faults["drop_download"] = {"file": "model.safetensors", "after": 5000, "times": 1, "then_status": 500}
    with pytest.raises(HubError, match="HTTP 500.*Nothing partial is kept.*fastnst pull alice/starry"):
        pull_style("alice/starry")
    leftovers = [p.name for p in cache_files("alice/starry")]
    assert "model.safetensors" not in leftovers and not [n for n in leftovers if n.endswith(".incomplete")]
    blobs = [p for p in cache_files("alice/starry") if p.parent.name == "blobs"]
    assert all(p.stat().st_size < 5000 for p in blobs), "no partial weights blob may remain"

    hub.faults.clear()
    np.testing.assert_array_equal(stylize("alice/starry", photo), stylize(style_dir, photo))  # completes online
    offline()
    assert (pull_style("alice/starry") / "model.safetensors").is_file()


def test_interrupted_download_offline_never_loads_a_partial_style(hub, alice, style_dir, offline):
    push_style(style_dir, "alice/starry")
    hub.faults["drop_download"] = {"file": "model.safetensors", "after": 100, "times": 1, "then_status": 503}
    with pytest.raises(HubError):
        pull_style("alice/starry")
    offline()
    with pytest.raises(StyleNotFoundError, match="alice/starry"):
        pull_style("alice/starry")
    with pytest.raises(StyleNotFoundError, match="alice/starry"):
        Stylizer.from_pretrained("alice/starry", device="cpu")
    assert cached_styles() == [], cached_styles()[0].meta


def test_corrupted_download_is_removed_from_the_cache(hub, alice, style_dir):
    push_style(style_dir, "alice/starry")
    hub.faults["corrupt_download"] = "model.safetensors"
    with pytest.raises(HubError, match="checksum.*removed from the cache"):
        pull_style("alice/starry")
    assert "model.safetensors" not in [p.name for p in cache_files("alice/starry")]
    hub.faults.clear()
    folder = pull_style("alice/starry")
    assert (folder / "model.safetensors").read_bytes() == (style_dir / "model.safetensors").read_bytes()


# --- the registry of sources --------------------------------------------------------------------

def test_style_sources_setting_resolves_local_hub_author_and_cache(hub, alice, tmp_path, monkeypatch, offline):
    push_style(full_style(tmp_path / "starry"), "alice/starry")
    push_style(full_style(tmp_path / "wave", seed=3, name="wave"), "alice/wave")
    local = make_style(tmp_path / "local" / "mine", name="mine").parent
    monkeypatch.setenv("FASTNST_STYLE_SOURCES", f"{local}, hub:alice/starry, author:alice, not a source")
    styles, warnings = available_styles()
    assert [(s.name, s.ref, s.source) for s in styles] == [
        ("mine", str(local / "mine"), "local"), ("starry", "alice/starry", "hub"), ("wave", "alice/wave", "hub")]
    assert all(Path(s.thumbnail).is_file() for s in styles[1:]), "Hub styles come with their style.jpg thumbnail"
    assert styles[1].label == "The Starry Night (Vincent van Gogh)"
    assert len(warnings) == 1 and "not a source" in warnings[0]
    _, warnings = available_styles("hub:alice/missing")
    assert "alice/missing" in warnings[0] and "no such style" in warnings[0]

    pull_style("alice/wave")
    offline()
    styles, warnings = available_styles()
    assert [(s.name, s.source) for s in styles] == [("mine", "local"), ("wave", "cache")]
    assert warnings[0].startswith("alice/starry: Hub not reachable") and "Hub not reachable" in warnings[1]
    styles, _ = available_styles(f"{local},cache", hub=False)
    assert [(s.name, s.source) for s in styles] == [("mine", "local"), ("wave", "cache")]
