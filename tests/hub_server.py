"""A small in-memory Hugging Face Hub for tests, spoken to by the real ``huggingface_hub`` client.

It implements the part of the Hub protocol that fastnst uses, the way the real Hub answers it:

* ``POST /api/repos/create``, ``GET /api/whoami-v2``, ``POST /api/validate-yaml``;
* ``POST /api/models/{id}/preupload/{rev}`` (always answers the ``regular`` upload mode, with the
  git oid of a file that is already there so unchanged files are skipped) and
  ``POST /api/models/{id}/commit/{rev}`` (NDJSON: a header line, then ``file`` lines with base64
  content and ``deletedFile`` lines; applied atomically; ``parentCommit`` checked, 412 if stale);
* ``GET /api/models`` (``filter``/``author``/``search``/``limit``/``expand``, paginated with a
  ``Link: rel="next"`` header), ``GET /api/models/{id}[/revision/{rev}]`` (``blobs=1`` for sizes),
  ``GET /api/models/{id}/tree/{rev}[/{path}]``, ``GET /api/models/{id}/refs``;
* ``HEAD``/``GET /{id}/resolve/{rev}/{path}`` with ``ETag`` (the git blob oid), ``X-Repo-Commit``,
  ``Content-Length`` and ``Range`` (206 + ``Content-Range``); error codes in ``X-Error-Code``
  (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``) as the client expects.

Tokens map to user names (``Authorization: Bearer``); a token the Hub does not know is answered with
401 "Invalid credentials in Authorization header" everywhere, writes need a token of the namespace's
owner, private repos are only visible to their owner.

Fault injection (``hub.faults``, a dict the tests set; see :meth:`FakeHub.handle_faults`):

* ``commit_status``: ``(status, message)``: the commit is read, refused with that status, nothing applied;
* ``commit_drop``: ``"before"`` (close the connection half-way through reading the body: nothing
  applied) or ``"after"`` (apply the commit, then close without answering);
* ``commit_race``: another client commits to the branch just before this commit is applied, so a
  commit with ``parentCommit`` gets 412 and nothing of it is applied;
* ``drop_download``: ``{"file": NAME, "after": NBYTES, "times": N, "then_status": STATUS}``: the
  next N GETs of NAME send the headers and NBYTES of body, then drop the connection; afterwards,
  with ``then_status``, every GET of NAME answers that status;
* ``corrupt_download``: NAME: GETs of NAME serve the right length with one byte flipped;
* ``advertise``: ``{NAME: SIZE}``: the file listings and HEAD answer SIZE for NAME (a lying or huge
  repo), while GETs serve the real bytes;
* ``slow_download``: ``{"file": NAME, "bytes_per_s": N}``: GETs of NAME trickle at about N bytes/s.

NAME is a path in the repo (every repo) or ``owner/name/path`` (that repo only).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import yaml

GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n"
INVALID_CREDENTIALS = "Invalid credentials in Authorization header"


def git_oid(data: bytes) -> str:
    """The git blob oid of ``data`` (what the Hub uses as ETag of a regular file)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def front_matter(readme: bytes | None) -> dict[str, Any] | None:
    """The YAML front matter of a model card, or None."""
    if not readme:
        return None
    text = readme.decode("utf-8", "replace")
    m = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, re.S)
    if not m:
        return None
    data = yaml.safe_load(m.group(1))
    return data if isinstance(data, dict) else None


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class Commit:
    oid: str
    files: dict[str, bytes]
    parent: str | None
    title: str
    date: str = field(default_factory=_now)


class Repo:
    def __init__(self, repo_id: str, private: bool = False) -> None:
        self.repo_id = repo_id
        self.owner = repo_id.split("/")[0]
        self.private = private
        self.created_at = _now()
        self.commits: dict[str, Commit] = {}
        self.branches: dict[str, str] = {}
        self.tags: dict[str, str] = {}
        self.branches["main"] = self.add_commit({".gitattributes": GITATTRIBUTES}, None, "initial commit").oid

    def add_commit(self, files: dict[str, bytes], parent: str | None, title: str) -> Commit:
        h = hashlib.sha1(f"{self.repo_id}\0{parent}\0{title}\0{time.time_ns()}\0{len(self.commits)}".encode())
        for path in sorted(files):
            h.update(path.encode() + b"\0" + git_oid(files[path]).encode())
        commit = Commit(h.hexdigest(), dict(files), parent, title)
        self.commits[commit.oid] = commit
        return commit

    def resolve(self, rev: str) -> Commit | None:
        if rev in self.branches:
            return self.commits[self.branches[rev]]
        if rev in self.tags:
            return self.commits[self.tags[rev]]
        if re.fullmatch(r"[0-9a-f]{7,40}", rev):
            found = [c for oid, c in self.commits.items() if oid.startswith(rev)]
            if len(found) == 1:
                return found[0]
        return None

    @property
    def head(self) -> Commit:
        return self.commits[self.branches["main"]]


class FakeHub:
    """The server. ``start()`` it, point the client at ``url`` (see :meth:`patch_client`), ``stop()`` it."""

    def __init__(self, tokens: dict[str, str] | None = None, page_size: int = 2) -> None:
        self.tokens = dict(tokens or {"hf_alice_token": "alice", "hf_bob_token": "bob"})
        self.page_size = page_size
        self.repos: dict[str, Repo] = {}
        self.faults: dict[str, Any] = {}
        self.log: list[dict[str, Any]] = []
        self.commit_payloads: list[list[dict[str, Any]]] = []
        self.lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> "FakeHub":
        hub = self

        class Handler(_Handler):
            server_hub = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the hub first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def patch_client(self, monkeypatch) -> None:
        """Point huggingface_hub (already imported, so its constants are frozen) at this server."""
        from huggingface_hub import constants

        monkeypatch.setenv("HF_ENDPOINT", self.url)
        monkeypatch.setattr(constants, "ENDPOINT", self.url)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", self.url + "/{repo_id}/resolve/{revision}/{filename}")

    # --- helpers for tests -------------------------------------------------------------------

    def add_repo(self, repo_id: str, files: dict[str, bytes], private: bool = False) -> str:
        """Create a repo holding ``files`` (as one commit); returns the commit oid."""
        with self.lock:
            repo = self.repos.setdefault(repo_id, Repo(repo_id, private))
            commit = repo.add_commit({**repo.head.files, **files}, repo.head.oid, "add files")
            repo.branches["main"] = commit.oid
            return commit.oid

    def files(self, repo_id: str, rev: str = "main") -> dict[str, bytes]:
        with self.lock:
            commit = self.repos[repo_id].resolve(rev)
            assert commit is not None
            return dict(commit.files)

    def requests(self, method: str | None = None, contains: str = "") -> list[dict[str, Any]]:
        return [r for r in self.log if (method is None or r["method"] == method) and contains in r["path"]]


class _Drop(Exception):
    """Abort the request by closing the connection without an answer."""


class _Handler(BaseHTTPRequestHandler):
    server_hub: FakeHub
    protocol_version = "HTTP/1.0"  # one request per connection: no stale keep-alive sockets between tests

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # --- plumbing --------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        hub = self.server_hub
        split = urlsplit(self.path)
        self.query = {k: v for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        self.route = split.path
        hub.log.append({"method": method, "path": split.path, "query": self.query,
                        "range": self.headers.get("Range"), "content_type": self.headers.get("Content-Type")})
        try:
            self.user = self._authenticate()
            for m, pattern, handler in ROUTES:
                if m == method or (m == "GET" and method == "HEAD" and handler in (_Handler.resolve, _Handler.root)):
                    match = re.fullmatch(pattern, split.path)
                    if match:
                        handler(self, method, **{k: unquote(v) if v else v for k, v in match.groupdict().items()})
                        return
            self.error(404, "Not Found")
        except _Drop:
            self._drop()
        except _HTTPError as e:
            self.error(e.status, e.message, e.code)

    def _authenticate(self) -> str | None:
        auth = self.headers.get("Authorization")
        if not auth:
            return None
        token = auth.removeprefix("Bearer ").strip()
        user = self.server_hub.tokens.get(token)
        if user is None:
            raise _HTTPError(401, INVALID_CREDENTIALS)
        return user

    def body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def json_body(self) -> Any:
        try:
            return json.loads(self.body() or b"{}")
        except json.JSONDecodeError:
            raise _HTTPError(400, "body is not JSON") from None

    def send(self, status: int, payload: Any = None, headers: dict[str, str] | None = None, body: bytes | None = None,
             head: bool = False) -> None:
        data = body if body is not None else (json.dumps(payload).encode() if payload is not None else b"")
        self.send_response(status)
        if body is None:
            self.send_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def error(self, status: int, message: str, code: str | None = None, extra: dict[str, str] | None = None) -> None:
        headers = {"X-Error-Message": message, **(extra or {})}
        if code:
            headers["X-Error-Code"] = code
        self.send(status, {"error": message}, headers=headers, head=self.command == "HEAD")

    def _drop(self) -> None:
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.close_connection = True

    # --- repos -----------------------------------------------------------------------------------

    def repo(self, ns: str, name: str, *, write: bool = False) -> Repo:
        hub = self.server_hub
        repo_id = f"{ns}/{name}"
        with hub.lock:
            repo = hub.repos.get(repo_id)
        if repo is None or (repo.private and self.user != repo.owner):
            # The Hub answers 401 (not logged in) or 404 alike, so as not to reveal private repos.
            raise _HTTPError(401 if self.user is None else 404, "Repository not found", "RepoNotFound")
        if write and self.user != repo.owner:
            raise _HTTPError(403 if self.user else 401,
                             f"You don't have the rights to write to {repo_id}" if self.user else "Unauthorized")
        return repo

    def commit_of(self, repo: Repo, rev: str) -> Commit:
        commit = repo.resolve(rev)
        if commit is None:
            raise _HTTPError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return commit

    def whoami(self, method: str) -> None:
        if self.user is None:
            raise _HTTPError(401, "Unauthorized")
        self.send(200, {"type": "user", "name": self.user, "fullname": self.user, "orgs": [],
                        "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}}})

    def create_repo(self, method: str) -> None:
        hub = self.server_hub
        payload = self.json_body()
        if self.user is None:
            raise _HTTPError(401, "You must be authenticated to create a repo")
        ns = payload.get("organization") or self.user
        if ns != self.user:
            raise _HTTPError(403, f"You don't have the rights to create a model under the namespace {ns!r}")
        if payload.get("type", "model") not in (None, "model"):
            raise _HTTPError(400, "only model repos here")
        repo_id = f"{ns}/{payload['name']}"
        if not re.fullmatch(r"[\w.-]+", payload["name"]) or "--" in payload["name"]:
            raise _HTTPError(400, "Invalid repo name")
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        with hub.lock:
            if repo_id in hub.repos:
                self.send(409, {"error": "You already created this model repo", "url": f"{hub.url}/{repo_id}"},
                          headers={"X-Error-Message": "You already created this model repo"})
                return
            hub.repos[repo_id] = Repo(repo_id, private)
        self.send(200, {"url": f"{hub.url}/{repo_id}", "name": repo_id, "id": repo_id})

    def validate_yaml(self, method: str) -> None:
        payload = self.json_body()
        content = payload.get("content", "")
        errors = []
        try:
            meta = front_matter(content.encode())
        except yaml.YAMLError as e:
            meta, errors = None, [{"message": f"YAML front matter is not valid: {e}"}]
        if meta is not None:
            for key in ("library_name", "pipeline_tag", "license"):
                if key in meta and not isinstance(meta[key], str):
                    errors.append({"message": f'"{key}" must be a string'})
            for key in ("tags", "datasets"):
                if key in meta and not (isinstance(meta[key], list) and all(isinstance(t, str) for t in meta[key])):
                    errors.append({"message": f'"{key}" must be an array of strings'})
            if "widget" in meta and not isinstance(meta["widget"], list):
                errors.append({"message": '"widget" must be an array'})
        warnings = [] if meta else [{"message": "empty or missing yaml metadata in repo card"}]
        self.send(400 if errors else 200, {"errors": errors, "warnings": warnings})

    def preupload(self, method: str, ns: str, name: str, rev: str) -> None:
        repo = self.repo(ns, name, write=True)
        commit = self.commit_of(repo, rev)
        payload = self.json_body()
        files = []
        for f in payload.get("files", []):
            base64.b64decode(f["sample"], validate=True)  # the client sends the first 512 bytes
            existing = commit.files.get(f["path"])
            files.append({"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                          "oid": git_oid(existing) if existing is not None else None})
        self.send(200, {"files": files, "commitOid": commit.oid})

    def commit(self, method: str, ns: str, name: str, rev: str) -> None:
        hub = self.server_hub
        repo = self.repo(ns, name, write=True)
        if self.headers.get("Content-Type") != "application/x-ndjson":
            raise _HTTPError(400, "expected application/x-ndjson")
        drop = hub.faults.get("commit_drop")
        if drop == "before":
            n = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(n // 2)
            raise _Drop()
        lines = [json.loads(line) for line in self.body().splitlines() if line.strip()]
        hub.commit_payloads.append(lines)
        if not lines or lines[0].get("key") != "header":
            raise _HTTPError(400, "first line must be the commit header")
        header = lines[0]["value"]
        if "commit_status" in hub.faults:
            status, message = hub.faults["commit_status"]
            raise _HTTPError(status, message)
        with hub.lock:
            if rev not in repo.branches:
                raise _HTTPError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
            if hub.faults.get("commit_race"):
                other = repo.add_commit({**repo.head.files, "race.txt": b"someone else was faster\n"},
                                        repo.head.oid, "concurrent commit")
                repo.branches[rev] = other.oid
            base = repo.commits[repo.branches[rev]]
            parent = header.get("parentCommit")
            if parent and not base.oid.startswith(parent):
                raise _HTTPError(412, "A commit has happened since. Please refresh and try again.")
            files = dict(base.files)
            for line in lines[1:]:
                key, value = line["key"], line["value"]
                if key == "file":
                    if value.get("encoding") != "base64":
                        raise _HTTPError(400, "only base64 file content is supported")
                    files[value["path"]] = base64.b64decode(value["content"], validate=True)
                elif key == "deletedFile":
                    if value["path"] not in files:
                        raise _HTTPError(404, "A file with this name doesn't exist", "EntryNotFound")
                    del files[value["path"]]
                elif key == "deletedFolder":
                    prefix = value["path"].rstrip("/") + "/"
                    files = {p: d for p, d in files.items() if not p.startswith(prefix)}
                else:  # lfsFile: this Hub never asks for LFS uploads
                    raise _HTTPError(400, f"unsupported commit operation {key!r}")
            commit = repo.add_commit(files, base.oid, header.get("summary") or "commit")
            repo.branches[rev] = commit.oid  # the whole commit becomes visible at once
        if drop == "after":
            raise _Drop()
        self.send(200, {"success": True, "commitOid": commit.oid, "commitUrl": f"{hub.url}/{repo.repo_id}/commit/{commit.oid}",
                        "pullRequestUrl": None})

    # --- reading -----------------------------------------------------------------------------

    def model_json(self, repo: Repo, commit: Commit, *, blobs: bool, listing: bool, expand: list[str]) -> dict[str, Any]:
        meta = front_matter(commit.files.get("README.md")) or {}
        tags = [t for t in meta.get("tags") or [] if isinstance(t, str)]
        for extra in (meta.get("library_name"), "safetensors" if any(p.endswith(".safetensors") for p in commit.files) else None,
                      f"license:{meta['license']}" if isinstance(meta.get("license"), str) else None,
                      *(f"dataset:{d}" for d in meta.get("datasets") or [] if isinstance(d, str))):
            if extra and extra not in tags:
                tags.append(extra)
        siblings = [{"rfilename": p, **({"size": self.advertised(repo.repo_id, p, d), "blobId": git_oid(d)} if blobs else {})}
                    for p, d in sorted(commit.files.items())]
        data: dict[str, Any] = {
            "_id": hashlib.md5(repo.repo_id.encode()).hexdigest()[:24], "id": repo.repo_id, "modelId": repo.repo_id,
            "private": repo.private, "downloads": 0, "likes": 0, "tags": tags,
            "library_name": meta.get("library_name"), "pipeline_tag": meta.get("pipeline_tag"),
            "createdAt": repo.created_at,
        }
        full = {"author": repo.owner, "sha": commit.oid, "lastModified": commit.date, "disabled": False, "gated": False,
                "cardData": meta or None, "siblings": siblings, "usedStorage": sum(len(d) for d in commit.files.values())}
        if listing:
            data.update({k: full[k] for k in expand if k in full})
            if "full" in self.query:
                data.update({k: full[k] for k in ("author", "sha", "lastModified", "siblings")})
        else:
            data.update(full)
        return data

    def list_models(self, method: str) -> None:
        hub = self.server_hub
        q = self.query
        filters = q.get("filter", [])
        author = (q.get("author") or [None])[0]
        search = [s.lower() for s in q.get("search", [])]
        expand = q.get("expand", []) + q.get("expand[]", [])
        limit = int((q.get("limit") or [0])[0]) or None
        cursor = int((q.get("cursor") or [0])[0])
        with hub.lock:
            repos = sorted(hub.repos.values(), key=lambda r: r.repo_id)
        items = []
        for repo in repos:
            if repo.private and self.user != repo.owner:
                continue
            if author and repo.owner != author:
                continue
            if any(s not in repo.repo_id.lower() for s in search):
                continue
            item = self.model_json(repo, repo.head, blobs=False, listing=True, expand=expand)
            if all(f in item["tags"] or f == item.get("library_name") for f in filters):
                items.append(item)
        if limit:
            items = items[:limit]
        page, rest = items[cursor:cursor + hub.page_size], items[cursor + hub.page_size:]
        headers = {}
        if rest:
            params = [(k, v) for k, vs in q.items() if k != "cursor" for v in vs] + [("cursor", str(cursor + hub.page_size))]
            headers["Link"] = f'<{hub.url}/api/models?{urlencode(params)}>; rel="next"'
        self.send(200, page, headers=headers)

    def model_info(self, method: str, ns: str, name: str, rev: str | None = None) -> None:
        repo = self.repo(ns, name)
        commit = self.commit_of(repo, rev or "main")
        self.send(200, self.model_json(repo, commit, blobs="blobs" in self.query, listing=False, expand=[]))

    def tree(self, method: str, ns: str, name: str, rev: str, path: str | None = None) -> None:
        repo = self.repo(ns, name)
        commit = self.commit_of(repo, rev)
        prefix = (path.strip("/") + "/") if path else ""
        recursive = (self.query.get("recursive") or ["false"])[0].lower() in ("1", "true")
        entries, folders = [], set()
        for p, data in sorted(commit.files.items()):
            if not p.startswith(prefix):
                continue
            rest = p[len(prefix):]
            parts = rest.split("/")
            for i in range(1, len(parts)):
                folders.add(prefix + "/".join(parts[:i]))
            if recursive or len(parts) == 1:
                entries.append({"type": "file", "oid": git_oid(data), "size": self.advertised(repo.repo_id, p, data),
                                "path": p})
        if path and not entries and not folders:
            raise _HTTPError(404, f"{path} does not exist", "EntryNotFound")
        for f in sorted(folders):
            if recursive or "/" not in f[len(prefix):]:
                entries.append({"type": "directory", "oid": hashlib.sha1(f.encode()).hexdigest(), "size": 0, "path": f})
        self.send(200, entries)

    def refs(self, method: str, ns: str, name: str) -> None:
        repo = self.repo(ns, name)
        ref = lambda kind, n, oid: {"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": oid}  # noqa: E731
        self.send(200, {"branches": [ref("heads", n, o) for n, o in repo.branches.items()],
                        "tags": [ref("tags", n, o) for n, o in repo.tags.items()], "converts": []})

    def resolve(self, method: str, ns: str, name: str, rev: str, path: str) -> None:
        hub = self.server_hub
        repo = self.repo(ns, name)
        commit = self.commit_of(repo, rev)
        data = commit.files.get(path)
        base = {"X-Repo-Commit": commit.oid}
        if data is None:
            self.error(404, "Entry not found", "EntryNotFound", extra=base)
            return
        headers = {**base, "ETag": f'"{git_oid(data)}"', "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        if method == "HEAD":
            self.send(200, headers={**headers, "Content-Length": str(self.advertised(repo.repo_id, path, data))},
                      body=b"", head=True)
            return
        drop = hub.faults.get("drop_download")
        if drop and drop["file"] == path and drop.get("times", 1) <= 0 and drop.get("then_status"):
            raise _HTTPError(drop["then_status"], "Internal Error")
        if hub.faults.get("corrupt_download") == path:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        status, start, end = 200, 0, len(data) - 1
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
        if m:
            start, end = int(m.group(1)), int(m.group(2)) if m.group(2) else len(data) - 1
            if start >= len(data):
                self.error(416, "Requested range not satisfiable", extra={"Content-Range": f"bytes */{len(data)}"})
                return
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        chunk = data[start:end + 1]
        headers["Content-Length"] = str(len(chunk))
        if drop and drop["file"] == path and drop.get("times", 1) > 0:
            drop["times"] = drop.get("times", 1) - 1
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(chunk[: drop["after"]])
            raise _Drop()
        slow = hub.faults.get("slow_download")
        if slow and slow["file"] in (path, f"{repo.repo_id}/{path}"):
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            try:
                for i in range(0, len(chunk), 256):
                    self.wfile.write(chunk[i:i + 256])
                    self.wfile.flush()
                    time.sleep(256 / slow["bytes_per_s"])
            except (BrokenPipeError, ConnectionResetError):  # the client gave up: that is the point
                pass
            return
        self.send(status, headers=headers, body=chunk)

    def advertised(self, repo_id: str, path: str, data: bytes) -> int:
        """The size this server claims for a file (the ``advertise`` fault lies)."""
        claims = self.server_hub.faults.get("advertise", {})
        return int(claims.get(f"{repo_id}/{path}", claims.get(path, len(data))))

    def root(self, method: str) -> None:
        self.send(200, {"hub": "fake"}, head=method == "HEAD")


class _HTTPError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


_ID = r"(?P<ns>[^/]+)/(?P<name>[^/]+)"
ROUTES = [
    ("GET", r"/", _Handler.root),
    ("GET", r"/api/whoami-v2", _Handler.whoami),
    ("POST", r"/api/repos/create", _Handler.create_repo),
    ("POST", r"/api/validate-yaml", _Handler.validate_yaml),
    ("GET", r"/api/models", _Handler.list_models),
    ("GET", rf"/api/models/{_ID}/refs", _Handler.refs),
    ("GET", rf"/api/models/{_ID}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?", _Handler.tree),
    ("POST", rf"/api/models/{_ID}/preupload/(?P<rev>[^/]+)", _Handler.preupload),
    ("POST", rf"/api/models/{_ID}/commit/(?P<rev>[^/]+)", _Handler.commit),
    ("GET", rf"/api/models/{_ID}/revision/(?P<rev>[^/]+)", _Handler.model_info),
    ("GET", rf"/api/models/{_ID}", _Handler.model_info),
    ("GET", rf"/{_ID}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", _Handler.resolve),
]

__all__ = ["FakeHub", "git_oid", "front_matter"]
