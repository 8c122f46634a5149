"""Serves moto's AWS emulator on loopback with DynamoDB requests serialized.

Stock moto handles requests on many threads, and its DynamoDB backend is not safe under that: concurrent
conditional writes can both succeed, and a cancelled TransactWriteItems restores a snapshot of the table over
writes other requests made meanwhile. This launcher wraps moto's WSGI app so that every request whose
`X-Amz-Target` starts with `DynamoDB` (DynamoDB and DynamoDB Streams) runs under one lock, response included.
Every other service stays concurrent, so SQS long polls do not block the tables.

Usage: python moto_launcher.py --port 0
Prints one line `{"port": <bound port>}` on stdout once the socket is listening, then serves until killed.
"""

import argparse
import json
import logging
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server


class SerializedDynamoDB:
    """WSGI middleware: one request at a time for DynamoDB and DynamoDB Streams."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith("DynamoDB"):
            return self.app(environ, start_response)
        with self.lock:
            result = self.app(environ, start_response)
            try:
                body = list(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        return body


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--verbose", action="store_true", help="log every request")
    parser.add_argument("--no-lock", action="store_true", help="stock moto behaviour, for experiments")
    args = parser.parse_args()
    if not args.verbose:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))

    app = DomainDispatcherApplication(create_backend_app)
    if not args.no_lock:
        app = SerializedDynamoDB(app)
    server = make_server(
        args.host,
        args.port,
        app,
        threaded=True,
        request_handler=MotoRequestHandler,
    )
    print(json.dumps({"port": server.server_port}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
