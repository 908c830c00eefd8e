"""Files as the platforms serve them, on 127.0.0.1, and PDFs to serve.

`FileHost` is a strict fake of both file hosts a user's attachment comes from:
- Discord's CDN: a signed link (`?ex=<hex expiry>&is=…&hm=…`); past its expiry, or with the
  signature changed, 404 "This content is no longer available." (what the CDN says);
- Slack's `url_private_download`: needs `Authorization: Bearer <bot token>`; without it (or with
  another token) Slack answers 200 with its HTML sign-in page, not an error, which is the trap.
Every request is recorded (path, headers). `pdf()` writes a real PDF with a text layer (one
Helvetica text object a page); `pdf(scanned=True)` one with pages and no text.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

from aiohttp import web

from tests.fakes.network import Loopback

SIGN_IN_PAGE = b"<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in</body></html>"


@dataclass
class Hosted:
    data: bytes
    content_type: str
    token: str | None = None
    expires_at: float | None = None
    status: int = 200


@dataclass
class FileHost(Loopback):
    files: dict[str, Hosted] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    async def __aenter__(self) -> FileHost:
        app = web.Application()
        app.router.add_get("/{path:.+}", self._get)
        await self.serve(app)
        return self

    def cdn(self, name: str, data: bytes, content_type: str, *, ttl: float = 86_400) -> str:
        """A Discord CDN link to `data`, signed, expiring in `ttl` seconds."""
        path = f"attachments/{len(self.files) + 1}/{name}"
        expires = time.time() + ttl
        self.files[path] = Hosted(data, content_type, expires_at=expires)
        ex = f"{int(expires):x}"
        hm = hashlib.sha256(f"{path}{ex}".encode()).hexdigest()
        return f"http://127.0.0.1:{self.port}/{path}?ex={ex}&is={int(time.time()):x}&hm={hm}&"

    def private(self, name: str, data: bytes, content_type: str, *, token: str) -> str:
        """A Slack `url_private_download` to `data`, readable with `token` only."""
        path = f"files-pri/T0001-F{len(self.files) + 1:08d}/download/{name}"
        self.files[path] = Hosted(data, content_type, token=token)
        return f"http://127.0.0.1:{self.port}/{path}"

    def fail(self, url: str, status: int) -> None:
        self.files[url.split(f":{self.port}/", 1)[1].split("?")[0]].status = status

    async def _get(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        self.requests.append((path, dict(request.headers)))
        hosted = self.files.get(path)
        if hosted is None:
            return web.Response(status=404, text="Not Found")
        if hosted.status != 200:
            return web.Response(status=hosted.status, text="error")
        bearer = request.headers.get("Authorization")
        if hosted.token is not None and bearer != f"Bearer {hosted.token}":
            return web.Response(body=SIGN_IN_PAGE, content_type="text/html")
        if hosted.expires_at is not None:
            ex, hm = request.query.get("ex", ""), request.query.get("hm", "")
            signed = hashlib.sha256(f"{path}{ex}".encode()).hexdigest()
            if hm != signed or int(ex or "0", 16) < time.time() or hosted.expires_at < time.time():
                return web.Response(status=404, text="This content is no longer available.")
        return web.Response(body=hosted.data, headers={"Content-Type": hosted.content_type})


def pdf(pages: list[str] | None = None, *, scanned: bool = False) -> bytes:
    """A PDF 1.4 file: each page shows its text (Helvetica); `scanned`: pages, no text."""
    pages = pages or ["page one"]
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>", b""]
    font = 3
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    kids = []
    for text in pages:
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        lines = escaped.split("\n")
        shown = b"".join(
            f"BT /F1 12 Tf 72 {720 - 16 * n} Td ({line}) Tj ET\n".encode("latin-1")
            for n, line in enumerate(lines)
        )
        stream = b"" if scanned else shown
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        content = len(objects)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R"
            b" /Resources << /Font << /F1 %d 0 R >> >> >>" % (content, font)
        )
        kids.append(len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        len(kids),
    )
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (n, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
