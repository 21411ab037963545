"""moto_server with DynamoDB transactions made isolated and atomic, as DynamoDB's are.

moto 5.2.5's TransactWriteItems deep-copies every table it touches before each transaction and,
when a condition fails, puts that copy back. Concurrent requests (moto serves each on its own
thread) are not kept out meanwhile, so two racing transactions can both pass their conditions,
and a failed one can undo writes other requests made in between. It also makes every
transaction cost a copy of the whole table. Real DynamoDB isolates transactions from each other
and from single-item writes, which is exactly what the daemon's replicas rely on.

This launcher (used by the tests and the demo in place of `moto_server`) therefore:
  * serialises DynamoDB requests (one lock; SQS, SNS and the rest stay concurrent), and
  * snapshots only the items a transaction touches, restoring just those when it is cancelled.
It also gives Query the cost it has on DynamoDB: moto sorts every item of the table on every
Query; here a Query considers only the items of its partition (base table) or the items that
carry the index's partition attribute (index), and moto's own code does the rest (conditions,
order, paging, projections). Arguments are moto_server's (`-H HOST -p PORT`).
"""

import copy
import sys
import threading

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.server import main

_LOCK = threading.RLock()


class _NoTableCopy:
    """Stands in for `copy` inside moto's DynamoDB backend: no whole-table snapshots."""

    @staticmethod
    def deepcopy(value, memo=None):
        if isinstance(value, Table):
            return value
        return copy.deepcopy(value, memo)


dynamodb_models.copy = _NoTableCopy

_original_transact = DynamoDBBackend.transact_write_items


def _key_of(backend, op_type, op):
    table = backend.get_table(op["TableName"])
    if op_type == "Put":
        attrs = op["Item"]
        key = {table.hash_key_attr: attrs[table.hash_key_attr]}
        if table.range_key_attr is not None:
            key[table.range_key_attr] = attrs[table.range_key_attr]
        return key
    return op["Key"]


def _transact_write_items(self, transact_items):
    with _LOCK:
        snapshots = []
        for entry in transact_items:
            op_type, op = next(iter(entry.items()))
            try:
                key = _key_of(self, op_type, op)
                current = self.get_item(op["TableName"], key)
            except Exception:  # the original reports bad input its own way
                continue
            before = copy.deepcopy(current.to_json()["Attributes"]) if current else None
            snapshots.append((op["TableName"], key, before))
        try:
            return _original_transact(self, transact_items)
        except Exception:
            for table_name, key, before in reversed(snapshots):
                if before is None:
                    if self.get_item(table_name, key) is not None:
                        self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, before)
            raise


DynamoDBBackend.transact_write_items = _transact_write_items

_original_query = Table.query


def _query(self, hash_key, *args, **kwargs):
    index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
    conditions = kwargs.get("hash_key_conditions") or []

    def every_item():
        for entry in self.items.values():
            if self.range_key_attr:
                yield from entry.values()
            else:
                yield entry

    if index_name is None:
        partition = self.items.get(hash_key, {}) if hash_key is not None else None
        if partition is None:
            candidates = list(every_item())
        elif self.range_key_attr:
            candidates = list(partition.values())
        else:
            candidates = [partition]
    elif len(conditions) == 1 and conditions[0][1] is not None:
        attribute, value = conditions[0]
        candidates = [
            i for i in every_item() if attribute in i.attrs and i.attrs[attribute] == value
        ]
    else:
        candidates = list(every_item())
    self.all_items = lambda: candidates
    try:
        return _original_query(self, hash_key, *args, **kwargs)
    finally:
        del self.all_items


Table.query = _query

_original_call_action = DynamoHandler.call_action


def _call_action(self):
    with _LOCK:
        return _original_call_action(self)


DynamoHandler.call_action = _call_action

if __name__ == "__main__":
    main(sys.argv[1:])
