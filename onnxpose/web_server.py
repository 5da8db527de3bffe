"""``onnxpose serve-web``: a loopback-only static server for the page in ``web/``.

Serves, from one origin:

* ``/`` : ``web/`` (index.html, app.js);
* ``/model.onnx`` : the built model; ``/model.json`` : its ``onnxpose.*`` metadata as one JSON
  object (onnxruntime-web does not expose ``custom_metadata_map``, so the page reads this
  sidecar, computed from the model at start);
* ``/ort/`` : onnxruntime-web's ``dist/`` from the pinned peers install
  (``peers/node_modules/onnxruntime-web/dist``, ``bash scripts/install_peers.sh``);
* ``/files/`` : an optional extra directory (the runtime benchmark's models and raw tensors).

Responses carry COOP/COEP headers so the page is cross-origin isolated and onnxruntime-web's
WASM backend may use threads. Binds 127.0.0.1 only.
"""

from __future__ import annotations

import functools
import http.server
import json
import threading
import urllib.parse
from pathlib import Path

import onnx

from onnxpose.errors import OnnxPoseError
from onnxpose.metadata import PREFIX

REPO = Path(__file__).resolve().parents[1]
WEB_DIR = REPO / "web"
ORT_WEB_DIST = REPO / "peers" / "node_modules" / "onnxruntime-web" / "dist"
TYPES = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
         ".onnx": "application/octet-stream", ".json": "application/json",
         ".bin": "application/octet-stream"}


def model_sidecar(model_path: str | Path) -> dict:
    """The model's onnxpose metadata (``onnxpose.`` keys without the prefix) plus its outputs."""
    model = onnx.load(str(model_path), load_external_data=False)
    values = {p.key[len(PREFIX):]: json.loads(p.value) for p in model.metadata_props
              if p.key.startswith(PREFIX)}
    if "input" not in values or "decoder" not in values:
        raise OnnxPoseError(model_path, "not an onnxpose build (no onnxpose metadata)")
    values["outputs"] = [o.name for o in model.graph.output]
    return values


class _Handler(http.server.SimpleHTTPRequestHandler):
    routes: dict = {}      # url prefix -> directory
    files: dict = {}       # exact url -> file path
    blobs: dict = {}       # exact url -> bytes

    def log_message(self, *args):  # quiet
        pass

    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def guess_type(self, path):
        return TYPES.get(Path(str(path)).suffix, None) or super().guess_type(path)

    def translate_path(self, path):
        url = urllib.parse.unquote(path.split("?", 1)[0].split("#", 1)[0])
        if url in self.files:
            return str(self.files[url])
        for prefix, directory in sorted(self.routes.items(), key=lambda kv: -len(kv[0])):
            if url.startswith(prefix):
                parts = [p for p in url[len(prefix):].split("/") if p not in ("", ".", "..")]
                return str(Path(directory).joinpath(*parts))
        return str(Path(self.routes["/"]) / "__missing__")

    def do_GET(self):
        url = self.path.split("?", 1)[0]
        if url in self.blobs:
            body = self.blobs[url]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()


def make_server(model: str | Path | None = None, port: int = 0, extra_dir: str | Path | None = None,
                web_dir: Path = WEB_DIR, ort_dir: Path = ORT_WEB_DIST) -> http.server.ThreadingHTTPServer:
    """A server on 127.0.0.1:port (0: a free port; see ``server.server_address``), not started."""
    if not (Path(web_dir) / "index.html").is_file():
        raise OnnxPoseError(web_dir, "the web page is missing (serve-web runs from a checkout)")
    if not (Path(ort_dir) / "ort.all.min.js").is_file():
        raise OnnxPoseError(ort_dir, "onnxruntime-web is not installed: run bash scripts/install_peers.sh")
    routes = {"/": Path(web_dir), "/ort/": Path(ort_dir)}
    files, blobs = {}, {}
    if model is not None:
        files["/model.onnx"] = Path(model).resolve()
        blobs["/model.json"] = json.dumps(model_sidecar(model)).encode()
    if extra_dir is not None:
        routes["/files/"] = Path(extra_dir)
    handler = type("Handler", (_Handler,), {"routes": routes, "files": files, "blobs": blobs})
    return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)


def serve_in_thread(*args, **kwargs) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Start ``make_server(...)`` in a daemon thread; returns (server, base url)."""
    server = make_server(*args, **kwargs)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    return server, f"http://{host}:{port}/"
