"""Dagster's SQLite event log, storing a batch of events in one transaction per database.

A ranged run records one materialization per asset and day: a year's dbt run over one site,
~5,800. Dagster's SQLite event log stores each on its own: a new SQLite engine and a commit in
the run's database, then in the index database (~14 ms an event, 85 of that run's 93 s, while
dbt waits on its full stdout pipe). Dagster hands a partitioned output's events, and a run's
planned events, to `store_event_batch` when DAGSTER_EVENT_BATCH_SIZE is set (EVENT_BATCH_ENV);
its PostgreSQL event log then writes the batch at once, its SQLite one still event by event.

`BatchedSqliteEventLogStorage` stores the batch with the SQLite event log's own `store_event`,
event by event, but inside one open transaction on each of the two databases: the same rows,
one engine and one commit each. In a batch an asset's row is updated once per kind of event,
as the PostgreSQL event log does; "table exists?" is asked of SQLite once, not per event; a
planned check's event is serialized once, not once per partition. The instance under
$CASCADE_HOME/dagster uses it (`runners.prepare_dagster_home`); Dagster falls back to single
events if a batch fails. A year's dbt run over one site: 93 s before, 28 s after.

Every event, batched or not, goes through one engine per database whose connection stays
open (`_connect`): Dagster's makes a new engine each time, so each statement is compiled
again and each event closes the database's last connection, which checkpoints its
write-ahead log. An hourly run's ~106 check results: ~2 s of CPU.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager

from dagster._core.events import ASSET_CHECK_EVENTS, ASSET_EVENTS, BATCH_WRITABLE_EVENTS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import serialize_value
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

# Dagster's switch for batched event writes (read at every event): a partitioned output's
# events come in one batch of up to this many
EVENT_BATCH_ENV = {"DAGSTER_EVENT_BATCH_SIZE": "1000"}
# what store_event writes to the index database for: asset and asset check events
BATCHED_EVENTS = BATCH_WRITABLE_EVENTS & (ASSET_EVENTS | ASSET_CHECK_EVENTS)
# run databases kept open at once besides the index (a process writes one run at a time)
OPEN_RUN_DATABASES = 4


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """SqliteEventLogStorage whose `store_event_batch` commits once per database."""

    def __init__(self, base_dir: str, inst_data=None) -> None:
        # this thread's open batch: .connections (shard -> connection), .assets (asset rows due)
        self._batch = threading.local()
        self._tables: set[str] = set()  # tables seen to exist (has_table)
        self._engines: OrderedDict[str, Engine] = OrderedDict()  # shard -> open engine (LRU)
        self._engines_pid = os.getpid()
        self._inherited: list[OrderedDict[str, Engine]] = []  # a forked child's, left alone
        super().__init__(base_dir, inst_data)
        self._db_lock = threading.RLock()  # held for a whole batch, across its connections

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> BatchedSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def has_table(self, table_name: str) -> bool:
        """Dagster asks before storing each asset event's tags, with a new SQLite engine every
        time (a third of a year's events' time); a table that exists stays."""
        if table_name not in self._tables:
            with self.index_connection() as connection:
                if connection.dialect.has_table(connection, table_name):
                    self._tables.add(table_name)
        return table_name in self._tables

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        """A transaction on the shard's database, on its open connection (Dagster's own makes
        a new engine every time: every statement compiled anew, and closing the database's
        last connection checkpoints its write-ahead log, once per event)."""
        open_connections = getattr(self._batch, "connections", None) or {}
        if shard in open_connections:
            yield open_connections[shard]  # inside the batch's transaction
            return
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as connection, connection.begin():
                yield connection

    def _engine(self, shard: str) -> Engine:
        """The shard's engine, one connection kept open in its pool (the index and the last
        OPEN_RUN_DATABASES runs); called under the lock. A forked child opens its own."""
        if self._engines_pid != os.getpid():  # never closed here: they are the parent's
            self._inherited.append(self._engines)
            self._engines, self._engines_pid = OrderedDict(), os.getpid()
        if shard in self._engines:
            self._engines.move_to_end(shard)
            return self._engines[shard]
        engine = self._engines[shard] = create_engine(
            self.conn_string_for_shard(shard),
            # one connection kept, used under the lock by any thread; a nested use opens another
            poolclass=QueuePool,
            pool_size=1,
            max_overflow=-1,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
        )
        runs = [name for name in self._engines if name != INDEX_SHARD_NAME]
        for name in runs[:-OPEN_RUN_DATABASES]:
            self._engines.pop(name).dispose()
        return engine

    def _close_engines(self) -> None:
        with self._db_lock:
            if self._engines_pid == os.getpid():
                for engine in self._engines.values():
                    engine.dispose()
            else:
                self._inherited.append(self._engines)
            self._engines = OrderedDict()

    def wipe(self) -> None:
        self._close_engines()  # the run databases are deleted
        super().wipe()

    def dispose(self) -> None:
        self._close_engines()
        super().dispose()

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        run_ids = {event.run_id for event in events}
        kinds = {event.dagster_event_type for event in events}
        if len(run_ids) != 1 or not kinds <= BATCHED_EVENTS:
            super().store_event_batch(events)  # one by one
            return
        (run_id,) = run_ids
        with self._db_lock, ExitStack() as stack:
            connections = {}
            for shard in (run_id, INDEX_SHARD_NAME):
                connections[shard] = stack.enter_context(self._connect(shard))
            self._batch.connections, self._batch.assets = connections, {}
            try:
                for event in events:
                    self.store_event(event)
                for event, event_id in self._batch.assets.values():  # in the batch's order
                    super()._store_asset_event(connections[INDEX_SHARD_NAME], event, event_id)
            finally:
                self._batch.connections = self._batch.assets = None

    def _store_asset_event(self, conn: Connection, event: EventLogEntry, event_id: int) -> None:
        """An asset's row holds its last materialization, run and time: in a batch, only each
        asset's last event of each kind updates it, once the batch is stored (Dagster's
        PostgreSQL event log keeps a batch's last event alone). The same row in the end."""
        assets = getattr(self._batch, "assets", None)
        if assets is None:
            super()._store_asset_event(conn, event, event_id)
            return
        key = (event.get_dagster_event().asset_key, event.dagster_event_type)
        assets.pop(key, None)  # re-inserted last: the dict keeps the order of last events
        assets[key] = (event, event_id)

    def _store_asset_check_evaluation_planned(self, event: EventLogEntry, event_id) -> None:
        """Dagster's rows, one per planned partition, with the event serialized once: Dagster
        serializes it again for every row, and it holds all the partitions (a year's dbt run:
        55 checks x 365 rows x an event of 365 keys, 9 of its 46 s)."""
        planned = event.get_dagster_event().event_specific_data
        subset = planned.partitions_subset
        row = dict(
            asset_key=planned.asset_key.to_string(),
            check_name=planned.check_name,
            run_id=event.run_id,
            execution_status=AssetCheckExecutionRecordStatus.PLANNED.value,
            evaluation_event=serialize_value(event),
            evaluation_event_timestamp=self._event_insert_timestamp(event),
            evaluation_event_storage_id=event_id,
        )
        partitions = subset.get_partition_keys() if subset else [None]
        with self.index_connection() as conn:
            conn.execute(
                AssetCheckExecutionsTable.insert(), [row | {"partition": p} for p in partitions]
            )
