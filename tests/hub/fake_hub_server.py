#!/usr/bin/env python3
"""tests/hub/fake_hub_server.py — a local stand-in for the Hugging Face Hub, for the hub/ tests only.

Why: the Hub cannot be reached from CI, and the download/upload code must be tested against the
protocol of ../shared/docs/hf-hub-protocol.md, redirects, ETags and failures included. Python 3
standard library only; never part of the product. Started by tests/hub/fake_hub.h on 127.0.0.1 with
an ephemeral port, which it writes to --port-file once listening.

Repos are folders: <root>/models/<org>/<name>/... and <root>/datasets/<org>/<name>/... (one revision,
"main"; its commit is the SHA-1 of the file listing). Files larger than 64 bytes, *.safetensors and
*.parquet are "LFS": ETag = SHA-256, the resolve URL redirects (302) to http://localhost:<port>/cdn/<sha>
(a different host name than 127.0.0.1, so clients must drop Authorization). Other files are served
directly with ETag = git blob SHA-1.

Uploads: preupload answers "lfs" for the Hub's default LFS patterns (*.safetensors, *.bin, *.gguf, ...) and
files of 10 MB or more, "regular" otherwise (so config.json and README.md are committed inline).

Endpoints: HEAD/GET /[datasets/]<org>/<name>/resolve/<rev>/<path>, GET /cdn/<sha256>[?sig],
GET /api/{models,datasets}/<org>/<name>/revision/<rev>, and the upload API: POST /api/repos/create,
POST /api/<type>s/<repo>/preupload/<rev>, POST /<repo>.git/info/lfs/objects/batch,
PUT /lfs-upload/<oid>[/<part>], POST /lfs-complete/<oid>, POST /lfs-verify/<oid>,
POST /api/<type>s/<repo>/commit/<rev>.

Behaviour switches: <root>/control.json, re-read on every request (all keys optional):
  token           required bearer token for every repo request (401 without it)
  gated           [repo ids] -> 403 X-Error-Code: GatedRepo
  renames         {old id: new id} -> 307 with a relative Location
  status          {path substring: HTTP status} -> that status for matching requests
  status_times    how many times `status` applies per substring (default: always)
  delay           {path substring: seconds} -> sleep before answering (timeouts)
  cdn_ignore_range true -> the CDN answers 200 with the whole file to a Range request
  corrupt         {sha256: n} -> the first n CDN GETs of that blob serve flipped bytes
  truncate        {sha256: n bytes} -> the first CDN GET sends n bytes then drops the connection
  extra_siblings  [names] added to the listing (path-safety tests)
  multipart_chunk chunk size for LFS multipart uploads (files larger use "multipart")
Every request is appended to <root>/requests.jsonl: method, path, headers, body (text or base64; bodies over
BODY_LOG_LIMIT are logged with their size only).
"""
import argparse
import base64
import hashlib
import json
import os
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = None
BODY_LOG_LIMIT = 4 << 20  # request bodies logged whole up to this size (NDJSON commits with inline files)
LOCK = threading.Lock()
COUNTERS = {}
UPLOADS = {}  # oid -> bytearray (LFS uploads)


def control():
    try:
        with open(os.path.join(ROOT, "control.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def bump(key):
    with LOCK:
        COUNTERS[key] = COUNTERS.get(key, 0) + 1
        return COUNTERS[key]


def is_lfs(path, data):
    return len(data) > 64 or path.endswith(".safetensors") or path.endswith(".parquet")


# The Hub's default .gitattributes LFS patterns (a subset), and its size rule: text files of 10 MB or more
# go through LFS too. Small config/README/JSON files are committed inline, as on the real Hub.
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".onnx", ".parquet", ".arrow", ".h5",
                ".msgpack", ".npy", ".npz", ".pkl", ".zip", ".gz", ".bz2", ".zst", ".tar", ".model", ".tflite")
LFS_MIN_SIZE = 10 * 1000 * 1000


def upload_as_lfs(path, size):
    return path.lower().endswith(LFS_SUFFIXES) or size >= LFS_MIN_SIZE


def git_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def repo_dir(kind, repo_id):
    return os.path.join(ROOT, kind, *repo_id.split("/"))


MEMO = {}  # full path -> (mtime_ns, size, etag, lfs)


def read_file(full):
    with open(full, "rb") as f:
        return f.read()


def list_repo(kind, repo_id):
    base = repo_dir(kind, repo_id)
    if not os.path.isdir(base):
        return None
    files = []
    for dirpath, _, names in os.walk(base):
        for n in names:
            full = os.path.join(dirpath, n)
            rel = os.path.relpath(full, base).replace(os.sep, "/")
            st = os.stat(full)
            key = (st.st_mtime_ns, st.st_size)
            with LOCK:
                memo = MEMO.get(full)
            if not memo or memo[:2] != key:
                data = read_file(full)
                lfs = is_lfs(rel, data)
                memo = key + (hashlib.sha256(data).hexdigest() if lfs else git_sha1(data), lfs)
                with LOCK:
                    MEMO[full] = memo
            files.append({"path": rel, "full": full, "size": st.st_size, "lfs": memo[3], "etag": memo[2]})
    files.sort(key=lambda x: x["path"])
    commit = hashlib.sha1(json.dumps([[f["path"], f["etag"]] for f in files]).encode()).hexdigest()
    return commit, files


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    # ---- helpers ---------------------------------------------------------------------------
    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def log_request_entry(self, body=b""):
        try:
            text = body.decode("utf-8")
            enc = "text"
        except UnicodeDecodeError:
            text = base64.b64encode(body).decode()
            enc = "base64"
        entry = {"method": self.command, "path": self.path,
                 "headers": {k.lower(): v for k, v in self.headers.items()},
                 "body": text if len(body) <= BODY_LOG_LIMIT else "", "body_encoding": enc, "body_size": len(body)}
        with LOCK:
            with open(os.path.join(ROOT, "requests.jsonl"), "a") as f:
                f.write(json.dumps(entry) + "\n")

    def send(self, status, body=b"", headers=None, head=False):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def send_json(self, status, obj, headers=None):
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        self.send(status, json.dumps(obj).encode(), h)

    def error(self, status, code=None, message=None, head=False, extra=None):
        h = dict(extra or {})
        if code:
            h["X-Error-Code"] = code
        if message:
            h["X-Error-Message"] = message
        self.send(status, json.dumps({"error": message or code or str(status)}).encode(), h, head)

    def switches(self, head=False):
        """Applies delay/status switches; True if the request was answered."""
        c = control()
        for sub, secs in (c.get("delay") or {}).items():
            if sub in self.path:
                time.sleep(float(secs))
        for sub, status in (c.get("status") or {}).items():
            if sub in self.path:
                times = (c.get("status_times") or {}).get(sub)
                if times is None or bump("status:" + sub) <= int(times):
                    self.error(int(status), message="injected status %d" % int(status), head=head)
                    return True
        return False

    def auth_ok(self, repo_id, head=False):
        c = control()
        tok = c.get("token")
        if tok and self.headers.get("Authorization") != "Bearer " + tok:
            self.error(401, "RepoNotFound", "Invalid credentials in Authorization header", head=head)
            return False
        if repo_id in (c.get("gated") or []):
            self.error(403, "GatedRepo", "Access to model %s is restricted." % repo_id, head=head)
            return False
        return True

    def serve_bytes(self, data, head, etag_headers, allow_range=True, truncate=None, corrupt=False):
        start = 0
        rng = self.headers.get("Range")
        status = 200
        headers = dict(etag_headers)
        if rng and allow_range:
            m = re.match(r"bytes=(\d+)-$", rng)
            if not m:
                self.error(416, message="bad range", head=head)
                return
            start = int(m.group(1))
            if start >= len(data) and len(data) > 0:
                self.error(416, message="range not satisfiable", head=head,
                           extra={"Content-Range": "bytes */%d" % len(data)})
                return
            status = 206
            headers["Content-Range"] = "bytes %d-%d/%d" % (start, len(data) - 1, len(data))
        body = data[start:]
        if corrupt and body:
            body = bytes([body[0] ^ 0xFF]) + body[1:]
        if truncate is not None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:truncate])
            self.wfile.flush()
            self.close_connection = True
            try:
                import socket
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.send(status, body, headers, head)

    # ---- download ----------------------------------------------------------------------------
    def handle_download(self, head):
        self.log_request_entry()
        if self.switches(head):
            return
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith("/cdn/"):
            sha = path[len("/cdn/"):]
            c = control()
            for kind in ("models", "datasets"):
                top = os.path.join(ROOT, kind)
                repos = [o + "/" + n for o in (os.listdir(top) if os.path.isdir(top) else [])
                         for n in os.listdir(os.path.join(top, o))]
                for rid in repos:
                    for f in list_repo(kind, rid)[1]:
                        if f["etag"] == sha:
                            data = read_file(f["full"])
                            corrupt = bump("corrupt:" + sha) <= int((c.get("corrupt") or {}).get(sha, 0))
                            trunc = (c.get("truncate") or {}).get(sha)
                            if trunc is not None and bump("truncate:" + sha) > 1:
                                trunc = None
                            self.serve_bytes(data, head, {"ETag": '"%s"' % sha},
                                             allow_range=not c.get("cdn_ignore_range"), truncate=trunc,
                                             corrupt=corrupt)
                            return
            self.error(404, message="no such blob", head=head)
            return
        if path.startswith("/api/"):
            return self.handle_api_get(path)
        parts = path.lstrip("/").split("/")
        kind = "models"
        if parts and parts[0] == "datasets":
            kind = "datasets"
            parts = parts[1:]
        if len(parts) < 5 or parts[2] != "resolve":
            self.error(404, message="unknown route", head=head)
            return
        repo_id = parts[0] + "/" + parts[1]
        rev = urllib.parse.unquote(parts[3])
        fname = urllib.parse.unquote("/".join(parts[4:]))
        renames = control().get("renames") or {}
        if repo_id in renames:
            prefix = "/datasets/" if kind == "datasets" else "/"
            self.send(307, b"", {"Location": prefix + renames[repo_id] + "/resolve/" + parts[3] + "/" + "/".join(parts[4:])},
                      head)
            return
        if not self.auth_ok(repo_id, head):
            return
        listing = list_repo(kind, repo_id)
        if listing is None:
            self.error(401, "RepoNotFound", "Repository not found", head=head)
            return
        commit, files = listing
        if rev not in ("main", commit):
            self.error(404, "RevisionNotFound", "Invalid rev id: " + rev, head=head)
            return
        match = [f for f in files if f["path"] == fname]
        if not match:
            self.error(404, "EntryNotFound", "Entry not found", head=head, extra={"X-Repo-Commit": commit})
            return
        f = match[0]
        if f["lfs"]:
            host = "localhost:%d" % self.server.server_address[1]
            self.send(302, b"", {"Location": "http://%s/cdn/%s?sig=presigned" % (host, f["etag"]),
                                 "X-Repo-Commit": commit, "X-Linked-Etag": '"%s"' % f["etag"],
                                 "X-Linked-Size": str(f["size"]), "ETag": '"redirect-etag"'}, head)
            return
        self.serve_bytes(read_file(f["full"]), head, {"ETag": 'W/"%s"' % f["etag"], "X-Repo-Commit": commit})

    def handle_api_get(self, path):
        m = re.match(r"^/api/(models|datasets)/([^/]+/[^/]+)/revision/(.+)$", path)
        if not m:
            self.error(404, message="unknown api route")
            return
        kind, repo_id, rev = m.group(1), m.group(2), urllib.parse.unquote(m.group(3))
        if not self.auth_ok(repo_id):
            return
        listing = list_repo(kind, repo_id)
        if listing is None:
            self.error(401, "RepoNotFound", "Repository not found")
            return
        commit, files = listing
        if rev not in ("main", commit):
            self.error(404, "RevisionNotFound", "Invalid rev id: " + rev)
            return
        sib = []
        for f in files:
            e = {"rfilename": f["path"], "size": f["size"]}
            if f["lfs"]:
                e["lfs"] = {"sha256": f["etag"], "size": f["size"], "pointerSize": 134}
            sib.append(e)
        for extra in control().get("extra_siblings") or []:
            sib.append({"rfilename": extra, "size": 1})
        self.send_json(200, {"id": repo_id, "sha": commit, "siblings": sib})

    # ---- upload --------------------------------------------------------------------------------
    def do_POST(self):
        body = self.read_body()
        self.log_request_entry(body)
        if self.switches():
            return
        path = urllib.parse.urlsplit(self.path).path
        c = control()
        port = self.server.server_address[1]
        if c.get("token") and not path.startswith("/lfs-") and self.headers.get("Authorization") != "Bearer " + c["token"]:
            self.error(401, message="Invalid credentials in Authorization header")
            return
        if path == "/api/repos/create":
            req = json.loads(body)
            name = (req.get("organization") + "/" if req.get("organization") else "") + req["name"]
            kind = "datasets" if req.get("type") == "dataset" else "models"
            d = repo_dir(kind, name)
            if os.path.isdir(d):
                self.error(409, message="You already created this model repo")
                return
            os.makedirs(d)
            self.send_json(200, {"url": "http://127.0.0.1:%d/%s" % (port, name)})
            return
        m = re.match(r"^/api/(models|datasets)/([^/]+/[^/]+)/preupload/(.+)$", path)
        if m:
            req = json.loads(body)
            out = []
            for f in req["files"]:
                sample = base64.b64decode(f["sample"])
                lfs = upload_as_lfs(f["path"], f["size"])
                if f["size"] == 0:
                    lfs = False
                out.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular",
                            "shouldIgnore": f["path"].startswith(".git/")})
                del sample
            self.send_json(200, {"files": out})
            return
        m = re.match(r"^/([^/]+/[^/]+)\.git/info/lfs/objects/batch$", path)
        if m:
            req = json.loads(body)
            chunk = int(c.get("multipart_chunk") or 0)
            objs, transfer = [], "basic"
            for o in req["objects"]:
                oid, size = o["oid"], o["size"]
                if oid in UPLOADS and len(UPLOADS[oid]) == size:
                    objs.append({"oid": oid, "size": size})  # already stored: no actions
                    continue
                verify = {"href": "http://127.0.0.1:%d/lfs-verify/%s" % (port, oid), "header": {}}
                if chunk and size > chunk:
                    transfer = "multipart"
                    n = (size + chunk - 1) // chunk
                    header = {"chunk_size": str(chunk)}
                    for i in range(1, n + 1):
                        header[str(i)] = "http://localhost:%d/lfs-upload/%s/%d?sig=x" % (port, oid, i)
                    objs.append({"oid": oid, "size": size, "actions": {
                        "upload": {"href": "http://127.0.0.1:%d/lfs-complete/%s" % (port, oid), "header": header},
                        "verify": verify}})
                else:
                    objs.append({"oid": oid, "size": size, "actions": {
                        "upload": {"href": "http://localhost:%d/lfs-upload/%s?sig=x" % (port, oid), "header": {}},
                        "verify": verify}})
            self.send(200, json.dumps({"transfer": transfer, "objects": objs}).encode(),
                      {"Content-Type": "application/vnd.git-lfs+json"})
            return
        m = re.match(r"^/lfs-complete/([0-9a-f]{64})$", path)
        if m:
            oid = m.group(1)
            req = json.loads(body)
            parts = sorted(req["parts"], key=lambda p: p["partNumber"])
            data = b"".join(bytes(UPLOADS.get(oid + "/%d" % p["partNumber"], b"")) for p in parts)
            for p in parts:
                if hashlib.md5(bytes(UPLOADS.get(oid + "/%d" % p["partNumber"], b""))).hexdigest() != p["etag"]:
                    self.error(400, message="bad part etag")
                    return
            if hashlib.sha256(data).hexdigest() != oid:
                self.error(400, message="assembled object does not match oid")
                return
            UPLOADS[oid] = data
            self.send_json(200, {})
            return
        m = re.match(r"^/lfs-verify/([0-9a-f]{64})$", path)
        if m:
            oid = m.group(1)
            ok = oid in UPLOADS and hashlib.sha256(bytes(UPLOADS[oid])).hexdigest() == oid
            self.send_json(200 if ok else 404, {})
            return
        m = re.match(r"^/api/(models|datasets)/([^/]+/[^/]+)/commit/(.+)$", path)
        if m:
            kind, repo_id = m.group(1), m.group(2)
            lines = [json.loads(l) for l in body.decode().splitlines() if l.strip()]
            d = repo_dir(kind, repo_id)
            if not os.path.isdir(d):
                self.error(404, "RepoNotFound", "Repository not found")
                return
            for op in lines[1:]:
                v = op["value"]
                dst = os.path.join(d, *v["path"].split("/"))
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                if op["key"] == "file":
                    with open(dst, "wb") as f:
                        f.write(base64.b64decode(v["content"]))
                elif op["key"] == "lfsFile":
                    if v["oid"] not in UPLOADS:
                        self.error(422, message="lfs object %s was not uploaded" % v["oid"])
                        return
                    with open(dst, "wb") as f:
                        f.write(bytes(UPLOADS[v["oid"]]))
            commit = list_repo(kind, repo_id)[0]
            self.send_json(200, {"commitUrl": "http://127.0.0.1:%d/%s/commit/%s" % (port, repo_id, commit),
                                 "commitOid": commit})
            return
        self.error(404, message="unknown route")

    def do_PUT(self):
        body = self.read_body()
        self.log_request_entry(body)
        if self.switches():
            return
        path = urllib.parse.urlsplit(self.path).path
        m = re.match(r"^/lfs-upload/([0-9a-f]{64})(?:/(\d+))?$", path)
        if not m:
            self.error(404, message="unknown route")
            return
        oid, part = m.group(1), m.group(2)
        if part:
            UPLOADS[oid + "/" + part] = body
            self.send(200, b"", {"ETag": '"%s"' % hashlib.md5(body).hexdigest()})
        else:
            UPLOADS[oid] = body
            self.send(200, b"")

    def do_HEAD(self):
        self.handle_download(True)

    def do_GET(self):
        self.handle_download(False)


def main():
    global ROOT
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--port-file", required=True)
    a = ap.parse_args()
    ROOT = a.root
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.replace(tmp, a.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
