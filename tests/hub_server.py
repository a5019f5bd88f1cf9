"""A loopback HTTP server that answers the Hugging Face Hub API calls huggingface_hub makes to
download (repo info, tree listing, resolve) and to publish (create repo, branch, preupload, commit).

It stands in for the Hub in tests through HF_ENDPOINT; it is a test fixture, not SDK code.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


def git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class FakeRepo:
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # branch or tag -> commit sha

    def commit(self, files: dict[str, bytes], branch: str = "main", parent: str | None = None) -> str:
        base = dict(self.commits[parent]) if parent else {}
        base.update(files)
        sha = hashlib.sha1(
            json.dumps(sorted((k, git_blob_oid(v)) for k, v in base.items())).encode() + str(len(self.commits)).encode()
        ).hexdigest()
        self.commits[sha] = base
        self.refs[branch] = sha
        return sha

    def resolve(self, rev: str) -> str | None:
        if rev in self.commits:
            return rev
        return self.refs.get(rev)


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[tuple[str, str]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def downloads(self) -> list[str]:
        return [p for m, p in self.requests if m == "GET" and "/resolve/" in p]

    def _handler(hub):  # noqa: N805 - closure over the hub
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _send(self, code: int, body: bytes = b"", headers: dict | None = None, head: bool = False) -> None:
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _json(self, code: int, obj, headers: dict | None = None) -> None:
                self._send(code, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})})

            def _error(self, code: int, error_code: str, message: str, head: bool = False) -> None:
                body = json.dumps({"error": message}).encode()
                self._send(
                    code,
                    body,
                    {"X-Error-Code": error_code, "X-Error-Message": message, "Content-Type": "application/json"},
                    head=head,
                )

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))

            def _repo(self, repo_id: str, head: bool = False) -> FakeRepo | None:
                repo = hub.repos.get(repo_id)
                if repo is None:
                    self._error(404, "RepoNotFound", f"Repository {repo_id} not found", head=head)
                return repo

            def _route(self, method: str) -> None:
                path = urlsplit(self.path).path
                hub.requests.append((method, path))
                parts = [unquote(p) for p in path.strip("/").split("/")]
                head = method == "HEAD"
                if parts[:2] == ["api", "models"] and len(parts) >= 6:
                    repo_id, action, rest = f"{parts[2]}/{parts[3]}", parts[4], parts[5:]
                    repo = self._repo(repo_id)
                    if repo is None:
                        return
                    if action == "branch" and method == "POST":
                        self._body()
                        if rest[0] in repo.refs:
                            return self._error(409, "BranchExists", "branch exists")
                        repo.refs[rest[0]] = repo.refs["main"]
                        return self._json(200, {})
                    sha = repo.resolve(rest[0])
                    if sha is None:
                        return self._error(404, "RevisionNotFound", f"Invalid rev id: {rest[0]}")
                    files = repo.commits[sha]
                    if action == "revision" and method == "GET":
                        return self._json(
                            200,
                            {
                                "id": repo_id,
                                "modelId": repo_id,
                                "sha": sha,
                                "private": False,
                                "siblings": [{"rfilename": p} for p in sorted(files)],
                            },
                        )
                    if action == "tree" and method == "GET":
                        return self._json(
                            200,
                            [
                                {"type": "file", "oid": git_blob_oid(d), "size": len(d), "path": p}
                                for p, d in sorted(files.items())
                            ],
                        )
                    if action == "preupload" and method == "POST":
                        req = json.loads(self._body())
                        return self._json(
                            200,
                            {
                                "files": [
                                    {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None}
                                    for f in req["files"]
                                ]
                            },
                        )
                    if action == "commit" and method == "POST":
                        added = {}
                        for line in self._body().decode().splitlines():
                            item = json.loads(line)
                            if item["key"] == "file":
                                added[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                        new = repo.commit(added, branch=rest[0], parent=sha)
                        return self._json(
                            200,
                            {"success": True, "commitOid": new, "commitUrl": f"{hub.endpoint}/{repo_id}/commit/{new}"},
                        )
                if parts[:2] == ["api", "validate-yaml"] and method == "POST":
                    self._body()
                    return self._json(200, {"errors": [], "warnings": []})
                if parts[:3] == ["api", "repos", "create"] and method == "POST":
                    req = json.loads(self._body())
                    repo_id = f"{req.get('organization') or 'user'}/{req['name']}"
                    if repo_id in hub.repos:
                        return self._error(409, "RepoExists", "You already created this model repo")
                    repo = hub.repos[repo_id] = FakeRepo()
                    repo.commit({".gitattributes": b"*.onnx filter=lfs\n"})
                    return self._json(200, {"url": f"{hub.endpoint}/{repo_id}", "name": repo_id})
                if len(parts) >= 5 and parts[2] == "resolve" and method in ("GET", "HEAD"):
                    repo_id, rev, file = f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:])
                    repo = self._repo(repo_id, head=head)
                    if repo is None:
                        return
                    sha = repo.resolve(rev)
                    if sha is None:
                        return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}", head=head)
                    if file not in repo.commits[sha]:
                        return self._error(404, "EntryNotFound", f"{file} does not exist", head=head)
                    data = repo.commits[sha][file]
                    return self._send(
                        200,
                        data,
                        {
                            "X-Repo-Commit": sha,
                            "ETag": f'"{git_blob_oid(data)}"',
                            "Content-Type": "application/octet-stream",
                        },
                        head=head,
                    )
                self._error(404, "NotFound", f"no route for {method} {path}", head=head)

            def do_GET(self) -> None:
                self._route("GET")

            def do_HEAD(self) -> None:
                self._route("HEAD")

            def do_POST(self) -> None:
                self._route("POST")

        return Handler
