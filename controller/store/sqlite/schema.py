"""The SQLite order store's schema and its migrations.

The schema version lives in ``schema_version`` (one row). Opening a database applies every
migration newer than that version, each in its own transaction, so a file written by an older
release is brought up to date and a file from a newer release is refused rather than damaged.
"""

from __future__ import annotations

import logging

from controller.store.base import StoreError
from controller.store.sql.db import Connection, transaction

log = logging.getLogger(__name__)

# Each migration is a list of statements; index i brings the schema from version i to i + 1.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE orders (
            id             TEXT PRIMARY KEY,
            seq            INTEGER NOT NULL UNIQUE,
            type           TEXT NOT NULL,
            status         TEXT NOT NULL,
            priority       INTEGER NOT NULL,
            due_at         TEXT NOT NULL,
            destination    TEXT NOT NULL,
            body           TEXT NOT NULL,
            fingerprint    TEXT NOT NULL,
            created_at     TEXT NOT NULL,
            updated_at     TEXT NOT NULL,
            step           TEXT,
            waiting_reason TEXT,
            picked         TEXT NOT NULL DEFAULT '{}'
        )
        """,
        "CREATE INDEX orders_status_seq ON orders (status, seq)",
        "CREATE INDEX orders_type_seq ON orders (type, seq)",
        """
        CREATE TABLE events (
            seq      INTEGER PRIMARY KEY AUTOINCREMENT,
            order_id TEXT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
            at       TEXT NOT NULL,
            type     TEXT NOT NULL,
            status   TEXT NOT NULL,
            data     TEXT NOT NULL DEFAULT '{}'
        )
        """,
        "CREATE INDEX events_order_seq ON events (order_id, seq)",
    ),
    # 2: the webhook outbox. Fan-out starts at the newest event already stored, so adding
    # webhooks to an existing line does not replay its whole history.
    (
        """
        CREATE TABLE outbox (
            id              INTEGER PRIMARY KEY AUTOINCREMENT,
            event_seq       INTEGER NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
            kind            TEXT NOT NULL,
            url             TEXT NOT NULL,
            state           TEXT NOT NULL DEFAULT 'pending',
            attempts        INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT NOT NULL,
            created_at      TEXT NOT NULL,
            finished_at     TEXT,
            last_error      TEXT,
            UNIQUE (event_seq, kind, url)
        )
        """,
        "CREATE INDEX outbox_state_due ON outbox (state, next_attempt_at)",
        "CREATE TABLE feed_cursors (name TEXT PRIMARY KEY, seq INTEGER NOT NULL)",
        "INSERT INTO feed_cursors (name, seq) SELECT 'webhooks', COALESCE(MAX(seq), 0) FROM events",
    ),
    # 3: inventory (see controller.store.sqlite.inventory.ops). tote '' is loose stock.
    (
        """
        CREATE TABLE stock (
            location   TEXT NOT NULL,
            tote       TEXT NOT NULL DEFAULT '',
            sku        TEXT NOT NULL,
            on_hand    INTEGER NOT NULL CHECK (on_hand >= 0),
            updated_at TEXT NOT NULL,
            PRIMARY KEY (location, tote, sku)
        )
        """,
        "CREATE INDEX stock_sku ON stock (sku)",
        "CREATE INDEX stock_tote ON stock (tote)",
        """
        CREATE TABLE totes (
            tote       TEXT PRIMARY KEY,
            location   TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """,
        "CREATE INDEX totes_location ON totes (location)",
        """
        CREATE TABLE reservations (
            id         INTEGER PRIMARY KEY AUTOINCREMENT,
            order_id   TEXT NOT NULL,
            trip_id    TEXT NOT NULL,
            line_id    TEXT NOT NULL,
            sku        TEXT NOT NULL,
            location   TEXT NOT NULL,
            quantity   INTEGER NOT NULL CHECK (quantity > 0),
            picked     INTEGER NOT NULL DEFAULT 0 CHECK (picked >= 0),
            short      INTEGER NOT NULL DEFAULT 0 CHECK (short >= 0),
            state      TEXT NOT NULL CHECK (state IN ('reserved', 'consumed', 'released')),
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """,
        "CREATE INDEX reservations_open ON reservations (state, sku, location)",
        "CREATE INDEX reservations_order ON reservations (order_id, trip_id)",
        """
        CREATE TABLE stock_movements (
            seq      INTEGER PRIMARY KEY AUTOINCREMENT,
            at       TEXT NOT NULL,
            kind     TEXT NOT NULL,
            location TEXT NOT NULL,
            tote     TEXT NOT NULL DEFAULT '',
            sku      TEXT NOT NULL,
            delta    INTEGER NOT NULL,
            on_hand  INTEGER NOT NULL CHECK (on_hand >= 0),
            ref      TEXT NOT NULL,
            order_id TEXT,
            data     TEXT NOT NULL DEFAULT '{}'
        )
        """,
        "CREATE INDEX stock_movements_sku ON stock_movements (sku, seq)",
        "CREATE INDEX stock_movements_location ON stock_movements (location, seq)",
        """
        CREATE TABLE stock_applied (
            kind   TEXT NOT NULL,
            ref    TEXT NOT NULL,
            at     TEXT NOT NULL,
            result TEXT NOT NULL DEFAULT '{}',
            PRIMARY KEY (kind, ref)
        )
        """,
        """
        CREATE TABLE inventory_events (
            seq      INTEGER PRIMARY KEY AUTOINCREMENT,
            at       TEXT NOT NULL,
            type     TEXT NOT NULL,
            sku      TEXT,
            location TEXT,
            data     TEXT NOT NULL DEFAULT '{}'
        )
        """,
        "CREATE TABLE stock_low (sku TEXT PRIMARY KEY, since TEXT NOT NULL)",
        "CREATE TABLE inventory_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ),
    # 4: AS/RS transport requests and crane commands (see controller.store.sqlite.asrs),
    # the cranes' journal numbers handled, and the prefix of this database's command ids.
    (
        """
        CREATE TABLE asrs_requests (
            id            INTEGER PRIMARY KEY,
            kind          TEXT NOT NULL CHECK (kind IN ('store', 'retrieve')),
            tote          TEXT NOT NULL,
            sku           TEXT NOT NULL DEFAULT '',
            aisle         TEXT NOT NULL,
            location      TEXT NOT NULL,
            purpose       TEXT NOT NULL,
            order_id      TEXT,
            due           TEXT,
            deliver_from  TEXT,
            deliver_until TEXT,
            priority      INTEGER NOT NULL,
            state         TEXT NOT NULL,
            command_id    TEXT,
            attempts      INTEGER NOT NULL DEFAULT 0,
            reason        TEXT NOT NULL DEFAULT '',
            created_at    TEXT NOT NULL,
            updated_at    TEXT NOT NULL
        )
        """,
        "CREATE INDEX asrs_requests_state ON asrs_requests (state, id)",
        """
        CREATE TABLE asrs_commands (
            command_id        TEXT PRIMARY KEY,
            seq               INTEGER NOT NULL UNIQUE,
            aisle             TEXT NOT NULL,
            kind              TEXT NOT NULL CHECK (kind IN ('store', 'retrieve', 'dual')),
            store_request     INTEGER REFERENCES asrs_requests (id),
            retrieve_request  INTEGER REFERENCES asrs_requests (id),
            store_tote        TEXT,
            store_location    TEXT,
            retrieve_tote     TEXT,
            retrieve_location TEXT,
            state             TEXT NOT NULL,
            reason            TEXT NOT NULL DEFAULT '',
            store_result      TEXT NOT NULL DEFAULT '',
            retrieve_result   TEXT NOT NULL DEFAULT '',
            created_at        TEXT NOT NULL,
            updated_at        TEXT NOT NULL
        )
        """,
        "CREATE INDEX asrs_commands_state ON asrs_commands (state, seq)",
        "CREATE TABLE asrs_sequences (aisle TEXT PRIMARY KEY, sequence INTEGER NOT NULL)",
        "CREATE TABLE asrs_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "INSERT INTO asrs_meta (key, value) VALUES ('namespace', lower(hex(randomblob(3))))",
    ),
    # 5: reservations of units in AS/RS totes (see controller.store.sqlite.inventory.totes): they
    # name the tote and follow it wherever it goes. The rows from before are all loose stock.
    (
        "ALTER TABLE reservations ADD COLUMN tote TEXT NOT NULL DEFAULT ''",
        "CREATE INDEX reservations_tote ON reservations (state, tote, sku)",
    ),
    # 6: the operators' audit log (see controller.store.audit) and the line's operator state
    # (the hold), kept over a restart.
    (
        """
        CREATE TABLE audit (
            seq    INTEGER PRIMARY KEY AUTOINCREMENT,
            at     TEXT NOT NULL,
            who    TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL DEFAULT '',
            params TEXT NOT NULL DEFAULT '{}',
            result TEXT NOT NULL CHECK (result IN ('ok', 'refused', 'failed')),
            status INTEGER NOT NULL,
            detail TEXT NOT NULL DEFAULT ''
        )
        """,
        "CREATE INDEX audit_action ON audit (action, seq)",
        "CREATE INDEX audit_who ON audit (who, seq)",
        "CREATE TABLE line_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ),
    # 7: totes whose picked units went to the reject chute, until restocked or written off
    # (see controller.store.reject_totes)
    (
        """
        CREATE TABLE reject_totes (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            tote        TEXT NOT NULL,
            order_id    TEXT NOT NULL,
            trip_id     TEXT NOT NULL UNIQUE,
            chute       TEXT NOT NULL,
            reason      TEXT NOT NULL,
            lines       TEXT NOT NULL,
            state       TEXT NOT NULL CHECK (state IN ('open', 'restocked', 'written_off')),
            arrived_at  TEXT NOT NULL,
            resolved_at TEXT,
            resolved_by TEXT,
            resolution  TEXT NOT NULL DEFAULT '{}'
        )
        """,
        "CREATE INDEX reject_totes_state ON reject_totes (state, id)",
        "CREATE INDEX reject_totes_tote ON reject_totes (tote, id)",
    ),
    # 8: the order's waiting reason as a typed value (JSON, see controller.orders.waiting),
    # written with the text in waiting_reason. Rows from before have only the text: they are
    # read back as a reason of kind ``other`` carrying it.
    ("ALTER TABLE orders ADD COLUMN waiting TEXT",),
)

SCHEMA_VERSION = len(MIGRATIONS)
WAL_KEPT_BYTES = 0  # the write-ahead log's size after a checkpoint reset it


def configure(conn: Connection) -> None:
    """Connection settings: WAL, a full fsync on every commit, foreign keys enforced, and the
    write-ahead log cut back after each checkpoint: it does not keep the size of its largest
    burst, and a full disk shows at the next write after a checkpoint instead of only once
    writes outgrow the space the log kept."""
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StoreError(f"the database cannot use write-ahead logging (journal_mode={mode})")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(f"PRAGMA journal_size_limit={WAL_KEPT_BYTES}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=5000")


def current_version(conn: Connection) -> int:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: Connection, path: str) -> int:
    """Bring the schema to :data:`SCHEMA_VERSION`; return the version found before."""
    found = current_version(conn)
    if found > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: schema version {found} is newer than this release supports "
            f"({SCHEMA_VERSION}); upgrade linectl or use another store file"
        )
    for version in range(found, SCHEMA_VERSION):
        with transaction(conn):
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version + 1,))
        log.info(
            "order store schema migrated",
            extra={"path": path, "from_version": version, "to_version": version + 1},
        )
    return found
