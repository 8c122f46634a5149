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
import os
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


def fast_transactions():
    """Makes TransactWriteItems cost O(actions) instead of O(actions x table size).

    moto 5.2.5 deep-copies every table a transaction touches, once per action, so that it can restore them if an
    action fails: with a few thousand items a 10-action transaction takes seconds, and under the DynamoDB lock
    every other request waits for it. Under that lock nothing else runs during a transaction, so this version
    does what DynamoDB specifies instead: every condition is evaluated against the state before the transaction,
    nothing is written unless all pass (TransactionCanceled with per-action reasons otherwise), and a failure
    while writing is undone item by item.
    """
    import copy

    import moto.dynamodb.models as models
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    def transact_write_items(self, transact_items):
        if len(transact_items) > 100:
            raise TooManyTransactionsException()
        seen = set()
        errors = []
        plan = []
        for item in transact_items:
            if len(list(item.keys())) > 1:
                raise TransactWriteSingleOpException
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            original_item = None
            try:
                table_name = op["TableName"]
                if op_type == "Put":
                    table = self.get_table(table_name)
                    attrs = op["Item"]
                    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                    if table.range_key_attr is not None:
                        key[table.range_key_attr] = attrs[table.range_key_attr]
                else:
                    key = op["Key"]
                unique = (str(table_name), str(dict(sorted(key.items()))))
                if unique in seen:
                    raise MultipleTransactionsException()
                seen.add(unique)
                current = self.get_item(table_name, key)
                condition = op.get("ConditionExpression")
                if condition is not None:
                    check = get_filter_expression(
                        condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
                    )
                    if not check.expr(current):
                        if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                            original_item = current.to_json()["Attributes"]
                        raise ConditionalCheckFailed(item=original_item)
                errors.append((None, None, None))
                plan.append((op_type, op, table_name, key, current))
            except (MultipleTransactionsException, MockValidationException):
                raise
            except ConditionalCheckFailed as e:
                errors.append(("ConditionalCheckFailed", str(e.message), original_item))
            except Exception as e:  # noqa: BLE001 - reported per action, as moto does
                errors.append((type(e).__name__, str(e), original_item))
        if any(code is not None for code, _, _ in errors):
            raise TransactionCanceledException(errors)

        undo = []
        try:
            for op_type, op, table_name, key, current in plan:
                before = copy.deepcopy(current.to_json()["Attributes"]) if current else None
                if op_type == "Put":
                    undo.append((table_name, key, before))
                    self.put_item(table_name, op["Item"])
                elif op_type == "Delete":
                    undo.append((table_name, key, before))
                    self.delete_item(table_name, key)
                elif op_type == "Update":
                    undo.append((table_name, key, before))
                    self.update_item(
                        table_name,
                        key,
                        update_expression=op["UpdateExpression"],
                        expression_attribute_names=op.get("ExpressionAttributeNames"),
                        expression_attribute_values=op.get("ExpressionAttributeValues"),
                    )
        except MockValidationException:
            _undo(self, undo)
            raise
        except Exception as e:  # noqa: BLE001
            _undo(self, undo)
            failed = len(undo) - 1
            reasons = [(None, None, None)] * len(plan)
            reasons[failed] = (type(e).__name__, str(e), None)
            raise TransactionCanceledException(reasons)

    def _undo(backend, undo):
        for table_name, key, before in reversed(undo):
            try:
                if before is None:
                    backend.delete_item(table_name, key)
                else:
                    backend.put_item(table_name, before)
            except Exception:  # noqa: BLE001 - best effort, as moto's own snapshot restore
                logging.exception("undo of a failed transaction action failed")

    models.DynamoDBBackend.transact_write_items = transact_write_items


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--verbose", action="store_true", help="log every request")
    parser.add_argument("--no-lock", action="store_true", help="stock moto behaviour, for experiments")
    args = parser.parse_args()
    if not args.verbose:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    # State is in memory only, and request threads may sit in 20 s SQS long polls: exit at once.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))

    app = DomainDispatcherApplication(create_backend_app)
    if not args.no_lock:
        fast_transactions()
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
