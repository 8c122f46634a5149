"""Serves moto's AWS emulator on loopback with DynamoDB requests serialized.

Stock moto handles requests on many threads, and its DynamoDB backend is not safe under that: concurrent
conditional writes can both succeed, and a cancelled TransactWriteItems restores a snapshot of the table over
writes other requests made meanwhile. This launcher wraps moto's WSGI app so that every request whose
`X-Amz-Target` starts with `DynamoDB` (DynamoDB and DynamoDB Streams) runs under one lock, response included.
Every other service stays concurrent, so SQS long polls do not block the tables.

DynamoDB's item-bearing answers are written with `json.dumps` rather than moto's model-driven serializer
(`fast_item_responses`), and a few more of moto's costs are cut, each said in its function's docstring.

It also answers, itself, the read-only `GET /_local/ses/sent`: every message SES accepted, for `local-stack mail`
and tests (see `LocalEndpoints`).

Usage: python moto_launcher.py --port 0
Prints one line `{"port": <bound port>}` on stdout once the socket is listening, then serves until killed.
"""

import argparse
import itertools
import json
import logging
import os
import signal
import sys
import threading
import time
from collections import defaultdict

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server


class RequestStats:
    """Per-operation counts and times, printed to stderr every `interval` seconds when requests came in.

    Switched on with LOCAL_MOTO_STATS_SECONDS=<seconds>: for finding where a slow run spends its time. DynamoDB
    rows are per operation, table and index. `wait` is time spent waiting for the DynamoDB lock, `busy` the time
    spent serving (under the lock for DynamoDB).
    """

    def __init__(self, interval):
        self.guard = threading.Lock()
        self.rows = defaultdict(lambda: [0, 0.0, 0.0])
        self.dirty = False
        thread = threading.Thread(target=self._report, args=(interval,), daemon=True)
        thread.start()

    @staticmethod
    def detail(environ, target):
        """`target` with the table and index a DynamoDB request names; the body is kept for the app."""
        import io

        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return target
        table = request.get("TableName") or ",".join(request.get("RequestItems") or {})
        index = request.get("IndexName")
        name = table.rsplit("-", 1)[-1] if table else ""
        return f"{target} {name}{'/' + index if index else ''}"

    def add(self, target, wait, busy):
        with self.guard:
            row = self.rows[target]
            row[0] += 1
            row[1] += wait
            row[2] += busy
            self.dirty = True

    def _report(self, interval):
        while True:
            time.sleep(interval)
            with self.guard:
                if not self.dirty:
                    continue
                self.dirty = False
                rows = sorted(self.rows.items(), key=lambda kv: -kv[1][2])
            lines = [f"{t:<45} n={n:<8} busy_s={b:9.2f} ms_each={1000 * b / max(n, 1):7.2f} wait_s={w:9.2f}"
                     for t, (n, w, b) in rows]
            print("moto stats (cumulative):\n  " + "\n  ".join(lines), file=sys.stderr, flush=True)


class SerializedDynamoDB:
    """WSGI middleware: one request at a time for DynamoDB and DynamoDB Streams."""

    def __init__(self, app, stats=None):
        self.app = app
        self.lock = threading.Lock()
        self.stats = stats

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith("DynamoDB"):
            if self.stats is None:
                return self.app(environ, start_response)
            began = time.monotonic()
            body = self._serve(environ, start_response)
            self.stats.add(target or environ.get("PATH_INFO", "")[:40], 0.0, time.monotonic() - began)
            return body
        if self.stats is not None:
            target = self.stats.detail(environ, target)
        asked = time.monotonic()
        with self.lock:
            began = time.monotonic()
            body = self._serve(environ, start_response)
        if self.stats is not None:
            self.stats.add(target, began - asked, time.monotonic() - began)
        return body

    def _serve(self, environ, start_response):
        result = self.app(environ, start_response)
        try:
            return list(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()


class LocalEndpoints:
    """WSGI middleware: the launcher's own read-only endpoints, answered without moto.

    `GET /_local/ses/sent` -> `{"messages": [...]}`: every message in every account and region's SES backend
    (`sent_messages`: SES v1 and v2 sends), oldest first, each `{"id", "source", "destinations": [...], "raw",
    "subject", "body"}`. `raw` is the MIME text of a raw send (SES v2 `Content.Raw`, v1 SendRawEmail), null
    otherwise; `subject` and `body` are those of a simple send (moto keeps only the HTML body when both are
    given), null otherwise. `destinations` lists the recipients moto recorded: for a raw send, the ones of the
    request followed by those of the To, Cc and Bcc headers (`Name <address>` when the header has a name).
    Templated sends list their recipients with null raw, subject and body.
    """

    PREFIX = "/_local/"

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith(self.PREFIX):
            return self.app(environ, start_response)
        if path != "/_local/ses/sent":
            return self._json(start_response, "404 Not Found", {"error": f"no such endpoint: {path}"})
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return self._json(start_response, "405 Method Not Allowed", {"error": "GET only"})
        return self._json(start_response, "200 OK", {"messages": sent_emails()})

    @staticmethod
    def _json(start_response, status, value):
        body = json.dumps(value).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


_SENT_ORDER = itertools.count()


def numbered_sent_emails():
    """Stamps each SES message moto creates with a process-wide sequence number.

    Each SES backend (one per account and region) keeps its own list; the number orders messages of several
    backends as they were sent. `next()` on `itertools.count` is atomic under the GIL.
    """
    import moto.ses.models as ses_models

    for cls in (ses_models.Message, ses_models.RawMessage, ses_models.TemplateMessage):
        original = cls.__init__

        def init(self, *args, _original=original, **kwargs):
            _original(self, *args, **kwargs)
            self._local_seq = next(_SENT_ORDER)

        cls.__init__ = init


def _addresses(destinations):
    """moto's destinations (a list, or a dict of ToAddresses/CcAddresses/BccAddresses lists) as one list."""
    if isinstance(destinations, dict):
        out = []
        for key in ("ToAddresses", "CcAddresses", "BccAddresses"):
            out.extend(destinations.get(key) or [])
        return [str(a) for a in out]
    if isinstance(destinations, list):
        out = []
        for d in destinations:
            if isinstance(d, dict):  # bulk templated: [{"Destination": {...}}, ...]
                out.extend(_addresses(d.get("Destination", d)))
            else:
                out.append(str(d))
        return out
    return []


def sent_emails():
    """Every message of every SES backend, oldest first, as `LocalEndpoints` describes."""
    from moto.ses.models import Message, RawMessage, ses_backends

    found = []
    # Plain dict views: BackendDict and its per-account dicts create backends on item access.
    for _, regions in list(dict.items(ses_backends)):
        for _, backend in list(dict.items(regions)):
            found.extend(list(backend.sent_messages))
    found.sort(key=lambda m: getattr(m, "_local_seq", -1))
    out = []
    for m in found:
        raw = m.raw_data if isinstance(m, RawMessage) else None
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", "replace")
        simple = isinstance(m, Message)
        out.append(
            {
                "id": getattr(m, "id", None),
                "source": getattr(m, "source", None),
                "destinations": _addresses(getattr(m, "destinations", None)),
                "raw": raw,
                "subject": m.subject if simple else None,
                "body": m.body if simple else None,
            }
        )
    return out


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


def partition_queries():
    """Makes a DynamoDB Query cost O(items of the partition) instead of O(n log n) in the table's items.

    moto 5.2.5's `Table.query` starts from `all_items()`, which lists every item of the table and sorts it by key,
    then keeps the items of the queried partition (or, for an index, the items whose index keys match) and sorts
    those again. With a few thousand items (a seeded catalog and its stock) each Query costs 50 ms of one core
    under the DynamoDB lock, so every other table request queues behind queries. DynamoDB reads a Query from the
    one partition it names. While a Query runs, this hands it, for the base table, only that partition's items
    (moto keeps them in a dict by partition key: the same items the full scan would have kept), and for an
    index, the table's items unsorted (moto fully sorts the matching items by the index's and the table's keys
    afterwards, so the first sort decided nothing). Matching, ordering, paging, filters and projections are
    moto's own code, unchanged.
    """
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.table import Table

    scope = threading.local()
    original_query = Table.query
    original_all_items = Table.all_items

    def query(self, hash_key, *args, **kwargs):
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        scope.query = (self, None if index_name else hash_key)
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            scope.query = None

    def all_items(self):
        table, hash_key = getattr(scope, "query", None) or (None, None)
        if table is not self:
            return original_all_items(self)
        if hash_key is None:
            items = []
            for partition in self.items.values():
                items.extend(partition.values() if self.range_key_attr else [partition])
            return items
        partition = self.items.get(hash_key)
        if partition is None:
            return []
        if not self.range_key_attr:
            return [partition] if isinstance(partition, Item) else []
        return sorted(partition.values(), key=lambda item: item.range_key)

    Table.query = query
    Table.all_items = all_items


def quiet_fifo_long_polls():
    """Makes a long poll on a FIFO queue wait instead of spinning.

    moto 5.2.5's ReceiveMessage waits with `Condition.wait_for(lambda: queue.messages)`, which returns at once
    while any message is visible, even when every visible message belongs to a message group that is in flight
    and cannot be delivered. A long poll on such a queue (a FIFO waiting room whose only group is being
    processed) then rescans the whole queue in a busy loop for its full wait time, holding the interpreter's
    lock that the DynamoDB requests need. This wait sleeps until a message is added or deleted (both notify),
    or 100 ms at most, and the caller rescans as before: delivery rules are unchanged.
    """
    import moto.sqs.models as sqs_models

    def wait_for_messages(self, timeout):
        with self._messages_lock:
            self._messages_lock.wait(timeout=min(timeout, 0.1))

    original_delete = sqs_models.Queue.delete_message

    def delete_message(self, receipt_handle):
        original_delete(self, receipt_handle)
        with self._messages_lock:
            self._messages_lock.notify_all()

    sqs_models.Queue.wait_for_messages = wait_for_messages
    sqs_models.Queue.delete_message = delete_message


def indexed_cognito_aliases():
    """Makes finding a Cognito user by email O(1) instead of O(users).

    moto 5.2.5 finds a user of a pool with `UsernameAttributes` (sign-in by email) by scanning every user and
    flattening its attributes, several times per request (AdminGetUser, AdminCreateUser, InitiateAuth, each
    token it signs), so signing in the n-th new user costs O(n) and a benchmark's 10,000 shoppers take
    quadratic time. This keeps, per pool, an index from alias value to the first user holding it, with the
    scan's answer: users are only appended to a pool's dict (new ones are indexed incrementally), a removal or
    a change to an indexed user's attributes rebuilds it, and every hit is checked against the pool.
    """
    from itertools import islice

    import moto.cognitoidp.models as cognito
    from moto.cognitoidp.utils import flatten_attrs

    state = {"version": 0}
    guard = threading.RLock()
    original_update = cognito.CognitoIdpUser.update_attributes
    original_delete = cognito.CognitoIdpUser.delete_attributes

    def update_attributes(self, new_attributes):
        original_update(self, new_attributes)
        if getattr(self, "_alias_indexed", False):
            state["version"] += 1

    def delete_attributes(self, attrs_to_delete):
        original_delete(self, attrs_to_delete)
        if getattr(self, "_alias_indexed", False):
            state["version"] += 1

    def _get_user(self, username):
        attribute_types = self.extended_config.get("UsernameAttributes")
        if not attribute_types:
            return self.users.get(username)
        with guard:
            user = _indexed(self, attribute_types).get(username)
            if user is not None and self.users.get(user.username) is not user:
                self.__dict__.pop("_alias_index", None)
                return original_get_user(self, username)
        return user if user is not None else self.users.get(username)

    def _indexed(pool, attribute_types):
        users = pool.users
        index = pool.__dict__.get("_alias_index")
        if index is not None:
            count = index["count"]
            if index["version"] != state["version"] or len(users) < count:
                index = None
            elif count and len(users) == count and next(reversed(users)) != index["last"]:
                index = None
            elif count and len(users) > count and next(islice(users, count - 1, None), None) != index["last"]:
                # Only appends keep the indexed prefix as it was: its last key is still at its place.
                index = None
        if index is None:
            index = {"version": state["version"], "count": 0, "last": None, "by_alias": {}}
            pool.__dict__["_alias_index"] = index
        for key, user in islice(list(users.items()), index["count"], None):
            user._alias_indexed = True
            flat = flatten_attrs(user.attributes)
            for attribute_type in attribute_types:
                value = flat.get(attribute_type)
                if value is not None:
                    index["by_alias"].setdefault(value, user)
            index["last"] = key
            index["count"] += 1
        return index["by_alias"]

    original_get_user = cognito.CognitoIdpUserPool._get_user
    cognito.CognitoIdpUser.update_attributes = update_attributes
    cognito.CognitoIdpUser.delete_attributes = delete_attributes
    cognito.CognitoIdpUserPool._get_user = _get_user



def fast_item_responses():
    """Writes DynamoDB's item-bearing answers with `json.dumps` instead of moto's model-driven serializer.

    moto 5.2.5 turns every answer into its wire form by walking the service model shape by shape: for an item
    that is a map of attribute-value structures, per attribute and per nesting level. Measured with py-spy on the
    end-to-end suite's emulator (sampling the thread that holds the interpreter's lock), that walk was 47% of the
    emulator's CPU, and the emulator (one Python process) is what those tests wait on. DynamoDB speaks JSON, and
    for the actions below moto's result is already the wire document: the attribute values are `{"S": ...}`
    dicts, with bytes for binary values and datetimes for timestamps, which are written as the JSON protocol
    writes them (base64; epoch seconds, to the millisecond). Anything else (an error, an object, a paginated result) takes moto's
    own path. With LOCAL_MOTO_CHECK_JSON=<file>, both are computed and every difference is appended to the file:
    over a whole `infra/test.sh` run the only one was a `ConsumedCapacityUnits` member that moto adds to
    DeleteItem's answer and its serializer drops (not in the model; the SDK skips members it does not know).
    """
    import base64
    import calendar
    import datetime

    from moto.core.responses import ActionResult, BaseResponse
    from moto.dynamodb.responses import DynamoHandler, DynamoResult
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    actions = {
        "GetItem", "BatchGetItem", "TransactGetItems", "Query", "Scan", "PutItem", "UpdateItem", "DeleteItem",
        "BatchWriteItem", "TransactWriteItems", "GetRecords", "GetShardIterator",
    }
    original = BaseResponse.serialized
    check = os.environ.get("LOCAL_MOTO_CHECK_JSON")

    def wire(value):
        if isinstance(value, (bytes, bytearray)):
            return base64.b64encode(value).decode()
        if isinstance(value, datetime.datetime):  # as moto's serializer: whole milliseconds, truncated
            seconds = calendar.timegm(value.timetuple())
            return seconds + (value.microsecond // 1000) / 1000.0 if value.microsecond else seconds
        raise TypeError(type(value).__name__)

    def serialized(self, action_result):
        action = self._get_action()
        if action not in actions or type(action_result) not in (ActionResult, DynamoResult):
            return original(self, action_result)
        try:
            body = json.dumps(action_result.result, default=wire, separators=(",", ":"))
        except (TypeError, ValueError):
            return original(self, action_result)
        headers = {"Content-Type": "application/x-amz-json-1.0"}
        headers.update(self.response_headers)
        if check:
            status, slow_headers, slow_body = original(self, action_result)
            fast, slow = json.loads(body), json.loads(slow_body) if slow_body else {}
            if status != 200 or fast != slow or headers != dict(slow_headers):
                with open(check, "a") as out:
                    out.write(json.dumps({"action": action, "status": status, "fast": fast, "slow": slow,
                                          "headers": [headers, dict(slow_headers)]}, default=str) + "\n")
        return 200, headers, body

    DynamoHandler.serialized = serialized
    DynamoDBStreamsHandler.serialized = serialized


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
    numbered_sent_emails()
    quiet_fifo_long_polls()
    indexed_cognito_aliases()
    if not args.no_lock:
        fast_transactions()
        partition_queries()
        fast_item_responses()
        interval = float(os.environ.get("LOCAL_MOTO_STATS_SECONDS", "0") or 0)
        app = SerializedDynamoDB(app, RequestStats(interval) if interval > 0 else None)
    app = LocalEndpoints(app)
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
