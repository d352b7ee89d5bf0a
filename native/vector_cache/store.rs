//! The SQLite file behind the vector cache: its schema, its checks, reads, writes and eviction.
//! Every function returns SQLite's own error; `Trouble::of` sorts them into what the cache
//! does next.
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension};

/// `PRAGMA application_id` of our files ("SSNV"): a SQLite file of anyone else's is not ours.
const APPLICATION_ID: i64 = 0x5353_4E56;
/// `PRAGMA user_version`: the schema below. Another version is moved aside, not migrated.
pub const SCHEMA_VERSION: i64 = 1;
/// The first 16 bytes of every SQLite database file.
const MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// `key` is the model's 16-byte key and the text's 16-byte hash; `used` the milliseconds since
/// the epoch of the last call that read or wrote the row (least recently used goes first).
const SCHEMA: &str = "
    CREATE TABLE vectors (
        id INTEGER PRIMARY KEY,
        key BLOB NOT NULL UNIQUE,
        used INTEGER NOT NULL,
        vector BLOB NOT NULL
    );
    CREATE INDEX vectors_used ON vectors (used, id);
    CREATE TABLE files (
        path TEXT NOT NULL,
        size INTEGER NOT NULL,
        modified INTEGER NOT NULL,
        hash BLOB NOT NULL,
        PRIMARY KEY (path, size, modified)
    );
";

/// What went wrong with the file, by what the cache does about it.
#[derive(Debug)]
pub enum Trouble {
    /// Another process holds the lock past the busy timeout: skip the cache for this call.
    Busy(String),
    /// Not a cache file of ours, or a damaged one: move it aside and start a new one.
    Damaged(String),
    /// The folder or file cannot be written: the cache is off.
    Unusable(String),
}

impl Trouble {
    pub fn of(e: rusqlite::Error) -> Trouble {
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Trouble::Busy(format!(
                "another process held the file past the busy timeout ({e})"
            )),
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
                Trouble::Damaged(format!("SQLite found it damaged ({e})"))
            }
            _ => Trouble::Unusable(e.to_string()),
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Trouble::Busy(m) | Trouble::Damaged(m) | Trouble::Unusable(m) => m,
        }
    }
}

pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (or creates) the file and checks that it is a whole cache file of this schema.
    pub fn open(path: &Path, busy: Duration) -> Result<Store, Trouble> {
        check_header(path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(Trouble::of)?;
        conn.busy_timeout(busy).map_err(Trouble::of)?;
        // a call of 25,000 vectors writes 100 MB to the WAL: give it back after each checkpoint
        conn.query_row("PRAGMA journal_size_limit = 16777216", [], |_| Ok(()))
            .map_err(Trouble::of)?;
        let store = Store { conn };
        store.check_or_create().map_err(|e| match e {
            Checked::Sqlite(e) => Trouble::of(e),
            Checked::Foreign(why) => Trouble::Damaged(why),
        })?;
        Ok(store)
    }

    fn check_or_create(&self) -> Result<(), Checked> {
        let conn = &self.conn;
        let id: i64 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
        if id == 0 && version == 0 && tables == 0 {
            return Ok(self.create()?);
        }
        if id != APPLICATION_ID {
            return Err(Checked::Foreign(format!(
                "it is a SQLite file of another program (application_id {id:#x})"
            )));
        }
        if version != SCHEMA_VERSION {
            return Err(Checked::Foreign(format!(
                "its schema is version {version}, this addon's is {SCHEMA_VERSION}"
            )));
        }
        let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        if check != "ok" {
            return Err(Checked::Foreign(format!(
                "PRAGMA quick_check failed: {check}"
            )));
        }
        Ok(())
    }

    /// A new file: incremental auto-vacuum (set before the first table) lets eviction give
    /// pages back; WAL lets readers go on while one process writes.
    fn create(&self) -> rusqlite::Result<()> {
        let conn = &self.conn;
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE;
             {SCHEMA}
             PRAGMA application_id = {APPLICATION_ID};
             PRAGMA user_version = {SCHEMA_VERSION};
             COMMIT;"
        ))
    }

    /// The stored vector of each key, `None` where there is none or it is not `bytes` long.
    pub fn read(
        &mut self,
        keys: &[[u8; 32]],
        bytes: usize,
    ) -> rusqlite::Result<Vec<Option<Vec<f32>>>> {
        let tx = self.conn.transaction()?;
        let found = {
            let mut select = tx.prepare_cached("SELECT vector FROM vectors WHERE key = ?1")?;
            keys.iter()
                .map(|key| {
                    let blob: Option<Vec<u8>> =
                        select.query_row([&key[..]], |r| r.get(0)).optional()?;
                    Ok(blob.filter(|b| b.len() == bytes).map(|b| floats(&b)))
                })
                .collect::<rusqlite::Result<Vec<_>>>()?
        };
        tx.commit()?;
        Ok(found)
    }

    /// Writes the new rows and marks the read ones used, in one transaction: a crash loses at
    /// most this call's rows. A key another process wrote meanwhile is kept as it is.
    pub fn write(&mut self, new: &[([u8; 32], &[f32])], read: &[[u8; 32]]) -> rusqlite::Result<()> {
        let now = now_ms();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO vectors (key, used, vector) VALUES (?1, ?2, ?3)",
            )?;
            for (key, vector) in new {
                insert.execute(params![&key[..], now, bytes_of(vector)])?;
            }
            let mut touch =
                tx.prepare_cached("UPDATE vectors SET used = ?2 WHERE key = ?1 AND used < ?2")?;
            for key in read {
                touch.execute(params![&key[..], now])?;
            }
        }
        tx.commit()
    }

    /// Deletes the least recently used rows until the file fits in 90 % of `max_bytes`, and
    /// gives the freed pages back to the file system.
    pub fn evict(&mut self, max_bytes: u64) -> rusqlite::Result<()> {
        let used = self.bytes()?;
        if used <= max_bytes {
            return Ok(());
        }
        let rows: i64 = self
            .conn
            .query_row("SELECT count(*) FROM vectors", [], |r| r.get(0))?;
        let target = max_bytes / 10 * 9;
        let share = (used - target) as f64 / used as f64;
        let doomed = ((rows as f64 * share).ceil() as i64).clamp(1, rows.max(1));
        self.conn.execute(
            "DELETE FROM vectors WHERE id IN (SELECT id FROM vectors ORDER BY used, id LIMIT ?1)",
            [doomed],
        )?;
        // each step of the pragma frees one page
        let mut vacuum = self.conn.prepare("PRAGMA incremental_vacuum")?;
        let mut steps = vacuum.query([])?;
        while steps.next()?.is_some() {}
        drop(steps);
        drop(vacuum);
        // the main file shrinks only when the WAL is checkpointed; a reader may hold it back
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
    }

    /// The database's size: its pages, written back to the file or still in the WAL.
    pub fn bytes(&self) -> rusqlite::Result<u64> {
        let pragma = |name: &str| -> rusqlite::Result<i64> {
            self.conn.pragma_query_value(None, name, |r| r.get(0))
        };
        Ok((pragma("page_count")?.max(0) * pragma("page_size")?) as u64)
    }

    /// The content hash remembered for a file of this path, size and modification time.
    pub fn file_hash(
        &self,
        path: &str,
        size: i64,
        modified: i64,
    ) -> rusqlite::Result<Option<Vec<u8>>> {
        self.conn
            .query_row(
                "SELECT hash FROM files WHERE path = ?1 AND size = ?2 AND modified = ?3",
                params![path, size, modified],
                |r| r.get(0),
            )
            .optional()
    }

    pub fn remember_file(
        &self,
        path: &str,
        size: i64,
        modified: i64,
        hash: &[u8],
    ) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO files (path, size, modified, hash) VALUES (?1, ?2, ?3, ?4)",
            params![path, size, modified, hash],
        )?;
        Ok(())
    }
}

enum Checked {
    Sqlite(rusqlite::Error),
    Foreign(String),
}

impl From<rusqlite::Error> for Checked {
    fn from(e: rusqlite::Error) -> Checked {
        Checked::Sqlite(e)
    }
}

/// An empty or missing file becomes a new cache; anything else must start as SQLite does.
fn check_header(path: &Path) -> Result<(), Trouble> {
    use std::io::Read;
    let Ok(mut file) = std::fs::File::open(path) else {
        return Ok(());
    };
    let mut head = Vec::with_capacity(100);
    file.by_ref()
        .take(100)
        .read_to_end(&mut head)
        .map_err(|e| Trouble::Unusable(format!("it cannot be read ({e})")))?;
    match head.len() {
        0 => Ok(()),
        n if n < 100 || &head[..16] != MAGIC => Err(Trouble::Damaged(
            "it does not start with SQLite's header".into(),
        )),
        _ => Ok(()),
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn bytes_of(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn floats(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}
