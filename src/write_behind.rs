//! Write-behind for the database file. SQLite writes a page to the main
//! database file when its cache spills and when a transaction commits; here
//! those writes are handed to a background thread, so the connection's
//! thread goes on building pages while the kernel copies the last ones into
//! the page cache. A million-row import writes 3.7 GB, and that copy was
//! about a third of the writing thread's time. The layer is a VFS,
//! `intake-write-behind`, over the platform's default one; journals and
//! temporary files pass straight through.
//!
//! Order and durability are SQLite's own: the writes are applied in the
//! order SQLite issued them, and every call that could observe the file
//! (read, size, sync, truncate, lock, unlock, file control, close) first
//! waits until the queue is empty. A transaction is durable only once the
//! file is synced (the connections run `synchronous = FULL`), so a commit
//! still returns only after its pages are written and synced, and a killed
//! process leaves what a killed process always left: a hot journal that the
//! next open rolls back. A background write that fails poisons the file
//! until its write transaction ends: every call that waits (a read, a lock,
//! a file control, the commit's sync) returns the failure, so a caller that
//! ignored one error cannot commit past the lost page; once SQLite lets go
//! of its lock, the journal the failed transaction left rolls it back.

use std::ffi::{c_int, c_void, CStr};
#[cfg(test)]
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use rusqlite::ffi;

/// The name connections open the database file with.
pub const VFS_NAME: &str = "intake-write-behind";
const VFS_NAME_C: &CStr = c"intake-write-behind";

/// Page writes queued at most before a write waits: 64 pages of 64 KiB,
/// so the queue and its spare buffers hold at most about 8 MB.
const QUEUE_PAGES: usize = 64;

/// The default VFS, which does the I/O.
struct RealVfs(*mut ffi::sqlite3_vfs);
// SAFETY: a registered VFS is immutable and lives for the process.
unsafe impl Send for RealVfs {}
// SAFETY: as for Send: it is only read, and SQLite's VFS methods are
// thread-safe in its serialized and multi-thread modes.
unsafe impl Sync for RealVfs {}

static REAL: OnceLock<RealVfs> = OnceLock::new();
/// Writes made by the background threads, for the tests to see the queue used.
#[cfg(test)]
static WRITTEN_BEHIND: AtomicU64 = AtomicU64::new(0);
static REGISTERED: OnceLock<c_int> = OnceLock::new();

/// Registers the VFS (once per process); connections then open their file
/// with `VFS_NAME`. Fails only if SQLite has no default VFS.
pub fn register() -> rusqlite::Result<()> {
    let rc = *REGISTERED.get_or_init(|| {
        // SAFETY: sqlite3_vfs_find initialises SQLite and returns a VFS that
        // lives for the process (or null).
        let real = unsafe { ffi::sqlite3_vfs_find(std::ptr::null()) };
        if real.is_null() {
            return ffi::SQLITE_ERROR;
        }
        let _ = REAL.set(RealVfs(real));
        // The copy keeps every method of the default VFS but xOpen: they do
        // not depend on which VFS structure they are called through (the
        // unix VFS reads its pAppData only in xOpen, called here with its own).
        // SAFETY: real is a valid VFS; the copy is leaked, as SQLite keeps it.
        let mut vfs = unsafe { *real };
        vfs.szOsFile += INNER_OFFSET as c_int;
        vfs.zName = VFS_NAME_C.as_ptr();
        vfs.pNext = std::ptr::null_mut();
        vfs.xOpen = Some(shim_open);
        let vfs = Box::leak(Box::new(vfs));
        // SAFETY: vfs is fully initialised and never freed.
        unsafe { ffi::sqlite3_vfs_register(vfs, 0) }
    });
    match rc {
        ffi::SQLITE_OK => Ok(()),
        rc => Err(rusqlite::Error::SqliteFailure(
            ffi::Error::new(rc),
            Some("SQLite has no default VFS to write the database through".into()),
        )),
    }
}

/// What SQLite allocates for a file opened through the VFS: this header,
/// then the default VFS's own file structure at `INNER_OFFSET`.
#[repr(C)]
struct ShimFile {
    base: ffi::sqlite3_file,
    /// The queue of a main database file; null for every other file.
    behind: *mut Behind,
}

const INNER_OFFSET: usize = std::mem::size_of::<ShimFile>().next_multiple_of(16);

/// The default VFS's file inside a shim file.
fn inner(file: *mut ffi::sqlite3_file) -> *mut ffi::sqlite3_file {
    // SAFETY (for callers): SQLite allocated szOsFile bytes for the file.
    file.cast::<u8>().wrapping_add(INNER_OFFSET).cast()
}

/// The methods of the default VFS's file inside a shim file.
///
/// # Safety
/// `file` is a shim file whose inner file is open (its methods are set).
unsafe fn inner_methods(file: *mut ffi::sqlite3_file) -> &'static ffi::sqlite3_io_methods {
    // SAFETY: an open inner file's methods are static tables of its VFS.
    unsafe { &*(*inner(file)).pMethods }
}

/// The queue of a main database file, if `file` is one.
///
/// # Safety
/// `file` is a shim file set up by `shim_open`, and no other reference to
/// its queue is alive: SQLite calls a file's methods from one thread at a
/// time, and the queue is a Box the file owns until `shim_close`.
unsafe fn behind<'f>(file: *mut ffi::sqlite3_file) -> Option<&'f mut Behind> {
    // SAFETY: `behind` is null or a live Box owned by the file (above).
    unsafe { (*file.cast::<ShimFile>()).behind.as_mut() }
}

/// A database file's writes in flight, and the thread that makes them.
struct Behind {
    running: Option<Running>,
    /// Set when the thread could not be started: writes are made in place.
    in_place: bool,
}

struct Running {
    jobs: Option<Sender<Job>>,
    spare: Receiver<Vec<u8>>,
    progress: Arc<Progress>,
    queued: u64,
    thread: Option<JoinHandle<()>>,
}

struct Job {
    offset: i64,
    data: Vec<u8>,
}

/// How many writes the thread has made, and the first that failed.
#[derive(Default)]
struct Progress {
    state: Mutex<(u64, c_int)>,
    changed: Condvar,
}

/// Keeps `rc` as the failure to report unless an earlier one is kept.
fn keep_first_failure(state: &mut (u64, c_int), rc: c_int) {
    if state.1 == ffi::SQLITE_OK {
        state.1 = rc;
    }
}

/// The inner file, for the writing thread. SQLite does not touch the file
/// while writes are queued (every other call waits for the queue first),
/// so the thread is its only user meanwhile.
struct InnerFile(*mut ffi::sqlite3_file);
// SAFETY: see above; the file outlives the thread, which close joins.
unsafe impl Send for InnerFile {}

impl Behind {
    fn start(&mut self, file: *mut ffi::sqlite3_file) -> Option<&mut Running> {
        if self.running.is_none() && !self.in_place {
            let (jobs, queue) = crossbeam_channel::bounded::<Job>(QUEUE_PAGES);
            let (spare_tx, spare) = crossbeam_channel::unbounded();
            let progress = Arc::new(Progress::default());
            let shared = progress.clone();
            let target = InnerFile(inner(file));
            let thread = std::thread::Builder::new()
                .name("sqlite-write-behind".into())
                .spawn(move || write_queued(&target, &queue, &spare_tx, &shared));
            match thread {
                Ok(thread) => {
                    self.running = Some(Running {
                        jobs: Some(jobs),
                        spare,
                        progress,
                        queued: 0,
                        thread: Some(thread),
                    })
                }
                Err(_) => self.in_place = true,
            }
        }
        self.running.as_mut()
    }

    /// Waits until every queued write is made; the first failure of the
    /// write transaction, if any. The failure stays until `end_transaction`.
    fn drain(&mut self) -> c_int {
        let Some(running) = self.running.as_mut() else {
            return ffi::SQLITE_OK;
        };
        let mut state = lock(&running.progress.state);
        while state.0 < running.queued {
            state = running
                .progress
                .changed
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
        state.1
    }

    /// Forgets the failure of a write transaction that is over: SQLite has
    /// let go of its lock, and the next one rolls the hot journal back
    /// before it uses the file.
    fn end_transaction(&mut self) {
        if let Some(running) = self.running.as_mut() {
            lock(&running.progress.state).1 = ffi::SQLITE_OK;
        }
    }

    /// Waits for the queue and stops the thread.
    fn stop(&mut self) -> c_int {
        let rc = self.drain();
        if let Some(mut running) = self.running.take() {
            drop(running.jobs.take());
            if let Some(thread) = running.thread.take() {
                let _ = thread.join();
            }
        }
        rc
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether a test has asked for the write being made to fail.
#[cfg(test)]
fn injected_failure() -> bool {
    tests::injected_failure()
}

#[cfg(not(test))]
#[inline(always)]
fn injected_failure() -> bool {
    false
}

/// The writing thread: makes each write in order; after a failure the rest
/// are skipped (SQLite will roll the transaction back) but still counted.
fn write_queued(
    target: &InnerFile,
    queue: &Receiver<Job>,
    spare: &Sender<Vec<u8>>,
    progress: &Progress,
) {
    let file = target.0;
    for job in queue {
        let failed = lock(&progress.state).1 != ffi::SQLITE_OK;
        let rc = if failed {
            ffi::SQLITE_OK
        } else if injected_failure() {
            ffi::SQLITE_IOERR_WRITE
        } else {
            // SAFETY: the file is open and otherwise untouched (see InnerFile).
            unsafe {
                let write = (*(*file).pMethods).xWrite.expect("every VFS writes");
                write(
                    file,
                    job.data.as_ptr().cast(),
                    job.data.len() as c_int,
                    job.offset,
                )
            }
        };
        {
            let mut state = lock(&progress.state);
            state.0 += 1;
            keep_first_failure(&mut state, rc);
        }
        progress.changed.notify_all();
        #[cfg(test)]
        WRITTEN_BEHIND.fetch_add(1, Ordering::Relaxed);
        let _ = spare.send(job.data);
    }
}

unsafe extern "C" fn shim_open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: SQLite passes `file`, szOsFile bytes it allocated for this
    // VFS (a ShimFile and the inner file after it), `name` and `out_flags`
    // as its xOpen contract says; REAL is the VFS registered over.
    unsafe {
        let real = REAL.get().expect("registered before use").0;
        let shim = file.cast::<ShimFile>();
        (*shim).base.pMethods = std::ptr::null();
        (*shim).behind = std::ptr::null_mut();
        // Null until the inner open succeeds, so a failed open is recognised.
        (*inner(file)).pMethods = std::ptr::null();
        let open = (*real).xOpen.expect("every VFS opens files");
        let rc = open(real, name, inner(file), flags, out_flags);
        if rc != ffi::SQLITE_OK || (*inner(file)).pMethods.is_null() {
            // SQLite closes a file whose open failed only if its methods are
            // set, and ours are not: close the inner one here if it is open.
            if let Some(close) = (*inner(file)).pMethods.as_ref().and_then(|m| m.xClose) {
                close(inner(file));
            }
            return rc;
        }
        if flags & ffi::SQLITE_OPEN_MAIN_DB != 0 {
            (*shim).behind = Box::into_raw(Box::new(Behind {
                running: None,
                in_place: false,
            }));
        }
        (*shim).base.pMethods = &SHIM_METHODS;
        rc
    }
}

/// Waits for the queue of `file` (if it has one) and calls the default
/// VFS's method; a failed queued write is reported instead.
macro_rules! after_queue {
    ($file:expr, $method:ident ( $($arg:expr),* )) => {{
        let queued = behind($file).map_or(ffi::SQLITE_OK, Behind::drain);
        match inner_methods($file).$method {
            _ if queued != ffi::SQLITE_OK => queued,
            Some(method) => method(inner($file) $(, $arg)*),
            None => ffi::SQLITE_IOERR,
        }
    }};
}

unsafe extern "C" fn shim_close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite calls this only on a file `shim_open` opened (its
    // methods are set only then), from one thread at a time, with
    // pointers valid for the call as the VFS contract says.
    unsafe {
        let shim = file.cast::<ShimFile>();
        let queued = match (*shim).behind.as_mut() {
            Some(behind) => behind.stop(),
            None => ffi::SQLITE_OK,
        };
        let close = inner_methods(file).xClose.expect("every VFS closes files");
        let rc = close(inner(file));
        if !(*shim).behind.is_null() {
            drop(Box::from_raw((*shim).behind));
            (*shim).behind = std::ptr::null_mut();
        }
        if queued != ffi::SQLITE_OK {
            queued
        } else {
            rc
        }
    }
}

unsafe extern "C" fn shim_read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: SQLite calls this only on a file `shim_open` opened (its
    // methods are set only then), from one thread at a time, with
    // pointers valid for the call as the VFS contract says.
    unsafe { after_queue!(file, xRead(buf, amount, offset)) }
}

unsafe extern "C" fn shim_write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: SQLite calls this only on a file `shim_open` opened (its
    // methods are set only then), from one thread at a time, with
    // pointers valid for the call as the VFS contract says.
    unsafe {
        let write_now = |file| {
            let write = inner_methods(file).xWrite.expect("every VFS writes");
            write(inner(file), buf, amount, offset)
        };
        let Some(behind) = behind(file) else {
            return write_now(file);
        };
        let Some(running) = behind.start(file) else {
            return write_now(file);
        };
        {
            // A write of this transaction that failed fails this one.
            let state = lock(&running.progress.state);
            if state.1 != ffi::SQLITE_OK {
                return state.1;
            }
        }
        let mut data = running.spare.try_recv().unwrap_or_default();
        data.clear();
        data.extend_from_slice(std::slice::from_raw_parts(
            buf.cast::<u8>(),
            amount.max(0) as usize,
        ));
        let sent = running
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(Job { offset, data }).is_ok());
        if sent {
            running.queued += 1;
            ffi::SQLITE_OK
        } else {
            // The thread is gone: write in place from now on.
            behind.stop();
            behind.in_place = true;
            write_now(file)
        }
    }
}

unsafe extern "C" fn shim_truncate(
    file: *mut ffi::sqlite3_file,
    size: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: SQLite calls this only on a file `shim_open` opened (its
    // methods are set only then), from one thread at a time, with
    // pointers valid for the call as the VFS contract says.
    unsafe { after_queue!(file, xTruncate(size)) }
}

unsafe extern "C" fn shim_sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    // SAFETY: SQLite calls this only on a file `shim_open` opened (its
    // methods are set only then), from one thread at a time, with
    // pointers valid for the call as the VFS contract says.
    unsafe { after_queue!(file, xSync(flags)) }
}

unsafe extern "C" fn shim_file_size(
    file: *mut ffi::sqlite3_file,
    size: *mut ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: SQLite calls this only on a file `shim_open` opened (its
    // methods are set only then), from one thread at a time, with
    // pointers valid for the call as the VFS contract says.
    unsafe { after_queue!(file, xFileSize(size)) }
}

unsafe extern "C" fn shim_lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: SQLite calls this only on a file `shim_open` opened (its
    // methods are set only then), from one thread at a time, with
    // pointers valid for the call as the VFS contract says.
    unsafe { after_queue!(file, xLock(level)) }
}

unsafe extern "C" fn shim_unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: SQLite calls this only on a file `shim_open` opened (its
    // methods are set only then), from one thread at a time, with
    // pointers valid for the call as the VFS contract says.
    unsafe {
        // Unlocking must happen whatever the queue says; SQLite does not act
        // on an unlock's failure, so a failed write stays for the calls after.
        let mut behind = behind(file);
        if let Some(behind) = behind.as_deref_mut() {
            behind.drain();
        }
        let rc = match inner_methods(file).xUnlock {
            Some(unlock) => unlock(inner(file), level),
            None => ffi::SQLITE_OK,
        };
        // Down to no lock, the transaction is over: a failure it had is what
        // the hot journal it left undoes.
        if level == ffi::SQLITE_LOCK_NONE {
            if let Some(behind) = behind {
                behind.end_transaction();
            }
        }
        rc
    }
}

unsafe extern "C" fn shim_check_reserved_lock(
    file: *mut ffi::sqlite3_file,
    out: *mut c_int,
) -> c_int {
    // SAFETY: SQLite calls this only on a file `shim_open` opened (its
    // methods are set only then), from one thread at a time, with
    // pointers valid for the call as the VFS contract says.
    unsafe { after_queue!(file, xCheckReservedLock(out)) }
}

unsafe extern "C" fn shim_file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: SQLite calls this only on a file `shim_open` opened (its
    // methods are set only then), from one thread at a time, with
    // pointers valid for the call as the VFS contract says.
    unsafe {
        if op == ffi::SQLITE_FCNTL_SIZE_HINT && behind(file).is_some() {
            // A hint SQLite gives before each spill as the file grows; acting
            // on it would wait for the queue every time. Declining is allowed.
            return ffi::SQLITE_NOTFOUND;
        }
        after_queue!(file, xFileControl(op, arg))
    }
}

unsafe extern "C" fn shim_sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite calls this only on a file `shim_open` opened (its
    // methods are set only then), from one thread at a time, with
    // pointers valid for the call as the VFS contract says.
    unsafe {
        match inner_methods(file).xSectorSize {
            Some(method) => method(inner(file)),
            None => 4096,
        }
    }
}

unsafe extern "C" fn shim_device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite calls this only on a file `shim_open` opened (its
    // methods are set only then), from one thread at a time, with
    // pointers valid for the call as the VFS contract says.
    unsafe {
        match inner_methods(file).xDeviceCharacteristics {
            Some(method) => method(inner(file)),
            None => 0,
        }
    }
}

unsafe extern "C" fn shim_shm_map(
    file: *mut ffi::sqlite3_file,
    region: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: SQLite calls this only on a file `shim_open` opened (its
    // methods are set only then), from one thread at a time, with
    // pointers valid for the call as the VFS contract says.
    unsafe { after_queue!(file, xShmMap(region, size, extend, out)) }
}

unsafe extern "C" fn shim_shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    // SAFETY: SQLite calls this only on a file `shim_open` opened (its
    // methods are set only then), from one thread at a time, with
    // pointers valid for the call as the VFS contract says.
    unsafe { after_queue!(file, xShmLock(offset, n, flags)) }
}

unsafe extern "C" fn shim_shm_barrier(file: *mut ffi::sqlite3_file) {
    // SAFETY: SQLite calls this only on a file `shim_open` opened (its
    // methods are set only then), from one thread at a time, with
    // pointers valid for the call as the VFS contract says.
    unsafe {
        if let Some(behind) = behind(file) {
            behind.drain();
        }
        if let Some(method) = inner_methods(file).xShmBarrier {
            method(inner(file));
        }
    }
}

unsafe extern "C" fn shim_shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    // SAFETY: SQLite calls this only on a file `shim_open` opened (its
    // methods are set only then), from one thread at a time, with
    // pointers valid for the call as the VFS contract says.
    unsafe { after_queue!(file, xShmUnmap(delete)) }
}

unsafe extern "C" fn shim_fetch(
    file: *mut ffi::sqlite3_file,
    offset: ffi::sqlite3_int64,
    amount: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: SQLite calls this only on a file `shim_open` opened (its
    // methods are set only then), from one thread at a time, with
    // pointers valid for the call as the VFS contract says.
    unsafe {
        // No memory map: SQLite then reads the page with xRead.
        if inner_methods(file).iVersion < 3 {
            *out = std::ptr::null_mut();
            return ffi::SQLITE_OK;
        }
        after_queue!(file, xFetch(offset, amount, out))
    }
}

unsafe extern "C" fn shim_unfetch(
    file: *mut ffi::sqlite3_file,
    offset: ffi::sqlite3_int64,
    page: *mut c_void,
) -> c_int {
    // SAFETY: SQLite calls this only on a file `shim_open` opened (its
    // methods are set only then), from one thread at a time, with
    // pointers valid for the call as the VFS contract says.
    unsafe {
        if inner_methods(file).iVersion < 3 {
            return ffi::SQLITE_OK;
        }
        after_queue!(file, xUnfetch(offset, page))
    }
}

static SHIM_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(shim_close),
    xRead: Some(shim_read),
    xWrite: Some(shim_write),
    xTruncate: Some(shim_truncate),
    xSync: Some(shim_sync),
    xFileSize: Some(shim_file_size),
    xLock: Some(shim_lock),
    xUnlock: Some(shim_unlock),
    xCheckReservedLock: Some(shim_check_reserved_lock),
    xFileControl: Some(shim_file_control),
    xSectorSize: Some(shim_sector_size),
    xDeviceCharacteristics: Some(shim_device_characteristics),
    xShmMap: Some(shim_shm_map),
    xShmLock: Some(shim_shm_lock),
    xShmBarrier: Some(shim_shm_barrier),
    xShmUnmap: Some(shim_shm_unmap),
    xFetch: Some(shim_fetch),
    xUnfetch: Some(shim_unfetch),
};

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rusqlite::{Connection, OpenFlags};

    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::{register, VFS_NAME, WRITTEN_BEHIND};

    /// Set by a test to fail the next write the background thread makes.
    static FAIL_NEXT_WRITE: AtomicBool = AtomicBool::new(false);
    /// Set once that write has failed and the failure is kept.
    static INJECTED: AtomicBool = AtomicBool::new(false);

    /// Whether the write being made is the one to fail. It fails after a
    /// pause, so the statement that queued it finishes first and the
    /// failure is seen by whatever call comes next.
    pub(super) fn injected_failure() -> bool {
        if !FAIL_NEXT_WRITE.swap(false, Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
        INJECTED.store(true, Ordering::SeqCst);
        true
    }

    /// A connection through the write-behind VFS whose small pages and
    /// cache make every transaction spill pages before it commits.
    fn open_behind(path: &Path) -> Connection {
        register().unwrap();
        let conn =
            Connection::open_with_flags_and_vfs(path, OpenFlags::default(), VFS_NAME).unwrap();
        conn.execute_batch(
            "PRAGMA page_size = 4096; PRAGMA cache_size = 8;
             PRAGMA journal_mode = TRUNCATE; PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body TEXT NOT NULL);",
        )
        .unwrap();
        conn
    }

    fn body(id: i64) -> String {
        format!("{id:06}-").repeat(150)
    }

    fn insert(conn: &Connection, ids: std::ops::Range<i64>) -> rusqlite::Result<()> {
        let mut stmt = conn.prepare_cached("INSERT INTO t (id, body) VALUES (?1, ?2)")?;
        for id in ids {
            stmt.execute(rusqlite::params![id, body(id)])?;
        }
        Ok(())
    }

    /// What a plain connection (the default VFS) finds in the file: the
    /// number of rows, after checking each row's body and the file's
    /// integrity. It may write: a failed transaction leaves a hot journal
    /// for the next connection to roll back.
    fn committed(path: &Path) -> i64 {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE).unwrap();
        let integrity: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok");
        let mut stmt = conn.prepare("SELECT id, body FROM t ORDER BY id").unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .unwrap();
        let mut n = 0;
        for row in rows {
            let (id, text) = row.unwrap();
            assert_eq!(text, body(id), "row {id}");
            n += 1;
        }
        n
    }

    #[test]
    fn pages_written_behind_are_read_back_committed_and_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("behind.db");
        let conn = open_behind(&path);

        let before = WRITTEN_BEHIND.load(std::sync::atomic::Ordering::Relaxed);
        conn.execute_batch("BEGIN").unwrap();
        insert(&conn, 0..3000).unwrap();
        // Most pages have been spilled to the file by now; reading them back
        // waits for the queue.
        let stored: i64 = conn
            .query_row(
                "SELECT count(*) FROM t WHERE body = printf('%06d-', id) || substr(body, 8)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(stored, 3000);
        conn.execute_batch("COMMIT").unwrap();
        assert_eq!(
            committed(&path),
            3000,
            "a commit returns with its pages in the file"
        );
        let behind = WRITTEN_BEHIND.load(std::sync::atomic::Ordering::Relaxed) - before;
        assert!(behind >= 500, "the pages were written behind ({behind})");

        conn.execute_batch("BEGIN").unwrap();
        insert(&conn, 3000..6000).unwrap();
        conn.execute("UPDATE t SET body = 'changed' WHERE id < 500", [])
            .unwrap();
        conn.execute_batch("ROLLBACK").unwrap();
        assert_eq!(
            committed(&path),
            3000,
            "a rollback restores the spilled pages"
        );

        insert(&conn, 3000..3100).unwrap();
        drop(conn);
        assert_eq!(committed(&path), 3100);
    }

    const CHILD_DB: &str = "INTAKE_WRITE_BEHIND_TEST_DB";

    /// Runs the ignored test `test` of this binary alone in a child process
    /// on the database `path`; checks it passed and returns what it printed.
    fn in_child_process(test: &str, path: &Path) -> String {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                test,
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DB, path)
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{said}");
        said
    }
    const CHILD: &str = "write_behind::tests::a_write_past_the_file_size_limit_in_this_process";

    #[test]
    fn a_failed_write_behind_fails_its_transaction_and_loses_nothing_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("limited.db");
        // The limit is per process: the test runs again in a child process.
        let said = in_child_process(CHILD, &path);
        assert!(said.contains("the transaction failed:"), "{said}");
        assert_eq!(committed(&path), 100);
    }

    /// The child half of the test above: commits 100 rows, lowers its own
    /// file-size limit to 1 MB, and writes a transaction of 5 MB.
    #[test]
    #[ignore = "run in a process of its own by the test above"]
    fn a_write_past_the_file_size_limit_in_this_process() {
        let Some(path) = std::env::var_os(CHILD_DB) else {
            return;
        };
        let path = std::path::PathBuf::from(path);
        let conn = open_behind(&path);
        insert(&conn, 0..100).unwrap();
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: plain libc calls on this process's own limits; SIGXFSZ is
        // ignored so that a write past the limit fails with EFBIG instead.
        unsafe {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit), 0);
        }
        let old = limit.rlim_cur;
        limit.rlim_cur = 1 << 20;
        // SAFETY: setrlimit on this child process's own limit, with a live struct.
        unsafe { assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0) };
        conn.execute_batch("BEGIN").unwrap();
        let result = insert(&conn, 100..5100).and_then(|()| conn.execute_batch("COMMIT"));
        let error = result.expect_err("a write past the limit fails");
        println!("the transaction failed: {error}");
        let _ = conn.execute_batch("ROLLBACK");
        drop(conn);
        limit.rlim_cur = old;
        // SAFETY: setrlimit on this child process's own limit, with a live struct.
        unsafe { assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0) };
        assert_eq!(committed(&path), 100);
    }

    const CHILD_POISON: &str =
        "write_behind::tests::a_failure_seen_by_a_file_control_in_this_process";

    #[test]
    fn a_failed_write_behind_poisons_the_transaction_whatever_call_sees_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("poisoned.db");
        // The injected failure is per process: the test runs again in a child.
        let said = in_child_process(CHILD_POISON, &path);
        assert!(said.contains("the file control saw:"), "{said}");
        assert_eq!(committed(&path), 200, "{said}");
    }

    /// The child half of the test above: a write of an open transaction
    /// fails behind a statement that succeeded, and the failure is first
    /// seen by a call whose error the caller ignores (a file control, as
    /// SQLite ignores some). The commit after it must fail, and once the
    /// transaction is rolled back the connection works again. (A read that
    /// sees it is no test of this: SQLite rolls back on a read's I/O error.)
    #[test]
    #[ignore = "run in a process of its own by the test above"]
    fn a_failure_seen_by_a_file_control_in_this_process() {
        let Some(path) = std::env::var_os(CHILD_DB) else {
            return;
        };
        let path = std::path::PathBuf::from(path);
        let conn = open_behind(&path);
        insert(&conn, 0..100).unwrap();
        conn.execute_batch("BEGIN").unwrap();
        insert(&conn, 100..1100).unwrap();
        FAIL_NEXT_WRITE.store(true, Ordering::SeqCst);
        // One row per statement until a statement has queued the write that fails.
        let mut id = 1100;
        while FAIL_NEXT_WRITE.load(Ordering::SeqCst) && id < 100_000 {
            insert(&conn, id..id + 1).expect("the failure is not seen yet");
            id += 1;
        }
        while !INJECTED.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut chunk: std::ffi::c_int = 0;
        // SAFETY: the connection's own handle, a live int for the argument,
        // and an op the default VFS takes (it only sets the growth step).
        let seen = unsafe {
            rusqlite::ffi::sqlite3_file_control(
                conn.handle(),
                c"main".as_ptr(),
                rusqlite::ffi::SQLITE_FCNTL_CHUNK_SIZE,
                (&raw mut chunk).cast(),
            )
        };
        assert_ne!(
            seen,
            rusqlite::ffi::SQLITE_OK,
            "the file control waits and sees it"
        );
        println!("the file control saw: {seen}");
        // The caller ignored that; the rest of the transaction must fail.
        assert!(!conn.is_autocommit(), "the transaction is still open");
        assert!(
            insert(&conn, 200_000..201_000).is_err() || conn.execute_batch("COMMIT").is_err(),
            "a commit after the failure fails"
        );
        let _ = conn.execute_batch("ROLLBACK");
        // The transaction is over: the next one starts clean.
        insert(&conn, 100..200).unwrap();
        drop(conn);
        assert_eq!(committed(&path), 200);
    }
}
