"""A real nginx in front of a bench's gunicorn, configured as docs/SCALING.md documents.

It runs as the bench's own user (workers too, `daemon off`), with its
configuration, pid file, logs and temporary files in the Stack's data
directory, and listens on a free 127.0.0.1 port without TLS: what is measured
is nginx proxying to the sync workers and following X-Accel-Redirect to its
`internal` location, as in production.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
from pathlib import Path

from bench.harness import Stack
from testsupport.processes import Proc, free_port
from testsupport.waiting import wait_http

# Debian installs it outside an ordinary user's PATH.
NGINX_CANDIDATES = ("nginx", "/usr/sbin/nginx")


def nginx_binary() -> str | None:
    """The nginx executable, or None when it is not installed."""
    for candidate in NGINX_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def nginx_config(root: Path, port: int, upstream_port: int, media_root: Path) -> str:
    """The configuration: the `upstream`, `/protected-media/` and `/` blocks of docs/SCALING.md, on loopback."""
    temp = "\n".join(
        f"    {kind}_temp_path {root / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # Started by root, nginx would run its workers as nobody, who may not read the
    # data directory; as anyone else it ignores the directive (with a warning).
    user = f"{pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name}"
    return f"""daemon off;
user {user};
worker_processes auto;
pid {root / "nginx.pid"};
error_log {root / "error.log"} warn;

events {{
    # Every download is a connection of its own, next to the page clients' keep-alive ones.
    worker_connections 4096;
}}

http {{
    default_type application/octet-stream;
    access_log {root / "access.log"} combined buffer=64k flush=1s;
{temp}

    upstream photoevent {{
        server 127.0.0.1:{upstream_port};
    }}

    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 200m;

        location /protected-media/ {{
            internal;
            alias {media_root.resolve()}/;
            add_header Cache-Control "private, max-age=86400";
            sendfile on;
            tcp_nopush on;
        }}

        location / {{
            proxy_pass http://photoevent;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_buffering on;
            proxy_request_buffering on;
            proxy_read_timeout 120s;
        }}
    }}
}}
"""


def start_nginx(stack: Stack, binary: str, upstream_port: int, media_root: Path) -> Proc:
    """nginx in front of gunicorn on `upstream_port`, once it answers; `url` is set, `stop` ends it."""
    root = stack.dir / "nginx"
    root.mkdir(exist_ok=True)
    port = free_port()
    config = root / "nginx.conf"
    config.write_text(nginx_config(root, port, upstream_port, media_root))
    # -e: the default error log (/var/log/nginx) is not ours to write before the configuration is read.
    proc = stack.spawn("nginx", [binary, "-p", str(root), "-e", str(root / "error.log"), "-c", str(config)])
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/static/css/site.css", timeout=30, alive=proc.alive)
    except (TimeoutError, RuntimeError):
        error_log = root / "error.log"
        raise RuntimeError(
            f"nginx did not start:\n{proc.log}\n{error_log.read_text() if error_log.exists() else ''}"
        ) from None
    proc.url = url
    return proc
