//! Lanes: a call's micro-batches run at once, each on one thread, over one single-threaded CPU
//! session that all of them share. Two separate single-threaded runs scale where one run on
//! ONNX Runtime's two-thread pool did not (benchmark/README.md has the figures).
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Mutex;

use once_cell::sync::OnceCell;
use ort::session::Session;
use ort::value::{DynValue, Tensor};
use ort::AsPointer;

use crate::error::{Error, Result};

/// A lane runs ONNX Runtime's whole forward pass on its own thread.
const LANE_STACK_BYTES: usize = 8 << 20;

pub type OpenSession = Box<dyn Fn() -> Result<Session> + Send + Sync>;

pub struct Lanes {
    pub count: usize,
    session: OnceCell<Session>,
    open: OpenSession,
}

impl Lanes {
    /// `count` lanes over the session `open` opens when first needed.
    pub fn new(count: usize, open: OpenSession) -> Lanes {
        Lanes {
            count,
            session: OnceCell::new(),
            open,
        }
    }

    pub fn session(&self) -> Result<&Session> {
        self.session.get_or_try_init(&self.open)
    }
}

/// `lanes` threads, the caller's among them, take the micro-batches in turn (longest first, so
/// that the last ones to finish are short); the first error stops the others.
pub fn run_in_lanes(
    lanes: usize,
    batches: Vec<Vec<usize>>,
    work: impl Fn(Vec<usize>) -> Result<()> + Sync,
) -> Result<()> {
    let queue = Mutex::new(batches.into_iter());
    let failed = AtomicBool::new(false);
    let poisoned = || Error::Internal("a lock was poisoned by a panic".into());
    // a lane's events (an out-of-memory split) go to the calling model's logger
    let sink = crate::events::current();
    let lane_loop = || -> Result<()> {
        while !failed.load(Relaxed) {
            let Some(rows) = queue.lock().map_err(|_| poisoned())?.next() else {
                break;
            };
            if let Err(e) = work(rows) {
                failed.store(true, Relaxed);
                return Err(e);
            }
        }
        Ok(())
    };
    let lane = || -> Result<()> { crate::events::scoped(sink.as_ref(), lane_loop) };
    std::thread::scope(|scope| {
        let helpers = (1..lanes)
            .map(|_| {
                std::thread::Builder::new()
                    .name("embed-lane".into())
                    .stack_size(LANE_STACK_BYTES)
                    .spawn_scoped(scope, lane)
            })
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| Error::Internal(format!("cannot start a thread: {e}")))?;
        let mut result = lane();
        for helper in helpers {
            let joined = helper
                .join()
                .unwrap_or_else(|_| Err(Error::Internal("a lane thread panicked".into())));
            result = result.and(joined);
        }
        result
    })
}

/// ONNX Runtime's `Run` on `session` into the preallocated `output`, from any number of threads
/// at once. `ort` takes `&mut self` to run, for every execution provider; ONNX Runtime's own
/// maintainers state that a CPU session is stateless in `Run` and may be run concurrently
/// (microsoft/onnxruntime#114, #5558, #22967), which its Python API does when threads release
/// the GIL. Only CPU sessions come here (`OrtBackend::with_lanes`).
pub fn run_shared(
    session: &Session,
    inputs: &[(&str, DynValue)],
    output: &str,
    into: &mut Tensor<f32>,
) -> Result<()> {
    let text = |s: &str| CString::new(s).map_err(|_| Error::Internal(format!("name {s:?}")));
    let names = inputs
        .iter()
        .map(|(n, _)| text(n))
        .collect::<Result<Vec<_>>>()?;
    let name_ptrs: Vec<_> = names.iter().map(|n| n.as_ptr()).collect();
    let value_ptrs: Vec<_> = inputs.iter().map(|(_, v)| v.ptr()).collect();
    let output = text(output)?;
    let mut output_ptr = into.ptr_mut();
    // SAFETY: the session, the names, the input values and `into` are alive and unmoved for the
    // whole call (all are borrowed or owned here); the counts are those of the arrays passed;
    // `into` was allocated with the output's shape and element type, so ONNX Runtime writes into
    // it rather than allocating; a CPU session's `Run` may be called concurrently (above).
    let status = unsafe {
        (ort::api().Run)(
            session.ptr().cast_mut(),
            std::ptr::null(),
            name_ptrs.as_ptr(),
            value_ptrs.as_ptr(),
            value_ptrs.len(),
            &output.as_ptr(),
            1,
            &mut output_ptr,
        )
    };
    // SAFETY: `status` was returned by the call above and is consumed (released) exactly once.
    unsafe { ort::Error::result_from_status(status) }.map_err(|e| Error::from_run(e.to_string()))
}
